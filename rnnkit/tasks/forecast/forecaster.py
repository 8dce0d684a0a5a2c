"""The :class:`Forecaster` task: fit, predict, backtest, save and load (see :mod:`rnnkit.tasks.forecast`)."""

from __future__ import annotations

import os

import numpy as np

from rnnkit._checks import check_choice, check_positive_int
from rnnkit.deadline import after_training, as_deadline, forward_seconds
from rnnkit.data.series import FILLS
from rnnkit.errors import CheckpointError, ResourceLimitError, RnnkitError
from rnnkit.tasks._common import (check_cell, check_flag, check_number, check_seed, check_task_dtype,
                                  load_task, restore_model, save_task)
from rnnkit.tasks.forecast.classical import Classical
from rnnkit.tasks.forecast.combine import band_scale, conformal_offsets, relative_scales
from rnnkit.tasks.forecast.metrics import forecast_metrics, infer_period, seasonal_naive
from rnnkit.tasks.forecast.windows import Windows, as_values
from rnnkit.tasks.run import RunWriter, train_dir, training_meta
from rnnkit.train.callbacks import check_callbacks

__all__ = ["Forecaster"]

TASK = "forecast"
STRATEGIES = ("direct", "recursive")
INTERVALS = (None, "conformal", "quantile", "mc_dropout")
#: the most validation or test origins a fit scores (evenly spread; every one up to this many)
MAX_ORIGINS = 1000


def _optional_int(value, name: str, where: str, minimum: int = 1):
    return None if value is None else check_positive_int(value, name, where, minimum=minimum)


class Forecaster(Windows):
    """A recurrent forecaster of the next ``horizon`` rows of a (multivariate) series.

    Args:
        lookback: rows the network reads (None: 2·period when a period is known,
            else max(2·horizon, 24); shortened to leave windows when data are short).
        horizon: rows to forecast (H).
        strategy: "auto" (default: direct or recursive, last-value or seasonal outputs,
            whichever forecasts the validation part best; :mod:`rnnkit.tasks.forecast_select`),
            "direct" (H·n_targets outputs at once) or "recursive" (a one-step model
            rolled forward). After fit, ``strategy`` holds the one chosen.
        cell, hidden_size, num_layers, dropout: the recurrent network ("lstm", "gru",
            "rnn", "rnn-relu"); dropout acts between layers and before the head.
        loss: "mse" (default), "mae" or "huber" (ignored with intervals="quantile").
        intervals: "conformal" (default: bands from the validation residuals of the
            forecast, :mod:`rnnkit.tasks.forecast.combine`), "quantile" (pinball loss on
            ``quantiles``, direct strategy only), "mc_dropout" (needs dropout > 0) or None.
        quantiles: the quantile levels of the bands (default 0.1, 0.5, 0.9: an 80 %
            interval around the median).
        scaler: "standard" (default) or "minmax", fitted on the training part.
        relative: inputs and targets relative to the window's last value (default True);
            "seasonal": targets relative to the seasonal-naive value (module docstring).
        period: the seasonal period in rows, "auto" (from the dates of a CSV's ISO date
            column, else the autocorrelation peak, and kept only when the seasonal strength
            of the training rows is real: :mod:`rnnkit.tasks.forecast.season`) or None
            (no seasonal baseline; MASE then scales by the one-step naive).
        batch_size, dtype, seed: training batches, float dtype, the seed of weights,
            data order and dropout.
        ensemble: with strategy="auto", networks refitted with seeds seed, seed+1, …
            whose median is the network's forecast (default 3).

    After :meth:`fit`: ``model_``, ``history_``, ``scaler_``, ``lookback_``, ``period_``,
    ``mase_lag_``, ``mase_scale_``, ``columns_``, ``targets_``, ``split_`` (rows of the
    train/validation/test parts), ``floor_`` (per target: 0 when the target is never
    negative over the training part — counts, volumes, generation, prices — and every
    forecast and band of it is raised to 0; else None), with intervals="conformal"
    ``conformal_`` (offsets (horizon, targets, quantiles)) and ``relative_bands_`` (per
    target: the least scale of relative offsets, which multiply the forecast, for a target
    positive over the training part; else None: added as they are), and ``test_backtest_``
    (the backtest on the test part, or None).
    """

    def __init__(self, lookback: int | None = None, horizon: int = 12, strategy: str = "auto",
                 cell: str = "lstm", hidden_size: int = 64, num_layers: int = 1, dropout: float = 0.0,
                 loss: str = "mse", intervals: str | None = "conformal", quantiles=(0.1, 0.5, 0.9),
                 scaler: str = "standard", relative: bool = True, period="auto", batch_size: int = 32,
                 dtype: str = "float32", seed: int = 0, ensemble: int = 3):
        where = "Forecaster"
        self.lookback = _optional_int(lookback, "lookback", where)
        self.horizon = check_positive_int(horizon, "horizon", where)
        self.strategy = check_choice(strategy, "strategy", STRATEGIES + ("auto",), where)
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
        self.relative = relative if relative == "seasonal" else check_flag(relative, "relative", where)
        if period != "auto" and period is not None:
            period = check_positive_int(period, "period", where, minimum=2)
        self.period = period
        self.batch_size = check_positive_int(batch_size, "batch_size", where)
        self.dtype = check_task_dtype(dtype, where)
        self.seed = check_seed(seed, where)
        self.ensemble = check_positive_int(ensemble, "ensemble", where)
        self.model_ = None
        self.history_ = None
        self.members_, self.blend_, self.classical_, self.conformal_ = [], {"rnn": 1.0}, {}, None
        self.relative_bands_ = None

    # -- parameters ------------------------------------------------------------------------
    def get_params(self) -> dict:
        """The constructor arguments (JSON-able)."""
        return {"lookback": self.lookback, "horizon": self.horizon, "strategy": self.strategy,
                "cell": self.cell, "hidden_size": self.hidden_size, "num_layers": self.num_layers,
                "dropout": self.dropout, "loss": self.loss, "intervals": self.intervals,
                "quantiles": list(self.quantiles), "scaler": self.scaler, "relative": self.relative,
                "period": self.period, "batch_size": self.batch_size, "dtype": self.dtype, "seed": self.seed,
                "ensemble": self.ensemble}

    def __repr__(self) -> str:
        return "Forecaster(" + ", ".join(f"{k}={v!r}" for k, v in self.get_params().items()) + ")"

    def _check_fitted(self, what: str) -> None:
        if self.model_ is None:
            raise RnnkitError(f"Forecaster.{what}: the forecaster is not fitted; call fit(series) or "
                              f"Forecaster.load(directory) first")

    # -- fit -----------------------------------------------------------------------------------
    def fit(self, series, covariates=None, *, columns=None, targets=None, covariate_columns=None,
            date_column=None, fill: str = "auto", val_fraction: float = 0.15, test_fraction: float = 0.0,
            epochs: int | None = None, time_limit: float | None = None, max_steps: int | None = None,
            optimizer: str = "adam", lr: float = 5e-3, clip: float | None = 1.0, patience: int | None = None,
            out_dir=None, quiet: bool = True, callbacks=None) -> "Forecaster":
        """Train on ``series``; returns self.

        Args:
            series: an array (N,) or (N, F), or a CSV path (read with
                :func:`rnnkit.data.read_csv`: ``columns`` are the series columns, default
                every column but ``date_column`` and ``covariate_columns``; ``fill`` says
                what to do with empty cells: "auto" (interpolate, and say so), "error",
                "interpolate", "ffill", "drop").
            covariates: (N, C) extra inputs known for the past (arrays only).
            targets: which series columns to forecast (indices, or names for a CSV;
                default all). The other columns are inputs only (direct strategy).
            val_fraction, test_fraction: the time-ordered validation part (rolling
                origins: model selection, early stopping, the refit's step count) and
                test part (default none; scored by a backtest, in ``test_backtest_``
                and the report, and never trained on). Both shrink to fit a short series.
            time_limit: seconds for the whole fit (all candidates, selection and refit, the
                backtests and the run directory), or a :class:`rnnkit.deadline.Deadline`; a
                backtest that would not fit in the time left uses every k-th origin (its
                "time_limit_note" says so).
            epochs, max_steps, optimizer, lr, clip, patience: as in
                :func:`rnnkit.tasks.policy.fit_with_budget` (patience counts
                validations a fixed number of steps apart).
            out_dir: write the run directory (:mod:`rnnkit.tasks.run`; also ``backtest.csv``
                and ``predictions.csv``, the forecast after the end of the data).
            quiet: False shows a progress bar (on a terminal) or log lines.
            callbacks: more :class:`~rnnkit.train.Callback` objects for the Trainer.

        Shapes:
            series (N,) or (N, F), covariates (N, C)
        """
        from rnnkit.data.series import make_scaler
        from rnnkit.tasks.forecast_select import plan_split
        from rnnkit.tasks.policy import fit_with_budget

        where = "Forecaster.fit"
        deadline = as_deadline(time_limit, where)
        if self.strategy == "auto":
            from rnnkit.tasks.forecast_select import auto_fit

            return auto_fit(self, series, covariates, columns=columns, targets=targets,
                            covariate_columns=covariate_columns, date_column=date_column, fill=fill,
                            val_fraction=val_fraction, test_fraction=test_fraction, epochs=epochs,
                            time_limit=deadline, max_steps=max_steps, optimizer=optimizer, lr=lr, clip=clip,
                            patience=patience, out_dir=out_dir, quiet=quiet, callbacks=callbacks)
        check_choice(fill, "fill", FILLS, where)
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
        H = self.horizon
        H_eff = H if self.strategy == "direct" else 1
        val_fraction = check_number(val_fraction, "val_fraction", where, 0.0, 1.0, high_open=True)
        test_fraction = check_number(test_fraction, "test_fraction", where, 0.0, 1.0, high_open=True)
        # period (on the rows before any test part), then the split and lookback that fit
        seen = N - (max(int(round(N * test_fraction)), H) if test_fraction > 0 else 0)
        if self.period == "auto":
            # the dates' calendar period (else the autocorrelation peak), kept when the season
            # of the rows before the validation and test parts is real (season.choose_period)
            from rnnkit.tasks.forecast.season import choose_period

            early = values[:max(seen - H, min(seen, 2)), self.targets_[0]]
            self.period_, self.seasonal_strength_ = choose_period(early, dates, fallback=infer_period(early))
        else:
            self.period_ = self.period
        n_train, n_val, n_test, self.lookback_ = plan_split(N, H, H_eff, self._wanted_lookback(), val_fraction,
                                                            test_fraction, where)
        self.split_ = {"train": n_train, "validation": n_val, "test": n_test}
        train_vals = values[:n_train]
        self.seasonal_ = bool(self.relative == "seasonal" and self.period_ and self.lookback_ >= self.period_)

        # scaling and the MASE scale from the training part only
        full = values if cov is None else np.concatenate([values, cov], axis=1)
        self.scaler_ = make_scaler(self.scaler).fit(full[:n_train])
        # a target constant over the training part is forecast as that constant, exactly
        self.constant_targets_ = [float(full[0, t]) if np.ptp(full[:n_train, t]) == 0 else None
                                  for t in self.targets_]
        # a target never negative over the training part (counts, volumes, generation, prices)
        # is forecast, with its bands, at 0 or above
        self.floor_ = [0.0 if np.min(full[:n_train, t]) >= 0 else None for t in self.targets_]
        m = self.period_ if self.period_ is not None and self.period_ < n_train else 1
        self.mase_lag_ = m
        diffs = np.abs(train_vals[m:, self.targets_] - train_vals[:-m, self.targets_])
        scale = diffs.mean(axis=0)
        self.mase_scale_ = np.where(scale > 0, scale, 1.0)

        z = self.scaler_.transform(full)
        x_tr, y_tr = self._train_arrays(z, 0, n_train)
        x_all, y_all = self._train_arrays(z, 0, n_train + n_val)
        val_batches = None
        if n_val:
            x_va, y_va = self._train_arrays(z, n_train, n_train + n_val)
            val_batches = [{"x": x_va[:, i:i + 256], "y": y_va[i:i + 256]} for i in range(0, y_va.shape[0], 256)]
        bs = min(self.batch_size, y_tr.shape[0])

        def batches_of(x_w, y_w):
            n = y_w.shape[0]

            def train_batches(epoch, rng):
                order = rng.permutation(n)
                # a last batch of fewer than half a batch joins the one before (no noisy tiny steps)
                starts = list(range(0, n, bs))
                if len(starts) > 1 and n - starts[-1] < bs // 2:
                    starts.pop()
                ends = starts[1:] + [n]
                return [{"x": x_w[:, order[s:e]], "y": y_w[order[s:e]]} for s, e in zip(starts, ends)]
            return train_batches

        # until training ends: no residual spread yet, no test scores (the run directory's model
        # during training is a point forecaster)
        self.history_, self.test_backtest_ = None, None
        self.members_, self.blend_, self.classical_, self.conformal_ = [], {"rnn": 1.0}, {}, None
        self.relative_bands_ = None
        self.noise_std_ = np.zeros(y_tr.shape[1])
        writer = [] if out_dir is None else [RunWriter(out_dir, self._meta)]
        probe = {"x": x_tr[:, :bs], "y": y_tr[:bs]}
        # after training: the residuals and the backtests (a forward pass per window), the report
        n_eval = y_tr.shape[0] + 2 * (n_val + n_test)
        candidate = getattr(self, "candidate_", False)     # one of strategy="auto"'s: writes only train/
        figures = 0 if out_dir is None or candidate else 1 + (n_test >= H)
        # strategy="auto" refits only the candidate it keeps (refit_members), so the candidates defer it
        defer = getattr(self, "defer_refit_", False)

        def reserve(step_s):
            return after_training(step_s, bs, n_eval, figures, decode_factor=self._passes_per_window())

        fitted = fit_with_budget(self._build_model, batches_of(x_tr, y_tr), val_batches, y_tr.shape[0], bs, probe,
                                 time_limit=deadline, reserve=reserve, max_steps=max_steps, epochs=epochs, lr=lr,
                                 seed=self.seed, quiet=quiet, optimizer=optimizer, clip=clip, patience=patience,
                                 refit_batches=None if defer or not n_val else batches_of(x_all, y_all),
                                 refit_items=y_all.shape[0], out_dir=train_dir(out_dir),
                                 callbacks=writer + check_callbacks(callbacks, where), min_steps=300,
                                 steps_cap=1000, where=where)
        self.history_, self.refit_steps_ = fitted.history, fitted.refit_steps
        if defer:
            self.refit_plan_ = {"batches": batches_of(x_all, y_all), "grow": y_all.shape[0] / y_tr.shape[0],
                                "budget": fitted.budget, "lr": lr, "optimizer": optimizer, "clip": clip}
        # scores and residuals of the network selected before the refit saw the validation rows
        self.model_ = fitted.selected
        x_res, y_res = (x_va, y_va) if n_val else (x_tr, y_tr)
        if self.intervals == "quantile":
            self.noise_std_ = np.zeros(y_res.shape[1])           # the quantile head carries the spread
        else:
            resid = y_res.astype(np.float64) - np.asarray(self._forward(x_res, sample=False), dtype=np.float64)
            self.noise_std_ = np.sqrt((resid ** 2).mean(axis=0))                    # (H·out,)
        self.val_mase_ = self.val_backtest_ = None
        per_origin = forward_seconds(fitted.budget.step_seconds, bs, 1, self._passes_per_window())
        report_s = after_training(None, 1, 0, figures)
        first = max(self.lookback_, self.period_ or 1)
        if n_val and n_train + n_val - H >= max(n_train, first):
            self.val_backtest_ = self._backtest_in_time(values[:n_train + n_val],
                                                        None if cov is None else cov[:n_train + n_val], n_train,
                                                        deadline, report_s + per_origin * n_test, per_origin)
            self.val_mase_ = self.val_backtest_["metrics"]["model"]["mase"]
        if self.intervals == "conformal":
            # residuals of held-out rows; without a validation part those of the training rows (narrower)
            res = self.val_backtest_
            if res is None and n_train - H >= first:
                res = self.backtest(values[:n_train], None if cov is None else cov[:n_train], seed=self.seed)
            tv = values[:n_train, self.targets_]
            self.relative_bands_ = relative_scales(tv)
            if res is not None:
                actual, point = res["actual"], res["forecast"]
            else:                   # too short even for that: the spread of naive forecasts
                o = np.arange(1, max(n_train - H + 1, 2))
                actual = tv[np.minimum(o[:, None] + np.arange(H), n_train - 1)]
                point = np.repeat(tv[o - 1][:, None], H, axis=1)
            resid = (actual - point) / band_scale(point, self.relative_bands_)
            self.conformal_ = conformal_offsets(resid, self.quantiles)
        self.model_ = fitted.model

        if n_test >= H:
            self.test_backtest_ = self._backtest_in_time(values, cov, n_train + n_val, deadline, report_s, per_origin)
        if out_dir is not None and not candidate:
            self.write_run(out_dir, values, cov, dates, deadline)
        return self

    def _passes_per_window(self) -> float:
        """Forward passes of the network per forecast window: H for a recursive forecaster,
        the Monte-Carlo draws for intervals="mc_dropout"."""
        return float((self.horizon if self.strategy == "recursive" else 1)
                     * (100 if self.intervals == "mc_dropout" else 1))

    def _backtest_in_time(self, values, cov, start: int, deadline, margin: float, per_origin: float) -> dict:
        """:meth:`backtest` from ``start``, on every k-th origin: k = 1 up to
        :data:`MAX_ORIGINS` origins (a long series' neighbouring origins share all but one
        of their rows: a thousand evenly spread say what tens of thousands would), more when
        all of them would take ``deadline`` past ``margin`` seconds left (``per_origin``
        seconds each, estimated); then "time_limit_note" says so."""
        n = max(1, len(values) - self.horizon + 1 - start)
        room = None if deadline.left() is None else deadline.left() - margin
        spread = -(-n // MAX_ORIGINS)
        step = spread
        if room is not None and n * per_origin / spread > room:
            step = max(spread, min(n, int(np.ceil(n * per_origin / max(room, per_origin)))))
        res = self.backtest(values, cov, start=start, step=step, seed=self.seed)
        if step > spread:
            res["time_limit_note"] = (f"evaluated on {len(res['origins'])} of {n} origins (one in {step}) "
                                      f"because of the time limit")
        return res

    # -- prediction ----------------------------------------------------------------------------
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
        return self._shape_out(self._point(values, cov, [len(values)], None if fc is None else fc[None])[0])

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
        if self.intervals == "conformal":
            point = self._point(values, cov, [len(values)], None if fc is None else fc[None])[0]   # (H, T)
            return self._conformal_dict(point)
        zwin = self._windows_for(values, cov, [len(values)])
        zfc = None if fc is None else self._scale_cov(fc)[None]
        q = self._bands(zwin, zfc, n_samples, seed, where)[0]                 # (H, T, Q)
        return self._band_dict(q)

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
            values = as_values(series, "series", where)
            cov = None if covariates is None else as_values(covariates, "covariates", where)
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
        fc = cov[origins[:, None] + np.arange(H)] if self.strategy == "recursive" and self.n_covariates_ else None
        tg = list(self.targets_)
        actual = values[origins[:, None] + np.arange(H)][:, :, tg]
        result = {"origins": origins, "horizon": H, "period": m, "mase_lag": self.mase_lag_, "actual": actual}
        result["forecast"] = self._point(values, cov, origins, fc)
        if self.intervals == "conformal" and self.conformal_ is not None:
            q = self._conformal_bands(result["forecast"])
            result["lower"], result["upper"] = q[..., 0], q[..., -1]
        elif self.intervals in ("quantile", "mc_dropout"):
            zwin, zfc = self._windows_for(values, cov, origins), None if fc is None else self._scale_cov(fc)
            q = self._floor(self._unscale(self._bands(zwin, zfc, n_samples, seed, where), axis_targets=-2),
                            axis_targets=-2)
            result["lower"], result["upper"] = q[..., 0], q[..., -1]
        if "lower" in result:
            inside = (actual >= result["lower"]) & (actual <= result["upper"])
            result["coverage"] = float(inside.mean())
        result["naive"] = np.repeat(values[origins - 1][:, None, tg], H, axis=1)
        scale = self.mase_scale_
        metrics = {"model": forecast_metrics(actual, result["forecast"], scale),
                   "naive": forecast_metrics(actual, result["naive"], scale), "seasonal_naive": None}
        if m:
            result["seasonal_naive"] = np.stack([seasonal_naive(values[:, tg], o, H, m) for o in origins])
            metrics["seasonal_naive"] = forecast_metrics(actual, result["seasonal_naive"], scale)
        result["metrics"] = metrics
        return result

    def score(self, series, covariates=None, **kwargs) -> float:
        """Negative MASE of a backtest on ``series`` (higher is better, as scikit-learn scores)."""
        return -self.backtest(series, covariates, **kwargs)["metrics"]["model"]["mase"]

    # -- the run directory and files ------------------------------------------------------------
    def write_run(self, out_dir, values, cov=None, dates=None, deadline=None) -> None:
        """Write the run directory of a fitted forecaster (:mod:`rnnkit.tasks.run`): the model,
        ``metrics.json``, ``backtest.csv``, ``predictions.csv``, the plots (while ``deadline``,
        a :class:`rnnkit.deadline.Deadline`, allows) and the report.

        Shapes:
            values (N, F) the series it was fitted on; cov (N, C) or None; dates: N labels or None
        """
        from rnnkit.tasks.forecast.report import write_forecast_outputs, write_forecast_report
        from rnnkit.tasks.run import writes_files

        if not writes_files():      # data parallel: rank 0 alone writes the run directory
            return
        self.save(out_dir)
        write_forecast_outputs(self, out_dir, values, cov, dates)
        write_forecast_report(self, out_dir, values, cov, dates, deadline)

    def _read_like_fit(self, path, where: str):
        self._check_fitted(where)
        opts = self.csv_options_ or {"columns": None, "covariate_columns": None, "date_column": None,
                                     "fill": "error"}
        values, cov, _, dates = self._read(path, None, opts["columns"], opts["covariate_columns"],
                                           opts["date_column"], opts["fill"], where)
        self._check_like_fit(values, cov, where)
        return values, cov, dates

    def predict_file(self, path) -> str:
        """The forecast of the ``horizon`` rows after the history in a CSV file (read with
        fit's columns, date column and fill) as CSV: step, row, target, forecast[, lower, upper]
        [, date] (:func:`rnnkit.tasks.forecast.report.forecast_csv`)."""
        from rnnkit.tasks.forecast.report import forecast_csv

        where = "Forecaster.predict_file"
        values, cov, dates = self._read_like_fit(path, where)
        if self.n_covariates_ and self.strategy == "recursive":
            raise RnnkitError(f"{where}: a recursive forecaster with covariates needs their future values; "
                              f"use Forecaster.predict(history, covariates, future_covariates)")
        return forecast_csv(self, values, cov, dates)

    def evaluate_file(self, path) -> dict:
        """A rolling-origin :meth:`backtest` over every origin of a CSV file: MAE, RMSE, MAPE,
        sMAPE and MASE of the model next to the naive and seasonal-naive baselines."""
        values, cov, _ = self._read_like_fit(path, "Forecaster.evaluate_file")
        res = self.backtest(values, cov, seed=self.seed)
        out = {"rows": len(values), "origins": int(len(res["origins"])), "horizon": self.horizon,
               "period": res["period"], "mase_lag": res["mase_lag"], "metrics": res["metrics"]}
        if "coverage" in res:
            out["coverage"], out["band"] = res["coverage"], [self.quantiles[0], self.quantiles[-1]]
        return out

    # -- files ---------------------------------------------------------------------------------
    def _state(self) -> dict:
        return {"scaler": self.scaler_.to_dict(), "n_features": self.n_features_,
                "n_covariates": self.n_covariates_, "columns": list(self.columns_), "targets": list(self.targets_),
                "univariate": bool(self.univariate_), "lookback": int(self.lookback_),
                "period": None if self.period_ is None else int(self.period_), "mase_lag": int(self.mase_lag_),
                "mase_scale": [float(v) for v in self.mase_scale_], "split": dict(self.split_),
                "noise_std": [float(v) for v in self.noise_std_], "csv_options": self.csv_options_,
                "seasonal": bool(getattr(self, "seasonal_", False)),
                "constant_targets": list(self.constant_targets_),
                "floor": list(getattr(self, "floor_", None) or [None] * len(self.targets_)),
                "blend": {k: float(v) for k, v in self.blend_.items()},
                "classical": {k: [c.to_dict() for c in v] for k, v in self.classical_.items()},
                "conformal": None if self.conformal_ is None else np.asarray(self.conformal_).tolist(),
                "relative_bands": getattr(self, "relative_bands_", None),
                "members": len(self.members_)}

    def _meta(self) -> dict:
        """The task's meta for config.json: parameters and the fitted state."""
        return {"task": TASK, "params": self.get_params(), "state": self._state()}

    def save(self, directory) -> str:
        """Write the fitted forecaster to ``directory`` (config.json + model.npz); returns the path."""
        self._check_fitted("save")
        h = self.history_
        meta = {**self._meta(), "training": training_meta(h, finished=h is not None and not h.interrupted)}
        if getattr(self, "test_backtest_", None) is not None:
            meta["test_metrics"] = self.test_backtest_["metrics"]
        if not self.members_:
            return save_task(directory, self.model_, meta)
        from rnnkit.tasks.run import write_model, writes_files

        if not writes_files():
            return os.fspath(directory)
        # the seed ensemble's other networks ride in model.npz under "member{k}." prefixes
        arrays = dict(self.model_.state_dict())
        for k, net in enumerate(self.members_, 1):
            arrays.update({f"member{k}.{name}": a for name, a in net.state_dict().items()})
        return write_model(directory, self.model_, meta, arrays=arrays)

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
            fc.seasonal_ = bool(s.get("seasonal", False))
            fc.constant_targets_ = s.get("constant_targets") or [None] * len(fc.targets_)
            if len(fc.constant_targets_) != len(fc.targets_) or not all(
                    c is None or (isinstance(c, (int, float)) and not isinstance(c, bool) and np.isfinite(c))
                    for c in fc.constant_targets_):
                raise ValueError("constant_targets must hold one finite number or null per target")
            fc.floor_ = s.get("floor") or [None] * len(fc.targets_)      # runs saved before floors: none
            if len(fc.floor_) != len(fc.targets_) or not all(
                    f is None or (isinstance(f, (int, float)) and not isinstance(f, bool) and np.isfinite(f))
                    for f in fc.floor_):
                raise ValueError("floor must hold one finite number or null per target")
            fc.blend_ = {str(k): float(v) for k, v in s.get("blend", {"rnn": 1.0}).items()}
            fc.classical_ = {str(k): [Classical.from_dict(d) for d in v] for k, v in s.get("classical", {}).items()}
            if any(k != "rnn" and len(fc.classical_.get(k, ())) != len(fc.targets_) for k in fc.blend_):
                raise ValueError("blend names a classical method without one fitted state per target")
            conf = s.get("conformal")
            fc.conformal_ = None if conf is None else np.asarray(conf, dtype=np.float64)
            if fc.conformal_ is not None and fc.conformal_.shape != (fc.horizon, len(fc.targets_), len(fc.quantiles)):
                raise ValueError("conformal offsets must have shape (horizon, targets, quantiles)")
            rel = s.get("relative_bands")          # runs saved before relative bands: absolute ones
            fc.relative_bands_ = None if rel is None else [None if v is None else float(v) for v in rel]
            if rel is not None and (len(rel) != len(fc.targets_)
                                    or any(v is not None and not v > 0 for v in fc.relative_bands_)):
                raise ValueError("relative_bands must hold one positive number or null per target")
            n_members = int(s.get("members", 0))
            model = build(ckpt.config)
        except (KeyError, TypeError, ValueError, AttributeError, ResourceLimitError) as exc:
            raise CheckpointError(f"{directory}: config.json does not describe a valid forecaster: {exc}") from exc
        extra = {k: a for k, a in ckpt.arrays.items() if k.startswith("member")}
        ckpt.arrays = {k: a for k, a in ckpt.arrays.items() if k not in extra}
        fc.model_ = restore_model(directory, ckpt, model, fc._build_model().config(),
                                  "does not match the forecaster's parameters and data description")
        fc.members_ = []
        for k in range(1, n_members + 1):
            part = {name[len(f"member{k}."):]: a for name, a in extra.items() if name.startswith(f"member{k}.")}
            ckpt.arrays = part
            fc.members_.append(restore_model(directory, ckpt, build(ckpt.config)))
        if sum(len(m.state_dict()) for m in fc.members_) != len(extra):
            raise CheckpointError(f"{directory}: model.npz holds ensemble members that config.json does not list")
        fc.test_backtest_ = fc.history_ = None
        return fc
