"""Helpers shared by the data readers and generators: files, random generators, numbers."""

from __future__ import annotations

import os

import numpy as np

from rnnkit._checks import check_seed
from rnnkit.errors import RnnkitError


#: the first two bytes of a gzip file
GZIP_MAGIC = b"\x1f\x8b"


def data_suffix(path) -> str:
    """The lower-case suffix that tells a data file's format, behind a ``.gz``:
    ``train.tsv.gz`` -> ``.tsv``."""
    name = os.path.basename(os.fspath(path)).lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return os.path.splitext(name)[1]


def open_text(path):
    """A text stream of a file's beginning for sniffing its layout (``newline=""``, for
    csv), decompressed when it is gzip (told by its first bytes). Bytes that are not
    UTF-8 read as U+FFFD: the readers decode the whole file with :func:`read_file_text`."""
    import gzip

    with open(path, "rb") as f:
        gz = f.read(2) == GZIP_MAGIC
    return (gzip.open if gz else open)(path, "rt", encoding="utf-8", errors="replace", newline="")


#: byte-order marks, longest first (UTF-32's little-endian mark begins with UTF-16's)
BOMS = ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"), (b"\xef\xbb\xbf", "utf-8-sig"),
        (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
ENCODING_NAMES = {"cp1252": "Windows-1252 (Western European)", "latin-1": "Latin-1 (ISO-8859-1)",
                  "utf-16-le": "UTF-16 little-endian", "utf-16-be": "UTF-16 big-endian"}


#: what ``encoding="auto"`` means: None guesses (:func:`guess_encoding`); a codec name
#: (set by the CLI's ``--encoding``, :func:`input_encoding`) reads every input with it
_AUTO = [None]


class input_encoding:
    """``with input_encoding("cp1251"):`` every file read with ``encoding="auto"`` inside
    the block is decoded with that codec instead of a guess (None: guess). An unknown
    codec is a ValueError naming it."""

    def __init__(self, name: str | None):
        if name is not None:
            import codecs

            try:
                name = codecs.lookup(name).name
            except LookupError:
                raise ValueError(f"unknown encoding {name!r} (expected a Python codec name such as utf-8, "
                                 f"cp1252, latin-1, cp1251, shift_jis, gb18030)") from None
        self.name = name

    def __enter__(self):
        self._before = _AUTO[0]
        _AUTO[0] = self.name
        return self

    def __exit__(self, *exc):
        _AUTO[0] = self._before
        return False


def guess_encoding(raw: bytes) -> str:
    """The encoding a file's bytes are most likely in, for ``encoding="auto"``.

    A byte-order mark decides (UTF-8, UTF-16, UTF-32). Without one: UTF-16 when one
    byte of each pair is mostly NUL (text never holds NUL otherwise), UTF-8 when the
    bytes are valid UTF-8 (ASCII is), else Windows-1252, the encoding of most text
    saved by Windows and of older Western European files, and Latin-1 when a byte
    1252 leaves undefined occurs (Latin-1 decodes every byte).
    """
    for bom, name in BOMS:
        if raw.startswith(bom):
            return name
    head = raw[:4096]
    if len(head) >= 4:
        even, odd = head[0::2], head[1::2]
        if odd.count(0) > 0.3 * len(odd) and even.count(0) < 0.05 * len(even):
            return "utf-16-le"
        if even.count(0) > 0.3 * len(even) and odd.count(0) < 0.05 * len(odd):
            return "utf-16-be"
    try:
        raw.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        raw.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def read_file_text(path, encoding: str = "auto", what: str = "file") -> tuple[str, str]:
    """Read and decode a whole file; returns ``(path as str, text)``.

    ``encoding="auto"`` (the default) reads UTF-8, and whatever :func:`guess_encoding`
    tells from the bytes otherwise: a guess other than UTF-8 or a byte-order mark's is
    said in a :class:`~rnnkit.errors.DataNote` warning naming the file. Inside
    ``with input_encoding(name)`` "auto" means ``name``.

    Newlines are normalized like Python's text mode (``\\r\\n`` and ``\\r`` become
    ``\\n``) and a leading byte-order mark is dropped, and so is the text of a ``.csv``
    file's first line ``sep=;`` (Excel's delimiter hint) or a web address alone on it (the
    source link some downloads put above the header; either line stays, empty, so line
    numbers hold). A gzip-compressed file (``.gz``,
    told by its first bytes) is decompressed first. A missing file, a directory, an
    unreadable or broken gzip file and bytes that are not valid ``encoding`` (with the
    byte offset) are :class:`RnnkitError` naming the path; an unknown encoding is a
    ValueError.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise RnnkitError(f"{what} not found: {path}")
    if os.path.isdir(path):
        raise RnnkitError(f"expected a {what}, got a directory: {path}")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise RnnkitError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    if raw[:2] == GZIP_MAGIC:
        import gzip
        import zlib

        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise RnnkitError(f"{path}: a gzip file that does not decompress ({exc})") from exc
    if encoding == "auto" and _AUTO[0] is not None:
        encoding = _AUTO[0]
    if encoding == "auto":
        encoding = guess_encoding(raw)
        if not encoding.startswith("utf-16") and not encoding.startswith("utf-32") and b"\0" in raw[:4096]:
            kind = "a zip archive (an .xlsx workbook? save it as CSV)" if raw[:4] == b"PK\x03\x04" else \
                "a binary file (it holds NUL bytes)"
            raise RnnkitError(f"{path}: {kind}, not a {what}")
        if encoding in ENCODING_NAMES:
            import warnings

            from rnnkit.errors import DataNote

            warnings.warn(DataNote(f"{path}: not UTF-8; read as {ENCODING_NAMES[encoding]} (--encoding NAME "
                                   f"reads another)"), stacklevel=2)
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise RnnkitError(f"{path}: bytes at offset {exc.start} are not valid {encoding} "
                          f"({exc.reason}); save the file as {encoding}") from exc
    except LookupError as exc:
        raise ValueError(f"unknown encoding {encoding!r}") from exc
    if text.startswith("\ufeff"):
        text = text[1:]
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if data_suffix(path) == ".csv":
        first, _, rest = text.partition("\n")
        header = rest.split("\n", 1)[0]
        if len(text) > 5 and text.startswith("sep=") and text[5:6] in ("\n", ""):
            text = text[5:]      # Excel's "sep=;" line names the delimiter, which is sniffed anyway
        elif first.strip().lower().startswith(("http://", "https://", "www.")) and not any(
                c in first for c in ",;\t|") and any(c in header for c in ",;\t|"):
            text = text[len(first):]     # a download's source link above the header (CryptoDataDownload)
    return path, text


def is_number(cell: str) -> bool:
    """Whether a cell of a text file reads as a number (``float`` reads it)."""
    try:
        float(cell)
    except ValueError:
        return False
    return True


def csv_head(path, max_rows: int, max_chars: int = 1 << 20) -> list[list[str]] | None:
    """The first ``max_rows`` non-blank rows of a ``.csv`` file (from its first ``max_chars``
    characters; the last row may be cut there), or None for another file or one that cannot
    be read: for telling a file's layout before reading it."""
    import csv
    import io

    if data_suffix(path) != ".csv":
        return None
    try:
        _, text = read_file_text(path, "auto", "CSV file")
    except RnnkitError:
        return None
    return [r for r in csv.reader(io.StringIO(text[:max_chars])) if r and any(c.strip() for c in r)][:max_rows]


def as_rng(seed, where: str) -> np.random.Generator:
    """A NumPy Generator from an int seed, an existing Generator (used as is) or None."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise TypeError(f"{where}: seed must be an int, a numpy Generator or None, got {type(seed).__name__}")
    return np.random.default_rng(check_seed(seed, where))


# Values a model is trained on must keep their squares and their differences finite
# and normal in float64 (losses, scalers and error metrics square them): beyond
# these bounds a value is refused, naming where it sits, instead of overflowing later.
MAX_MAGNITUDE = 1e150
MIN_MAGNITUDE = 1e-150


def magnitude_problem(v: float) -> str | None:
    """Why the finite value ``v`` is unusable for training, or None when it is fine."""
    a = abs(v)
    if a > MAX_MAGNITUDE:
        return f"is too large (|value| > {MAX_MAGNITUDE:g}: its square overflows); rescale the data"
    if 0 < a < MIN_MAGNITUDE:
        return f"is too small (0 < |value| < {MIN_MAGNITUDE:g}: its square underflows); rescale the data"
    return None


def first_bad_magnitude(arr: np.ndarray):
    """The index (a tuple) of the first value of ``arr`` outside the usable magnitudes, or None."""
    a = np.abs(arr)
    bad = (a > MAX_MAGNITUDE) | ((a > 0) & (a < MIN_MAGNITUDE))
    if not bad.any():
        return None
    return tuple(int(i) for i in np.argwhere(bad)[0])
