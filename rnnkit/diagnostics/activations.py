r"""What the units of a character model do: states and gates per character, ranked by
how well they track simple properties of the text, shown as coloured text.

For a character model (Embedding → Recurrent → Linear, e.g. the language model
:class:`rnnkit.models.tagger.SequenceTagger` with ``vocab_size``) and a text
c₁…c_T, :func:`collect_activations` runs the Recurrent forward (eval mode) over the
embedded characters and reads the cell caches, giving for every layer and step t
(the state *after* reading cₜ):

    RNN    h
    LSTM   h, c and the gates i, f, g, o   (c_t = f ⊙ c_{t−1} + i ⊙ g, h_t = o ⊙ tanh(c_t))
    GRU    h and the gates r, z, n          (h_t = (1 − z) ⊙ n + z ⊙ h_{t−1})

:func:`find_interpretable_units` correlates every unit's activation over the text
with features of the text read up to cₜ (Karpathy, Johnson & Fei-Fei 2015 found
units of this kind in trained LSTMs):

    inside_quotes     1 after an odd number of '"' (the opening quote is inside,
                      the closing one outside)
    position_in_line  characters since the last newline (0 at the newline)
    inside_parens     1 while more '(' than ')' have been read
    is_space          1 if cₜ is whitespace

and ranks units by |Pearson correlation| with their best feature (a constant feature
or unit correlates 0).

:func:`activation_html` renders a self-contained page (inline CSS, images as
base64 data URIs, no external resources): for each chosen unit the passage with
each character's background coloured by the unit's activation — red for positive,
blue for negative, white at 0 (sigmoid gates are centred at ½, cell states scaled by
their largest |c|) — and heat maps (unit × time) of every gate of a layer.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np

from rnnkit._checks import check_positive_int
from rnnkit.cells.gru import GRUCache
from rnnkit.cells.lstm import LSTMCache
from rnnkit.layers import Embedding, Recurrent

FEATURES = ("inside_quotes", "position_in_line", "inside_parens", "is_space")
SIGMOID_PARTS = ("i", "f", "o", "r", "z")
PARTS = {"rnn": ("h",), "lstm": ("h", "c", "i", "f", "g", "o"), "gru": ("h", "r", "z", "n")}

__all__ = [
    "FEATURES",
    "encode_text",
    "collect_activations",
    "text_features",
    "find_interpretable_units",
    "activation_html",
    "write_activation_report",
]


# -- running the model ------------------------------------------------------------------

def encode_text(text: str, encode) -> np.ndarray:
    """Character ids of ``text``: ``encode`` is a dict char -> id, a callable
    text -> ids, or an object with an ``encode(text)`` method (a vocabulary).

    Shapes:
        -> (T,) int64
    """
    where = "encode_text"
    if not isinstance(text, str) or not text:
        raise ValueError(f"{where}: expected a non-empty string, got {text!r:.40}")
    if isinstance(encode, dict):
        missing = sorted(set(text) - set(encode))
        if missing:
            raise ValueError(f"{where}: characters not in the vocabulary: {''.join(missing)!r}")
        ids = [encode[ch] for ch in text]
    elif hasattr(encode, "encode"):
        ids = encode.encode(text)
    elif callable(encode):
        ids = encode(text)
    else:
        raise TypeError(f"{where}: encode must be a dict char -> id, a callable or an object with "
                        f"encode(), got {type(encode).__name__}")
    ids = np.asarray(ids)
    if ids.dtype.kind not in "iu" or ids.shape != (len(text),):
        raise ValueError(f"{where}: encoding must give one integer id per character "
                         f"({len(text)}), got dtype {ids.dtype} and shape {ids.shape}")
    return ids.astype(np.int64)


def _find_child(model, kind: type, where: str):
    if isinstance(model, kind):
        return model
    children = getattr(model, "_children", {})
    found = [c for c in children.values() if isinstance(c, kind)]
    if len(found) != 1:
        raise ValueError(f"{where}: expected the model to hold exactly one {kind.__name__}, "
                         f"found {len(found)}")
    return found[0]


def collect_activations(model, ids) -> dict:
    """Hidden states, cell states and gates per character of one sequence of ids.

    ``model`` is a Module holding one :class:`~rnnkit.layers.Embedding` and one
    :class:`~rnnkit.layers.Recurrent` among its children (a character tagger or
    language model). The embedding rows are looked up directly and the Recurrent is
    run forward in eval mode (its mode is restored; its caches are replaced). Only
    the forward direction of a bidirectional layer is read.

    Returns ``{"cell": "rnn"|"lstm"|"gru", "layers": [ {part: (T, H) array} ]}`` with
    the parts listed in the module docstring, bottom layer first.

    Shapes:
        ids (T,) ints -> each part (T, H)
    """
    where = "collect_activations"
    embedding = _find_child(model, Embedding, where)
    rnn = _find_child(model, Recurrent, where)
    ids = np.asarray(ids)
    if ids.dtype.kind not in "iu" or ids.ndim != 1 or ids.size == 0:
        raise ValueError(f"{where}: expected ids to be a non-empty 1-D integer array (T,), "
                         f"got dtype {ids.dtype} and shape {ids.shape}")
    table = embedding.params["weight"]
    if ids.min() < 0 or ids.max() >= table.shape[0]:
        raise ValueError(f"{where}: ids must lie in [0, {table.shape[0]}), got min {ids.min()} "
                         f"and max {ids.max()}")
    x = table[ids][:, None, :]                              # (T, 1, E): one sequence
    if rnn.batch_first:
        x = x.swapaxes(0, 1)
    was_training = rnn.training
    rnn.eval()
    try:
        rnn.forward(x)
    finally:
        rnn.train(was_training)
    layers = []
    for index in range(rnn.num_layers):
        cache = rnn.caches[index][0]
        H = cache.h.shape[2]
        acts = {"h": cache.h[1:, 0].copy()}                 # (T, H): the state after each char
        if isinstance(cache, LSTMCache):
            acts["c"] = cache.c[1:, 0].copy()
            for k, name in enumerate("ifgo"):
                acts[name] = cache.gates[:, 0, k * H:(k + 1) * H].copy()
        elif isinstance(cache, GRUCache):
            for k, name in enumerate("rzn"):
                acts[name] = cache.gates[:, 0, k * H:(k + 1) * H].copy()
        layers.append(acts)
    return {"cell": rnn.cell, "layers": layers}


# -- features and ranking -----------------------------------------------------------------

def text_features(text: str) -> dict[str, np.ndarray]:
    """The features of the module docstring, each a float array over the characters.

    Shapes:
        -> {name: (T,)}
    """
    if not isinstance(text, str) or not text:
        raise ValueError(f"text_features: expected a non-empty string, got {text!r:.40}")
    T = len(text)
    quotes = np.zeros(T)
    column = np.zeros(T)
    parens = np.zeros(T)
    space = np.zeros(T)
    inside, col, depth = False, 0, 0
    for t, ch in enumerate(text):
        if ch == '"':
            inside = not inside
        col = 0 if ch == "\n" else col + 1
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(depth - 1, 0)
        quotes[t] = inside
        column[t] = col
        parens[t] = depth > 0
        space[t] = ch.isspace()
    return {"inside_quotes": quotes, "position_in_line": column, "inside_parens": parens,
            "is_space": space}


def _correlations(a: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Pearson correlation of every column of ``a`` with ``f``; 0 where either is constant.

    Shapes:
        a (T, H), f (T,) -> (H,)
    """
    a = a - a.mean(axis=0)
    f = f - f.mean()
    denom = np.sqrt((a * a).sum(axis=0) * (f @ f))
    num = f @ a
    out = np.zeros(a.shape[1])
    ok = denom > 1e-12 * max(1.0, float(np.abs(num).max(initial=0.0)))
    out[ok] = num[ok] / denom[ok]
    return out


def find_interpretable_units(text: str, activations: dict, parts=("h", "c"), features=None,
                             top: int = 10) -> list[dict]:
    """Units ranked by |correlation| with their best-matching text feature.

    ``features``: None for :func:`text_features`, or a dict name -> (T,) array of your
    own. Every unit of every layer and of each of ``parts`` (those the cell has) is
    scored by its largest |r| over the features.

    Returns at most ``top`` dicts ``{"layer", "part", "unit", "feature", "corr",
    "all": {feature: r}}``, best first.
    """
    where = "find_interpretable_units"
    top = check_positive_int(top, "top", where)
    T = len(text)
    feats = text_features(text) if features is None else features
    if not isinstance(feats, dict) or not feats:
        raise TypeError(f"{where}: features must be a non-empty dict name -> (T,) array")
    feats = {k: np.asarray(v, dtype=np.float64) for k, v in feats.items()}
    for k, v in feats.items():
        if v.shape != (T,):
            raise ValueError(f"{where}: feature {k!r} must have shape ({T},) (one value per "
                             f"character), got {v.shape}")
    layers = activations.get("layers") if isinstance(activations, dict) else None
    if not layers:
        raise ValueError(f"{where}: expected activations from collect_activations (a dict with 'layers')")
    scored = []
    for li, acts in enumerate(layers):
        for part in parts:
            if part not in acts:
                continue
            a = np.asarray(acts[part], dtype=np.float64)
            if a.ndim != 2 or a.shape[0] != T:
                raise ValueError(f"{where}: activations['layers'][{li}][{part!r}] must be (T={T}, H), "
                                 f"got {a.shape}")
            corr = {name: _correlations(a, f) for name, f in feats.items()}
            for unit in range(a.shape[1]):
                rs = {name: float(c[unit]) for name, c in corr.items()}
                best = max(rs, key=lambda n: abs(rs[n]))
                scored.append({"layer": li, "part": part, "unit": unit, "feature": best,
                               "corr": rs[best], "all": rs})
    scored.sort(key=lambda r: -abs(r["corr"]))
    return scored[:top]


# -- the page -----------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em} h2{font-size:1.1em;margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
.text{font-family:Menlo,Consolas,monospace;font-size:14px;line-height:1.55;white-space:pre-wrap;word-break:break-all;border:1px solid #eee;padding:.6em}
.text span{border-radius:2px} .legend{color:#666;font-size:.9em} img{max-width:100%;display:block}
"""


def _scaled(values: np.ndarray, part: str) -> np.ndarray:
    """Activations mapped into [−1, 1] for colouring (see the module docstring)."""
    v = np.asarray(values, dtype=np.float64)
    if part in SIGMOID_PARTS:
        return 2.0 * v - 1.0
    if part == "c":
        m = float(np.max(np.abs(v))) if v.size else 0.0
        return v / m if m > 0 else v
    return np.clip(v, -1.0, 1.0)


def _colour(s: float) -> str:
    """Red for s > 0, blue for s < 0, white at 0; |s| ≤ 1 sets the depth."""
    a = int(round(200 * min(abs(s), 1.0)))
    return f"rgb(255,{255 - a},{255 - a})" if s >= 0 else f"rgb({255 - a},{255 - a},255)"


def _unit_key(u, where: str) -> tuple[int, str, int]:
    if isinstance(u, dict):
        return int(u["layer"]), str(u["part"]), int(u["unit"])
    if isinstance(u, (tuple, list)) and len(u) == 3:
        return int(u[0]), str(u[1]), int(u[2])
    if isinstance(u, (int, np.integer)) and not isinstance(u, bool):
        return 0, "h", int(u)
    raise TypeError(f"{where}: a unit is (layer, part, unit), a dict from find_interpretable_units "
                    f"or an int (layer 0, part 'h'), got {u!r}")


def _coloured_text(text: str, values: np.ndarray, part: str) -> str:
    spans = []
    for ch, raw, s in zip(text, values, _scaled(values, part)):
        shown = "↵" if ch == "\n" else html.escape(ch)
        spans.append(f'<span style="background-color:{_colour(float(s))}" title="{float(raw):+.3f}">'
                     f"{shown}</span>" + ("\n" if ch == "\n" else ""))
    return "".join(spans)


def activation_html(text: str, activations: dict, units=None, top: int = 6,
                    title: str = "What the units see", heatmap_layer: int | None = 0,
                    heatmaps: bool | None = None) -> str:
    """The coloured-text page as one HTML string (see the module docstring).

    ``units``: a list of (layer, part, unit) tuples, dicts from
    :func:`find_interpretable_units`, or ints (layer 0, "h"); None shows the ``top``
    units that function ranks first. ``heatmaps``: True to require the gate heat maps
    of layer ``heatmap_layer`` (needs matplotlib), False to leave them out, None to
    include them when matplotlib is installed.
    """
    where = "activation_html"
    if not isinstance(text, str) or not text:
        raise ValueError(f"{where}: expected a non-empty string, got {text!r:.40}")
    layers = activations.get("layers") if isinstance(activations, dict) else None
    if not layers:
        raise ValueError(f"{where}: expected activations from collect_activations (a dict with 'layers')")
    ranking = {}
    if units is None:
        units = find_interpretable_units(text, activations, top=top)
    for u in units:
        if isinstance(u, dict) and "feature" in u:
            ranking[_unit_key(u, where)] = u
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="legend">{html.escape(activations.get("cell", "").upper())} model, '
        f"{len(layers)} layer(s), {len(text)} characters. Background: red = positive, blue = "
        f"negative, white = 0 (gates centred at ½, cell states scaled by their largest |c|). "
        f"Hover a character for its value.</p>",
    ]
    for u in units:
        layer, part, unit = _unit_key(u, where)
        if not 0 <= layer < len(layers) or part not in layers[layer]:
            raise ValueError(f"{where}: no part {part!r} in layer {layer} (the model has {len(layers)} "
                             f"layer(s) with parts {sorted(layers[0])})")
        values = np.asarray(layers[layer][part])
        if values.shape[0] != len(text) or not 0 <= unit < values.shape[1]:
            raise ValueError(f"{where}: unit {unit} of layer {layer} part {part!r} is not in activations "
                             f"of shape {values.shape} for a text of {len(text)} characters")
        heading = f"layer {layer} · {part} · unit {unit}"
        info = ranking.get((layer, part, unit))
        if info is not None:
            heading += f" — tracks {info['feature'].replace('_', ' ')} (r = {info['corr']:+.2f})"
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        parts.append(f'<div class="text">{_coloured_text(text, values[:, unit], part)}</div>')
    if heatmaps is None:
        from rnnkit.report import have_matplotlib

        heatmaps = have_matplotlib()
    if heatmaps and heatmap_layer is not None:
        from rnnkit.diagnostics.plots import gate_heatmaps_png

        if not 0 <= heatmap_layer < len(layers):
            raise ValueError(f"{where}: heatmap_layer must lie in [0, {len(layers)}), got {heatmap_layer}")
        png = gate_heatmaps_png(layers[heatmap_layer], text=text)
        b64 = base64.b64encode(png).decode("ascii")
        parts.append(f"<h2>Gates and states of layer {heatmap_layer} over time</h2>")
        parts.append(f'<img alt="gate heat maps of layer {heatmap_layer}" src="data:image/png;base64,{b64}">')
    parts.append("</body></html>")
    return "\n".join(parts)


def write_activation_report(path, model, text: str, encode, units=None, top: int = 6,
                            title: str = "What the units see", heatmaps: bool | None = None) -> dict:
    """Collect activations of ``model`` on ``text``, rank the units and write the page.

    Returns ``{"path": str, "units": find_interpretable_units(...) ranking}``.
    """
    from rnnkit.io import atomic_write

    acts = collect_activations(model, encode_text(text, encode))
    ranking = find_interpretable_units(text, acts, top=top)
    page = activation_html(text, acts, units=ranking if units is None else units, top=top, title=title,
                           heatmaps=heatmaps)
    path = Path(path)
    data = page.encode("utf-8")
    atomic_write(path, lambda f: f.write(data))
    return {"path": str(path), "units": ranking}
