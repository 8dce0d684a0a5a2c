r"""Sizing a character language model to its text and time limit.

Given a time limit, the network is the largest of a ladder of sizes that can still see
about ``TOKENS_PER_PARAM`` = 20 characters per parameter in that time (the
compute-optimal ratio of Hoffmann et al. 2022, which holds for small recurrent models
within a small factor): one reference step (1 layer of 128 units) is timed on this
machine and the others are scaled by their multiply-adds per character,

    cost(H, L) ∝ Σ_layers 4H(I_l + H) + H·V       (I_1 = embedding, I_l = H above)

(an overestimate for large sizes, whose products use the machine better). Dropout grows
with the passes the run makes over the text (repeated passes overfit):

    passes = characters seen / text length:  < 3 → 0,  < 10 → 0.1,  < 30 → 0.2,  else 0.3
"""

from __future__ import annotations

__all__ = ["LADDER", "choose_size", "params_of"]

TOKENS_PER_PARAM = 20
#: (hidden, layers) from small to large
LADDER = ((64, 1), (128, 1), (192, 1), (256, 1), (256, 2), (384, 2), (512, 2), (768, 2))
REFERENCE = (128, 1)


def params_of(hidden: int, layers: int, embedding: int, vocab: int) -> int:
    """Multiply-adds per character (≈ parameters) of an LSTM-like tagger of that size."""
    total, inp = 0, embedding
    for _ in range(layers):
        total += 4 * hidden * (inp + hidden)
        inp = hidden
    return total + hidden * vocab + vocab * embedding


def choose_size(n_chars: int, time_limit: float, ref_step_seconds: float, chars_per_step: int,
                embedding: int, vocab: int) -> dict:
    """{"hidden_size", "num_layers", "dropout", "chars_seen"} for a run of ``time_limit`` seconds.

    ``ref_step_seconds``: one training step of the REFERENCE size, ``chars_per_step``
    characters per step (batch × window)."""
    ref_cost = params_of(*REFERENCE, embedding, vocab)
    best = None
    for hidden, layers in LADDER:
        p = params_of(hidden, layers, embedding, vocab)
        step = ref_step_seconds * max(1.0, p / ref_cost)
        seen = time_limit * 0.85 / step * chars_per_step
        if best is None or seen >= TOKENS_PER_PARAM * p:
            best = (hidden, layers, seen)
    hidden, layers, seen = best
    passes = seen / max(1, n_chars)
    dropout = 0.0 if passes < 3 else 0.1 if passes < 10 else 0.2 if passes < 30 else 0.3
    return {"hidden_size": hidden, "num_layers": layers, "dropout": dropout, "chars_seen": seen}
