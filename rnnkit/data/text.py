"""Text for character-level models: a vocabulary, files, splits and TBPTT streams.

A :class:`CharVocab` maps every character (one Unicode code point) to an integer
id. Built from a text its order is sorted by code point, so the same text always
gives the same ids; its :meth:`CharVocab.to_dict` is JSON-able and goes into a
checkpoint's ``config.json``.

Contiguous streams (the char-rnn layout)
----------------------------------------
A long id array ``ids`` (length N) is cut into B streams of equal length

    L = ⌊(N − 1 − offset) / B⌋
    x_b[t] = ids[offset + b·L + t],   y_b[t] = ids[offset + b·L + t + 1],   t = 0 … L−1

so column b of every batch continues column b of the batch before: the hidden
state at the end of one batch is the right initial state for the next one.

Truncated BPTT(k1, k2) windows (Williams & Peng 1990)
-----------------------------------------------------
With ``seq_len = k2`` and advance ``k1 ≤ k2``, window w covers stream steps
``[w·k1, w·k1 + k2)``. Consecutive windows overlap by ``k2 − k1`` steps: those
steps give the backward pass k2 steps of history, but their targets were already
trained on in window w − 1, so

    mask[j] = (w == 0) or (j ≥ k2 − k1),   j = 0 … k2−1,

and every target position is counted exactly once. Window w + 1 starts k1 steps
after window w, so **the state to carry into the next window is the state after
k1 steps of this one** (``model.loss(batch, state, carry_at=k1)``), not the state
after the last step. With ``k1 = k2`` (the default) windows do not overlap, the
mask is all True and the carried state is the final one.
"""

from __future__ import annotations

import re
from typing import Iterable, Iterator

import numpy as np

from rnnkit._checks import check_number, check_positive_int
from rnnkit.data._util import read_file_text
from rnnkit.errors import CheckpointError, DataNote, RnnkitError

__all__ = [
    "CharVocab",
    "read_text",
    "read_texts",
    "read_lines",
    "read_pairs",
    "read_parallel",
    "read_sources",
    "split_text",
    "stream_batches",
    "count_stream_batches",
]


def _show_chars(chars: Iterable[str], limit: int = 20) -> str:
    """Format characters for an error message: repr of each, at most ``limit``."""
    chars = list(chars)
    shown = ", ".join(repr(c) for c in chars[:limit])
    if len(chars) > limit:
        shown += f", … ({len(chars)} in all)"
    return shown


def _code_points(text: str) -> np.ndarray:
    """All code points of ``text`` as a uint32 array, without a Python loop."""
    # UTF-32-LE is one fixed-width unit per code point; lone surrogates cannot be
    # encoded, so they are passed through with 'surrogatepass'.
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")


class CharVocab:
    """A character vocabulary: one id per Unicode code point.

    ``CharVocab(chars)`` keeps the order given (``CharVocab("ACGT")`` gives A=0, C=1,
    G=2, T=3); :meth:`from_text` sorts by code point. With ``unk`` set, characters
    outside the vocabulary encode to the id of ``unk`` (which is added to the
    vocabulary if missing); without it they raise :class:`RnnkitError` naming them.
    """

    def __init__(self, chars: Iterable[str], unk: str | None = None):
        chars = list(chars)  # a str gives its characters
        for i, c in enumerate(chars):
            if not isinstance(c, str) or len(c) != 1:
                raise ValueError(f"CharVocab: every entry of chars must be one character, "
                                 f"got {c!r} at position {i}")
        if len(set(chars)) != len(chars):
            seen, dups = set(), []
            for c in chars:
                if c in seen and c not in dups:
                    dups.append(c)
                seen.add(c)
            raise ValueError(f"CharVocab: chars must be unique, repeated: {_show_chars(dups)}")
        if unk is not None:
            if not isinstance(unk, str) or len(unk) != 1:
                raise ValueError(f"CharVocab: unk must be one character or None, got {unk!r}")
            if unk not in chars:
                chars.append(unk)
        if not chars:
            raise ValueError("CharVocab: chars is empty; a vocabulary needs at least one character")
        self.chars: tuple[str, ...] = tuple(chars)
        self.unk = unk
        self.stoi: dict[str, int] = {c: i for i, c in enumerate(self.chars)}
        cps = np.array([ord(c) for c in self.chars], dtype=np.uint32)
        # encode() looks code points up by binary search in the sorted table.
        self._order = np.argsort(cps, kind="stable").astype(np.int64)
        self._sorted_cps = cps[self._order]
        self._cps = cps

    @classmethod
    def from_text(cls, text: str, unk: str | None = None, min_count: int = 1) -> "CharVocab":
        """Build the vocabulary of ``text``: its distinct characters sorted by code point.

        Characters seen fewer than ``min_count`` times are left out (they then encode
        to ``unk``, or raise when ``unk`` is None).
        """
        if not isinstance(text, str):
            raise TypeError(f"CharVocab.from_text: text must be a str, got {type(text).__name__}")
        min_count = check_positive_int(min_count, "min_count", "CharVocab.from_text")
        if not text and unk is None:
            raise RnnkitError("CharVocab.from_text: text is empty; nothing to build a vocabulary from")
        cps, counts = np.unique(_code_points(text), return_counts=True)
        keep = [chr(int(cp)) for cp, n in zip(cps, counts) if n >= min_count]
        if unk is not None and unk not in keep:
            keep.append(unk)
            keep.sort()
        if not keep:
            raise RnnkitError(f"CharVocab.from_text: no character occurs at least min_count={min_count} times")
        return cls(keep, unk=unk)

    def __len__(self) -> int:
        return len(self.chars)

    @property
    def size(self) -> int:
        """Number of ids (the embedding / softmax size)."""
        return len(self.chars)

    def __contains__(self, ch) -> bool:
        return ch in self.stoi

    def __eq__(self, other) -> bool:
        return isinstance(other, CharVocab) and self.chars == other.chars and self.unk == other.unk

    def __repr__(self) -> str:
        return f"CharVocab(size={self.size}, unk={self.unk!r})"

    def encode(self, text: str) -> np.ndarray:
        """Ids of the characters of ``text``.

        Shapes:
            text: str of N characters  ->  ids: int64 (N,)
        """
        if not isinstance(text, str):
            raise TypeError(f"CharVocab.encode: text must be a str, got {type(text).__name__}")
        cps = _code_points(text)
        pos = np.searchsorted(self._sorted_cps, cps)
        pos = np.minimum(pos, len(self._sorted_cps) - 1)
        found = self._sorted_cps[pos] == cps
        ids = self._order[pos]
        if not found.all():
            if self.unk is None:
                unseen = sorted({chr(int(c)) for c in cps[~found]})
                raise RnnkitError(
                    f"CharVocab.encode: {int((~found).sum())} characters not in the vocabulary "
                    f"(unseen: {_show_chars(unseen)}); build the vocabulary with unk=... to map them "
                    f"to an unknown symbol")
            ids = np.where(found, ids, self.stoi[self.unk])
        return ids.astype(np.int64)

    def decode(self, ids) -> str:
        """The text of a 1-D sequence of ids.

        Shapes:
            ids: int (N,)  ->  str of N characters
        """
        arr = np.asarray(ids)
        if arr.size == 0:
            return ""
        if arr.dtype.kind not in "iu":
            raise TypeError(f"CharVocab.decode: ids must be integers, got dtype {arr.dtype}")
        if arr.ndim != 1:
            raise ValueError(f"CharVocab.decode: expected ids with 1 dim (N,), got {arr.ndim}")
        if arr.min() < 0 or arr.max() >= self.size:
            raise ValueError(f"CharVocab.decode: ids must lie in [0, {self.size - 1}], "
                             f"got min {arr.min()} and max {arr.max()}")
        return self._cps[arr].astype("<u4").tobytes().decode("utf-32-le", "surrogatepass")

    def to_dict(self) -> dict:
        """A JSON-able description; :meth:`from_dict` rebuilds the same vocabulary."""
        return {"type": "CharVocab", "chars": list(self.chars), "unk": self.unk}

    @classmethod
    def from_dict(cls, d) -> "CharVocab":
        """Rebuild a vocabulary from :meth:`to_dict`; a malformed dict is a CheckpointError."""
        if not isinstance(d, dict) or "chars" not in d:
            raise CheckpointError(f"CharVocab.from_dict: expected a dict with key 'chars', got {d!r:.80}")
        chars, unk = d["chars"], d.get("unk")
        if not isinstance(chars, (list, tuple)) or not all(isinstance(c, str) and len(c) == 1 for c in chars):
            raise CheckpointError("CharVocab.from_dict: 'chars' must be a list of one-character strings")
        if unk is not None and unk not in chars:
            raise CheckpointError(f"CharVocab.from_dict: unk {unk!r} is not one of the chars")
        try:
            return cls(chars, unk=unk)
        except ValueError as exc:
            raise CheckpointError(f"CharVocab.from_dict: {exc}") from exc


def read_text(path, encoding: str = "auto", max_chars: int | None = None) -> str:
    """Read a text file for a language model.

    Newlines are normalized like Python's text mode (``\\r\\n`` and ``\\r`` become
    ``\\n``) and a byte-order mark is dropped. ``encoding="auto"`` reads UTF-8, and
    guesses otherwise (UTF-16, Windows-1252, Latin-1: ``rnnkit.data._util.guess_encoding``),
    saying so in a :class:`~rnnkit.errors.DataNote` warning. A missing file, a directory,
    bytes that are not valid for a named ``encoding`` (with the byte offset) and an
    empty text all raise :class:`RnnkitError` naming the path. ``max_chars`` keeps only
    the first characters.
    """
    if max_chars is not None:
        max_chars = check_positive_int(max_chars, "max_chars", "read_text")
    path, text = read_file_text(path, encoding, "text file")
    text = _json_lines_text(path, text)
    if max_chars is not None:
        text = text[:max_chars]
    if not text.strip():
        raise RnnkitError(f"{path}: the text is empty")
    return text


def _json_lines_text(path: str, text: str) -> str:
    """The texts of a ``.jsonl`` file of one object per line with a ``text`` (or ``story``,
    ``content``, …) key, one after another with a blank line between (TinyStories, web
    text exports), said in a DataNote; any other file's text as it is."""
    import json
    import warnings

    from rnnkit.data._util import data_suffix

    if data_suffix(path) not in (".jsonl", ".ndjson") or not text.lstrip().startswith("{"):
        return text
    parts, key = [], None
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            raise RnnkitError(f"{path}, line {n}: not a JSON object (one per line)") from None
        if key is None:
            key = next((k for k in ("text", "story", "content", "body", "document") if isinstance(obj, dict)
                        and k in obj), None)
            if key is None:
                raise RnnkitError(f"{path}, line {n}: no 'text' key (or story, content, body) to read")
        if not isinstance(obj, dict) or key not in obj:
            raise RnnkitError(f"{path}, line {n}: no {key!r} key")
        parts.append(str(obj[key]).strip())
    warnings.warn(DataNote(f"{path}: {len(parts):,} texts (the {key!r} of each JSON line), a blank line between"),
                  stacklevel=3)
    return "\n\n".join(parts) + "\n"


#: the files of a directory that :func:`read_texts` reads
TEXT_SUFFIXES = (".txt", ".md", ".rst", ".text", ".jsonl")


def text_files(path) -> list[str]:
    """``[path]`` for a file; for a directory, its text files (:data:`TEXT_SUFFIXES`, also
    gzip-compressed ``.txt.gz``) at any depth in sorted order, hidden ones passed over."""
    import os

    from rnnkit.data._util import data_suffix

    path = os.fspath(path)
    if not os.path.isdir(path):
        return [path]
    found = []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [os.path.join(root, f) for f in sorted(files)
                  if not f.startswith(".") and data_suffix(f) in TEXT_SUFFIXES]
    found.sort(key=lambda f: os.path.relpath(f, path).split(os.sep))
    if not found:
        raise RnnkitError(f"{path}: a directory without text files ({', '.join(TEXT_SUFFIXES)}, or .gz of them)")
    return found


def read_texts(paths) -> str:
    """The files' texts (:func:`read_text`) joined in order, a directory standing for its
    text files (:func:`text_files`); each missing or empty file is an RnnkitError. A
    newline goes between two files where the first has no final one (an empty file of a
    directory is passed over)."""
    parts = []
    for p in paths:
        files = text_files(p)
        if files == [p] or files == [str(p)]:
            parts.append(read_text(p))
            continue
        parts += [t for t in (read_file_text(f, "auto", "text file")[1] for f in files) if t.strip()]
        if not parts:
            raise RnnkitError(f"{p}: every text file of the directory is empty")
    return "".join(t if t.endswith("\n") or i == len(parts) - 1 else t + "\n" for i, t in enumerate(parts))


def read_lines(path, what: str = "input file") -> list[str]:
    """The non-blank lines of a text file (one input per line; encoding as :func:`read_text`)."""
    _, text = read_file_text(path, "auto", what)
    return [line for line in text.split("\n") if line.strip()]


_PAIR_HEADERS = {"source", "target", "src", "tgt", "input", "output", "text", "translation", "sentence",
                 "english", "french", "german", "spanish", "italian", "portuguese", "dutch", "russian", "chinese",
                 "japanese", "korean", "arabic", "turkish", "polish", "swedish", "finnish", "greek", "hindi"}
_LANGUAGE_CODES = {"en", "fr", "de", "es", "it", "pt", "nl", "ru", "zh", "ja", "ko", "ar", "tr", "pl", "sv", "fi",
                   "el", "hi", "cs", "da", "he", "hu", "ro", "uk", "vi"}   # not "id": a column of row ids


def _header_name(field: str) -> bool:
    """Whether a field names a pairs column: a column or language name or code, alone or
    first ("English words/sentences")."""
    words = re.findall(r"[a-z]+", field.strip().lower())
    return bool(words) and (words[0] in _PAIR_HEADERS or (len(words) == 1 and words[0] in _LANGUAGE_CODES))


def _pair_columns(fields: list[str]) -> tuple[int, int] | None:
    """The (source, target) columns a pairs file's first line names, or None when it is
    not a header: two different column or language names (source, target, English,
    French, en, fr, ...), the only two such fields of the line."""
    named = [i for i, f in enumerate(fields) if _header_name(f)]
    if len(named) != 2 or fields[named[0]].strip().lower() == fields[named[1]].strip().lower():
        return None
    return named[0], named[1]


def read_pairs(path) -> tuple[list[str], list[str]]:
    """(sources, targets) of a file of ``source<TAB>target`` lines, or of a ``.csv`` file
    of two columns (quoted as CSV quotes, so a text may hold commas).

    JSON lines (``.jsonl``) of pairs are read too (:func:`_json_pairs`).
    Blank lines are skipped; a third column holding a CC-BY attribution, as in Tatoeba's
    pair files, is ignored; a first line naming the columns (``English<TAB>French``,
    ``src,tgt``, ``id,en,fr``: the two named columns are read) is a header, not a pair.
    A line without a tab (a CSV row without two columns) or with another, an empty
    source or a file without pairs is an RnnkitError naming the file and line.
    """
    import csv
    import io

    from rnnkit.data._util import data_suffix

    path, text = read_file_text(path, "auto", "pairs file")
    if data_suffix(path) in (".jsonl", ".ndjson") and text.lstrip().startswith("{"):
        return _json_pairs(path, text)
    is_csv = data_suffix(path) == ".csv"
    sep = "comma" if is_csv else "tab"
    layout = "'source,target' rows" if is_csv else "'source<TAB>target' lines"
    if is_csv:
        reader = csv.reader(io.StringIO(text))
        rows = ((reader.line_num, row) for row in reader)
    else:
        rows = ((n, line.removesuffix("\r").split("\t")) for n, line in enumerate(text.split("\n"), start=1))
    sources, targets = [], []
    columns = None
    for n, fields in rows:
        if not any(f.strip() for f in fields):
            continue
        if columns is None:                  # the first line: a header naming the columns ("English<TAB>French")?
            header = _pair_columns(fields)
            columns = header or (0, 1)
            if header:
                continue
        if columns != (0, 1):
            if len(fields) <= max(columns):
                raise RnnkitError(f"{path}, line {n}: {len(fields)} columns; the header names columns "
                                  f"{columns[0] + 1} and {columns[1] + 1}")
            fields = [fields[columns[0]], fields[columns[1]]]
        if len(fields) == 1:
            raise RnnkitError(f"{path}, line {n}: expected {layout}, found no {sep} in {fields[0][:60]!r}")
        if len(fields) == 3 and fields[2].startswith("CC-BY"):
            fields = fields[:2]              # the attribution column of Tatoeba's pair files
        if len(fields) > 2:
            raise RnnkitError(f"{path}, line {n}: {len(fields) - 1} {sep}s; expected one, between source "
                              f"and target (a {sep} inside a text is ambiguous{'; quote the text' if is_csv else ''})"
                              f": {(',' if is_csv else chr(9)).join(fields)[:60]!r}")
        src, tgt = fields
        if not src:
            raise RnnkitError(f"{path}, line {n}: the source (before the {sep}) is empty")
        sources.append(src)
        targets.append(tgt)
    if not sources:
        raise RnnkitError(f"{path}: no {layout}")
    return sources, targets


def _json_pairs(path: str, text: str) -> tuple[list[str], list[str]]:
    """(sources, targets) of JSON lines of pairs: ``{"translation": {"en": …, "de": …}}`` (a
    Hugging Face translation set's export), ``{"source": …, "target": …}`` or two language
    codes; the source is the first key of the first line's pair."""
    import json

    sources, targets, keys = [], [], None
    for n, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            raise RnnkitError(f"{path}, line {n}: not a JSON object (one pair per line)") from None
        pair = obj.get("translation", obj) if isinstance(obj, dict) else None
        if not isinstance(pair, dict):
            raise RnnkitError(f"{path}, line {n}: expected an object such as {{\"translation\": {{\"en\": …, "
                              f"\"de\": …}}}}")
        if keys is None:
            named = [k for k in pair if _header_name(str(k))]
            if len(named) != 2:
                raise RnnkitError(f"{path}, line {n}: keys {', '.join(map(str, pair))}; expected two, such as "
                                  f"source and target, or two language codes (en, de)")
            keys = named
        if any(k not in pair for k in keys):
            raise RnnkitError(f"{path}, line {n}: no {next(k for k in keys if k not in pair)!r} key")
        src, tgt = (str(pair[k]).strip() for k in keys)
        if not src:
            raise RnnkitError(f"{path}, line {n}: the source ({keys[0]!r}) is empty")
        sources.append(src)
        targets.append(tgt)
    if not sources:
        raise RnnkitError(f"{path}: no pairs")
    return sources, targets


def read_parallel(source_path, target_path) -> tuple[list[str], list[str]]:
    """(sources, targets) of a parallel corpus in two files, one sentence a line, line i of
    one the translation of line i of the other (``train.en`` and ``train.de``). Files of
    different line counts, or a line empty in one file and not in the other, are an
    RnnkitError naming the files and the line; lines empty in both are skipped."""
    src_path, src_text = read_file_text(source_path, "auto", "source file")
    tgt_path, tgt_text = read_file_text(target_path, "auto", "target file")
    src = src_text.split("\n")
    tgt = tgt_text.split("\n")
    for lines in (src, tgt):
        if lines and lines[-1] == "":
            lines.pop()                      # the newline that ends the last line
    if len(src) != len(tgt):
        raise RnnkitError(f"{src_path} has {len(src):,} lines and {tgt_path} {len(tgt):,}: two parallel files need "
                          f"one line per sentence in both")
    sources, targets = [], []
    for n, (s, t) in enumerate(zip(src, tgt), start=1):
        s, t = s.strip(), t.strip()
        if not s and not t:
            continue
        if not s or not t:
            empty, other = (src_path, tgt_path) if not s else (tgt_path, src_path)
            raise RnnkitError(f"{empty}, line {n}: empty, where {other} has a sentence")
        sources.append(s)
        targets.append(t)
    if not sources:
        raise RnnkitError(f"{src_path} and {tgt_path}: no sentences")
    return sources, targets


def read_sources(path) -> tuple[list[str], list[str] | None]:
    """Inputs for a sequence-to-sequence model: ``(sources, targets)`` of a pairs file
    (every non-blank line ``source<TAB>target``, or a ``.csv`` of two columns, see
    :func:`read_pairs`), else ``(lines, None)``: one input per non-blank line (a ``.csv``
    of one column: one per row, unquoted)."""
    from rnnkit.data._util import data_suffix

    if data_suffix(path) in (".jsonl", ".ndjson"):
        return read_pairs(path)
    lines = read_lines(path)
    if data_suffix(path) == ".csv":
        import csv

        rows = [r for r in csv.reader(lines) if any(f.strip() for f in r)]
        if rows and all(len(r) >= 2 for r in rows):
            return read_pairs(path)
        if len(rows) > 1 and len(rows[0]) == 1 and _header_name(rows[0][0]):
            rows = rows[1:]                  # a header naming the one column ("source", "english")
        return [",".join(r) for r in rows], None
    if lines and all("\t" in line for line in lines):
        return read_pairs(path)
    return lines, None


def split_text(text, val_fraction: float = 0.1):
    """Split a text (str or 1-D id array) into (train, validation): the last fraction validates.

    The split is by position, never shuffled, so validation measures how well the
    model continues unseen text. Each non-empty part must hold at least 2 items
    (one input and its next-character target).

    Shapes:
        text: str or (N,)  ->  train: first N − n_val items, val: last n_val items,
        n_val = round(N · val_fraction)
    """
    val_fraction = check_number(val_fraction, "val_fraction", "split_text", 0.0, 1.0, high_open=True)
    if not isinstance(text, str):
        text = np.asarray(text)
        if text.ndim != 1:
            raise ValueError(f"split_text: expected a str or a 1-D id array, got {text.ndim} dims")
    n = len(text)
    n_val = int(round(n * val_fraction))
    if val_fraction > 0 and n_val < 2:
        raise RnnkitError(f"split_text: val_fraction={val_fraction} of {n} items leaves {n_val} for "
                          f"validation; need at least 2 (an input and its target)")
    if n - n_val < 2:
        raise RnnkitError(f"split_text: {n} items leave {n - n_val} for training; need at least 2")
    return text[: n - n_val], text[n - n_val:]


def _check_ids(ids, where: str) -> np.ndarray:
    arr = np.asarray(ids)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{where}: expected ids to be integers, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{where}: expected ids with 1 dim (N,), got {arr.ndim}")
    if arr.size and arr.min() < 0:
        raise ValueError(f"{where}: ids must be >= 0, got min {arr.min()}")
    return arr


def _windows(stream_len: int, k2: int, k1: int, drop_last: bool) -> list[tuple[int, int]]:
    """(start, length) of each TBPTT window over a stream of ``stream_len`` steps."""
    out = []
    start = 0
    while start + k2 <= stream_len:
        out.append((start, k2))
        start += k1
    if not drop_last:
        # A last, shorter window is kept when it holds targets no window trained on.
        overlap = (k2 - k1) if out else 0
        if stream_len - start > overlap:
            out.append((start, stream_len - start))
    return out


def _stream_args(n_ids: int, batch_size, seq_len, k1, offset, where: str):
    batch_size = check_positive_int(batch_size, "batch_size", where)
    seq_len = check_positive_int(seq_len, "seq_len", where)
    k1 = seq_len if k1 is None else check_positive_int(k1, "k1", where)
    if k1 > seq_len:
        raise ValueError(f"{where}: k1 (the advance between windows) must be <= seq_len (k2={seq_len}), got {k1}")
    offset = check_positive_int(offset, "offset", where, minimum=0)
    stream_len = max(n_ids - 1 - offset, 0) // batch_size
    return batch_size, seq_len, k1, offset, stream_len


def count_stream_batches(n_ids: int, batch_size: int, seq_len: int, k1: int | None = None,
                         offset: int = 0, drop_last: bool = True) -> int:
    """How many batches :func:`stream_batches` yields for ``n_ids`` ids (for progress bars)."""
    n_ids = check_positive_int(n_ids, "n_ids", "count_stream_batches", minimum=0)
    _, seq_len, k1, _, stream_len = _stream_args(n_ids, batch_size, seq_len, k1, offset,
                                                 "count_stream_batches")
    return len(_windows(stream_len, seq_len, k1, drop_last))


def stream_batches(ids, batch_size: int, seq_len: int, k1: int | None = None, offset: int = 0,
                   drop_last: bool = True) -> Iterator[dict[str, np.ndarray]]:
    """Contiguous char-rnn batches over B parallel streams, optionally as TBPTT(k1, k2) windows.

    ``seq_len`` is the window length k2 (the steps backpropagated through); ``k1``
    (default ``seq_len``) is how far each window advances. Consecutive batches
    continue each stream, so carry the recurrent state from one batch to the next:
    **the state after k1 steps** of a window (``carry_at=k1``) is the initial state
    of the next. ``offset`` skips the first ids (vary it per epoch for different cut
    points). ``drop_last=False`` also yields a shorter final window.

    Arguments are checked when called, before iteration starts; a text too short for
    one full window is a :class:`RnnkitError`.

    Shapes:
        ids: int (N,)
        yields {"x": int64 (T, B), "y": int64 (T, B) next ids, "mask": bool (T, B)},
        T = seq_len (or less for the final window with drop_last=False)
    """
    where = "stream_batches"
    ids = _check_ids(ids, where)
    batch_size, seq_len, k1, offset, stream_len = _stream_args(len(ids), batch_size, seq_len, k1,
                                                               offset, where)
    windows = _windows(stream_len, seq_len, k1, drop_last)
    if not windows:
        need = batch_size * seq_len + 1 + offset
        raise RnnkitError(f"{where}: {len(ids)} ids are too few for batch_size={batch_size} streams "
                          f"of seq_len={seq_len}" + (f" after offset={offset}" if offset else "")
                          + f": need at least {need}")
    used = batch_size * stream_len
    # (B, L) -> (L, B): time-major, column b is stream b.
    x_all = ids[offset: offset + used].reshape(batch_size, stream_len).T.astype(np.int64)
    y_all = ids[offset + 1: offset + used + 1].reshape(batch_size, stream_len).T.astype(np.int64)
    overlap = seq_len - k1

    def generate():
        for w, (start, length) in enumerate(windows):
            mask = np.ones((length, batch_size), dtype=bool)
            if w > 0:
                mask[:overlap] = False  # already trained on in the previous window
            yield {"x": x_all[start:start + length].copy(),
                   "y": y_all[start:start + length].copy(),
                   "mask": mask}

    return generate()
