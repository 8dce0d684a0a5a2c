"""Scores of the jobs: classification, string transduction (exact match, chrF, BLEU).

chrF and BLEU are sacrebleu's corpus scores (Popović 2015; Papineni et al. 2002, with
sacrebleu's standard tokenisation), on a 0–100 scale; sacrebleu (the ``[text]``
extra) is imported only when they are asked for.
"""

from __future__ import annotations

import numpy as np

__all__ = ["classification_report", "jsonable_report", "exact_match", "char_accuracy", "text_scores"]


def classification_report(y_true, y_pred, num_classes: int) -> dict:
    """Accuracy, per-class precision/recall/F1/support, macro means, confusion matrix.

    Shapes:
        y_true, y_pred: int (n,) in [0, num_classes)  ->  dict; "confusion" (K, K) int64
    """
    t = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    K = num_classes
    conf = np.zeros((K, K), dtype=np.int64)
    np.add.at(conf, (t, p), 1)
    tp = np.diag(conf).astype(np.float64)
    pred_n = conf.sum(axis=0).astype(np.float64)
    true_n = conf.sum(axis=1).astype(np.float64)
    precision = np.divide(tp, pred_n, out=np.zeros(K), where=pred_n > 0)
    recall = np.divide(tp, true_n, out=np.zeros(K), where=true_n > 0)
    s = precision + recall
    f1 = np.divide(2 * precision * recall, s, out=np.zeros(K), where=s > 0)
    return {"accuracy": float(tp.sum() / max(len(t), 1)), "precision": precision, "recall": recall,
            "f1": f1, "support": true_n.astype(np.int64), "macro_precision": float(precision.mean()),
            "macro_recall": float(recall.mean()), "macro_f1": float(f1.mean()), "confusion": conf}


def exact_match(predictions, targets) -> float:
    """The fraction of predictions equal to their targets."""
    if len(predictions) != len(targets) or not targets:
        raise ValueError(f"exact_match: need equally many (>= 1) predictions and targets, got "
                         f"{len(predictions)} and {len(targets)}")
    return float(np.mean([p == t for p, t in zip(predictions, targets)]))


def char_accuracy(predictions, targets) -> float:
    """Position-by-position character accuracy (module docstring)."""
    if len(predictions) != len(targets) or not targets:
        raise ValueError(f"char_accuracy: need equally many (>= 1) predictions and targets, got "
                         f"{len(predictions)} and {len(targets)}")
    hit = total = 0
    for p, t in zip(predictions, targets):
        hit += sum(a == b for a, b in zip(p, t))
        total += max(len(p), len(t))
    return float(hit / total) if total else 1.0


def text_scores(predictions, targets) -> dict:
    """Exact match and, with sacrebleu installed, corpus chrF and BLEU (0–100) of
    ``predictions`` against ``targets``; without it, "chrf" and "bleu" are None and
    "note" says what to install.
    """
    scores = {"n": len(targets), "exact_match": exact_match(predictions, targets),
              "char_accuracy": char_accuracy(predictions, targets)}
    try:
        import sacrebleu
    except ImportError:
        return {**scores, "chrf": None, "bleu": None,
                "note": "chrF and BLEU need sacrebleu: pip install 'rnnkit[text]' (or sacrebleu)"}
    refs = [list(targets)]
    scores["chrf"] = float(sacrebleu.corpus_chrf(list(predictions), refs).score)
    scores["bleu"] = float(sacrebleu.corpus_bleu(list(predictions), refs).score)
    return scores


def jsonable_report(rep: dict, classes) -> dict:
    """A :func:`classification_report` as JSON types, with the class labels."""
    out = {"accuracy": rep["accuracy"], "classes": list(classes)}
    for k in ("precision", "recall", "f1"):
        out[k] = [float(v) for v in rep[k]]
    out["support"] = [int(v) for v in rep["support"]]
    for k in ("macro_precision", "macro_recall", "macro_f1"):
        out[k] = rep[k]
    out["confusion"] = np.asarray(rep["confusion"]).tolist()
    return out
