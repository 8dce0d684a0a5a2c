r"""Sequence classification: one label per variable-length sequence (many-to-one).

Inputs are either numeric sequences — arrays (T_i,) or (T_i, F), lengths may differ —
or strings over an alphabet (DNA "ACGT", text), which go through an embedding. The
network is :class:`rnnkit.models.SequenceClassifier`: a recurrent layer over the valid
steps only (padding never touches the state), pooled into one vector

    "last"       p = h_{len}             (the state after the sequence's own last step)
    "mean"       p = (1/len) Σ_{t ≤ len} h_t
    "attention"  p = Σ_t a_t h_t,   a = softmax_t(v · tanh(W h_t + b))
    "meanmax"    p = [(1/len) Σ_{t ≤ len} h_t ; max_{t ≤ len} h_t]   (the default for series
                                                                    and aligned strings)

and a softmax over the K classes, p(k | x) = softmax(W_hy p + b_y)_k.

Numeric inputs are standardised per series, keep each series' level and spread as two
constant channels, come with their first difference, and long series are read several
values per step (:mod:`rnnkit.tasks.series_input`); training shows random windows of
each series with a little jitter, and a numeric set too small for a validation part of
40 series trains whole, for the planned budget. Training follows the budget policy of
:mod:`rnnkit.tasks.policy` (steps, not epochs; warm-up and cosine decay; validation and
patience in steps), then a fresh network is refitted on training + validation data for
the selected number of steps. ``ensemble=N`` averages the class probabilities of N
networks trained from seeds seed … seed+N−1 (saved in ``ensemble/<i>/`` of the run): the
first chooses the step count on the validation part and is refitted, the others train on
training + validation data for the refit's step count, without a selection run; by
default N = 3 for numeric series and strings when there are fewer than 1000 of them (a small set
gives networks that vary from seed to seed, and their average varies less), else 1.

A second model joins the networks' average: a TF-IDF n-gram model for strings
(:mod:`rnnkit.tasks.ngram_model`), a random-kernel (ROCKET) model for numeric series
(:mod:`rnnkit.tasks.kernel_model`), p = (1 − w)·p_networks + w·p_second. The weight w
is chosen on held-out rows (:func:`best_share`): the validation part, or, for a set too
small for one, out-of-fold predictions: for such a set the ensemble is cross-fitted, the rows
dealt into N stratified folds (N = 5 by default) and network i trained on all folds but
the i-th, which it scores, so every row has a prediction from a network that never saw
it; the second model is refitted per fold the same way. Each network sees (N − 1)/N of
the rows; the ensemble still averages all N.
Strings are split into tokens (:mod:`rnnkit.data.tokens`: characters or words, with
an unknown bucket, so prediction never fails on new text). Audio features come
normalised per utterance from :mod:`rnnkit.data.audio`.

Class weights (``class_weight``): the loss is the weighted mean

    L = Σ_b w_{y_b} ℓ_b / Σ_b w_{y_b},   ℓ_b = −log p(y_b | x_b)
    ∂L/∂z_b = w_{y_b} (softmax(z_b) − onehot(y_b)) / Σ_b' w_{y_b'}

with "balanced" weights w_c = n / (K·n_c) (King & Zeng 2001), "auto" (the default:
w_c = sqrt(n / (K·n_c)), a tempered balance that leaves balanced data unweighted) or a
dict label → weight (``class_weights`` of :class:`rnnkit.models.SequenceClassifier`).

Evaluation: :func:`rnnkit.tasks.metrics.classification_report`. Files: :meth:`fit_files`
(series, text, audio). ``fit(out_dir=D)`` writes the run directory of :mod:`rnnkit.tasks.run`.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from rnnkit._checks import check_choice, check_positive_int
from rnnkit import io as rkio
from rnnkit.deadline import Deadline, after_training, as_deadline
from rnnkit.errors import CheckpointError, DataNote, ResourceLimitError, RnnkitError
from rnnkit.losses import log_softmax
from rnnkit.models import SequenceClassifier as _Network
from rnnkit.models import build
from rnnkit.models.sequence import POOLINGS
from rnnkit.tasks._common import (check_cell, check_flag, check_number, check_seed, check_task_dtype,
                                  load_task, restore_model, save_task)
from rnnkit.tasks.metrics import classification_report, jsonable_report
from rnnkit.tasks.policy import MIN_VAL_ITEMS, fit_with_budget, time_step
from rnnkit.tasks.run import RunWriter, csv_text, train_dir, training_meta
from rnnkit.tasks.classify_inputs import numeric_sequences, sequence_kind
from rnnkit.tasks.series_input import SeriesInput, augment
from rnnkit.train.callbacks import check_callbacks

__all__ = ["SequenceClassifier", "classification_report"]

TASK = "classify"
ENSEMBLE_DIR = "ensemble"
#: the sub-directories of a saved classifier's second model: n-grams (strings) or kernels (series)
NGRAM_DIR = "ngrams"
KERNEL_DIR = "kernels"
#: the choices of ``ngrams`` and ``kernels``
NGRAMS = ("auto", "on", "off")
#: the second model's share of the average when neither a validation part nor cross-fitting
#: chooses it
NGRAM_WEIGHT = 0.5
#: numeric training sets up to this many series get the kernel model by default (its ridge
#: fit decomposes an n × n matrix)
KERNEL_MAX_SERIES = 3000
#: the share of a time limit the kernel model's features may take
KERNEL_SHARE = 0.15
#: networks (and folds) of a set too small for a validation part, cross-fitted to choose
#: the second model's share (``ensemble`` overrides)
CROSSFIT_MEMBERS = 5
#: numeric and string training sets smaller than this get an ensemble of 3 networks by default
SMALL_SET = 1000
#: position channels of positions="auto" for strings of one length
POSITIONS = 4
#: dropout of the pooled vector for string inputs when ``dropout`` is None (numeric series and
#: audio keep 0, the setting their defaults were tuned with)
STRING_DROPOUT = 0.3
#: weight_decay=None for n strings: STRING_PRIOR / n (an L2 prior whose weight against the data
#: falls as the data grow; numeric series and audio keep 0)
STRING_PRIOR = 0.1
#: batches' worth of training sequences sorted by length at a time (bucket_batches)
BUCKET = 16
#: recurrent units per direction when ``hidden_size`` is None: 64, and 32 for string sets under SMALL_SET
HIDDEN, SMALL_STRING_HIDDEN = 64, 32


def bucket_batches(n: int, batch_size: int) -> int:
    """The ``bucket`` of the training batches of n sequences (:func:`rnnkit.data.sequences.minibatches`):
    16 batches' worth sorted by length at a time (a batch of lengths spread as texts' are
    then pads a fifth of its steps, not three quarters), fewer when that would leave under
    four such runs an epoch, so small sets still draw new batches every epoch."""
    return max(1, min(BUCKET, -(-n // batch_size) // 4))


def best_share(p_net, p_second, ids) -> float:
    """The second model's share w of the average that scores held-out rows best: w on the
    grid 0, 0.1, …, 1 maximising the mean log-likelihood
    (1/n) Σ log((1 − w) p_net(y | s) + w p_second(y | s)) of their labels (a network that
    fits its training rows exactly is surer of itself than it should be, and the
    likelihood weighs that against how often each is right).

    Shapes:
        p_net, p_second: float (n, K) probabilities; ids: int (n,) labels  ->  float
    """
    rows = np.arange(len(ids))
    grid = np.linspace(0.0, 1.0, 11)
    like = [float(np.mean(np.log(np.maximum((1 - w) * p_net[rows, ids] + w * p_second[rows, ids], 1e-300))))
            for w in grid]
    return float(grid[int(np.argmax(like))])


#: a median length from which series of differing lengths read as recordings to cut (--window)
RECORDING_STEPS = 1000


def _long_recordings_note(path, X) -> None:
    """A DataNote suggesting ``window`` when the series are long and of differing lengths
    (whole recordings of a sensor stream, not the cut examples of an archive)."""
    lengths = np.array([len(x) for x in X])
    if len(lengths) < 2 or lengths.min() == lengths.max() or np.median(lengths) < RECORDING_STEPS:
        return
    warnings.warn(DataNote(f"{os.fspath(path)}: {len(X)} series of {lengths.min():,}–{lengths.max():,} steps "
                           f"(median {int(np.median(lengths)):,}), each one example; if they are recordings, "
                           f"--window STEPS cuts them into windows of that many steps, each an example "
                           f"with its recording's label"), stacklevel=3)


class SequenceClassifier:
    """Classify whole sequences (numeric or strings), scikit-learn-like.

    Args:
        cell, hidden_size, num_layers, bidirectional: the recurrent network ("lstm", "gru",
            "rnn", "rnn-relu"; default a 1-layer bidirectional GRU: the whole series is
            known, so it is read both ways). hidden_size None (default): 64 units, and 32
            for fewer than 1000 strings, where either size fits every training string and
            the smaller one has fewer weights to learn from few examples (``hidden_size_``
            after fit).
        dropout: dropout of the pooled vector before the output layer (and between stacked
            layers); None (default): 0.3 for string inputs — a string set is small next to
            what the network can memorise (it fits every training DNA window), and dropout
            makes it use many units rather than a few — and 0 for numeric series and audio
            (``dropout_`` after fit).
        pooling: "auto" (default: "meanmax" for numeric series and for strings that all
            have one length — the mean and the maximum of every unit over time, which find
            a pattern wherever it occurs and do not lean on one state; an aligned window's
            class rests on several sites at once — and "attention" for other text and
            audio), "meanmax", "attention", "mean" or "last".
        embedding_dim: the token embedding for string inputs (None: 16 for characters,
            64 for words).
        tokens: "auto", "char" or "word" (string inputs).
        min_count: tokens seen fewer times in training go to the unknown bucket
            (None: 1 for characters, 2 for words, so the bucket is trained).
        alphabet: the characters of string inputs (e.g. "ACGT"; implies character
            tokens); None takes the training strings' tokens.
        class_weight: "auto" (default), None, "balanced" or a dict label -> positive weight.
        scale: standardise numeric inputs per series and fold long ones (default True).
        positions: position channels appended to each token's embedding
            (:mod:`rnnkit.models.sequence`: u = t/(len − 1) and cosines of it); "auto"
            (default): 4 for string inputs whose training sequences all have the same
            length (aligned windows, where a symbol's place matters), else 0.
        ensemble: networks trained from successive seeds whose probabilities are averaged
            (None: 3 for fewer than 1000 numeric series or strings, else 1, and
            :data:`CROSSFIT_MEMBERS` cross-fitted ones when a second model joins a set too
            small for a validation part; ``ensemble_`` after fit).
        ngrams: "auto" (default: "on" for strings, "off" for numeric series and audio), "on"
            or "off". On: a linear model on TF-IDF n-grams of the tokens
            (:class:`rnnkit.tasks.ngram_model.NgramModel`, fitted on every training string)
            joins the networks, p(k | s) = (1 − w) p_networks(k | s) + w p_ngrams(k | s): it
            sees which motifs or phrases occur wherever they are and gives every seed the
            same answer, the networks read order and context. w is chosen on the validation
            part (:meth:`_held_out_weight`: the selected network and an n-gram model of the
            training part, the w of 0, 0.1, …, 1 with the best validation likelihood), and is
            chosen the same way on out-of-fold predictions where there is none: the
            ensemble's networks are then cross-fitted, network i trained on every fold but
            the i-th and scoring it (:data:`CROSSFIT_MEMBERS` networks unless ``ensemble``
            says; with one network, w = ½). After fit: ``ngram_model_``, ``companion_weight_``
            and ``companion_weight_from_`` ("validation", "cross-fitting" or "default").
        kernels: "auto" (default: "on" for numeric series, not audio, of up to
            :data:`KERNEL_MAX_SERIES` training series; else "off"), "on" (numeric series
            and audio features) or "off". On: the
            series' second model is ROCKET's (:class:`rnnkit.tasks.kernel_model.KernelModel`:
            10 000 random dilated convolutions of the standardised series and of its
            differences, a ridge classifier on their features), averaged with the networks
            as the n-gram model is with strings (the same w, chosen the same way;
            ``kernel_model_`` after fit). It compares shapes at many scales at once; the
            networks read order over the whole series.
        batch_size, dtype, seed: training batches, float dtype, the seed of weights,
            validation split, data order and dropout.

    After :meth:`fit`: ``model_``, ``history_``, ``classes_`` (labels in id order),
    ``kind_`` ("numeric" or "strings"), ``class_weights_`` (per class, or None),
    ``val_evaluation_`` and, after :meth:`fit_files` with a test file,
    ``test_evaluation_``.
    """

    def __init__(self, cell: str = "gru", hidden_size: int | None = None, num_layers: int = 1,
                 bidirectional: bool = True, pooling: str = "auto", attention_size: int | None = None,
                 embedding_dim: int | None = None, dropout: float | None = None, alphabet: str | None = None,
                 tokens: str = "auto", min_count: int | None = None,
                 class_weight="auto", scale: bool = True, series_augment: bool = True, batch_size: int = 32,
                 dtype: str = "float32", seed: int = 0, ensemble: int | None = None, positions="auto",
                 ngrams: str = "auto", kernels: str = "auto"):
        where = "SequenceClassifier"
        self.cell = check_cell(cell, where)
        self.hidden_size = None if hidden_size is None else check_positive_int(hidden_size, "hidden_size", where)
        self.num_layers = check_positive_int(num_layers, "num_layers", where)
        self.bidirectional = check_flag(bidirectional, "bidirectional", where)
        self.pooling = check_choice(pooling, "pooling", ("auto",) + POOLINGS, where)
        self.attention_size = None if attention_size is None else check_positive_int(attention_size,
                                                                                     "attention_size", where)
        self.embedding_dim = None if embedding_dim is None else check_positive_int(embedding_dim, "embedding_dim",
                                                                                  where)
        self.tokens = check_choice(tokens, "tokens", ("auto", "char", "word"), where)
        self.min_count = None if min_count is None else check_positive_int(min_count, "min_count", where)
        self.dropout = None if dropout is None else check_number(dropout, "dropout", where, 0.0, 1.0,
                                                                 high_open=True)
        if alphabet is not None:
            if not isinstance(alphabet, str) or not alphabet or len(set(alphabet)) != len(alphabet):
                raise ValueError(f"{where}: alphabet must be a non-empty string of distinct characters, "
                                 f"got {alphabet!r}")
        self.alphabet = alphabet
        if class_weight not in (None, "balanced", "auto") and not isinstance(class_weight, dict):
            raise ValueError(f"{where}: class_weight must be None, 'auto', 'balanced' or a dict label -> weight, "
                             f"got {class_weight!r}")
        self.class_weight = class_weight
        self.scale = check_flag(scale, "scale", where)
        self.series_augment = check_flag(series_augment, "series_augment", where)
        self.batch_size = check_positive_int(batch_size, "batch_size", where)
        self.dtype = check_task_dtype(dtype, where)
        self.seed = check_seed(seed, where)
        self.ensemble = None if ensemble is None else check_positive_int(ensemble, "ensemble", where)
        self.positions = positions if positions == "auto" else check_positive_int(positions, "positions", where,
                                                                                  minimum=0)
        self.ngrams = check_choice(ngrams, "ngrams", NGRAMS, where)
        self.kernels = check_choice(kernels, "kernels", NGRAMS, where)
        self.companion_ = None
        self.companion_weight_, self.companion_weight_from_ = NGRAM_WEIGHT, "default"
        self.model_ = None
        self.members_ = []
        self.history_ = self.files_ = None
        self.missing_ = "trim"          # how fit_files read missing values; predict_file reads the same way
        self.window_ = None             # the windows fit_files cut the series into; predict_file cuts the same

    # -- parameters ------------------------------------------------------------------------
    def get_params(self) -> dict:
        """The constructor arguments (JSON-able; dict class weights as [label, weight] pairs)."""
        cw = self.class_weight
        if isinstance(cw, dict):
            cw = {"pairs": [[k, float(v)] for k, v in cw.items()]}
        return {"cell": self.cell, "hidden_size": self.hidden_size, "num_layers": self.num_layers,
                "bidirectional": self.bidirectional, "pooling": self.pooling,
                "attention_size": self.attention_size, "embedding_dim": self.embedding_dim,
                "dropout": self.dropout, "alphabet": self.alphabet, "tokens": self.tokens,
                "min_count": self.min_count, "class_weight": cw, "scale": self.scale,
                "series_augment": self.series_augment,
                "batch_size": self.batch_size, "dtype": self.dtype, "seed": self.seed, "ensemble": self.ensemble,
                "positions": self.positions, "ngrams": self.ngrams, "kernels": self.kernels}

    def __repr__(self) -> str:
        return "SequenceClassifier(" + ", ".join(f"{k}={v!r}" for k, v in self.get_params().items()) + ")"

    @property
    def ngram_model_(self):
        """The n-gram model averaged with the networks (string inputs), or None."""
        from rnnkit.tasks.ngram_model import NgramModel

        return self.companion_ if isinstance(self.companion_, NgramModel) else None

    @property
    def kernel_model_(self):
        """The random-kernel model averaged with the networks (numeric series), or None."""
        from rnnkit.tasks.kernel_model import KernelModel

        return self.companion_ if isinstance(self.companion_, KernelModel) else None

    @property
    def ngram_weight_(self) -> float:
        """The second model's share of the average (the n-gram model's, for strings)."""
        return self.companion_weight_

    def _new_companion(self):
        """An unfitted second model of the kind this classifier averages in."""
        if self.kind_ == "strings":
            from rnnkit.tasks.ngram_model import NgramModel

            return NgramModel(self.vocab_.size, word=self.vocab_.kind == "word", placed=self.aligned_)
        from rnnkit.tasks.kernel_model import KernelModel

        return KernelModel(seed=self.seed)

    def _companion_rows(self, enc) -> list:
        """What the second model reads: the token ids, or the standardised series back
        from the networks' folded inputs (:meth:`SeriesInput.values`)."""
        return self.scaler_.values(enc) if isinstance(self.scaler_, SeriesInput) else enc

    def _check_fitted(self, what: str) -> None:
        if self.model_ is None:
            raise RnnkitError(f"SequenceClassifier.{what}: the classifier is not fitted; call fit(X, y), "
                              f"fit_files(path) or SequenceClassifier.load(directory) first")

    @property
    def classes_(self) -> list:
        """The class labels, in id order (the columns of :meth:`predict_proba`)."""
        self._check_fitted("classes_")
        return list(self.encoder_.classes)

    # -- inputs ----------------------------------------------------------------------------------
    def _encode(self, X, where: str) -> list[np.ndarray]:
        """Sequences as the network reads them: id arrays (T_i,) or scaled (T_i, F) floats."""
        kind = sequence_kind(X, where)
        if kind != self.kind_:
            raise TypeError(f"{where}: the classifier was fitted on {self.kind_} sequences, got {kind}")
        if kind == "strings":
            out = []
            for i, s in enumerate(X):
                if not s:
                    raise ValueError(f"{where}: X[{i}] is an empty string; every sequence needs a step")
                ids = self.vocab_.encode(s)
                out.append(ids if len(ids) else np.zeros(1, dtype=np.int64))   # only spaces: one unknown
            return out
        seqs = numeric_sequences(X, where)
        if seqs[0].shape[1] != self.n_features_:
            raise ValueError(f"{where}: sequences have {seqs[0].shape[1]} features, the classifier was "
                             f"fitted on {self.n_features_}")
        if isinstance(self.scaler_, SeriesInput):
            seqs = self.scaler_.transform(seqs)
        elif self.scaler_ is not None:          # a checkpoint from before per-series scaling
            seqs = [self.scaler_.transform(a) for a in seqs]
        return [a.astype(self.dtype) for a in seqs]

    def _labels(self, y, n: int, where: str) -> np.ndarray:
        """Ids of labels that must all be training classes (a validation part trains on them)."""
        ids, classes = self._scored_labels(y, n, where, note=False)
        unknown = classes[self.encoder_.num_classes:]
        if unknown:
            shown = ", ".join(repr(v) for v in unknown[:10])
            if len(unknown) > 10:
                shown += f", … ({len(unknown)} in all)"
            raise RnnkitError(f"{where}: y has classes that were not in training: {shown}; the classifier "
                              f"knows {', '.join(repr(c) for c in self.encoder_.classes[:20])}")
        return ids

    def _scored_labels(self, y, n: int, what: str, note: bool = True) -> tuple[np.ndarray, list]:
        """(ids, classes) of labels to score predictions against: the training classes, then
        any label that training never saw (sorted as :class:`~rnnkit.data.sequences.LabelEncoder`
        sorts), whose rows the classifier can only get wrong. With ``note``, a
        :class:`~rnnkit.errors.DataNote` says which labels those are and how many rows hold them."""
        if y is None or len(y) != n:
            raise ValueError(f"{what}: expected {n} labels (one per sequence), got "
                             f"{'None' if y is None else len(y)}")
        from rnnkit.data.sequences import _label_key, _label_list

        plain = _label_list(y, what)
        classes = list(self.encoder_.classes)
        index = {c: i for i, c in enumerate(classes)}
        unseen = sorted({v for v in plain if v not in index}, key=_label_key)
        if unseen and note:
            counts = {v: 0 for v in unseen}
            for v in plain:
                if v in counts:
                    counts[v] += 1
            shown = ", ".join(f"{v!r} ({c} row{'s' if c > 1 else ''})" for v, c in list(counts.items())[:10])
            more = f", … ({len(unseen)} labels in all)" if len(unseen) > 10 else ""
            warnings.warn(DataNote(f"{what}: label{'s' if len(unseen) > 1 else ''} never seen in training: "
                                   f"{shown}{more}; those rows count as wrong"), stacklevel=2)
        for v in unseen:
            index[v] = len(classes)
            classes.append(v)
        return np.array([index[v] for v in plain], dtype=np.int64), classes

    # -- fit -------------------------------------------------------------------------------------
    def fit(self, X, y, *, X_val=None, y_val=None, X_test=None, y_test=None, val_fraction: float = 0.15,
            epochs: int | None = None, time_limit: float | None = None, max_steps: int | None = None,
            optimizer: str = "adam", lr: float = 5e-3, clip: float | None = 1.0, weight_decay: float | None = None,
            patience: int | None = None,
            refit: bool = True, out_dir=None, quiet: bool = True, callbacks=None) -> "SequenceClassifier":
        """Train on sequences ``X`` with labels ``y``; returns self.

        Args:
            X: a list of numeric arrays (T_i,) or (T_i, F), an array (n, T[, F]), or a
                list of strings.
            y: n labels (strings, integers, …).
            X_val, y_val: a validation set; otherwise ``val_fraction`` of the training
                sequences, stratified by class, is held out (0: no validation). For
                numeric series a part of fewer than 40 sequences is too small to choose a
                step count with, so then none is held out: every series trains (in
                random variants) for the planned budget.
            X_test, y_test: a test set scored at the end (``test_evaluation_``; in the run
                directory, the report and ``predictions.csv``).
            time_limit: seconds for the whole fit (every ensemble member, selection and
                refit, the evaluations and the run directory), or a
                :class:`rnnkit.deadline.Deadline`; the step count is sized to it
                (:mod:`rnnkit.tasks.policy`), and the evaluations score a random part of
                the rows when the rest would not fit (their "n" of "of", and a "time_limit_note").
            max_steps, epochs: fix the selection run's optimizer steps, or cap them at
                that many passes (default: the policy's plan for the data size).
            optimizer, lr, clip: the optimizer, its peak learning rate (after warm-up,
                before cosine decay), the gradient-norm bound.
            weight_decay: the L2 term added to the gradient, λ·w; None (default): for
                strings λ = 0.1 / n for n training strings — a Gaussian prior on the weights
                of fixed strength, which matters on a small set and fades as data grow
                (1e-3 at 100 strings, 3e-5 at 3000) — and 0 for numeric series and audio
                (``weight_decay_`` after fit).
            patience: validations (a fixed number of steps apart) without a better
                validation loss before stopping (default: the policy's, 40 % of the run).
            refit: after selection on the validation split, train a fresh network on
                training + validation data for the selected steps (default True).
            out_dir: write the run directory (:mod:`rnnkit.tasks.run`).
            quiet: False shows a progress bar (on a terminal) or log lines.
            callbacks: more :class:`~rnnkit.train.Callback` objects for the Trainer.
        """
        from rnnkit.data.sequences import LabelEncoder, class_weights_for, stratified_folds, stratified_split
        from rnnkit.data.tokens import UNK, Tokenizer, choose_tokens
        from rnnkit.tasks.classify_inputs import batch_variation

        where = "SequenceClassifier.fit"
        deadline = as_deadline(time_limit, where)
        val_fraction = check_number(val_fraction, "val_fraction", where, 0.0, 1.0, high_open=True)
        self.kind_ = sequence_kind(X, where)
        # what files the inputs came from (fit_files says; audio needs its front end to predict files)
        files, self._files = getattr(self, "_files", None), None
        self.input_, self.audio_ = files or ("text" if self.kind_ == "strings" else "series", None)
        n = len(X)
        if y is None or len(y) != n:
            raise ValueError(f"{where}: expected {n} labels (one per sequence), got {'None' if y is None else len(y)}")
        self.encoder_ = LabelEncoder().fit(y)
        K = self.encoder_.num_classes
        if K < 2:
            raise RnnkitError(f"{where}: y holds one class only ({self.encoder_.classes[0]!r}); a classifier "
                              f"needs at least two")
        ids = self.encoder_.transform(y)
        if X_test is not None:       # a test label that training never saw: said before training
            self._scored_labels(y_test, len(X_test), "test labels")
        if self.kind_ == "strings":
            if self.alphabet is not None:
                self.vocab_ = Tokenizer("char", [UNK] + list(self.alphabet))
            else:
                kind = choose_tokens(X, self.tokens)
                min_count = self.min_count or (2 if kind == "word" else 1)
                self.vocab_ = Tokenizer.fit(X, kind, min_count=min_count)
            self.alphabet_ = "".join(sorted(self.vocab_.vocab[1:])) if self.vocab_.kind == "char" else None
            self.scaler_, self.n_features_ = None, None
            # aligned windows: every training sequence equally long
            self.aligned_ = n > 1 and len({len(self.vocab_.encode(s)) for s in X}) == 1
            if self.positions == "auto":
                self.positions_ = POSITIONS if self.aligned_ else 0
            else:
                self.positions_ = self.positions
        else:
            seqs = numeric_sequences(X, where)
            self.n_features_ = seqs[0].shape[1]
            # audio features come normalised per utterance from the front end (rnnkit.data.audio)
            self.scaler_ = SeriesInput().fit(seqs) if self.scale and self.input_ != "audio" else None
            self.alphabet_ = self.vocab_ = None
            self.aligned_ = False
            self.positions_ = 0 if self.positions == "auto" else self.positions
        self.model_ = None
        self.dropout_ = self.dropout if self.dropout is not None else (
            STRING_DROPOUT if self.kind_ == "strings" else 0.0)
        if weight_decay is None:
            weight_decay = STRING_PRIOR / n if self.kind_ == "strings" else 0.0
        self.weight_decay_ = check_number(weight_decay, "weight_decay", where, 0.0)
        self.hidden_size_ = self.hidden_size or (SMALL_STRING_HIDDEN if self.kind_ == "strings" and n < SMALL_SET
                                                 else HIDDEN)
        if self.ngrams == "on" and self.kind_ != "strings":
            raise ValueError(f"{where}: ngrams='on' needs string inputs (text, DNA); these are {self.kind_} "
                             "sequences")
        if self.kernels == "on" and self.kind_ == "strings":
            raise ValueError(f"{where}: kernels='on' needs numeric series (or audio features); these are "
                             "strings")
        self.companion_ = None
        self.companion_weight_, self.companion_weight_from_ = NGRAM_WEIGHT, "default"

        if self.class_weight == "auto":       # a tempered balance: sqrt of the balanced weights
            w = np.sqrt(class_weights_for("balanced", ids, self.encoder_.classes, where))
            self.class_weights_ = None if np.allclose(w, 1.0) else w
        else:
            self.class_weights_ = class_weights_for(self.class_weight, ids, self.encoder_.classes, where)

        enc = self._encode(X, where)

        # the validation split: given, or stratified from the training data
        if X_val is not None:
            tr_idx = np.arange(n)
            val_enc, val_ids = self._encode(X_val, where), self._labels(y_val, len(X_val), where)
        elif val_fraction > 0:
            val_mask = stratified_split(ids, K, val_fraction, self.seed)
            if val_mask.sum() < MIN_VAL_ITEMS:
                val_mask[:] = False         # too few to choose a step count with: every sequence trains
            tr_idx = np.flatnonzero(~val_mask)
            val_enc = [enc[i] for i in np.flatnonzero(val_mask)]
            val_ids = ids[val_mask]
        else:
            tr_idx, val_enc, val_ids = np.arange(n), [], ids[:0]
        train_enc = [enc[i] for i in tr_idx]
        train_ids = ids[tr_idx]
        val_batches = self._eval_batches(val_enc, val_ids) if len(val_enc) else None

        bs = self.batch_size
        vary = batch_variation(self)      # new SpecAugment masks (audio) or word dropout every epoch
        windows = self.series_augment and isinstance(self.scaler_, SeriesInput)

        def batches_of(encs, labels):
            def train_batches(epoch, rng):
                from rnnkit.data.sequences import minibatches

                shown = augment(encs, rng) if windows else encs    # a new random window of each series
                return [{"x": b["x"] if vary is None else vary(b["x"], b["lengths"], rng), "lengths": b["lengths"],
                         "y": b["y"]} for b in minibatches(shown, labels, batch_size=bs, seed=rng,
                                                           bucket=bucket_batches(len(shown), bs))]
            return train_batches

        all_enc = train_enc + list(val_enc) if X_val is None else train_enc
        all_ids = np.concatenate([train_ids, val_ids]) if X_val is None else train_ids
        probe = self._eval_batches(train_enc[:bs], train_ids[:bs], size=bs)[0]
        self.history_ = None
        self.val_evaluation_ = self.test_evaluation_ = None
        writer = [] if out_dir is None else [RunWriter(out_dir, self._meta)]
        self.members_ = []
        self.ensemble_ = self.ensemble or (3 if (self.kind_ == "strings" or self._series) and n < SMALL_SET else 1)
        n_test = 0 if X_test is None else len(X_test)
        figures = 1 + (len(val_enc) > 0) + (n_test > 0)

        def reserve(step_s):        # the evaluations and the report after training
            return (after_training(step_s, bs, len(val_enc) + self.ensemble_ * n_test, figures)
                    + (second_after() if self.companion_ is not None else 0.0))

        def second_after():
            """Seconds the second model takes after training: choosing its weight (the features
            of every row once, or for n-grams one fit per fold: two with a validation part) and
            scoring the test rows."""
            refits = 1 if self.kind_ != "strings" else (2 if folds is None else self.ensemble_)
            return second_seconds * (refits + n_test / max(1, len(all_enc)))

        second_seconds, folds = 0.0, None
        if self.kind_ == "strings":
            second = self.ngrams != "off"
        else:
            second = self.kernels == "on" or (self.kernels == "auto" and self.input_ != "audio"
                                              and len(all_enc) <= KERNEL_MAX_SERIES)
        if second:
            import time

            second_start = time.perf_counter()
            if self.kind_ == "strings":
                self.companion_ = self._new_companion().fit(all_enc, all_ids, K, self.class_weights_)
            else:
                # with a time limit the kernels take at most a share of it (fewer kernels, or
                # none when not even the fewest fit: the networks then stand alone)
                seconds = KERNEL_SHARE * deadline.left() if deadline.limited else None
                try:
                    self.companion_ = self._new_companion().fit(self._companion_rows(all_enc), all_ids, K,
                                                                seconds=seconds)
                except RnnkitError:
                    if self.kernels == "on":
                        raise
                    self.companion_ = None
            if out_dir is not None:
                from rnnkit.tasks.run import writes_files

                if self.companion_ is not None and writes_files():    # the run directory loads during training
                    self._save_companion(out_dir)
            second_seconds = time.perf_counter() - second_start
        # a set too small for a validation part: network i trains on every fold but the i-th,
        # whose rows it then scores, so that out-of-fold predictions choose the second model's share
        members = self.ensemble or (CROSSFIT_MEMBERS if n < SMALL_SET else 1)
        if self.companion_ is not None and not len(val_enc) and members >= 2:
            self.ensemble_ = members
            folds = stratified_folds(all_ids, K, self.ensemble_, self.seed)
            oof_net = np.zeros((len(all_enc), K))
        selected = None
        # the members share one training time, sized once: what is left less the phases after
        # training (the floor of Deadline.for_training, a share of what is left, would
        # otherwise grant each later member a share of the reserve)
        training = deadline
        if deadline.limited:
            training = Deadline(deadline.for_training(reserve(time_step(self._build_model(K, self.seed), probe))))
        for i in range(self.ensemble_):
            common = dict(time_limit=training, share=1 / (self.ensemble_ - i), lr=lr,
                          seed=self.seed + i, quiet=quiet, optimizer=optimizer, clip=clip,
                          weight_decay=self.weight_decay_, steps_cap=3000, where=where)
            if i and self.refit_steps_ is not None:
                # the first network chose the step count and was refitted: the others train on
                # every series for that many steps, without a selection run of their own
                fitted = fit_with_budget(
                    lambda: self._build_model(K, self.seed + i), batches_of(all_enc, all_ids), None,
                    len(all_enc), bs, probe, max_steps=self.refit_steps_, epochs=None, **common)
                self.members_.append(fitted.model)
                continue
            # cross-fitted: network i trains on every fold but the i-th (no validation part then)
            fold_rows = None if folds is None else np.flatnonzero(folds != i)
            rows_enc = train_enc if fold_rows is None else [all_enc[j] for j in fold_rows]
            rows_ids = train_ids if fold_rows is None else all_ids[fold_rows]
            fitted = fit_with_budget(
                lambda: self._build_model(K, self.seed + i), batches_of(rows_enc, rows_ids), val_batches,
                len(rows_enc), bs, probe, max_steps=max_steps, epochs=epochs, patience=patience,
                refit_batches=batches_of(all_enc, all_ids) if refit else None,
                refit_items=len(all_enc), n_val=len(val_enc),
                out_dir=None if i else train_dir(out_dir),
                callbacks=(writer + check_callbacks(callbacks, where)) if i == 0 else None, **common)
            if folds is not None:
                held = np.flatnonzero(folds == i)
                if len(held):
                    oof_net[held] = np.exp(self._logits([all_enc[j] for j in held], models=[fitted.model]))
            if i == 0:
                self.model_, self.history_, self.refit_steps_ = fitted.model, fitted.history, fitted.refit_steps
                # validation scores of the selected network, before the refit saw the validation data
                # (none when the validation part was too small to select with and was trained on)
                if len(val_enc) and fitted.history.best_step is not None:
                    selected = fitted.selected
            else:
                self.members_.append(fitted.model)
        # the weight needs more fits of the second model (on the training part, or one per
        # fold): only when time is left for them
        if self.companion_ is not None and (not deadline.limited
                                            or deadline.left() > second_after() + after_training(None, 1, 0, figures)):
            if selected is not None:
                self.companion_weight_ = self._held_out_weight(selected, train_enc, train_ids, val_enc, val_ids, K)
                self.companion_weight_from_ = "validation"
            elif folds is not None:
                self.companion_weight_ = self._crossfit_weight(oof_net, all_enc, all_ids, folds, K)
                self.companion_weight_from_ = "cross-fitting"
        from rnnkit.tasks.classify_run import score_after_fit

        score_after_fit(self, selected, (val_enc, val_ids), X_test, y_test, deadline, figures, where)
        if out_dir is not None:
            self.write_run(out_dir, None if X_test is None else (X_test, y_test), deadline)
        return self

    def _held_out_weight(self, selected, train_enc, train_ids, val_enc, val_ids, K: int) -> float:
        """The second model's share of the average that scores the validation part best
        (:func:`best_share`): the selected network (trained on the training part only) and
        the second model of the same kind (for kernels: the same kernels) fitted on the same
        rows, as the validation fold of :meth:`out_of_fold` over training + validation."""
        folds = np.repeat([0, 1], [len(train_enc), len(val_enc)])
        oof = self.companion_.out_of_fold(self._companion_rows(list(train_enc) + list(val_enc)),
                                          np.concatenate([train_ids, val_ids]), K, folds, self.class_weights_)
        return best_share(np.exp(self._logits(val_enc, models=[selected])), oof[len(train_enc):], val_ids)

    def _crossfit_weight(self, oof_net, enc, ids, folds, K: int) -> float:
        """:meth:`_held_out_weight` on out-of-fold predictions: every row scored by the
        network (``oof_net``, (n, K) probabilities) and a second model that were both fitted
        on the other folds."""
        oof_second = self.companion_.out_of_fold(self._companion_rows(enc), ids, K, folds, self.class_weights_)
        return best_share(oof_net, oof_second, ids)

    def fit_files(self, train_path, test_path=None, *, input: str = "auto", features: str = "mfcc",
                  augment: int | None = None, missing: str = "trim", window: int | None = None,
                  **fit_kwargs) -> "SequenceClassifier":
        """Fit on a labelled file or folder and, with ``test_path``, evaluate on another.

        ``input`` (:mod:`rnnkit.tasks.classify_inputs`): "auto" (a directory is audio, a
        file of ``label<TAB>text`` lines is text, anything else labelled series), or
        "series", "text", "audio". Series files: UCR ``.tsv``, UEA ``.ts`` (multivariate
        too), CSV with one series per row, or a long CSV with an id column and several
        channels per step; ``missing`` ("error", "trim", "interpolate") handles their
        gaps. Audio: ``features`` "mfcc" or "logmel"; ``augment`` random variants of
        each training clip (None: 8 when there are fewer than 100 clips per class, else
        0), drawn after the validation clips are set aside. ``window`` (series): every
        series, training and test, is cut into windows of that many steps, each with the
        series' label (:func:`rnnkit.data.sequences.cut_windows`: recordings of minutes
        become examples of seconds); :meth:`predict_file` and :meth:`evaluate_file` cut
        theirs the same way. The test evaluation is kept
        in ``test_evaluation_`` (and goes into the report with ``out_dir``). Other keyword
        arguments go to :meth:`fit`.
        """
        from rnnkit.tasks.classify_inputs import detect_input, read_inputs

        where = "SequenceClassifier.fit_files"
        # the time limit covers reading the files too
        fit_kwargs["time_limit"] = as_deadline(fit_kwargs.get("time_limit"), where)
        self.missing_ = check_choice(missing, "missing", ("error", "trim", "interpolate"), where)
        kind = detect_input(train_path, input)
        audio = None
        if kind == "audio":
            from rnnkit.data.audio import FEATURES

            audio = {"features": check_choice(features, "features", FEATURES, where)}
        X, y = read_inputs(train_path, kind, missing)
        test = read_inputs(test_path, kind, missing) if test_path is not None else (None, None)
        self.window_ = None
        if window is not None:
            if kind != "series":
                raise ValueError(f"{where}: window cuts numeric series; {os.fspath(train_path)} holds {kind}")
            from rnnkit.data.sequences import cut_windows

            self.window_ = check_positive_int(window, "window", where)
            n = len(X)
            X, y, _ = cut_windows(X, y, self.window_)
            if test[0] is not None:
                test = cut_windows(*test, self.window_)[:2]
            warnings.warn(DataNote(f"{os.fspath(train_path)}: {n} series cut into {len(X)} windows of "
                                   f"{self.window_} steps"), stacklevel=2)
        elif kind == "series":
            _long_recordings_note(train_path, X)
        self.files_ = {"train": os.fspath(train_path), "test": None if test_path is None else os.fspath(test_path)}
        self._files = (kind, audio)
        if kind == "audio":
            from rnnkit.data.audio import split_lists
            from rnnkit.tasks.classify_inputs import fit_audio

            self.audio_ = audio        # the features of the validation clips are computed before fit
            split = split_lists(train_path, X, y) if os.path.isdir(os.fspath(train_path)) else None
            if split is not None:      # Speech Commands' validation_list.txt and testing_list.txt
                X, y = split["train"]
                if test[0] is None and split["test"] is not None:
                    test = split["test"]
                return fit_audio(self, X, y, augment, test, fit_kwargs, val=split["validation"])
            return fit_audio(self, X, y, augment, test, fit_kwargs)
        return self.fit(X, y, X_test=test[0], y_test=test[1], **fit_kwargs)

    @property
    def pooling_(self) -> str:
        """The pooling the network uses ("auto" resolved by the kind of input)."""
        if self.pooling != "auto":
            return self.pooling
        return "meanmax" if self._series or getattr(self, "aligned_", False) else "attention"

    @property
    def _series(self) -> bool:
        """Numeric series (not audio features): what per-series inputs and the defaults for them apply to."""
        return getattr(self, "kind_", None) == "numeric" and getattr(self, "input_", None) != "audio"

    def _build_model(self, K: int, seed: int | None = None):
        pooling = self.pooling_
        kw = dict(num_classes=K, cell=self.cell, hidden_size=self.hidden_size_, num_layers=self.num_layers,
                  pooling=pooling, attention_size=self.attention_size if pooling == "attention" else None,
                  bidirectional=self.bidirectional, dropout=self.dropout_, dtype=self.dtype,
                  seed=self.seed if seed is None else seed)
        if getattr(self, "positions_", 0):
            kw["positions"] = self.positions_
        if self.kind_ == "strings":
            word = getattr(self.vocab_, "kind", "char") == "word"
            kw.update(vocab_size=self.vocab_.size, embedding_dim=self.embedding_dim or (64 if word else 16))
        else:
            kw.update(input_size=self.scaler_.size if isinstance(self.scaler_, SeriesInput) else self.n_features_)
        if self.class_weights_ is not None:
            kw["class_weights"] = [float(v) for v in self.class_weights_]
        return _Network(**kw)

    def _eval_batches(self, enc, ids, size: int = 256):
        """Fixed batches of similar lengths (less padding), for validation."""
        order = np.argsort([len(s) for s in enc], kind="stable")
        from rnnkit.data.sequences import pad_sequences

        out = []
        for i in range(0, len(order), size):
            idx = order[i:i + size]
            x, lengths = pad_sequences([enc[j] for j in idx])
            out.append({"x": x, "lengths": lengths, "y": ids[idx]})
        return out

    # -- prediction ------------------------------------------------------------------------------
    def _logits(self, enc, size: int = 256, models=None) -> np.ndarray:
        """Log-probabilities (n, K): averaged in probability over ``models`` (default: the
        ensemble's networks, then averaged with the second model's, if any, with weight
        ``companion_weight_``)."""
        return self._mix(*self._parts(enc, size, models))

    def _parts(self, enc, size: int = 256, models=None) -> tuple:
        """(the networks' probabilities (n, K), averaged over ``models``; the second model's,
        or None without one or when ``models`` are given)."""
        from rnnkit.data.sequences import pad_sequences

        second = self.companion_ if models is None else None
        models = [self.model_] + list(self.members_) if models is None else models
        order = np.argsort([len(s) for s in enc], kind="stable")
        out = np.zeros((len(enc), self.encoder_.num_classes), dtype=np.float64)
        for i in range(0, len(order), size):
            idx = order[i:i + size]
            x, lengths = pad_sequences([enc[j] for j in idx])
            for m in models:
                out[idx] += np.exp(log_softmax(np.asarray(m.predict_logits(x, lengths), dtype=np.float64)))
        out /= len(models)
        if second is None or not len(enc):
            return out, None
        return out, second.predict_proba(self._companion_rows(enc))

    def _mix(self, p_networks: np.ndarray, p_second: np.ndarray | None) -> np.ndarray:
        """Log of (1 − w)·p_networks + w·p_second (w: ``companion_weight_``; p_networks alone
        without ``p_second``)."""
        out = p_networks
        if p_second is not None:
            w = self.companion_weight_
            out = (1.0 - w) * p_networks + w * p_second
        return np.log(np.maximum(out, 1e-300))

    def _predict_ids(self, enc) -> np.ndarray:
        return np.argmax(self._logits(enc), axis=1)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, columns in ``classes_`` order.

        Shapes:
            n sequences -> (n, K), rows sum to 1
        """
        self._check_fitted("predict_proba")
        z = self._logits(self._encode(X, "SequenceClassifier.predict_proba"))
        return np.exp(log_softmax(z))

    def predict(self, X) -> list:
        """The most probable class label of each sequence (a list of labels)."""
        self._check_fitted("predict")
        ids = self._predict_ids(self._encode(X, "SequenceClassifier.predict"))
        return self.encoder_.inverse_transform(ids)

    def score(self, X, y) -> float:
        """Accuracy on ``X``, ``y``."""
        return self.evaluate(X, y)["accuracy"]

    def evaluate(self, X, y) -> dict:
        """Accuracy, per-class precision/recall/F1/support (lists in ``classes`` order), their
        macro means and the confusion matrix (rows: true class, columns: predicted).

        A label that was not among the training classes joins ``classes`` after them, and
        its rows count as wrong (a :class:`~rnnkit.errors.DataNote` names such labels).
        """
        return self._evaluate(X, y, "SequenceClassifier.evaluate")

    def _evaluate(self, X, y, where: str) -> dict:
        self._check_fitted("evaluate")
        enc = self._encode(X, where)
        ids, classes = self._scored_labels(y, len(enc), where)
        rep = classification_report(ids, self._predict_ids(enc), len(classes))
        return jsonable_report(rep, classes)

    # -- the run directory and files ----------------------------------------------------------------
    def write_run(self, out_dir, test=None, deadline=None) -> None:
        """Write the run directory of a fitted classifier (:mod:`rnnkit.tasks.run`): the model,
        ``metrics.json``, the report and, with ``test`` = (X, y), ``predictions.csv``; the
        report's plots while ``deadline`` (a :class:`rnnkit.deadline.Deadline`) allows."""
        from rnnkit.tasks.classify_run import write_classify_run
        from rnnkit.tasks.run import writes_files

        if not writes_files():      # data parallel: rank 0 alone writes the run directory
            return
        self.save(out_dir)
        write_classify_run(self, out_dir, test, deadline)

    def _read_inputs(self, path, where: str):
        self._check_fitted(where)
        if getattr(self, "audio_", None) is not None:
            from rnnkit.tasks.classify_inputs import read_audio_inputs

            return read_audio_inputs(path, self.audio_["features"])
        from rnnkit.data.ucr import read_sequence_files

        X, y, files = read_sequence_files(path, missing=self.missing_, text=self.kind_ == "strings")
        if self.window_:
            from rnnkit.data.sequences import cut_windows

            X, y, source = cut_windows(X, y, self.window_)
            files = [files[i] for i in source]
        return X, y, files

    def predict_file(self, path) -> str:
        """A predictions CSV for the sequences in a file or a folder of files (UCR .tsv, UEA
        .ts, CSV; for strings, text files of one sequence per line; for audio, a .wav file
        or a folder of them, labelled by sub-directory or not): index, [file], [text], [label],
        predicted, its probability and p(class) for every class."""
        from rnnkit.tasks.classify_run import prediction_table

        X, y, files = self._read_inputs(path, "predict_file")
        listed = os.path.isdir(os.fspath(path)) or any(f != os.fspath(path) for f in files)   # a folder, a list
        header, rows = prediction_table(self, X, y, files if listed else None)
        return csv_text(header, rows)

    def evaluate_file(self, path) -> dict:
        """:meth:`evaluate` on the labelled sequences of a file or folder: accuracy, macro F1,
        per-class metrics and the confusion matrix."""
        X, y, _ = self._read_inputs(path, "evaluate_file")
        if y is None:
            raise RnnkitError(f"{os.fspath(path)}: the sequences have no class labels to evaluate against")
        return self._evaluate(X, y, os.fspath(path))

    # -- files -------------------------------------------------------------------------------------
    def save(self, directory) -> str:
        """Write the fitted classifier to ``directory`` (config.json + model.npz); returns the path."""
        self._check_fitted("save")
        meta = {**self._meta(), "training": training_meta(self.history_, finished=self.history_ is not None
                                                          and not self.history_.interrupted)}
        for name in ("val", "test"):
            ev = getattr(self, f"{name}_evaluation_", None)
            if ev is not None:
                meta[f"{name}_accuracy"] = float(ev["accuracy"])
        path = save_task(directory, self.model_, meta)
        for i, m in enumerate(self.members_, start=1):
            rkio.save_checkpoint(os.path.join(os.fspath(directory), ENSEMBLE_DIR, str(i)), m.config(),
                                 m.state_dict(), None, meta={"task": TASK, "member": i})
        if self.companion_ is not None:
            self._save_companion(directory)
        return path

    def _companion_kind(self) -> str | None:
        """"ngrams", "kernels" or None: the second model and its sub-directory's name."""
        if self.companion_ is None:
            return None
        return "ngrams" if self.ngram_model_ is not None else "kernels"

    def _save_companion(self, directory) -> None:
        kind = self._companion_kind()
        rkio.save_checkpoint(os.path.join(os.fspath(directory), NGRAM_DIR if kind == "ngrams" else KERNEL_DIR),
                             self.companion_.config(), self.companion_.arrays(), None,
                             meta={"task": TASK, "part": kind})

    def _meta(self) -> dict:
        """The task's meta for config.json: parameters and the fitted state."""
        state = {"kind": self.kind_, "classes": self.encoder_.to_dict(), "alphabet": self.alphabet_,
                 "n_features": self.n_features_, "missing": self.missing_, "window": self.window_,
                 "tokenizer": None if self.vocab_ is None else self.vocab_.to_dict(),
                 # the networks saved so far (during training: the first alone, so the run loads)
                 "ensemble": 1 + len(self.members_),
                 "input": getattr(self, "input_", None), "audio": getattr(self, "audio_", None),
                 "scaler": None if self.scaler_ is None else self.scaler_.to_dict(),
                 "class_weights": None if self.class_weights_ is None else [float(v) for v in self.class_weights_],
                 "positions": getattr(self, "positions_", 0), "dropout": self.dropout_,
                 "aligned": self.aligned_, "hidden_size": self.hidden_size_,
                 "companion": self._companion_kind(),
                 "companion_weight": getattr(self, "companion_weight_", NGRAM_WEIGHT),
                 "companion_weight_from": getattr(self, "companion_weight_from_", "default")}
        return {"task": TASK, "params": self.get_params(), "state": state}

    @classmethod
    def load(cls, directory) -> "SequenceClassifier":
        """Read a classifier written by :meth:`save` or ``fit(out_dir=...)``; a directory of
        another task is a CheckpointError ("… was written by task 'lm', not 'classify'")."""
        from rnnkit.tasks.classify_run import restore_fitted_state

        directory = os.fspath(directory)
        ckpt = load_task(directory, TASK, "SequenceClassifier")
        try:
            params = dict(ckpt.meta["params"])
            cw = params.get("class_weight")
            if isinstance(cw, dict):
                params["class_weight"] = {k: v for k, v in cw["pairs"]}
            clf = cls(**params)
            s = ckpt.meta["state"]
            restore_fitted_state(clf, s)
            model = build(ckpt.config)
        except (KeyError, TypeError, ValueError, AttributeError, ResourceLimitError) as exc:
            raise CheckpointError(f"{directory}: config.json does not describe a valid classifier: {exc}") from exc
        clf.model_ = restore_model(directory, ckpt, model, clf._build_model(clf.encoder_.num_classes).config(),
                                   "does not match the classifier's parameters, classes and inputs")
        clf.members_ = []
        clf.ensemble_ = s.get("ensemble") or clf.ensemble or 1
        for i in range(1, clf.ensemble_):
            sub = os.path.join(directory, ENSEMBLE_DIR, str(i))
            member = rkio.load_checkpoint(sub)
            clf.members_.append(restore_model(sub, member, build(member.config),
                                              clf._build_model(clf.encoder_.num_classes, clf.seed + i).config(),
                                              "does not match the ensemble's first network"))
        clf.companion_ = None
        # runs saved before the kernel model name the n-gram model "ngrams" (and before the
        # n-gram model, nothing)
        kind = s.get("companion", "ngrams" if s.get("ngrams") else None)
        clf.companion_weight_ = float(s.get("companion_weight", s.get("ngram_weight", NGRAM_WEIGHT)))
        clf.companion_weight_from_ = str(s.get("companion_weight_from", s.get("ngram_weight_from", "default")))
        if kind is not None:
            from rnnkit.tasks.kernel_model import KernelModel
            from rnnkit.tasks.ngram_model import NgramModel

            sub = os.path.join(directory, NGRAM_DIR if kind == "ngrams" else KERNEL_DIR)
            part = rkio.load_checkpoint(sub)
            try:
                clf.companion_ = (NgramModel if kind == "ngrams" else KernelModel).from_saved(part.config,
                                                                                             part.arrays)
            except (KeyError, TypeError, ValueError) as exc:
                raise CheckpointError(f"{sub}: not a valid {'n-gram' if kind == 'ngrams' else 'kernel'} "
                                      f"model: {exc}") from exc
        clf.val_evaluation_ = clf.test_evaluation_ = None
        clf.history_ = clf.files_ = None
        return clf
