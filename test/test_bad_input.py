"""Bad input and failures at the command line: nothing silent, nothing half-done, nothing lost."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest

from conftest import scene_frames
from tao_ros.cli import main


def write_clip(folder, frames) -> list:
    folder.mkdir(parents=True)
    paths = []
    for i, (image, *_) in enumerate(frames):
        paths.append(folder / f"{i:03d}.jpg")
        cv2.imwrite(str(paths[-1]), image)
    return paths


@pytest.fixture(scope="module")
def normal_model(tmp_path_factory):
    """A model fitted on a folder of two normal clips, next to which lies an empty stray folder."""
    root = tmp_path_factory.mktemp("normal")
    for seed in range(2):
        write_clip(root / "training" / f"{seed:02d}", scene_frames(seed, 60, anomalies=False))
    (root / "training" / ".ipynb_checkpoints").mkdir()  # a stray folder with no frames is ignored
    model = root / "model.npz"
    assert main(["fit", str(root / "training"), "--output", str(model)]) == 0
    return model


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_truncated_and_corrupt_frames_are_skipped_counted_and_leave_a_gap(normal_model, tmp_path, capsys, caplog):
    paths = write_clip(tmp_path / "test" / "01", scene_frames(9, 30, anomalies=True))
    paths[10].write_bytes(paths[10].read_bytes()[: paths[10].stat().st_size // 3])  # cut to a third
    paths[20].write_bytes(b"\xff\xd8 not really a jpeg \xff\xd9")
    assert main(["run", str(tmp_path / "test"), "--model", str(normal_model), "--output", str(tmp_path / "out")]) == 0
    assert "2 frame(s) skipped" in capsys.readouterr().err
    assert str(paths[10]) in caplog.text and "truncated JPEG" in caplog.text and str(paths[20]) in caplog.text
    frames = {int(row["frame"]) for row in read_rows(tmp_path / "out" / "01" / "objects.csv")}
    assert 10 not in frames and 20 not in frames  # gaps, not shifts
    assert {11, 21, 29} <= frames  # the clip went on, with the source's indices
    assert not list((tmp_path / "out").rglob("*.partial"))


def test_a_folder_with_nothing_in_it_says_what_was_looked_for(tmp_path, capsys):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    assert main(["fit", str(tmp_path / "empty"), "--output", str(tmp_path / "m.npz")]) == 2
    err = capsys.readouterr().err
    assert "holds no frames" in err and ".jpg" in err and "rosbag2" in err


@pytest.mark.parametrize("command", ["fit", "run", "synth"])
def test_an_output_that_cannot_be_written_fails_before_any_work(command, normal_model, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    target = blocker / "out"  # a folder cannot be made inside a file, even by root
    source = tmp_path / "clip"
    write_clip(source, scene_frames(1, 3, anomalies=False))
    argv = {"fit": ["fit", str(source), "--output", str(target / "m.npz")],
            "run": ["run", str(source), "--model", str(normal_model), "--output", str(target)],
            "synth": ["synth", "--output", str(target)]}[command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write to" in err and "Traceback" not in err


def test_an_interrupted_run_leaves_no_complete_looking_file_and_resumes(normal_model, tmp_path, capsys, monkeypatch):
    from tao_ros.core.pipeline import AnomalyPipeline

    for name in ("01", "02"):
        write_clip(tmp_path / "test" / name, scene_frames(int(name), 12, anomalies=True))
    original, calls = AnomalyPipeline.process, []

    def interrupt_in_second_clip(self, frame):
        calls.append(frame.index)
        if len(calls) == 18:
            raise KeyboardInterrupt
        return original(self, frame)

    monkeypatch.setattr(AnomalyPipeline, "process", interrupt_in_second_clip)
    out = tmp_path / "out"
    assert main(["run", str(tmp_path / "test"), "--model", str(normal_model), "--output", str(out)]) == 130
    err = capsys.readouterr().err
    assert "complete clips under" in err and ": 01;" in err and "--resume" in err
    assert (out / "01" / "objects.csv").is_file() and not (out / "02" / "objects.csv").exists()
    monkeypatch.setattr(AnomalyPipeline, "process", original)
    first = (out / "01" / "objects.csv").stat().st_mtime_ns
    assert main(["run", str(tmp_path / "test"), "--model", str(normal_model), "--output", str(out), "--resume"]) == 0
    assert (out / "01" / "objects.csv").stat().st_mtime_ns == first  # kept, not redone
    assert {int(r["frame"]) for r in read_rows(out / "02" / "objects.csv")} <= set(range(12))
    assert len(read_rows(out / "02" / "objects.csv")) > 0


def test_a_pickled_npz_is_refused_without_suggesting_to_unpickle(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    np.savez(bad, weights=np.array([{"code": 1}], dtype=object))
    source = tmp_path / "clip"
    write_clip(source, scene_frames(1, 3, anomalies=False))
    assert main(["run", str(source), "--model", str(bad), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "not a tao_ros model file" in err and "pickled" in err and "allow_pickle" not in err


@pytest.mark.parametrize("error, code, words", [(RuntimeError("plugin blew up"), 1, "unexpected RuntimeError"),
                                                (PermissionError(13, "Permission denied"), 3, "file system error")])
def test_errors_at_the_edge_are_one_line_with_a_documented_exit_code(error, code, words, monkeypatch, capsys):
    import tao_ros.cli as cli

    def failing(args):
        raise error

    monkeypatch.setattr(cli, "cmd_plugins", failing)
    assert main(["plugins"]) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and "Traceback" not in err
    with pytest.raises(type(error)):
        main(["--debug", "plugins"])
