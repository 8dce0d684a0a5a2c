"""Variable-length sequences: padding with lengths, labels, minibatches, class weights.

Padding stacks B sequences of lengths T_1 … T_B into one array of T = max T_b
steps; steps past a sequence's length hold ``pad_value`` and are ignored by the
cells when ``lengths`` is passed (packed-sequence semantics, see DESIGN.md).

Balanced class weights make every class contribute equally to a weighted loss:

    w_c = n / (K · n_c)

for the K classes present, n samples and n_c samples of class c (w_c = 0 for a
class with no samples), so Σ_c n_c · w_c = n.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from rnnkit._checks import check_choice, check_positive_int
from rnnkit.errors import CheckpointError, RnnkitError
from rnnkit.data._util import as_rng
from rnnkit.data.text import CharVocab

__all__ = [
    "cut_windows",
    "pad_sequences",
    "LabelEncoder",
    "minibatches",
    "class_weights",
    "stratified_split",
    "stratified_folds",
    "class_weights_for",
    "encode_strings",
    "one_hot",
]


def _as_sequence_list(seqs, name: str, where: str) -> list[np.ndarray]:
    """A list of ≥1-D numeric arrays with equal trailing shapes (each of length ≥ 1)."""
    if isinstance(seqs, np.ndarray):
        if seqs.ndim < 2:
            raise ValueError(f"{where}: an array {name} must have at least 2 dims (n, T, ...), got {seqs.ndim}")
        seqs = list(seqs)
    elif not isinstance(seqs, (list, tuple)):
        raise TypeError(f"{where}: expected {name} to be a list of arrays, got {type(seqs).__name__}")
    if not seqs:
        raise ValueError(f"{where}: {name} is empty")
    out = []
    for i, s in enumerate(seqs):
        a = np.asarray(s)
        if a.dtype.kind not in "iuf" and not (a.dtype.kind == "b"):
            raise TypeError(f"{where}: {name}[{i}] must be numeric, got dtype {a.dtype}")
        if a.ndim < 1:
            raise ValueError(f"{where}: {name}[{i}] must have at least 1 dim (T, ...), got a scalar")
        if len(a) == 0:
            raise ValueError(f"{where}: {name}[{i}] is empty; every sequence needs at least 1 step")
        if out and a.shape[1:] != out[0].shape[1:]:
            raise ValueError(f"{where}: {name}[{i}] has step shape {a.shape[1:]}, but {name}[0] has "
                             f"{out[0].shape[1:]}; all sequences need the same shape after the time axis")
        out.append(a)
    return out


def _pad(arrays: list[np.ndarray], batch_first: bool, pad_value, dtype) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)
    dt = np.result_type(*arrays) if dtype is None else np.dtype(dtype)
    T, B = int(lengths.max()), len(arrays)
    out = np.full((B, T) + arrays[0].shape[1:], pad_value, dtype=dt)
    for b, a in enumerate(arrays):
        out[b, : len(a)] = a
    if not batch_first:
        out = np.ascontiguousarray(np.swapaxes(out, 0, 1))  # (B, T, ...) -> (T, B, ...)
    return out, lengths


def pad_sequences(seqs, batch_first: bool = False, pad_value=0, dtype=None):
    """Pad sequences to the longest one; returns ``(padded, lengths)``.

    ``seqs`` are (T_i, F) float arrays or (T_i,) integer id arrays (any trailing
    shape, the same for all). The dtype is NumPy's common dtype of the inputs
    unless ``dtype`` is given.

    Shapes:
        seqs: B arrays (T_i, ...)  ->  padded (T, B, ...) time-major, or (B, T, ...) with
        batch_first; lengths int64 (B,); T = max T_i
    """
    arrays = _as_sequence_list(seqs, "seqs", "pad_sequences")
    return _pad(arrays, batch_first, pad_value, dtype)


def _plain_label(v, where: str):
    """A label as a plain, JSON-able Python value (str, int, float or bool)."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, (str, bool, int)):
        return v
    if isinstance(v, float) and np.isfinite(v):
        return v
    raise TypeError(f"{where}: labels must be strings, integers, finite floats or booleans, "
                    f"got {v!r} of type {type(v).__name__}")


def _label_list(labels, where: str) -> list:
    """The labels of a 1-D array or any iterable, each as a plain Python value."""
    if isinstance(labels, str):
        raise TypeError(f"{where}: labels must be a list or 1-D array, got one str (wrap it in a list)")
    if isinstance(labels, np.ndarray):
        if labels.ndim != 1:
            raise ValueError(f"{where}: expected labels with 1 dim (n,), got {labels.ndim}")
        labels = labels.tolist()
    return [_plain_label(v, where) for v in labels]


def _label_key(v):
    # Numbers before strings, each in natural order: [1, 2, 10, 'a', 'b'].
    return (1, v) if isinstance(v, str) else (0, v)


def _show_labels(labels, limit: int = 10) -> str:
    shown = ", ".join(repr(v) for v in labels[:limit])
    return shown + (f", … ({len(labels)} in all)" if len(labels) > limit else "")


class LabelEncoder:
    """Class labels <-> ids 0 … K−1.

    ``fit`` sorts the distinct labels (numbers, then strings); ``LabelEncoder(classes)``
    keeps a given order instead. Labels unknown at ``transform`` raise
    :class:`RnnkitError` naming them.
    """

    def __init__(self, classes=None):
        self.classes: list | None = None
        self._index: dict = {}
        if classes is not None:
            plain = [_plain_label(c, "LabelEncoder") for c in classes]
            if not plain:
                raise ValueError("LabelEncoder: classes is empty")
            if len(set(plain)) != len(plain):
                raise ValueError(f"LabelEncoder: classes must be unique, got {plain!r:.200}")
            self._set(plain)

    def _set(self, classes: list) -> None:
        self.classes = classes
        self._index = {c: i for i, c in enumerate(classes)}

    @property
    def num_classes(self) -> int:
        """K, the number of classes (0 before fit)."""
        return 0 if self.classes is None else len(self.classes)

    def __len__(self) -> int:
        return self.num_classes

    def __repr__(self) -> str:
        return f"LabelEncoder(num_classes={self.num_classes})"

    def fit(self, labels) -> "LabelEncoder":
        """Learn the classes of ``labels`` (sorted)."""
        plain = _label_list(labels, "LabelEncoder.fit")
        if not plain:
            raise ValueError("LabelEncoder.fit: labels is empty")
        self._set(sorted(set(plain), key=_label_key))
        return self

    def transform(self, labels) -> np.ndarray:
        """Ids of ``labels``.

        Shapes:
            labels: (n,)  ->  int64 (n,)
        """
        if self.classes is None:
            raise RnnkitError("LabelEncoder.transform: not fitted; call fit(labels) first")
        plain = _label_list(labels, "LabelEncoder.transform")
        unknown = sorted({v for v in plain if v not in self._index}, key=_label_key)
        if unknown:
            raise RnnkitError(f"LabelEncoder: unknown labels {_show_labels(unknown)} "
                              f"(known: {_show_labels(self.classes)})")
        return np.array([self._index[v] for v in plain], dtype=np.int64)

    def fit_transform(self, labels) -> np.ndarray:
        """``fit(labels)`` then ``transform(labels)``."""
        return self.fit(labels).transform(labels)

    def inverse_transform(self, ids) -> list:
        """Labels of class ids.

        Shapes:
            ids: int (n,)  ->  list of n labels
        """
        if self.classes is None:
            raise RnnkitError("LabelEncoder.inverse_transform: not fitted; call fit(labels) first")
        arr = np.asarray(ids)
        if arr.size == 0:
            return []
        if arr.dtype.kind not in "iu":
            raise TypeError(f"LabelEncoder.inverse_transform: ids must be integers, got dtype {arr.dtype}")
        if arr.min() < 0 or arr.max() >= self.num_classes:
            raise ValueError(f"LabelEncoder.inverse_transform: ids must lie in [0, {self.num_classes - 1}], "
                             f"got min {arr.min()} and max {arr.max()}")
        return [self.classes[int(i)] for i in arr.ravel()]

    def to_dict(self) -> dict:
        """A JSON-able description; :meth:`from_dict` rebuilds the encoder."""
        if self.classes is None:
            raise RnnkitError("LabelEncoder.to_dict: not fitted")
        return {"type": "LabelEncoder", "classes": list(self.classes)}

    @classmethod
    def from_dict(cls, d) -> "LabelEncoder":
        """Rebuild from :meth:`to_dict`; a malformed dict is a CheckpointError."""
        if not isinstance(d, dict) or not isinstance(d.get("classes"), list):
            raise CheckpointError(f"LabelEncoder.from_dict: expected a dict with a list 'classes', got {d!r:.80}")
        try:
            return cls(d["classes"])
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"LabelEncoder.from_dict: {exc}") from exc


def _is_sequence_targets(y) -> bool:
    """True when ``y`` is a list of per-sample sequences rather than one label per sample."""
    return isinstance(y, (list, tuple)) and len(y) > 0 and all(np.ndim(v) >= 1 for v in y)


def minibatches(x, y=None, batch_size: int = 32, shuffle: bool = True, seed=None,
                drop_last: bool = False, pad_value=0, bucket: int = 0) -> Iterator[dict[str, np.ndarray]]:
    """Time-major minibatches of variable-length sequences, each padded to its own longest.

    ``bucket`` = k > 1 (with ``shuffle``, when the lengths differ) sorts each run of k
    batches' worth of the shuffled order by length (then by target length, for sequence
    targets) before cutting it into batches, and
    then shuffles the batches: a batch holds sequences of similar lengths, so little of
    its padded time steps is padding (with lengths spread evenly between L and 12 L, a
    batch of random ones pads to about 2× their mean), while every epoch still draws new
    batches. Sequences of one length, and k of 0 or 1, are batched as without it.

    ``x`` is a list of n arrays (T_i, ...) (or an (n, T, ...) array of equal-length
    ones). ``y`` is optional: one target per sample (an (n, ...) array or list, e.g.
    class ids), or a list of n target sequences, which are padded too and come
    with ``"y_lengths"``. With ``shuffle`` the order is a permutation drawn from
    ``seed`` (an int gives the same order every time; pass one
    ``np.random.default_rng(seed)`` to get a new order each epoch, reproducibly).
    Every batch also carries ``"index"``, the samples' positions in ``x``.
    Arguments are checked when called, before iteration starts.

    Shapes:
        yields {"x": (T_b, B, ...), "lengths": int64 (B,), "index": int64 (B,),
                "y": (B, ...) or (T_y, B, ...), "y_lengths": int64 (B,) for sequence targets}
        T_b = the longest length in the batch; B = batch_size (the last batch may be smaller)
    """
    where = "minibatches"
    xs = _as_sequence_list(x, "x", where)
    n = len(xs)
    batch_size = check_positive_int(batch_size, "batch_size", where)
    rng = as_rng(seed, where) if shuffle else None
    seq_targets = False
    ys = None
    if y is not None:
        if len(y) != n:
            raise ValueError(f"{where}: x has {n} samples but y has {len(y)}")
        seq_targets = _is_sequence_targets(y)
        ys = _as_sequence_list(y, "y", where) if seq_targets else np.asarray(y)
    if drop_last and n < batch_size:
        raise RnnkitError(f"{where}: {n} samples make no full batch of batch_size={batch_size} with drop_last=True")

    bucket = check_positive_int(bucket, "bucket", where, minimum=0)
    sizes = np.array([len(a) for a in xs])
    y_sizes = np.array([len(a) for a in ys]) if seq_targets else np.zeros_like(sizes)
    varied = len(sizes) and (np.ptp(sizes) > 0 or np.ptp(y_sizes) > 0)
    bucket = bucket if bucket > 1 and shuffle and varied else 0

    def generate():
        order = rng.permutation(n) if shuffle else np.arange(n)
        stop = n - n % batch_size if drop_last else n
        starts = list(range(0, stop, batch_size))
        if bucket:
            span = bucket * batch_size
            order = np.concatenate([chunk[np.lexsort((y_sizes[chunk], sizes[chunk]))]
                                    for chunk in np.split(order, range(span, n, span))])
            starts = [starts[i] for i in rng.permutation(len(starts))]
        for lo in starts:
            idx = order[lo: lo + batch_size].astype(np.int64)
            xb, lengths = _pad([xs[i] for i in idx], False, pad_value, None)
            batch = {"x": xb, "lengths": lengths, "index": idx}
            if ys is not None:
                if seq_targets:
                    batch["y"], batch["y_lengths"] = _pad([ys[i] for i in idx], False, pad_value, None)
                else:
                    batch["y"] = ys[idx]
            yield batch

    return generate()


def cut_windows(X, y, length: int):
    """Each sequence cut into consecutive windows of ``length`` steps, each with the
    sequence's label (a recording of minutes -> examples of seconds). A last piece of at
    least half a window is kept as a shorter window; a sequence shorter than half a window
    stays whole. Returns (windows, labels or None, source index of each window).

    Shapes:
        X: n arrays (T_i, ...) -> windows: list of arrays (≤ length, ...)
    """
    length = check_positive_int(length, "window", "cut_windows")
    out, labels, source = [], [], []
    for i, a in enumerate(X):
        cuts = list(range(0, len(a), length))
        if len(cuts) > 1 and len(a) - cuts[-1] < length / 2:
            cuts.pop()                          # a stub under half a window
        ends = cuts[1:] + [len(a) if len(a) - cuts[-1] <= length else cuts[-1] + length]
        for lo, hi in zip(cuts, ends):
            out.append(a[lo:hi])
            source.append(i)
    if y is not None:
        labels = [y[i] for i in source]
    return out, (labels if y is not None else None), np.asarray(source, dtype=np.int64)


def stratified_split(ids, num_classes: int, fraction: float, seed: int) -> np.ndarray:
    """A held-out mask: ``fraction`` of every class's members (at least one and not all of
    a class of two or more), drawn with ``default_rng([seed, 1])``.

    Shapes:
        ids: int (n,)  ->  bool (n,), True for the held-out part
    """
    rng = np.random.default_rng([seed, 1])
    mask = np.zeros(len(ids), dtype=bool)
    for k in range(num_classes):
        members = np.flatnonzero(ids == k)
        take = int(round(fraction * len(members)))
        if len(members) >= 2:
            take = min(max(take, 1), len(members) - 1)
            mask[rng.choice(members, size=take, replace=False)] = True
    return mask


def stratified_folds(ids, num_classes: int, folds: int, seed: int) -> np.ndarray:
    """Each item's fold, 0 … ``folds`` − 1, every class spread evenly over the folds: a
    class's members, shuffled with ``default_rng([seed, 2])``, are dealt out in turn, the
    deal starting where the previous class's ended (so folds differ in size by one at most).

    Shapes:
        ids: int (n,)  ->  int (n,)
    """
    rng = np.random.default_rng([seed, 2])
    fold = np.zeros(len(ids), dtype=np.int64)
    start = 0
    for k in range(num_classes):
        members = rng.permutation(np.flatnonzero(ids == k))
        fold[members] = (start + np.arange(len(members))) % folds
        start = (start + len(members)) % folds
    return fold


def class_weights_for(class_weight, ids, classes, where: str):
    """A classifier's per-class weights: None (no weighting), "balanced" (:func:`class_weights`)
    or a dict label -> positive weight naming every class and no other.

    Shapes:
        ids: int (n,) class ids; classes: the labels in id order  ->  float64 (K,) or None
    """
    if class_weight is None:
        return None
    if class_weight == "balanced":
        return class_weights(ids, len(classes), "balanced")
    missing = [c for c in classes if c not in class_weight]
    extra = [k for k in class_weight if k not in classes]
    if missing or extra:
        raise ValueError(f"{where}: class_weight must give a weight for every class and no other; "
                         f"missing {missing}, unknown {extra}")
    w = np.array([float(class_weight[c]) for c in classes])
    if np.any(w <= 0):
        raise ValueError(f"{where}: class weights must be positive, got {w.tolist()}")
    return w


def class_weights(labels, num_classes: int | None = None, kind: str = "balanced") -> np.ndarray:
    """Per-class loss weights from integer class ids (module docstring).

    ``kind="balanced"`` gives w_c = n / (K · n_c); ``"none"`` gives ones.

    Shapes:
        labels: int (n,)  ->  float64 (num_classes,), num_classes default max(labels) + 1
    """
    where = "class_weights"
    check_choice(kind, "kind", ("balanced", "none"), where)
    arr = np.asarray(labels)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{where}: labels must be integer class ids (use LabelEncoder), got dtype {arr.dtype}")
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{where}: expected a non-empty 1-D array of class ids, got shape {arr.shape}")
    if arr.min() < 0:
        raise ValueError(f"{where}: class ids must be >= 0, got min {arr.min()}")
    if num_classes is None:
        num_classes = int(arr.max()) + 1
    num_classes = check_positive_int(num_classes, "num_classes", where)
    if arr.max() >= num_classes:
        raise ValueError(f"{where}: class id {arr.max()} is out of range for num_classes={num_classes}")
    if kind == "none":
        return np.ones(num_classes)
    counts = np.bincount(arr, minlength=num_classes).astype(np.float64)
    present = int((counts > 0).sum())
    with np.errstate(divide="ignore"):
        w = np.where(counts > 0, arr.size / (present * counts), 0.0)
    return w


def encode_strings(strings, alphabet, on_unknown: str = "error") -> list[np.ndarray]:
    """Encode strings over an alphabet into id sequences.

    ``alphabet`` is a string whose characters get ids in order (``"ACGT"`` gives
    A=0, C=1, G=2, T=3) or a :class:`~rnnkit.data.text.CharVocab`. Characters
    outside it raise :class:`RnnkitError` naming the string and the characters
    (``on_unknown="error"``), or are dropped (``"skip"``); a vocabulary with an
    ``unk`` symbol maps them to it.

    Shapes:
        strings: n str  ->  n int64 arrays (len(s_i),)
    """
    where = "encode_strings"
    check_choice(on_unknown, "on_unknown", ("error", "skip"), where)
    if isinstance(strings, str):
        raise TypeError(f"{where}: strings must be a list of strings, got one str (wrap it in a list)")
    if isinstance(alphabet, CharVocab):
        vocab = alphabet
    elif isinstance(alphabet, str):
        if not alphabet:
            raise ValueError(f"{where}: alphabet is empty")
        vocab = CharVocab(alphabet)
    else:
        raise TypeError(f"{where}: alphabet must be a str or a CharVocab, got {type(alphabet).__name__}")
    out = []
    for i, s in enumerate(strings):
        if not isinstance(s, str):
            raise TypeError(f"{where}: strings[{i}] must be a str, got {type(s).__name__}")
        if on_unknown == "skip" and vocab.unk is None:
            s = "".join(c for c in s if c in vocab.stoi)
        try:
            out.append(vocab.encode(s))
        except RnnkitError:
            unseen = sorted({c for c in s if c not in vocab.stoi})
            raise RnnkitError(f"{where}: strings[{i}] has characters outside the alphabet "
                              f"{''.join(vocab.chars)!r:.60}: {', '.join(map(repr, unseen))}") from None
    return out


def one_hot(ids, depth: int, dtype=np.float32) -> np.ndarray:
    """One-hot vectors of integer ids.

    Shapes:
        ids: int (...)  ->  (..., depth)
    """
    depth = check_positive_int(depth, "depth", "one_hot")
    arr = np.asarray(ids)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"one_hot: ids must be integers, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= depth):
        raise ValueError(f"one_hot: ids must lie in [0, {depth - 1}], got min {arr.min()} and max {arr.max()}")
    return np.eye(depth, dtype=dtype)[arr]
