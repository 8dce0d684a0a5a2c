"""Tokens for text classification: char/word, alphabets, the unknown bucket, labelled files."""

import numpy as np
import pytest

from rnnkit.data.labeled_text import looks_like_labeled_text, read_labeled_text
from rnnkit.data.tokens import UNK, Tokenizer, choose_tokens, detect_alphabet, tokenize
from rnnkit.errors import CheckpointError, RnnkitError


def test_tokenize_words_and_chars():
    assert tokenize("Play some Jazz, please!", "word") == ["play", "some", "jazz", ",", "please", "!"]
    assert tokenize("AcG", "char") == ["A", "c", "G"]


def test_alphabets_and_auto_choice():
    assert detect_alphabet(["ACGTTGCA", "acgtn"]) == "dna"
    assert detect_alphabet(["ACGUUA"]) == "rna"
    assert detect_alphabet(["MKTAYIAKQRQISFVKSHFSRQ"]) == "protein"
    assert detect_alphabet(["hello world"]) is None
    assert choose_tokens(["GATTACA", "CCGG"]) == "char"
    assert choose_tokens(["what time is it", "book a table for two"]) == "word"
    assert choose_tokens(["x1y2", "z3"]) == "char"
    assert choose_tokens(["what time"], "char") == "char"
    with pytest.raises(ValueError, match="tokens"):
        choose_tokens(["a"], "bytes")


def test_vocab_order_unknown_bucket_and_round_trip():
    tok = Tokenizer.fit(["play jazz", "play rock", "book it"], kind="word")
    assert tok.vocab[0] == UNK and tok.vocab[1] == "play"       # most frequent first
    ids = tok.encode("play polka")
    assert ids.tolist() == [1, 0]                               # unseen word -> 0
    assert tok.decode(tok.encode("book it")) == "book it"
    again = Tokenizer.from_dict(tok.to_dict())
    assert again.vocab == tok.vocab and again.kind == "word"
    assert tok.unknown_fraction(["play polka"]) == 0.5
    with pytest.raises(CheckpointError):
        Tokenizer.from_dict({"type": "Other"})


def test_min_count_sends_rare_tokens_to_unk():
    tok = Tokenizer.fit(["a a b", "a c"], kind="word", min_count=2)
    assert tok.vocab == [UNK, "a"]
    assert tok.encode("b a").tolist() == [0, 1]
    chars = Tokenizer.fit(["ACGT", "AAC"], kind="char")
    assert chars.encode("ANT").tolist() == [chars.stoi["A"], 0, chars.stoi["T"]]


def test_labeled_text_files(tmp_path):
    p = tmp_path / "train.tsv"
    p.write_text("time\twhat time is it\nweather\twill it rain\n\n", encoding="utf-8")
    assert looks_like_labeled_text(p)
    assert read_labeled_text(p) == (["what time is it", "will it rain"], ["time", "weather"])
    ucr = tmp_path / "ucr.tsv"
    ucr.write_text("1\t0.5\t0.25\n2\t1.0\t2.0\n")
    assert not looks_like_labeled_text(ucr)
    # a few bad lines leave it text, so the reader can name them (not a 'non-numeric value' error)
    mostly = tmp_path / "mostly.tsv"
    mostly.write_text("+\tACGT\n\tACGG\n-\tTTGA\nCCGA\n")
    assert looks_like_labeled_text(mostly)
    with pytest.raises(RnnkitError, match="line 2: the label"):
        read_labeled_text(mostly)
    csv = tmp_path / "series.csv"
    csv.write_text("1,2\n3,4\n")
    assert not looks_like_labeled_text(csv)
    for body, msg in (("a b c\n", "line 1: expected 'label<TAB>text'"),
                      ("x\tfine\n\tno label\n", "line 2: the label"),
                      ("x\t \n", "line 1: the text")):
        bad = tmp_path / "bad.tsv"
        bad.write_text(body)
        with pytest.raises(RnnkitError, match=msg):
            read_labeled_text(bad)


def test_case_kept_for_translation():
    tok = Tokenizer.fit(["Je vois Paris", "je vois"], kind="word", lower=False)
    assert "Paris" in tok.vocab and "Je" in tok.vocab
    assert tok.decode(tok.encode("Je vois Paris")) == "Je vois Paris"
    again = Tokenizer.from_dict(tok.to_dict())
    assert again.lower is False and again.encode("Paris").tolist() == tok.encode("Paris").tolist()
    assert tokenize("Je VOIS", "word", lower=False) == ["Je", "VOIS"]


def test_token_dropout_hides_valid_tokens_only():
    from rnnkit.data.tokens import token_dropout

    x = np.arange(1, 2001).reshape(200, 10) % 97 + 1     # no unknown ids
    lengths = np.array([200, 150, 100, 50, 10, 200, 1, 2, 3, 4])
    before = x.copy()
    out = token_dropout(x, lengths, np.random.default_rng(0), p=0.2)
    np.testing.assert_array_equal(x, before)
    valid = np.arange(200)[:, None] < lengths[None, :]
    np.testing.assert_array_equal(out[~valid], x[~valid])
    dropped = (out == 0) & valid
    assert 0.15 < dropped.sum() / valid.sum() < 0.25
    np.testing.assert_array_equal(out[valid & ~dropped], x[valid & ~dropped])
    np.testing.assert_array_equal(token_dropout(x, lengths, np.random.default_rng(0), p=0.0), x)
