"""The run report: one self-contained ``report.html`` per training run.

Everything is embedded (PNG images as base64 data URIs, inline CSS), so the file
opens offline and can be mailed around. Plots need matplotlib (``pip install
"rnnkit[plot]"``); without it the report still carries the config, the tables and
the metrics, with a note where the plots would be.

A report is built from :class:`Section` objects — a heading and any of: an HTML
fragment (trusted, made by rnnkit), preformatted text (escaped), a table (rows of
cells, escaped) and figures (matplotlib figures or PNG bytes). The task modules
add their own view (samples, forecast against actual, confusion matrix) as sections.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from rnnkit._version import __version__


@dataclass
class Section:
    """One block of the report. ``figures`` holds matplotlib figures or PNG bytes."""

    title: str
    text: str | None = None
    html: str | None = None
    table: list[list] | None = None
    header: list[str] | None = None
    figures: list = field(default_factory=list)


def have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def plots_in_time(deadline=None) -> bool:
    """Whether to draw a plot now: matplotlib is there and ``deadline`` (a
    :class:`rnnkit.deadline.Deadline`, or None) leaves the time a plot takes. A command's
    time limit covers its report: near its end, the report is written without the plots
    left."""
    from rnnkit.deadline import FIGURE_SECONDS

    return have_matplotlib() and (deadline is None or not deadline.expired(FIGURE_SECONDS))


#: the report's note where the time limit left out plots
NO_TIME_FOR_PLOTS = "Some plots were left out: the time limit was reached before they were drawn."


def pyplot():
    """matplotlib.pyplot with the file-only Agg backend (no screen needed)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def figure_png(fig) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    pyplot().close(fig)
    return buf.getvalue()


def save_figure(fig, path) -> bytes:
    """Write ``fig`` as a PNG file (atomically) and return its bytes for embedding."""
    from rnnkit.io import atomic_write

    data = figure_png(fig)
    atomic_write(path, lambda f: f.write(data))
    return data


def read_metrics(path) -> list[dict]:
    """The records of a ``metrics.jsonl`` file ([] when there is none yet); a last line
    cut short by a crash is dropped (see :func:`rnnkit.io.read_jsonl`)."""
    from rnnkit.io import read_jsonl

    path = Path(path)
    return read_jsonl(path) if path.exists() else []


def _series(records: list[dict], key: str):
    pts = [(r["step"], r[key]) for r in records
           if "step" in r and isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
    return [p[0] for p in pts], [p[1] for p in pts]


def training_figure(records: list[dict]):
    """Loss (train and validation), gradient norm and learning rate against step.

    Returns a matplotlib figure, or None when there is nothing to draw.
    """
    train = _series(records, "train_loss")
    val = _series(records, "val_loss")
    gnorm = _series(records, "grad_norm")
    lr = _series(records, "lr")
    if not (train[0] or val[0]):
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    ax = axes[0]
    if train[0]:
        ax.plot(*train, label="train", color="tab:blue")
    if val[0]:
        ax.plot(*val, label="validation", color="tab:orange", marker="o", ms=3)
    ax.set_title("loss")
    ax.set_xlabel("step")
    ax.legend()
    ax.grid(alpha=0.3)
    ax = axes[1]
    if gnorm[0]:
        ax.plot(*gnorm, color="tab:green")
        if min(gnorm[1]) > 0:
            ax.set_yscale("log")
    ax.set_title("gradient norm (before clipping)")
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
    ax = axes[2]
    if lr[0]:
        ax.plot(*lr, color="tab:purple")
    ax.set_title("learning rate")
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em} h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
.meta{color:#666;font-size:.9em} table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left} th{background:#f4f4f4}
pre{background:#f7f7f7;padding:.8em;overflow-x:auto;white-space:pre-wrap;font-size:.85em}
img{max-width:100%;display:block;margin:.5em 0} .note{color:#a60}
"""


def _cell(v) -> str:
    if isinstance(v, float):
        return html.escape(f"{v:.6g}")
    return html.escape(str(v))


def _table_html(rows, header=None) -> str:
    out = ["<table>"]
    if header:
        out.append("<tr>" + "".join(f"<th>{_cell(h)}</th>" for h in header) + "</tr>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in row) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _img_html(fig_or_png, alt: str) -> str:
    data = fig_or_png if isinstance(fig_or_png, (bytes, bytearray)) else figure_png(fig_or_png)
    b64 = base64.b64encode(bytes(data)).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


def render(title: str, sections: list[Section], config: dict | None = None,
           records: list[dict] | None = None, timing: dict | None = None, training_png: bytes | None = None,
           deadline=None, notes=()) -> str:
    """The whole report as one HTML string. ``training_png``: the training curves already
    drawn (else drawn here from ``records`` while ``deadline`` allows); ``notes``: lines
    shown under the title (e.g. what the time limit cut short)."""
    now = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">rnnkit {__version__} · written {now}</p>',
    ]
    plots = have_matplotlib()
    for note in notes:
        parts.append(f'<p class="note">{html.escape(note)}</p>')
    for sec in sections:
        parts.append(f"<h2>{html.escape(sec.title)}</h2>")
        if sec.text is not None:
            parts.append(f"<pre>{html.escape(sec.text)}</pre>")
        if sec.html is not None:
            parts.append(sec.html)
        if sec.table is not None:
            parts.append(_table_html(sec.table, sec.header))
        for fig in sec.figures:
            parts.append(_img_html(fig, sec.title))
    if records:
        parts.append("<h2>Training</h2>")
        fig, left_out = training_png, False
        if fig is None:
            if plots_in_time(deadline):
                fig = training_figure(records)
            else:
                left_out = plots            # matplotlib is there: the time limit left the plot out
        if fig is not None:
            parts.append(_img_html(fig, "training curves"))
        elif not plots:
            parts.append('<p class="note">Plots need matplotlib: pip install "rnnkit[plot]".</p>')
        elif left_out:
            parts.append(f'<p class="note">{html.escape(NO_TIME_FOR_PLOTS)}</p>')
        last = records[-1]
        parts.append(_table_html([[k, v] for k, v in last.items()], ["last record", "value"]))
    if timing:
        parts.append("<h2>Timing</h2>")
        parts.append(_table_html([[k, v] for k, v in timing.items()], ["what", "seconds"]))
    if config:
        parts.append("<h2>Configuration</h2>")
        parts.append(f"<pre>{html.escape(json.dumps(config, indent=2, sort_keys=True, default=str))}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(path, title: str, sections: list[Section], config: dict | None = None,
                 records: list[dict] | None = None, timing: dict | None = None, training_png: bytes | None = None,
                 deadline=None, notes=()) -> Path:
    """Render (:func:`render`) and write the report atomically; returns its path."""
    from rnnkit.io import atomic_write

    path = Path(path)
    data = render(title, sections, config=config, records=records, timing=timing, training_png=training_png,
                  deadline=deadline, notes=notes).encode("utf-8")
    atomic_write(path, lambda f: f.write(data))
    return path


def write_run_report(run_dir, title: str, sections: list[Section] | None = None,
                     config: dict | None = None, timing: dict | None = None, deadline=None, notes=()) -> Path:
    """The report of a training run directory: reads its ``train/metrics.jsonl`` and also
    writes ``training.png`` beside ``report.html`` when matplotlib is there and ``deadline``
    (the command's time limit, or None) has not passed."""
    run_dir = Path(run_dir)
    records = read_metrics(run_dir / "train" / "metrics.jsonl")
    png = None
    if records and plots_in_time(deadline):
        fig = training_figure(records)
        if fig is not None:
            png = save_figure(fig, run_dir / "training.png")
    if config is None and (run_dir / "config.json").exists():
        from rnnkit.io import load_json
        config = load_json(run_dir / "config.json")
    return write_report(run_dir / "report.html", title, sections or [], config=config,
                        records=records, timing=timing, training_png=png, deadline=deadline, notes=notes)


def write_table_report(out_dir, title: str, table: str, png=None, note: str | None = None) -> Path:
    """``out_dir/report.html`` of one section: a text table, an optional note and the
    figure in the PNG file ``png`` (a diagnostic's result); returns its path."""
    figures = [Path(png).read_bytes()] if png else []
    sec = Section(title, text=table + (f"\n\n{note}" if note else ""), figures=figures)
    return write_report(Path(out_dir) / "report.html", f"rnnkit {title}", [sec])


__all__ = ["Section", "render", "write_report", "write_run_report", "write_table_report", "training_figure",
           "figure_png", "save_figure", "read_metrics", "have_matplotlib", "plots_in_time", "pyplot",
           "NO_TIME_FOR_PLOTS"]

