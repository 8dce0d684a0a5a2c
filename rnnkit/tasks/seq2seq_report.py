"""The seq2seq run directory's report: validation examples, accuracy by output position, and
the test part (scores beside the baseline, example translations, an attention heat map)."""

from __future__ import annotations

import os

import numpy as np

__all__ = ["write_run", "position_accuracy", "plot_position_accuracy", "test_sections", "attention_figure"]


def position_accuracy(predictions, targets) -> np.ndarray:
    """Accuracy at each output position k: the fraction of targets longer than k whose
    prediction has the right character there.

    Shapes:
        -> (max target length,)
    """
    L = max(len(t) for t in targets)
    hit, count = np.zeros(L), np.zeros(L)
    for p, t in zip(predictions, targets):
        for k, ch in enumerate(t):
            count[k] += 1
            hit[k] += k < len(p) and p[k] == ch
    return np.divide(hit, count, out=np.zeros(L), where=count > 0)


def plot_position_accuracy(predictions, targets, reference: str | None = None):
    """Bar chart of :func:`position_accuracy`; ``reference`` labels the positions
    (e.g. one target). Returns a matplotlib figure."""
    from rnnkit.report import pyplot
    from rnnkit.tasks.metrics import exact_match

    plt = pyplot()
    acc = position_accuracy(predictions, targets)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.45 * len(acc) + 2), 3.4))
    ax.bar(np.arange(len(acc)), acc, color="tab:blue")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("output position")
    ax.set_ylabel("character accuracy")
    if reference is not None and len(reference) == len(acc):
        ax.set_xticks(np.arange(len(acc)), [f"{k}\n{c}" for k, c in enumerate(reference)])
    ax.set_title(f"accuracy by output position (exact match {exact_match(predictions, targets):.3f})")
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def write_run(s2s, out_dir, n_train: int, deadline=None) -> None:
    """metrics.json, the plots (while ``deadline`` allows) and report.html of a fitted
    :class:`~rnnkit.tasks.seq2seq.Seq2Seq`."""
    from rnnkit.report import Section, plots_in_time, save_figure, write_run_report
    from rnnkit.tasks.run import METRICS_JSON, write_json, writes_files

    if not writes_files():      # data parallel: rank 0 alone writes the run directory
        return
    out_dir = os.fspath(out_dir)
    data = [["training pairs", n_train],
            ["validation pairs", 0 if s2s.val_scores_ is None else s2s.val_scores_["of"]],
            ["tokens", s2s.tokens_], ["attention", s2s.attention or "none"],
            ["network", f"{s2s.cell} {s2s.sizes_['hidden_size']} units, {s2s.sizes_['embedding_dim']}-dim "
                        f"embeddings, dropout {s2s.sizes_['dropout']:g}, label smoothing "
                        f"{s2s.sizes_.get('label_smoothing', 0.0):g}, {s2s.sizes_['batch_size']} pairs a batch"],
            ["source vocabulary", f"{s2s.source_vocab_.size} (id 0: unknown)"],
            ["target vocabulary", f"{s2s.target_vocab_.size} (id 0: unknown)"],
            ["longest training target", f"{s2s.max_target_length_} tokens"]]
    sections = [Section("Data", table=data, header=["", ""])]
    if s2s.val_scores_ is not None:
        vs, vt, pred = s2s._val_examples
        figs = []
        if plots_in_time(deadline):
            ref = max(vt, key=len)
            figs.append(save_figure(plot_position_accuracy(pred, vt, ref), os.path.join(out_dir, "char_accuracy.png")))
        text = (f"greedy decoding of {len(vt)} validation pairs: exact match "
                f"{s2s.val_scores_['exact_match']:.4f}, character accuracy {s2s.val_scores_['char_accuracy']:.4f}"
                + (f" ({s2s.val_scores_['time_limit_note']})" if "time_limit_note" in s2s.val_scores_ else ""))
        sections.append(Section("Validation", text=text, figures=figs))
        wrong = [i for i in range(len(vt)) if pred[i] != vt[i]]
        right = [i for i in range(len(vt)) if pred[i] == vt[i]]
        shown = wrong[:15] + right[:5]
        sections.append(Section("Examples (errors first)",
                                table=[[vs[i], vt[i], pred[i], "yes" if pred[i] == vt[i] else "no"] for i in shown],
                                header=["source", "target", "prediction", "exact"]))
    h = s2s.history_
    write_json(os.path.join(out_dir, METRICS_JSON), {
        "pairs": n_train + (0 if s2s.val_scores_ is None else s2s.val_scores_["of"]),
        "steps": None if h is None else h.step, "stop_reason": None if h is None else h.stop_reason,
        "selected_step": getattr(s2s, "selected_step_", None),
        "validation": s2s.val_scores_, "test": s2s.test_scores_,
        "baseline": getattr(s2s, "baseline_scores_", None)})
    if getattr(s2s, "_test_examples", None) is not None:
        sections += test_sections(s2s, out_dir, deadline)
    notes = [sc["time_limit_note"] for sc in (s2s.val_scores_, s2s.test_scores_) if sc and sc.get("time_limit_note")]
    write_run_report(out_dir, "rnnkit sequence to sequence", sections,
                     config={"task": "seq2seq", "params": s2s.get_params(), "model": s2s.model_.config()},
                     deadline=deadline, notes=notes)


def test_sections(s2s, out_dir, deadline=None) -> list:
    """Report sections of a test run: scores beside the baseline, examples, an attention map
    (while ``deadline``, the command's time limit, allows)."""
    from rnnkit.report import Section, plots_in_time, save_figure

    src, ref, pred, memory = s2s._test_examples
    test, base = s2s.test_scores_, s2s.baseline_scores_["translation_memory"]
    rows = []
    for name, sc in (("model", test), ("translation memory", base)):
        rows.append([name] + [f"{sc[k]:.2f}" if sc.get(k) is not None else "n/a" for k in ("bleu", "chrf")]
                    + [f"{sc['exact_match']:.4f}"])
    note = "\n".join(n for n in (test.get("time_limit_note"), test.get("note")) if n) or None
    out = [Section(f"Test ({len(ref)} pairs, beam {test['beam_width']})", text=note, table=rows,
                   header=["", "BLEU", "chrF", "exact match"])]
    out.append(Section("Example translations", table=[[src[i], ref[i], pred[i], memory[i]]
                                                       for i in range(min(20, len(src)))],
                       header=["source", "reference", "model", "translation memory"]))
    if plots_in_time(deadline) and s2s.attention is not None:
        i = max(range(min(20, len(src))), key=lambda k: len(src[k]) if len(src[k]) <= 40 else 0)
        fig = attention_figure(s2s, src[i], pred[i])
        out.append(Section("Attention", text=f"where the decoder looked while writing {pred[i]!r}",
                           figures=[save_figure(fig, os.path.join(os.fspath(out_dir), "attention.png"))]))
    return out


def attention_figure(s2s, source: str, output: str):
    """Heat map of the attention of each output token over the source tokens."""
    from rnnkit.data.tokens import tokenize
    from rnnkit.report import pyplot

    x = s2s._encode_sources([source], "attention_figure")[0][:, None]
    y = s2s._encode_targets([output], "attention_figure")[0][:, None]
    w = s2s.model_.attention_weights(x, y)[0]                                   # (T, S)
    src_toks = tokenize(source, s2s.tokens_, lower=False) or ["?"]
    out_toks = tokenize(output, s2s.tokens_, lower=False) + ["</s>"]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(4.0, 0.3 * len(src_toks) + 2), max(3.0, 0.3 * len(out_toks) + 1.5)))
    ax.imshow(w, cmap="Greys", aspect="auto", vmin=0, vmax=max(float(w.max()), 1e-9))
    ax.set_xticks(range(len(src_toks)), src_toks, rotation=90 if s2s.tokens_ == "word" else 0)
    ax.set_yticks(range(len(out_toks)), out_toks)
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    fig.tight_layout()
    return fig
