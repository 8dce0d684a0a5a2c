r"""Files of labelled text for classification: one example per line.

Layouts read (:func:`read_labeled_text`; :func:`looks_like_labeled_text` tells them from
series files):

    label<TAB>text          the documented layout (a text may hold more tabs)
    text<TAB>label          two fields, when the second holds fewer distinct values than the
                            first (labels repeat, texts do not)
    a header row            in either, a first line naming the columns (``label<TAB>text``,
                            ``sentence<TAB>label``, …: one of :data:`LABEL_NAMES` and one of
                            :data:`TEXT_NAMES`) is skipped
    CSV with a header       a ``.csv`` file whose header names a text column and a label
                            column (``review,sentiment``, ``text,label``, ``id,tweet,label``;
                            other columns are not read; quoted texts may hold commas)
    CSV of two columns      words in one, labels in the other (the one with fewer distinct
                            values), with or without a header of other names
    CSV of more columns     a label column and text columns, joined (AG News's ``"3","Wall St.
                            Bears …","Reuters - …"``, with or without a header):
                            :func:`_several_columns`
    fastText                ``__label__LABEL text`` lines (the first label of a line that
                            has several)
    JSON lines              ``.jsonl``: one object per line, a text key and a label key
                            (``{"stars": 5, "text": …}``, ``{"overall": 4.0, "reviewText": …}``)

A folder of one sub-directory per label, each holding one document per file (IMDB's
``aclImdb/train/pos/0_9.txt``, 20 Newsgroups, BBC News), is read by
:func:`read_text_folder`.

A line without the delimiter, an empty label or an empty text is an :class:`RnnkitError`
naming the file and line.
"""

from __future__ import annotations

import csv
import io
import re

from rnnkit.data._util import data_suffix, is_number, read_file_text
from rnnkit.errors import RnnkitError

__all__ = ["read_labeled_text", "looks_like_labeled_text", "read_text_file", "name_index", "LABEL_NAMES",
           "TEXT_NAMES", "read_text_folder", "is_text_folder"]

#: header names of a label column
LABEL_NAMES = ("label", "labels", "class", "category", "intent", "sentiment", "target", "y", "tag", "polarity",
               "topic", "emotion", "language", "activity")
#: header names of a text column
TEXT_NAMES = ("text", "sentence", "utterance", "review", "query", "sequence", "document", "content", "comment",
              "tweet", "message", "question", "title", "body", "phrase", "sms", "seq")



def name_index(names, choices) -> int | None:
    """The column of ``names`` called by the earliest of ``choices`` (case-insensitive), or None."""
    low = [str(n).strip().lower() for n in names]
    return next((low.index(c) for c in choices if c in low), None)


def _named_columns(row) -> tuple[int, int] | None:
    """(label column, text column) named by a header row, or None."""
    label = name_index(row, LABEL_NAMES)
    text = name_index(row, TEXT_NAMES)
    return None if label is None or text is None or label == text else (label, text)


_FASTTEXT = "__label__"


def _fasttext_rows(path, text: str):
    """[(line number, [label, text])] of a file in fastText's layout (most non-blank lines
    start with ``__label__``), or None for any other file."""
    lines = [(n, line.strip()) for n, line in enumerate(text.split("\n"), 1) if line.strip()]
    if not lines or sum(line.startswith(_FASTTEXT) for _, line in lines[:200]) < 0.9 * min(len(lines), 200):
        return None
    rows = []
    for n, line in lines:
        words = line.split()
        labels = [w for w in words if w.startswith(_FASTTEXT)]
        if not line.startswith(_FASTTEXT) or not labels[0][len(_FASTTEXT):]:
            raise RnnkitError(f"{path}, line {n}: expected '__label__LABEL text' (fastText's layout), got {line[:60]!r}")
        rows.append((n, [labels[0][len(_FASTTEXT):], " ".join(w for w in words if not w.startswith(_FASTTEXT))]))
    return rows


#: keys of a review's rating, read as its label when no key is named like a label
RATING_KEYS = ("stars", "rating", "overall", "score")


def _key(keys, names) -> str | None:
    """The key of ``keys`` named by the earliest of ``names`` (case, '_' and '-' ignored)."""
    plain = {re.sub(r"[_\-\s]", "", k.lower()): k for k in keys}
    return next((plain[n] for n in names if n in plain), None)


def _json_rows(path, text: str):
    """A file of one JSON object per line (``.jsonl``: Yelp's and Amazon's reviews, data set
    exports) as rows [label, text] below a header: the text under a key named like
    :data:`TEXT_NAMES` (``reviewText`` too), the label under one named like
    :data:`LABEL_NAMES`, else a rating (:data:`RATING_KEYS`). None when the file is not one
    object per line; a line that is not JSON, or lacks either key, is an RnnkitError."""
    import json

    lines = [(n, line.strip()) for n, line in enumerate(text.split("\n"), 1) if line.strip()]
    if not lines or not lines[0][1].startswith("{"):
        return None
    rows, keys = [], None
    for n, line in lines:
        try:
            obj = json.loads(line)
        except ValueError:
            raise RnnkitError(f"{path}, line {n}: not a JSON object (one per line: {{\"text\": …, \"label\": …}})") \
                from None
        if not isinstance(obj, dict):
            raise RnnkitError(f"{path}, line {n}: a JSON {type(obj).__name__}, expected an object")
        if keys is None:
            text_key = _key(obj, TEXT_NAMES + ("reviewtext",))
            label_key = _key(obj, LABEL_NAMES) or _key(obj, RATING_KEYS)
            if text_key is None or label_key is None:
                raise RnnkitError(f"{path}, line {n}: keys {', '.join(list(obj)[:8])}; expected a text key "
                                  f"({', '.join(TEXT_NAMES[:5])}, …) and a label key ({', '.join(LABEL_NAMES[:5])}, …)")
            keys = (label_key, text_key)
        if keys[0] not in obj or keys[1] not in obj:
            raise RnnkitError(f"{path}, line {n}: no {keys[0] if keys[0] not in obj else keys[1]!r} key")
        label = obj[keys[0]]
        rows.append((n, [str(int(label)) if isinstance(label, float) and label.is_integer() else str(label),
                         str(obj[keys[1]])]))
    return [(0, ["label", "text"])] + rows


def _rows(path, text: str):
    """[(line number, fields)] of the non-blank lines, and whether the file is a CSV with a
    header naming its label and text columns (then the fields are the CSV's)."""
    fast = _fasttext_rows(path, text)
    if fast is not None:
        return fast, False
    if data_suffix(path) in (".jsonl", ".ndjson", ".json"):
        records = _json_rows(path, text)
        if records is not None:
            return records, True
    if data_suffix(path) == ".csv":
        reader = csv.reader(io.StringIO(text))
        rows = [(reader.line_num, r) for r in reader if r and any(c.strip() for c in r)]
        named = _named_columns(rows[0][1]) if rows else None
        if named is not None and _texts([r[named[1]] for _, r in rows[1:51] if named[1] < len(r)]):
            return rows, True
        if named is None and len(rows) >= 3 and all(len(r) == 2 for _, r in rows):
            label, text, _ = _two_columns(rows)
            if _texts([r[text] for _, r in rows[1:51]]):
                return rows, True
        several = _several_columns(rows) if named is None else None
        if several is not None:               # as two columns: the label, the texts joined
            label, texts, header = several
            body = [(n, [r[label], " ".join(r[j].strip() for j in texts if r[j].strip())])
                    for n, r in (rows[1:] if header else rows)]
            return [(rows[0][0], ["label", "text"])] + body, True
    return [(n, [_unquote(f) for f in line.split("\t")])
            for n, line in enumerate(text.split("\n"), 1) if line.strip()], False


_QUOTED = re.compile(r'^"((?:[^"]|"")*)"$')


def _unquote(field: str) -> str:
    """A tab-separated field as CSV writers quote it (``"said ""hi"", then"``: wrapped in
    quotes, every inner quote doubled) without its quoting; any other field as it is."""
    m = _QUOTED.match(field.strip())
    return m.group(1).replace('""', '"') if m and len(field.strip()) > 1 else field


def _texts(cells) -> bool:
    """Whether most cells are words, not numbers."""
    cells = [c.strip() for c in cells]
    return sum(not is_number(c) for c in cells) > len(cells) / 2


def _several_columns(rows, sample: int = 200) -> tuple[int, list[int], bool] | None:
    """(label column, text columns, whether the first row is a header) of a CSV of three
    columns or more, one of labels and some of texts (AG News: ``"3","Wall St. Bears …",
    "Reuters - …"``, with or without a ``Class Index,Title,Description`` header): the
    texts are the columns whose cells mostly hold words with spaces between them and mostly
    differ; the label is the column whose header holds a label word, else the one of the
    fewest distinct values, which must repeat; more than two columns of numbers (sensor
    channels) make it a series file. None for any other file."""
    width = len(rows[0][1]) if rows else 0
    if width < 3 or len(rows) < 3 or any(len(r) != width for _, r in rows):
        return None
    head = [c.strip() for c in rows[0][1]]
    body = [r for _, r in rows[1:sample + 1]]

    def distinct(j):
        return len({r[j].strip() for r in body})

    # texts: mostly words with spaces between them, and mostly different (labels repeat)
    texts = [j for j in range(width)
             if sum(" " in r[j].strip() and not is_number(r[j]) for r in body) > len(body) / 2
             and distinct(j) > len(body) / 2]
    others = [j for j in range(width) if j not in texts]
    numeric = [j for j in others if all(is_number(r[j]) for r in body)]
    if not texts or not others or len(numeric) > 2:        # channels of numbers: a series file
        return None

    named = [j for j in others if set(re.findall(r"[a-z]+", head[j].lower())) & set(LABEL_NAMES)]
    label = named[0] if named else min(others, key=distinct)
    if distinct(label) > max(2, len(body) // 2):
        return None                           # labels repeat; ids and numbers do not
    header = all(head[j] not in {r[j].strip() for r in body} for j in [label] + texts)
    return label, texts, header


def _two_columns(rows) -> tuple[int, int, bool]:
    """(label column, text column, whether the first row is a header) of rows of two
    fields that no header names: the label is the column with fewer distinct values
    (labels repeat, texts do not; a tie: the first), and the first row is a header when
    neither of its cells occurs again in its column."""
    body = rows[1:]
    firsts = [r[0].strip() for _, r in body]
    lasts = [r[1].strip() for _, r in body]
    label = 1 if len(set(lasts)) < len(set(firsts)) else 0
    head = [c.strip() for c in rows[0][1]]
    header = head[label] not in (lasts if label else firsts) and head[1 - label] not in (firsts if label else lasts)
    return label, 1 - label, header


def _layout(rows, csv_file: bool) -> tuple[int, int, bool]:
    """(label column, text column, whether the first row is a header); text column -1
    means "every field after the label" (label<TAB>text with tabs in the text)."""
    named = _named_columns(rows[0][1]) if rows else None
    if csv_file:
        return (named[0], named[1], True) if named else _two_columns(rows)
    body = rows[1:] if named else rows
    if named and all(len(r) == 2 for _, r in rows):
        return named[0], named[1], True
    if body and all(len(r) == 2 for _, r in body):
        firsts = {r[0].strip() for _, r in body}
        lasts = {r[1].strip() for _, r in body}
        if len(lasts) < len(firsts) and not all(is_number(v) for v in lasts):
            return 1, 0, bool(named)
    return 0, -1, bool(named)


def looks_like_labeled_text(path, max_lines: int = 200) -> bool:
    """True when the file reads as labelled text (module docstring) whose texts are not
    numbers.

    Most lines decide, so a text file with a few bad lines (no tab, an empty label) is
    still text, and :func:`read_labeled_text` names the bad line.
    """
    try:
        _, text = read_file_text(path, "auto", "text file")
    except RnnkitError:
        return False
    rows, csv_file = _rows(path, text)
    if csv_file:
        return True
    rows = rows[:max_lines]
    tabbed = [(n, r) for n, r in rows if len(r) > 1]
    if not tabbed or len(tabbed) < 0.5 * len(rows):
        return False
    label, col, _ = _layout(tabbed, False)
    texts = [r[1:] if col == -1 else [r[col]] for _, r in tabbed]
    # UCR-style numeric TSV: the "text" is a tab-separated row of numbers
    numeric = sum(1 for t in texts if all(is_number(v) for v in t if v.strip()))
    return numeric < 0.5 * len(texts)


def read_labeled_text(path) -> tuple[list[str], list[str]]:
    """Read labelled text (module docstring; UTF-8, blank lines skipped); returns (texts,
    labels)."""
    path, text = read_file_text(path, "auto", "text file")
    rows, csv_file = _rows(path, text)
    if not rows:
        raise RnnkitError(f"{path}: no 'label<TAB>text' lines")
    if data_suffix(path) == ".csv" and not csv_file:
        raise RnnkitError(f"{path}: a CSV of texts needs a header naming its text column "
                          f"({', '.join(TEXT_NAMES[:6])}, …) and its label column ({', '.join(LABEL_NAMES[:6])}, …), "
                          f"or just those two columns")
    label, col, header = _layout(rows, csv_file)
    texts, labels = [], []
    if csv_file:
        names = [c.strip() for c in rows[0][1]] if header else [f"{k + 1}" for k in range(len(rows[0][1]))]
        where, what = f"label column {names[label]!r}", f"text column {names[col]!r}"
    else:
        where, what = (("label (after the tab)", "text (before the tab)") if label else
                       ("label (before the tab)", "text (after the tab)"))
    for n, fields in rows[1:] if header else rows:
        if not csv_file and len(fields) < 2:
            raise RnnkitError(f"{path}, line {n}: expected 'label<TAB>text', found no tab in {fields[0][:60]!r}")
        if max(label, col) >= len(fields):
            raise RnnkitError(f"{path}, line {n}: expected {max(label, col) + 1} fields, found {len(fields)}")
        body = "\t".join(fields[1:]) if col == -1 else fields[col]
        if not fields[label].strip():
            raise RnnkitError(f"{path}, line {n}: the {where} is empty")
        if not body.strip():
            raise RnnkitError(f"{path}, line {n}: the {what} is empty")
        labels.append(fields[label].strip())
        texts.append(body.strip())
    if not texts:
        raise RnnkitError(f"{path}: no 'label<TAB>text' lines")
    return texts, labels


def read_text_file(path) -> tuple[list[str], list[str] | None]:
    """Texts to classify, with their labels when the file has them: labelled text (module
    docstring), else the column of a CSV whose header names a text column, else every
    non-blank line; returns (texts, labels or None)."""
    if looks_like_labeled_text(path):
        return read_labeled_text(path)
    path, text = read_file_text(path, "auto", "text file")
    if data_suffix(path) == ".csv":
        rows = [r for r in csv.reader(io.StringIO(text)) if r and any(c.strip() for c in r)]
        col = name_index(rows[0], TEXT_NAMES) if rows else None
        if col is not None:
            return [r[col].strip() for r in rows[1:] if col < len(r)], None
    return [ln.strip() for ln in text.split("\n") if ln.strip()], None


#: label sub-directories of a text folder that hold documents without a label (aclImdb's
#: 50,000 unlabelled reviews): not read
UNLABELLED_DIRS = ("unsup", "unlabeled", "unlabelled")


def _folder_documents(directory):
    """({label: [file paths]}, skipped sub-directories) of a folder of label sub-directories:
    the regular files of each, hidden ones and those of hidden, ``_…`` or unlabelled
    sub-directories left out."""
    import os

    docs, skipped = {}, []
    for label in sorted(os.listdir(directory)):
        sub = os.path.join(directory, label)
        if not os.path.isdir(sub) or label.startswith(".") or label == "__MACOSX":
            continue
        if label.startswith("_") or label.lower() in UNLABELLED_DIRS:
            skipped.append(label)
            continue
        files = sorted(os.path.join(sub, f) for f in os.listdir(sub)
                       if not f.startswith(".") and os.path.isfile(os.path.join(sub, f)))
        if files:
            docs[label] = files
    return docs, skipped


def is_text_folder(directory) -> bool:
    """Whether ``directory`` holds label sub-directories of documents: files, none of them
    ``.wav`` (a folder of recordings is audio) and not tables of numbers (sensor recordings)."""
    from rnnkit.data.channels import is_recording_folder

    docs, _ = _folder_documents(directory)
    return (bool(docs) and not any(data_suffix(f) == ".wav" for files in docs.values() for f in files)
            and not is_recording_folder(directory))


def read_text_folder(directory) -> tuple[list[str], list[str], list[str]]:
    """(texts, labels, files) of a folder of one sub-directory per label, each file one
    document (its lines joined by spaces). Sub-directories named ``_…`` or
    :data:`UNLABELLED_DIRS`, and files the reader had to decode other than as UTF-8, are
    said in a :class:`~rnnkit.errors.DataNote`; an empty document is an
    :class:`RnnkitError` naming its file."""
    import os
    import warnings

    from rnnkit.errors import DataNote

    directory = os.fspath(directory)
    docs, skipped = _folder_documents(directory)
    if not docs:
        raise RnnkitError(f"{directory}: no label sub-directories holding documents "
                          f"(expected {directory}/<label>/<document>.txt)")
    texts, labels, files, recoded = [], [], [], 0
    for label, paths in docs.items():
        for path in paths:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                _, text = read_file_text(path, "auto", "text file")
            recoded += any(issubclass(w.category, DataNote) for w in caught)
            body = " ".join(text.split())
            if not body:
                raise RnnkitError(f"{path}: an empty document")
            texts.append(body)
            labels.append(label)
            files.append(path)
    said = [f"{directory}: {len(texts):,} documents in {len(docs)} label folders ({', '.join(list(docs)[:6])}"
            f"{', …' if len(docs) > 6 else ''})"]
    if skipped:
        said.append(f"{', '.join(skipped)} (no label) not read")
    if recoded:
        said.append(f"{recoded} not UTF-8, read in the encoding their bytes tell")
    warnings.warn(DataNote("; ".join(said)), stacklevel=2)
    return texts, labels, files
