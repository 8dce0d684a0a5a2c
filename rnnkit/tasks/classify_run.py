"""The sequence classifier's run directory: metrics.json, predictions, confusion matrices, report."""

from __future__ import annotations

import os

import numpy as np

from rnnkit.deadline import Deadline, after_training, chunks_in_time, partial_note
from rnnkit.tasks.metrics import classification_report, jsonable_report
from rnnkit.tasks.run import METRICS_JSON, write_csv, write_json

__all__ = ["plot_confusion", "write_classify_run", "prediction_table", "score_in_time", "score_after_fit",
           "restore_fitted_state"]


def score_in_time(clf, enc, ids, deadline, margin: float, what: str, models=None, classes=None):
    """The classification report of encoded sequences ``enc`` (labels ``ids``, ids of
    ``classes``: default the training classes) by ``models``
    (default the whole ensemble), a random part of them when ``deadline`` would pass with
    less than ``margin`` seconds left: the report's "n" of "of" rows, and its "time_limit_note";
    with the second model, "parts": the accuracy of the networks and of the second model
    alone on the same rows, and its weight. Returns (report, (the rows scored, their probabilities (n, K))."""
    done, nets, seconds = [], [], []
    for idx in chunks_in_time(len(enc), deadline, margin, seed=clf.seed):
        done.append(idx)
        p_net, p_second = clf._parts([enc[j] for j in idx], models=models)
        nets.append(p_net)
        seconds.append(p_second)
    order = np.argsort(np.concatenate(done))
    idx, p_net = np.concatenate(done)[order], np.concatenate(nets)[order]
    p_second = None if seconds[0] is None else np.concatenate(seconds)[order]
    proba = np.exp(clf._mix(p_net, p_second))
    classes = clf.encoder_.classes if classes is None else classes
    rep = jsonable_report(classification_report(ids[idx], np.argmax(proba, axis=1), len(classes)), classes)
    rep.update(n=int(len(idx)), of=len(enc))
    if p_second is not None:            # what each part of the average scores alone, on the same rows
        kind = clf._companion_kind()
        rep["parts"] = {"networks": float(np.mean(np.argmax(p_net, axis=1) == ids[idx])),
                        kind: float(np.mean(np.argmax(p_second, axis=1) == ids[idx])),
                        PART_WEIGHT[kind]: float(clf.companion_weight_)}
    note = partial_note(len(idx), len(enc), what)
    if note:
        rep["time_limit_note"] = note
    return rep, (idx, proba)


def score_after_fit(clf, selected, val, X_test, y_test, deadline, figures: int, where: str) -> None:
    """``val_evaluation_`` (of the ``selected`` network on ``val`` = (encoded, ids); None:
    none) and ``test_evaluation_`` of a fitted classifier within ``deadline``, leaving the
    report its time. The test rows' probabilities stay in ``_scored_`` for predictions.csv."""
    clf._scored_ = {}
    report_s = after_training(None, 1, 0, figures)
    if selected is not None:
        # with a test set to score after it, the validation rows take at most half the time
        ev_deadline = deadline
        if X_test is not None and deadline.limited:
            ev_deadline = Deadline(max(0.0, deadline.left() - report_s) / 2)
        clf.val_evaluation_, _ = score_in_time(clf, val[0], val[1], ev_deadline, report_s,
                                               "validation sequences", [selected])
    if X_test is not None:
        enc = clf._encode(X_test, where)
        ids, classes = clf._scored_labels(y_test, len(enc), "test labels", note=False)
        clf.test_evaluation_, clf._scored_["test"] = score_in_time(clf, enc, ids, deadline, report_s,
                                                                   "test sequences", classes=classes)


#: the key of the second model's weight in an evaluation's "parts"
PART_WEIGHT = {"ngrams": "ngram_weight", "kernels": "kernel_weight"}
#: the second model, in the report's and the CLI's words
PART_NAME = {"ngrams": "n-gram model", "kernels": "kernel model"}
#: how the second model's weight was chosen, in the report's words
WEIGHT_FROM = {"validation": "chosen on the validation part",
               "cross-fitting": "chosen on out-of-fold predictions of the cross-fitted networks",
               "default": "no held-out rows to choose it on"}


def write_classify_run(clf, out_dir, test=None, deadline=None) -> None:
    """``metrics.json``, ``predictions.csv`` (with ``test`` = (X, y): the rows scored), the
    confusion matrices and ``report.html`` of a fitted classifier's run directory (the
    plots while ``deadline`` allows)."""
    h, files = clf.history_, clf.files_ or {}
    notes = [ev["time_limit_note"] for ev in (clf.val_evaluation_, clf.test_evaluation_)
             if ev and ev.get("time_limit_note")]
    write_json(os.path.join(out_dir, METRICS_JSON), {
        "classes": list(clf.classes_), "train_file": files.get("train"), "test_file": files.get("test"),
        "steps": None if h is None else h.step, "stop_reason": None if h is None else h.stop_reason,
        "validation": clf.val_evaluation_, "test": clf.test_evaluation_, "notes": notes})
    if test is not None:
        scored = getattr(clf, "_scored_", {}).get("test")
        write_csv(os.path.join(out_dir, "predictions.csv"), *prediction_table(clf, test[0], test[1], scored=scored))
    write_classify_report(clf, out_dir, deadline, notes)


def prediction_table(clf, X, y=None, files=None, scored=None) -> tuple[list, list]:
    """(header, rows) of a predictions CSV: index, [file], [text] (strings), [label],
    predicted, the probability of the predicted class, then p(class) for every class.
    ``scored`` = (row indices, probabilities) already computed: those rows only."""
    if scored is None:
        index, proba = np.arange(len(X)), clf.predict_proba(X)
    else:
        index, proba = scored
    pred = np.argmax(proba, axis=1)
    classes = clf.classes_
    texts = X if getattr(clf, "kind_", None) == "strings" and all(isinstance(x, str) for x in X) else None
    header = (["index"] + (["file"] if files is not None else []) + (["text"] if texts is not None else [])
              + (["label"] if y is not None else []) + ["predicted", "probability"] + [f"p({c})" for c in classes])
    rows = []
    for i, k, p in zip(index.tolist(), pred, proba):
        rows.append([i] + ([files[i]] if files is not None else []) + ([texts[i]] if texts is not None else [])
                    + ([y[i]] if y is not None else []) + [classes[int(k)], float(p[k])] + [float(v) for v in p])
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

def write_classify_report(clf, out_dir, deadline=None, notes=()) -> None:
    """``report.html``, ``training.png`` and the confusion matrices of a classifier's run
    (the plots while ``deadline`` allows)."""
    from rnnkit.report import NO_TIME_FOR_PLOTS, Section, have_matplotlib, plots_in_time, save_figure, write_run_report

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
        ngram = clf.ngram_model_
        data.append(["n-gram model", "off" if ngram is None else
                     f"TF-IDF logistic regression on {len(ngram.keys_)} n-grams (up to {ngram.longest} tokens"
                     f"{', 3-grams by place' if ngram.placed else ''}), {_weight_text(clf)}"])
    elif clf.input_ != "audio" or clf.kernel_model_ is not None:
        kernels = clf.kernel_model_
        data.append(["kernel model", "off" if kernels is None else
                     f"ROCKET: {len(kernels.kernels_['bias'])} random dilated kernels on the series and its "
                     f"differences, ridge classifier (α {kernels.alpha_:.3g}, temperature {kernels.tau_:.3g}), "
                     f"{_weight_text(clf)}"])
    sections = [Section("Data", table=data, header=["", ""])]
    for title, ev, png in (("Validation", clf.val_evaluation_, "confusion_matrix.png"),
                           ("Test", clf.test_evaluation_, "confusion_matrix_test.png")):
        if ev is None:
            continue
        figs = []
        if plots_in_time(deadline):
            figs.append(save_figure(plot_confusion(ev), os.path.join(out_dir, png)))
        elif have_matplotlib() and NO_TIME_FOR_PLOTS not in notes:
            notes = [*notes, NO_TIME_FOR_PLOTS]
        text = (f"accuracy {ev['accuracy']:.4f}; macro precision {ev['macro_precision']:.4f}, "
                f"recall {ev['macro_recall']:.4f}, F1 {ev['macro_f1']:.4f} "
                f"({sum(ev['support'])} sequences"
                + (f", {ev['time_limit_note']})" if ev.get("time_limit_note") else ")"))
        if ev.get("parts"):
            kind = "ngrams" if "ngrams" in ev["parts"] else "kernels"
            text += (f". Alone, the networks score {ev['parts']['networks']:.4f} and the {PART_NAME[kind]} "
                     f"{ev['parts'][kind]:.4f}; the classifier averages their probabilities, the "
                     f"{PART_NAME[kind]}'s with weight {ev['parts'][PART_WEIGHT[kind]]:g}")
        sections.append(Section(f"{title}: per-class metrics", text=text, table=_per_class_rows(ev),
                                header=["class", "precision", "recall", "F1", "support"], figures=figs))
    write_run_report(out_dir, "rnnkit sequence classifier", sections,
                     config={"task": "classify", "params": clf.get_params(), "model": clf.model_.config()},
                     deadline=deadline, notes=notes)


def _weight_text(clf) -> str:
    return (f"weight {clf.companion_weight_:g} in the average "
            f"({WEIGHT_FROM.get(clf.companion_weight_from_, '')})")


def restore_fitted_state(clf, s: dict) -> None:
    """Set the fitted state of ``clf`` from config.json's ``meta["state"]`` (what
    ``SequenceClassifier._meta`` wrote); KeyError/TypeError/ValueError when it is malformed."""
    from rnnkit.data.sequences import LabelEncoder
    from rnnkit.data.series import scaler_from_dict
    from rnnkit.data.text import CharVocab
    from rnnkit.data.tokens import Tokenizer
    from rnnkit.tasks.series_input import SeriesInput

    clf.kind_ = s["kind"]
    clf.encoder_ = LabelEncoder.from_dict(s["classes"])
    clf.alphabet_ = s["alphabet"]
    if s.get("tokenizer") is not None:
        clf.vocab_ = Tokenizer.from_dict(s["tokenizer"])
    else:   # runs saved before the unknown bucket: ids are alphabet positions
        clf.vocab_ = None if s["alphabet"] is None else CharVocab(s["alphabet"])
    clf.n_features_ = s["n_features"]
    clf.input_, clf.audio_ = s.get("input") or "series", s.get("audio")
    sc = s["scaler"]
    clf.scaler_ = (None if sc is None else SeriesInput.from_dict(sc) if sc.get("kind") == "series_input"
                   else scaler_from_dict(sc))
    clf.class_weights_ = None if s["class_weights"] is None else np.asarray(s["class_weights"])
    clf.missing_ = s.get("missing", "trim")
    clf.window_ = s.get("window")
    clf.positions_ = s.get("positions", 0)
    # runs saved before dropout=None resolved by the input kind: the parameter as given
    clf.dropout_ = s["dropout"] if "dropout" in s else (clf.dropout or 0.0)
    clf.aligned_ = s.get("aligned", False)      # older runs pooled every string set by attention
    clf.hidden_size_ = s.get("hidden_size") or clf.hidden_size or 64    # older runs: the parameter, 64 by default
