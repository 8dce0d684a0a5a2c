"""The recurrent math: pure forward/backward functions, one module per cell.

Each module exposes ``forward(params, x, h0=None, lengths=None)``,
``backward(params, cache, d_outputs, d_final_state=None)`` and ``infer`` (forward
without a cache, for inference); see DESIGN.md.
"""

from rnnkit.cells import gru, lstm, rnn

CELLS = {"rnn": rnn, "lstm": lstm, "gru": gru}
GATES = {"rnn": 1, "lstm": 4, "gru": 3}

__all__ = ["rnn", "lstm", "gru", "CELLS", "GATES"]
