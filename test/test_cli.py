"""The command line: contract, fast start, fit/run on every kind of source."""

from __future__ import annotations

import csv
import subprocess
import sys

import cv2
import pytest

from conftest import scene_frames
from tao_ros.cli import main


def test_help_imports_no_heavy_library():
    code = ("import sys; from tao_ros.cli import build_parser; build_parser().format_help(); "
            "heavy = {'cv2', 'sklearn', 'torch', 'ultralytics', 'scipy', 'rosbags', 'matplotlib'} & set(sys.modules); "
            "print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("command", ["plugins", "fit", "run", "eval"])
def test_every_command_takes_config_and_documents_options(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    assert "--config" in text
    assert "default" in text or command == "plugins"


def test_plugins_lists_kinds_and_packages(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    for kind in ("detector:", "depth:", "feature:", "scorer:", "segmenter:"):
        assert kind in out
    assert "motion" in out and "[tao_ros]" in out


def write_clip_folder(folder, frames):
    folder.mkdir(parents=True)
    for t, (image, *_rest) in enumerate(frames):
        cv2.imwrite(str(folder / f"{t:03d}.png"), image)


@pytest.fixture(scope="module")
def training_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("training") / "frames"
    for seed in range(2):
        write_clip_folder(root / f"{seed + 1:02d}", scene_frames(seed, 60, anomalies=False))
    return root


def test_fit_then_run_on_clip_folders(training_root, tmp_path, capsys):
    model = tmp_path / "model.npz"
    assert main(["fit", str(training_root), "--output", str(model)]) == 0
    assert "fitted on 2 clip(s)" in capsys.readouterr().out
    test_root = tmp_path / "testing"
    write_clip_folder(test_root / "07", scene_frames(7, 30, anomalies=True))
    assert main(["run", str(test_root), "--model", str(model), "--output", str(tmp_path / "out")]) == 0
    with open(tmp_path / "out" / "07" / "objects.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["frame", "object_id", "x1", "y1", "x2", "y2", "score"]
    frames = {int(r[0]) for r in rows[1:]}
    assert frames and max(frames) <= 29 and min(frames) >= 0
    for row in rows[1:]:
        x1, y1, x2, y2 = map(int, row[2:6])
        assert 0 <= x1 < x2 <= 360 and 0 <= y1 < y2 <= 240
        float(row[6])


def test_fit_says_which_feature_described_too_few_normal_objects_to_score(training_root, tmp_path, capsys):
    model = tmp_path / "model.npz"
    assert main(["fit", str(training_root), "--output", str(model), "-p", "features=[speed, pose]",
                 "-p", "pose.min_height=1000"]) == 0
    out = capsys.readouterr().out
    assert "pose: 0 objects, too few: scores nothing" in out
    assert "speed: " in out and "speed: 0 objects" not in out


def test_run_on_a_video_file(training_root, tmp_path):
    model = tmp_path / "model.npz"
    main(["fit", str(training_root / "01"), "--output", str(model)])
    video = tmp_path / "walk.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (360, 240))
    for image, *_ in scene_frames(3, 20, anomalies=False):
        writer.write(image)
    writer.release()
    assert main(["run", str(video), "-m", str(model), "-o", str(tmp_path / "out")]) == 0
    with open(tmp_path / "out" / "walk" / "objects.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][:2] == ["frame", "object_id"]
    frames = {int(r[0]) for r in rows[1:]}
    assert max(frames) == 19 and len(frames) >= 10  # the video's frames were read, to the last (walkers in all)


def test_errors_are_one_clear_line(tmp_path, capsys):
    assert main(["run", str(tmp_path / "missing"), "-m", str(tmp_path / "m.npz"), "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "tao-ros run: error:" in err and "model file" in err
    config = tmp_path / "bad.yaml"
    config.write_text("detector: nope\n")
    assert main(["fit", str(tmp_path), "-o", str(tmp_path / "m.npz"), "--config", str(config)]) == 2
    assert "unknown detector 'nope'; available:" in capsys.readouterr().err


def test_clips_of_equal_names_in_two_folders_get_their_own_outputs_and_resume_tells_them_apart(training_root,
                                                                                             tmp_path, capsys, caplog):
    """'tao-ros run' on a/01 and b/01 wrote both to out/01 (one silently lost), and --resume skipped
    the second as complete."""
    model = tmp_path / "model.npz"
    main(["fit", str(training_root / "01"), "--output", str(model)])
    root = tmp_path / "cameras"
    write_clip_folder(root / "a" / "01", scene_frames(3, 12, anomalies=False))
    write_clip_folder(root / "b" / "01", scene_frames(4, 12, anomalies=True))
    out = tmp_path / "out"
    assert main(["run", str(root), "-m", str(model), "-o", str(out)]) == 0
    first, second = (out / "a" / "01" / "objects.csv").read_text(), (out / "b" / "01" / "objects.csv").read_text()
    assert first != second
    capsys.readouterr()
    assert main(["run", str(root / "b"), "-m", str(model), "-o", str(out / "a"), "--resume"]) == 2
    err = capsys.readouterr().err
    assert f"holds the outputs of {(root / 'a' / '01').resolve()}, not of {root / 'b' / '01'}" in err
    assert main(["run", str(root), "-m", str(model), "-o", str(out), "--resume"]) == 0
    assert caplog.text.count("complete from an earlier run") == 2  # the same source: complete clips are kept


@pytest.mark.parametrize("content, message", [
    ("text", "not a numpy .npz archive"),
    ("list metadata", "metadata is a JSON list, not an object"),
    ("no metadata", "no tao_ros metadata"),
    ("pickled", "it holds pickled objects"),
])
def test_every_kind_of_bad_model_file_is_one_true_line_and_exit_2(tmp_path, capsys, content, message):
    import numpy as np

    path = tmp_path / "model.npz"
    if content == "text":
        path.write_text("threshold: 3\n")
    elif content == "list metadata":
        np.savez(path, __metadata__=np.frombuffer(b"[1, 2]", np.uint8))
    elif content == "no metadata":
        np.savez(path, a=np.zeros(2))
    else:
        with open(path, "wb") as handle:
            np.savez(handle, a=np.array([{"x": 1}], dtype=object))
    clip = tmp_path / "clip"
    write_clip_folder(clip, scene_frames(3, 2, anomalies=False))
    assert main(["run", str(clip), "-m", str(path), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err and "tao-ros run: error:" in err
