r"""Scores for generated text and the translation-memory baseline.

* BLEU (Papineni et al. 2002) and chrF (Popović 2015) through sacrebleu, the reference
  implementation (``pip install "rnnkit[text]"``; imported when first used): corpus-level,
  13a tokenisation for BLEU, character 6-grams with β = 2 for chrF; both 0–100.
* exact match: the share of outputs equal to their reference (both stripped).
* :class:`TranslationMemory`: translate a source by the target of the most similar
  training source, similarity = cosine of TF-IDF weighted character 3-grams (of
  " " + lower-cased source + " "):

      w(g, s) = tf(g, s) · log((1 + n) / (1 + df(g))) + 1,   sim(s, s') = w(s)·w(s') / (|w(s)| |w(s')|)

  the usual non-neural baseline of translation; a model that does not beat it has not
  learnt to translate.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict

import numpy as np

from rnnkit.errors import RnnkitError

__all__ = ["bleu", "chrf", "exact_match", "text_scores", "TranslationMemory"]


def _sacrebleu():
    try:
        import sacrebleu
    except ImportError:
        raise RnnkitError('BLEU and chrF need sacrebleu: pip install "rnnkit[text]" (or pip install sacrebleu)') \
            from None
    return sacrebleu


def _pair(hypotheses, references, where: str) -> tuple[list[str], list[str]]:
    hyp, ref = list(hypotheses), list(references)
    if len(hyp) != len(ref):
        raise ValueError(f"{where}: {len(hyp)} hypotheses for {len(ref)} references; give one per reference")
    if not ref:
        raise ValueError(f"{where}: no references")
    for name, xs in (("hypotheses", hyp), ("references", ref)):
        for i, x in enumerate(xs):
            if not isinstance(x, str):
                raise TypeError(f"{where}: {name}[{i}] must be a str, got {type(x).__name__}")
    return hyp, ref


def bleu(hypotheses, references) -> float:
    """Corpus BLEU (sacrebleu's default: 4-grams, brevity penalty, 13a tokeniser), 0–100."""
    hyp, ref = _pair(hypotheses, references, "bleu")
    return float(_sacrebleu().corpus_bleu(hyp, [ref]).score)


def chrf(hypotheses, references) -> float:
    """Corpus chrF (character 6-grams, β = 2), 0–100."""
    hyp, ref = _pair(hypotheses, references, "chrf")
    return float(_sacrebleu().corpus_chrf(hyp, [ref]).score)


def exact_match(hypotheses, references) -> float:
    """The share of hypotheses equal to their reference after stripping spaces at the ends."""
    hyp, ref = _pair(hypotheses, references, "exact_match")
    return float(np.mean([h.strip() == r.strip() for h, r in zip(hyp, ref)]))


def text_scores(hypotheses, references) -> dict:
    """{"bleu", "chrf", "exact_match"} of one set of outputs."""
    return {"bleu": bleu(hypotheses, references), "chrf": chrf(hypotheses, references),
            "exact_match": exact_match(hypotheses, references)}


def _grams(text: str, n: int = 3) -> Counter:
    t = f" {text.lower().strip()} "
    return Counter(t[i:i + n] for i in range(max(len(t) - n + 1, 1)))


class TranslationMemory:
    """Nearest-neighbour translation by TF-IDF character 3-gram cosine (module docstring)."""

    def fit(self, sources, targets) -> "TranslationMemory":
        sources, targets = _pair(targets, sources, "TranslationMemory.fit")[::-1]
        self.targets_ = list(targets)
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
        return self

    def nearest(self, source: str) -> int:
        """The row of the most similar training source (ties: the first)."""
        scores = np.zeros(len(self.targets_))
        q = _grams(source)
        for g, tf in q.items():
            idf = self.idf_.get(g)
            if idf is None:
                continue
            w = tf * idf
            for i, wi in self.postings_[g]:
                scores[i] += w * wi
        return int(np.argmax(scores / self.norms_))

    def predict(self, sources) -> list[str]:
        return [self.targets_[self.nearest(s)] for s in sources]
