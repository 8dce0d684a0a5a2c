"""The character language model task: learning, generation, evaluation, files."""

import math
import os

import numpy as np
import pytest

import rnnkit
from rnnkit.errors import CheckpointError, DataNote, RnnkitError
from rnnkit.tasks.lm import CharLanguageModel

TEXT = "the cat sat on the mat. " * 100
SMALL = dict(cell="lstm", hidden_size=32, num_layers=1, embedding_dim=8, seq_len=24, batch_size=8, seed=0)


@pytest.fixture(scope="module")
def lm():
    return CharLanguageModel(**SMALL).fit(TEXT, epochs=5, lr=1e-2)


def test_learns_repetitive_text_below_half_a_bit_per_char(lm):
    assert rnnkit.CharLanguageModel is CharLanguageModel
    res = lm.evaluate("the cat sat on the mat. " * 10)
    assert res["chars"] == 239
    assert res["bits_per_char"] < 0.5
    assert math.isclose(res["bits_per_char"], res["nats_per_char"] / math.log(2))
    assert lm.score("the cat sat on the mat. " * 10) == -res["bits_per_char"]
    # an untrained model is near log2(|V|) bits per char: the training did the work
    untrained = CharLanguageModel(**SMALL).fit(TEXT, epochs=1, max_steps=1, lr=1e-6)
    assert untrained.evaluate("the cat sat on the mat. " * 10)["bits_per_char"] > 2.5
    assert lm.history_.stop_reason == "epochs" and lm.history_.best_val_loss < 0.5
    # a greedy continuation reproduces the pattern
    assert lm.greedy("the cat sat on the", 30) == " mat. the cat sat on the mat. "


def test_evaluate_equals_stepwise_next_char_probabilities(lm):
    text = "on the mat. the c"
    nll = 0.0
    for i in range(1, len(text)):
        p = lm.next_char_proba(text[:i])
        assert math.isclose(p.sum(), 1.0, rel_tol=1e-9)
        nll -= math.log(p[lm.chars.index(text[i])])
    for chunk in (3, 256):       # chunk boundaries carry the state exactly
        res = lm.evaluate(text, chunk=chunk)
        assert res["chars"] == len(text) - 1
        assert math.isclose(res["nats_per_char"], nll / (len(text) - 1), rel_tol=1e-5)


def test_samples_have_the_length_and_known_characters(lm):
    for kw in ({}, {"temperature": 1.5}, {"top_k": 3}, {"top_p": 0.9}, {"temperature": 0.7, "top_p": 0.5}):
        s = lm.sample("the ", 57, seed=1, **kw)
        assert len(s) == 57 and set(s) <= set(lm.chars)
    s = lm.sample(None, 20, seed=2)          # no prompt: first character from the text's frequencies
    assert len(s) == 20 and set(s) <= set(lm.chars)
    assert lm.sample("the ", 40, seed=3) == lm.sample("the ", 40, seed=3)
    # a high temperature and different seeds give different samples
    assert len({lm.sample("the ", 40, temperature=3.0, seed=s) for s in range(4)}) > 1


def test_low_temperature_top_k_one_and_beam_one_equal_greedy(lm):
    for prompt in ("the ", "mat", None):
        g = lm.greedy(prompt, 35)
        assert len(g) == 35
        assert lm.sample(prompt, 35, temperature=1e-6, seed=0) == g
        assert lm.sample(prompt, 35, temperature=0.0) == g
        assert lm.sample(prompt, 35, top_k=1, seed=5) == g
        assert lm.beam(prompt, 35, width=1) == g
    b = lm.beam("the ", 24, width=4)
    assert len(b) == 24 and set(b) <= set(lm.chars)

    # the beam's continuation is at least as likely as greedy's
    def logp(prompt, cont):
        return sum(math.log(lm.next_char_proba(prompt + cont[:i])[lm.chars.index(cont[i])])
                   for i in range(len(cont)))

    assert logp("the ", b) >= logp("the ", lm.greedy("the ", 24)) - 1e-9


def test_save_load_round_trip(lm, tmp_path):
    d = lm.save(tmp_path / "lm")
    assert sorted(os.listdir(d)) == ["config.json", "model.npz"]
    back = CharLanguageModel.load(d)
    assert back.get_params() == lm.get_params() and back.chars == lm.chars
    np.testing.assert_array_equal(back.next_char_proba("the c"), lm.next_char_proba("the c"))
    assert back.sample("the ", 60, seed=11) == lm.sample("the ", 60, seed=11)
    assert back.sample(None, 30, seed=4, top_p=0.8) == lm.sample(None, 30, seed=4, top_p=0.8)
    assert back.evaluate(TEXT[:200]) == lm.evaluate(TEXT[:200])
    assert back.beam("sat", 10, width=3) == lm.beam("sat", 10, width=3)


def test_unseen_characters_are_named_and_left_out(lm, tmp_path):
    # a prompt reads as if its unseen characters were not there
    with pytest.warns(DataNote, match=r"prompt: 3 characters never seen in training left out .*: "
                                      r"'Z' \(2×\), 'q' \(1×\)"):
        assert lm.sample("the qZZ", 5, seed=3) == lm.sample("the ", 5, seed=3)
    with pytest.warns(DataNote, match=r"text: 1 character never seen in training left out .*: '!' \(1×\)"):
        res = lm.evaluate("the cat!")
    assert res["unseen_chars"] == 1 and res["chars"] == 6
    assert res["bits_per_char"] == lm.evaluate("the cat")["bits_per_char"]
    with pytest.warns(DataNote), pytest.raises(RnnkitError, match=r"has 1 character\(s\) the model can read"):
        lm.evaluate("!!t")
    with pytest.raises(RnnkitError, match="not trained yet"):
        CharLanguageModel().sample("a", 3)
    # with unknown_char, unseen characters read as that symbol
    u = CharLanguageModel(**dict(SMALL, hidden_size=8), unknown_char="?").fit(TEXT[:400], epochs=1)
    assert "?" in u.chars
    assert u.evaluate("the dog!")["chars"] == 7
    assert len(u.sample("dog", 5, seed=0)) == 5
    # a checkpoint of something else is refused
    from rnnkit import io as rkio
    rkio.save_checkpoint(tmp_path / "other", lm.model_.config(), lm.model_.state_dict(), None, meta={})
    with pytest.raises(CheckpointError, match="not a character language model"):
        CharLanguageModel.load(tmp_path / "other")


def test_argument_errors():
    with pytest.raises(ValueError, match="cell must be one of"):
        CharLanguageModel(cell="lst")
    with pytest.raises(TypeError, match="text must be a str"):
        CharLanguageModel(**SMALL).fit(["abc"])
    with pytest.raises(ValueError, match="temperature"):
        CharLanguageModel(**SMALL).fit(TEXT[:300], epochs=1).sample("the", 5, temperature=-1)
    with pytest.raises(ValueError, match="resume=True needs the out_dir"):
        CharLanguageModel(**SMALL).fit(TEXT, resume=True)


def test_out_dir_callback_and_resume(tmp_path):
    tiny = dict(SMALL, hidden_size=8, seq_len=12)
    text = TEXT[:600]
    seen = []
    full = CharLanguageModel(**tiny).fit(text, epochs=2, out_dir=tmp_path / "full",
                                         callback=lambda m, info: seen.append(info))
    assert [i["epoch"] for i in seen] == [1, 2]
    assert all(i["val_bits_per_char"] == pytest.approx(i["val_loss"] / math.log(2)) for i in seen)
    assert os.path.isfile(tmp_path / "full" / "train" / "metrics.jsonl")
    loaded = CharLanguageModel.load(tmp_path / "full")
    np.testing.assert_array_equal(loaded.next_char_proba("the"), full.next_char_proba("the"))
    # one epoch, then resume to two: the same model as two epochs in one go
    CharLanguageModel(**tiny).fit(text, epochs=1, out_dir=tmp_path / "split")
    resumed = CharLanguageModel(**tiny).fit(text, epochs=2, out_dir=tmp_path / "split", resume=True)
    assert resumed.history_.step == full.history_.step
    np.testing.assert_array_equal(resumed.next_char_proba("the c"), full.next_char_proba("the c"))


def test_overlapping_tbptt_windows_and_short_texts():
    # TBPTT(k1=8, k2=16): windows overlap, the state after 8 steps is carried
    lm = CharLanguageModel(**dict(SMALL, seq_len=16)).fit(TEXT[:1200], epochs=3, k1=8, lr=1e-2)
    vals = [v for _, v in lm.history_.val_loss()]
    assert len(vals) == 3 and vals[-1] < vals[0]
    # a text shorter than one batch of windows trains on fewer, shorter streams
    short = CharLanguageModel(**SMALL).fit("abcabcabcab", val_fraction=0, epochs=2)
    assert short.history_.step == 2 and short.history_.best_val_loss is None
    assert set(short.sample("a", 10, seed=0)) <= set("abc")
