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
    seasonal  (relative="seasonal", with a known period m ≤ lookback) the outputs are
              changes from the seasonal-naive value y_{o+h−m(⌊h/m⌋+1)} instead of from
              the last value; the inputs stay relative to the last value.

Training follows :mod:`rnnkit.tasks.policy` (steps, warm-up, cosine decay, validation and
patience in steps). The validation part is the last rows, scored by rolling origin; a
fresh network is then refitted on every window of the training and validation rows for
the selected steps. ``strategy="auto"`` (the default) fits direct and recursive,
last-value and seasonal variants and keeps the one with the lowest validation MASE
(:mod:`rnnkit.tasks.forecast_select`); then the network and classical methods written
here in NumPy (naive, seasonal naive, ETS on levels or logs, Theta: ``classical.py``;
ARIMA: ``arima.py``) forecast the same validation origins. The default forecast is the
mean of ETS, Theta, ARIMA and, when the series has a seasonal period, seasonal naive; the
network joins it, or another candidate replaces it,
only for a clear gain in validation MASE (``combine.py``). What is kept is refitted on
every row, the network as a median of ``ensemble`` seeds. The seasonal period comes
from the dates (monthly 12, quarterly 4, half-hourly 48, …) and is kept only when the
season is real (``season.py``). A series too short for the asked split, lookback
or validation is never refused: the lookback and the parts shrink, down to training
without validation.

Strategies for a horizon of H steps and targets y (n_targets columns):

    direct     one model, H·n_targets outputs: ŷ_{o..o+H−1} = f(x_{o−L..o−1})
    recursive  a one-step model of every series column, rolled forward:
               ŷ_o = f(x_{o−L..o−1}),  ŷ_{o+1} = f(x_{o−L+1..o−1}, ŷ_o), …
               (needs every series column as a target, and future covariates if any)

Prediction intervals (``intervals=``):

    "conformal"   (default) the kept forecast plus quantiles of its residuals at every
                  rolling origin of the rows before the test part (the validation origins
                  when the network is in the blend), per step, with a finite-sample
                  correction, or Student's t on a random-walk spread when the origins are few
                  (:func:`rnnkit.tasks.forecast.combine.conformal_offsets`)

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
``fit(out_dir=D)`` writes the run directory of :mod:`rnnkit.tasks.run`, with
``backtest.csv``, ``predictions.csv`` and ``forecast.png``.

Modules: ``forecaster.py`` (the task), ``windows.py`` (reading, scaling, windows,
the strategies), ``metrics.py`` (errors, baselines, period inference),
``classical.py`` (the classical methods), ``combine.py`` (the choice on validation and
the conformal bands), ``report.py`` (the run's files and report).
"""

from rnnkit.tasks.forecast.forecaster import Forecaster
from rnnkit.tasks.forecast.metrics import forecast_metrics, infer_period

__all__ = ["Forecaster", "infer_period", "forecast_metrics"]
