"""The training-budget policy: steps not epochs, a refit that sees every row, short series
that forecast, time limits that hold, a budget too small for one step."""

import time

import numpy as np
import pytest

from rnnkit.errors import RnnkitError
from rnnkit.tasks.classify import SequenceClassifier
from rnnkit.tasks.forecast import Forecaster
from rnnkit.tasks.forecast_select import plan_split
from rnnkit.tasks.lm_size import choose_size, params_of
from rnnkit.tasks.policy import plan_budget
from rnnkit.tasks.series_input import SeriesInput
from rnnkit.train import TrainConfig, Trainer


def test_plan_counts_steps_not_epochs():
    small = plan_budget(40, 32)                       # 2 batches an epoch
    assert small.steps >= 600 and small.val_every * 25 >= small.steps and small.patience >= 2
    big = plan_budget(10 ** 7, 32)
    assert big.steps == 20000                         # capped, not 400 epochs of 300k steps
    timed = plan_budget(40, 32, time_limit=1.0, step_seconds=0.01)
    assert timed.steps == int(1.0 * 0.85 / 0.01)           # what fits in the time
    assert plan_budget(40, 32, time_limit=100.0, step_seconds=0.01).steps == small.steps   # no more than the plan
    with pytest.raises(RnnkitError, match="too short for one training step"):
        plan_budget(40, 32, time_limit=0.001, step_seconds=0.5)


def test_forty_series_get_at_least_the_minimum_steps():
    rng = np.random.default_rng(0)
    X = [np.sin(np.arange(30) / (2 + i % 2)) + 0.1 * rng.standard_normal(30) for i in range(40)]
    y = [i % 2 for i in range(40)]
    clf = SequenceClassifier(hidden_size=8, seed=0).fit(X, y, refit=False)
    assert clf.history_.step >= 600 or clf.history_.stop_reason == "early_stopping"
    assert clf.history_.step > 20 * 2                  # far past the old 20 epochs of 2 batches
    clf = SequenceClassifier(hidden_size=8, seed=0).fit(X, y, max_steps=30, patience=None)
    assert clf.history_.step == 30


def test_eval_each_epoch_off_validates_only_every_val_every_steps():
    from rnnkit.models import SequenceRegressor

    rng = np.random.default_rng(0)
    batches = [{"x": rng.standard_normal((6, 4, 1)), "y": rng.standard_normal((4, 1))} for _ in range(3)]
    model = SequenceRegressor(output_size=1, input_size=1, hidden_size=4, dtype="float64", seed=0)
    cfg = TrainConfig(epochs=10, val_every=7, eval_each_epoch=False, quiet=True)
    hist = Trainer(model, cfg).fit(batches, batches[:1])
    steps = [r["step"] for r in hist.records if r["event"] == "val"]
    assert steps == [7, 14, 21, 28]          # 3-batch epochs: the old rule also validated at 3, 6, 9, ...


def test_series_shorter_than_two_horizons_forecasts():
    y = np.sin(np.arange(20) / 2.0) + np.arange(20) * 0.1
    fc = Forecaster(horizon=12, hidden_size=8, seed=0).fit(y, max_steps=20)
    out = fc.predict(y)
    assert out.shape == (12,) and np.all(np.isfinite(out))
    for N in (5, 13, 25):
        n_train, n_val, n_test, L = plan_split(N, 12, 1, 24, 0.15, 0.0)
        assert n_train + n_val + n_test == N and L >= 1 and n_train - L - 1 + 1 >= 1


def test_the_refit_sees_every_row(monkeypatch):
    seen = []
    original = Forecaster._train_arrays

    def spy(self, z, lo, hi):
        seen.append((lo, hi, len(z)))
        return original(self, z, lo, hi)

    monkeypatch.setattr(Forecaster, "_train_arrays", spy)
    y = np.sin(np.arange(120) * 2 * np.pi / 12)
    fc = Forecaster(horizon=6, strategy="direct", hidden_size=8, seed=0).fit(y)      # the planned budget
    assert fc.split_["validation"] > 0 and fc.refit_steps_ is not None
    assert any(lo == 0 and hi == 120 for lo, hi, _ in seen)     # windows up to the last row


def test_time_limit_is_honoured():
    rng = np.random.default_rng(1)
    X = [rng.standard_normal(50) for _ in range(200)]
    y = [i % 3 for i in range(200)]
    t0 = time.perf_counter()
    SequenceClassifier(hidden_size=16, seed=0).fit(X, y, time_limit=3.0)
    assert time.perf_counter() - t0 < 3.0 * 1.5 + 2.0      # probe and evaluation overheads


def test_series_input_folds_long_series_and_keeps_levels():
    rng = np.random.default_rng(0)
    seqs = [rng.standard_normal((n, 1)) * s + m for n, s, m in ((250, 1.0, 0.0), (90, 3.0, 5.0))]
    plain = SeriesInput(max_steps=100, diff=False).fit(seqs)
    assert plain.fold == 3 and plain.size == 3 + 2
    enc = SeriesInput(max_steps=100).fit(seqs)
    assert enc.fold == 3 and enc.size == 2 * 3 + 2      # value and difference, k = 3 per step, 2 levels
    out = enc.transform(seqs)
    assert out[0].shape == (84, 8) and out[1].shape == (30, 8)
    z = out[1][:, 0:6:2].ravel()[:90]
    np.testing.assert_allclose([z.mean(), z.std()], [0.0, 1.0], atol=1e-9)
    d = out[1][:, 1:6:2].ravel()[:90]
    np.testing.assert_allclose([d.mean(), d.std()], [0.0, 1.0], atol=1e-9)
    raw = np.diff(z, prepend=z[0])
    np.testing.assert_allclose(d, (raw - raw.mean()) / raw.std(), atol=1e-9)
    np.testing.assert_array_equal(plain.transform(seqs)[1][:, :3], out[1][:, 0:6:2])
    assert out[0][0, 6] != out[1][0, 6]                 # the level channel tells them apart
    back = SeriesInput.from_dict(enc.to_dict()).transform(seqs)
    np.testing.assert_array_equal(back[1], out[1])
    # an affine change of a series (gain, offset) leaves its shape channels unchanged
    scaled = enc.transform([7.5 * seqs[1] - 3.0])[0]
    np.testing.assert_allclose(scaled[:, :6], out[1][:, :6], atol=1e-9)


def test_one_outlying_long_series_does_not_coarsen_the_fold():
    seqs = [np.zeros((100, 1)) + i for i in range(40)] + [np.arange(1000.0)[:, None]]
    enc = SeriesInput(max_steps=50).fit(seqs)
    assert enc.fold == 2                                 # from the 95th percentile of lengths, not 1000
    assert enc.transform(seqs[-1:])[0].shape[0] == 500   # the long one takes more steps, nothing dropped


def test_augment_keeps_a_window_and_jitters():
    from rnnkit.tasks.series_input import augment

    x = [np.arange(40, dtype=np.float32).reshape(20, 2), np.ones((5, 2), dtype=np.float32)]
    rng = np.random.default_rng(0)
    lengths = set()
    for _ in range(50):
        w = augment(x, rng, min_window=0.5, jitter=0.0)
        assert 10 <= len(w[0]) <= 20 and 3 <= len(w[1]) <= 5 and w[0].dtype == np.float32
        start = int(w[0][0, 0]) // 2                    # a run of consecutive steps of the input
        np.testing.assert_array_equal(w[0], x[0][start:start + len(w[0])])
        lengths.add(len(w[0]))
    assert len(lengths) > 3
    noisy = augment(x, rng, min_window=1.0, jitter=0.1)[0]
    assert noisy.shape == (20, 2) and 0.05 < np.std(noisy - x[0]) < 0.2
    np.testing.assert_array_equal(x[1], 1.0)            # the inputs are untouched


def test_lm_size_grows_with_time_and_dropout_with_passes():
    small = choose_size(50_000, 30, 0.05, 2048, 32, 80)
    large = choose_size(50_000, 3000, 0.05, 2048, 32, 80)
    assert params_of(large["hidden_size"], large["num_layers"], 32, 80) > \
        params_of(small["hidden_size"], small["num_layers"], 32, 80)
    assert large["dropout"] > small["dropout"]


def test_seq2seq_validation_pairs_may_hold_characters_training_pairs_lack():
    from rnnkit.tasks.seq2seq import Seq2Seq

    src = [f"{i}" for i in range(30)]
    tgt = [f"<{i}>" for i in range(29)] + ["(29)"]          # '(' and ')' only in one pair
    s2s = Seq2Seq(hidden_size=8, embedding_dim=4, seed=0)
    s2s.fit(src, tgt, val_fraction=0.5, max_steps=3)
    assert s2s.history_.step == 3 and s2s.val_scores_["n"] == 15        # '(' and ')' went to the unknown token


def test_a_small_validation_part_does_not_stop_a_run_early():
    """Under min_val_items the validation loss only picks the weights kept: the run goes
    through its whole budget even when that loss rises from the start."""
    from rnnkit.models import SequenceClassifier as Net
    from rnnkit.tasks.policy import fit_with_budget

    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 8, 2)).astype(np.float32)
    y = (x[:, :, 0].sum(axis=0) > 0).astype(np.int64)
    train = [{"x": x, "y": y}]
    val = [{"x": x, "y": 1 - y}]                     # the better it fits, the worse it validates
    runs = {}
    for n_val in (5, 100):
        runs[n_val] = fit_with_budget(lambda: Net(num_classes=2, input_size=2, hidden_size=8, seed=0), train, val,
                                      8, 8, train[0], time_limit=None, max_steps=None, epochs=None, lr=0.05,
                                      seed=0, quiet=True, n_val=n_val, min_steps=60, steps_cap=60).history
    assert runs[100].stop_reason == "early_stopping" and runs[100].step < 60
    assert runs[5].step == 60 and runs[5].stop_reason != "early_stopping"


def test_pace_replans_a_timed_run_from_the_measured_pace(monkeypatch):
    from types import SimpleNamespace

    from rnnkit import optim
    from rnnkit.tasks import policy

    clock = [0.0]
    monkeypatch.setattr(policy.time, "perf_counter", lambda: clock[0])
    opt = optim.SGD({"w": np.zeros(1)}, lr=0.1)
    trainer = SimpleNamespace(step=0, config=SimpleNamespace(max_steps=100, val_every=4, warmup_steps=3),
                              schedule=optim.make_schedule("cosine", opt, warmup_steps=3, T_max=97))
    pace = policy.Pace(time_limit=10.0, steps_cap=150, evals=25, checks=25, first=20)
    pace.on_start(trainer)
    clock[0] = 0.5
    pace.on_step(trainer, {"step": 19})                  # before the first check: the plan stands
    assert trainer.config.max_steps == 100
    clock[0] = 1.0                                        # 0.05 s a step: 196 steps fit, the cap is 150
    pace.on_step(trainer, {"step": 20})
    assert (trainer.config.max_steps, trainer.schedule.after.T_max, trainer.config.val_every) == (150, 147, 6)
    clock[0] = 5.0                                        # slower: 26 steps in 5 s, 4.8 s left -> 24 more
    pace.on_step(trainer, {"step": 26})
    assert (trainer.config.max_steps, trainer.schedule.after.T_max, trainer.config.val_every) == (50, 47, 2)
