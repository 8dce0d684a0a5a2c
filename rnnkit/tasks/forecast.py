r"""Time-series forecasting: fit on a series, predict the next ``horizon`` steps, backtest.

The network is a many-to-one :class:`~rnnkit.models.SequenceRegressor` (recurrent
layer, last state, Linear head) that reads a window of the last ``lookback`` rows.

Data pipeline (all statistics from the training part only, so nothing of the
validation or test rows leaks into training):

    split     rows in time order: train | validation | test  (val_fraction, test_fraction)
    scale     z = (x − μ_train) / σ_train per column   (scaler="standard"; or "minmax")
    relative  z̃_{t} = z_{t} − z_{o−1}  for the series columns of a window ending at row o−1
              (relative=True): the network sees and predicts changes from the last
              observed value, so a level or trend outside the training range still
              forecasts; covariates are left as they are.

Strategies for a horizon of H steps and targets y (n_targets columns):

    direct     one model, H·n_targets outputs: ŷ_{o..o+H−1} = f(x_{o−L..o−1})
    recursive  a one-step model of every series column, rolled forward:
               ŷ_o = f(x_{o−L..o−1}),  ŷ_{o+1} = f(x_{o−L+1..o−1}, ŷ_o), …
               (needs every series column as a target, and future covariates if any)

Prediction intervals (``intervals=``):

    "quantile"    the head emits one output per quantile q ∈ ``quantiles`` and is trained
                  with the pinball loss ρ_q(u) = max(q·u, (q − 1)·u), u = y − ŷ_q; the
                  outputs are sorted across q at prediction time (monotone
                  rearrangement, Chernozhukov, Fernández-Val & Galichon 2010) so bands never cross.
    "mc_dropout"  dropout stays on at prediction time and ``n_samples`` forecasts are
                  drawn (Gal & Ghahramani 2016). Dropout alone only spreads the forecasts
                  by the model's own uncertainty, so each draw also gets the noise the
                  model leaves unexplained (Zhu & Laptev 2017):
                      ŷ^{(s)} = f_{mask s}(x) + ε^{(s)},   ε_{h,j} ~ N(0, σ²_{h,j}),
                      σ²_{h,j} = mean over validation windows of (y − f(x))²_{h,j}
                  (step h, target j; eval-mode f; the training windows when there is no
                  validation part). The bands are the empirical quantiles of the draws.
                  With the recursive strategy σ² is the one-step residual variance and
                  every sample path feeds back its own noisy draws.

Backtest (rolling origin): for every origin o (the first forecast row) the model sees
``series[:o]`` and forecasts rows o … o+H−1. Errors over all origins, steps and
targets, e = y − ŷ:

    MAE   = mean |e|                 RMSE  = sqrt(mean e²)
    MAPE  = 100 · mean |e| / |y|     (over y ≠ 0)
    sMAPE = 100 · mean 2|e| / (|y| + |ŷ|)   (a 0/0 term counts as 0)
    MASE  = mean |e| / s_j,   s_j = mean_{t ≥ m} |y_{t,j} − y_{t−m,j}|  over the TRAINING part

(Hyndman & Koehler 2006). The scale uses the seasonal lag m = period when a period
is known (given or inferred) and m = 1 otherwise; ``mase_lag_`` records which. The same
windows are scored for two baselines:

    naive            ŷ_{o+h} = y_{o−1}                          (last value)
    seasonal naive   ŷ_{o+h} = y_{o+h−m·(⌊h/m⌋+1)}              (same point one period back)

Period inference (``period="auto"``): the autocorrelation r_k of the linearly
detrended first target of the training part, for lags 2 ≤ k ≤ n/3; the period is the
lag of the highest local maximum of r_k if that maximum exceeds 0.3, else none.

A fitted forecaster is saved as a checkpoint directory (:mod:`rnnkit.io`):
``config.json`` (the model config; in ``meta`` ``"task": "forecast"``, the
parameters, the scaler and the data description) and ``model.npz``.
``fit(out_dir=D)`` also leaves the Trainer's ``metrics.jsonl`` and ``best/``,
``forecast.png``, ``training.png`` and ``report.html`` in D.
"""

from __future__ import annotations

import os

import numpy as np

from rnnkit._checks import check_choice, check_positive_int
from rnnkit.errors import CheckpointError, RnnkitError
from rnnkit.tasks._common import (check_cell, check_flag, check_number, check_seed, check_task_dtype,
                                  load_task, restore_model, save_task)

__all__ = ["Forecaster", "infer_period", "forecast_metrics"]

TASK = "forecast"
STRATEGIES = ("direct", "recursive")
INTERVALS = (None, "quantile", "mc_dropout")


# -- small helpers ------------------------------------------------------------------------



def _optional_int(value, name: str, where: str, minimum: int = 1):
    return None if value is None else check_positive_int(value, name, where, minimum=minimum)




def _as_values(x, name: str, where: str) -> np.ndarray:
    """A float64 (N, F) array from (N,) or (N, F) numbers; NaN gaps are a clear error."""
    arr = np.asarray(x)
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iuf":
        raise TypeError(f"{where}: {name} must hold numbers, got dtype {arr.dtype}"
                        + (" (a column of text? give the numeric columns only)" if arr.dtype.kind in "OUS" else ""))
    arr = arr.astype(np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{where}: expected {name} with 1 or 2 dims (N,) or (N, F), got {arr.ndim} "
                         f"(shape {arr.shape})")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{where}: {name} is empty (shape {arr.shape})")
    gaps = np.isnan(arr)
    if gaps.any():
        r, c = map(int, np.argwhere(gaps)[0])
        raise RnnkitError(f"{where}: {name} has {int(gaps.sum())} missing values (NaN), the first at row {r}, "
                          f"column {c}; a forecaster needs an evenly spaced series without gaps: fill them "
                          f"first (e.g. rnnkit.data.read_csv(..., fill='interpolate'))")
    if not np.isfinite(arr).all():
        raise ValueError(f"{where}: {name} contains inf")
    return arr


def infer_period(values, max_lag: int | None = None, threshold: float = 0.3) -> int | None:
    """The dominant seasonal period of a series by autocorrelation (module docstring).

    Shapes:
        values: (N,) numbers  ->  int period in [2, N/3], or None when no clear one
    """
    y = np.asarray(values, dtype=np.float64).ravel()
    n = y.size
    if n < 8:
        return None
    t = np.arange(n, dtype=np.float64)
    y = y - np.polyval(np.polyfit(t, y, 1), t)                       # remove a linear trend
    denom = float(np.dot(y, y))
    if denom <= 0:
        return None
    K = n // 3 if max_lag is None else min(int(max_lag), n - 2)
    if K < 3:
        return None
    # all lags at once through the FFT (zero-padded: a linear, not circular, correlation)
    size = 1 << int(np.ceil(np.log2(2 * n)))
    f = np.fft.rfft(y, size)
    r = np.fft.irfft(f * np.conj(f), size)[: K + 2] / denom
    best, best_r = None, threshold
    for k in range(2, K + 1):
        if r[k] > r[k - 1] and r[k] >= r[k + 1] and r[k] > best_r:
            best, best_r = k, float(r[k])
    return best


def forecast_metrics(actual, forecast, scale=None) -> dict:
    """MAE, RMSE, MAPE (%), sMAPE (%) and, with ``scale``, MASE (module docstring).

    Shapes:
        actual, forecast: (..., n_targets) the same shape; scale: (n_targets,) or None
    """
    y = np.asarray(actual, dtype=np.float64)
    f = np.asarray(forecast, dtype=np.float64)
    if y.shape != f.shape:
        raise ValueError(f"forecast_metrics: actual {y.shape} and forecast {f.shape} differ in shape")
    e = y - f
    ae = np.abs(e)
    nz = y != 0
    den = np.abs(y) + np.abs(f)
    smape_terms = np.where(den > 0, 2.0 * ae / np.where(den > 0, den, 1.0), 0.0)
    out = {
        "mae": float(ae.mean()),
        "rmse": float(np.sqrt((e * e).mean())),
        "mape": float(100.0 * (ae[nz] / np.abs(y[nz])).mean()) if nz.any() else float("nan"),
        "smape": float(100.0 * smape_terms.mean()),
    }
    if scale is not None:
        s = np.asarray(scale, dtype=np.float64)
        out["mase"] = float((ae / s).mean())
    return out


def _seasonal_naive(values: np.ndarray, origin: int, horizon: int, m: int) -> np.ndarray:
    """ŷ_{o+h} = y_{o+h−m(⌊h/m⌋+1)}.  Shapes: values (N, T) -> (horizon, T)"""
    h = np.arange(horizon)
    return values[origin + h - m * (h // m + 1)]


# -- the task -----------------------------------------------------------------------------

class Forecaster:
    """A recurrent forecaster of the next ``horizon`` rows of a (multivariate) series.

    Args:
        lookback: rows the network reads (None: 2·period when a period is known,
            else max(2·horizon, 24); shortened to leave windows when data are short).
        horizon: rows to forecast (H).
        strategy: "direct" (H·n_targets outputs at once) or "recursive" (a one-step
            model rolled forward).
        cell, hidden_size, num_layers, dropout: the recurrent network ("lstm", "gru",
            "rnn", "rnn-relu"); dropout acts between layers and before the head.
        loss: "mse" (default), "mae" or "huber" (ignored with intervals="quantile").
        intervals: None, "quantile" (pinball loss on ``quantiles``, direct strategy only)
            or "mc_dropout" (needs dropout > 0).
        quantiles: the quantile levels of the bands (default 0.1, 0.5, 0.9: an 80 %
            interval around the median).
        scaler: "standard" (default) or "minmax", fitted on the training part.
        relative: inputs and targets relative to the window's last value (default True).
        period: the seasonal period in rows, "auto" (inferred from the training part)
            or None (no seasonal baseline; MASE then scales by the one-step naive).
        batch_size, dtype, seed: training batches, float dtype, the seed of weights,
            data order and dropout.

    After :meth:`fit`: ``model_``, ``history_``, ``scaler_``, ``lookback_``, ``period_``,
    ``mase_lag_``, ``mase_scale_``, ``columns_``, ``targets_``, ``split_`` (rows of the
    train/validation/test parts) and ``test_backtest_`` (the backtest on the test part,
    or None).
    """

    def __init__(self, lookback: int | None = None, horizon: int = 12, strategy: str = "direct",
                 cell: str = "lstm", hidden_size: int = 64, num_layers: int = 1, dropout: float = 0.0,
                 loss: str = "mse", intervals: str | None = None, quantiles=(0.1, 0.5, 0.9),
                 scaler: str = "standard", relative: bool = True, period="auto", batch_size: int = 32,
                 dtype: str = "float32", seed: int = 0):
        where = "Forecaster"
        self.lookback = _optional_int(lookback, "lookback", where)
        self.horizon = check_positive_int(horizon, "horizon", where)
        self.strategy = check_choice(strategy, "strategy", STRATEGIES, where)
        self.cell = check_cell(cell, where)
        self.hidden_size = check_positive_int(hidden_size, "hidden_size", where)
        self.num_layers = check_positive_int(num_layers, "num_layers", where)
        self.dropout = check_number(dropout, "dropout", where, 0.0, 1.0, high_open=True)
        self.loss = check_choice(loss, "loss", ("mse", "mae", "huber"), where)
        self.intervals = check_choice(intervals, "intervals", INTERVALS, where)
        q = sorted(check_number(v, "quantiles", where, 0.0, 1.0, low_open=True, high_open=True)
                   for v in (quantiles if isinstance(quantiles, (list, tuple, np.ndarray)) else [quantiles]))
        if len(q) < 2 or len(set(q)) != len(q):
            raise ValueError(f"{where}: quantiles must be at least 2 distinct levels in (0, 1), got {quantiles!r}")
        self.quantiles = q
        if self.intervals == "quantile" and self.strategy == "recursive":
            raise ValueError(f"{where}: intervals='quantile' needs strategy='direct' (a recursive forecast "
                             f"feeds one value back per step); use intervals='mc_dropout' with recursive")
        if self.intervals == "mc_dropout" and self.dropout == 0.0:
            raise ValueError(f"{where}: intervals='mc_dropout' needs dropout > 0 (e.g. dropout=0.2)")
        self.scaler = check_choice(scaler, "scaler", ("standard", "minmax"), where)
        self.relative = check_flag(relative, "relative", where)
        if period != "auto" and period is not None:
            period = check_positive_int(period, "period", where, minimum=2)
        self.period = period
        self.batch_size = check_positive_int(batch_size, "batch_size", where)
        self.dtype = check_task_dtype(dtype, where)
        self.seed = check_seed(seed, where)
        self.model_ = None
        self.history_ = None

    # -- parameters ------------------------------------------------------------------------
    def get_params(self) -> dict:
        """The constructor arguments (JSON-able)."""
        return {"lookback": self.lookback, "horizon": self.horizon, "strategy": self.strategy,
                "cell": self.cell, "hidden_size": self.hidden_size, "num_layers": self.num_layers,
                "dropout": self.dropout, "loss": self.loss, "intervals": self.intervals,
                "quantiles": list(self.quantiles), "scaler": self.scaler, "relative": self.relative,
                "period": self.period, "batch_size": self.batch_size, "dtype": self.dtype, "seed": self.seed}

    def __repr__(self) -> str:
        return "Forecaster(" + ", ".join(f"{k}={v!r}" for k, v in self.get_params().items()) + ")"

    def _check_fitted(self, what: str) -> None:
        if self.model_ is None:
            raise RnnkitError(f"Forecaster.{what}: the forecaster is not fitted; call fit(series) or "
                              f"Forecaster.load(directory) first")

    # -- reading data ----------------------------------------------------------------------
    def _read(self, series, covariates, columns, covariate_columns, date_column, fill, where):
        """(values (N, F), covariates (N, C) or None, column names, dates or None)."""
        if isinstance(series, (str, os.PathLike)):
            from rnnkit.data.series import read_csv

            cov_cols = [] if covariate_columns is None else (
                [covariate_columns] if isinstance(covariate_columns, (str, int)) else list(covariate_columns))
            if covariates is not None:
                raise ValueError(f"{where}: with a CSV path give covariate_columns (names in the file), "
                                 f"not a covariates array")
            if columns is None:
                data = read_csv(series, None, date_column, fill=fill)
                keep = [i for i, c in enumerate(data.columns) if c not in cov_cols and i not in cov_cols]
                values = data.values[:, keep]
                names = [data.columns[i] for i in keep]
            else:
                cols = [columns] if isinstance(columns, (str, int)) else list(columns)
                data = read_csv(series, cols, date_column, fill=fill)
                values, names = data.values, data.columns
            if not names:
                raise RnnkitError(f"{where}: {os.fspath(series)}: no series columns left besides the covariates")
            cov = None
            if cov_cols:
                cov = read_csv(series, cov_cols, date_column, fill=fill).values
            return values, cov, list(names), data.dates
        if columns is not None or covariate_columns is not None or date_column is not None:
            raise ValueError(f"{where}: columns, covariate_columns and date_column apply to a CSV path; "
                             f"with an array pass the values (and covariates=) directly")
        values = _as_values(series, "series", where)
        cov = None if covariates is None else _as_values(covariates, "covariates", where)
        if cov is not None and len(cov) != len(values):
            raise ValueError(f"{where}: covariates must have one row per series row ({len(values)}), got {len(cov)}")
        names = ["y"] if values.shape[1] == 1 else [f"y{i}" for i in range(values.shape[1])]
        return values, cov, names, None

    def _check_like_fit(self, values, cov, where, name="series"):
        if values.shape[1] != self.n_features_:
            raise ValueError(f"{where}: {name} has {values.shape[1]} columns, the forecaster was fitted on "
                             f"{self.n_features_}")
        if self.n_covariates_ and cov is None:
            raise ValueError(f"{where}: the forecaster was fitted with {self.n_covariates_} covariate columns; "
                             f"pass covariates= (one row per {name} row)")
        if not self.n_covariates_ and cov is not None:
            raise ValueError(f"{where}: the forecaster was fitted without covariates, got covariates")
        if cov is not None and cov.shape[1] != self.n_covariates_:
            raise ValueError(f"{where}: covariates have {cov.shape[1]} columns, expected {self.n_covariates_}")

    # -- windows and the network ----------------------------------------------------------------
    def _scaled(self, values, cov):
        full = values if cov is None else np.concatenate([values, cov], axis=1)
        return self.scaler_.transform(full)

    def _inputs(self, zwin: np.ndarray):
        """Scaled windows -> network input and the reference (last) values.

        Shapes:
            zwin (n, L, F + C)  ->  x (L, n, F + C) in the model dtype, ref (n, F)
        """
        F = self.n_features_
        ref = zwin[:, -1, :F].copy() if self.relative else np.zeros((zwin.shape[0], F))
        x = zwin.copy()
        x[:, :, :F] -= ref[:, None, :]
        return np.ascontiguousarray(x.transpose(1, 0, 2)).astype(self.dtype), ref

    def _out_cols(self) -> list[int]:
        """Series columns the network outputs: the targets (direct), every column (recursive)."""
        return list(self.targets_) if self.strategy == "direct" else list(range(self.n_features_))

    def _train_arrays(self, z: np.ndarray, lo: int, hi: int):
        """Windows whose targets lie in rows [lo, hi) of the scaled series z.

        Shapes:
            z (N, F + C) -> x (L, n, F + C), y (n, out)
        """
        L = self.lookback_
        H = self.horizon if self.strategy == "direct" else 1
        cols = self._out_cols()
        origins = np.arange(max(lo, L), hi - H + 1)
        win = z[origins[:, None] + np.arange(-L, 0)]                         # (n, L, F + C)
        x, ref = self._inputs(win)
        fut = z[origins[:, None] + np.arange(H)][:, :, cols]                 # (n, H, out)
        y = fut - ref[:, None, cols]
        return x, y.reshape(len(origins), -1).astype(self.dtype)

    def _build_model(self):
        from rnnkit.models import SequenceRegressor

        H = self.horizon if self.strategy == "direct" else 1
        quantile = self.intervals == "quantile"
        return SequenceRegressor(output_size=H * len(self._out_cols()), cell=self.cell,
                                 hidden_size=self.hidden_size, num_layers=self.num_layers,
                                 input_size=self.n_features_ + self.n_covariates_,
                                 loss="quantile" if quantile else self.loss,
                                 quantiles=list(self.quantiles) if quantile else None, pooling="last",
                                 dropout=self.dropout, dtype=self.dtype, seed=self.seed)

    def _forward(self, x: np.ndarray, sample: bool) -> np.ndarray:
        """The network's raw outputs; ``sample`` keeps dropout on (Monte-Carlo dropout).

        Shapes:
            x (L, n, F + C) -> (n, out) or (n, out, Q) for quantile models
        """
        m = self.model_
        if not sample:
            return m.predict(x)
        # the SequenceRegressor with pooling="last" and full-length windows, in training
        # mode so both dropouts (between layers, before the head) draw fresh masks
        was = m.training
        m.train()
        try:
            h, _ = m.rnn.forward(x)
            raw = m.head.forward(m.drop.forward(h[-1]))
        finally:
            m.train(was)
        return raw

    def _forecast_scaled(self, zwin: np.ndarray, zfut_cov, samples: int = 0, rng=None) -> np.ndarray:
        """Forecasts in scaled units for windows ``zwin``.

        ``samples`` > 0 draws that many Monte-Carlo dropout paths per window, each with
        residual noise N(0, noise_std_²) from ``rng`` added (module docstring).

        Shapes:
            zwin (n, L, F + C), zfut_cov (n, H, C) or None
            -> (n, H, n_targets), (n, H, n_targets, Q) for quantile models,
               or (S, n, H, n_targets) with samples = S
        """
        n, H, tg = zwin.shape[0], self.horizon, list(self.targets_)
        S = max(samples, 1)
        win = np.tile(zwin, (S, 1, 1)) if samples else zwin                   # sample-major (S·n, L, D)
        if self.strategy == "direct":
            x, ref = self._inputs(win)
            raw = self._forward(x, sample=bool(samples)).astype(np.float64)
            if samples:
                raw = raw + rng.standard_normal(raw.shape) * self.noise_std_.reshape(1, -1)
            if self.intervals == "quantile":
                out = raw.reshape(len(win), H, len(tg), len(self.quantiles)) + ref[:, None, tg, None]
            else:
                out = raw.reshape(len(win), H, len(tg)) + ref[:, None, tg]
        else:
            F = self.n_features_
            cur = win.copy()
            steps = []
            fut = None if zfut_cov is None else (np.tile(zfut_cov, (S, 1, 1)) if samples else zfut_cov)
            for h in range(H):
                x, ref = self._inputs(cur)
                nxt = self._forward(x, sample=bool(samples)).astype(np.float64).reshape(len(cur), F)
                if samples:
                    nxt = nxt + rng.standard_normal(nxt.shape) * self.noise_std_.reshape(1, F)
                nxt = nxt + ref
                steps.append(nxt)
                row = nxt if fut is None else np.concatenate([nxt, fut[:, h]], axis=1)
                cur = np.concatenate([cur[:, 1:], row[:, None]], axis=1)
            out = np.stack(steps, axis=1)[:, :, tg]                           # (S·n, H, n_targets)
        if samples:
            out = out.reshape((S, n) + out.shape[1:])
        return out

    def _unscale(self, z: np.ndarray, axis_targets: int = -1) -> np.ndarray:
        """Scaled target values -> original units (the targets on axis ``axis_targets``)."""
        moved = np.moveaxis(z, axis_targets, -1)
        return np.moveaxis(self.scaler_.inverse_transform(moved, columns=list(self.targets_)), -1, axis_targets)

    def _windows_for(self, values, cov, origins) -> np.ndarray:
        """Scaled input windows of lookback_ rows ending just before each origin.

        Shapes:
            values (N, F), cov (N, C) or None, origins (n,)  ->  (n, lookback_, F + C)
        """
        z = self._scaled(values, cov)
        return z[np.asarray(origins)[:, None] + np.arange(-self.lookback_, 0)]

    def _scale_cov(self, cov: np.ndarray) -> np.ndarray:
        F, C = self.n_features_, self.n_covariates_
        cols = list(range(F, F + C))
        return self.scaler_.transform(cov, columns=cols)

    # -- fit -----------------------------------------------------------------------------------
    def fit(self, series, covariates=None, *, columns=None, targets=None, covariate_columns=None,
            date_column=None, fill: str = "error", val_fraction: float = 0.15, test_fraction: float = 0.15,
            epochs: int = 100, time_limit: float | None = None, max_steps: int | None = None,
            optimizer: str = "adam", lr: float = 5e-3, clip: float | None = 1.0, patience: int | None = 10,
            out_dir=None, quiet: bool = True) -> "Forecaster":
        """Train on ``series``; returns self.

        Args:
            series: an array (N,) or (N, F), or a CSV path (read with
                :func:`rnnkit.data.read_csv`: ``columns`` are the series columns, default
                every column but ``date_column`` and ``covariate_columns``; ``fill`` says
                what to do with empty cells: "error", "interpolate", "ffill", "drop").
            covariates: (N, C) extra inputs known for the past (arrays only).
            targets: which series columns to forecast (indices, or names for a CSV;
                default all). The other columns are inputs only (direct strategy).
            val_fraction, test_fraction: the time-ordered validation part (early
                stopping, best weights) and test part (scored by a backtest, in
                ``test_backtest_`` and the report). test_fraction may be 0.
            epochs, time_limit, max_steps, optimizer, lr, clip, patience: the Trainer
                (clip is the global gradient-norm bound; patience counts epochs
                without a better validation loss).
            out_dir: write the run directory (module docstring).
            quiet: False shows a progress bar (on a terminal) or log lines.

        Shapes:
            series (N,) or (N, F), covariates (N, C)
        """
        from rnnkit.data.series import make_scaler, split_sizes
        from rnnkit.train import TrainConfig, Trainer

        where = "Forecaster.fit"
        check_choice(fill, "fill", ("error", "interpolate", "ffill", "drop"), where)
        values, cov, names, dates = self._read(series, covariates, columns, covariate_columns, date_column,
                                               fill, where)
        # how a CSV was read, so backtest(path) reads a file of the same layout the same way
        self.csv_options_ = None
        if isinstance(series, (str, os.PathLike)):
            self.csv_options_ = {"columns": columns if columns is None or isinstance(columns, (str, int))
                                 else list(columns),
                                 "covariate_columns": covariate_columns if covariate_columns is None
                                 or isinstance(covariate_columns, (str, int)) else list(covariate_columns),
                                 "date_column": date_column, "fill": fill}
        N, F = values.shape
        # a 1-D series (or one CSV column) gets 1-D forecasts (H,); an (N, 1) array gets (H, 1)
        self.univariate_ = F == 1 and (isinstance(series, (str, os.PathLike)) or np.ndim(series) == 1)
        self.n_features_, self.n_covariates_ = F, 0 if cov is None else cov.shape[1]
        self.columns_ = names
        self.targets_ = self._resolve_targets(targets, names, where)
        if self.strategy == "recursive" and len(self.targets_) != F:
            raise ValueError(f"{where}: strategy='recursive' feeds its forecasts back as inputs, so it must "
                             f"forecast every series column ({F}); got targets {targets!r}. Use "
                             f"strategy='direct', or pass the other columns as covariates")
        n_train, n_val, n_test = split_sizes(N, val_fraction, test_fraction)
        self.split_ = {"train": n_train, "validation": n_val, "test": n_test}
        H = self.horizon
        train_vals = values[:n_train]

        # period, lookback
        if self.period == "auto":
            self.period_ = infer_period(train_vals[:, self.targets_[0]])
        else:
            self.period_ = self.period
        self.lookback_ = self._choose_lookback(n_train)
        need = self.lookback_ + (H if self.strategy == "direct" else 1)
        if need > n_train:
            raise RnnkitError(
                f"{where}: the training part has {n_train} rows (of {N}; val_fraction={val_fraction}, "
                f"test_fraction={test_fraction}), too short for lookback={self.lookback_} + "
                f"horizon={H if self.strategy == 'direct' else 1} = {need}; use a shorter lookback or "
                f"horizon, or more data")
        if n_val and n_val < (H if self.strategy == "direct" else 1):
            raise RnnkitError(f"{where}: the validation part has {n_val} rows, fewer than horizon={H}; "
                              f"raise val_fraction (or set it to 0 to train without early stopping)")

        # scaling and the MASE scale from the training part only
        full = values if cov is None else np.concatenate([values, cov], axis=1)
        self.scaler_ = make_scaler(self.scaler).fit(full[:n_train])
        m = self.period_ if self.period_ is not None and self.period_ < n_train else 1
        self.mase_lag_ = m
        diffs = np.abs(train_vals[m:, self.targets_] - train_vals[:-m, self.targets_])
        scale = diffs.mean(axis=0)
        self.mase_scale_ = np.where(scale > 0, scale, 1.0)

        z = self.scaler_.transform(full)
        x_tr, y_tr = self._train_arrays(z, 0, n_train)
        val_batches = None
        if n_val:
            x_va, y_va = self._train_arrays(z, n_train, n_train + n_val)
            val_batches = [{"x": x_va[:, i:i + 256], "y": y_va[i:i + 256]} for i in range(0, y_va.shape[0], 256)]
        n = y_tr.shape[0]
        bs = min(self.batch_size, n)

        def train_batches(epoch, rng):
            order = rng.permutation(n)
            # a last batch of fewer than half a batch joins the one before (no noisy tiny steps)
            starts = list(range(0, n, bs))
            if len(starts) > 1 and n - starts[-1] < bs // 2:
                starts.pop()
            for i, s in enumerate(starts):
                e = starts[i + 1] if i + 1 < len(starts) else n
                idx = order[s:e]
                yield {"x": x_tr[:, idx], "y": y_tr[idx]}

        self.model_ = self._build_model()
        config = TrainConfig(epochs=check_positive_int(epochs, "epochs", where), max_steps=max_steps,
                             time_limit=time_limit, optimizer=optimizer, lr=lr, clip_norm=clip,
                             patience=patience if val_batches is not None else None, restore_best=True,
                             seed=self.seed, quiet=quiet, log_every=max(1, min(50, -(-n // bs))))
        trainer = Trainer(self.model_, config, None if out_dir is None else os.fspath(out_dir))
        self.history_ = trainer.fit(lambda e, r: list(train_batches(e, r)), val_batches)
        self.model_.eval()
        # residual spread for the Monte-Carlo bands, on data the weights were not fitted to
        x_res, y_res = (x_va, y_va) if n_val else (x_tr, y_tr)
        if self.intervals == "quantile":
            self.noise_std_ = np.zeros(y_res.shape[1])           # the quantile head carries the spread
        else:
            resid = y_res.astype(np.float64) - np.asarray(self._forward(x_res, sample=False), dtype=np.float64)
            self.noise_std_ = np.sqrt((resid ** 2).mean(axis=0))                    # (H·out,)

        self.test_backtest_ = None
        if n_test >= H:
            self.test_backtest_ = self.backtest(values, cov, start=n_train + n_val, seed=self.seed)
        if out_dir is not None:
            self.save(out_dir)
            self._write_run(out_dir, values, cov, dates)
        return self

    def _resolve_targets(self, targets, names, where) -> list[int]:
        F = len(names)
        if targets is None:
            return list(range(F))
        items = [targets] if isinstance(targets, (str, int, np.integer)) else list(targets)
        out = []
        for t in items:
            if isinstance(t, str):
                if t not in names:
                    raise ValueError(f"{where}: targets names unknown column {t!r}; series columns: {names}")
                out.append(names.index(t))
            elif isinstance(t, (int, np.integer)) and not isinstance(t, bool) and -F <= t < F:
                out.append(int(t) % F)
            else:
                raise ValueError(f"{where}: targets must be column indices in [0, {F - 1}] or names, got {t!r}")
        if not out or len(set(out)) != len(out):
            raise ValueError(f"{where}: targets must name distinct columns, got {targets!r}")
        return out

    def _choose_lookback(self, n_train: int) -> int:
        if self.lookback is not None:
            return self.lookback
        H = self.horizon if self.strategy == "direct" else 1
        want = 2 * self.period_ if self.period_ else max(2 * self.horizon, 24)
        # leave at least half of the training rows as window origins
        room = max(2, n_train // 2 - H)
        return int(max(2, min(want, room)))

    # -- prediction ----------------------------------------------------------------------------
    def _history(self, history, covariates, where):
        values = _as_values(history, "history", where)
        cov = None if covariates is None else _as_values(covariates, "covariates", where)
        self._check_like_fit(values, cov, where, "history")
        if cov is not None and len(cov) != len(values):
            raise ValueError(f"{where}: covariates must have one row per history row ({len(values)}), got {len(cov)}")
        if len(values) < self.lookback_:
            raise RnnkitError(f"{where}: history has {len(values)} rows, the forecaster reads the last "
                              f"lookback={self.lookback_}")
        return values, cov

    def _future_cov(self, future_covariates, where):
        if not (self.n_covariates_ and self.strategy == "recursive"):
            return None
        if future_covariates is None:
            raise ValueError(f"{where}: a recursive forecaster with covariates needs future_covariates "
                             f"({self.horizon} rows, one per forecast step)")
        fc = _as_values(future_covariates, "future_covariates", where)
        if fc.shape != (self.horizon, self.n_covariates_):
            raise ValueError(f"{where}: expected future_covariates of shape {(self.horizon, self.n_covariates_)}, "
                             f"got {fc.shape}")
        return fc

    def _shape_out(self, a: np.ndarray) -> np.ndarray:
        """(..., H, n_targets) -> (..., H) for a univariate forecaster."""
        return a[..., 0] if self.univariate_ and len(self.targets_) == 1 else a

    def predict(self, history, covariates=None, future_covariates=None) -> np.ndarray:
        """Forecast the ``horizon`` rows after ``history`` (original units).

        The point forecast is the median for intervals="quantile" and the dropout-free
        network otherwise.

        Shapes:
            history (N,) or (N, F) with N >= lookback_, covariates (N, C),
            future_covariates (H, C) (recursive with covariates only)
            -> (H,) for a univariate series, else (H, n_targets)
        """
        self._check_fitted("predict")
        where = "Forecaster.predict"
        values, cov = self._history(history, covariates, where)
        fc = self._future_cov(future_covariates, where)
        zwin = self._windows_for(values, cov, [len(values)])
        zfc = None if fc is None else self._scale_cov(fc)[None]
        out = self._forecast_scaled(zwin, zfc)
        if self.intervals == "quantile":
            out = np.sort(out, axis=-1)[..., self._median_index()]
        return self._shape_out(self._unscale(out)[0])

    def _median_index(self) -> int:
        return int(np.argmin(np.abs(np.asarray(self.quantiles) - 0.5)))

    def predict_interval(self, history, covariates=None, future_covariates=None, n_samples: int = 100,
                         seed: int | None = None) -> dict:
        """Forecast with prediction bands: {"lower", "median", "upper", "quantiles"}.

        "lower"/"upper" are the lowest and highest of ``quantiles`` (an 80 % band for
        0.1/0.9) and "quantiles" all levels, stacked on a last axis. intervals="quantile"
        reads them off the quantile head (sorted across levels); "mc_dropout" draws
        ``n_samples`` forecasts with dropout on (``seed`` fixes the draw).

        Shapes:
            -> lower, median, upper like :meth:`predict`; quantiles (..., Q)
        """
        self._check_fitted("predict_interval")
        where = "Forecaster.predict_interval"
        if self.intervals is None:
            raise RnnkitError(f"{where}: the forecaster was built without intervals; use "
                              f"Forecaster(intervals='quantile') or intervals='mc_dropout' (with dropout > 0)")
        values, cov = self._history(history, covariates, where)
        fc = self._future_cov(future_covariates, where)
        zwin = self._windows_for(values, cov, [len(values)])
        zfc = None if fc is None else self._scale_cov(fc)[None]
        q = self._bands(zwin, zfc, n_samples, seed, where)[0]                 # (H, T, Q)
        return self._band_dict(q)

    def _band_dict(self, q: np.ndarray) -> dict:
        out = self._shape_out(np.moveaxis(self._unscale(q, axis_targets=-2), -1, 0))  # (Q, ...)
        return {"lower": out[0], "median": out[self._median_index()], "upper": out[-1],
                "quantiles": np.moveaxis(out, 0, -1), "levels": list(self.quantiles)}

    def _bands(self, zwin, zfc, n_samples, seed, where) -> np.ndarray:
        """Quantile forecasts in scaled units.  Shapes: -> (n, H, n_targets, Q), sorted over Q"""
        if self.intervals == "quantile":
            return np.sort(self._forecast_scaled(zwin, zfc), axis=-1)
        n_samples = check_positive_int(n_samples, "n_samples", where, minimum=2)
        if seed is not None:
            self._reseed_dropout(seed)
        rng = np.random.default_rng(None if seed is None else [seed, 2])
        draws = self._forecast_scaled(zwin, zfc, samples=n_samples, rng=rng)  # (S, n, H, T)
        return np.moveaxis(np.quantile(draws, self.quantiles, axis=0), 0, -1)

    def _reseed_dropout(self, seed: int) -> None:
        from rnnkit.layers import Dropout, Recurrent

        seed = check_positive_int(seed, "seed", "Forecaster", minimum=0)
        for i, mod in enumerate((self.model_.drop, self.model_.rnn)):
            if isinstance(mod, (Dropout, Recurrent)):
                for name, value in vars(mod).items():
                    if isinstance(value, np.random.Generator):
                        fresh = np.random.default_rng([seed, i])
                        value.bit_generator.state = fresh.bit_generator.state

    # -- evaluation ----------------------------------------------------------------------------
    def backtest(self, series, covariates=None, n_origins: int | None = None, step: int = 1,
                 start: int | None = None, n_samples: int = 100, seed: int | None = None) -> dict:
        """Rolling-origin evaluation of the model and the naive baselines (module docstring).

        Origins (first forecast rows) run from ``start`` (default: the first row with a
        full lookback window and, for the seasonal baseline, one period of history)
        in steps of ``step`` up to N − H; ``n_origins`` keeps the last ones. The model
        is not refitted. MASE divides by the training part's scale ``mase_scale_``.
        ``n_samples`` and ``seed`` are the Monte-Carlo draws of intervals="mc_dropout".

        Returns a dict: "metrics" {"model", "naive", "seasonal_naive" (None without a
        period)} each {"mae", "rmse", "mape", "smape", "mase"}; "origins" (n,);
        "actual", "forecast", "naive", "seasonal_naive" arrays (n, H, n_targets); with
        intervals also "lower", "upper" and "coverage" (the fraction of actual values
        inside [lower, upper]); "period", "mase_lag", "horizon".

        Shapes:
            series (N,) or (N, F) (or a CSV path, read with fit's columns, covariate_columns,
            date_column and fill), covariates (N, C)
        """
        self._check_fitted("backtest")
        where = "Forecaster.backtest"
        if isinstance(series, (str, os.PathLike)):
            opts = self.csv_options_ or {"columns": None, "covariate_columns": None, "date_column": None,
                                         "fill": "error"}
            values, cov, _, _ = self._read(series, None, opts["columns"], opts["covariate_columns"],
                                           opts["date_column"], opts["fill"], where)
        else:
            values = _as_values(series, "series", where)
            cov = None if covariates is None else _as_values(covariates, "covariates", where)
        self._check_like_fit(values, cov, where)
        step = check_positive_int(step, "step", where)
        N, H, L = len(values), self.horizon, self.lookback_
        m = self.period_
        first = max(L, m or 1)
        start = first if start is None else max(check_positive_int(start, "start", where, minimum=0), first)
        if start + H > N:
            raise RnnkitError(f"{where}: the series has {N} rows; a backtest needs lookback={L}"
                              + (f" (and period={m})" if m else "") + f" rows of history before the first "
                              f"origin {start} and horizon={H} rows after it")
        origins = np.arange(start, N - H + 1, step)
        if n_origins is not None:
            origins = origins[-check_positive_int(n_origins, "n_origins", where):]
        if self.strategy == "recursive" and self.n_covariates_:
            fc = cov[origins[:, None] + np.arange(H)]                         # (n, H, C)
            zfc = self._scale_cov(fc)
        else:
            zfc = None
        zwin = self._windows_for(values, cov, origins)
        tg = list(self.targets_)
        actual = values[origins[:, None] + np.arange(H)][:, :, tg]
        result = {"origins": origins, "horizon": H, "period": m, "mase_lag": self.mase_lag_, "actual": actual}
        if self.intervals is not None:
            q = self._unscale(self._bands(zwin, zfc, n_samples, seed, where), axis_targets=-2)
            result["lower"], result["upper"] = q[..., 0], q[..., -1]
            inside = (actual >= result["lower"]) & (actual <= result["upper"])
            result["coverage"] = float(inside.mean())
        out = self._forecast_scaled(zwin, zfc)
        if self.intervals == "quantile":
            out = np.sort(out, axis=-1)[..., self._median_index()]
        result["forecast"] = self._unscale(out)
        result["naive"] = np.repeat(values[origins - 1][:, None, tg], H, axis=1)
        scale = self.mase_scale_
        metrics = {"model": forecast_metrics(actual, result["forecast"], scale),
                   "naive": forecast_metrics(actual, result["naive"], scale), "seasonal_naive": None}
        if m:
            result["seasonal_naive"] = np.stack([_seasonal_naive(values[:, tg], o, H, m) for o in origins])
            metrics["seasonal_naive"] = forecast_metrics(actual, result["seasonal_naive"], scale)
        result["metrics"] = metrics
        return result

    def score(self, series, covariates=None, **kwargs) -> float:
        """Negative MASE of a backtest on ``series`` (higher is better, as scikit-learn scores)."""
        return -self.backtest(series, covariates, **kwargs)["metrics"]["model"]["mase"]

    # -- plots and the run report ----------------------------------------------------------------
    def plot_backtest(self, result: dict, series=None, target: int = 0, max_paths: int = 12):
        """Forecast against actual: the series, forecasts from non-overlapping origins of a
        backtest ``result`` and their bands. Returns a matplotlib figure."""
        from rnnkit.report import pyplot

        plt = pyplot()
        H = result["horizon"]
        origins = np.asarray(result["origins"])
        keep, last = [], -H
        for i, o in enumerate(origins):           # non-overlapping forecast paths read best
            if o >= last + H:
                keep.append(i)
                last = o
        keep = keep[-max_paths:]
        fig, ax = plt.subplots(figsize=(11, 3.8))
        if series is not None:
            vals = _as_values(series, "series", "Forecaster.plot_backtest")
            lo = max(0, int(origins[keep[0]]) - 2 * H)
            ax.plot(np.arange(lo, len(vals)), vals[lo:, self.targets_[target]], color="0.3", lw=1,
                    label="actual")
        else:
            for j, i in enumerate(keep):
                ax.plot(origins[i] + np.arange(H), result["actual"][i, :, target], color="0.3", lw=1,
                        label="actual" if j == 0 else None)
        for j, i in enumerate(keep):
            t = origins[i] + np.arange(H)
            if "lower" in result:
                ax.fill_between(t, result["lower"][i, :, target], result["upper"][i, :, target],
                                color="tab:blue", alpha=0.2, lw=0,
                                label=f"{int(round(100 * (self.quantiles[-1] - self.quantiles[0])))} % band"
                                if j == 0 else None)
            ax.plot(t, result["forecast"][i, :, target], color="tab:blue", lw=1.5,
                    label="forecast" if j == 0 else None)
            ax.axvline(origins[i], color="0.85", lw=0.8, zorder=0)
        name = self.columns_[self.targets_[target]]
        ax.set_title(f"forecast vs actual ({name}, horizon {H})")
        ax.set_xlabel("row")
        ax.legend(loc="upper left")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        return fig

    def _metrics_rows(self, result: dict) -> list[list]:
        rows = []
        for name, label in (("model", "rnn " + self.strategy), ("naive", "naive (last value)"),
                            ("seasonal_naive", f"seasonal naive (period {result['period']})")):
            met = result["metrics"].get(name)
            if met is not None:
                rows.append([label] + [met[k] for k in ("mae", "rmse", "mape", "smape", "mase")])
        return rows

    def _write_run(self, out_dir, values, cov, dates) -> None:
        from rnnkit.report import Section, have_matplotlib, save_figure, write_run_report

        out_dir = os.fspath(out_dir)
        sections = []
        split = self.split_
        data_rows = [["rows", len(values)], ["series columns", ", ".join(self.columns_)],
                     ["targets", ", ".join(self.columns_[t] for t in self.targets_)],
                     ["covariates", self.n_covariates_],
                     ["train / validation / test rows", f"{split['train']} / {split['validation']} / {split['test']}"],
                     ["lookback / horizon", f"{self.lookback_} / {self.horizon}"],
                     ["strategy", self.strategy], ["period", self.period_ if self.period_ else "none"],
                     ["MASE scale", f"mean |y_t − y_(t−{self.mase_lag_})| over the training part"],
                     ["scaler", f"{self.scaler} (fitted on the training part), relative={self.relative}"]]
        if dates:
            data_rows.insert(1, ["dates", f"{dates[0]} … {dates[-1]}"])
        sections.append(Section("Data", table=data_rows, header=["", ""]))
        res = self.test_backtest_
        if res is not None:
            text = (f"{len(res['origins'])} origins in the test part, horizon {self.horizon}; "
                    f"MASE divides by the training part's lag-{self.mase_lag_} naive MAE.")
            if "coverage" in res:
                text += (f"\nBand {self.quantiles[0]}–{self.quantiles[-1]}: {100 * res['coverage']:.1f} % of the "
                         f"actual values inside (nominal {100 * (self.quantiles[-1] - self.quantiles[0]):.0f} %).")
            figs = []
            if have_matplotlib():
                figs.append(save_figure(self.plot_backtest(res, values), os.path.join(out_dir, "forecast.png")))
            sections.append(Section("Backtest on the test part", text=text, table=self._metrics_rows(res),
                                    header=["forecaster", "MAE", "RMSE", "MAPE %", "sMAPE %", "MASE"],
                                    figures=figs))
        else:
            sections.append(Section("Backtest on the test part",
                                    text=f"No test part of at least horizon={self.horizon} rows "
                                         "(test_fraction); nothing was scored."))
        # the forecast past the end of the data
        hist_cov = cov
        if not (self.n_covariates_ and self.strategy == "recursive"):
            if self.intervals is not None:
                band = self.predict_interval(values, hist_cov, seed=self.seed)
                point = band["median"] if self.intervals == "quantile" else self.predict(values, hist_cov)
                rows = [[h + 1, *np.atleast_1d(point[h]).tolist(), *np.atleast_1d(band["lower"][h]).tolist(),
                         *np.atleast_1d(band["upper"][h]).tolist()] for h in range(self.horizon)]
                names = [self.columns_[t] for t in self.targets_]
                header = ["step"] + names + [f"{c} lower" for c in names] + [f"{c} upper" for c in names]
            else:
                point = self.predict(values, hist_cov)
                rows = [[h + 1, *np.atleast_1d(point[h]).tolist()] for h in range(self.horizon)]
                header = ["step"] + [self.columns_[t] for t in self.targets_]
            sections.append(Section("Forecast past the end of the data", table=rows, header=header))
        write_run_report(out_dir, "rnnkit forecast", sections,
                         config={"task": TASK, "params": self.get_params(), "model": self.model_.config()})

    # -- files ---------------------------------------------------------------------------------
    def _state(self) -> dict:
        return {"scaler": self.scaler_.to_dict(), "n_features": self.n_features_,
                "n_covariates": self.n_covariates_, "columns": list(self.columns_), "targets": list(self.targets_),
                "univariate": bool(self.univariate_), "lookback": int(self.lookback_),
                "period": None if self.period_ is None else int(self.period_), "mase_lag": int(self.mase_lag_),
                "mase_scale": [float(v) for v in self.mase_scale_], "split": dict(self.split_),
                "noise_std": [float(v) for v in self.noise_std_], "csv_options": self.csv_options_}

    def save(self, directory) -> str:
        """Write the fitted forecaster to ``directory`` (config.json + model.npz); returns the path."""
        self._check_fitted("save")
        meta = {"task": TASK, "params": self.get_params(), "state": self._state()}
        if getattr(self, "test_backtest_", None) is not None:
            meta["test_metrics"] = self.test_backtest_["metrics"]
        return save_task(directory, self.model_, meta)

    @classmethod
    def load(cls, directory) -> "Forecaster":
        """Read a forecaster written by :meth:`save` or ``fit(out_dir=...)``.

        A directory of another task is a CheckpointError ("… was written by task 'lm',
        not 'forecast'"); so is one whose files do not match.
        """
        from rnnkit.data.series import scaler_from_dict
        from rnnkit.models import build

        directory = os.fspath(directory)
        ckpt = load_task(directory, TASK, "Forecaster")
        try:
            meta = ckpt.meta
            fc = cls(**meta["params"])
            s = meta["state"]
            fc.scaler_ = scaler_from_dict(s["scaler"])
            fc.n_features_, fc.n_covariates_ = int(s["n_features"]), int(s["n_covariates"])
            fc.columns_, fc.targets_ = list(s["columns"]), [int(t) for t in s["targets"]]
            fc.univariate_, fc.lookback_ = bool(s["univariate"]), int(s["lookback"])
            fc.period_ = None if s["period"] is None else int(s["period"])
            fc.mase_lag_ = int(s["mase_lag"])
            fc.mase_scale_ = np.asarray(s["mase_scale"], dtype=np.float64)
            fc.split_ = dict(s["split"])
            fc.noise_std_ = np.asarray(s["noise_std"], dtype=np.float64)
            fc.csv_options_ = s.get("csv_options")
            model = build(ckpt.config)
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{directory}: config.json does not describe a valid forecaster: {exc}") from exc
        fc.model_ = restore_model(directory, ckpt, model, fc._build_model().config(),
                                  "does not match the forecaster's parameters and data description")
        fc.test_backtest_ = None
        return fc
