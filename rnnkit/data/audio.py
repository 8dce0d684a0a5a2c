r"""Audio for sequence classification: WAV files in, frame-by-frame features out (NumPy only).

Reading: :func:`read_wav` takes PCM WAV (8-bit unsigned, 16/24/32-bit signed, any rate,
any number of channels) through the standard library's :mod:`wave` (and
WAVE_FORMAT_EXTENSIBLE files of PCM samples, which it refuses before Python 3.12) and
returns mono float samples in [−1, 1) (the mean of the channels).

Front end, for a signal x at rate r (Hz):

    pre-emphasis   x'[n] = x[n] − 0.97 x[n−1]
    framing        frame i = x'[i·hop : i·hop + N],  N = frame_ms·r/1000, hop = hop_ms·r/1000
                   (the last frame zero-padded; a signal shorter than N gives one frame)
    window         w[n] = 0.54 − 0.46 cos(2πn/(N−1))                         (Hamming)
    spectrum       P_i[k] = |FFT_K(w ⊙ frame_i)[k]|² / K,  k = 0 … K/2,  K = next power of 2 ≥ N
    mel scale      m(f) = 2595 log10(1 + f/700)                                (HTK)
    filterbank     M triangles with centres equally spaced in m between fmin and fmax
                   (default r/2); band j rises from centre j−1 to centre j, falls to j+1
    log-mel        L_i[j] = log(Σ_k F[j, k] P_i[k] + 1e-10)
    MFCC           c_i = D L_i,  D[q, j] = s_q cos(π q (j + ½) / M),  s_0 = √(1/M), s_q = √(2/M)
                   (the orthonormal DCT-II, D Dᵀ = I when n_mfcc = M)
    deltas         Δc_t = Σ_{n=1}^{W} n (c_{t+n} − c_{t−n}) / (2 Σ_{n=1}^{W} n²),  edges repeat
                   the first / last frame; ΔΔ = Δ of Δ
    normalise      per utterance, per feature: (v − mean_t v) / (std_t v + 1e-8)

``features="mfcc"`` gives [c, Δc, ΔΔc] (3·n_mfcc per frame), ``"logmel"`` the log-mel
energies (n_mels per frame). :func:`read_audio_folder` reads a directory holding one
sub-directory per label full of ``.wav`` files.
"""

from __future__ import annotations

import math
import os
import wave

import numpy as np

from rnnkit._checks import check_choice, check_positive_int
from rnnkit.errors import RnnkitError

__all__ = ["FEATURES", "read_wav", "frame_signal", "power_spectrum", "hz_to_mel", "mel_to_hz",
           "mel_filterbank", "dct_matrix", "deltas", "normalize", "audio_features", "wav_features",
           "read_audio_folder", "list_audio_folder", "trim_silence", "augment", "spec_augment", "audio_list_columns",
           "read_audio_list", "split_lists"]

FEATURES = ("mfcc", "logmel")
_EPS = 1e-10


def read_wav(path) -> tuple[np.ndarray, int]:
    """Read a WAV file as mono float64 samples in [−1, 1) and its sample rate: integer PCM
    (8-, 16-, 24- or 32-bit) or IEEE floating point (32- or 64-bit, as sound libraries
    write it), plain or WAVE_FORMAT_EXTENSIBLE.

    A missing file, a file that is not RIFF/WAVE, a compressed WAV (µ-law, ADPCM, …) and
    a truncated file are one-line :class:`RnnkitError` naming the path.

    Shapes:
        returns (x float64 (n,), rate int)
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise RnnkitError(f"WAV file not found: {path}")
    floats = False
    try:
        with wave.open(path, "rb") as w:
            channels, width, rate, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            raw = w.readframes(n)
    except wave.Error as exc:
        chunks = _wav_chunks(path)
        if chunks is None:
            raise RnnkitError(f"{path}: not a PCM WAV file ({exc}); expected RIFF/WAVE with 8-, 16-, 24- or "
                              f"32-bit integer PCM or 32-/64-bit float samples") from None
        channels, width, rate, raw, floats = chunks
    except (EOFError, OSError) as exc:
        raise RnnkitError(f"{path}: cannot read the WAV file ({exc or 'truncated'})") from None
    if floats and width not in (4, 8):
        raise RnnkitError(f"{path}: {8 * width}-bit float samples are not supported; expected 32- or 64-bit")
    if not floats and width not in (1, 2, 3, 4):
        raise RnnkitError(f"{path}: {8 * width}-bit samples are not supported; expected 8-, 16-, 24- or 32-bit PCM")
    if rate <= 0 or channels <= 0:
        raise RnnkitError(f"{path}: the WAV header gives rate {rate} and {channels} channels")
    usable = len(raw) // (width * channels) * width * channels
    if usable == 0:
        raise RnnkitError(f"{path}: the WAV file holds no samples")
    raw = raw[:usable]
    if floats:            # nominally in [-1, 1]; a louder sample is clipped, a NaN silenced
        x = np.nan_to_num(np.frombuffer(raw, dtype=f"<f{width}").astype(np.float64), nan=0.0)
        x = np.clip(x, -1.0, 1.0)
    elif width == 1:      # 8-bit PCM is unsigned, centred on 128
        x = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
    elif width == 3:      # 24-bit: widen each little-endian triple to 32 bits
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
        wide = np.zeros((len(b), 4), dtype=np.uint8)
        wide[:, 1:] = b
        x = wide.view("<i4").reshape(-1).astype(np.float64) / 2.0 ** 31
    else:
        x = np.frombuffer(raw, dtype=f"<i{width}").astype(np.float64) / 2.0 ** (8 * width - 1)
    return x.reshape(-1, channels).mean(axis=1), rate


#: format tags: integer PCM, IEEE float and WAVE_FORMAT_EXTENSIBLE (whose sub-format GUID
#: starts with the tag of its samples, then these bytes)
_PCM, _FLOAT, _EXTENSIBLE, _GUID_TAIL = 1, 3, 0xFFFE, b"\x00\x00\x00\x00\x10\x00"


def _wav_chunks(path):
    """(channels, bytes per sample, rate, sample bytes, float samples?) of a WAV file that
    :mod:`wave` refuses but that holds integer PCM or IEEE float samples: a float WAV
    (sound libraries write them), or WAVE_FORMAT_EXTENSIBLE (24-bit and multichannel
    recorders write it; Python's wave before 3.12 refuses it); else None."""
    import struct

    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    fmt, samples, at = None, None, 12
    while at + 8 <= len(data):
        cid, size = data[at:at + 4], struct.unpack("<I", data[at + 4:at + 8])[0]
        body = data[at + 8:at + 8 + size]
        if cid == b"fmt ":
            fmt = body
        elif cid == b"data":
            samples = body                      # a truncated file keeps what it holds
        at += 8 + size + (size & 1)             # chunks are padded to an even length
    if fmt is None or samples is None or len(fmt) < 16:
        return None
    tag, channels, rate, _, align = struct.unpack("<HHIIH", fmt[:14])
    if tag == _EXTENSIBLE and len(fmt) >= 40 and fmt[26:32] == _GUID_TAIL:
        tag = struct.unpack("<H", fmt[24:26])[0]
    if tag not in (_PCM, _FLOAT) or not channels or align % channels:
        return None
    return channels, align // channels, rate, samples, tag == _FLOAT


def frame_signal(x, frame_length: int, hop: int) -> np.ndarray:
    """Cut a signal into overlapping frames; the last one is zero-padded.

    Shapes:
        x (n,) -> (1 + ⌈max(n − N, 0) / hop⌉, N)
    """
    N = check_positive_int(frame_length, "frame_length", "frame_signal")
    hop = check_positive_int(hop, "hop", "frame_signal")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"frame_signal: expected x with 1 dim (n,), got {x.ndim}")
    n_frames = 1 + max(0, math.ceil((len(x) - N) / hop))
    padded = np.zeros((n_frames - 1) * hop + N)
    padded[:len(x)] = x
    idx = np.arange(N)[None, :] + hop * np.arange(n_frames)[:, None]
    return padded[idx]


def power_spectrum(frames, n_fft: int) -> np.ndarray:
    """|FFT|² / n_fft of each Hamming-windowed frame.

    Shapes:
        frames (n, N), N <= n_fft -> (n, n_fft // 2 + 1)
    """
    frames = np.asarray(frames, dtype=np.float64)
    N = frames.shape[1]
    if n_fft < N:
        raise ValueError(f"power_spectrum: n_fft must be >= the frame length {N}, got {n_fft}")
    window = np.hamming(N) if N > 1 else np.ones(1)
    return np.abs(np.fft.rfft(frames * window, n=n_fft)) ** 2 / n_fft


def hz_to_mel(f):
    """The HTK mel scale m = 2595 log10(1 + f/700)."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    """The inverse of :func:`hz_to_mel`."""
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(n_mels: int, n_fft: int, rate: int, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """Triangular filters, centres equally spaced on the mel scale, peak 1 at each centre.

    Shapes:
        -> (n_mels, n_fft // 2 + 1)
    """
    where = "mel_filterbank"
    n_mels = check_positive_int(n_mels, "n_mels", where)
    fmax = rate / 2.0 if fmax is None else float(fmax)
    if not 0.0 <= fmin < fmax <= rate / 2.0:
        raise ValueError(f"{where}: need 0 <= fmin < fmax <= rate/2 = {rate / 2.0:g}, got fmin={fmin}, fmax={fmax}")
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))   # (M + 2,) in Hz
    freqs = np.arange(n_fft // 2 + 1) * rate / n_fft
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rise = (freqs[None, :] - lo) / (mid - lo)
    fall = (hi - freqs[None, :]) / (hi - mid)
    return np.maximum(0.0, np.minimum(rise, fall))


def dct_matrix(n_out: int, n_in: int) -> np.ndarray:
    """The first ``n_out`` rows of the orthonormal DCT-II of size ``n_in``.

    Shapes:
        -> (n_out, n_in)
    """
    if n_out > n_in:
        raise ValueError(f"dct_matrix: n_out ({n_out}) must be <= n_in ({n_in})")
    q = np.arange(n_out)[:, None]
    j = np.arange(n_in)[None, :]
    D = np.cos(np.pi * q * (j + 0.5) / n_in) * math.sqrt(2.0 / n_in)
    D[0] /= math.sqrt(2.0)
    return D


def deltas(feat, width: int = 2) -> np.ndarray:
    """Regression deltas over ±``width`` frames (edges repeat the first/last frame).

    Shapes:
        feat (T, F) -> (T, F)
    """
    width = check_positive_int(width, "width", "deltas")
    feat = np.asarray(feat, dtype=np.float64)
    T = len(feat)
    padded = np.concatenate([np.repeat(feat[:1], width, axis=0), feat, np.repeat(feat[-1:], width, axis=0)])
    out = np.zeros_like(feat)
    for n in range(1, width + 1):
        out += n * (padded[width + n: width + n + T] - padded[width - n: width - n + T])
    return out / (2.0 * sum(n * n for n in range(1, width + 1)))


def normalize(feat) -> np.ndarray:
    """Per-feature zero mean and unit variance over the frames of one utterance.

    Shapes:
        feat (T, F) -> (T, F)
    """
    feat = np.asarray(feat, dtype=np.float64)
    return (feat - feat.mean(axis=0)) / (feat.std(axis=0) + 1e-8)


def audio_features(x, rate: int, features: str = "mfcc", n_mels: int = 40, n_mfcc: int = 13,
                   frame_ms: float = 25.0, hop_ms: float = 10.0, fmin: float = 20.0,
                   per_utterance_norm: bool = True) -> np.ndarray:
    """The front end of the module docstring: MFCC with Δ and ΔΔ, or log-mel energies.

    Shapes:
        x (n,) at ``rate`` Hz -> (frames, 3·n_mfcc) for "mfcc", (frames, n_mels) for "logmel"
    """
    where = "audio_features"
    features = check_choice(features, "features", FEATURES, where)
    rate = check_positive_int(rate, "rate", where)
    n_mels = check_positive_int(n_mels, "n_mels", where)
    n_mfcc = check_positive_int(n_mfcc, "n_mfcc", where)
    if n_mfcc > n_mels:
        raise ValueError(f"{where}: n_mfcc ({n_mfcc}) must be <= n_mels ({n_mels})")
    N = max(1, int(round(frame_ms * rate / 1000.0)))
    hop = max(1, int(round(hop_ms * rate / 1000.0)))
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or len(x) == 0:
        raise ValueError(f"{where}: expected a non-empty mono signal (n,), got shape {x.shape}")
    emphasized = np.append(x[:1], x[1:] - 0.97 * x[:-1])
    n_fft = 1 << max(0, (N - 1).bit_length())
    spec = power_spectrum(frame_signal(emphasized, N, hop), n_fft)
    fb = mel_filterbank(n_mels, n_fft, rate, min(fmin, rate / 4.0))
    logmel = np.log(spec @ fb.T + _EPS)                                        # (frames, M)
    if features == "logmel":
        out = logmel
    else:
        c = logmel @ dct_matrix(n_mfcc, n_mels).T                             # (frames, n_mfcc)
        d = deltas(c)
        out = np.concatenate([c, d, deltas(d)], axis=1)
    return normalize(out) if per_utterance_norm else out


def trim_silence(x, rate: int, top_db: float = 35.0, margin_ms: float = 50.0) -> np.ndarray:
    """Cut the leading and trailing stretch quieter than ``top_db`` below the loudest
    25 ms frame (energy in 10 ms hops), keeping ``margin_ms`` on each side.

    Shapes:
        x (n,) -> (m,), m <= n (x itself when nothing is quiet)
    """
    x = np.asarray(x, dtype=np.float64)
    N, hop = max(1, int(0.025 * rate)), max(1, int(0.010 * rate))
    if len(x) <= N:
        return x
    energy = (frame_signal(x, N, hop) ** 2).mean(axis=1)
    db = 10.0 * np.log10(energy + 1e-12)
    loud = np.flatnonzero(db >= db.max() - top_db)
    margin = int(margin_ms * rate / 1000.0)
    start = max(0, loud[0] * hop - margin)
    end = min(len(x), loud[-1] * hop + N + margin)
    return x[start:end]


def augment(x, rate: int, rng) -> np.ndarray:
    """One random variant of a clip for training: speed ×U(0.9, 1.1) (resampled), gain
    ×U(0.7, 1.3), a shift of up to 50 ms, and white noise 25–40 dB below the signal.

    Shapes:
        x (n,) -> (m,), m ≈ n / speed
    """
    x = np.asarray(x, dtype=np.float64)
    speed = rng.uniform(0.9, 1.1)
    pos = np.arange(0.0, len(x) - 1, speed)
    y = np.interp(pos, np.arange(len(x)), x) * rng.uniform(0.7, 1.3)
    shift = int(rng.integers(-int(0.05 * rate), int(0.05 * rate) + 1))
    y = np.roll(y, shift)
    power = float(np.mean(y * y)) or 1e-12
    snr = 10.0 ** (rng.uniform(25.0, 40.0) / 10.0)
    return y + rng.normal(0.0, np.sqrt(power / snr), size=len(y))


def spec_augment(x, lengths, rng, time_masks: int = 2, time_width: float = 0.1, feature_masks: int = 2,
                 feature_width: float = 0.15) -> np.ndarray:
    """SpecAugment-style masking of a training batch of normalised features (Park et al. 2019):
    per sequence, ``time_masks`` runs of up to ``time_width`` of its frames and
    ``feature_masks`` runs of up to ``feature_width`` of the feature channels are set to 0
    (the per-utterance mean). Padding stays as it is; ``x`` is not modified.

    Shapes:
        x (T, B, F), lengths (B,) int -> (T, B, F)
    """
    x = np.array(x, copy=True)
    T, B, F = x.shape
    lengths = np.full(B, T) if lengths is None else np.asarray(lengths)
    for b in range(B):
        n = int(lengths[b])
        for _ in range(time_masks):
            w = int(rng.integers(0, max(1, int(time_width * n)) + 1))
            if 0 < w < n:
                t0 = int(rng.integers(0, n - w + 1))
                x[t0:t0 + w, b] = 0.0
        for _ in range(feature_masks):
            w = int(rng.integers(0, max(1, int(feature_width * F)) + 1))
            if 0 < w < F:
                f0 = int(rng.integers(0, F - w + 1))
                x[:n, b, f0:f0 + w] = 0.0
    return x


def wav_features(path, features: str = "mfcc", **kwargs) -> np.ndarray:
    """:func:`read_wav` then :func:`audio_features` (same keyword arguments)."""
    x, rate = read_wav(path)
    return audio_features(x, rate, features, **kwargs)


def read_audio_folder(directory, features: str = "mfcc", **kwargs):
    """Features of every ``.wav`` of a labelled folder (:func:`list_audio_folder`);
    returns (X, labels, paths).

    Shapes:
        X: list of (frames_i, F) float64
    """
    paths, labels = list_audio_folder(directory)
    return [wav_features(p, features, **kwargs) for p in paths], labels, paths


def list_audio_folder(directory, labelled: bool = True) -> tuple[list, list | None]:
    """(paths, labels) of the ``.wav`` files under ``directory/<label>/``.

    Sub-directories are labels (sorted); files are listed in sorted order. Hidden files
    and directories (``.…``, ``__MACOSX``) are passed over, and so are sub-directories
    whose name starts with ``_`` (``_background_noise_`` beside the words of Speech
    Commands), with a :class:`~rnnkit.errors.DataNote` naming them. A directory without
    label sub-directories whose ``.wav`` files are named ``<label>_<rest>.wav``, with labels
    that repeat (the Free Spoken Digit Dataset's ``7_jackson_32.wav``), takes each file's
    label from its name, and says so. A directory without labelled ``.wav`` files is an
    :class:`RnnkitError` naming it; with ``labelled=False`` (clips to predict) its own
    ``.wav`` files are listed, with labels None.
    """
    import warnings

    from rnnkit.errors import DataNote

    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise RnnkitError(f"audio folder not found: {directory}")
    paths, labels, skipped = [], [], []
    for label in sorted(os.listdir(directory)):
        sub = os.path.join(directory, label)
        if not os.path.isdir(sub) or label.startswith(".") or label == "__MACOSX":
            continue
        wavs = [os.path.join(sub, n) for n in _flat_wavs(sub)]
        if label.startswith("_"):
            skipped += [label] if wavs else []
            continue
        paths += wavs
        labels += [label] * len(wavs)
    if skipped:
        warnings.warn(DataNote(f"{directory}: sub-director{'ies' if len(skipped) > 1 else 'y'} "
                               f"{', '.join(skipped)} (a name starting with '_') read as no label"), stacklevel=2)
    if paths:
        names = sorted(set(labels))
        warnings.warn(DataNote(f"{directory}: {len(paths):,} clips in {len(names)} label folders "
                               f"({', '.join(names[:6])}{', …' if len(names) > 6 else ''})"), stacklevel=2)
    if not paths:
        paths, labels = _labels_from_names(directory)
    if not paths and not labelled:
        paths = [os.path.join(directory, n) for n in _flat_wavs(directory)]
        return (paths, None) if paths else _no_wavs(directory)
    if not paths:
        raise RnnkitError(f"{directory}: no .wav files found in label sub-directories "
                          f"(expected {directory}/<label>/<clip>.wav)")
    return paths, labels


def _no_wavs(directory):
    raise RnnkitError(f"{directory}: no .wav files found in it or in label sub-directories "
                      f"(expected {directory}/<label>/<clip>.wav or {directory}/<clip>.wav)")


def _flat_wavs(directory) -> list[str]:
    """The names of the ``.wav`` files directly in ``directory``, sorted (``._x.wav``, macOS
    metadata, left out)."""
    return [n for n in sorted(os.listdir(directory)) if n.lower().endswith(".wav") and not n.startswith(".")
            and os.path.isfile(os.path.join(directory, n))]


def _labels_from_names(directory) -> tuple[list, list]:
    """(paths, labels) of the ``<label>_<rest>.wav`` files directly in ``directory`` when
    each label names several files, else ([], []) (and a DataNote saying where the labels
    came from)."""
    import warnings

    from rnnkit.errors import DataNote

    names = _flat_wavs(directory)
    if not names or not all("_" in n[:-4].strip("_") and not n.startswith("_") for n in names):
        return [], []
    labels = [n.split("_", 1)[0] for n in names]
    if len(set(labels)) < 2 or len(set(labels)) > len(names) / 2:
        return [], []
    warnings.warn(DataNote(f"{directory}: no label sub-directories; each file's label is its name up to the "
                           f"first '_' ({len(set(labels))} labels, e.g. {names[0]} -> {labels[0]!r})"), stacklevel=3)
    return [os.path.join(directory, n) for n in names], labels


#: header names of the column of clip files in a list of labelled clips
FILE_NAMES = ("filename", "file", "fname", "file_name", "path", "filepath", "file_path", "slice_file_name",
              "audio", "clip", "wav", "recording")


def _wav_cell(cell: str) -> bool:
    return cell.strip().lower().endswith(".wav")


def audio_list_columns(path, max_rows: int = 50):
    """(header, file column, label column or None) of a CSV listing ``.wav`` clips (a
    column whose cells end in ``.wav``, the first named like :data:`FILE_NAMES` among
    several; the label column named like
    :data:`rnnkit.data.labeled_text.LABEL_NAMES`), or None for any other file."""
    from rnnkit.data._util import csv_head
    from rnnkit.data.labeled_text import LABEL_NAMES, name_index

    rows = csv_head(path, max_rows + 1)
    if rows is None or len(rows) < 2:
        return None
    header, body = [h.strip() for h in rows[0]], rows[1:]
    wav = [j for j in range(len(header)) if all(j < len(r) and _wav_cell(r[j]) for r in body)]
    if not wav:
        return None
    named = name_index([header[j] for j in wav], FILE_NAMES)
    label = name_index(header, LABEL_NAMES)
    return header, wav[named or 0], label


def _find_clips(base: str, names: list[str]) -> list[str | None]:
    """The path of each clip name: as written, from the list's folder or the one above it
    (``meta/esc50.csv`` beside ``audio/``), else the one file of that name anywhere below
    those (``audio/fold1/…``: UrbanSound8K); None where there is none."""
    found = []
    index = None
    for name in names:
        cands = [name] if os.path.isabs(name) else [os.path.join(base, name), os.path.join(base, "..", name)]
        hit = next((c for c in cands if os.path.isfile(c)), None)
        if hit is None:
            if index is None:
                index = _wav_index(base)
            paths = index.get(os.path.basename(name), set())
            hit = next(iter(paths)) if len(paths) == 1 else None
        found.append(None if hit is None else os.path.normpath(hit))
    return found


#: the most directory entries :func:`_wav_index` looks through
INDEX_ENTRIES = 500_000


def _wav_index(base: str) -> dict:
    """{file name: its paths} of the ``.wav`` files below ``base`` and below the folder above
    it (not a file system's root), hidden folders left out, at most :data:`INDEX_ENTRIES`
    entries looked at."""
    index, seen = {}, 0
    above = os.path.dirname(os.path.abspath(base))
    roots = [base] + ([above] if os.path.dirname(above) != above else [])
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            seen += len(dirnames) + len(filenames)
            for f in filenames:
                if _wav_cell(f):
                    index.setdefault(f, set()).add(os.path.normpath(os.path.join(dirpath, f)))
            if seen > INDEX_ENTRIES:
                return index
    return index


def read_audio_list(path, labelled: bool = True) -> tuple[list[str], list[str] | None]:
    """(paths, labels) of a CSV listing ``.wav`` clips and their labels (ESC-50's
    ``meta/esc50.csv``, UrbanSound8K's ``metadata/UrbanSound8K.csv``, a Kaggle
    ``train.csv`` of ``fname,label``): the file column and the label column as
    :func:`audio_list_columns` finds them, each clip found as :func:`_find_clips` looks.
    A missing label column (when ``labelled``), an empty label and clips not found are an
    :class:`RnnkitError` naming the file."""
    import csv
    import io

    from rnnkit.data._util import read_file_text

    cols = audio_list_columns(path)
    path_s, text = read_file_text(path, "auto", "CSV file")
    if cols is None:
        raise RnnkitError(f"{path_s}: no column of .wav file names")
    header, file_col, label_col = cols
    if label_col is None and labelled:
        from rnnkit.data.labeled_text import LABEL_NAMES

        raise RnnkitError(f"{path_s}: no label column beside {header[file_col]!r} (name it "
                          f"{', '.join(LABEL_NAMES[:4])}, …)")
    reader = csv.reader(io.StringIO(text))
    rows = [(reader.line_num, r) for r in reader if r and any(c.strip() for c in r)][1:]
    names, labels = [], []
    for line, r in rows:
        if len(r) <= max(file_col, label_col or 0):
            raise RnnkitError(f"{path_s}, line {line}: {len(r)} fields, expected {len(header)}")
        names.append(r[file_col].strip())
        if label_col is not None:
            if not r[label_col].strip():
                raise RnnkitError(f"{path_s}, line {line}: the label column {header[label_col]!r} is empty")
            labels.append(r[label_col].strip())
    paths = _find_clips(os.path.dirname(os.path.abspath(path_s)), names)
    missing = [n for n, p in zip(names, paths) if p is None]
    if missing:
        raise RnnkitError(f"{path_s}: {len(missing)} of {len(names)} clips not found beside the list, above it or "
                          f"below either (the first: {missing[0]!r})")
    import warnings

    from rnnkit.errors import DataNote

    said = f", labels from column {header[label_col]!r} ({len(set(labels))} labels)" if label_col is not None else ""
    warnings.warn(DataNote(f"{path_s}: {len(paths)} clips listed in column {header[file_col]!r}{said}"), stacklevel=2)
    return paths, (labels if label_col is not None else None)


#: the files of a Speech Commands folder that name its validation and test clips
SPLIT_LISTS = ("validation_list.txt", "testing_list.txt")


def split_lists(directory, paths, labels):
    """Speech Commands' own split: where ``directory`` holds ``validation_list.txt`` and/or
    ``testing_list.txt`` (paths relative to it, ``yes/0a7c2a8d_nohash_0.wav``), the clips they
    name are the validation and test sets and the rest train. Returns ``{"train": (paths,
    labels), "validation": (…) or None, "test": (…) or None}``, or None without the lists.
    A listed clip that the folder does not hold is an RnnkitError naming it."""
    import warnings

    from rnnkit.data._util import read_file_text
    from rnnkit.errors import DataNote

    directory = os.fspath(directory)
    found = [os.path.join(directory, f) for f in SPLIT_LISTS if os.path.isfile(os.path.join(directory, f))]
    if not found:
        return None
    where = {os.path.normpath(os.path.relpath(p, directory)): i for i, p in enumerate(paths)}
    parts, taken = {}, set()
    for name in SPLIT_LISTS:
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            parts[name] = None
            continue
        _, text = read_file_text(path, "auto", "clip list")
        idx = []
        for n, line in enumerate(text.split("\n"), start=1):
            if line.strip():
                k = where.get(os.path.normpath(line.strip()))
                if k is None:
                    raise RnnkitError(f"{path}, line {n}: {line.strip()!r} is not a clip of {directory}")
                idx.append(k)
        taken.update(idx)
        parts[name] = ([paths[i] for i in idx], [labels[i] for i in idx])
    rest = [i for i in range(len(paths)) if i not in taken]
    val, test = parts[SPLIT_LISTS[0]], parts[SPLIT_LISTS[1]]
    warnings.warn(DataNote(f"{directory}: split by its own lists, as Speech Commands is: {len(rest):,} clips train"
                           + (f", {len(val[0]):,} validate (validation_list.txt)" if val else "")
                           + (f", {len(test[0]):,} test (testing_list.txt)" if test else "")), stacklevel=2)
    return {"train": ([paths[i] for i in rest], [labels[i] for i in rest]), "validation": val, "test": test}
