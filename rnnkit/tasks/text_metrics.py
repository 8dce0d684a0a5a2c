r"""The translation-memory baseline of translation (scores: :mod:`rnnkit.tasks.metrics`).

:class:`TranslationMemory` translates a source by the target of the most similar
training source, similarity = cosine of TF-IDF weighted character 3-grams (of
" " + lower-cased source + " "):

    w(g, s) = tf(g, s) · (log((1 + n) / (1 + df(g))) + 1),   sim(s, s') = w(s)·w(s') / (|w(s)| |w(s')|)

the usual non-neural baseline of translation; a model that does not beat it has not
learnt to translate.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict

import numpy as np

__all__ = ["TranslationMemory"]


def _grams(text: str, n: int = 3) -> Counter:
    t = f" {text.lower().strip()} "
    return Counter(t[i:i + n] for i in range(max(len(t) - n + 1, 1)))


class TranslationMemory:
    """Nearest-neighbour translation by TF-IDF character 3-gram cosine (module docstring)."""

    def fit(self, sources, targets) -> "TranslationMemory":
        sources, targets = list(sources), list(targets)
        if len(sources) != len(targets) or not sources:
            raise ValueError(f"TranslationMemory.fit: need equally many (>= 1) sources and targets, got "
                             f"{len(sources)} and {len(targets)}")
        self.targets_ = targets
        grams = [_grams(s) for s in sources]
        df = Counter(g for c in grams for g in c)
        n = len(sources)
        self.idf_ = {g: math.log((1 + n) / (1 + d)) + 1.0 for g, d in df.items()}
        self.postings_ = defaultdict(list)          # gram -> [(row, weight)]
        norms = np.zeros(n)
        for i, c in enumerate(grams):
            for g, tf in c.items():
                w = tf * self.idf_[g]
                self.postings_[g].append((i, w))
                norms[i] += w * w
        self.norms_ = np.sqrt(np.maximum(norms, 1e-12))
        # each gram's rows and weights as arrays: a query adds one vector per gram (a row
        # appears once per gram), not one Python step per posting
        self.postings_ = {g: (np.array([i for i, _ in p], dtype=np.int64), np.array([w for _, w in p]))
                          for g, p in self.postings_.items()}
        return self

    def nearest(self, source: str) -> int:
        """The row of the most similar training source (ties: the first)."""
        scores = np.zeros(len(self.targets_))
        q = _grams(source)
        for g, tf in q.items():
            idf = self.idf_.get(g)
            if idf is None:
                continue
            rows, weights = self.postings_[g]
            scores[rows] += (tf * idf) * weights
        return int(np.argmax(scores / self.norms_))

    def predict(self, sources) -> list[str]:
        return [self.targets_[self.nearest(s)] for s in sources]
