"""Translation from files: attention, word tokens, BLEU/chrF beside a translation memory."""

import json
import os

import pytest

from rnnkit.data.examples import write_example
from rnnkit.data.text import read_pairs
from rnnkit.errors import RnnkitError
from rnnkit.tasks.seq2seq import Seq2Seq

pytest.importorskip("sacrebleu")


def test_example_translation_beats_the_translation_memory(tmp_path):
    d = write_example("translation", tmp_path / "data")
    s2s = Seq2Seq(hidden_size=32, embedding_dim=16, tokens="word", seed=0)
    src, tgt = read_pairs(os.path.join(d, "pairs_train.tsv"))
    test_src, test_tgt = read_pairs(os.path.join(d, "pairs_test.tsv"))
    s2s.fit(src, tgt, test_sources=test_src, test_targets=test_tgt, max_steps=120, lr=1e-2, beam_width=2,
            out_dir=tmp_path / "run")
    with open(tmp_path / "run" / "metrics.json", encoding="utf-8") as f:
        metrics = json.load(f)
    test, memory = metrics["test"], metrics["baseline"]["translation_memory"]
    assert set(test) >= {"bleu", "chrf", "exact_match"} and test["n"] == 60
    # the phrases recombine words: the memory rarely holds the exact phrase, the model composes it
    assert test["bleu"] > memory["bleu"] + 15 and test["exact_match"] > memory["exact_match"]
    html = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert "Example translations" in html and "translation memory" in html
    assert (tmp_path / "run" / "attention.png").stat().st_size > 1000
    loaded = Seq2Seq.load(tmp_path / "run")
    assert loaded.attention == "multiplicative" and loaded.tokens == "word"
    assert loaded.predict(["I see the red car"]) == s2s.predict(["I see the red car"])


def test_unseen_characters_in_validation_and_test_do_not_stop_a_run():
    src = ["one", "two", "three", "four", "five", "six"] * 4
    tgt = ["un", "deux", "trois", "quatre", "cinq", "six"] * 4
    s2s = Seq2Seq(hidden_size=8, embedding_dim=4, seed=0)
    # the validation target holds an en dash and the source a 'ß': neither is in training
    s2s.fit(src, tgt, val_sources=["seven", "groß"], val_targets=["sept – 7", "grand"], max_steps=3)
    assert s2s.val_scores_["n"] == 2
    out = s2s.evaluate(["eight ß"], ["huit – 8"])
    assert out["n"] == 1 and "bleu" in out


def test_pairs_file_errors(tmp_path):
    p = tmp_path / "pairs.tsv"
    p.write_text("hello\tbonjour\nno tab here\n", encoding="utf-8")
    with pytest.raises(RnnkitError, match=r"pairs.tsv, line 2: expected 'source<TAB>target'"):
        read_pairs(p)
    p.write_text("\tbonjour\n", encoding="utf-8")
    with pytest.raises(RnnkitError, match="line 1: the source"):
        read_pairs(p)
