r"""Forecasting with context: covariates, known-future inputs, calendar features, many series.

One global many-to-one network (:class:`~rnnkit.models.SequenceRegressor`, last state)
forecasts the next H rows of the target columns of every series. Each input window is
L past rows followed by H known-future rows (:func:`rnnkit.data.context.context_windows`):

    past steps   [targets, past covariates, future covariates, calendar, 0]
    future steps [0,       0,               future covariates, calendar, 1]

* ``covariates``: columns observed in the past only (e.g. weather measured beside traffic);
* ``future_covariates``: columns known ahead (a holiday flag, a weather forecast); the
  rows of the horizon are read from the file, so evaluation uses their real values;
* calendar features (hour, weekday, month as sin/cos, chosen by the step of the dates:
  :func:`rnnkit.data.context.calendar_features`) on by default when there are dates;
* ``series_column``: many series in one long file, one global model, each series scaled by
  its own training part: z = (x − μ_s) / σ_s per column (calendar features unscaled), and
  every window is relative to its last observed target value,
  z̃_t = z_t − z_{o−1} for the target columns, so levels never seen in training still forecast.

Splits are per series, in time order (train | validation | test, fractions of each
series); the test part is backtested from every origin whose horizon lies inside it, with
the naive (last value) and seasonal naive baselines on the same windows and MASE scaled
by each series' own training part (:func:`rnnkit.tasks.forecast.forecast_metrics`).

Training follows the budget policy (:func:`rnnkit.tasks.policy.fit_with_budget`: steps,
not epochs, at least 600 of them; warm-up and cosine decay; the best validated weights;
then a refit on training + validation windows for the selected step count). The
network forecasts only when it earns it. On the validation windows these are scored by
MASE (``val_scores_``): the classical mean (the default forecast of
:class:`rnnkit.tasks.forecast.Forecaster`: the mean of ETS, Theta, ARIMA and, with a
period, seasonal naive, :mod:`rnnkit.tasks.forecast.classical`, fitted on each target
column of the training part), the selected network (trained on the training part), their
mean half and half ("network+classical"), naive and seasonal naive. The validation
windows of one stretch of the series are few and alike, so the choice (``method_``,
:func:`choose_method`) moves from the classical mean only for a clear gain, with the
margins of :func:`rnnkit.tasks.forecast.combine.choose_forecast`:

    network+classical  kept when MASE < (1 − 0.05) · MASE(classical)
    any other          kept when MASE < (1 − 0.10) · MASE(what is kept so far)

The half-and-half mean carries what the network learned from the context while the
classical methods hold it to the series' own level and trend: on the development series
it forecast the test rows better than either alone more often than not. The
classical methods are refitted on every row before the test part for the backtest, and
on every row for the forecast past the end (they are not saved: a loaded forecaster
fits them again on the data it is given). Context that does not help (covariates
unrelated to the target, a series too short to learn from) then costs little against the
baselines; the test backtest reports the kept method as "model" and the network alone
as "network".
"""

from __future__ import annotations

import os

import numpy as np

from rnnkit._checks import check_positive_int
from rnnkit.deadline import after_training, as_deadline
from rnnkit.errors import RnnkitError
from rnnkit.tasks._common import (check_cell, check_number, check_seed, check_task_dtype, load_task, restore_model,
                                  save_task)
from rnnkit.tasks.forecast.metrics import forecast_metrics, infer_period, seasonal_naive

__all__ = ["ContextForecaster", "choose_method"]

TASK = "forecast-context"
#: what the forecaster may keep, in order of preference on a tie ("classical" is the default)
METHODS = ("classical", "network+classical", "network", "naive", "seasonal_naive")
#: the classical methods averaged by "classical" (with seasonal naive when there is a period)
CLASSICAL = ("ets", "theta", "arima")

#: the smallest σ a 0/1 covariate is scaled by (:meth:`ContextForecaster._stats`): 1 in the
#: file becomes at most 4 in the network's input
FLAG_MIN_SD = 0.25
#: the most windows of each set (training, validation, refit) built at once: every k-th
#: origin of each series past it (a file of 48,000 series would otherwise need gigabytes)
MAX_WINDOWS = 200_000


def choose_method(scores: dict) -> str:
    """The kept forecast of validation MASE ``scores`` {method: MASE} (module docstring):
    the classical mean unless another is clearly better."""
    from rnnkit.tasks.forecast.combine import MARGIN, MARGIN_RNN

    def order(k):
        return scores[k], METHODS.index(k)
    kept = "classical" if "classical" in scores else min(scores, key=order)
    if "network+classical" in scores and scores["network+classical"] < (1 - MARGIN_RNN) * scores[kept]:
        kept = "network+classical"
    best = min(scores, key=order)
    return best if scores[best] < (1 - MARGIN) * scores[kept] else kept


class _Series:
    """One series' arrays: targets (N, F), past covariates (N, Cp), future inputs (N + extra, Cf)."""

    def __init__(self, name, y, past, fut, dates):
        self.name, self.y, self.past, self.fut, self.dates = name, y, past, fut, dates


class ContextForecaster:
    """Forecast the next ``horizon`` rows of one or many series with context (module docstring).

    Args:
        lookback: past rows per window (None: 2·period when a period is found, else
            max(2·horizon, 24), at most half the median training part less the horizon, and at
            most the rows of the shortest series; a series too short for a training window
            is forecast by the model trained on the others).
        horizon, cell, hidden_size, num_layers, dropout, loss ("mse", "mae", "huber").
        calendar: add calendar features when dates are given (default True).
        period: the seasonal period in rows for the seasonal naive baseline and MASE,
            "auto" (inferred on the first series' training part) or None.
        batch_size, dtype, seed.
    """

    def __init__(self, lookback: int | None = None, horizon: int = 12, cell: str = "lstm", hidden_size: int = 64,
                 num_layers: int = 1, dropout: float = 0.0, loss: str = "mse", calendar: bool = True,
                 period="auto", batch_size: int = 32, dtype: str = "float32", seed: int = 0):
        where = "ContextForecaster"
        self.lookback = None if lookback is None else check_positive_int(lookback, "lookback", where)
        self.horizon = check_positive_int(horizon, "horizon", where)
        self.cell = check_cell(cell, where)
        self.hidden_size = check_positive_int(hidden_size, "hidden_size", where)
        self.num_layers = check_positive_int(num_layers, "num_layers", where)
        self.dropout = check_number(dropout, "dropout", where, 0.0, 1.0, high_open=True)
        if loss not in ("mse", "mae", "huber"):
            raise ValueError(f"{where}: loss must be 'mse', 'mae' or 'huber', got {loss!r}")
        self.loss = loss
        self.calendar = bool(calendar)
        if period != "auto" and period is not None:
            period = check_positive_int(period, "period", where, minimum=2)
        self.period = period
        self._classical_fits = {}       # (series, rows, data) -> fitted classical methods per target
        self.batch_size = check_positive_int(batch_size, "batch_size", where)
        self.dtype = check_task_dtype(dtype, where)
        self.seed = check_seed(seed, where)
        self.model_, self.labels_ = None, {}

    def get_params(self) -> dict:
        return {"lookback": self.lookback, "horizon": self.horizon, "cell": self.cell,
                "hidden_size": self.hidden_size, "num_layers": self.num_layers, "dropout": self.dropout,
                "loss": self.loss, "calendar": self.calendar, "period": self.period,
                "batch_size": self.batch_size, "dtype": self.dtype, "seed": self.seed}

    # -- reading -----------------------------------------------------------------------------
    def _from_csv(self, path, targets, covariates, future_covariates, date_column, series_column, fill="auto",
                  labels=None):
        """Read a wide (one series) or long (``series_column``) CSV into _Series objects.

        A covariate column of labels (a weather word, a holiday name) becomes one indicator
        column per label (:func:`rnnkit.data.read_csv`'s ``labels``): at fit the labels
        are found in the file and kept in ``labels_``; later reads (``labels`` given) use
        those, so a label first seen then is none of them."""
        from rnnkit.data.context import read_long_csv
        from rnnkit.data.series import read_csv

        covariates, future_covariates = list(covariates or []), list(future_covariates or [])
        given_labels = labels is not None
        if not given_labels:
            labels = {c: None for c in covariates + future_covariates}
        if series_column is None:
            if targets is None:
                data = read_csv(path, None, date_column, fill=fill, labels=labels, ahead=future_covariates)
                expanded = {f"{c}={x}" for c, xs in data.labels.items() for x in xs}
                targets = [c for c in data.columns if c not in covariates + future_covariates and c not in expanded]
            names = list(targets) + covariates + future_covariates
            data = read_csv(path, names, date_column, fill=fill, labels=labels, ahead=future_covariates)
            blocks = {"": (data.values, data.dates)}
            ids = [""]
            ahead = {"": data.ahead}
        else:
            if targets is None:
                raise ValueError("ContextForecaster.fit_csv: with series_column give targets (the value columns)")
            names = list(targets) + covariates + future_covariates
            data = read_long_csv(path, series_column, names, date_column, labels=labels, ahead=future_covariates)
            blocks = {k: (data.values[k], data.dates[k]) for k in data.ids}
            ids = data.ids
            ahead = data.ahead
        if not given_labels:
            self.labels_ = dict(data.labels)
        F = len(targets)
        Cp = sum(len(data.labels[c]) if c in data.labels else 1 for c in covariates)
        self.columns_ = {"targets": list(targets), "covariates": covariates, "future_covariates": future_covariates}
        return [(k, blocks[k][0][:, :F], blocks[k][0][:, F:F + Cp], blocks[k][0][:, F + Cp:], blocks[k][1],
                 ahead.get(k)) for k in ids]

    def _prepare(self, raw, where):
        """Raw (name, y, past, fut, dates, ahead) tuples -> _Series with calendar columns appended
        (``ahead``: the user future covariates of rows after the data, or None)."""
        from rnnkit.data.context import calendar_features, future_dates, infer_step, parse_dates

        out = []
        for name, y, past, fut, dates, ahead in raw:
            extra = np.zeros((len(y) + self.horizon, 0))
            if self.use_calendar_:
                d = parse_dates(dates, f"{where}: dates of series {name!r}" if name else f"{where}: dates")
                step = infer_step(d)
                self.step_ = str(step)
                d_all = np.concatenate([d, future_dates(d, self.horizon)])
                extra, self.calendar_names_ = calendar_features(d_all, step)
            # the horizon's rows after the data: calendar known, user future covariates from the
            # file's rows ahead where it has them, else unknown (NaN)
            known = np.full((self.horizon, fut.shape[1]), np.nan)
            if ahead is not None and fut.shape[1]:
                n = min(len(ahead), self.horizon)
                known[:n] = ahead[:n]
            fut_all = np.concatenate([np.concatenate([fut, known]), extra], axis=1)
            out.append(_Series(name, y, past, fut_all, dates))
        return out

    # -- windows -----------------------------------------------------------------------------
    def _scaled_windows(self, s: _Series, origins: np.ndarray):
        """Scaled input windows (L + H, n, D), the reference level (n, F) and scaled targets (n, H·F)."""
        from rnnkit.data.context import context_windows

        mu, sd, _ = self.stats_[s.name]
        F, Cp, Cu = s.y.shape[1], s.past.shape[1], self.n_user_future_
        y = (s.y - mu[:F]) / sd[:F]
        past = (s.past - mu[F:F + Cp]) / sd[F:F + Cp]
        fut = s.fut.copy()
        fut[:, :Cu] = (fut[:, :Cu] - mu[F + Cp:]) / sd[F + Cp:]
        L, H = self.lookback_, self.horizon
        x = context_windows(y, origins, L, H, past if Cp else None, fut if fut.shape[1] else None)
        ref = y[origins - 1]                                                      # (n, F)
        x[:, :L, :F] -= ref[:, None, :]
        if np.isnan(x).any():
            raise RnnkitError(f"{self._where}: the future covariates of series {s.name!r} are not known for "
                              f"the {H} rows after the data; to forecast them, end the file with {H} rows "
                              f"ahead: the date and the future covariates filled, the other cells empty")
        rows = origins[:, None] + np.arange(H)
        target = None
        if rows.max() < len(y):
            target = (y[rows] - ref[:, None, :]).reshape(len(origins), -1)
        return np.ascontiguousarray(x.transpose(1, 0, 2)).astype(self.dtype), ref, target

    def _origins(self, lo: int, hi: int) -> np.ndarray:
        """Origins whose L past rows exist and whose H target rows lie in [lo, hi)."""
        return np.arange(max(lo, self.lookback_), hi - self.horizon + 1)

    def _stats(self, s: _Series, n_tr: int):
        """(μ, σ) of the targets, past and user future covariates over the first ``n_tr``
        rows, and the MASE scale mean |y_t − y_{t−m}| there (m = period, or 1).

        A covariate whose values there are all 0 or 1 (a flag, a label's indicator) has σ
        at least ``FLAG_MIN_SD``: standardised by its own σ, a rare flag (a holiday, 30 rows
        in 48,000: σ = 0.025) would reach 40 and a network would extrapolate wildly wherever
        it turns up; a common one (σ ≥ 0.25, one row in 15 or more) is standardised as usual."""
        cols = np.concatenate([s.y, s.past, s.fut[:len(s.y), :self.n_user_future_]], axis=1)[:n_tr]
        mu, sd = cols.mean(axis=0), cols.std(axis=0)
        flags = np.all((cols == 0) | (cols == 1), axis=0)
        flags[:s.y.shape[1]] = False                                   # targets are always scaled
        sd = np.where(flags, np.maximum(sd, FLAG_MIN_SD), sd)
        m = self.period_ if self.period_ and self.period_ < n_tr else 1
        sc = np.abs(s.y[m:n_tr] - s.y[:n_tr - m]).mean(axis=0) if n_tr > m else np.ones(s.y.shape[1])
        return mu, np.where(sd > 0, sd, 1.0), np.where(sc > 0, sc, 1.0)

    def _series_stats(self, series, splits) -> None:
        """Series the fit did not see are scaled by their own training part."""
        for s, sp in zip(series, splits):
            if s.name not in self.stats_:
                self.stats_[s.name] = self._stats(s, sp[0])

    # -- fit ---------------------------------------------------------------------------------
    def fit_csv(self, path, targets=None, covariates=None, future_covariates=None, date_column=None,
                series_column=None, fill: str = "auto", **fit_kwargs) -> "ContextForecaster":
        """Read ``path`` (wide, or long with ``series_column``; ``fill`` the gaps of a wide
        file as :func:`rnnkit.data.read_csv` does) and :meth:`fit`."""
        self._where = "ContextForecaster.fit_csv"
        fit_kwargs["time_limit"] = as_deadline(fit_kwargs.get("time_limit"), self._where)   # reading counts too
        self.csv_options_ = {"targets": None if targets is None else list(targets),
                             "covariates": list(covariates or []), "future_covariates": list(future_covariates or []),
                             "date_column": date_column, "series_column": series_column, "fill": fill}
        raw = self._from_csv(path, targets, covariates, future_covariates, date_column, series_column, fill)
        return self._fit(raw, dates_given=date_column is not None, **fit_kwargs)

    def fit(self, series, covariates=None, future_covariates=None, dates=None, **fit_kwargs):
        """Fit on arrays: ``series`` (N, F) or a list of them (many series), with optional
        past ``covariates`` (N, Cp), ``future_covariates`` (N, Cf) and ``dates`` (N labels)
        of the same structure. ``future_covariates`` may have rows ahead of the series (N + k,
        Cf): their first ``horizon`` are the known inputs of the forecast after the data."""
        self._where = "ContextForecaster.fit"
        self.csv_options_, self.labels_ = None, {}
        many = isinstance(series, (list, tuple))
        ys = list(series) if many else [series]

        def per(arg, name):
            if arg is None:
                return [None] * len(ys)
            arg = list(arg) if many else [arg]
            if len(arg) != len(ys):
                raise ValueError(f"{self._where}: {name} must have one entry per series ({len(ys)}), got {len(arg)}")
            return arg

        raw = []
        for k, (y, pc, fc, d) in enumerate(zip(ys, per(covariates, "covariates"),
                                               per(future_covariates, "future_covariates"), per(dates, "dates"))):
            y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
            pc = np.zeros((len(y), 0)) if pc is None else np.asarray(pc, dtype=np.float64).reshape(len(y), -1)
            fc = np.zeros((len(y), 0)) if fc is None else np.asarray(fc, dtype=np.float64)
            fc = fc.reshape(len(fc), -1)
            if len(fc) < len(y):
                raise ValueError(f"{self._where}: future_covariates must have a row per row of the series "
                                 f"({len(y)}), and may go on ahead of it; got {len(fc)} rows")
            raw.append((str(k) if many else "", y, pc, fc[:len(y)], d, fc[len(y):] if len(fc) > len(y) else None))
        self.columns_ = {"targets": [f"y{j}" for j in range(raw[0][1].shape[1])],
                         "covariates": [f"c{j}" for j in range(raw[0][2].shape[1])],
                         "future_covariates": [f"f{j}" for j in range(raw[0][3].shape[1])]}
        return self._fit(raw, dates_given=dates is not None, **fit_kwargs)

    def _fit(self, raw, dates_given: bool, val_fraction: float = 0.15, test_fraction: float = 0.15,
             epochs: int | None = None, time_limit: float | None = None, max_steps: int | None = None,
             optimizer: str = "adam", lr: float = 5e-3, clip: float | None = 1.0, patience: int | None = None,
             out_dir=None, quiet: bool = True):
        from rnnkit.data.series import split_sizes
        from rnnkit.models import SequenceRegressor
        from rnnkit.tasks.policy import fit_with_budget

        where = self._where
        deadline = as_deadline(time_limit, where)
        self.use_calendar_ = self.calendar and dates_given
        self.calendar_names_, self.step_ = [], None
        self.n_user_future_ = raw[0][3].shape[1]
        series = self._prepare(raw, where)
        H = self.horizon
        self.splits_ = [split_sizes(len(s.y), val_fraction, test_fraction) for s in series]
        n_train = [sp[0] for sp in self.splits_]
        first_train = series[0].y[:self.splits_[0][0], 0]
        self.period_ = infer_period(first_train) if self.period == "auto" else self.period
        want = self.lookback or (2 * self.period_ if self.period_ else max(2 * H, 24))
        # half the typical training part at most, so most series give many windows (a few short
        # ones give fewer, or none: the model trained on the others forecasts them), and no
        # more than the shortest series has rows, so every series can be forecast
        shortest = min(len(s.y) for s in series)
        typical = int(np.median(n_train))
        self.lookback_ = int(max(2, min(want, max(2, typical // 2 - H), shortest))) if self.lookback is None else want
        if self.lookback_ + H > max(n_train):
            raise RnnkitError(f"{where}: the longest training part has {max(n_train)} rows, too few for "
                              f"lookback={self.lookback_} + horizon={H}; use a shorter lookback or horizon")
        if self.lookback_ > shortest:
            short = next(s.name for s in series if len(s.y) == shortest)
            raise RnnkitError(f"{where}: series {short!r} has {shortest} rows, fewer than lookback={self.lookback_}; "
                              f"use a shorter lookback")
        self.fractions_ = (val_fraction, test_fraction)
        self.stats_ = {s.name: self._stats(s, sp[0]) for s, sp in zip(series, self.splits_)}
        def windows(lo_hi):
            xs, ys = [], []
            origins = [self._origins(*lo_hi(sp)) for sp in self.splits_]
            # many long series: every stride-th origin of each (neighbouring windows share all but a row)
            stride = -(-sum(len(o) for o in origins) // MAX_WINDOWS)
            for s, o in zip(series, origins):
                o = o[::-1][::stride][::-1] if stride > 1 else o            # each series' last origin kept
                if len(o):
                    x, _, y = self._scaled_windows(s, o)
                    xs.append(x)
                    ys.append(y)
            if not xs:
                return None, None
            return np.concatenate(xs, axis=1), np.concatenate(ys).astype(self.dtype)

        x_tr, y_tr = windows(lambda sp: (0, sp[0]))
        x_va, y_va = windows(lambda sp: (sp[0], sp[0] + sp[1]))
        x_all, y_all = windows(lambda sp: (0, sp[0] + sp[1]))
        val_batches = None
        if x_va is not None:
            val_batches = [{"x": x_va[:, i:i + 256], "y": y_va[i:i + 256]} for i in range(0, len(y_va), 256)]
        F = series[0].y.shape[1]
        self.n_targets_, self.input_size_ = F, x_tr.shape[2]

        def build():
            return SequenceRegressor(output_size=H * F, cell=self.cell, hidden_size=self.hidden_size,
                                     num_layers=self.num_layers, input_size=self.input_size_, loss=self.loss,
                                     pooling="last", dropout=self.dropout, dtype=self.dtype, seed=self.seed)

        bs = min(self.batch_size, len(y_tr))

        def batches_of(x, y):
            def batches(epoch, rng):
                order = rng.permutation(len(y))
                return [{"x": x[:, order[s:s + bs]], "y": y[order[s:s + bs]]}
                        for s in range(0, len(y) - bs + 1, bs)]
            return batches

        n_test = sum(max(0, sp[2]) for sp in self.splits_)

        def reserve(step_s):            # the test backtest and the run directory
            return after_training(step_s, bs, n_test + len(series), figures=0 if out_dir is None else 1)

        from rnnkit.tasks.run import RunWriter, train_dir

        self.series_, self.history_ = series, None
        self.method_, self.val_scores_ = "network", {}
        writer = [] if out_dir is None else [RunWriter(out_dir, self._meta)]
        fitted = fit_with_budget(build, batches_of(x_tr, y_tr), val_batches, len(y_tr), bs,
                                 {"x": x_tr[:, :bs], "y": y_tr[:bs]}, time_limit=deadline, reserve=reserve,
                                 max_steps=max_steps, epochs=epochs, lr=lr, seed=self.seed, quiet=quiet,
                                 out_dir=train_dir(out_dir), optimizer=optimizer, clip=clip, patience=patience,
                                 refit_batches=batches_of(x_all, y_all) if x_va is not None else None,
                                 refit_items=len(y_all), n_val=0 if y_va is None else len(y_va),
                                 callbacks=writer, where=where)
        self.model_, self.history_ = fitted.model, fitted.history
        self.model_.eval()
        if x_va is not None:
            fitted.selected.eval()
            self.val_scores_ = self._scores(series, [(sp[0], sp[0] + sp[1]) for sp in self.splits_],
                                            fitted.selected)
            self.method_ = choose_method(self.val_scores_)
        self.series_ = series
        self.test_evaluation_ = self.evaluate() if any(sp[2] >= H for sp in self.splits_) else None
        if out_dir is not None:
            self.write_run(out_dir, deadline)
        return self

    # -- prediction and evaluation -------------------------------------------------------------
    def _predict_windows(self, s, origins, method: str | None = None, model=None, fit_rows=None) -> np.ndarray:
        """Forecasts in original units for ``origins`` of series ``s``: (n, H, F), by
        ``method`` (default: the kept one, ``method_``) and, for the network, ``model``
        (default: ``model_``); the classical methods are fitted on the first ``fit_rows``
        rows (default: every row before the first origin)."""
        method = method or self.method_
        H = self.horizon
        if method == "classical":
            return self._classical(s, origins, fit_rows)
        if method == "network+classical":
            return 0.5 * (self._predict_windows(s, origins, "network", model)
                          + self._classical(s, origins, fit_rows))
        if method == "naive":
            return np.repeat(s.y[origins - 1][:, None], H, axis=1)
        if method == "seasonal_naive":
            return np.stack([seasonal_naive(s.y, o, H, self.period_) for o in origins])
        x, ref, _ = self._scaled_windows(s, origins)
        z = np.asarray((model or self.model_).predict(x), dtype=np.float64).reshape(len(origins), H, -1)
        mu, sd, _ = self.stats_[s.name]
        F = self.n_targets_
        return (z + ref[:, None, :]) * sd[:F] + mu[:F]

    def _data(self, path, where):
        """The fitted series (path None) or those of a CSV of the fitted layout, with splits."""
        self._where = where
        if self.model_ is None:
            raise RnnkitError(f"{where}: not fitted; call fit or fit_csv, or load a saved run")
        if path is None:
            if getattr(self, "series_", None) is None:
                raise RnnkitError(f"{where}: a loaded forecaster needs the data: pass the CSV path")
            return self.series_, self.splits_
        from rnnkit.data.series import split_sizes

        o = self.csv_options_
        if o is None:
            raise RnnkitError(f"{where}: the forecaster was fitted on arrays; pass data only to one fitted on a CSV")
        raw = self._from_csv(path, o["targets"], o["covariates"], o["future_covariates"], o["date_column"],
                             o["series_column"], o.get("fill", "error"), labels=self.labels_)
        series = self._prepare(raw, where)
        splits = [split_sizes(len(s.y), *self.fractions_) for s in series]
        self._series_stats(series, splits)
        return series, splits

    def predict(self, path=None) -> dict:
        """The next ``horizon`` rows after the end of every series: {series name: (H, F)}.

        Needs the known-future inputs of those rows: calendar features are computed; user
        future covariates come from the file's rows ahead (its last rows, whose other cells
        are empty) or the arrays' rows past the series; without them, an error.
        """
        series, _ = self._data(path, "ContextForecaster.predict")
        return {s.name: self._predict_windows(s, np.array([len(s.y)]))[0] for s in series}

    def _classical(self, s, origins, fit_rows=None) -> np.ndarray:
        """The classical mean's forecasts (n, H, F) from ``origins``, its methods fitted on
        the first ``fit_rows`` rows of each target column (cached per series and rows)."""
        from rnnkit.tasks.forecast.classical import Classical

        n_fit = int(origins.min()) if fit_rows is None else int(fit_rows)
        cache = self._classical_fits
        key = (s.name, n_fit, hash(s.y[:n_fit].tobytes()))
        if key not in cache:
            m = self.period_
            methods = CLASSICAL + (("seasonal_naive",) if m and n_fit > m else ())
            cache[key] = [[Classical(name, m).fit(s.y[:n_fit, j]) for name in methods]
                          for j in range(s.y.shape[1])]
        return np.stack([np.mean([c.forecast(s.y[:, j], origins, self.horizon) for c in fits], axis=0)
                         for j, fits in enumerate(cache[key])], axis=-1)

    def _scores(self, series, spans, model) -> dict:
        """MASE of the network (``model``), the classical mean (fitted on the rows before
        ``lo``), their mean, naive and seasonal naive (with a period) on every window whose
        horizon lies in each series' span (lo, hi), pooled over series."""
        m = self.period_
        errors = {k: [] for k in METHODS if k != "seasonal_naive" or m}
        for s, (lo, hi) in zip(series, spans):
            origins = self._origins(lo, hi)
            if m:
                origins = origins[origins >= m]
            if not len(origins):
                continue
            actual = s.y[origins[:, None] + np.arange(self.horizon)]
            scale = self.stats_[s.name][2]
            f = {k: self._predict_windows(s, origins, k, model, fit_rows=lo)
                 for k in errors if k != "network+classical"}
            f["network+classical"] = 0.5 * (f["network"] + f["classical"])     # no second network pass
            for k in errors:
                errors[k].append((np.abs(actual - f[k]) / scale).ravel())
        return {k: float(np.concatenate(v).mean()) for k, v in errors.items() if v}

    def evaluate(self, path=None) -> dict:
        """Backtest on every series' test part: the model, naive and seasonal naive on the
        same windows (metrics pooled over series; MASE per series' own scale)."""
        series, splits = self._data(path, "ContextForecaster.evaluate")
        H, m = self.horizon, self.period_
        acc = {"model": [], "network": [], "naive": [], "seasonal_naive": [], "actual": [], "scale": []}
        for s, (n_tr, n_va, n_te) in zip(series, splits):
            origins = self._origins(n_tr + n_va, len(s.y))
            if m:
                origins = origins[origins >= m]
            if not len(origins):
                continue
            rows = origins[:, None] + np.arange(H)
            acc["actual"].append(s.y[rows])
            acc["model"].append(self._predict_windows(s, origins, fit_rows=n_tr + n_va))
            acc["network"].append(self._predict_windows(s, origins, "network"))
            acc["naive"].append(np.repeat(s.y[origins - 1][:, None], H, axis=1))
            if m:
                acc["seasonal_naive"].append(np.stack([seasonal_naive(s.y, o, H, m) for o in origins]))
            acc["scale"].append(np.broadcast_to(self.stats_[s.name][2], s.y[rows].shape))
        if not acc["actual"]:
            raise RnnkitError("ContextForecaster.evaluate: no series has a test part of horizon rows")
        actual, scale = np.concatenate(acc["actual"]), np.concatenate(acc["scale"])
        out = {"series": len(series), "windows": int(len(actual)), "horizon": H, "period": m,
               "lookback": self.lookback_, "calendar": self.calendar_names_, "method": self.method_,
               "validation_mase": self.val_scores_}
        for key in ("model", "network", "naive", "seasonal_naive"):
            if acc[key]:
                f = np.concatenate(acc[key])
                out[key] = forecast_metrics(actual, f)
                out[key]["mase"] = float((np.abs(actual - f) / scale).mean())
        return out

    def predict_file(self, path=None) -> str:
        """CSV ``series,step,target,forecast[,date]`` of the horizon after every series of a
        CSV of the fitted layout (``rnnkit predict``; None: the fitted series); the date
        (ISO) when the series' dates read as dates."""
        from rnnkit.tasks.forecast.report import future_labels

        series, _ = self._data(path, "ContextForecaster.predict")
        ahead = {s.name: future_labels(s.dates, self.horizon) for s in series}
        dated = any(a is not None for a in ahead.values())
        lines = ["series,step,target,forecast" + (",date" if dated else "")]
        for s in series:
            f = self._predict_windows(s, np.array([len(s.y)]))[0]
            for h in range(self.horizon):
                for j, col in enumerate(self.columns_["targets"]):
                    date = ("," + (ahead[s.name][h] if ahead[s.name] else "")) if dated else ""
                    lines.append(f"{s.name},{h + 1},{col},{float(f[h, j])!r}{date}")
        return "\n".join(lines) + "\n"

    def evaluate_file(self, path) -> dict:
        """:meth:`evaluate` on a CSV of the fitted layout (``rnnkit evaluate``)."""
        return self.evaluate(path)

    # -- the run directory ---------------------------------------------------------------------------
    def write_run(self, out_dir, deadline=None) -> None:
        """``out_dir``: the model (config.json, model.npz), ``metrics.json`` (the test backtest
        beside the baselines), ``predictions.csv`` (the horizon after every series, when its
        future inputs are known) and ``report.html`` (its plot while ``deadline``, the
        command's time limit, allows)."""
        from rnnkit.report import Section, write_run_report
        from rnnkit.tasks.run import write_json, write_text

        out_dir = os.fspath(out_dir)
        self.save(out_dir)
        ev = self.test_evaluation_
        metrics = {"horizon": self.horizon, "lookback": self.lookback_, "period": self.period_,
                   "columns": self.columns_, "calendar": self.calendar_names_, "series": len(self.series_),
                   "steps": self.history_.step, "stop_reason": self.history_.stop_reason, "test": ev}
        write_json(os.path.join(out_dir, "metrics.json"), metrics)
        note = None
        try:
            write_text(os.path.join(out_dir, "predictions.csv"), self.predict_file(None))
        except RnnkitError as exc:      # future covariates past the end of the file are unknown
            note = f"no predictions.csv: {exc}"
        rows = [[k if k != "model" else f"model (kept: {self.method_})"]
                + [f"{ev[k][m]:.4f}" for m in ("mae", "rmse", "smape", "mase")]
                for k in ("model", "network", "naive", "seasonal_naive") if ev is not None and k in ev]
        data = [["series", len(self.series_)], ["targets", ", ".join(self.columns_["targets"])],
                ["covariates (past)", ", ".join(self.columns_["covariates"]) or "none"],
                ["future covariates", ", ".join(self.columns_["future_covariates"]) or "none"],
                ["calendar", ", ".join(self.calendar_names_) or "none"],
                ["lookback / horizon", f"{self.lookback_} / {self.horizon}"], ["period", self.period_],
                ["forecast by", f"{self.method_} (validation MASE: "
                 + (", ".join(f"{k} {v:.4f}" for k, v in self.val_scores_.items()) or "no validation part")
                 + ")"]]
        sections = [Section("Data", table=data, header=["", ""])]
        if rows:
            sections.append(Section(f"Test backtest ({ev['windows']} windows)", text=note, table=rows,
                                    header=["", "MAE", "RMSE", "sMAPE", "MASE"]))
        write_run_report(out_dir, "rnnkit forecaster with context", sections,
                         config={"task": TASK, "params": self.get_params()}, deadline=deadline)

    # -- checkpoints -------------------------------------------------------------------------------
    def save(self, directory) -> str:
        """Write the fitted forecaster to ``directory`` (config.json + model.npz)."""
        from rnnkit.tasks.run import training_meta

        h = self.history_
        meta = {**self._meta(), "training": training_meta(h, finished=h is not None and not h.interrupted)}
        return save_task(directory, self.model_, meta)

    def _meta(self) -> dict:
        return {"task": TASK, "params": self.get_params(), "columns": self.columns_, "lookback": self.lookback_,
                "period": self.period_, "fractions": list(self.fractions_), "csv_options": self.csv_options_,
                "stats": {k: [a.tolist() for a in v] for k, v in self.stats_.items()},
                "calendar": self.calendar_names_, "use_calendar": self.use_calendar_, "step": self.step_,
                "n_user_future": self.n_user_future_, "method": self.method_, "val_scores": self.val_scores_,
                "labels": self.labels_}

    @classmethod
    def load(cls, directory) -> "ContextForecaster":
        """The fitted network and scaling of a saved run; its data are not stored, so
        :meth:`predict` and :meth:`evaluate` take the CSV path."""
        from rnnkit.models import build

        ckpt = load_task(directory, TASK, cls.__name__)
        meta = ckpt.meta
        self = cls(**meta["params"])
        self.columns_, self.lookback_, self.period_ = meta["columns"], meta["lookback"], meta["period"]
        self.fractions_, self.csv_options_ = tuple(meta["fractions"]), meta["csv_options"]
        self.stats_ = {k: tuple(np.asarray(a) for a in v) for k, v in meta["stats"].items()}
        self.series_ = None
        self.calendar_names_, self.use_calendar_ = meta["calendar"], meta["use_calendar"]
        self.step_, self.n_user_future_ = meta["step"], meta["n_user_future"]
        self.labels_ = meta.get("labels", {})            # runs saved before columns of labels had none
        # runs saved before the validation choice forecast with the network
        self.method_, self.val_scores_ = meta.get("method", "network"), meta.get("val_scores", {})
        self.model_ = restore_model(directory, ckpt, build(ckpt.config))
        self.n_targets_ = len(self.columns_["targets"])
        return self

