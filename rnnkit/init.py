"""Weight initialisation for recurrent layers, always through a seeded Generator.

Every draw goes through one ``numpy.random.Generator`` in PyTorch's parameter
order (``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``,
``weight_ih_l0_reverse``, ...), in float64, then cast to the layer's dtype: the
same seed gives the same weights, and a float32 layer holds the float64 layer's
weights rounded.

A recurrent weight stacks G gate blocks of H rows (G = 1 RNN, 4 LSTM i,f,g,o,
3 GRU r,z,n): ``weight_ih`` is (G·H, I), ``weight_hh`` is (G·H, H). The
schemes below treat each block as its own H×I or H×H map, since each gate is.

Schemes (I input size of the layer, H hidden size):

``"default"`` (PyTorch's nn.RNN/LSTM/GRU)
    every weight and every bias ~ U(−1/√H, 1/√H).
``"xavier_orthogonal"``
    each (H, I) block of W_ih ~ U(−a, a) with a = √(6 / (I + H)) (Glorot & Bengio
    2010), each (H, H) block of W_hh = gain · Q with Q orthogonal, drawn uniformly
    (Haar) by QR of a Gaussian matrix with the signs of diag(R) folded in (Saxe,
    McClelland & Ganguli 2014); biases 0.
``"irnn"`` (Le, Jaitly & Hinton 2015; vanilla ReLU RNN only)
    W_hh = gain · I (the identity: with ReLU and zero bias a state is carried
    unchanged until the inputs move it), biases 0; W_ih is Xavier as above (our
    choice: the paper drew small Gaussians, which learn slowly at small sizes).

Variants and new cells (:mod:`rnnkit.cells.variants`): LSTM projections and peepholes
are drawn like the other weights; layer-norm gains start at 1 and their biases at 0;
IndRNN's recurrent weight vector is U(0, 1) under every scheme (Li et al. 2018).

``chrono_init`` (LSTM; Tallec & Ollivier 2018): forget biases log U(1, T_max − 1) and
input biases their negatives, so forget gates start with memory times spread up to
T_max steps.

``forget_bias`` (LSTM only, any scheme): the forget-gate block f of ``bias_ih``
is set to ``forget_bias`` and that block of ``bias_hh`` to 0, so the forget
gate starts at σ(forget_bias) and the cell remembers by default (Gers,
Schmidhuber & Cummins 2000; Jozefowicz, Zaremba & Sutskever 2015). Only the sum
b_ih + b_hh enters the equations, so the split does not matter to the maths.
"""

from __future__ import annotations

import math

import numpy as np

from rnnkit._checks import check_choice, check_dtype, check_number, check_positive_int, check_seed
from rnnkit.cells import GATES  # the gate blocks G of each cell (PyTorch's layout)

SCHEMES = ("default", "xavier_orthogonal", "irnn")


def make_rng(seed, where: str) -> np.random.Generator:
    """A Generator from ``seed`` (None for fresh entropy, or an int >= 0)."""
    return np.random.default_rng(check_seed(seed, where))


def uniform(rng: np.random.Generator, shape: tuple, bound: float, dtype=np.float64) -> np.ndarray:
    """Samples of U(−bound, bound).

    Shapes:
        returns ``shape``
    """
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def xavier_uniform(rng: np.random.Generator, fan_out: int, fan_in: int, gain: float = 1.0,
                   dtype=np.float64) -> np.ndarray:
    """Glorot & Bengio (2010): U(−a, a), a = gain · √(6 / (fan_in + fan_out)).

    Shapes:
        returns (fan_out, fan_in)
    """
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform(rng, (fan_out, fan_in), bound, dtype)


def orthogonal(rng: np.random.Generator, rows: int, cols: int, gain: float = 1.0,
               dtype=np.float64) -> np.ndarray:
    """A uniformly (Haar) distributed matrix with orthonormal rows or columns, times ``gain``.

    QR of a Gaussian matrix gives Q; multiplying column j by sign(R_jj) makes the
    distribution uniform (plain QR is biased by LAPACK's sign convention). With
    rows >= cols the columns are orthonormal (QᵀQ = I), otherwise the rows are.

    Shapes:
        returns (rows, cols)
    """
    tall = rows >= cols
    a = rng.standard_normal((rows, cols) if tall else (cols, rows))
    q, r = np.linalg.qr(a)  # q: (max, min), r: (min, min)
    q = q * np.where(np.diag(r) < 0, -1.0, 1.0)
    if not tall:
        q = q.T
    return (gain * q).astype(dtype)


def identity(n: int, gain: float = 1.0, dtype=np.float64) -> np.ndarray:
    """``gain`` times the n×n identity (IRNN's recurrent matrix).

    Shapes:
        returns (n, n)
    """
    return (gain * np.eye(n)).astype(dtype)


def param_names(num_layers: int, bidirectional: bool, bias: bool) -> list[str]:
    """PyTorch's parameter names for a stacked recurrent layer, in PyTorch's order."""
    names = []
    for layer in range(num_layers):
        for suffix in ("", "_reverse") if bidirectional else ("",):
            names += [f"weight_ih_l{layer}{suffix}", f"weight_hh_l{layer}{suffix}"]
            if bias:
                names += [f"bias_ih_l{layer}{suffix}", f"bias_hh_l{layer}{suffix}"]
    return names


def check_scheme(cell: str, scheme, nonlinearity: str, bias: bool, forget_bias, gain, where: str):
    """Validate an initialisation request; return ``(forget_bias or None, gain)`` as floats."""
    check_choice(scheme, "init", SCHEMES, where)
    gain = check_number(gain, "init_gain", where, 0.0, low_open=True)
    if scheme == "default" and gain != 1.0:
        raise ValueError(f"{where}: init_gain scales the recurrent weights of init='xavier_orthogonal' "
                         f"or 'irnn'; init='default' takes none, got init_gain={gain}")
    if scheme == "irnn" and not (cell == "rnn" and nonlinearity == "relu"):
        raise ValueError(f"{where}: init='irnn' is the identity initialisation of a ReLU RNN; it needs "
                         f"cell='rnn' and nonlinearity='relu', got cell={cell!r}, nonlinearity={nonlinearity!r}")
    if forget_bias is not None:
        if cell != "lstm":
            raise ValueError(f"{where}: forget_bias sets the LSTM forget gate; cell {cell!r} has none "
                             f"(use forget_bias=None)")
        if not bias:
            raise ValueError(f"{where}: forget_bias needs bias=True (there is no bias to set)")
        forget_bias = check_number(forget_bias, "forget_bias", where, allow_none=True)
    return forget_bias, gain


def recurrent_params(cell: str, input_size: int, hidden_size: int, num_layers: int = 1,
                     bidirectional: bool = False, bias: bool = True, scheme: str = "default",
                     forget_bias: float | None = None, gain: float = 1.0, nonlinearity: str = "tanh",
                     rng: np.random.Generator | None = None, dtype=np.float32,
                     where: str = "recurrent_params", options: dict | None = None) -> dict[str, np.ndarray]:
    """Initial parameters of a stacked recurrent layer, by PyTorch's names and shapes.

    Layer 0 reads ``input_size`` features; layer l > 0 reads the P·directions
    features of the layer below (P = proj_size, else H). ``rng`` defaults to a fresh
    unseeded Generator. ``options``: the variants (:func:`rnnkit.cells.variants.check_options`),
    whose parameters are drawn after PyTorch's four in :func:`rnnkit.cells.variants.layout`'s
    order: weight_hr and the peepholes like the weights, layer-norm gains 1 and
    biases 0. IndRNN's recurrent vector is U(0, 1) under every scheme (Li et al. 2018).

    Shapes:
        weight_ih_l{k}[_reverse]: (G·H, I_k)   weight_hh_l{k}[_reverse]: (G·H, H)
        bias_ih_l{k}[_reverse], bias_hh_l{k}[_reverse]: (G·H,)
    """
    from rnnkit.cells.variants import layout

    check_choice(cell, "cell", tuple(GATES), where)
    input_size = check_positive_int(input_size, "input_size", where)
    H = check_positive_int(hidden_size, "hidden_size", where)
    num_layers = check_positive_int(num_layers, "num_layers", where)
    dtype = check_dtype(dtype, where)
    forget_bias, gain = check_scheme(cell, scheme, nonlinearity, bias, forget_bias, gain, where)
    options = options or {}
    rng = np.random.default_rng() if rng is None else rng
    G = GATES[cell]
    D = 2 if bidirectional else 1
    bound = 1.0 / math.sqrt(H)

    def draw(key: str, shape: tuple) -> np.ndarray:
        if key.startswith("ln_"):                     # layer norm: the identity map
            return np.ones(shape) if key.endswith("_weight") else np.zeros(shape)
        if cell == "indrnn" and key == "weight_hh":
            return rng.uniform(0.0, 1.0, size=shape)
        if scheme == "default":
            return uniform(rng, shape, bound)
        if key.startswith("bias") or key in ("weight_ci", "weight_cf", "weight_co"):
            return np.zeros(shape)
        if key == "weight_ih":                        # one (H, I) map per gate block
            return np.concatenate([xavier_uniform(rng, H, shape[1]) for _ in range(G)])
        if key == "weight_hr":
            return xavier_uniform(rng, *shape)
        if scheme == "irnn":
            return identity(H, gain)
        return np.concatenate([orthogonal(rng, H, shape[1], gain) for _ in range(G)])

    params: dict[str, np.ndarray] = {}
    out = options.get("proj_size") or H
    for layer in range(num_layers):
        fan_in = input_size if layer == 0 else out * D
        for suffix in ("", "_reverse")[:D]:
            values = {key: draw(key, shape) for key, shape in layout(cell, fan_in, H, bias, options).items()}
            if forget_bias is not None:
                values["bias_ih"][H:2 * H] = forget_bias  # gate order i, f, g, o: f is the second block
                values["bias_hh"][H:2 * H] = 0.0
            for key, value in values.items():
                params[f"{key}_l{layer}{suffix}"] = value.astype(dtype)
    return params


def chrono_init(params: dict, hidden_size: int, t_max: float, rng: np.random.Generator) -> None:
    """Chrono initialisation of LSTM biases (Tallec & Ollivier 2018), in place.

    For every ``bias_ih_l{k}[_reverse]`` of an LSTM (gate order i, f, g, o): the forget
    block b_f = log(u), u ~ U(1, t_max − 1), and the input block b_i = −b_f; the same
    blocks of ``bias_hh`` are set to 0. Forget gates then start at σ(log u) = u/(1+u),
    so units remember over times spread up to about t_max steps (the range of
    dependencies the task needs), and the input gates are open where the memory is short.
    """
    H = check_positive_int(hidden_size, "hidden_size", "chrono_init")
    if isinstance(t_max, bool) or not isinstance(t_max, (int, float, np.integer, np.floating)) or not t_max > 2:
        raise ValueError(f"chrono_init: t_max must be a number > 2 (the longest dependency), got {t_max!r}")
    keys = [k for k in params if k.startswith("bias_ih_l")]
    if not keys:
        raise ValueError("chrono_init: params hold no bias_ih_l* (an LSTM with bias=True is needed)")
    for key in keys:
        b_ih, b_hh = params[key], params[key.replace("bias_ih", "bias_hh")]
        if b_ih.shape != (4 * H,):
            raise ValueError(f"chrono_init: expected {key} of shape ({4 * H},) (an LSTM's), got {b_ih.shape}")
        b_f = np.log(rng.uniform(1.0, t_max - 1.0, size=H))
        b_ih[H:2 * H] = b_f
        b_ih[:H] = -b_f
        b_hh[:2 * H] = 0.0
