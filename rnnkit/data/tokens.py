r"""Tokens for text classification and translation: characters or words, with an unknown bucket.

A :class:`Tokenizer` turns a string into token ids:

    "char"  every character is a token (case kept): DNA, protein, short codes
    "word"  words and punctuation marks, ``\w+|[^\w\s]`` (Unicode ``\w``), lower-cased
            unless ``lower=False`` (translation keeps the case it must write)

Id 0 is always ``<unk>``: a token that training never saw (or saw fewer than
``min_count`` times) maps to it, so encoding never fails on new text. Known tokens
follow in order of decreasing training count (ties alphabetically), so a
vocabulary is reproducible from the same texts.

``tokens="auto"`` (:func:`choose_tokens`) picks "char" when the texts read as
biological sequences (:func:`detect_alphabet`: DNA ``ACGT``, RNA ``ACGU``, with IUPAC
ambiguity codes ``N`` etc.; protein letters) or hold no spaces, else "word".

Files of labelled text are read by :mod:`rnnkit.data.labeled_text`.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

from rnnkit._checks import check_choice, check_positive_int
from rnnkit.errors import CheckpointError

__all__ = ["TOKENS", "UNK", "Tokenizer", "choose_tokens", "detect_alphabet", "tokenize", "token_dropout"]

TOKENS = ("auto", "char", "word")
UNK = "<unk>"
_WORD = re.compile(r"\w+|[^\w\s]")
ALPHABETS = {"dna": set("ACGT"), "rna": set("ACGU"), "protein": set("ACDEFGHIKLMNPQRSTVWY")}
_IUPAC_EXTRA = set("NRYKMSWBDHV-")        # ambiguity codes and gaps in nucleotide files
_PROTEIN_EXTRA = set("XBZUO*-")


def tokenize(text: str, kind: str, lower: bool = True) -> list[str]:
    """The tokens of ``text``: its characters ("char") or its words and marks ("word",
    lower-cased with ``lower``)."""
    if kind == "char":
        return list(text)
    return _WORD.findall(text.lower() if lower else text)


def detect_alphabet(texts) -> str | None:
    """"dna", "rna" or "protein" when every text is over that alphabet (upper or lower
    case, IUPAC codes allowed), else None."""
    chars = set()
    for t in texts:
        chars.update(t.upper())
    if not chars:
        return None
    core_nt = chars - _IUPAC_EXTRA
    for name in ("dna", "rna"):
        if core_nt and core_nt <= ALPHABETS[name]:
            return name
    core_aa = chars - _PROTEIN_EXTRA
    if core_aa and core_aa <= ALPHABETS["protein"] and len(core_aa) >= 10:
        return "protein"
    return None


def choose_tokens(texts, tokens: str = "auto") -> str:
    """Resolve ``tokens="auto"``: "char" for biological sequences or texts without spaces, else "word"."""
    tokens = check_choice(tokens, "tokens", TOKENS, "choose_tokens")
    if tokens != "auto":
        return tokens
    texts = list(texts)
    if detect_alphabet(texts) is not None:
        return "char"
    spaced = sum(1 for t in texts if " " in t.strip())
    return "word" if spaced >= 0.5 * max(len(texts), 1) else "char"


class Tokenizer:
    """Token ids with an unknown bucket (id 0); see the module docstring.

    Build with :meth:`fit`; ``vocab`` lists the tokens by id (``vocab[0] == "<unk>"``).
    """

    def __init__(self, kind: str = "char", vocab=None, lower: bool = True):
        self.kind = check_choice(kind, "kind", ("char", "word"), "Tokenizer")
        self.lower = bool(lower)
        self.vocab: list[str] = [UNK] if vocab is None else list(vocab)
        if not self.vocab or self.vocab[0] != UNK or len(set(self.vocab)) != len(self.vocab):
            raise ValueError(f"Tokenizer: vocab must start with {UNK!r} and hold distinct tokens")
        self.stoi = {t: i for i, t in enumerate(self.vocab)}

    @classmethod
    def fit(cls, texts, kind: str = "auto", min_count: int = 1, max_size: int | None = None,
            lower: bool = True) -> "Tokenizer":
        """The vocabulary of ``texts``: tokens seen at least ``min_count`` times (the
        ``max_size`` most frequent when given), most frequent first."""
        texts = list(texts)
        kind = choose_tokens(texts, kind)
        min_count = check_positive_int(min_count, "min_count", "Tokenizer.fit")
        counts = Counter()
        for t in texts:
            counts.update(tokenize(t, kind, lower))
        items = sorted(((n, tok) for tok, n in counts.items() if n >= min_count), key=lambda p: (-p[0], p[1]))
        if max_size is not None:
            items = items[:check_positive_int(max_size, "max_size", "Tokenizer.fit")]
        return cls(kind, [UNK] + [tok for _, tok in items if tok != UNK], lower)

    @property
    def size(self) -> int:
        return len(self.vocab)

    def __len__(self) -> int:
        return len(self.vocab)

    def __repr__(self) -> str:
        return f"Tokenizer(kind={self.kind!r}, size={self.size}, lower={self.lower})"

    def encode(self, text: str) -> np.ndarray:
        """Ids of the tokens of ``text`` (unknown ones are 0).

        Shapes:
            text -> int64 (n_tokens,)
        """
        if not isinstance(text, str):
            raise TypeError(f"Tokenizer.encode: text must be a str, got {type(text).__name__}")
        get = self.stoi.get
        return np.array([get(t, 0) for t in tokenize(text, self.kind, self.lower)], dtype=np.int64)

    def decode(self, ids) -> str:
        """Text of token ids: characters joined, or words joined by spaces (with no space
        before closing punctuation)."""
        return self.join([self.vocab[int(i)] for i in ids])

    def join(self, toks) -> str:
        """Text of tokens: characters joined (``<unk>`` as U+FFFD), or words joined by
        spaces (with no space before closing punctuation)."""
        if self.kind == "char":
            return "".join(t if t != UNK else "\ufffd" for t in toks)
        out = ""
        for t in toks:
            glue = not out or (len(t) == 1 and t in ".,!?;:)]}'%»…") or out.endswith(("(", "[", "'", "«"))
            out += t if glue else " " + t
        return out

    def unknown_fraction(self, texts) -> float:
        """The share of tokens of ``texts`` that map to ``<unk>``."""
        total = unk = 0
        for t in texts:
            ids = self.encode(t)
            total += len(ids)
            unk += int((ids == 0).sum())
        return unk / max(total, 1)

    def to_dict(self) -> dict:
        return {"type": "Tokenizer", "kind": self.kind, "vocab": list(self.vocab), "lower": self.lower}

    @classmethod
    def from_dict(cls, d) -> "Tokenizer":
        if not isinstance(d, dict) or d.get("type") != "Tokenizer" or not isinstance(d.get("vocab"), list):
            raise CheckpointError(f"Tokenizer.from_dict: expected a dict with type 'Tokenizer' and a vocab list, "
                                  f"got {str(d)[:80]}")
        try:
            return cls(d.get("kind", "char"), d["vocab"], bool(d.get("lower", True)))
        except ValueError as exc:
            raise CheckpointError(f"Tokenizer.from_dict: {exc}") from exc


def token_dropout(x, lengths, rng, p: float = 0.1) -> np.ndarray:
    """Word dropout for training (Iyyer et al. 2015): each valid token id becomes the unknown
    id 0 with probability ``p``, so the network learns not to lean on any one word and
    the unknown bucket is trained in real contexts. ``x`` is not modified.

    Shapes:
        x int (T, B), lengths (B,) -> int (T, B)
    """
    x = np.asarray(x)
    drop = rng.random(x.shape) < p
    if lengths is not None:
        drop &= np.arange(x.shape[0])[:, None] < np.asarray(lengths)[None, :]
    return np.where(drop, 0, x)
