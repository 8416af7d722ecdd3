"""Ground-truth readers, prediction parsing, synthetic scenes and evaluation end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tao_ros.errors import InputError
from tao_ros.eval.evaluate import evaluate, format_table, read_objects_csv, write_report
from tao_ros.eval.groundtruth import guess_format, read_ground_truth, regions_from_masks


def two_blob_masks():
    masks = np.zeros((3, 20, 30), bool)
    masks[0, 2:7, 2:7] = True      # track A
    masks[1, 3:8, 3:8] = True      # A moves a little
    masks[1, 10:15, 20:25] = True  # track B appears
    masks[2, 10:15, 21:26] = True  # B continues, A gone
    return masks


def test_regions_and_tracks_from_masks():
    regions, specks = regions_from_masks("c", two_blob_masks())
    assert [(r.frame, r.track) for r in regions] == [(0, 1), (1, 1), (1, 2), (2, 2)]
    np.testing.assert_array_equal(regions[0].box, [2, 2, 6, 6])  # inclusive corners
    assert specks == 0


def test_annotation_specks_are_no_tracks_but_still_label_their_frame(tmp_path):
    masks = np.zeros((4, 40, 60), bool)
    masks[2:, 5:15, 5:15] = True   # an object on frames 2 and 3
    masks[1, 30:32, 40:43] = True  # frame 1: only a 6-pixel speck, as in Avenue 17's frame 103
    masks[3, 30:35, 40:45] = True  # 25 pixels: an object
    regions, specks = regions_from_masks("c", masks)
    assert specks == 1
    assert [(r.frame, r.track) for r in regions] == [(2, 1), (3, 1), (3, 2)]
    assert len(regions_from_masks("c", masks, min_pixels=1)[0]) == 4

    (tmp_path / "gt").mkdir()
    np.savez(tmp_path / "gt" / "01.npz", mask=masks)
    pred = tmp_path / "pred" / "01"
    pred.mkdir(parents=True)
    (pred / "objects.csv").write_text("frame,object_id,x1,y1,x2,y2,score\n2,1,5,5,15,15,5.0\n")
    metrics = evaluate(tmp_path / "pred", read_ground_truth(tmp_path / "gt"), threshold=2.0)
    assert metrics["specks"] == 1 and metrics["tracks"] == 2 and metrics["regions"] == 3
    assert metrics["curves"]["frame_labels"].tolist() == [False, True, True, True]  # the speck's frame too
    assert any("1 mask component(s) under 25 pixels" in note for note in metrics["notes"])


def test_ped2_reader(tmp_path):
    np.savez(tmp_path / "01.npz", mask=two_blob_masks())
    assert guess_format(tmp_path) == "ped2"
    (truth,) = read_ground_truth(tmp_path)
    assert truth.name == "01" and truth.num_frames == 3 and truth.derived_tracks
    assert truth.masks().shape == (3, 20, 30)


def test_avenue_reader(tmp_path):
    from scipy.io import savemat

    folder = tmp_path / "testing_label_mask"
    folder.mkdir()
    cells = np.empty((1, 3), dtype=object)
    for t, mask in enumerate(two_blob_masks()):
        cells[0, t] = mask.astype(np.uint8)
    savemat(folder / "3_label.mat", {"volLabel": cells})
    (truth,) = read_ground_truth(tmp_path, "avenue")
    assert truth.name == "03" and len(truth.regions) == 4
    np.testing.assert_array_equal(truth.masks(), two_blob_masks())


def test_shanghaitech_reader(tmp_path):
    folder = tmp_path / "test_pixel_mask"
    folder.mkdir()
    np.save(folder / "01_0014.npy", two_blob_masks().astype(np.uint8))
    (truth,) = read_ground_truth(tmp_path)
    assert truth.name == "01_0014" and truth.num_frames == 3


def write_tracks(tmp_path, rows, lengths="clip,num_frames\nc,5\n"):
    (tmp_path / "num_frames.csv").write_text(lengths)
    (tmp_path / "c.txt").write_text(rows)


def test_tracks_reader_and_its_errors(tmp_path):
    write_tracks(tmp_path, "1,0,2,2,5,5\n1,1,3,3,6,6\n")
    (truth,) = read_ground_truth(tmp_path)
    assert truth.num_frames == 5 and [r.track for r in truth.regions] == [1, 1] and truth.masks is None
    write_tracks(tmp_path, "1,0,2,2,5,5\n1,9,2,2,5,5\n")
    with pytest.raises(InputError, match=r"c\.txt:2: frame 9 outside 0\.\.4"):
        read_ground_truth(tmp_path)
    write_tracks(tmp_path, "1,0,6,2,5,5\n")
    with pytest.raises(InputError, match=r"c\.txt:1: box has x2 < x1"):
        read_ground_truth(tmp_path)
    write_tracks(tmp_path, "1,0,a,2,5,5\n")
    with pytest.raises(InputError, match=r"c\.txt:1: expected 6 numbers"):
        read_ground_truth(tmp_path)
    write_tracks(tmp_path, "", lengths="name,frames\n")
    with pytest.raises(InputError, match=r"num_frames\.csv:1: header"):
        read_ground_truth(tmp_path)


@pytest.mark.parametrize("content, message", [
    ("frame,id,x1,y1,x2,y2,score\n", r"objects\.csv:1: header"),
    ("frame,object_id,x1,y1,x2,y2,score\n0,1,0,0,4,x,1.0\n", r"objects\.csv:2: non-numeric"),
    ("frame,object_id,x1,y1,x2,y2,score\n7,1,0,0,4,4,1.0\n", r"objects\.csv:2: frame 7 outside 0\.\.2"),
    ("frame,object_id,x1,y1,x2,y2,score\n0,1,5,0,4,4,1.0\n", r"objects\.csv:2: box has x2 < x1"),
])
def test_malformed_predictions_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "objects.csv"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        read_objects_csv(path, num_frames=3)


def test_evaluate_perfect_and_missing_clips(tmp_path):
    np.savez(tmp_path / "01.npz", mask=two_blob_masks())
    np.savez(tmp_path / "02.npz", mask=two_blob_masks())
    pred = tmp_path / "pred"
    (pred / "01").mkdir(parents=True)
    rows = ["frame,object_id,x1,y1,x2,y2,score"]
    for region in read_ground_truth(tmp_path)[0].regions:
        x1, y1, x2, y2 = region.box.astype(int)
        rows.append(f"{region.frame},{region.track},{x1},{y1},{x2 + 1},{y2 + 1},5.0")
    rows.append("0,9,20,0,25,4,1.0")  # a low-scoring object on a normal part of frame 0
    (pred / "01" / "objects.csv").write_text("\n".join(rows) + "\n")
    metrics = evaluate(pred, read_ground_truth(tmp_path), threshold=2.0)
    assert metrics["missing_clips"] == ["02"]
    assert metrics["clips"]["01"]["rbdc"] == pytest.approx(1.0)
    assert metrics["clips"]["01"]["mean_iou"] == pytest.approx(1.0)
    assert metrics["rbdc"] < 1.0  # clip 02's regions were never found
    # clip 02's anomalous frames have no mask at all: counted in mean IoU, apart in the segmented one
    assert metrics["mean_iou_segmented"] == pytest.approx(1.0)
    assert 0.0 < metrics["segmented_frames"] < 1.0
    assert metrics["mean_iou"] == pytest.approx(metrics["segmented_frames"] * metrics["mean_iou_segmented"])
    assert metrics["region_coverage"] == pytest.approx(0.5)
    assert "02" in format_table(metrics)
    # at the threshold every region of clip 01 is flagged; the low-scoring object is no false box
    point = metrics["operating_point"]
    assert point["false_boxes_per_frame"] == 0.0
    assert {(t["clip"], t["flagged"]) for t in point["tracks"]} == {("01", 1.0), ("02", 0.0)}
    assert "01 track 1" in format_table(metrics) and "false boxes per frame" in format_table(metrics)
    written = write_report(metrics, tmp_path / "report")
    data = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert {"rbdc", "tbdc", "frame_auroc", "pixel_auroc", "pixel_ap", "pixel_frame_auc", "mean_iou"} <= set(data)
    assert all(p.exists() for p in written) and any(p.suffix == ".png" for p in written)


def test_synth_is_deterministic(tmp_path):
    from tao_ros.eval.synth import Scene

    first = list(Scene(3, 12, anomalies=True).render())
    second = list(Scene(3, 12, anomalies=True).render())
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[2], b[2])
    other = list(Scene(4, 12, anomalies=True).render())
    assert not np.array_equal(first[5][0], other[5][0])


def test_end_to_end_on_synthetic_bags_beats_chance(tmp_path, capsys):
    pytest.importorskip("rosbags")
    from tao_ros.cli import main
    from tao_ros.eval.synth import synthesize

    synthesize(tmp_path / "data", seed=5, train_frames=200, test_frames=200)
    assert main(["fit", str(tmp_path / "data" / "normal"), "-o", str(tmp_path / "m.npz")]) == 0
    assert main(["run", str(tmp_path / "data" / "test"), "-m", str(tmp_path / "m.npz"), "-o", str(tmp_path / "out"),
                 "--eval", str(tmp_path / "data" / "test")]) == 0
    metrics = json.loads((tmp_path / "out" / "report" / "metrics.json").read_text())
    assert metrics["frame_auroc"] > 0.7
    assert metrics["pixel_auroc"] > 0.75
    assert metrics["rbdc"] > 0.4 and metrics["tbdc"] > 0.7
    printed = capsys.readouterr().out
    assert "RBDC" in printed and "operating point" in printed
    # the synthetic clip's anomalies: each track's share of frames flagged at the shipped threshold
    tracks = metrics["operating_point"]["tracks"]
    assert tracks and max(t["flagged"] for t in tracks) > 0.2
