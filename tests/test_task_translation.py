"""Translation from files: attention, word tokens, BLEU/chrF beside a translation memory."""

import json
import os

import numpy as np
import pytest

from rnnkit.data.examples import write_example
from rnnkit.data.text import read_pairs
from rnnkit.errors import RnnkitError
from rnnkit.tasks.metrics import exact_match
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


def test_tokens_auto_reads_words_only_when_both_sides_are_spaced_text():
    from rnnkit.tasks.seq2seq import resolve_tokens

    assert resolve_tokens(["I am cold.", "We eat."], ["J'ai froid.", "Nous mangeons."], "auto") == "word"
    assert resolve_tokens(["3 March 2021", "Mar 3, 21"], ["2021-03-03", "2021-03-03"], "auto") == "char"
    assert resolve_tokens(["I am cold."], ["J'ai froid."], "char") == "char"
    s2s = Seq2Seq(hidden_size=8, embedding_dim=4, seed=0).fit(["a b", "c d"] * 3, ["x y", "z w"] * 3, max_steps=2)
    assert s2s.tokens == "auto" and s2s.tokens_ == "word" and s2s.target_vocab_.kind == "word"
    # the token kind's defaults: words smooth the labels (and drop), characters neither
    assert s2s.sizes_["label_smoothing"] == 0.1 and s2s.model_.label_smoothing == 0.1
    chars = Seq2Seq(hidden_size=8, embedding_dim=4, seed=0).fit(["3 Mar", "4 Apr"] * 3, ["03-03", "04-04"] * 3,
                                                                 max_steps=2)
    assert chars.tokens_ == "char" and chars.model_.label_smoothing == 0.0
    given = Seq2Seq(hidden_size=8, embedding_dim=4, seed=0, label_smoothing=0.2).fit(["a b", "c d"] * 3,
                                                                                      ["x y", "z w"] * 3, max_steps=2)
    assert given.model_.label_smoothing == 0.2 and given.get_params()["label_smoothing"] == 0.2


def _names(n, seed):
    """n distinct made-up names (consonant, vowel, two consonants), none with q, w, x or y."""
    rng, names = np.random.default_rng(seed), set()
    while len(names) < n:
        c, v = rng.choice(list("bdgklmnprstvz"), 3), rng.choice(list("aeiou"))
        names.add(c[0].upper() + v + c[1] + c[2])
    return sorted(names)


def test_an_unseen_word_is_copied_from_the_source_word_it_attends_to():
    # every name occurs once: it is the unknown word on both sides, and the decoder learns
    # to write the unknown token where the source has it; the output then copies the name
    names = _names(240, 0)
    src = [f"I see {n} today" if i % 2 else f"{n} is here" for i, n in enumerate(names)]
    tgt = [f"je vois {n} aujourd'hui" if i % 2 else f"{n} est ici" for i, n in enumerate(names)]
    s2s = Seq2Seq(cell="gru", hidden_size=32, embedding_dim=16, seed=0)
    s2s.fit(src, tgt, max_steps=150, lr=1e-2, val_fraction=0.0)
    assert s2s.tokens_ == "word" and s2s.target_vocab_.encode("Qwuxx").tolist() == [0]
    assert s2s.predict(["I see Qwuxx today", "Zyxo is here"]) == ["je vois Qwuxx aujourd'hui", "Zyxo est ici"]
    assert s2s.predict(["Zyxo is here"], beam_width=3) == ["Zyxo est ici"]


def _reverse_pairs(n, seed):
    rng = np.random.default_rng(seed)
    src = ["".join(rng.choice(list("abcdef"), rng.integers(3, 7))) for _ in range(n)]
    return src, [s[::-1] for s in src]


def test_beam_search_outputs_are_at_least_as_likely_as_greedy_ones():
    from rnnkit.data.sequences import pad_sequences

    src, tgt = _reverse_pairs(400, 0)
    s2s = Seq2Seq(cell="gru", hidden_size=32, embedding_dim=16, seed=0)
    s2s.fit(src, tgt, max_steps=150, lr=1e-2, val_fraction=0.0)
    test_src, test_tgt = _reverse_pairs(60, 1)
    greedy = s2s.predict(test_src)
    beam, beam_scores = s2s.beam_search(test_src, beam_width=4, return_scores=True)
    # the model's mean log-probability per token (log p / len, length penalty 1) of the
    # greedy outputs, each scored alone: -(the teacher-forced loss)
    greedy_scores = []
    for s, g in zip(test_src, greedy):
        x, lengths = pad_sequences(s2s._encode_sources([s], "test"))
        y, _ = pad_sequences(s2s._encode_targets([g], "test"))
        s2s.model_.eval()
        greedy_scores.append(-float(s2s.model_.loss({"x": x, "lengths": lengths, "y": y})[0]))
    assert np.all(np.asarray(beam_scores) >= np.asarray(greedy_scores) - 1e-6)
    assert exact_match(beam, test_tgt) >= exact_match(greedy, test_tgt) > 0.3


@pytest.mark.parametrize("width", [1, 3])
def test_batched_beam_search_decodes_each_source_as_alone(width):
    from rnnkit.models import AttentionEncoderDecoder

    m = AttentionEncoderDecoder(tgt_vocab_size=9, src_vocab_size=7, hidden_size=16, embedding_dim=8, cell="gru",
                                attention="multiplicative", dtype="float64", seed=3)
    x = np.random.default_rng(0).integers(0, 7, (6, 5))
    lengths = np.array([6, 3, 5, 1, 4])
    out, scores = m.beam_search(x, lengths, width=width, max_len=8, return_scores=True)
    for b in range(5):
        one, score = m.beam_search(x[:lengths[b], [b]], lengths[[b]], width=width, max_len=8, return_scores=True)
        assert one == [out[b]] and score[0] == pytest.approx(scores[b], abs=1e-9)
    if width == 1:
        assert out == m.greedy(x, lengths, max_len=8)


def test_a_timed_run_keeps_time_to_decode_every_test_pair(tmp_path):
    src, tgt = _reverse_pairs(200, 2)
    test_src, test_tgt = _reverse_pairs(150, 3)
    # no validation and no attention map: the report keeps little of the time (rnnkit.deadline)
    s2s = Seq2Seq(cell="gru", hidden_size=16, embedding_dim=8, attention=None, seed=0)
    s2s.fit(src, tgt, test_sources=test_src, test_targets=test_tgt, time_limit=8.0, val_fraction=0.0,
            out_dir=tmp_path / "run")
    with open(tmp_path / "run" / "metrics.json", encoding="utf-8") as f:
        test = json.load(f)["test"]
    # all of them as a rule; a load spike on a shared machine may cut the last chunk
    assert test["of"] == 150 and test["n"] >= 100 and set(test) >= {"bleu", "chrf", "exact_match", "beam_width"}


def test_the_weights_kept_are_those_whose_validation_outputs_score_best():
    from rnnkit.tasks.seq2seq import output_score

    src, tgt = _reverse_pairs(300, 4)
    s2s = Seq2Seq(cell="gru", hidden_size=16, embedding_dim=8, seed=0)
    s2s.fit(src, tgt, val_sources=src[:40], val_targets=tgt[:40], max_steps=60, lr=1e-2)
    steps, scores = zip(*s2s.output_scores_)
    assert len(steps) >= 5 and s2s.selected_step_ == steps[int(np.argmax(scores))]
    assert s2s.selected_step_ != s2s.history_.best_step       # not the lowest validation loss's weights
    assert output_score(s2s.predict(src[:40]), tgt[:40]) == pytest.approx(max(scores))
