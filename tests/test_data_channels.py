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
