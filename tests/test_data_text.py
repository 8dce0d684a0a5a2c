"""Text data: CharVocab, reading files, splits and contiguous (TBPTT) stream batches."""

import json
import warnings

import numpy as np
import pytest

from rnnkit.data import CharVocab, count_stream_batches, read_text, split_text, stream_batches
from rnnkit.data._util import guess_encoding
from rnnkit.errors import CheckpointError, DataNote, RnnkitError


# -- CharVocab -------------------------------------------------------------------------

def test_vocab_from_text_sorted_and_round_trip_unicode():
    text = "zébra 🙂 Ω\nabc\tzé"
    v = CharVocab.from_text(text)
    assert list(v.chars) == sorted(set(text))
    assert len(v) == v.size == len(set(text))
    ids = v.encode(text)
    assert ids.dtype == np.int64 and ids.shape == (len(text),)
    assert v.decode(ids) == text
    # ids follow the sorted order
    assert ids[0] == v.chars.index("z") and v.stoi["🙂"] == v.chars.index("🙂")


def test_vocab_is_deterministic_and_order_independent():
    a = CharVocab.from_text("hello world")
    b = CharVocab.from_text("world hello")
    assert a == b and a.chars == b.chars


def test_vocab_keeps_given_order():
    v = CharVocab("TGCA")
    np.testing.assert_array_equal(v.encode("ACGT"), [3, 2, 1, 0])
    assert v.decode(np.array([0, 1])) == "TG"


def test_vocab_unknown_characters_raise_naming_them():
    v = CharVocab.from_text("abc")
    with pytest.raises(RnnkitError, match=r"'x'.*'y'|unseen: 'x', 'y'"):
        v.encode("abxcy")
    with pytest.raises(RnnkitError, match="2 characters not in the vocabulary"):
        v.encode("abxcy")


def test_vocab_unknown_symbol_maps_unseen_characters():
    v = CharVocab.from_text("abc", unk="?")
    assert "?" in v and v.size == 4
    ids = v.encode("axb")
    assert ids[1] == v.stoi["?"]
    assert v.decode(ids) == "a?b"


def test_vocab_min_count_drops_rare_characters():
    v = CharVocab.from_text("aaabbc", unk="~", min_count=2)
    assert set(v.chars) == {"a", "b", "~"}
    assert v.decode(v.encode("abc")) == "ab~"


def test_vocab_dict_round_trip_through_json():
    v = CharVocab.from_text("naïve café\n", unk="\ufffd")
    d = json.loads(json.dumps(v.to_dict()))
    w = CharVocab.from_dict(d)
    assert w == v
    np.testing.assert_array_equal(w.encode("café"), v.encode("café"))


@pytest.mark.parametrize("bad", [None, {"x": 1}, {"chars": ["ab"]}, {"chars": ["a", "a"]},
                                 {"chars": ["a"], "unk": "?"}, {"chars": "not-a-list"}])
def test_vocab_from_dict_rejects_malformed(bad):
    with pytest.raises(CheckpointError):
        CharVocab.from_dict(bad)


def test_vocab_argument_errors():
    with pytest.raises(ValueError, match="unique"):
        CharVocab("aba")
    with pytest.raises(ValueError, match="one character"):
        CharVocab(["ab", "c"])
    with pytest.raises(RnnkitError, match="empty"):
        CharVocab.from_text("")
    with pytest.raises(TypeError, match="str"):
        CharVocab.from_text(b"bytes")
    v = CharVocab("ab")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        v.decode(np.array([0, 2]))
    with pytest.raises(TypeError, match="integers"):
        v.decode(np.array([0.0, 1.0]))
    assert v.decode(np.array([], dtype=np.int64)) == ""


# -- files and splits ------------------------------------------------------------------

def test_read_text_normalizes_newlines_and_bom(tmp_path):
    p = tmp_path / "t.txt"
    p.write_bytes("\ufeffline one\r\nline two\rthree é".encode("utf-8"))
    assert read_text(p) == "line one\nline two\nthree é"
    assert read_text(p, max_chars=4) == "line"


def test_read_text_other_encoding(tmp_path):
    p = tmp_path / "latin.txt"
    p.write_bytes("café".encode("latin-1"))
    assert read_text(p, encoding="latin-1") == "café"


def test_read_text_decompresses_gzip_and_names_a_broken_one(tmp_path):
    import gzip

    text = "Call me Ishmael.\r\nSome years ago é\n" * 50
    p = tmp_path / "book.txt.gz"
    p.write_bytes(gzip.compress(text.encode("utf-8")))
    assert read_text(p) == text.replace("\r\n", "\n")
    cut = tmp_path / "cut.gz"
    cut.write_bytes(p.read_bytes()[:40])
    with pytest.raises(RnnkitError, match="cut.gz: a gzip file that does not decompress"):
        read_text(cut)


def test_read_text_errors_name_the_path(tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(RnnkitError, match="not found.*nope.txt"):
        read_text(missing)
    with pytest.raises(RnnkitError, match="directory"):
        read_text(tmp_path)
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n\n")
    with pytest.raises(RnnkitError, match="empty.txt.*empty"):
        read_text(empty)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok text \xff\xfe more")
    with pytest.raises(RnnkitError, match=r"bad.txt: bytes at offset 8 are not valid utf-8"):
        read_text(bad, encoding="utf-8")


# -- encodings -------------------------------------------------------------------------

TEXT = "Café — “quoted” façade, Ærø; naïve €5.\nSecond line, ½ price.\n"


@pytest.mark.parametrize("encoding, guessed", [
    ("utf-8", None), ("utf-8-sig", None), ("utf-16", None), ("utf-32", None),
    ("utf-16-le", "UTF-16 little-endian"), ("utf-16-be", "UTF-16 big-endian"),
    ("cp1252", "Windows-1252")])
def test_read_text_decodes_common_encodings_and_notes_a_guess(tmp_path, encoding, guessed):
    path = tmp_path / f"{encoding}.txt"
    path.write_bytes(TEXT.replace("\n", "\r\n").encode(encoding))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert read_text(path) == TEXT
    notes = [str(w.message) for w in caught if issubclass(w.category, DataNote)]
    if guessed is None:
        assert notes == []
    else:
        assert len(notes) == 1 and f"{encoding}.txt: not UTF-8; read as {guessed}" in notes[0]


def test_guess_encoding_latin1_where_1252_leaves_a_byte_undefined():
    raw = "año ".encode("latin-1") + b"\x81"          # 0x81: no character in Windows-1252
    assert guess_encoding(raw) == "latin-1"
    assert guess_encoding("año €".encode("cp1252")) == "cp1252"
    assert guess_encoding(b"plain ascii") == "utf-8"
    assert guess_encoding("ñ".encode("utf-8")) == "utf-8"


def test_cli_prints_an_encoding_note_once_and_not_with_quiet(tmp_path, capsys):
    from rnnkit.cli import main

    rows = ["date;prix (€)"] + [f"2020-{m:02d}-01;{100 + 3 * m},5" for m in range(1, 13)]
    csv = tmp_path / "prix.csv"
    csv.write_bytes("\r\n".join(rows).encode("cp1252"))
    args = ["forecast", str(csv), "--horizon", "2", "--epochs", "1", "--out", str(tmp_path / "run")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.count("prix.csv: not UTF-8; read as Windows-1252") == 1
    assert "prix (€)" in out
    assert main(args + ["--quiet", "--out", str(tmp_path / "run2")]) == 0
    assert "not UTF-8" not in capsys.readouterr().out


def test_split_text_last_fraction_validates():
    text = "abcdefghij" * 10
    train, val = split_text(text, 0.2)
    assert train + val == text and len(val) == 20 and val == text[-20:]
    ids = np.arange(50)
    tr, va = split_text(ids, 0.1)
    np.testing.assert_array_equal(np.concatenate([tr, va]), ids)
    assert len(va) == 5
    tr0, va0 = split_text(text, 0.0)
    assert tr0 == text and va0 == ""


def test_split_text_errors():
    with pytest.raises(ValueError, match=r"val_fraction must lie in \[0, 1\)"):
        split_text("abcdef", 1.0)
    with pytest.raises(TypeError, match="number"):
        split_text("abcdef", "0.1")
    with pytest.raises(RnnkitError, match="at least 2"):
        split_text("abcdefghij", 0.1)  # 1 char of validation


# -- stream batches --------------------------------------------------------------------

def test_stream_batches_plain_contiguous_streams():
    ids = np.arange(41)
    B, T = 4, 3
    batches = list(stream_batches(ids, B, T))
    L = (len(ids) - 1) // B  # 10 steps per stream
    assert len(batches) == L // T == count_stream_batches(len(ids), B, T) == 3
    for w, batch in enumerate(batches):
        assert batch["x"].shape == (T, B) and batch["x"].dtype == np.int64
        assert batch["mask"].all()
        for b in range(B):
            np.testing.assert_array_equal(batch["x"][:, b], ids[b * L + w * T: b * L + w * T + T])
        np.testing.assert_array_equal(batch["y"], batch["x"] + 1)  # next id
    # column b of batch w+1 continues column b of batch w
    np.testing.assert_array_equal(batches[1]["x"][0], batches[0]["x"][-1] + 1)


def test_stream_batches_targets_are_next_ids_for_text():
    v = CharVocab.from_text("the quick brown fox jumps over the lazy dog")
    ids = v.encode("the quick brown fox jumps over the lazy dog")
    for batch in stream_batches(ids, 2, 5):
        for b in range(2):
            x, y = v.decode(batch["x"][:, b]), v.decode(batch["y"][:, b])
            assert x[1:] == y[:-1]


@pytest.mark.parametrize("k1,k2", [(2, 5), (3, 3), (1, 4), (4, 6)])
def test_tbptt_mask_counts_every_target_exactly_once(k1, k2):
    ids = np.arange(203)
    B = 3
    L = (len(ids) - 1) // B
    counts = np.zeros((L, B), dtype=int)
    batches = list(stream_batches(ids, B, k2, k1=k1))
    assert len(batches) == count_stream_batches(len(ids), B, k2, k1=k1)
    for w, batch in enumerate(batches):
        assert batch["x"].shape == batch["y"].shape == batch["mask"].shape == (k2, B)
        start = w * k1
        # window w covers stream steps [w*k1, w*k1 + k2)
        np.testing.assert_array_equal(batch["x"][:, 0], ids[start:start + k2])
        expected = np.ones(k2, dtype=bool)
        if w > 0:
            expected[: k2 - k1] = False
        np.testing.assert_array_equal(batch["mask"][:, 0], expected)
        assert (batch["mask"] == batch["mask"][:, :1]).all()  # same for every stream
        counts[start:start + k2] += batch["mask"]
    last = (len(batches) - 1) * k1 + k2
    assert (counts[:last] == 1).all() and (counts[last:] == 0).all()


def test_tbptt_state_after_k1_steps_is_the_next_windows_initial_state():
    # A toy recurrence h_t = h_{t-1} + x_t: carrying the state after k1 steps of each
    # window must reproduce the states of one pass over the whole stream.
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 9, size=120)
    B, k1, k2 = 2, 3, 7
    L = (len(ids) - 1) // B
    full = np.cumsum(ids[: B * L].reshape(B, L).T, axis=0)  # (L, B) states of one full pass
    h = np.zeros(B, dtype=np.int64)
    for w, batch in enumerate(stream_batches(ids, B, k2, k1=k1)):
        states = h + np.cumsum(batch["x"], axis=0)
        np.testing.assert_array_equal(states, full[w * k1: w * k1 + k2])
        h = states[k1 - 1]  # the state after k1 steps
    # carrying the final state instead would be wrong whenever windows overlap
    h_wrong = np.zeros(B, dtype=np.int64)
    batches = list(stream_batches(ids, B, k2, k1=k1))
    h_wrong = (h_wrong + np.cumsum(batches[0]["x"], axis=0))[-1]
    assert not np.array_equal(h_wrong + batches[1]["x"][0], full[k1])


def test_stream_batches_keep_last_partial_window():
    ids = np.arange(24)  # L = 23 per stream with B=1
    full = list(stream_batches(ids, 1, 5))
    part = list(stream_batches(ids, 1, 5, drop_last=False))
    assert len(full) == 4 and len(part) == 5
    assert part[-1]["x"].shape == (3, 1)
    np.testing.assert_array_equal(part[-1]["x"][:, 0], [20, 21, 22])
    assert count_stream_batches(24, 1, 5, drop_last=False) == 5
    # with overlap the partial window masks the already-trained steps
    w = list(stream_batches(ids, 1, 5, k1=2, drop_last=False))
    seen = np.zeros(23, dtype=int)
    for i, batch in enumerate(w):
        seen[i * 2: i * 2 + len(batch["x"])] += batch["mask"][:, 0]
    assert (seen == 1).all()


def test_stream_batches_offset_skips_ids():
    ids = np.arange(30)
    b0 = next(iter(stream_batches(ids, 2, 4, offset=3)))
    np.testing.assert_array_equal(b0["x"][:, 0], [3, 4, 5, 6])
    L = (30 - 1 - 3) // 2
    np.testing.assert_array_equal(b0["x"][:, 1], np.arange(3 + L, 3 + L + 4))


def test_stream_batches_errors_are_raised_at_call_time():
    ids = np.arange(10)
    with pytest.raises(RnnkitError, match=r"too few.*need at least 17"):
        stream_batches(ids, 4, 4)
    with pytest.raises(ValueError, match="k1"):
        stream_batches(np.arange(100), 2, 4, k1=5)
    with pytest.raises(TypeError, match="integers"):
        stream_batches(np.arange(100.0), 2, 4)
    with pytest.raises(ValueError, match="1 dim"):
        stream_batches(np.zeros((10, 10), dtype=int), 2, 4)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        stream_batches(np.arange(100), 0, 4)
    with pytest.raises(TypeError, match="seq_len must be an integer"):
        stream_batches(np.arange(100), 2, 4.0)


def test_vocab_round_trip_on_random_unicode():
    rng = np.random.default_rng(0)
    for _ in range(20):
        cps = rng.integers(1, 0x10FFFF, size=int(rng.integers(1, 200)))
        cps = cps[(cps < 0xD800) | (cps > 0xDFFF)]  # surrogates are not characters
        text = "".join(map(chr, cps)) + "a"
        v = CharVocab.from_text(text)
        ids = v.encode(text)
        assert v.decode(ids) == text
        assert ids.min() >= 0 and ids.max() < v.size
        assert list(v.chars) == sorted(set(text))
        assert CharVocab.from_dict(json.loads(json.dumps(v.to_dict()))) == v


def test_pairs_file_header_line_is_skipped(tmp_path):
    from rnnkit.data.text import read_pairs

    for head, kept in (("English\tFrench\n", 1), ("en\tfr\n", 1), ("src\ttgt\n", 1), ("Go.\tVa !\n", 2),
                       ("no\tno\n", 2)):
        p = tmp_path / "pairs.tsv"
        p.write_text(head + "I see.\tJe vois.\n")
        sources, targets = read_pairs(p)
        assert len(sources) == kept and targets[-1] == "Je vois."


def test_pairs_csv_quoted_commas_headers_and_named_columns(tmp_path):
    from rnnkit.data.text import read_pairs, read_sources

    p = tmp_path / "pairs.csv"
    p.write_text('English words/sentences,French words/sentences\nGo.,Va !\n"Yes, sir.","Oui, monsieur."\n',
                 encoding="utf-8")
    assert read_pairs(p) == (["Go.", "Yes, sir."], ["Va !", "Oui, monsieur."])
    assert read_sources(p) == (["Go.", "Yes, sir."], ["Va !", "Oui, monsieur."])
    p.write_text("id,en,fr\n1,Go.,Va !\n2,Hi.,Salut !\n", encoding="utf-8")
    assert read_pairs(p) == (["Go.", "Hi."], ["Va !", "Salut !"])
    p.write_text("Go.,Va !\nRun,Cours, vite\n", encoding="utf-8")
    with pytest.raises(RnnkitError, match=r"pairs.csv, line 2: 2 commas; expected one.*quote the text"):
        read_pairs(p)
    p.write_text("Go.,Va !\njust one column\n", encoding="utf-8")
    with pytest.raises(RnnkitError, match=r"pairs.csv, line 2: expected 'source,target' rows, found no comma"):
        read_pairs(p)
    one = tmp_path / "inputs.csv"
    one.write_text('source\n"Hello, friend."\nGood night.\n', encoding="utf-8")
    assert read_sources(one) == (["Hello, friend.", "Good night."], None)


def test_read_texts_reads_a_directory_of_text_files_in_order(tmp_path):
    import gzip

    from rnnkit.data.text import read_texts

    corpus = tmp_path / "corpus"
    (corpus / "b").mkdir(parents=True)
    (corpus / ".git").mkdir()
    (corpus / "a.txt").write_text("first")
    (corpus / "b" / "c.md").write_text("second\n")
    (corpus / "b" / "empty.txt").write_text("  \n")
    (corpus / "d.txt.gz").write_bytes(gzip.compress(b"third"))
    (corpus / "image.png").write_bytes(b"\x89PNG\x00")
    (corpus / ".git" / "x.txt").write_text("hidden")
    assert read_texts([corpus]) == "first\nsecond\nthird"
    assert read_texts([corpus / "a.txt", corpus]) == "first\nfirst\nsecond\nthird"
    (tmp_path / "none").mkdir()
    with pytest.raises(RnnkitError, match="none: a directory without text files"):
        read_texts([tmp_path / "none"])


def test_encoding_option_reads_what_no_guess_can(tmp_path, capsys):
    from rnnkit.cli import main
    from rnnkit.data._util import input_encoding

    text = "Привет, мир. Это текст на русском языке.\n" * 20
    path = tmp_path / "ru.txt"
    path.write_bytes(text.encode("cp1251"))
    with pytest.warns(DataNote, match="not UTF-8; read as Windows-1252"):
        assert read_text(path) != text                   # a guess cannot tell 1251 from 1252
    with input_encoding("cp1251"):
        assert read_text(path) == text
    assert read_text(path, encoding="cp1251") == text
    with pytest.raises(ValueError, match="unknown encoding 'nope'"):
        input_encoding("nope")
    out = tmp_path / "run"
    assert main(["train-lm", str(path), "--out", str(out), "--epochs", "1", "--hidden", "8",
                 "--encoding", "cp1251", "--quiet"]) == 0
    vocab = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert "П" in json.dumps(vocab, ensure_ascii=False)
    assert main(["train-lm", str(path), "--out", str(tmp_path / "x"), "--encoding", "nope"]) == 2
    assert "--encoding: unknown encoding 'nope'" in capsys.readouterr().err


def test_json_lines_give_their_texts_to_a_language_model(tmp_path):
    p = tmp_path / "stories.jsonl"
    p.write_text(json.dumps({"story": "Once upon a time.", "id": 1}) + "\n" + json.dumps({"story": "The end."}) + "\n")
    with pytest.warns(DataNote, match=r"2 texts \(the 'story' of each JSON line\)"):
        assert read_text(p) == "Once upon a time.\n\nThe end.\n"
    p.write_text(json.dumps({"story": "ok"}) + "\n{oops\n")
    with pytest.raises(RnnkitError, match=r"stories.jsonl, line 2: not a JSON object"):
        read_text(p)
    q = tmp_path / "plain.jsonl"                   # no text key: one error naming the line
    q.write_text(json.dumps({"n": 1}) + "\n")
    with pytest.raises(RnnkitError, match=r"plain.jsonl, line 1: no 'text' key"):
        read_text(q)


def test_pairs_as_json_lines(tmp_path):
    from rnnkit.data.text import read_pairs, read_sources

    p = tmp_path / "wmt.jsonl"                     # a Hugging Face translation set's export
    p.write_text("".join(json.dumps({"translation": {"en": e, "de": d}}, ensure_ascii=False) + "\n"
                         for e, d in (("a cat", "eine Katze"), ("the dog", "der Hund"))))
    assert read_pairs(p) == (["a cat", "the dog"], ["eine Katze", "der Hund"]) == read_sources(p)
    q = tmp_path / "flat.jsonl"
    q.write_text(json.dumps({"id": 1, "source": "x y", "target": "y x"}) + "\n")
    assert read_pairs(q) == (["x y"], ["y x"])
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"translation": {"en": "a"}}) + "\n")
    with pytest.raises(RnnkitError, match=r"bad.jsonl, line 1: keys en; expected two"):
        read_pairs(bad)
