r"""A linear model on TF-IDF n-grams of token ids: the string classifier's partner.

:class:`rnnkit.tasks.classify.SequenceClassifier` averages its networks' class
probabilities with this model's for string inputs (``ngrams="auto"``). The two err
differently: the n-gram model sees which short motifs or phrases occur, wherever they
are, and is convex (the same answer for every seed); the network reads order and
context. On a small set the average is steadier than either.

Features of a sequence of token ids s = (s_1 … s_L) (characters or words, from the
classifier's :class:`rnnkit.data.tokens.Tokenizer`; unknown tokens are id 0):

    the n-grams (s_i … s_{i+n−1}) for n = 1 … N (N = 4 for characters, 2 for words),
    and for aligned strings (every training string equally long) each character
    3-gram with its place ⌊i / 10⌋, a motif near a fixed site.

An n-gram of ids below V (the vocabulary size) is the integer
Σ_{j<n} s_{i+j} V^j + Σ_{m<n} V^m, so the n-grams of each length have their own range,
and a placed 3-gram comes after all of them. Weights (TF-IDF, sublinear counts):

    x_g = (1 + log c_g) · idf_g,   idf_g = log((1 + n) / (1 + df_g)) + 1,   x ← x / ‖x‖₂

with c_g the count of n-gram g in the sequence, df_g the training sequences holding it
and n their number. An n-gram in fewer than 2 training sequences is dropped (all are
kept under 500 sequences), and of the rest at most 2^24 / K (K classes, at least 4096)
are kept, those in the most sequences; one never seen in training adds nothing at
prediction.

Model and fit: p(k | s) = softmax(Wᵀx + b)_k, by full-batch gradient descent on

    L = Σ_b w_{y_b} (−log p(y_b | s_b)) / Σ_b w_{y_b} + (λ/2) ‖W‖²,
    G_b = w_{y_b} (p_b − onehot(y_b)) / Σ_b' w_{y_b'},
    ∂L/∂W = Xᵀ G + λ W,   ∂L/∂b = Σ_b G_b,

with class weights w (the classifier's), λ = 1e-4, step 5 and 300 steps: the rows have
unit norm, so the loss's curvature is at most about 1/2 per unit of step and 5 is a
stable step.
"""

from __future__ import annotations

import numpy as np

__all__ = ["NgramModel", "add_scaled_rows"]

#: longest n-gram of characters and of words; the placed 3-grams' window
CHAR_N, WORD_N, PLACE_N, PLACE_WINDOW = 4, 2, 3, 10
#: below this many training sequences every n-gram is kept, else those in 2 or more
KEEP_ALL_BELOW = 500
L2, STEP, STEPS = 1e-4, 5.0, 300
#: at most MAX_WEIGHTS weights (n-grams × classes; 128 MB of float64) and never fewer
#: than MIN_FEATURES n-grams: past that, the n-grams in the most training sequences
MAX_WEIGHTS, MIN_FEATURES = 2 ** 24, 2 ** 12


_compiled = None        # rnnkit.fast's add_scaled_rows, looked up at the first call (False: none)


def add_scaled_rows(out, out_rows, src, src_rows, scale):
    """``out[out_rows[j]] += scale[j] · src[src_rows[j]]`` for every j; returns ``out``.

    A sparse matrix in coordinates times a dense one: X·W with out_rows the rows of X's
    entries and src_rows their columns, Xᵀ·G with the two swapped. By rnnkit.fast's C
    loop where it is built (float64), else by ``np.add.at`` (the same sums, about a
    hundred times slower on the products of a 150-class model).

    Shapes:
        out: (n, K) float64; src: (p, K) float64; out_rows, src_rows, scale: (m,)
    """
    global _compiled
    if _compiled is None:
        from rnnkit import fast

        _compiled = getattr(fast._ext, "add_scaled_rows", False)
    if _compiled and out.dtype == src.dtype == np.float64 and out.flags.c_contiguous:
        _compiled(out, np.ascontiguousarray(out_rows, dtype=np.int64), np.ascontiguousarray(src),
                  np.ascontiguousarray(src_rows, dtype=np.int64), np.ascontiguousarray(scale, dtype=np.float64))
    else:
        np.add.at(out, out_rows, src[src_rows] * scale[:, None])
    return out


def _grams(seqs, vocab_size: int, longest: int, placed: bool):
    """(row, key) of every n-gram occurrence of the id sequences ``seqs``.

    Shapes:
        seqs: n arrays (L_i,) of ids in [0, V) -> rows, keys: int64 (occurrences,)
    """
    V = int(vocab_size)
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    flat = np.concatenate([np.asarray(s, dtype=np.int64) for s in seqs] + [np.zeros(longest, np.int64)])
    row = np.repeat(np.arange(len(seqs)), lengths)
    pos = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)    # place in its sequence
    left = lengths[row] - pos                                                           # tokens from it on
    rows, keys, base = [], [], 0
    for n in range(1, longest + 1):
        at = np.flatnonzero(left >= n)
        code = np.zeros(len(at), dtype=np.int64)
        for j in range(n - 1, -1, -1):
            code = code * V + flat[at + j]
        rows.append(row[at])
        keys.append(code + base)
        if n == PLACE_N:
            trigrams, trigram_at = code, at
        base += V ** n
    if placed:
        rows.append(row[trigram_at])
        keys.append(base + (pos[trigram_at] // PLACE_WINDOW) * V ** PLACE_N + trigrams)
    return np.concatenate(rows), np.concatenate(keys)


class NgramModel:
    """Multinomial logistic regression on TF-IDF n-grams of token ids (see the module docstring).

    Args:
        vocab_size: V, the number of token ids (ids are 0 … V−1).
        word: word tokens (n-grams up to 2) or characters (up to 4).
        placed: add each character 3-gram with its place (aligned strings).
    """

    def __init__(self, vocab_size: int, word: bool = False, placed: bool = False):
        self.vocab_size = int(vocab_size)
        self.word = bool(word)
        self.longest = WORD_N if self.word else CHAR_N
        # every key fits 63 bits: a vocabulary too large for 4-grams (tens of thousands
        # of characters) takes shorter n-grams, and the placed 3-grams only where they fit
        while self.longest > 1 and self._top(False) >= 2 ** 62:
            self.longest -= 1
        self.placed = bool(placed) and not self.word and self.longest >= PLACE_N and self._top(True) < 2 ** 62
        self.keys_ = self.idf_ = self.W_ = self.b_ = None

    def _top(self, placed: bool) -> int:
        """One past the largest key: every n-gram range, then (``placed``) the placed 3-grams
        of strings up to 10⁷ tokens."""
        V = self.vocab_size
        return sum(V ** n for n in range(1, self.longest + 1)) + (10 ** 6 * V ** PLACE_N if placed else 0)

    # -- features ----------------------------------------------------------------------------
    def _counts(self, seqs):
        """Distinct (row, key) pairs of ``seqs`` with their counts, sorted by row then key."""
        rows, keys = _grams(seqs, self.vocab_size, self.longest, self.placed)
        order = np.lexsort((keys, rows))
        rows, keys = rows[order], keys[order]
        new = np.ones(len(rows), dtype=bool)
        new[1:] = (rows[1:] != rows[:-1]) | (keys[1:] != keys[:-1])
        starts = np.flatnonzero(new)
        counts = np.diff(np.append(starts, len(rows)))
        return rows[starts], keys[starts], counts

    def _matrix(self, seqs):
        """The TF-IDF rows of ``seqs`` as (rows, cols, vals), sorted by row; unit L2 norm."""
        rows, keys, counts = self._counts(seqs)
        cols = np.searchsorted(self.keys_, keys)
        cols = np.minimum(cols, len(self.keys_) - 1)
        known = self.keys_[cols] == keys
        rows, cols, counts = rows[known], cols[known], counts[known]
        vals = (1.0 + np.log(counts)) * self.idf_[cols]
        norm = np.sqrt(np.bincount(rows, weights=vals * vals, minlength=len(seqs)))
        return rows, cols, vals / norm[rows]

    # -- products ------------------------------------------------------------------------------
    def _scores(self, X, n):
        rows, cols, vals = X
        return add_scaled_rows(np.zeros((n, self.W_.shape[1])), rows, self.W_, cols, vals) + self.b_

    def _objective(self, X, y, w):
        """``f(W, b) -> (L, ∂L/∂W, ∂L/∂b)`` of the module docstring for the TF-IDF rows
        ``X`` = (rows, cols, vals), class ids ``y`` and class weights ``w``."""
        rows, cols, vals = X
        n, V = len(y), len(self.keys_)
        wb = w[y] / w[y].sum()

        def f(W, b):
            Z = add_scaled_rows(np.zeros((n, W.shape[1])), rows, W, cols, vals) + b
            Z -= Z.max(axis=1, keepdims=True)
            G = np.exp(Z)
            total = G.sum(axis=1)
            G /= total[:, None]                                         # p_b
            logp_y = Z[np.arange(n), y] - np.log(total)
            loss = -float(np.sum(wb * logp_y)) + 0.5 * L2 * float(np.sum(W * W))
            G[np.arange(n), y] -= 1.0
            G *= wb[:, None]
            gW = add_scaled_rows(L2 * W, cols, G, rows, vals)          # Xᵀ G + λ W
            return loss, gW, G.sum(axis=0)
        return f

    # -- fit and predict ---------------------------------------------------------------------
    def fit(self, seqs, y, num_classes: int, class_weights=None) -> "NgramModel":
        """Fit on id sequences ``seqs`` with class ids ``y`` (weights per class, or None)."""
        n = len(seqs)
        y = np.asarray(y, dtype=np.int64)
        _, keys, _ = self._counts(seqs)
        uniq, df = np.unique(keys, return_counts=True)      # each (row, key) once: df per key
        keep = df >= (1 if n < KEEP_ALL_BELOW else 2)
        uniq, df = uniq[keep], df[keep]
        most = max(MIN_FEATURES, MAX_WEIGHTS // max(1, num_classes))
        if len(uniq) > most:        # the most widespread n-grams (ties: the smaller key), in key order
            top = np.sort(np.lexsort((uniq, -df))[:most])
            uniq, df = uniq[top], df[top]
        self.keys_ = uniq
        self.idf_ = np.log((1.0 + n) / (1.0 + df)) + 1.0
        X = self._matrix(seqs)
        w = np.ones(num_classes) if class_weights is None else np.asarray(class_weights, dtype=np.float64)
        self.W_ = np.zeros((len(self.keys_), num_classes))
        self.b_ = np.zeros(num_classes)
        objective = self._objective(X, y, w)
        for _ in range(STEPS):
            _, gW, gb = objective(self.W_, self.b_)
            self.W_ -= STEP * gW
            self.b_ -= STEP * gb
        return self

    def predict_proba(self, seqs) -> np.ndarray:
        """Class probabilities of id sequences.

        Shapes:
            n sequences -> (n, K), rows sum to 1
        """
        Z = self._scores(self._matrix(seqs), len(seqs))
        P = np.exp(Z - Z.max(axis=1, keepdims=True))
        return P / P.sum(axis=1, keepdims=True)

    def out_of_fold(self, seqs, ids, num_classes: int, folds, class_weights=None) -> np.ndarray:
        """Probabilities (n, K) of every sequence from a model of this one's kind fitted on
        the other folds (``folds``: each sequence's fold); this model is unchanged."""
        ids = np.asarray(ids)
        out = np.zeros((len(seqs), num_classes))
        for i in np.unique(folds):
            keep, held = np.flatnonzero(folds != i), np.flatnonzero(folds == i)
            part = NgramModel(self.vocab_size, word=self.word, placed=self.placed)
            part.fit([seqs[j] for j in keep], ids[keep], num_classes, class_weights)
            out[held] = part.predict_proba([seqs[j] for j in held])
        return out

    # -- files -----------------------------------------------------------------------------------
    def config(self) -> dict:
        return {"kind": "ngram", "vocab_size": self.vocab_size, "word": self.word, "placed": self.placed,
                "keys": [int(k) for k in self.keys_]}

    def arrays(self) -> dict:
        return {"idf": self.idf_, "W": self.W_, "b": self.b_}

    @classmethod
    def from_saved(cls, config: dict, arrays: dict) -> "NgramModel":
        """The model of :meth:`config` and :meth:`arrays`; a mismatch is a ValueError."""
        m = cls(config["vocab_size"], config["word"], config["placed"])
        m.keys_ = np.array(config["keys"], dtype=np.int64)
        m.idf_, m.W_, m.b_ = (np.asarray(arrays[k], dtype=np.float64) for k in ("idf", "W", "b"))
        if not (len(m.keys_) == len(m.idf_) == m.W_.shape[0]) or m.W_.shape[1:] != m.b_.shape:
            raise ValueError(f"the n-gram model's arrays do not fit its {len(m.keys_)} n-grams")
        if len(m.keys_) and np.any(np.diff(m.keys_) <= 0):
            raise ValueError("the n-gram model's keys are not sorted and distinct")
        return m
