"""Figures for the diagnostics: gradient flow, memory benchmarks, gate heat maps.

matplotlib is imported inside each function (through :func:`rnnkit.report.pyplot`,
which selects the file-only Agg backend), so importing this module costs nothing and
``import rnnkit`` never pulls matplotlib in. Files are written atomically.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

__all__ = ["plot_gradient_flow", "plot_memory", "gate_heatmaps_png", "write_png"]


def write_png(fig, path) -> Path:
    """Render ``fig`` to PNG, write it to ``path`` atomically (the figure is closed)."""
    from rnnkit.io import atomic_write
    from rnnkit.report import figure_png

    data = figure_png(fig)
    path = Path(path)
    atomic_write(path, lambda f: f.write(data))
    return path


def _values(seq) -> np.ndarray:
    """A list that may hold None (overflowed values) as a float array with NaN gaps;
    zeros become NaN too, since a log axis cannot show them."""
    a = np.array([np.nan if v is None else v for v in seq], dtype=np.float64)
    a[~(a > 0)] = np.nan
    return a


def plot_gradient_flow(result: dict, path=None):
    """Two log-scale panels side by side from :func:`gradient_flow_experiment`'s result:
    ‖∂L/∂hₜ‖ against t (L at the last step only) and ‖∂h_T/∂hₜ‖ against t, one curve
    per cell. Vanishing gradients fall to the left, exploding ones rise.

    Writes a PNG to ``path`` and returns the path, or returns the figure if ``path``
    is None.
    """
    from rnnkit.report import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharex=True)
    t = np.asarray(result["t"])
    panels = (("grad_norm", r"$\|\partial L / \partial h_t\|$, L at step T only"),
              ("jacobian_norm", r"$\|\partial h_T / \partial h_t\|$" + f" ({result.get('norm', 'spectral')} norm)"))
    for ax, (key, title) in zip(axes, panels):
        for name, r in result["cells"].items():
            y = _values(r[key])
            if np.isfinite(y).any():
                ax.plot(t, y, label=name, lw=1.6)
            else:
                ax.plot([], [], label=f"{name} (no finite values)")
        ax.set_yscale("log")
        ax.set_xlabel("time step t")
        ax.set_title(title)
        ax.grid(alpha=0.3, which="both")
        ax.legend()
    fig.suptitle(f"Gradient flow through T = {result['length']} steps, H = {result['hidden']}, "
                 f"init = {result['init']}")
    fig.tight_layout()
    return fig if path is None else write_png(fig, path)


def plot_memory(result: dict, path=None):
    """Evaluation loss against training step for each cell of :func:`run_memory`'s
    result on a log scale, with the no-memory baseline (dashed) and the 0.9·baseline
    threshold that counts as beating it (dotted). Losses above 10 × baseline are drawn
    at that height.

    Writes a PNG to ``path`` and returns the path, or returns the figure if ``path``
    is None.
    """
    from rnnkit.report import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    base = result["baseline"]
    top = 10.0 * base                  # an early blow-up (e.g. IRNN's first steps) would hide the rest
    clipped = False
    for name, r in result["cells"].items():
        steps = np.asarray(r["curve"]["step"])
        loss = _values(r["curve"]["eval_loss"])
        clipped |= bool(np.any(loss > top))
        ax.plot(steps, np.minimum(loss, top), label=name, lw=1.6, marker="o", ms=2.5)
    ax.axhline(base, color="k", ls="--", lw=1, label=f"baseline {base:.4g}")
    ax.axhline(base * result.get("beat_factor", 0.9), color="k", ls=":", lw=1,
               label=f"{result.get('beat_factor', 0.9):g} × baseline")
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("evaluation loss")
    title = f"{result['task']} task, T = {result['length']}"
    ax.set_title(title + ("  (losses above 10 × baseline drawn at the top)" if clipped else ""))
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    return fig if path is None else write_png(fig, path)


def gate_heatmaps_png(layer_acts: dict, max_units: int = 64, text: str | None = None) -> bytes:
    """Heat maps (unit × time) of every gate and state of one layer's activations, as
    PNG bytes, one panel per part ("i", "f", "g", "o", "c", "h" for the LSTM; "r", "z",
    "n", "h" for the GRU; "h" for the RNN). At most ``max_units`` units are drawn. With
    ``text`` of at most 120 characters the time axis is labelled with the characters.

    Shapes:
        layer_acts[part]: (T, H)
    """
    from rnnkit.report import figure_png, pyplot

    parts = [k for k in ("i", "f", "g", "o", "r", "z", "n", "c", "h") if k in layer_acts]
    if not parts:
        raise ValueError("gate_heatmaps_png: layer_acts holds none of the parts "
                         "'i', 'f', 'g', 'o', 'r', 'z', 'n', 'c', 'h'")
    plt = pyplot()
    T = np.asarray(layer_acts[parts[0]]).shape[0]
    width = min(16.0, 3.0 + 0.06 * T)
    fig, axes = plt.subplots(len(parts), 1, figsize=(width, 1.6 * len(parts) + 0.6), squeeze=False)
    sigmoid_parts = {"i", "f", "o", "r", "z"}
    for ax, part in zip(axes[:, 0], parts):
        a = np.asarray(layer_acts[part], dtype=np.float64)[:, :max_units].T     # (units, T)
        if part in sigmoid_parts:
            im = ax.imshow(a, aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
        else:
            m = float(np.max(np.abs(a))) if a.size else 1.0
            m = m if m > 0 and math.isfinite(m) else 1.0
            im = ax.imshow(a, aspect="auto", cmap="RdBu_r", vmin=-m, vmax=m, interpolation="nearest")
        ax.set_ylabel(f"{part}\nunit")
        fig.colorbar(im, ax=ax, fraction=0.025, pad=0.01)
    if text is not None and len(text) == T and T <= 120:
        shown = ["↵" if ch == "\n" else "␣" if ch == " " else ch for ch in text]
        for ax in axes[:, 0]:
            ax.set_xticks(np.arange(T))
            ax.set_xticklabels(shown, fontsize=7, fontfamily="monospace")
    axes[-1, 0].set_xlabel("time step (character)")
    fig.tight_layout()
    return figure_png(fig)
