"""The seq2seq run report's test part: scores beside the baseline, examples, an attention heat map."""

from __future__ import annotations

import os

__all__ = ["test_sections", "attention_figure"]


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
    src_toks = tokenize(source, s2s.tokens, lower=False) or ["?"]
    out_toks = tokenize(output, s2s.tokens, lower=False) + ["</s>"]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(4.0, 0.3 * len(src_toks) + 2), max(3.0, 0.3 * len(out_toks) + 1.5)))
    ax.imshow(w, cmap="Greys", aspect="auto", vmin=0, vmax=max(float(w.max()), 1e-9))
    ax.set_xticks(range(len(src_toks)), src_toks, rotation=90 if s2s.tokens == "word" else 0)
    ax.set_yticks(range(len(out_toks)), out_toks)
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    fig.tight_layout()
    return fig
