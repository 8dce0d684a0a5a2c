"""What the seq2seq task reads and writes: pairs of strings, token kinds, batches of similar
lengths, and the character alphabets of runs saved before the unknown bucket."""

from __future__ import annotations

import numpy as np

from rnnkit._checks import check_positive_int

__all__ = ["MAX_OUTPUT_LENGTH", "PAD", "BOS", "EOS", "SPECIALS", "check_output_length", "check_strings",
           "resolve_tokens", "SIZES", "SMALL_WORD_MODEL", "MIN_PASSES",
           "LegacyAlphabet"]

PAD, BOS, EOS = 0, 1, 2
SPECIALS = 3
MAX_OUTPUT_LENGTH = 100_000

#: the network and training defaults of each token kind. Words: a vocabulary of thousands,
#: so wide embeddings, a 256-unit encoder per direction, dropout and label smoothing against
#: the few pairs such data have, and Adam at 2e-3 (the usual setting of small-data RNN translation); characters:
#: small alphabets and long sequences, the settings the date task was built with.
SIZES = {"word": {"hidden_size": 256, "embedding_dim": 128, "dropout": 0.3, "label_smoothing": 0.1,
                  "batch_size": 64, "lr": 2e-3},
         "char": {"hidden_size": 128, "embedding_dim": 32, "dropout": 0.0, "label_smoothing": 0.0,
                  "batch_size": 32, "lr": 5e-3}}
#: the word model when the time limit holds fewer than ``MIN_PASSES`` passes of the big one
SMALL_WORD_MODEL = {"hidden_size": 128}
MIN_PASSES = 8


def check_output_length(n, name: str, where: str) -> int:
    n = check_positive_int(n, name, where)
    if n > MAX_OUTPUT_LENGTH:
        raise ValueError(f"{where}: {name} must be at most {MAX_OUTPUT_LENGTH} (characters decoded "
                         f"one step at a time), got {n}")
    return n


def check_strings(xs, name: str, where: str, allow_empty: bool = False) -> list[str]:
    if isinstance(xs, str):
        raise TypeError(f"{where}: {name} must be a list of strings, got one str (wrap it in a list)")
    try:
        xs = list(xs)
    except TypeError:
        raise TypeError(f"{where}: {name} must be a list of strings, got {type(xs).__name__}") from None
    if not xs:
        raise ValueError(f"{where}: {name} is empty")
    for i, s in enumerate(xs):
        if not isinstance(s, str):
            raise TypeError(f"{where}: {name}[{i}] must be a str, got {type(s).__name__}")
        if not s and not allow_empty:
            raise ValueError(f"{where}: {name}[{i}] is an empty string")
    return xs


def resolve_tokens(sources, targets, tokens: str) -> str:
    """``tokens`` ("auto", "char" or "word") for these pairs: "auto" is "word" when both
    sides read as spaced text (:func:`rnnkit.data.tokens.choose_tokens`), else "char"."""
    from rnnkit.data.tokens import choose_tokens

    if tokens != "auto":
        return tokens
    return "word" if choose_tokens(sources) == choose_tokens(targets) == "word" else "char"


class LegacyAlphabet:
    """The character ids of runs saved before the unknown bucket (position in the sorted
    alphabet); an unseen character is an error there, as it was when they were trained."""

    def __init__(self, chars: str):
        from rnnkit.data.text import CharVocab

        self._vocab, self.kind = CharVocab(chars), "char"
        self.size = len(chars)

    def encode(self, text: str) -> np.ndarray:
        return self._vocab.encode(text)

    def decode(self, ids) -> str:
        return self._vocab.decode(np.asarray(list(ids), dtype=np.int64))

    def to_dict(self) -> dict:
        return {"type": "Tokenizer", "kind": "char", "vocab": ["<unk>"] + list(self._vocab.chars)}
