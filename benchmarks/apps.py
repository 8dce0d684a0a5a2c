"""The applications on real files, each beside the simple baseline of its kind, in one run.

    python benchmarks/apps.py text   TRAIN.tsv TEST.tsv   [--time-limit S]   intent, DNA, ...
    python benchmarks/apps.py cv     ALL.tsv --folds K    [--time-limit S]   small text sets
    python benchmarks/apps.py speech TRAIN_DIR TEST_DIR   [--time-limit S]   spoken words
    python benchmarks/apps.py translation TRAIN.tsv TEST.tsv [--time-limit S] [--tokens auto|char|word]
    python benchmarks/apps.py forecast FILE.csv --column C --horizon H [--time-limit S]

Baselines (computed here, on the same test data):

    text, cv     logistic regression on TF-IDF features (word 1-2-grams, or character
                 1-4-grams plus position-tagged 3-grams for DNA/protein), 300 full-batch
                 gradient steps, L2 1e-4
    speech       1-nearest neighbour under dynamic time warping of the MFCC frames, and
                 logistic regression on each clip's MFCC means and standard deviations
    translation  translation memory: the target of the most similar training source
    forecast     naive and seasonal naive forecasts on the same backtest windows

rnnkit runs with its defaults (those of the command line) and ``--time-limit``, once per
seed of ``--seeds N`` (0 … N−1; the mean and range are printed); the scores are noisy on a
busy machine and with small test sets (quote them with their sizes).

``cv`` is for a labelled text file too small to split once (a test part of 20 rows
moves 5 % per row): stratified K-fold cross-validation, every fold scored by the
baseline and by rnnkit (each seed) on the same rows; the accuracy printed is over all
the rows, each predicted by the fold that did not train on it. ``--set NAME=VALUE``
(repeatable) passes a constructor argument to rnnkit's classifier, to compare a
setting with the defaults on the same folds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _csr(docs, vocab, idf):
    """Rows of L2-normalised (1 + log tf)·idf weights as (indptr, indices, data)."""
    indptr, indices, data = [0], [], []
    for d in docs:
        items = [(vocab[g], (1 + np.log(c)) * idf[vocab[g]]) for g, c in d.items() if g in vocab]
        norm = np.sqrt(sum(w * w for _, w in items)) or 1.0
        indices += [j for j, _ in items]
        data += [w / norm for _, w in items]
        indptr.append(len(indices))
    return np.array(indptr), np.array(indices, dtype=np.int64), np.array(data)


def _scores(csr, W, b):
    indptr, indices, data = csr
    out = np.zeros((len(indptr) - 1, W.shape[1]))
    rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    np.add.at(out, rows, data[:, None] * W[indices])
    return out + b


def tfidf_logreg(train_x, train_y, test_x, kind: str, steps: int = 300, l2: float = 1e-4, lr: float = 5.0):
    from rnnkit.data.tokens import tokenize

    def grams(t):
        if kind == "word":
            toks = tokenize(t, "word")
            return Counter(toks + [a + " " + b for a, b in zip(toks, toks[1:])])
        return Counter([t[i:i + k] for k in (1, 2, 3, 4) for i in range(len(t) - k + 1)]
                       + [f"{i // 10}:{t[i:i + 3]}" for i in range(len(t) - 2)])

    docs = [grams(t) for t in train_x]
    df = Counter(g for d in docs for g in d)
    vocab = {g: i for i, g in enumerate(sorted(g for g, c in df.items() if c >= 2 or len(train_x) < 500))}
    idf = np.array([np.log((1 + len(docs)) / (1 + df[g])) + 1 for g in vocab])
    A, At = _csr(docs, vocab, idf), _csr([grams(t) for t in test_x], vocab, idf)
    labels = sorted(set(train_y))
    y = np.array([labels.index(v) for v in train_y])
    W, b = np.zeros((len(vocab), len(labels))), np.zeros(len(labels))
    rows = np.repeat(np.arange(len(y)), np.diff(A[0]))
    for _ in range(steps):
        Z = _scores(A, W, b)
        P = np.exp(Z - Z.max(axis=1, keepdims=True))
        P /= P.sum(axis=1, keepdims=True)
        P[np.arange(len(y)), y] -= 1
        G = np.zeros_like(W)
        np.add.at(G, A[1], A[2][:, None] * P[rows])
        W -= lr * (G / len(y) + l2 * W)
        b -= lr * P.mean(axis=0)
    return [labels[k] for k in _scores(At, W, b).argmax(axis=1)]


def dense_logreg(train_x, train_y, test_x, steps: int = 500, l2: float = 1e-3, lr: float = 0.5):
    """Multinomial logistic regression on standardised dense features (full-batch gradient)."""
    mu, sd = train_x.mean(axis=0), train_x.std(axis=0) + 1e-8
    A, At = (train_x - mu) / sd, (test_x - mu) / sd
    labels = sorted(set(train_y))
    y = np.array([labels.index(v) for v in train_y])
    W, b = np.zeros((A.shape[1], len(labels))), np.zeros(len(labels))
    for _ in range(steps):
        Z = A @ W + b
        P = np.exp(Z - Z.max(axis=1, keepdims=True))
        P /= P.sum(axis=1, keepdims=True)
        P[np.arange(len(y)), y] -= 1
        W -= lr * (A.T @ P / len(y) + l2 * W)
        b -= lr * P.mean(axis=0)
    return [labels[k] for k in (At @ W + b).argmax(axis=1)]


def run_seeds(args, fit, describe):
    """Fit rnnkit once per seed; print each run and the mean and range of the test accuracy."""
    accs = []
    for seed in range(args.seed, args.seed + args.seeds):
        t0 = time.time()
        clf = fit(seed)
        accs.append(clf.test_evaluation_["accuracy"])
        h = clf.history_
        print(f"rnnkit seed {seed} ({describe(clf)}): test accuracy {accs[-1]:.4f} ({time.time() - t0:.0f} s, "
              f"{h.step} steps, {h.stop_reason}, ensemble of {getattr(clf, 'ensemble_', clf.ensemble)})", flush=True)
    if len(accs) > 1:
        print(f"rnnkit over {len(accs)} seeds: mean {np.mean(accs):.4f}, range {min(accs):.4f}-{max(accs):.4f}")


def cmd_text(args):
    from rnnkit.data.labeled_text import read_labeled_text
    from rnnkit.data.tokens import choose_tokens
    from rnnkit.tasks.classify import SequenceClassifier

    X, y = read_labeled_text(args.train)
    Xt, yt = read_labeled_text(args.test)
    t0 = time.time()
    base = np.mean(np.array(tfidf_logreg(X, y, Xt, choose_tokens(X))) == np.array(yt))
    print(f"baseline TF-IDF + logistic regression: test accuracy {base:.4f} ({time.time() - t0:.0f} s)", flush=True)
    run_seeds(args, lambda seed: SequenceClassifier(seed=seed).fit_files(args.train, args.test,
                                                                          time_limit=args.time_limit),
              lambda clf: f"{clf.vocab_.kind} tokens, {clf.vocab_.size} ids, {len(yt)} test rows")


def stratified_folds(y, k: int, seed: int = 0) -> np.ndarray:
    """The fold (0 … k−1) of each row: every class dealt round-robin over the folds from a
    seeded shuffle, so each fold holds each class in proportion (±1 row)."""
    y = list(y)
    if k < 2:
        raise ValueError(f"--folds must be at least 2, got {k}")
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=np.int64)
    start = 0
    for c in sorted(set(y), key=str):
        members = rng.permutation([i for i, v in enumerate(y) if v == c])
        fold[members] = (start + np.arange(len(members))) % k
        start = (start + len(members)) % k      # the next class begins where this one stopped
    return fold


def _setting(text: str):
    import json

    name, sep, value = text.partition("=")
    if not sep or not name:
        raise SystemExit(f"--set takes NAME=VALUE, got {text!r}")
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


def cmd_cv(args):
    from rnnkit.data.labeled_text import read_labeled_text
    from rnnkit.data.tokens import choose_tokens
    from rnnkit.tasks.classify import SequenceClassifier

    X, y = read_labeled_text(args.file)
    settings = dict(_setting(t) for t in args.set or [])
    fold = stratified_folds(y, args.folds, args.split_seed)
    kind = choose_tokens(X)
    seeds = list(range(args.seed, args.seed + args.seeds))
    right = {"baseline": 0, **{s: 0 for s in seeds}}
    print(f"{len(y)} rows, {args.folds} stratified folds, {kind} tokens, rnnkit {settings or 'defaults'}", flush=True)
    for f in range(args.folds):
        tr, te = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        Xtr, ytr = [X[i] for i in tr], [y[i] for i in tr]
        Xte, yte = [X[i] for i in te], [y[i] for i in te]
        pred = tfidf_logreg(Xtr, ytr, Xte, choose_tokens(Xtr))
        right["baseline"] += int(np.sum(np.array(pred) == np.array(yte)))
        line = [f"fold {f} ({len(tr)}/{len(te)}): baseline {np.mean(np.array(pred) == np.array(yte)):.3f}"]
        for seed in seeds:
            t0 = time.time()
            clf = SequenceClassifier(seed=seed, **settings).fit(Xtr, ytr, X_test=Xte, y_test=yte,
                                                                time_limit=args.time_limit)
            acc = clf.test_evaluation_["accuracy"]
            right[seed] += int(round(acc * len(te)))
            line.append(f"seed {seed} {acc:.3f} ({time.time() - t0:.0f} s, {clf.history_.step} steps, "
                        f"ensemble {clf.ensemble_})")
        print(", ".join(line), flush=True)
    accs = [right[s] / len(y) for s in seeds]
    print(f"cross-validated accuracy: baseline TF-IDF + logistic regression {right['baseline'] / len(y):.4f}; "
          f"rnnkit per seed {', '.join(f'{a:.4f}' for a in accs)} (mean {np.mean(accs):.4f})")


def _dtw(a, b):
    """The length-normalised dynamic time warping cost of frame sequences a (n, F), b (m, F)."""
    return _dtw_many(a, [b])[0]


def _dtw_many(a, refs):
    """DTW costs of ``a`` (n, F) against every reference (m_r, F), the references as one
    padded batch (each step of the recursion is one array operation over all of them):

        C[i, j] = ‖a_i − b_j‖ + min(C[i−1, j], C[i, j−1], C[i−1, j−1]),   cost = C[n, m] / (n + m)
    """
    R, M = len(refs), max(len(b) for b in refs)
    B = np.zeros((R, M, a.shape[1]))
    for r, b in enumerate(refs):
        B[r, :len(b)] = b
    D = np.sqrt(((a[None, :, None, :] - B[:, None, :, :]) ** 2).sum(-1))      # (R, n, M)
    prev = np.full((R, M + 1), np.inf)
    prev[:, 0] = 0.0
    for i in range(len(a)):
        cur = np.full((R, M + 1), np.inf)
        for j in range(1, M + 1):
            cur[:, j] = D[:, i, j - 1] + np.minimum(np.minimum(prev[:, j], cur[:, j - 1]), prev[:, j - 1])
        prev = cur
    m = np.array([len(b) for b in refs])
    return prev[np.arange(R), m] / (len(a) + m)


def _mfcc_stats(paths):
    """Each clip's mean and standard deviation of its (unnormalised) MFCC, Δ and ΔΔ frames."""
    from rnnkit.data import audio

    out = []
    for p in paths:
        x, rate = audio.read_wav(p)
        f = audio.audio_features(audio.trim_silence(x, rate), rate, "mfcc", per_utterance_norm=False)
        out.append(np.concatenate([f.mean(axis=0), f.std(axis=0)]))
    return np.array(out)


def cmd_speech(args):
    from rnnkit.tasks.classify import SequenceClassifier
    from rnnkit.tasks.classify_inputs import audio_sequences, read_inputs

    paths, y = read_inputs(args.train, "audio")
    tpaths, yt = read_inputs(args.test, "audio")
    t0 = time.time()
    X, Xt = audio_sequences(paths, "mfcc"), audio_sequences(tpaths, "mfcc")
    refs = [b[:, :13] for b in X]
    pred = [y[int(np.argmin(_dtw_many(a[:, :13], refs)))] for a in Xt]
    base = np.mean(np.array(pred) == np.array(yt))
    print(f"baseline DTW 1-NN on MFCC: test accuracy {base:.4f} ({time.time() - t0:.0f} s)", flush=True)
    pred = dense_logreg(_mfcc_stats(paths), y, _mfcc_stats(tpaths))
    print(f"baseline logistic regression on MFCC mean/std: test accuracy "
          f"{np.mean(np.array(pred) == np.array(yt)):.4f}", flush=True)
    run_seeds(args, lambda seed: SequenceClassifier(seed=seed).fit_files(args.train, args.test,
                                                                          time_limit=args.time_limit),
              lambda clf: f"MFCC, {clf.augment_} variants per training clip, {len(yt)} test clips")


def cmd_translation(args):
    from rnnkit.tasks.seq2seq import Seq2Seq

    from rnnkit.data.text import read_pairs

    t0 = time.time()
    src, tgt = read_pairs(args.train)
    test_src, test_tgt = read_pairs(args.test)
    s2s = Seq2Seq(tokens=args.tokens, seed=args.seed)
    s2s.fit(src, tgt, test_sources=test_src, test_targets=test_tgt, time_limit=args.time_limit, beam_width=4)
    for name, sc in (("translation memory", s2s.baseline_scores_["translation_memory"]),
                     ("rnnkit", s2s.test_scores_)):
        print(f"{name:<19} BLEU {sc['bleu']:6.2f}  chrF {sc['chrf']:6.2f}  exact {sc['exact_match']:.4f}")
    h = s2s.history_
    print(f"({len(test_tgt)} test pairs; {time.time() - t0:.0f} s, {h.step} steps, {h.stop_reason})")


def cmd_forecast(args):
    from rnnkit.tasks.context_forecast import ContextForecaster

    for seed in range(args.seed, args.seed + args.seeds):
        t0 = time.time()
        fc = ContextForecaster(horizon=args.horizon, seed=seed)
        fc.fit_csv(args.file, targets=[args.column], covariates=args.covariate,
                   future_covariates=args.future_covariate, date_column=args.date_column, time_limit=args.time_limit)
        ev = fc.test_evaluation_
        print(f"seed {seed}: kept {fc.method_} (validation MASE "
              + ", ".join(f"{k} {v:.3f}" for k, v in fc.val_scores_.items()) + ")")
        for key in ("naive", "seasonal_naive", "network", "model"):
            if key in ev:
                print(f"  {key:<15} MASE {ev[key]['mase']:.4f}  sMAPE {ev[key]['smape']:.2f}")
        print(f"  ({ev['windows']} test windows, calendar {ev['calendar']}; {time.time() - t0:.0f} s)")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    for name in ("text", "speech", "translation"):
        q = sub.add_parser(name)
        q.add_argument("train")
        q.add_argument("test")
        if name == "translation":
            q.add_argument("--tokens", choices=("auto", "char", "word"), default="auto")
    q = sub.add_parser("cv")
    q.add_argument("file")
    q.add_argument("--folds", type=int, default=5)
    q.add_argument("--split-seed", type=int, default=0, help="the seed of the fold assignment")
    q.add_argument("--set", action="append", metavar="NAME=VALUE",
                   help="a SequenceClassifier argument (JSON value, else a string), e.g. --set ensemble=5")
    q = sub.add_parser("forecast")
    q.add_argument("file")
    q.add_argument("--column", required=True)
    q.add_argument("--horizon", type=int, required=True)
    q.add_argument("--date-column", default="date")
    q.add_argument("--covariate", action="append", default=None)
    q.add_argument("--future-covariate", action="append", default=None)
    for q in sub.choices.values():
        q.add_argument("--time-limit", type=float, default=300.0)
        q.add_argument("--seed", type=int, default=0)
        q.add_argument("--seeds", type=int, default=1,
                       help="rnnkit runs from seeds seed, seed+1, ... (text, cv, speech, forecast)")
    args = p.parse_args(argv)
    {"text": cmd_text, "cv": cmd_cv, "speech": cmd_speech, "translation": cmd_translation, "forecast": cmd_forecast}[args.what](args)


if __name__ == "__main__":
    main()
