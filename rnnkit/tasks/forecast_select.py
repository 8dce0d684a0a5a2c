r"""How a forecaster splits a series of any length, and how ``strategy="auto"`` chooses.

Splitting (:func:`plan_split`), for N rows, horizon H and a one-step (recursive) or
H-step (direct) network, H_e = 1 or H:

    test        max(round(N · test_fraction), H) rows when test_fraction > 0 and the rest
                still trains; otherwise none
    validation  max(round(N · val_fraction), H + min(H, (N − H)/4)) rows: rolling origins o in the part,
                each scored over its H rows (as many origins as fit: n_val − H + 1);
                none when the rows before it could not hold a training window
    lookback    the wanted one, shortened so that the training part holds at least
                min(8, (n_train − H_e) / 2) windows; at least one row

so a short series is never refused: the parts shrink, down to training without
validation. Only a series with fewer than H_e + 2 rows cannot train at all.

Choosing (:func:`auto_fit`): candidates are direct and recursive networks (recursive
only when every series column is a target and there are no covariates), each with
outputs relative to the last value and, when a seasonal period is known and fits in the
lookback, to the seasonal-naive value. Each candidate is fitted with a share of the time
limit on the training part; the one with the lowest MASE over the validation origins is
the network. Then the classical methods (:mod:`rnnkit.tasks.forecast.classical`, fitted on
the training part; see :func:`_fit_rows`) forecast the same origins, and the forecast kept
is the mean of ETS, Theta, ARIMA and, when the series has a (real) seasonal period,
seasonal naive, joined by the network or replaced by another candidate only when that is
clearly better on the validation origins (:func:`rnnkit.tasks.forecast.combine.choose_forecast`);
a very short series gets the classical mean. Before forecasting the future, everything
kept is refitted on every row but the test part: the classical methods, and (when it is
in the blend) the network ``ensemble`` times with seeds seed, seed+1, … (the median of
their outputs is the network's forecast; :func:`refit_members`). The conformal bands come
from the kept forecast's residuals at every backtest origin of those rows (the validation
origins alone when the network is in the blend).
"""

from __future__ import annotations

import os

import numpy as np

from rnnkit.deadline import Deadline, after_training, as_deadline
from rnnkit.errors import RnnkitError

__all__ = ["plan_split", "auto_fit"]


def plan_split(N: int, H: int, H_eff: int, want_lookback: int, val_fraction: float, test_fraction: float,
               where: str = "Forecaster.fit") -> tuple[int, int, int, int]:
    """(n_train, n_val, n_test, lookback) for ``N`` rows (module docstring)."""
    if N < H_eff + 2:
        raise RnnkitError(f"{where}: the series has {N} rows; a forecaster needs at least {H_eff + 2} "
                          f"(horizon {H_eff} of targets after at least 2 rows of inputs)")

    def lookback(n_train: int) -> int:
        min_windows = max(1, min(8, (n_train - H_eff) // 2))
        return max(1, min(want_lookback, n_train - H_eff - min_windows + 1))

    n_test = max(int(round(N * test_fraction)), H) if test_fraction > 0 else 0
    if N - n_test < H_eff + 2 + H:
        n_test = 0
    avail = N - n_test
    # at least H + min(H, (N − H)/4) rows: a short series still gets several origins
    n_val = max(int(round(N * val_fraction)), H + min(H, (avail - H) // 4)) if val_fraction > 0 else 0
    # validation only when the rows before it still hold windows of a useful lookback
    if n_val and (avail - n_val < H_eff + 3 or lookback(avail - n_val) < min(want_lookback, 2)):
        n_val = H if avail - H >= H_eff + 3 else 0
    n_train = avail - n_val
    return n_train, n_val, n_test, lookback(n_train)


def refit_members(fc, count: int, time_limit: float | None = None) -> None:
    """Train ``count`` fresh networks of ``fc`` (seeds seed, seed+1, …) on the training and
    validation rows for the selected steps, scaled by the data grown; their median is the
    network's forecast. Needs a fit that deferred its refit (``fc.defer_refit_``)."""
    import math
    import time

    from rnnkit.tasks.policy import _cap, train_config
    from rnnkit.train import TrainConfig, Trainer

    plan = fc.__dict__.pop("refit_plan_")
    h = fc.history_
    steps = max(1, math.ceil((h.best_step or h.step or 1) * plan["grow"]))
    t0, models = time.perf_counter(), []
    for k in range(count):
        left = None if time_limit is None else time_limit - (time.perf_counter() - t0)
        if left is not None and models and left < 1.0:
            break                                        # out of time: the members trained so far
        model = fc._build_model(fc.seed + k)
        cfg = train_config(_cap(plan["budget"], steps), lr=plan["lr"], has_validation=False,
                           time_limit=None if left is None else max(left, 1.0) / (count - k), seed=fc.seed + k,
                           quiet=True, optimizer=plan["optimizer"], clip=plan["clip"])
        Trainer(model, TrainConfig(**cfg), None).fit(plan["batches"], None)
        model.eval()
        models.append(model)
    fc.model_, fc.members_, fc.refit_steps_ = models[0], models[1:], steps


def _classical_forecasts(fits: dict, values, tg, origins, H: int) -> dict:
    """name -> (n, H, T) forecasts of every fitted classical method (one fit per target)."""
    return {name: np.stack([c.forecast(values[:, t], origins, H) for c, t in zip(cs, tg)], axis=-1)
            for name, cs in fits.items()}


def backtest_origins(n_seen: int, H: int, period) -> np.ndarray:
    """Every origin o of the rows seen whose H rows are seen too, after a warm-up of
    max(2m, 8) rows (m the period, or 1); at least the last one."""
    first = min(max(2 * (period or 1), 8), n_seen - H)
    return np.arange(max(first, 1), n_seen - H + 1)


def _fit_rows(method: str, period, n_train: int, n_seen: int) -> int:
    """The rows a classical method is fitted on to forecast the validation origins: the
    training part, or every row seen when the training part is too short for the season
    that the refit on every row models (:func:`rnnkit.tasks.forecast.classical.seasonal_rows`;
    e.g. 73 training rows of a half-hourly series with period 48: the validation would
    otherwise score a method without its season, which then forecasts with it)."""
    from rnnkit.tasks.forecast.classical import seasonal_rows

    need = seasonal_rows(method, period)
    return n_seen if need is not None and n_train < need <= n_seen else n_train


def _guard(fc, values) -> list:
    """Choose the forecast (module docstring): the mean of ETS, Theta, ARIMA (and seasonal
    naive with a period), with the network or replaced by another candidate on a clear
    validation gain (:func:`rnnkit.tasks.forecast.combine.choose_forecast`); without a validation part,
    or for a very short series (fewer than 3·H rows before the test part, or fewer than 3
    validation origins), the classical mean. Sets ``blend_``, ``classical_`` (refitted on
    every row but the test part), ``val_mase_`` (None when nothing was chosen on
    validation) and ``conformal_``: the bands come from the kept forecast's
    residuals at every backtest origin of the rows seen (classical methods fitted as for
    validation, :func:`_fit_rows`; with the network in the blend, the validation origins only, where it
    forecasts rows it was not trained on). Returns the table of validation scores (None
    without a validation part)."""
    from rnnkit.tasks.forecast.classical import COMB, Classical, classical_methods
    from rnnkit.tasks.forecast.combine import band_scale, blend, choose_forecast, conformal_offsets, relative_scales

    vb = fc.val_backtest_
    n_train, n_val = fc.split_["train"], fc.split_["validation"]
    tg, H = list(fc.targets_), fc.horizon
    n_seen = n_train + n_val
    seen = values[:n_seen]
    if vb is not None and (n_seen < 3 * H or len(vb["origins"]) < 3):
        vb = None               # a very short series: too few held-out rows to choose on
    fit_rows = n_train if vb is not None else n_seen
    names = classical_methods(values[:fit_rows, tg[0]], fc.period_)
    fits = {name: [Classical(name, fc.period_).fit(values[:_fit_rows(name, fc.period_, fit_rows, n_seen), t])
                   for t in tg] for name in names}
    table = None
    if vb is not None:
        singles = {"rnn": vb["forecast"], **_classical_forecasts(fits, seen, tg, vb["origins"], H)}
        weights, table = choose_forecast(vb["actual"], singles, fc.mase_scale_)
        fc.val_mase_ = float(np.mean(np.abs(vb["actual"] - blend(weights, singles)) / fc.mase_scale_))
    else:
        comb = [k for k in COMB if k in names]
        weights, fc.val_mase_ = {k: 1.0 / len(comb) for k in comb}, None
    fc.blend_ = weights
    fc.classical_ = {name: [Classical(name, fc.period_).fit(seen[:, t]) for t in tg]
                     for name in weights if name != "rnn"}
    if fc.intervals == "conformal":
        if "rnn" in weights:
            actual, point = vb["actual"], blend(weights, singles)
        else:
            origins = backtest_origins(n_seen, H, fc.period_)
            parts = _classical_forecasts({k: fits[k] for k in weights}, seen, tg, origins, H)
            actual, point = seen[origins[:, None] + np.arange(H)][:, :, tg], blend(weights, parts)
        fc.relative_bands_ = relative_scales(values[:n_train, tg])     # as floor_: the training part
        fc.conformal_ = conformal_offsets((actual - point) / band_scale(point, fc.relative_bands_), fc.quantiles)
    return table


def auto_fit(fc, series, covariates=None, *, time_limit=None, out_dir=None, **fit_kwargs):
    """Fit every candidate variant of ``fc`` (module docstring), keep the best in ``fc``.

    ``fc.selection_`` lists each network candidate's strategy, relative mode and validation
    MASE (None when the series left no validation part: then the first candidate is kept);
    ``fc.guard_`` the validation MASE of the network, the classical methods and their means,
    best first (None without a validation part, where the network is kept alone).
    """
    from rnnkit.tasks.forecast.forecaster import Forecaster

    params = fc.get_params()
    base_rel = params["relative"] or True
    variants = [("direct", base_rel), ("recursive", base_rel)]
    n_cov = 0 if covariates is None and not fit_kwargs.get("covariate_columns") else 1
    single_target = fit_kwargs.get("targets") is None
    if n_cov or not single_target or fc.intervals == "quantile":
        variants = [("direct", base_rel)]
    import shutil

    fitted, scores, errors = [], [], []
    work = None if out_dir is None else os.path.join(os.fspath(out_dir), ".candidates")
    deadline = as_deadline(time_limit, "Forecaster.fit")
    final_s = after_training(None, 1, 0, figures=2 if out_dir is not None else 0)   # the chosen run's files
    # a seasonal period may double the candidates after the first: plan for it
    expected = 2 * len(variants) if fc.period is not None and base_rel is True else len(variants)
    i = 0
    while i < len(variants):
        strategy, rel = variants[i]
        cand = Forecaster(**{**params, "strategy": strategy, "relative": rel})
        cand.candidate_ = True          # its run directory is only its train/: the chosen one's becomes the run's
        cand.defer_refit_ = True        # only the candidate kept is refitted (refit_members)
        budget = None
        if deadline.limited:            # the candidates still to fit share half the time left, the refits the rest
            budget = Deadline(deadline.for_training(final_s) / (1 + max(1, max(expected, len(variants)) - i)))
        try:
            cand.fit(series, covariates, time_limit=budget,
                     out_dir=None if work is None else os.path.join(work, str(i)), **fit_kwargs)
        except RnnkitError as exc:           # e.g. a series too short for a direct network
            errors.append(exc)
            i += 1
            continue
        cand.candidate_index_ = i
        fitted.append(cand)
        scores.append({"strategy": strategy, "relative": rel, "val_mase": cand.val_mase_})
        if i == 0 and cand.period_ and cand.lookback_ >= cand.period_ and rel is True:
            variants += [(s, "seasonal") for s, _ in list(variants)]
        i += 1
    if not fitted:
        raise errors[0]
    scored = [k for k, c in enumerate(fitted) if c.val_mase_ is not None]
    best = min(scored, key=lambda k: fitted[k].val_mase_) if scored else 0
    chosen = fitted[best]
    values, cov, _, dates = chosen._read(series, covariates, fit_kwargs.get("columns"),
                                         fit_kwargs.get("covariate_columns"), fit_kwargs.get("date_column"),
                                         fit_kwargs.get("fill", "error"), "Forecaster.fit")
    chosen.guard_ = None
    if fc.intervals in (None, "conformal") and chosen.split_["train"] + chosen.split_["validation"] > fc.horizon:
        chosen.guard_ = _guard(chosen, values)
    if "refit_plan_" in chosen.__dict__ and "rnn" in chosen.blend_ and chosen.split_["validation"]:
        refit_members(chosen, fc.ensemble, deadline.for_training(final_s))
    for c in fitted:
        c.__dict__.pop("defer_refit_", None)
        c.__dict__.pop("refit_plan_", None)
    n_test = chosen.split_["test"]
    if n_test >= chosen.horizon:
        chosen.test_backtest_ = chosen.backtest(values, cov, start=len(values) - n_test, seed=chosen.seed)
    fc.__dict__.update(chosen.__dict__)
    fc.candidate_ = False
    fc.selection_ = scores
    if out_dir is not None:
        # the chosen candidate's training files (checkpoints, metrics, best weights) become the run's
        train = os.path.join(os.fspath(out_dir), "train")
        shutil.rmtree(train, ignore_errors=True)
        shutil.move(os.path.join(work, str(chosen.candidate_index_), "train"), train)
        shutil.rmtree(work, ignore_errors=True)
        fc.write_run(out_dir, values, cov, dates, deadline)
    return fc
