"""What a classification file or folder holds, and reading it: series, text or audio.

``input="auto"`` decides by what the path is:

* a directory of one text file per sensor channel and a label file (the UCI HAR layout),
  or of one sub-directory per label holding one recording per file (:mod:`rnnkit.data.channels`): series;
* a CSV with a column of ``.wav`` file names and a label column: audio
  (:func:`rnnkit.data.audio.read_audio_list`: ESC-50, UrbanSound8K, Kaggle lists);
* a directory of one sub-directory per label holding documents, none ``.wav``: text
  (:func:`rnnkit.data.labeled_text.read_text_folder`);
* another directory: audio, one sub-directory per label holding ``.wav`` files
  (:func:`rnnkit.data.audio.list_audio_folder`);
* a file of ``label<TAB>text`` lines whose texts are not numbers: text
  (:func:`rnnkit.data.labeled_text.read_labeled_text`; text<TAB>label, a header line
  and CSV files with named text and label columns too);
* anything else: labelled series — UCR ``.tsv``, UEA ``.ts`` (uni- or multivariate),
  CSV with one series per row, or a long CSV with several channels per step and an id
  column (:func:`rnnkit.data.ucr.read_labeled_sequences`).

Audio clips become feature sequences (MFCC with deltas, or log-mel): the leading and
trailing silence is cut first (:func:`rnnkit.data.audio.trim_silence`), and training
clips can be multiplied by random variants (:func:`rnnkit.data.audio.augment`: speed,
gain, shift, noise), drawn after the validation clips are set aside.

Training batches also vary anew every epoch (:func:`batch_variation`): audio features get
SpecAugment masks (runs of frames and of channels set to the utterance mean), word
tokens get word dropout (a token becomes the unknown id with probability 0.1) — cheap
regularisers that matter most when a class has few examples.
"""

from __future__ import annotations

import os

import numpy as np

from rnnkit._checks import check_positive_int
from rnnkit.errors import RnnkitError

__all__ = ["INPUTS", "detect_input", "read_inputs", "audio_sequences", "fit_audio", "read_audio_inputs",
           "sequence_kind", "numeric_sequences", "batch_variation"]

INPUTS = ("auto", "series", "text", "audio")


def detect_input(path, input: str = "auto") -> str:
    """"series", "text" or "audio" for ``path`` (the module docstring's rules)."""
    from rnnkit.data.labeled_text import looks_like_labeled_text

    if input not in INPUTS:
        raise ValueError(f"input must be one of {', '.join(INPUTS)}, got {input!r}")
    if input != "auto":
        return input
    path = os.fspath(path)
    if os.path.isdir(path):
        from rnnkit.data.channels import is_channel_folder
        from rnnkit.data.labeled_text import is_text_folder

        from rnnkit.data.channels import is_recording_folder

        if is_channel_folder(path) or is_recording_folder(path):
            return "series"
        return "text" if is_text_folder(path) else "audio"
    if not os.path.exists(path):
        raise RnnkitError(f"file not found: {path}")
    from rnnkit.data.audio import audio_list_columns

    if audio_list_columns(path) is not None:        # a CSV listing .wav clips and their labels
        return "audio"
    return "text" if looks_like_labeled_text(path) else "series"


def audio_sequences(paths_or_signals, features: str, augment: int = 0, seed: int = 0):
    """Feature sequences of WAV paths (or (signal, rate) pairs); with ``augment`` = k each
    clip also gives k random variants (their features follow the clip's own).

    Shapes:
        -> list of (frames_i, F) float64, (1 + augment) per input, grouped by input
    """
    from rnnkit.data import audio

    rng = np.random.default_rng(seed)
    out = []
    for item in paths_or_signals:
        x, rate = audio.read_wav(item) if isinstance(item, (str, os.PathLike)) else item
        x = audio.trim_silence(x, rate)
        out.append(audio.audio_features(x, rate, features))
        for _ in range(augment):
            out.append(audio.audio_features(audio.augment(x, rate, rng), rate, features))
    return out


def read_inputs(path, kind: str, missing: str = "trim"):
    """(X, y) of a classification file or folder of ``kind``; audio gives WAV paths (the
    features are computed by the classifier, which knows its front-end settings)."""
    if kind == "audio":
        from rnnkit.data.audio import list_audio_folder, read_audio_list

        return read_audio_list(path) if os.path.isfile(path) else list_audio_folder(path)
    if kind == "text":
        from rnnkit.data.labeled_text import read_labeled_text, read_text_folder

        return read_text_folder(path)[:2] if os.path.isdir(path) else read_labeled_text(path)
    from rnnkit.data.channels import (is_channel_folder, is_recording_folder, read_channel_folder,
                                      read_recording_folder)
    from rnnkit.data.ucr import read_labeled_sequences

    if is_channel_folder(path):
        X, y, _ = read_channel_folder(path)
    elif is_recording_folder(path):
        X, y, _ = read_recording_folder(path)
    else:
        X, y = read_labeled_sequences(path, missing=missing)
    if y is None:
        raise RnnkitError(f"{os.fspath(path)}: the file has no class labels")
    return X, y


def fit_audio(clf, paths, labels, augment, test, fit_kwargs, val=None):
    """Set validation clips aside (stratified; ``val`` = (paths, labels) gives them instead),
    multiply the training clips, fit ``clf`` (``test`` = (test paths, labels) or (None,
    None)); returns ``clf``.

    A validation part of fewer than :data:`rnnkit.tasks.policy.MIN_VAL_ITEMS` clips is
    not held out: so few clips pick neither a step count nor the weights reliably (their
    loss rises with confidence long before their accuracy falls), and every clip is worth
    more in training. The network then trains for the planned budget.
    """
    from rnnkit.tasks.policy import MIN_VAL_ITEMS

    val_fraction = fit_kwargs.pop("val_fraction", 0.15)
    labels = list(labels)
    counts = {c: labels.count(c) for c in set(labels)}
    if augment is None:
        augment = 8 if min(counts.values()) < 100 else 0
    augment = check_positive_int(augment, "augment", "SequenceClassifier.fit_files", minimum=0)
    rng = np.random.default_rng([clf.seed, 1])
    given = val is not None
    if given:                                 # the validation clips are given: every other clip trains
        paths, labels = list(paths) + list(val[0]), labels + list(val[1])
    val = np.zeros(len(labels), dtype=bool)
    if given:
        val[sum(counts.values()):] = True
    for c in sorted(counts, key=str) if not given else ():
        members = [i for i, v in enumerate(labels) if v == c]
        take = min(max(int(round(val_fraction * len(members))), 1 if val_fraction > 0 else 0), len(members) - 1)
        if take > 0:
            val[rng.choice(members, size=take, replace=False)] = True
    if val.sum() < MIN_VAL_ITEMS and not given:
        val[:] = False
    features = clf.audio_["features"]
    tr = np.flatnonzero(~val)
    X = audio_sequences([paths[i] for i in tr], features, augment, seed=clf.seed)
    y = [labels[i] for i in tr for _ in range(1 + augment)]
    kw = {}
    if val.any():
        kw = {"X_val": audio_sequences([paths[i] for i in np.flatnonzero(val)], features),
              "y_val": [labels[i] for i in np.flatnonzero(val)]}
    if test[0] is not None:
        kw.update(X_test=audio_sequences(test[0], features), y_test=list(test[1]))
    clf.augment_ = augment
    return clf.fit(X, y, val_fraction=0.0, **kw, **fit_kwargs)


def read_audio_inputs(path, features: str):
    """(X, y, files) of audio to predict or evaluate: a ``.wav`` file, a folder of them
    (y None, or the labels their names give), a folder of label sub-directories (y
    their names): :func:`rnnkit.data.audio.list_audio_folder`; or a CSV listing clips
    (y its label column, if it has one): :func:`rnnkit.data.audio.read_audio_list`."""
    from rnnkit.data.audio import audio_list_columns, read_audio_list

    path = os.fspath(path)
    if os.path.isfile(path) and audio_list_columns(path) is not None:
        paths, labels = read_audio_list(path, labelled=False)
        return audio_sequences(paths, features), labels, paths
    if os.path.isfile(path):
        return audio_sequences([path], features), None, [path]
    if not os.path.isdir(path):
        raise RnnkitError(f"audio file or folder not found: {path}")
    from rnnkit.data.audio import list_audio_folder

    paths, labels = list_audio_folder(path, labelled=False)
    return audio_sequences(paths, features), labels, paths


def sequence_kind(X, where: str) -> str:
    """"numeric" or "strings": what the sequences ``X`` of a classifier are."""
    if isinstance(X, str):
        raise TypeError(f"{where}: X must be a list of sequences, got one str (wrap it in a list)")
    if isinstance(X, np.ndarray) and X.dtype.kind in "iuf":
        if X.ndim < 2:
            raise ValueError(f"{where}: an array X must be (n, T) or (n, T, F), got shape {X.shape}")
        return "numeric"
    if not isinstance(X, (list, tuple, np.ndarray)) or len(X) == 0:
        raise TypeError(f"{where}: X must be a non-empty list of sequences (arrays or strings), "
                        f"got {type(X).__name__}")
    strs = [isinstance(s, str) for s in X]
    if all(strs):
        return "strings"
    if any(strs):
        raise TypeError(f"{where}: X mixes strings and arrays; give one kind")
    return "numeric"


def numeric_sequences(X, where: str) -> list[np.ndarray]:
    """Numeric sequences as float64 arrays (T_i, F), checked: numbers, finite, one F."""
    out = []
    for i, s in enumerate(X):
        a = np.asarray(s)
        if a.dtype.kind not in "iuf":
            raise TypeError(f"{where}: X[{i}] must hold numbers, got dtype {a.dtype}")
        a = a.astype(np.float64)
        if a.ndim == 1:
            a = a[:, None]
        if a.ndim != 2 or len(a) == 0:
            raise ValueError(f"{where}: X[{i}] must be a non-empty (T,) or (T, F) array, got shape {a.shape}")
        if not np.isfinite(a).all():
            raise RnnkitError(f"{where}: X[{i}] contains NaN or inf (fill or trim missing values first)")
        out.append(a)
    F = out[0].shape[1]
    for i, a in enumerate(out):
        if a.shape[1] != F:
            raise ValueError(f"{where}: X[{i}] has {a.shape[1]} features, X[0] has {F}")
    return out


def batch_variation(clf):
    """A function (x, lengths, rng) -> x that varies each training batch of ``clf`` anew
    every epoch, or None: SpecAugment masks for audio features
    (:func:`rnnkit.data.audio.spec_augment`), word dropout for word tokens
    (:func:`rnnkit.data.tokens.token_dropout`)."""
    if clf.input_ == "audio" and getattr(clf, "spec_augment_", True):
        from rnnkit.data.audio import spec_augment

        return spec_augment
    p = getattr(clf, "token_dropout_", 0.1)
    if clf.kind_ == "strings" and getattr(clf.vocab_, "kind", "char") == "word" and p > 0:
        from rnnkit.data.tokens import token_dropout

        return lambda x, lengths, rng: token_dropout(x, lengths, rng, p)
    return None
