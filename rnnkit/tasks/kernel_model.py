r"""A random-convolution model of numeric series (ROCKET, Dempster et al. 2020): the
series classifier's second opinion, as :mod:`rnnkit.tasks.ngram_model` is the string
classifier's.

Features. Each series x (T, F), standardised per channel over its own steps, meets m
random kernels. Kernel k has a length L ∈ {7, 9, 11}, C channels (C = ⌊2^u⌋,
u ~ U(0, log2(F + 1)), drawn without replacement), weights w ~ N(0, 1) minus their
mean, a bias b ~ U(−1, 1), a dilation d = ⌊2^u⌋, u ~ U(0, log2((T₀ − 1)/(L − 1))) with
T₀ the median training length, and with probability ½ a padding p = (L − 1)·d / 2
(else 0). It gives, at the n_out = max(1, T + 2p − (L − 1)·d) output positions,

    o_i = b + Σ_c Σ_j w_cj · x_{i − p + j·d, c}        (steps outside the series read 0)

and five features: the proportion of positive o_i (PPV) and max_i o_i (ROCKET's), the
mean of the positive o_i (MPV, 0 if none), their mean place i / (n_out − 1) (MIPV, −1 if
none) and the longest run of positive o_i over n_out (LSPV) (MultiRocket's, Tan et al.
2022). The first m/2
kernels read x, the others its first difference Δx_t = x_t − x_{t−1} (Δx_1 = 0), as
MultiRocket does. So Φ(x) has 5m values; the kernels are drawn once,
from the seed, and saved with the model. Fewer than m = 10 000 kernels are drawn when the
training series are long or many (:data:`WORK` multiply-adds and :data:`MAX_VALUES`
feature values at most, 1000 kernels at least).

Classifier. The features are standardised over the training series (μ, σ; σ = 1 where
constant): Z = (Φ − μ)/σ, n × 5m. Ridge regression onto the one-hot labels, centred
(Y_c = Y − ȳ), solved in the dual through G = Z Zᵀ = U diag(s) Uᵀ:

    Ŷ = U diag(s / (s + α)) Uᵀ Y_c,      h_i = Σ_j U_ij² s_j / (s_j + α)
    leave-one-out:  Ŷ_loo,i = (Ŷ_i − h_i Y_c,i) / (1 − h_i)

α is the value of s̄·10^{−6 … 2} (s̄ = tr G / n; 17 values) with the smallest
leave-one-out squared error, as RidgeClassifierCV chooses it. The weights are
W = Zᵀ U diag(1 / (s + α)) Uᵀ Y_c (5m × K), the scores f(x) = z(x) W + ȳ, and the class
probabilities p(k | x) = softmax(τ f(x))_k with the temperature τ of 10^{−1 … 3} (41
values) that gives the leave-one-out scores Ŷ_loo + ȳ the highest likelihood of the
training labels, each shrunk towards the uniform by one pseudo-count per class:

    p(k | x) = (n · softmax(τ f(x))_k + 1) / (n + K)        (n training series)

On a small set whose leave-one-out predictions are all right, the likelihood grows with τ
without bound, and the unshrunk model would be certain of every answer, its mistakes
included (20 series of UnitTest: p = 1.000 on each of its three wrong test answers); the
pseudo-counts keep it at (n + 1)/(n + K) at most, the rule of succession's answer to n
right out of n. The leave-one-out formulas hold the centring and scaling fixed at the
full set's, which moves them by O(1/n).
"""

from __future__ import annotations

import numpy as np

__all__ = ["KernelModel", "random_kernels", "conv_features"]

#: kernels drawn by default (2 features each), as in ROCKET
NUM_KERNELS = 10_000
#: the kernel lengths drawn from
LENGTHS = (7, 9, 11)
#: multiply-adds the training features may cost (about 10 s of one core): fewer kernels
#: past it (never fewer than MIN_KERNELS)
WORK = 2e10
MIN_KERNELS = 1000
#: features per kernel: PPV, max (ROCKET), MPV, MIPV, LSPV (MultiRocket)
FEATURES = 5
#: the most feature values of the training series (400 MB in float64): fewer kernels past it
MAX_VALUES = 5e7
#: kernels timed to size the model to a time budget, and the fewest a budget may leave
PROBE_KERNELS, FEWEST_KERNELS = 50, 200


def random_kernels(m: int, length: int, channels: int, rng: np.random.Generator) -> dict:
    """m kernels for series of typical length ``length`` with ``channels`` channels
    (module docstring): ``kernels`` int64 (m, 6) rows (L, d, p, C, weight offset, channel
    offset), ``bias`` (m,), ``weights`` (Σ C·L,), ``channels`` int64 (Σ C,)."""
    rows, bias, weights, chans = [], [], [], []
    w_off = c_off = 0
    for _ in range(m):
        L = int(rng.choice(LENGTHS))
        C = int(2 ** rng.uniform(0, np.log2(channels + 1)))
        C = max(1, min(C, channels))
        ch = rng.choice(channels, size=C, replace=False)
        w = rng.standard_normal((C, L))
        w -= w.mean()
        top = np.log2(max(length - 1, 1) / (L - 1))
        d = int(2 ** rng.uniform(0, top)) if top > 0 else 1
        p = (L - 1) * d // 2 if rng.integers(2) else 0
        rows.append((L, d, p, C, w_off, c_off))
        bias.append(rng.uniform(-1, 1))
        weights.append(w.ravel())
        chans.append(ch)
        w_off += C * L
        c_off += C
    return {"kernels": np.asarray(rows, dtype=np.int64).reshape(m, 6), "bias": np.asarray(bias, dtype=np.float64),
            "weights": np.concatenate(weights), "channels": np.concatenate(chans).astype(np.int64)}


def _standardise(a: np.ndarray) -> np.ndarray:
    sd = a.std(axis=0)
    return (a - a.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def conv_features(seqs, k: dict) -> np.ndarray:
    """Φ of every series (module docstring), standardised per channel first.

    Shapes:
        list of (T_i, F) floats  ->  (n, 5m) float64: kernel j's PPV, max, MPV, MIPV and LSPV
        in columns 5j … 5j+4
    """
    from rnnkit import fast

    seqs = [_standardise(np.asarray(a, dtype=np.float64)) for a in seqs]
    m = len(k["bias"])
    out = np.empty((len(seqs), FEATURES * m))
    compiled = getattr(fast._ext, "random_conv_features", None)
    if compiled is not None:
        offsets = np.concatenate([[0], np.cumsum([len(a) for a in seqs])]).astype(np.int64)
        compiled(np.ascontiguousarray(np.concatenate(seqs)), offsets, k["kernels"], k["bias"], k["weights"],
                 k["channels"], out)
        return out
    return _conv_features_numpy(seqs, k, out)


def _conv_features_numpy(seqs, k: dict, out: np.ndarray) -> np.ndarray:
    """:func:`conv_features` without the compiled loop: every series at once, zero-padded."""
    n, F = len(seqs), seqs[0].shape[1]
    T = np.array([len(a) for a in seqs])
    X = np.zeros((n, T.max(), F))
    for s, a in enumerate(seqs):
        X[s, :len(a)] = a
    for j, (L, d, p, C, wo, co) in enumerate(k["kernels"]):
        m = np.maximum(1, T + 2 * p - (L - 1) * d)
        M = int(m.max())
        right = max(0, M + (L - 1) * d - p - X.shape[1])
        Xp = np.pad(X, ((0, 0), (p, right), (0, 0)))
        w = k["weights"][wo:wo + C * L].reshape(C, L)
        o = np.full((n, M), k["bias"][j])
        for c, ch in enumerate(k["channels"][co:co + C]):
            for t in range(L):
                o += w[c, t] * Xp[:, t * d:t * d + M, ch]
        valid = np.arange(M)[None, :] < m[:, None]
        up = (o > 0) & valid
        count = up.sum(axis=1)
        f = out[:, FEATURES * j:FEATURES * (j + 1)]
        f[:, 0] = count / m
        f[:, 1] = np.where(valid, o, -np.inf).max(axis=1)
        f[:, 2] = np.where(count > 0, np.where(up, o, 0).sum(axis=1) / np.maximum(count, 1), 0.0)
        place = np.where(up, np.arange(M)[None, :], 0).sum(axis=1) / np.maximum(count, 1) / np.maximum(m - 1, 1)
        f[:, 3] = np.where(count > 0, place, -1.0)
        f[:, 4] = np.array([_longest_run(row) for row in up]) / m
    return out


def _longest_run(up: np.ndarray) -> int:
    """The longest run of True in a boolean row."""
    edges = np.diff(np.concatenate([[0], up.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return int((ends - starts).max()) if len(starts) else 0


def ridge_loo(Z: np.ndarray, Yc: np.ndarray, alpha: float):
    """Dual ridge of ``Yc`` on ``Z`` (module docstring): the fitted values, their
    leave-one-out values and the dual coefficients U diag(1/(s+α)) Uᵀ Yc.

    Shapes:
        Z (n, p), Yc (n, K)  ->  (n, K), (n, K), (n, K)
    """
    s, U = np.linalg.eigh(Z @ Z.T)
    return _ridge_eig(s, U, Yc, alpha)


def _ridge_eig(s, U, Yc, alpha):
    s = np.maximum(s, 0.0)
    UtY = U.T @ Yc
    fit = U @ (UtY * (s / (s + alpha))[:, None])
    h = (U ** 2) @ (s / (s + alpha))
    loo = (fit - h[:, None] * Yc) / np.maximum(1.0 - h, 1e-12)[:, None]
    dual = U @ (UtY / (s + alpha)[:, None])
    return fit, loo, dual


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


class KernelModel:
    """ROCKET features and a ridge classifier with calibrated probabilities (module docstring).

    ``KernelModel(num_kernels, seed).fit(seqs, ids, K)``; ``predict_proba(seqs)``; saved
    through :meth:`config` / :meth:`arrays` and :meth:`from_saved` (arrays only, no pickle).
    """

    def __init__(self, num_kernels: int = NUM_KERNELS, seed: int = 0):
        self.num_kernels = int(num_kernels)
        self.seed = int(seed)

    def fit(self, seqs, ids, num_classes: int, class_weights=None, seconds: float | None = None) -> "KernelModel":
        """Fit on (T_i, F) series with class ids 0 … K−1 (``class_weights`` is accepted for
        the n-gram model's interface; the ridge fit weighs every series alike).

        ``seconds``: about how long the features of the training series may take; fewer
        kernels are drawn to fit it (their cost timed on a few), and a RnnkitError says so
        when not even :data:`FEWEST_KERNELS` fit."""
        del class_weights
        ids = np.asarray(ids, dtype=np.int64)
        lengths = [len(a) for a in seqs]
        F = np.asarray(seqs[0]).shape[1]
        work = sum(lengths) * 9 * F ** 0.5
        m = int(min(self.num_kernels, max(MIN_KERNELS, min(WORK / max(work, 1.0),
                                                           MAX_VALUES / (FEATURES * len(ids))))))
        rng = np.random.default_rng([self.seed, 7])
        if seconds is not None:
            import time

            probe = random_kernels(PROBE_KERNELS, int(np.median(lengths)), F, np.random.default_rng([self.seed, 8]))
            start = time.perf_counter()
            self._features(seqs, probe)
            per_kernel = (time.perf_counter() - start) / PROBE_KERNELS
            m = min(m, int(max(0.0, seconds - PROBE_KERNELS * per_kernel) / max(per_kernel, 1e-9)))
            if m < FEWEST_KERNELS:
                from rnnkit.errors import RnnkitError

                raise RnnkitError(f"KernelModel.fit: {seconds:.3g}s hold the features of {m} kernels, fewer "
                                  f"than {FEWEST_KERNELS}")
        self.kernels_ = random_kernels(m, int(np.median(lengths)), F, rng)
        self._fit_features(self._features(seqs), ids, num_classes)
        return self

    def out_of_fold(self, seqs, ids, num_classes: int, folds, class_weights=None) -> np.ndarray:
        """Probabilities (n, K) of every series from a ridge fitted on the other folds
        (``folds``: each series' fold), with this model's kernels, whose features are
        computed once. The fitted model itself is unchanged (``class_weights``: as in
        :meth:`fit`)."""
        del class_weights
        ids = np.asarray(ids, dtype=np.int64)
        phi = self._features(seqs)
        out = np.zeros((len(ids), num_classes))
        part = KernelModel(self.num_kernels, self.seed)
        part.kernels_ = self.kernels_
        for i in np.unique(folds):
            keep, held = np.flatnonzero(folds != i), np.flatnonzero(folds == i)
            part._fit_features(phi[keep], ids[keep], num_classes)
            out[held] = part._proba(phi[held])
        return out

    def _fit_features(self, phi: np.ndarray, ids: np.ndarray, num_classes: int) -> None:
        """The ridge, its α and the temperature τ on features Φ (module docstring)."""
        self.mean_ = phi.mean(axis=0)
        sd = phi.std(axis=0)
        self.std_ = np.where(sd > 0, sd, 1.0)
        Z = (phi - self.mean_) / self.std_
        Y = np.eye(num_classes)[ids]
        self.ybar_ = Y.mean(axis=0)
        Yc = Y - self.ybar_
        s, U = np.linalg.eigh(Z @ Z.T)
        scale = max(float(np.maximum(s, 0).mean()), 1e-12)
        best = None
        for alpha in scale * np.logspace(-6, 2, 17):
            fit, loo, dual = _ridge_eig(s, U, Yc, alpha)
            err = float(((Yc - loo) ** 2).sum())
            if best is None or err < best[0]:
                best = (err, alpha, loo, dual)
        _, self.alpha_, loo, dual = best
        self.W_ = Z.T @ dual
        self.n_train_ = len(ids)
        scores = loo + self.ybar_
        rows = np.arange(len(ids))
        taus = np.logspace(-1, 3, 41)
        like = [float(np.log(self._shrink(np.exp(_log_softmax(t * scores))))[rows, ids].mean()) for t in taus]
        self.tau_ = float(taus[int(np.argmax(like))])

    def _shrink(self, p: np.ndarray) -> np.ndarray:
        """(n·p + 1) / (n + K): one pseudo-count per class (module docstring)."""
        return (self.n_train_ * p + 1.0) / (self.n_train_ + p.shape[1])

    def _scores(self, phi: np.ndarray) -> np.ndarray:
        """Ridge scores f(x) (n, K) of features Φ."""
        return ((phi - self.mean_) / self.std_) @ self.W_ + self.ybar_

    def _proba(self, phi: np.ndarray) -> np.ndarray:
        return self._shrink(np.exp(_log_softmax(self.tau_ * self._scores(phi))))

    def _features(self, seqs, kernels: dict | None = None) -> np.ndarray:
        """Φ: the first half of the kernels read the series, the second half its first
        differences (as MultiRocket does: on PLAID 0.911 against 0.890 with every kernel
        on the values, one seed)."""
        k = self.kernels_ if kernels is None else kernels
        half = len(k["bias"]) // 2
        first = dict(k, kernels=k["kernels"][:half], bias=k["bias"][:half])
        second = dict(k, kernels=k["kernels"][half:], bias=k["bias"][half:])
        diffs = [np.diff(a, axis=0, prepend=a[:1]) for a in (np.asarray(a, dtype=np.float64) for a in seqs)]
        return np.concatenate([conv_features(seqs, first), conv_features(diffs, second)], axis=1)

    def predict_proba(self, seqs) -> np.ndarray:
        """p(k | x) = (n·softmax(τ f(x))_k + 1) / (n + K), shape (len(seqs), K)."""
        return self._proba(self._features(seqs))

    # -- saving ----------------------------------------------------------------------------------
    def config(self) -> dict:
        return {"kind": "kernel_model", "num_kernels": self.num_kernels, "seed": self.seed,
                "alpha": float(self.alpha_), "tau": self.tau_, "n_train": self.n_train_}

    def arrays(self) -> dict:
        """The model's arrays, all float64 (checkpoints hold floats only; the kernels'
        integers are exact in them)."""
        return {"kernels": self.kernels_["kernels"].astype(np.float64), "bias": self.kernels_["bias"],
                "weights": self.kernels_["weights"], "channels": self.kernels_["channels"].astype(np.float64),
                "mean": self.mean_, "std": self.std_, "W": self.W_, "ybar": self.ybar_}

    @classmethod
    def from_saved(cls, config: dict, arrays: dict) -> "KernelModel":
        m = cls(int(config["num_kernels"]), int(config["seed"]))
        m.alpha_, m.tau_, m.n_train_ = float(config["alpha"]), float(config["tau"]), int(config["n_train"])
        m.kernels_ = {key: np.asarray(arrays[key]) for key in ("kernels", "bias", "weights", "channels")}
        for key in ("kernels", "channels"):
            ints = np.rint(m.kernels_[key])
            if not np.array_equal(ints, m.kernels_[key]):
                raise ValueError(f"the kernel model's {key!r} must hold whole numbers")
            m.kernels_[key] = ints.astype(np.int64)
        m.mean_, m.std_ = np.asarray(arrays["mean"], np.float64), np.asarray(arrays["std"], np.float64)
        m.W_, m.ybar_ = np.asarray(arrays["W"], np.float64), np.asarray(arrays["ybar"], np.float64)
        nk, feats, K = len(m.kernels_["bias"]), len(m.mean_), len(m.ybar_)
        if m.kernels_["kernels"].shape != (nk, 6) or feats != FEATURES * nk or m.W_.shape != (feats, K) \
                or len(m.std_) != feats:
            raise ValueError(f"the kernel model's arrays do not fit together: {nk} kernels, {feats} feature "
                             f"statistics, weights {m.W_.shape}, {K} classes")
        return m
