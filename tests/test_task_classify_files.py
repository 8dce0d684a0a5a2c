"""Classification from files: text, DNA, audio folders and multichannel sensor series."""

import os

import pytest

from rnnkit.data.examples import write_example
from rnnkit.errors import DataNote, RnnkitError
from rnnkit.tasks.classify import SequenceClassifier
from rnnkit.tasks.classify_inputs import detect_input


def test_detect_input(tmp_path):
    d = write_example("intent", tmp_path / "intent")
    assert detect_input(os.path.join(d, "train.tsv")) == "text"
    s = write_example("speech", tmp_path / "speech")
    assert detect_input(os.path.join(s, "train")) == "audio"
    a = write_example("activity", tmp_path / "act")
    assert detect_input(os.path.join(a, "train.csv")) == "series"
    ucr = tmp_path / "u.tsv"
    ucr.write_text("1\t0.5\t0.1\n2\t0.3\t0.2\n")
    assert detect_input(ucr) == "series"
    with pytest.raises(RnnkitError, match="not found"):
        detect_input(tmp_path / "missing.tsv")


def test_intent_text_file(tmp_path):
    d = write_example("intent", tmp_path / "data")
    clf = SequenceClassifier(hidden_size=16, seed=0)
    clf.fit_files(os.path.join(d, "train.tsv"), os.path.join(d, "test.tsv"), epochs=15, out_dir=tmp_path / "run")
    assert clf.input_ == "text" and clf.vocab_.kind == "word"
    assert clf.test_evaluation_["accuracy"] >= 0.9
    loaded = SequenceClassifier.load(tmp_path / "run")
    assert loaded.evaluate_file(os.path.join(d, "test.tsv"))["accuracy"] == clf.test_evaluation_["accuracy"]
    assert loaded.predict(["play some polka please"]) == ["music"]        # 'polka' is unknown


def test_speech_folders(tmp_path):
    d = write_example("speech", tmp_path / "data")
    clf = SequenceClassifier(hidden_size=16, seed=0)
    with pytest.warns(DataNote, match=r"(train: 30|test: 12) clips in 3 label folders \(ah, ee, oo\)"):
        clf.fit_files(os.path.join(d, "train"), os.path.join(d, "test"), features="logmel", augment=1, epochs=15,
                      out_dir=tmp_path / "run")
    assert clf.input_ == "audio" and clf.audio_ == {"features": "logmel"} and clf.augment_ == 1
    assert clf.n_features_ == 40
    assert clf.test_evaluation_["accuracy"] >= 0.9
    loaded = SequenceClassifier.load(tmp_path / "run")
    assert loaded.audio_ == {"features": "logmel"}
    with pytest.warns(DataNote, match=r"test: 12 clips in 3 label folders"):
        assert loaded.evaluate_file(os.path.join(d, "test"))["accuracy"] == clf.test_evaluation_["accuracy"]


def test_activity_multichannel_csv(tmp_path):
    d = write_example("activity", tmp_path / "data")
    clf = SequenceClassifier(hidden_size=16, seed=0)
    clf.fit_files(os.path.join(d, "train.csv"), os.path.join(d, "test.csv"), epochs=60)
    assert clf.n_features_ == 3 and sorted(clf.classes_) == ["rest", "run", "walk"]
    assert clf.test_evaluation_["accuracy"] >= 0.9


def test_training_batches_vary_by_kind_of_input(tmp_path):
    """Audio gets SpecAugment masks, word tokens word dropout; characters and series none."""
    import numpy as np

    from rnnkit.data.audio import spec_augment
    from rnnkit.tasks.classify_inputs import batch_variation

    d = write_example("speech", tmp_path / "speech")
    clf = SequenceClassifier(hidden_size=8, seed=0)
    with pytest.warns(DataNote, match="clips in 3 label folders"):
        clf.fit_files(os.path.join(d, "train"), augment=0, max_steps=2)
    assert batch_variation(clf) is spec_augment
    clf.spec_augment_ = False
    assert batch_variation(clf) is None
    words = SequenceClassifier(hidden_size=8, seed=0).fit(["play jazz now", "rain in oslo"] * 4, ["m", "w"] * 4,
                                                          max_steps=2)
    vary = batch_variation(words)
    x = np.full((40, 5), 3)
    out = vary(x, np.array([40, 40, 40, 40, 2]), np.random.default_rng(0))
    assert 0 < (out[:, :4] == 0).mean() < 0.25 and (out[2:, 4] == 3).all()
    chars = SequenceClassifier(hidden_size=8, seed=0).fit(["ACGT", "TTGA"] * 4, ["a", "b"] * 4, max_steps=2)
    series = SequenceClassifier(hidden_size=8, seed=0).fit([np.arange(5.0), -np.arange(5.0)] * 4, [0, 1] * 4,
                                                           max_steps=2)
    assert batch_variation(chars) is None and batch_variation(series) is None


def test_audio_holds_out_validation_clips_only_when_there_are_enough():
    """Under 40 validation clips nothing is held out (all clips train); from 40 on, a
    stratified part validates."""
    import numpy as np

    from rnnkit.tasks.classify_inputs import fit_audio

    rng = np.random.default_rng(0)
    t = np.arange(400) / 8000.0

    def clips(n):
        return ([(np.sin(2 * np.pi * f * t) + 0.05 * rng.standard_normal(400), 8000) for f in (300, 900, 2000)
                 for _ in range(n)], [k for k in "abc" for _ in range(n)])

    for n, held in ((10, 0), (100, 45)):
        X, y = clips(n)
        clf = SequenceClassifier(hidden_size=4, seed=0)
        clf.audio_ = {"features": "logmel"}
        clf._files = ("audio", clf.audio_)          # what fit_files sets before fit_audio
        fit_audio(clf, X, y, 0, (None, None), {"max_steps": 1})
        assert (clf.val_evaluation_ is None) == (held == 0)
        if held:
            assert sum(clf.val_evaluation_["support"]) == held


def test_speech_commands_own_split_lists(tmp_path):
    import random
    import shutil

    d = write_example("speech", tmp_path / "ex")
    root = tmp_path / "sc"                       # Speech Commands: every clip under its word, and two lists
    for split in ("train", "test"):
        for word in os.listdir(os.path.join(d, split)):
            os.makedirs(root / word, exist_ok=True)
            for f in os.listdir(os.path.join(d, split, word)):
                shutil.copy(os.path.join(d, split, word, f), root / word / f"{split}_{f}")
    clips = sorted(os.path.relpath(os.path.join(p, f), root) for p, _, fs in os.walk(root) for f in fs)
    random.Random(0).shuffle(clips)
    (root / "testing_list.txt").write_text("\n".join(clips[:10]) + "\n")
    (root / "validation_list.txt").write_text("\n".join(clips[10:22]) + "\n")
    clf = SequenceClassifier(hidden_size=8, seed=0)
    with pytest.warns(DataNote) as said:
        clf.fit_files(root, augment=0, max_steps=3)
    assert any(str(w.message).endswith("split by its own lists, as Speech Commands is: 20 clips train, 12 validate "
                                       "(validation_list.txt), 10 test (testing_list.txt)") for w in said)
    assert sum(clf.test_evaluation_["support"]) == 10
    (root / "testing_list.txt").write_text("yes/missing.wav\n")
    with pytest.raises(RnnkitError, match=r"testing_list.txt, line 1: 'yes/missing.wav' is not a clip of"), \
            pytest.warns(DataNote, match="42 clips in 3 label folders"):
        SequenceClassifier(hidden_size=8).fit_files(root, augment=0, max_steps=1)
