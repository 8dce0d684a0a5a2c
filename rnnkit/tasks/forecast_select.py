r"""How a forecaster splits a series of any length, and how ``strategy="auto"`` chooses.

Splitting (:func:`plan_split`), for N rows, horizon H and a one-step (recursive) or
H-step (direct) network, H_e = 1 or H:

    test        max(round(N · test_fraction), H) rows when test_fraction > 0 and the rest
                still trains; otherwise none
    validation  max(round(N · val_fraction), H) rows: rolling origins o in the part,
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
limit; the one with the lowest MASE over the validation origins (scored with the
network selected before its refit) is kept, refitted on every row as it was.
"""

from __future__ import annotations

import os

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
    n_val = max(int(round(N * val_fraction)), H) if val_fraction > 0 else 0
    # validation only when the rows before it still hold windows of a useful lookback
    if n_val and (avail - n_val < H_eff + 3 or lookback(avail - n_val) < min(want_lookback, 2)):
        n_val = H if avail - H >= H_eff + 3 else 0
    n_train = avail - n_val
    return n_train, n_val, n_test, lookback(n_train)


def auto_fit(fc, series, covariates=None, *, time_limit=None, out_dir=None, **fit_kwargs):
    """Fit every candidate variant of ``fc`` (module docstring), keep the best in ``fc``.

    ``fc.selection_`` lists each candidate's strategy, relative mode and validation MASE
    (None when the series left no validation part: then the first candidate is kept).
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
        budget = None
        if deadline.limited:            # the candidates still to fit share the time left
            budget = Deadline(deadline.for_training(final_s) / max(1, max(expected, len(variants)) - i))
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
    fc.__dict__.update(chosen.__dict__)
    fc.candidate_ = False
    fc.selection_ = scores
    if out_dir is not None:
        values, cov, _, dates = fc._read(series, covariates, fit_kwargs.get("columns"),
                                         fit_kwargs.get("covariate_columns"), fit_kwargs.get("date_column"),
                                         fit_kwargs.get("fill", "error"), "Forecaster.fit")
        # the chosen candidate's training files (checkpoints, metrics, best weights) become the run's
        train = os.path.join(os.fspath(out_dir), "train")
        shutil.rmtree(train, ignore_errors=True)
        shutil.move(os.path.join(work, str(chosen.candidate_index_), "train"), train)
        shutil.rmtree(work, ignore_errors=True)
        fc.write_run(out_dir, values, cov, dates, deadline)
    return fc
