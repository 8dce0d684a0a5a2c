"""The sequence classifier's run directory: metrics.json, predictions, confusion matrices, report."""

from __future__ import annotations

import os

import numpy as np

from rnnkit.tasks.run import METRICS_JSON, write_csv, write_json

__all__ = ["plot_confusion", "write_classify_run", "prediction_table"]


def write_classify_run(clf, out_dir, test=None) -> None:
    """``metrics.json``, ``predictions.csv`` (with ``test`` = (X, y)), the confusion
    matrices and ``report.html`` of a fitted classifier's run directory."""
    h, files = clf.history_, clf.files_ or {}
    write_json(os.path.join(out_dir, METRICS_JSON), {
        "classes": list(clf.classes_), "train_file": files.get("train"), "test_file": files.get("test"),
        "steps": None if h is None else h.step, "stop_reason": None if h is None else h.stop_reason,
        "validation": clf.val_evaluation_, "test": clf.test_evaluation_})
    if test is not None:
        write_csv(os.path.join(out_dir, "predictions.csv"), *prediction_table(clf, test[0], test[1]))
    write_classify_report(clf, out_dir)


def prediction_table(clf, X, y=None, files=None) -> tuple[list, list]:
    """(header, rows) of a predictions CSV: index, [file], [label], predicted, the probability
    of the predicted class, then p(class) for every class."""
    proba = clf.predict_proba(X)
    pred = np.argmax(proba, axis=1)
    classes = clf.classes_
    header = (["index"] + (["file"] if files is not None else []) + (["label"] if y is not None else [])
              + ["predicted", "probability"] + [f"p({c})" for c in classes])
    rows = []
    for i, k in enumerate(pred):
        rows.append([i] + ([files[i]] if files is not None else []) + ([y[i]] if y is not None else [])
                    + [classes[int(k)], float(proba[i, k])] + [float(p) for p in proba[i]])
    return header, rows


def plot_confusion(evaluation: dict, normalize: bool = True):
    """The confusion matrix of an :meth:`evaluate` result (rows normalised to recall
    with ``normalize``, counts written in the cells). Returns a matplotlib figure."""
    from rnnkit.report import pyplot

    plt = pyplot()
    conf = np.asarray(evaluation["confusion"], dtype=np.float64)
    labels = [str(c) for c in evaluation["classes"]]
    K = len(labels)
    rows = conf.sum(axis=1, keepdims=True)
    shown = np.divide(conf, rows, out=np.zeros_like(conf), where=rows > 0) if normalize else conf
    size = min(max(3.5, 1.0 + 0.6 * K), 12)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if K <= 30:
        ax.set_xticks(range(K), labels, rotation=45 if K > 6 else 0, ha="right" if K > 6 else "center")
        ax.set_yticks(range(K), labels)
        for i in range(K):
            for j in range(K):
                ax.text(j, i, f"{int(conf[i, j])}", ha="center", va="center", fontsize=8,
                        color="white" if shown[i, j] > 0.5 * (shown.max() or 1) else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"confusion matrix (accuracy {evaluation['accuracy']:.3f})")
    fig.tight_layout()
    return fig


def _per_class_rows(ev: dict) -> list[list]:
    return [[c, p, r, f, s] for c, p, r, f, s in zip(ev["classes"], ev["precision"], ev["recall"],
                                                    ev["f1"], ev["support"])]

def write_classify_report(clf, out_dir) -> None:
    """``report.html``, ``training.png`` and the confusion matrices of a classifier's run."""
    from rnnkit.report import Section, have_matplotlib, save_figure, write_run_report

    out_dir = os.fspath(out_dir)
    audio = getattr(clf, "audio_", None)
    data = [["input", clf.kind_ if clf.kind_ == "strings" else
             f"audio, {audio['features']} ({clf.n_features_} per frame)" if audio else
             f"numeric, {clf.n_features_} feature(s)"],
            ["classes", len(clf.classes_)], ["pooling", clf.pooling_],
            ["class weights", "none" if clf.class_weights_ is None else
             ", ".join(f"{c}: {w:.3g}" for c, w in zip(clf.classes_, clf.class_weights_))]]
    if clf.kind_ == "strings":
        data.append(["tokens", f"{clf.vocab_.kind}, {clf.vocab_.size} (id 0: unknown)"])
        if clf.alphabet_ is not None:
            data.append(["alphabet", clf.alphabet_[:200]])
    sections = [Section("Data", table=data, header=["", ""])]
    for title, ev, png in (("Validation", clf.val_evaluation_, "confusion_matrix.png"),
                           ("Test", clf.test_evaluation_, "confusion_matrix_test.png")):
        if ev is None:
            continue
        figs = []
        if have_matplotlib():
            figs.append(save_figure(plot_confusion(ev), os.path.join(out_dir, png)))
        text = (f"accuracy {ev['accuracy']:.4f}; macro precision {ev['macro_precision']:.4f}, "
                f"recall {ev['macro_recall']:.4f}, F1 {ev['macro_f1']:.4f} "
                f"({sum(ev['support'])} sequences)")
        sections.append(Section(f"{title}: per-class metrics", text=text, table=_per_class_rows(ev),
                                header=["class", "precision", "recall", "F1", "support"], figures=figs))
    write_run_report(out_dir, "rnnkit sequence classifier", sections,
                     config={"task": "classify", "params": clf.get_params(), "model": clf.model_.config()})
