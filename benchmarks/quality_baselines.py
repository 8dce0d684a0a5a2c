"""The classical baselines of ``benchmarks/quality.py``, computed in the same run as rnnkit.

Classification
    1-NN Euclidean  squared distance Σ_t (a_t − b_t)²; series of different lengths are
                    first resampled (linear interpolation) to the longest training length.
    1-NN DTW        full window (no warping constraint), local cost (a_i − b_j)²,
                    D[i, j] = c(i, j) + min(D[i−1, j−1], D[i−1, j], D[i, j−1]); raw values
                    as the UCR archive's published baselines use them. A small C kernel
                    (compiled with the machine's ``cc``, early abandoning against the best
                    distance so far) does the work; without a compiler, NumPy over the
                    anti-diagonals (much slower).
Forecasting (statsmodels, a benchmark-only dependency: ``pip install -e ".[quality]"``)
    naive, seasonal naive, ETS (additive/multiplicative error-trend-season variants by
    AICc, damped trend included), ARIMA (d by KPSS, D by seasonal strength, (p, q, P, Q)
    by AICc, as auto.arima does) and Theta.
Language models
    interpolated Kneser–Ney character n-gram (order chosen on a validation part) and a
    torch 2-layer LSTM trained by truncated BPTT for a given wall time.
"""

from __future__ import annotations

import ctypes
import math
import os
import subprocess
import tempfile
import time
import warnings
from collections import Counter, defaultdict

import numpy as np

# -- classification ------------------------------------------------------------------------

_DTW_C = r"""
#include <math.h>
#include <stdlib.h>
/* DTW (full window, squared local cost) of a (n) and b (m); row buffers prev/cur of m+1.
   Returns INFINITY once a whole row exceeds bsf (early abandoning). */
static double dtw(const double *a, int n, const double *b, int m, double *prev, double *cur, double bsf) {
    prev[0] = 0.0;
    for (int j = 1; j <= m; j++) prev[j] = INFINITY;
    for (int i = 1; i <= n; i++) {
        double ai = a[i - 1], rowmin = INFINITY;
        cur[0] = INFINITY;
        for (int j = 1; j <= m; j++) {
            double d = ai - b[j - 1], best = prev[j - 1];
            if (prev[j] < best) best = prev[j];
            if (cur[j - 1] < best) best = cur[j - 1];
            cur[j] = d * d + best;
            if (cur[j] < rowmin) rowmin = cur[j];
        }
        if (rowmin > bsf) return INFINITY;
        double *t = prev; prev = cur; cur = t;
    }
    return prev[m];
}
/* index of the training series nearest to q under DTW */
int nn_dtw(const double *q, int n, const double *train, const long *offs, const int *lens, int ntrain) {
    int maxm = 0;
    for (int k = 0; k < ntrain; k++) if (lens[k] > maxm) maxm = lens[k];
    double *buf = malloc(sizeof(double) * 2 * (maxm + 1));
    double best = INFINITY; int arg = 0;
    for (int k = 0; k < ntrain; k++) {
        double d = dtw(q, n, train + offs[k], lens[k], buf, buf + maxm + 1, best);
        if (d < best) { best = d; arg = k; }
    }
    free(buf);
    return arg;
}
"""

_lib = None


def _dtw_lib():
    """The compiled kernel, or None without a working C compiler."""
    global _lib
    if _lib is None:
        d = tempfile.mkdtemp(prefix="rnnkit_quality_dtw_")
        src, so = os.path.join(d, "dtw.c"), os.path.join(d, "dtw.so")
        with open(src, "w") as f:
            f.write(_DTW_C)
        try:
            subprocess.run(["cc", "-O3", "-march=native", "-shared", "-fPIC", src, "-o", so, "-lm"],
                           check=True, capture_output=True)
            lib = ctypes.CDLL(so)
            lib.nn_dtw.restype = ctypes.c_int
            _lib = lib
        except (OSError, subprocess.CalledProcessError):
            _lib = False
    return _lib or None


def _dtw_numpy(a: np.ndarray, b: np.ndarray) -> float:
    """DTW by anti-diagonals: cells (i, j) with i + j = k depend only on diagonals k−1, k−2."""
    n, m = len(a), len(b)
    D = np.full((n + 1, m + 1), np.inf)
    D[0, 0] = 0.0
    for k in range(2, n + m + 1):
        i = np.arange(max(1, k - m), min(n, k - 1) + 1)
        j = k - i
        c = (a[i - 1] - b[j - 1]) ** 2
        D[i, j] = c + np.minimum(np.minimum(D[i - 1, j - 1], D[i - 1, j]), D[i, j - 1])
    return float(D[n, m])


def one_nn_dtw(train: list, y_train, test: list) -> list:
    """Predicted labels of ``test`` by its DTW-nearest training series (univariate lists)."""
    train = [np.ascontiguousarray(np.asarray(s, dtype=np.float64).ravel()) for s in train]
    test = [np.ascontiguousarray(np.asarray(s, dtype=np.float64).ravel()) for s in test]
    lib = _dtw_lib()
    out = []
    if lib is not None:
        flat = np.concatenate(train)
        lens = np.array([len(s) for s in train], dtype=np.int32)
        offs = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
        P = ctypes.POINTER
        args = (flat.ctypes.data_as(P(ctypes.c_double)), offs.ctypes.data_as(P(ctypes.c_long)),
                lens.ctypes.data_as(P(ctypes.c_int)), ctypes.c_int(len(train)))
        for q in test:
            k = lib.nn_dtw(q.ctypes.data_as(P(ctypes.c_double)), ctypes.c_int(len(q)), *args)
            out.append(y_train[k])
        return out
    for q in test:
        out.append(y_train[int(np.argmin([_dtw_numpy(q, s) for s in train]))])
    return out


def _resample(s: np.ndarray, length: int) -> np.ndarray:
    s = np.asarray(s, dtype=np.float64).ravel()
    if len(s) == length:
        return s
    return np.interp(np.linspace(0, len(s) - 1, length), np.arange(len(s)), s)


def one_nn_euclidean(train: list, y_train, test: list) -> list:
    """Predicted labels by the Euclidean-nearest training series (resampled to one length)."""
    L = max(len(np.asarray(s).ravel()) for s in train)
    A = np.stack([_resample(s, L) for s in train])
    B = np.stack([_resample(s, L) for s in test])
    d = (B ** 2).sum(1)[:, None] - 2 * B @ A.T + (A ** 2).sum(1)[None, :]
    return [y_train[k] for k in np.argmin(d, axis=1)]


# -- forecasting -------------------------------------------------------------------------------

def seasonal_naive(y: np.ndarray, h: int, m: int) -> np.ndarray:
    """ŷ_{n+k} = y_{n+k−m·(⌊k/m⌋+1)}, k = 0..h−1 (the same point one period back)."""
    n = len(y)
    return np.array([y[n + k - m * (k // m + 1)] for k in range(h)], dtype=np.float64)


def _quiet(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            return fn()


def ets_forecast(y: np.ndarray, h: int, m: int | None) -> np.ndarray:
    """The AICc-best of Holt-Winters variants: trend none/additive/damped × season none/add/mul."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    seasonal_ok = m is not None and m >= 2 and len(y) >= 2 * m + 2
    seasons = [None] + (["add"] + (["mul"] if np.all(y > 0) else []) if seasonal_ok else [])
    best, best_fc = math.inf, None
    for trend, damped in ((None, False), ("add", False), ("add", True)):
        for season in seasons:
            def fit():
                mod = ExponentialSmoothing(y, trend=trend, damped_trend=damped, seasonal=season,
                                           seasonal_periods=m if season else None,
                                           initialization_method="estimated")
                return mod.fit()
            try:
                res = _quiet(fit)
                aicc = float(res.aicc)
                fc = np.asarray(res.forecast(h), dtype=np.float64)
            except Exception:         # a variant that does not fit this series is skipped
                continue
            if np.all(np.isfinite(fc)) and math.isfinite(aicc) and aicc < best:
                best, best_fc = aicc, fc
    return best_fc if best_fc is not None else np.repeat(y[-1], h).astype(np.float64)


def _seasonal_strength(y: np.ndarray, m: int) -> float:
    """1 − Var(remainder)/Var(season + remainder) of a classical additive decomposition."""
    from statsmodels.tsa.seasonal import seasonal_decompose

    r = _quiet(lambda: seasonal_decompose(y, period=m, two_sided=True, extrapolate_trend="freq"))
    rem, sea = np.asarray(r.resid), np.asarray(r.seasonal)
    ok = np.isfinite(rem)
    v = np.var(sea[ok] + rem[ok])
    return 0.0 if v == 0 else max(0.0, 1.0 - np.var(rem[ok]) / v)


def _kpss_d(y: np.ndarray, max_d: int = 2) -> int:
    from statsmodels.tsa.stattools import kpss

    d = 0
    while d < max_d and len(y) > 10:
        try:
            p = _quiet(lambda: kpss(y, regression="c", nlags="auto")[1])
        except Exception:
            break
        if p >= 0.05:
            break
        y, d = np.diff(y), d + 1
    return d


def arima_forecast(y: np.ndarray, h: int, m: int | None, quick: bool = False) -> np.ndarray:
    """A small auto-ARIMA: D = 1 when the seasonal strength exceeds 0.64 (and 3 periods of
    data), d by KPSS tests on the (seasonally differenced) series, then the AICc-best
    (p, q) × (P, Q) over a grid (with a constant when d + D < 2)."""
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    seasonal = m is not None and m >= 2 and len(y) >= 3 * m
    D = 1 if seasonal and _seasonal_strength(y, m) > 0.64 else 0
    ys = y[m:] - y[:-m] if D else y
    d = _kpss_d(ys)
    pq = (0, 1) if quick else (0, 1, 2)
    PQ = (0, 1) if seasonal and m <= 24 else (0,)
    best, best_fc = math.inf, None
    for p in pq:
        for q in pq:
            for P in PQ:
                for Q in PQ:
                    trend = "c" if d + D == 0 else ("t" if d + D == 1 else None)
                    so = (P, D, Q, m) if seasonal and (P or D or Q) else (0, 0, 0, 0)

                    def fit():
                        mod = SARIMAX(y, order=(p, d, q), seasonal_order=so, trend=trend,
                                      enforce_stationarity=True, enforce_invertibility=True)
                        return mod.fit(disp=False, maxiter=200)
                    try:
                        res = _quiet(fit)
                        aicc = float(res.aicc)
                        fc = np.asarray(res.forecast(h), dtype=np.float64)
                    except Exception:
                        continue
                    if np.all(np.isfinite(fc)) and math.isfinite(aicc) and aicc < best:
                        best, best_fc = aicc, fc
    return best_fc if best_fc is not None else np.repeat(y[-1], h).astype(np.float64)


def theta_forecast(y: np.ndarray, h: int, m: int | None) -> np.ndarray:
    """The Theta method (Assimakopoulos & Nikolopoulos 2000), deseasonalised when m is known."""
    from statsmodels.tsa.forecasting.theta import ThetaModel

    use = m is not None and m >= 2 and len(y) >= 2 * m
    try:
        res = _quiet(lambda: ThetaModel(y, period=m if use else 1, deseasonalize=use).fit())
        fc = np.asarray(res.forecast(h), dtype=np.float64)
        if np.all(np.isfinite(fc)):
            return fc
    except Exception:
        pass
    return np.repeat(y[-1], h).astype(np.float64)


def mase(actual: np.ndarray, forecast: np.ndarray, history: np.ndarray, m: int) -> float:
    """mean |y − ŷ| / mean_{t ≥ m} |y_t − y_{t−m}| over the history (the M4 definition)."""
    lag = m if m and len(history) > m else 1
    scale = np.mean(np.abs(history[lag:] - history[:-lag]))
    return float(np.mean(np.abs(actual - forecast)) / (scale if scale > 0 else 1.0))


# -- character n-gram ----------------------------------------------------------------------------

class KneserNey:
    """Interpolated Kneser–Ney character model of order N (Chen & Goodman 1999, one discount
    per order, D_n = n1 / (n1 + 2 n2)):

        P_n(c | h) = max(k(hc) − D_n, 0) / k(h·) + D_n N1+(h·) / k(h·) · P_{n−1}(c | h')
        P_0(c)     = 1 / (V + 1)

    where k is the raw count at the highest order and the continuation count
    N1+(·hc) below it, h' is h without its first character, and a context never seen
    falls through to the lower order. One unseen-character slot keeps test text finite.
    """

    def __init__(self, text: str, order: int):
        self.N = order
        self.V = len(set(text)) + 1
        raw = [Counter(text[i:i + n] for i in range(len(text) - n + 1)) for n in range(1, order + 1)]
        counts = []                                   # counts[n-1]: the counts used at order n
        for n in range(1, order + 1):
            if n == order:
                counts.append(raw[n - 1])
            else:
                cont = Counter(g[1:] for g in raw[n])     # distinct left extensions of g
                counts.append(cont)
        self.counts = counts
        self.ctx_total, self.ctx_types, self.D = [], [], []
        for n, c in enumerate(counts, start=1):
            tot, typ = defaultdict(int), defaultdict(int)
            for g, k in c.items():
                tot[g[:-1]] += k
                typ[g[:-1]] += 1
            self.ctx_total.append(tot)
            self.ctx_types.append(typ)
            vals = np.fromiter(c.values(), dtype=np.int64)
            n1, n2 = np.sum(vals == 1), np.sum(vals == 2)
            self.D.append(float(n1 / (n1 + 2 * n2)) if n1 + n2 > 0 else 0.5)

    def bits_per_char(self, text: str, orders=None) -> dict:
        """{order: bits/char of ``text``} for each order ≤ N (each scored from its own recursion)."""
        orders = list(range(1, self.N + 1)) if orders is None else orders
        total = np.zeros(self.N + 1)
        for i in range(len(text)):
            c = text[i]
            p = 1.0 / self.V
            for n in range(1, self.N + 1):
                if i - (n - 1) < 0:
                    total[n] += -math.log2(p)
                    continue
                h = text[i - n + 1:i]
                tot = self.ctx_total[n - 1].get(h, 0)
                if tot:
                    D = self.D[n - 1]
                    k = self.counts[n - 1].get(h + c, 0)
                    p = max(k - D, 0.0) / tot + D * self.ctx_types[n - 1][h] / tot * p
                total[n] += -math.log2(p)
        return {n: total[n] / len(text) for n in orders}


def ngram_bits(train: str, test: str, max_order: int = 10) -> dict:
    """Order chosen on the last 10 % of ``train`` (model fitted on the rest), then refitted on
    all of ``train`` and scored on ``test``: {"order", "val_bits", "test_bits"}."""
    cut = int(len(train) * 0.9)
    val = KneserNey(train[:cut], max_order).bits_per_char(train[cut:])
    order = min(val, key=val.get)
    test_bits = KneserNey(train, order).bits_per_char(test, orders=[order])[order]
    return {"order": order, "val_bits": val[order], "test_bits": test_bits}


# -- torch LSTM ----------------------------------------------------------------------------------

def torch_lstm_bits(train: str, test: str, seconds: float, seed: int = 0) -> dict:
    """A 2-layer torch LSTM character model trained for ``seconds`` of wall time; test bits/char.

    Hand-tuned as a careful torch user would for a CPU budget: embedding 64, hidden 256
    (192 under 5 minutes, 128 under 90 s), dropout 0.1 (0.2 past 10 minutes), truncated
    BPTT over 100 characters with the state carried across windows, batch 32, AdamW
    (lr 3e-3, weight decay 0.01) with 2 % linear warm-up and cosine decay over the time
    budget, gradients clipped to norm 1; the test text is read as one stream. One thread,
    as rnnkit's training commands use by default.
    """
    import torch

    torch.manual_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)          # as rnnkit's training commands run by default (--threads 1)
    try:
        return _torch_lstm(torch, train, test, seconds)
    finally:
        torch.set_num_threads(threads)


def _torch_lstm(torch, train: str, test: str, seconds: float) -> dict:
    chars = sorted(set(train))
    idx = {c: i for i, c in enumerate(chars)}
    V = len(chars) + 1
    enc = lambda s: torch.tensor([idx.get(c, V - 1) for c in s], dtype=torch.long)  # noqa: E731
    tr, te = enc(train), enc(test)
    H = 128 if seconds < 90 else 192 if seconds < 300 else 256
    drop = 0.2 if seconds > 600 else 0.1
    B, T = 32, 100

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(V, 64)
            self.rnn = torch.nn.LSTM(64, H, num_layers=2, dropout=drop)
            self.drop = torch.nn.Dropout(drop)
            self.out = torch.nn.Linear(H, V)

        def forward(self, x, state):
            y, state = self.rnn(self.emb(x), state)
            return self.out(self.drop(y)), state

    net = Net()
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=0.01)
    L = (len(tr) - 1) // B
    xs = tr[:L * B].view(B, L).t().contiguous()          # (L, B) streams
    ys = tr[1:L * B + 1].view(B, L).t().contiguous()
    t0 = time.perf_counter()
    state, pos, steps = None, 0, 0
    lr0 = 3e-3
    while True:
        frac = (time.perf_counter() - t0) / seconds
        if frac >= 1.0:
            break
        warm = min(1.0, frac / 0.02)
        for g in opt.param_groups:
            g["lr"] = lr0 * warm * 0.5 * (1 + math.cos(math.pi * frac))
        if pos + T + 1 > L:
            pos, state = 0, None
        x, y = xs[pos:pos + T], ys[pos:pos + T]
        pos += T
        net.train()
        logits, state = net(x, state)
        state = tuple(s.detach() for s in state)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        steps += 1
    net.eval()
    total, state = 0.0, None
    with torch.no_grad():
        for s in range(0, len(te) - 1, 1000):
            x = te[s:min(s + 1000, len(te) - 1)]
            y = te[s + 1:s + 1 + len(x)]
            logits, state = net(x[:, None], state)
            total += float(torch.nn.functional.cross_entropy(logits[:, 0], y, reduction="sum"))
    return {"test_bits": total / (len(te) - 1) / math.log(2), "steps": steps, "hidden": H,
            "seconds": time.perf_counter() - t0}
