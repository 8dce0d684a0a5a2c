"""The Seq2Seq task on the project's synthetic dates (human formats -> ISO 8601)."""

import json
import os

import numpy as np
import pytest

from conftest import assert_plots
from rnnkit import io as rkio
from rnnkit.data import date_dataset
from rnnkit.errors import CheckpointError, RnnkitError
from rnnkit.tasks.seq2seq import Seq2Seq, char_accuracy, exact_match

# Kept small so the test trains in seconds: two of the date formats ("dd.mm.yyyy" and
# "d Month yyyy") and the years 2000-2019; 800 training pairs (80 of them validate).
FORMATS = ["dd.mm.yyyy", "d Month yyyy"]


@pytest.fixture(scope="module")
def dates():
    return date_dataset(1000, seed=0, formats=FORMATS, start_year=2000, end_year=2019)


@pytest.fixture(scope="module")
def run(dates, tmp_path_factory):
    src, tgt = dates
    out = tmp_path_factory.mktemp("seq2seq_run")
    model = Seq2Seq(hidden_size=64, embedding_dim=16, seed=0)
    model.fit(src[:800], tgt[:800], epochs=30, lr=1e-2, out_dir=out)
    return model, out


def test_learns_dates_to_iso(run, dates):
    model, _ = run
    src, tgt = dates
    scores = model.evaluate(src[800:], tgt[800:])
    # stated thresholds on 200 held-out dates (a constant output scores 0 exact)
    assert scores["exact_match"] >= 0.75
    assert scores["char_accuracy"] >= 0.95
    assert scores["n"] == 200
    assert model.score(src[800:], tgt[800:]) == scores["exact_match"]
    assert model.score(src[800:], tgt[800:], metric="char_accuracy") == scores["char_accuracy"]
    assert set(model.target_vocab_.vocab[1:]) == set("0123456789-")


def test_beam_width_one_equals_greedy_and_wider_beams_decode(run, dates):
    model, _ = run
    src = dates[0][800:860]
    greedy = model.predict(src)
    assert model.beam_search(src, beam_width=1) == greedy
    wide, scores = model.beam_search(src[:10], beam_width=3, return_scores=True)
    assert model.predict(src[:10], beam_width=3) == wide
    assert all(isinstance(w, str) for w in wide) and np.all(np.isfinite(scores))


def test_run_directory_and_save_load_identical(run, dates, tmp_path):
    model, out = run
    for name in ("config.json", "model.npz", "train/metrics.jsonl", "metrics.json", "report.html"):
        assert os.path.isfile(os.path.join(out, name)), name
    assert_plots(out, "char_accuracy.png", "training.png")
    with open(os.path.join(out, "config.json")) as f:
        meta = json.load(f)["meta"]
    assert meta["task"] == "seq2seq" and meta["val_scores"]["n"] == 80
    html = open(os.path.join(out, "report.html"), encoding="utf-8").read()
    assert "Examples (errors first)" in html
    src = dates[0][800:]
    loaded = Seq2Seq.load(out)
    assert loaded.predict(src) == model.predict(src)
    assert loaded.beam_search(src[:5], beam_width=2) == model.beam_search(src[:5], beam_width=2)
    for a, b in zip(_flat(loaded.model_.encode(*_padded(loaded, src[:3]))),
                    _flat(model.model_.encode(*_padded(model, src[:3])))):
        np.testing.assert_array_equal(a, b)
    rkio.save_checkpoint(tmp_path, {"model": "x"}, {"w": np.zeros(1)}, None, meta={"task": "lm"})
    with pytest.raises(CheckpointError, match="was written by task 'lm', not 'seq2seq'"):
        Seq2Seq.load(tmp_path)


def _flat(state):
    """The arrays of a (nested) decoder state."""
    return [a for s in state for a in _flat(s)] if isinstance(state, tuple) else [state]


def _padded(model, sources):
    from rnnkit.data.sequences import pad_sequences

    return pad_sequences(model._encode_sources(sources, "test"))


def test_scores_by_hand():
    assert exact_match(["2020-01-01", "abc"], ["2020-01-01", "abd"]) == 0.5
    # 10 of 10, then 2 of max(3, 4) = 4 ("ab" matches, "c" != "x", the missing 4th counts wrong)
    assert char_accuracy(["2020-01-01", "abc"], ["2020-01-01", "abxy"]) == pytest.approx(12 / 14)
    acc = Seq2Seq.position_accuracy(["ab", "xbc"], ["abc", "abc"])
    np.testing.assert_allclose(acc, [0.5, 1.0, 0.5])


def test_clear_errors(run):
    model, _ = run
    # a character never seen in training reads as the unknown token: decoding goes on
    assert model.source_vocab_.encode("@").tolist() == [0]
    assert isinstance(model.predict(["3 March 2010@"])[0], str)
    with pytest.raises(TypeError, match="one str"):
        model.predict("3 March 2010")
    with pytest.raises(ValueError, match="2 sources but 1 targets"):
        Seq2Seq().fit(["a", "b"], ["x"])
    with pytest.raises(RnnkitError, match="not trained"):
        Seq2Seq().predict(["a"])
    with pytest.raises(ValueError, match="metric"):
        model.score(["1 May 2010"], ["2010-05-01"], metric="bleu")
