"""The forecaster's data handling: reading series, scaling, windows, the network's
forward pass and the direct and recursive strategies (formulas in :mod:`rnnkit.tasks.forecast`).

:class:`Windows` is a base class of :class:`~rnnkit.tasks.forecast.Forecaster`: it reads
the fitted attributes (``scaler_``, ``lookback_``, ``targets_``, ...) the forecaster sets.
"""

from __future__ import annotations

import os

import numpy as np

from rnnkit._checks import check_positive_int
from rnnkit.data._util import first_bad_magnitude, magnitude_problem
from rnnkit.errors import RnnkitError
from rnnkit.tasks.forecast.combine import band_scale

__all__ = ["Windows", "as_values"]


def as_values(x, name: str, where: str) -> np.ndarray:
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
    bad = first_bad_magnitude(arr)
    if bad is not None:
        raise RnnkitError(f"{where}: {name} row {bad[0]}, column {bad[1]}: value {arr[bad]!r} "
                          f"{magnitude_problem(float(arr[bad]))}")
    return arr


class Windows:
    """Reading, scaling and windowing a series, and running the network over windows."""

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
        values = as_values(series, "series", where)
        cov = None if covariates is None else as_values(covariates, "covariates", where)
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

    def _base(self, zwin: np.ndarray, H: int) -> np.ndarray:
        """What each output is a change from: the seasonal-naive value (``seasonal_``), the
        window's last value (relative) or 0.

        Shapes:
            zwin (n, L, F + C)  ->  (n, H, F)
        """
        F = self.n_features_
        if getattr(self, "seasonal_", False):
            m, L = self.period_, zwin.shape[1]
            return zwin[:, L - m + (np.arange(H) % m), :F]
        ref = zwin[:, -1, :F] if self.relative else np.zeros((zwin.shape[0], F))
        return np.repeat(ref[:, None, :], H, axis=1)

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
        x, _ = self._inputs(win)
        fut = z[origins[:, None] + np.arange(H)][:, :, cols]                 # (n, H, out)
        y = fut - self._base(win, H)[:, :, cols]
        return x, y.reshape(len(origins), -1).astype(self.dtype)

    def _build_model(self, seed: int | None = None):
        from rnnkit.models import SequenceRegressor

        H = self.horizon if self.strategy == "direct" else 1
        quantile = self.intervals == "quantile"
        return SequenceRegressor(output_size=H * len(self._out_cols()), cell=self.cell,
                                 hidden_size=self.hidden_size, num_layers=self.num_layers,
                                 input_size=self.n_features_ + self.n_covariates_,
                                 loss="quantile" if quantile else self.loss,
                                 quantiles=list(self.quantiles) if quantile else None, pooling="last",
                                 dropout=self.dropout, dtype=self.dtype, seed=self.seed if seed is None else seed)

    def _forward(self, x: np.ndarray, sample: bool) -> np.ndarray:
        """The network's raw outputs, the median over the seed ensemble (``members_``);
        ``sample`` keeps dropout on (Monte-Carlo dropout, the first network).

        Shapes:
            x (L, n, F + C) -> (n, out) or (n, out, Q) for quantile models
        """
        m = self.model_
        if not sample:
            members = getattr(self, "members_", None)
            if not members:
                return m.predict(x)
            return np.median(np.stack([net.predict(x) for net in [m, *members]]), axis=0)
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
            x, _ = self._inputs(win)
            base = self._base(win, H)[:, :, tg]
            raw = self._forward(x, sample=bool(samples)).astype(np.float64)
            if samples:
                raw = raw + rng.standard_normal(raw.shape) * self.noise_std_.reshape(1, -1)
            if self.intervals == "quantile":
                out = raw.reshape(len(win), H, len(tg), len(self.quantiles)) + base[..., None]
            else:
                out = raw.reshape(len(win), H, len(tg)) + base
        else:
            F = self.n_features_
            cur = win.copy()
            steps = []
            fut = None if zfut_cov is None else (np.tile(zfut_cov, (S, 1, 1)) if samples else zfut_cov)
            for h in range(H):
                x, _ = self._inputs(cur)
                nxt = self._forward(x, sample=bool(samples)).astype(np.float64).reshape(len(cur), F)
                if samples:
                    nxt = nxt + rng.standard_normal(nxt.shape) * self.noise_std_.reshape(1, F)
                nxt = nxt + self._base(cur, 1)[:, 0]
                steps.append(nxt)
                row = nxt if fut is None else np.concatenate([nxt, fut[:, h]], axis=1)
                cur = np.concatenate([cur[:, 1:], row[:, None]], axis=1)
            out = np.stack(steps, axis=1)[:, :, tg]                           # (S·n, H, n_targets)
        if samples:
            out = out.reshape((S, n) + out.shape[1:])
        return out

    def _point(self, values, cov, origins, fut_cov=None) -> np.ndarray:
        """The forecast from each origin in original units: Σ w_k · forecast_k over ``blend_``
        (the network "rnn" and classical methods, :mod:`rnnkit.tasks.forecast.combine`).

        Shapes:
            values (N, F), cov (N, C) or None, origins (n,), fut_cov (n, H, C) or None
            -> (n, H, n_targets)
        """
        from rnnkit.tasks.forecast.combine import blend

        origins = np.asarray(origins)
        parts = {}
        if "rnn" in self.blend_:
            zwin = self._windows_for(values, cov, origins)
            out = self._forecast_scaled(zwin, None if fut_cov is None else self._scale_cov(fut_cov))
            if self.intervals == "quantile":
                out = np.sort(out, axis=-1)[..., self._median_index()]
            parts["rnn"] = self._unscale(out)
        for name in self.blend_:
            if name != "rnn":
                parts[name] = np.stack([c.forecast(values[:, t], origins, self.horizon)
                                        for c, t in zip(self.classical_[name], self.targets_)], axis=-1)
        out = blend(self.blend_, parts)
        for k, c in enumerate(getattr(self, "constant_targets_", None) or []):
            if c is not None:
                out[..., k] = c
        return self._floor(out)

    def _floor(self, a: np.ndarray, axis_targets: int = -1) -> np.ndarray:
        """``a`` raised to each target's floor (``floor_``: 0 for a target never negative in
        training, None for none), the targets on axis ``axis_targets``."""
        floors = getattr(self, "floor_", None) or []
        if all(f is None for f in floors):
            return a
        shape = [1] * a.ndim
        shape[axis_targets] = len(floors)
        low = np.array([-np.inf if f is None else f for f in floors]).reshape(shape)
        return np.maximum(a, low)

    def _conformal_bands(self, point: np.ndarray) -> np.ndarray:
        """point + the validation offsets at each level, sorted and floored; relative offsets
        scaled by the point (:func:`rnnkit.tasks.forecast.combine.band_scale`).
        Shapes: point (..., H, n_targets) -> (..., H, n_targets, Q)"""
        scale = band_scale(point, getattr(self, "relative_bands_", None))
        q = np.sort(point[..., None] + scale[..., None] * self.conformal_, axis=-1)
        return self._floor(q, axis_targets=-2)

    def _conformal_dict(self, point: np.ndarray) -> dict:
        """Bands of intervals="conformal": the point forecast plus the validation offsets.
        Shapes: point (H, n_targets) -> like :meth:`_band_dict`"""
        q = self._conformal_bands(point)                                         # (H, T, Q)
        out = self._shape_out(np.moveaxis(q, -1, 0))                           # (Q, ...)
        return {"lower": out[0], "median": self._shape_out(point), "upper": out[-1],
                "quantiles": np.moveaxis(out, 0, -1), "levels": list(self.quantiles)}

    def _unscale(self, z: np.ndarray, axis_targets: int = -1) -> np.ndarray:
        """Scaled target values -> original units (the targets on axis ``axis_targets``)."""
        moved = np.moveaxis(z, axis_targets, -1)
        out = self.scaler_.inverse_transform(moved, columns=list(self.targets_))
        # a target constant over the training part is forecast as that constant, exactly
        for k, c in enumerate(getattr(self, "constant_targets_", None) or []):
            if c is not None:
                out[..., k] = c
        return np.moveaxis(out, -1, axis_targets)

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

    # -- targets, lookback, histories and bands ---------------------------------------------
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

    def _wanted_lookback(self) -> int:
        """The lookback asked for, or 2 periods when one is known, else max(2·horizon, 24);
        :func:`~rnnkit.tasks.forecast_select.plan_split` shortens it for short series."""
        if self.lookback is not None:
            return self.lookback
        return int(2 * self.period_ if self.period_ else max(2 * self.horizon, 24))

    def _history(self, history, covariates, where):
        values = as_values(history, "history", where)
        cov = None if covariates is None else as_values(covariates, "covariates", where)
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
        fc = as_values(future_covariates, "future_covariates", where)
        if fc.shape != (self.horizon, self.n_covariates_):
            raise ValueError(f"{where}: expected future_covariates of shape {(self.horizon, self.n_covariates_)}, "
                             f"got {fc.shape}")
        return fc

    def _shape_out(self, a: np.ndarray) -> np.ndarray:
        """(..., H, n_targets) -> (..., H) for a univariate forecaster."""
        return a[..., 0] if self.univariate_ and len(self.targets_) == 1 else a

    def _median_index(self) -> int:
        return int(np.argmin(np.abs(np.asarray(self.quantiles) - 0.5)))

    def _band_dict(self, q: np.ndarray) -> dict:
        out = self._floor(self._unscale(q, axis_targets=-2), axis_targets=-2)
        out = self._shape_out(np.moveaxis(out, -1, 0))                                  # (Q, ...)
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
