"""Sensor recordings stored one file per channel (the UCI HAR layout)."""

import os

import numpy as np
import pytest

from rnnkit.cli import main
from rnnkit.data.channels import is_channel_folder, read_channel_folder
from rnnkit.errors import DataNote, RnnkitError

CHANNELS = ("body_acc_x", "body_acc_y", "total_acc_z")


def write_har(root, split, signals, labels, names=("WALKING", "SITTING")):
    """A UCI HAR folder: signals (n, T, C) as one whitespace file per channel, labels 1-based ids."""
    folder = root / split / "Inertial Signals"
    folder.mkdir(parents=True)
    (root / "activity_labels.txt").write_text("".join(f"{i + 1} {a}\n" for i, a in enumerate(names)))
    (root / split / f"y_{split}.txt").write_text("".join(f"{v}\n" for v in labels))
    (root / split / f"subject_{split}.txt").write_text("".join("1\n" for _ in labels))
    (root / split / f"X_{split}.txt").write_text("".join(" 1.0 2.0 3.0\n" for _ in labels))
    for c, name in enumerate(CHANNELS):
        rows = ["  " + "  ".join(f"{v: .7e}" for v in rec[:, c]) for rec in signals]
        (folder / f"{name}_{split}.txt").write_text("\n".join(rows) + "\n")
    return root / split


def test_reads_channels_labels_and_their_names(tmp_path):
    rng = np.random.default_rng(0)
    signals = rng.standard_normal((5, 16, 3))
    split = write_har(tmp_path, "train", signals, [1, 2, 2, 1, 2])
    assert is_channel_folder(split) and not is_channel_folder(tmp_path)
    with pytest.warns(DataNote, match=r"5 recordings of 16 steps × 3 channels, one file each \(body_acc_x, "
                                      r"body_acc_y, total_acc_z\); labels from y_train.txt"):
        X, y, names = read_channel_folder(split)
    np.testing.assert_allclose(X, signals, rtol=1e-7)
    assert y == ["WALKING", "SITTING", "SITTING", "WALKING", "SITTING"]
    assert names == list(CHANNELS)


def test_channel_files_that_disagree_are_errors_naming_the_file(tmp_path):
    split = write_har(tmp_path, "train", np.zeros((4, 8, 3)), [1, 2, 1, 2])
    short = split / "Inertial Signals" / "body_acc_y_train.txt"
    short.write_text("0 0 0 0 0 0 0 0\n" * 3)
    with pytest.raises(RnnkitError, match=r"body_acc_y_train.txt: 3 rows of 8 values; body_acc_x_train.txt has "
                                          r"4 rows of 8"):
        read_channel_folder(split)
    short.write_text("0 0 0 0 0 0 0 0\n0 0 x 0 0 0 0 0\n" + "0 0 0 0 0 0 0 0\n" * 2)
    with pytest.raises(RnnkitError, match=r"body_acc_y_train.txt: line 2: a value that is not a number"):
        read_channel_folder(split)
    short.write_text("0 0 0 0 0 0 0 0\n" * 4)
    (split / "y_train.txt").write_text("1\n2\n")
    with pytest.raises(RnnkitError, match=r"y_train.txt: 2 labels for 4 recordings"):
        read_channel_folder(split)


def test_classify_a_har_folder_from_the_command_line(tmp_path):
    rng = np.random.default_rng(1)
    t = np.arange(32) / 32.0

    def recordings(labels):       # walking oscillates, sitting is still
        return np.stack([np.stack([np.sin(2 * np.pi * 3 * t + rng.uniform(0, 6)) * (v == 1)
                                   + 0.1 * rng.standard_normal(32) for _ in CHANNELS], 1) for v in labels])

    train_y, test_y = rng.integers(1, 3, 60), rng.integers(1, 3, 20)
    train = write_har(tmp_path / "HAR", "train", recordings(train_y), train_y)
    test = write_har(tmp_path / "HAR", "test", recordings(test_y), test_y)
    out = tmp_path / "run"
    assert main(["classify", str(train), "--test", str(test), "--out", str(out), "--hidden", "8",
                 "--epochs", "30", "--kernels", "off", "--quiet"]) == 0
    import json

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["classes"] == ["SITTING", "WALKING"] and metrics["test"]["accuracy"] >= 0.9
    assert main(["evaluate", str(out), str(test)]) == 0
    assert os.path.isfile(out / "predictions.csv")


# -- recorded streams and windows ------------------------------------------------------

def write_stream(path, users, rng, steps=(60, 90)):
    """user,activity,timestamp,x,y,z: each user walks (an oscillation) then sits (still)."""
    rows = ["user,activity,timestamp,x,y,z"]
    ts = 0
    for u in users:
        for act in ("walking", "sitting"):
            for k in range(int(rng.integers(*steps))):
                wave = np.sin(2 * np.pi * k / 8) if act == "walking" else 0.0
                x, y, z = wave + 0.1 * rng.standard_normal(3)
                rows.append(f"{u},{act},{ts},{x:.4f},{y:.4f},{z:.4f}")
                ts += 50
    path.write_text("\n".join(rows) + "\n")


def test_a_stream_is_cases_of_runs_and_windows_cut_them(tmp_path):
    from rnnkit.data.sequences import cut_windows
    from rnnkit.data.ucr import read_labeled_sequences

    rng = np.random.default_rng(0)
    write_stream(tmp_path / "s.csv", [7, 8], rng)
    X, y = read_labeled_sequences(tmp_path / "s.csv")
    assert y == ["walking", "sitting", "walking", "sitting"]            # a case per run of user and activity
    assert all(a.shape[1] == 3 and 60 <= len(a) < 90 for a in X)          # user and timestamp are not channels
    w, wy, source = cut_windows([np.arange(13), np.arange(12), np.arange(2)], ["a", "b", "c"], 5)
    assert [list(a) for a in w] == [list(range(5)), list(range(5, 10)), [10, 11, 12],
                                    list(range(5)), list(range(5, 10)), [0, 1]]
    assert wy == ["a", "a", "a", "b", "b", "c"] and source.tolist() == [0, 0, 0, 1, 1, 2]
    with pytest.raises(ValueError, match="window"):
        cut_windows(X, y, 0)


def test_a_stream_without_a_header_as_wisdm_ships_it(tmp_path):
    """WISDM's raw file: no header, records ending in ';' (one line without it, two on one
    line, a blank last value), a subject, the label, a time and three channels."""
    from rnnkit.data.ucr import read_labeled_sequences

    rng = np.random.default_rng(2)
    write_stream(tmp_path / "s.csv", [33, 34], rng)
    lines = [line + ";" for line in (tmp_path / "s.csv").read_text().splitlines()[1:]]
    lines[3] = lines[3].rstrip(";")
    lines[5:7] = [lines[5] + lines[6]]
    lines[9] = lines[9].rsplit(",", 1)[0] + ",;"
    raw = tmp_path / "WISDM_ar_v1.1_raw.txt"
    raw.write_text("\n".join(lines) + "\n")
    with pytest.warns(DataNote, match="no header; read as a recorded stream, column 1 the subject, column 2 the "
                                      "label, column 3 the time, 3 channels"):
        X, y = read_labeled_sequences(raw)
    X_ref, y_ref = read_labeled_sequences(tmp_path / "s.csv")
    assert y == y_ref == ["walking", "sitting", "walking", "sitting"]
    assert [a.shape for a in X] == [a.shape for a in X_ref]
    fixed = X_ref[0].copy()
    fixed[10, 2] = (fixed[9, 2] + fixed[11, 2]) / 2           # the blank value (record 10), interpolated
    np.testing.assert_allclose(X[0], fixed)
    for a, b in zip(X[1:], X_ref[1:]):
        np.testing.assert_array_equal(a, b)
    # numbers in every column, or two text columns, are not a stream
    (tmp_path / "plain.txt").write_text("".join(f"{i},{i + 1},0.5,1.5\n" for i in range(30)))
    (tmp_path / "two.txt").write_text("".join(f"a,b,{i},0.5,1.5\n" for i in range(30)))
    (tmp_path / "few.txt").write_text("walk,1.0,2.0,3.0\nrun,2.0,1.0,3.5\n")
    from rnnkit.data.ucr import _headerless_stream_names

    assert _headerless_stream_names(tmp_path / "plain.txt") is None
    assert _headerless_stream_names(tmp_path / "two.txt") is None
    assert _headerless_stream_names(tmp_path / "few.txt") is None


def test_classify_a_stream_in_windows_from_the_command_line(tmp_path, capsys):
    import json

    rng = np.random.default_rng(1)
    write_stream(tmp_path / "train.csv", range(1, 7), rng)
    write_stream(tmp_path / "test.csv", range(7, 9), rng)
    out = tmp_path / "run"
    assert main(["classify", str(tmp_path / "train.csv"), "--test", str(tmp_path / "test.csv"), "--window", "20",
                 "--out", str(out), "--hidden", "8", "--epochs", "20", "--kernels", "off"]) == 0
    assert "train.csv: 12 series cut into" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert config["meta"]["state"]["window"] == 20
    metrics = json.loads((out / "metrics.json").read_text())
    n_test = sum(metrics["test"]["support"])
    assert n_test >= 4 * 3 and metrics["test"]["accuracy"] >= 0.9        # windows of the 4 test runs
    assert main(["evaluate", str(out), str(tmp_path / "test.csv")]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == metrics["test"]["accuracy"]
    assert main(["classify", str(tmp_path / "train.csv"), "--window", "0", "--out", str(tmp_path / "x")]) == 2


def test_long_recordings_without_window_get_a_line_suggesting_it(recwarn):
    from rnnkit.tasks.classify import _long_recordings_note

    long = [np.zeros((n, 3)) for n in (1200, 1500, 900)]
    with pytest.warns(DataNote, match=r"s\.csv: 3 series of 900–1,500 steps \(median 1,200\), each one example; "
                                      r"if they are recordings, --window STEPS cuts them"):
        _long_recordings_note("s.csv", long)
    recwarn.clear()
    _long_recordings_note("s.csv", [np.zeros((2000, 1))] * 3)       # an archive's equal lengths
    _long_recordings_note("s.csv", [np.zeros((n, 3)) for n in (100, 140, 120)])
    assert not [w for w in recwarn if issubclass(w.category, DataNote)]


def test_a_folder_of_label_folders_of_recordings(tmp_path, capsys):
    """MotionSense's layout: DIR/<activity>/sub_1.csv, a row per step; the unnamed first
    column (a data frame's index) is not a channel."""
    import json

    from rnnkit.data.channels import is_recording_folder, read_recording_folder
    from rnnkit.data.labeled_text import is_text_folder
    from rnnkit.tasks.classify_inputs import detect_input

    rng = np.random.default_rng(4)

    def write(root, n):
        for act, f in (("walk", 2.0), ("sit", 0.0)):
            (root / act).mkdir(parents=True)
            for k in range(n):
                t = np.arange(int(rng.integers(40, 60))) / 20
                rows = [",roll,pitch"] + [f"{i},{np.sin(2 * np.pi * f * s) + rng.normal(0, 0.05):.4f},{s:.3f}"
                                          for i, s in enumerate(t)]
                (root / act / f"sub_{k}.csv").write_text("\n".join(rows) + "\n")

    write(tmp_path / "train", 6)
    write(tmp_path / "test", 2)
    assert is_recording_folder(tmp_path / "train") and not is_text_folder(tmp_path / "train")
    assert detect_input(tmp_path / "train") == "series"
    with pytest.warns(DataNote, match=r"12 recordings in 2 label folders, 2 channels \(roll, pitch\)"):
        X, y, files = read_recording_folder(tmp_path / "train")
    assert y.count("walk") == 6 and all(x.shape[1] == 2 for x in X) and files[0].endswith("sub_0.csv")
    out = tmp_path / "run"
    assert main(["classify", str(tmp_path / "train"), "--test", str(tmp_path / "test"), "--out", str(out),
                 "--epochs", "1", "--ensemble", "1", "--kernels", "off", "--quiet"]) == 0
    assert main(["evaluate", str(out), str(tmp_path / "test")]) == 0
    assert sum(json.loads(capsys.readouterr().out)["support"]) == 4
    # a recording with other channels is one error naming it
    (tmp_path / "train" / "sit" / "sub_9.csv").write_text("roll,yaw\n0.1,0.2\n0.3,0.4\n")
    with pytest.raises(RnnkitError, match=r"sub_9.csv: channels roll, yaw; .* has roll, pitch"):
        read_recording_folder(tmp_path / "train")
