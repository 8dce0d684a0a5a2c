"""The Trainer: TBPTT learning, clipping, checkpoints and exact resume, divergence, Ctrl-C."""

import io
import json
import math
import os

import numpy as np
import pytest

import rnnkit as rk
from rnnkit import io as rkio
from rnnkit.data.text import stream_batches
from rnnkit.errors import CheckpointError, DivergenceError
from rnnkit.losses import mse, softmax_cross_entropy
from rnnkit.train import History, TrainConfig, Trainer


# -- small models that follow the model contract ---------------------------------------

def _copy_state(s):
    return tuple(a.copy() for a in s) if isinstance(s, tuple) else s.copy()


class CharModel(rk.Module):
    """ids -> Embedding -> Dropout -> Recurrent -> Linear -> softmax cross-entropy."""

    def __init__(self, vocab=4, hidden=16, cell="gru", dropout=0.0, seed=0):
        super().__init__()
        self._cfg = {"vocab": vocab, "hidden": hidden, "cell": cell, "dropout": dropout, "seed": seed}
        self.emb = self.add("emb", rk.Embedding(vocab, 8, dtype=np.float64, seed=seed))
        self.drop = self.add("drop", rk.Dropout(dropout, seed=seed + 1))
        self.rnn = self.add("rnn", rk.Recurrent(cell, 8, hidden, dtype=np.float64, seed=seed + 2))
        self.head = self.add("head", rk.Linear(hidden, vocab, dtype=np.float64, seed=seed + 3))

    def config(self):
        return {"model": "CharModel", **self._cfg}

    def loss(self, batch, state=None, carry_at=None):
        x, y, mask = batch["x"], batch["y"], batch.get("mask")
        e = self.drop.forward(self.emb.forward(x))
        carried = None
        if carry_at is not None:
            # the state after carry_at steps, from a pass that keeps no caches for backward
            was = self.rnn.training
            self.rnn.eval()
            _, carried = self.rnn.forward(e[:carry_at], state)
            self.rnn.train(was)
        h, h_n = self.rnn.forward(e, state)
        logits = self.head.forward(h)
        loss, self._d = softmax_cross_entropy(logits, y, mask=mask)
        count = y.size if mask is None else int(np.count_nonzero(mask))
        return loss, count, _copy_state(h_n if carried is None else carried)

    def backward(self):
        dh = self.head.backward(self._d)
        de, _ = self.rnn.backward(dh)
        self.emb.backward(self.drop.backward(de))


class Regressor(rk.Module):
    """Float features (T, B, 1) -> Recurrent -> Linear -> MSE on every step."""

    def __init__(self, hidden=8, seed=0):
        super().__init__()
        self.rnn = self.add("rnn", rk.Recurrent("lstm", 1, hidden, dtype=np.float64, seed=seed))
        self.head = self.add("head", rk.Linear(hidden, 1, dtype=np.float64, seed=seed + 1))
        self._seed = seed

    def config(self):
        return {"model": "Regressor", "hidden": self.rnn.hidden_size, "seed": self._seed}

    def loss(self, batch, state=None, carry_at=None):
        h, h_n = self.rnn.forward(batch["x"], state)
        pred = self.head.forward(h)
        loss, self._d = mse(pred, batch["y"])
        return loss, batch["y"].size, _copy_state(h_n)

    def backward(self):
        self.rnn.backward(self.head.backward(self._d))


class Faulty(CharModel):
    """A CharModel whose loss or gradient turns NaN at a chosen call (a diverging run)."""

    def __init__(self, bad_call, where="loss", **kw):
        super().__init__(**kw)
        self.bad_call, self.where, self.calls = bad_call, where, 0

    def loss(self, batch, state=None, carry_at=None):
        loss, count, state = super().loss(batch, state, carry_at)
        self.calls += 1
        if self.training and self.calls == self.bad_call and self.where == "loss":
            loss = float("nan")
        return loss, count, state

    def backward(self):
        super().backward()
        if self.calls == self.bad_call and self.where == "grad":
            self.head.grads["bias"][0] = np.inf


# -- data --------------------------------------------------------------------------------

PATTERN = "aaab"            # after an 'a' the next char depends on the two before it: memory needed
IDS = np.array(["ab".index(c) for c in PATTERN * 150], dtype=np.int64)          # 600 ids


def stream(k2=10, k1=None, batch_size=4, ids=IDS):
    """Epoch function: contiguous TBPTT windows, each epoch cut at a random offset."""
    def batches(epoch, rng):
        return stream_batches(ids, batch_size, k2, k1=k1, offset=int(rng.integers(0, 4)))
    return batches


def reg_batches(n=6, T=8, B=3, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x = rng.standard_normal((T, B, 1))
        out.append({"x": x, "y": np.cumsum(x, axis=0) * 0.3})
    return out


def quiet(**kw):
    return TrainConfig(quiet=True, **kw)


def params_equal(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


# -- TrainConfig ---------------------------------------------------------------------------

def test_config_round_trip_and_errors():
    c = TrainConfig.from_dict({"epochs": 3, "lr": 1, "schedule": "step",
                               "schedule_options": {"step_size": 2}, "clip_norm": None})
    assert c.lr == 1 and c.clip_norm is None and TrainConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="unknown key 'epoch'"):
        TrainConfig.from_dict({"epoch": 3})
    with pytest.raises(TypeError, match="epochs must be int, got str"):
        TrainConfig.from_dict({"epochs": "3"})
    with pytest.raises(TypeError, match="max_steps must be int or None, got bool"):
        TrainConfig.from_dict({"max_steps": True})
    with pytest.raises(TypeError, match="lr must be float or None, got str"):
        TrainConfig.from_dict({"lr": "1e-3"})
    with pytest.raises(TypeError, match="quiet must be bool, got int"):
        TrainConfig.from_dict({"quiet": 1})
    with pytest.raises(ValueError, match="epochs must be >= 1, got 0"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        TrainConfig(optimizer="lbfgs")
    with pytest.raises(ValueError, match="needs carry_state=True"):
        TrainConfig(tbptt_k1=5)
    with pytest.raises(ValueError, match="tbptt_k1 .* must be <= tbptt_k2"):
        TrainConfig(carry_state=True, tbptt_k1=6, tbptt_k2=5)
    assert c.replace(epochs=5).epochs == 5


# -- learning with truncated BPTT ----------------------------------------------------------

LONG = np.array([c == "b" for c in "aaaaaaab" * 75], dtype=np.int64)   # 600 ids, period 8


@pytest.mark.parametrize("k1,k2", [(10, 10), (5, 10)])
def test_tbptt_learns_a_pattern_longer_than_k2(k1, k2):
    """Each of the 4 streams is ~150 steps, windows are k2 = 10. Predicting the 'b' after
    seven 'a's needs 8 steps of history, which a window start (or, with k1 = 5, the first
    trained step k2 - k1 = 5) does not have: only the state carried across windows does."""
    losses = {}
    for carry in (True, False):
        model = CharModel(vocab=2, hidden=12, seed=1)
        cfg = quiet(epochs=12, lr=0.03, carry_state=carry, tbptt_k1=k1 if carry else None,
                    tbptt_k2=k2, seed=0, log_every=5)
        trainer = Trainer(model, cfg)
        hist = trainer.fit(stream(k2, k1, ids=LONG))
        val = trainer.evaluate(lambda: stream(k2, k1, ids=LONG)(0, np.random.default_rng(1)))
        losses[carry] = (hist.train_loss()[0][1], hist.train_loss()[-1][1], val)
    first, last, val = losses[True]
    assert first > 0.4                        # the unigram entropy of the pattern is 0.38
    assert last < 0.01 and val < 0.05, losses
    assert losses[False][2] > 2 * val, losses  # without the carried state it cannot get there


def test_carry_at_is_k1_and_state_resets_each_epoch():
    seen = []

    class Spy(CharModel):
        def loss(self, batch, state=None, carry_at=None):
            if self.training:
                seen.append((carry_at, state is None))
            return super().loss(batch, state, carry_at)

    Trainer(Spy(vocab=2), quiet(epochs=2, carry_state=True, tbptt_k1=4, tbptt_k2=10)).fit(
        stream(10, 4, ids=IDS[:100]))
    assert all(c == 4 for c, _ in seen)
    starts = [i for i, (_, fresh) in enumerate(seen) if fresh]
    assert len(starts) == 2 and starts[0] == 0          # a fresh state at each epoch start only


def test_window_longer_than_k2_is_refused():
    t = Trainer(CharModel(vocab=2), quiet(epochs=1, carry_state=True, tbptt_k2=5))
    with pytest.raises(ValueError, match=r"step 1 \(epoch 1, batch 1\): training batch: x has 10 time steps"):
        t.fit(stream(10))


# -- clipping, schedules ------------------------------------------------------------------

def test_clip_norm_caps_the_norm_the_optimizer_sees():
    trainer = Trainer(Regressor(), quiet(epochs=2, clip_norm=0.05, log_every=1, lr=0.01))
    seen = []
    step = trainer.optimizer.step

    def spy(grads):
        seen.append(math.sqrt(sum(float(np.sum(g * g)) for g in grads.values())))
        step(grads)

    trainer.optimizer.step = spy
    hist = trainer.fit(reg_batches())
    before = [r["grad_norm"] for r in hist.records if r["event"] == "train"]
    assert len(seen) == len(before) == 12
    assert min(before) > 0.05                         # the raw norms were larger ...
    assert max(seen) <= 0.05 * (1 + 1e-6)             # ... the applied ones are capped
    assert all(r["clipped"] == 1.0 for r in hist.records if r["event"] == "train")


def test_clip_value_caps_every_element():
    trainer = Trainer(Regressor(), quiet(epochs=1, clip_norm=None, clip_value=1e-3))
    biggest = []
    step = trainer.optimizer.step
    trainer.optimizer.step = lambda g: (biggest.append(max(np.abs(a).max() for a in g.values())), step(g))
    hist = trainer.fit(reg_batches())
    assert max(biggest) <= 1e-3 and hist.records[-1]["grad_norm"] > 1e-3


def test_schedule_and_warmup_set_the_lr():
    t = Trainer(Regressor(), quiet(epochs=1, lr=0.1, schedule="step",
                                   schedule_options={"step_size": 2, "gamma": 0.5}))
    t.fit(reg_batches(n=4))
    assert t.optimizer.lr == pytest.approx(0.1 * 0.25)
    t = Trainer(Regressor(), quiet(epochs=1, lr=0.1, warmup_steps=4, log_every=1))
    hist = t.fit(reg_batches(n=4))
    lrs = [r["lr"] for r in hist.records if r["event"] == "train"]
    assert lrs == pytest.approx([0.0, 0.025, 0.05, 0.075]) and t.optimizer.lr == pytest.approx(0.1)


def test_plateau_schedule_uses_the_validation_loss():
    t = Trainer(Regressor(), quiet(epochs=4, lr=0.01, schedule="plateau", min_delta=1e9,
                                   schedule_options={"patience": 0, "factor": 0.5, "threshold": 1e9,
                                                     "threshold_mode": "abs"}))
    t.fit(reg_batches(n=2), val_batches=reg_batches(n=2, seed=1))
    # every evaluation after the first counts as no improvement: 3 cuts in 4 epochs
    assert t.optimizer.lr == pytest.approx(0.01 * 0.5 ** 3)


# -- validation, early stopping, best weights, metrics -------------------------------------

def test_early_stopping_stops_and_restores_the_best(tmp_path):
    model = Regressor()
    cfg = quiet(epochs=50, val_every=2, patience=2, min_delta=1e9, lr=0.05)
    hist = Trainer(model, cfg, out_dir=tmp_path).fit(reg_batches(), val_batches=reg_batches(n=2, seed=1))
    vals = hist.val_loss()
    assert hist.stop_reason == "early_stopping" and len(vals) == 3   # the first, then 2 without gain
    assert hist.step == 6 and hist.best_step == 2
    best = rkio.load_checkpoint(tmp_path / "best", expected=model)
    assert best.meta["step"] == 2 and params_equal(best.arrays, model.state_dict())
    last = rkio.load_checkpoint(tmp_path, expected=model)   # the resumable one holds the last weights
    assert not params_equal(last.arrays, model.state_dict())
    assert hist.best_val_loss == vals[0][1]


def test_metrics_jsonl_lines_parse(tmp_path):
    hist = Trainer(Regressor(), quiet(epochs=2, log_every=4, val_every=3), out_dir=tmp_path).fit(
        reg_batches(), val_batches=reg_batches(n=2, seed=1))
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    recs = [json.loads(line) for line in lines]
    assert recs == hist.records
    keys = {"event", "step", "epoch", "train_loss", "val_loss", "grad_norm", "clipped", "lr",
            "items_per_sec", "elapsed"}
    assert all(keys <= set(r) for r in recs)
    train = [r for r in recs if r["event"] == "train"]
    val = [r for r in recs if r["event"] == "val"]
    assert [r["step"] for r in train] == [4, 6, 8, 12]        # every 4 steps and at epoch ends
    assert [r["step"] for r in val] == [3, 6, 9, 12]          # every 3 steps; epoch ends coincide
    assert all(r["train_loss"] > 0 and r["items_per_sec"] > 0 and r["grad_norm"] > 0 for r in train)
    assert all(r["val_loss"] > 0 for r in val) and recs[-1]["elapsed"] >= recs[0]["elapsed"]
    assert [r["epoch"] for r in val] == [1, 1, 2, 2]


def test_log_lines_when_not_quiet(capsys):
    Trainer(Regressor(), TrainConfig(epochs=1, log_every=2)).fit(reg_batches(n=4))
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("training Regressor (")
    steps = [line for line in err if line.startswith("step ")]
    assert len(steps) == 2 and "| loss " in steps[0] and "items/s" in steps[0]
    assert steps[0].startswith("step 2 | epoch 1/1 |")       # epochs are the budget: shown
    Trainer(Regressor(), TrainConfig(epochs=10 ** 9, max_steps=4, log_every=2)).fit(reg_batches(n=4))
    steps = [line for line in capsys.readouterr().err.splitlines() if line.startswith("step ")]
    assert steps[0].startswith("step 2/4 | epoch 1 |")       # steps are: no epoch total
    Trainer(Regressor(), quiet(epochs=1, log_every=2)).fit(reg_batches(n=4))
    assert capsys.readouterr().err == ""


def test_progress_bar_on_a_terminal(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    out = Tty()
    monkeypatch.setattr("sys.stderr", out)
    Trainer(Regressor(), TrainConfig(epochs=1, max_steps=5)).fit(reg_batches())
    text = out.getvalue()
    assert "5/5" in text and "loss=" in text and "grad=" in text and "items_s=" in text


# -- reproducibility and resume ------------------------------------------------------------

def _resume_setup():
    model = CharModel(vocab=2, hidden=10, dropout=0.2, seed=3)
    ids = IDS[:170]                               # 4 windows of 10 per epoch x 4 streams
    cfg = dict(epochs=20, lr=0.02, carry_state=True, tbptt_k1=5, tbptt_k2=10, val_every=3,
               schedule="step", schedule_options={"step_size": 4, "gamma": 0.9}, seed=11)
    val = lambda: stream_batches(ids, 2, 10)      # noqa: E731
    return model, ids, cfg, val


def test_same_seed_is_bit_identical_and_seed_matters():
    runs = []
    for seed in (11, 11, 12):
        model, ids, cfg, val = _resume_setup()
        cfg.update(seed=seed, max_steps=12)
        Trainer(model, quiet(**cfg)).fit(stream(10, 5, ids=ids), val)
        runs.append(model.state_dict())
    assert params_equal(runs[0], runs[1])
    assert not params_equal(runs[0], runs[2])


@pytest.mark.parametrize("stop", [7, 11])   # an epoch is 7 windows: at its end, and mid-epoch
def test_resume_equals_uninterrupted(tmp_path, stop):
    model, ids, cfg, val = _resume_setup()
    full = Trainer(model, quiet(max_steps=20, restore_best=False, **cfg))
    full.fit(stream(10, 5, ids=ids), val)
    want, want_opt = model.state_dict(), full.optimizer.state_dict()

    # `stop` steps, then a new trainer (as in a new process) picks it up from disk
    m1, *_ = _resume_setup()
    h1 = Trainer(m1, quiet(max_steps=stop, restore_best=False, **cfg), out_dir=tmp_path).fit(
        stream(10, 5, ids=ids), val)
    assert h1.stop_reason == "max_steps" and h1.step == stop
    m2 = CharModel(vocab=2, hidden=10, dropout=0.2, seed=99)      # other init: all must come from disk
    t2 = Trainer(m2, quiet(max_steps=20, restore_best=False, **cfg), out_dir=tmp_path)
    h2 = t2.fit(stream(10, 5, ids=ids), val, resume=True)
    assert h2.step == 20
    assert params_equal(m2.state_dict(), want)
    assert params_equal(t2.optimizer.state_dict(), want_opt)
    assert h2.best_val_loss == full.history.best_val_loss and h2.best_step == full.history.best_step
    # the classmethod does the same from the saved config, with overrides
    m3, *_ = _resume_setup()
    Trainer(m3, quiet(max_steps=stop, restore_best=False, **cfg), out_dir=tmp_path / "b").fit(
        stream(10, 5, ids=ids), val)
    t3 = Trainer.resume(tmp_path / "b", model=CharModel(vocab=2, hidden=10, dropout=0.2), max_steps=20)
    t3.fit(stream(10, 5, ids=ids), val)
    assert params_equal(t3.model.state_dict(), want)


def test_keyboard_interrupt_in_the_batch_iterator_saves_and_resumes(tmp_path):
    model, ids, cfg, val = _resume_setup()
    Trainer(model, quiet(max_steps=16, restore_best=False, **cfg)).fit(stream(10, 5, ids=ids), val)
    want = model.state_dict()

    def interrupted(epoch, rng):
        for i, b in enumerate(stream(10, 5, ids=ids)(epoch, rng)):
            if epoch == 1 and i == 3:
                raise KeyboardInterrupt
            yield b

    m1, *_ = _resume_setup()
    t1 = Trainer(m1, quiet(max_steps=16, restore_best=False, **cfg), out_dir=tmp_path)
    hist = t1.fit(interrupted, val)
    assert hist.interrupted and hist.stop_reason == "interrupted" and hist.step == 7 + 3
    saved = rkio.load_checkpoint(tmp_path, expected=m1)
    assert saved.training_state["step"] == 10 and saved.training_state["batch_in_epoch"] == 3
    assert params_equal(saved.arrays, m1.state_dict())
    m2, *_ = _resume_setup()
    Trainer(m2, quiet(max_steps=16, restore_best=False, **cfg), out_dir=tmp_path).fit(
        stream(10, 5, ids=ids), val, resume=True)
    assert params_equal(m2.state_dict(), want)
    steps = [r["step"] for r in rkio.read_jsonl(tmp_path / "metrics.jsonl") if r["event"] == "val"]
    assert steps == sorted(set(steps))            # no line repeated after the resume


def test_keyboard_interrupt_during_validation_resumes_exactly(tmp_path):
    model, ids, cfg, val = _resume_setup()
    full = Trainer(model, quiet(max_steps=10, restore_best=False, **cfg))
    full.fit(stream(10, 5, ids=ids), val)
    calls = []

    def val_interrupted():
        calls.append(1)
        if len(calls) == 2:               # the evaluation owed at step 6
            raise KeyboardInterrupt
        return val()

    m1, *_ = _resume_setup()
    hist = Trainer(m1, quiet(max_steps=10, restore_best=False, **cfg), out_dir=tmp_path).fit(
        stream(10, 5, ids=ids), val_interrupted)
    assert hist.interrupted and hist.step == 6 and hist.val_loss()[-1][0] == 3
    m2, *_ = _resume_setup()
    h2 = Trainer(m2, quiet(max_steps=10, restore_best=False, **cfg), out_dir=tmp_path).fit(
        stream(10, 5, ids=ids), val, resume=True)
    assert params_equal(m2.state_dict(), model.state_dict())
    assert h2.val_loss() == full.history.val_loss()   # the owed evaluation ran first, once


def test_ctrl_c_during_the_update_is_held_until_the_step_is_complete(tmp_path):
    """A real SIGINT sent from inside optimizer.step: the step still completes in full,
    then training stops and the checkpoint holds exactly 3 steps."""
    signal = pytest.importorskip("signal")
    three = Regressor()
    Trainer(three, quiet(epochs=1, max_steps=3)).fit(reg_batches())
    model = Regressor()
    trainer = Trainer(model, quiet(epochs=1), out_dir=tmp_path)
    step = trainer.optimizer.step

    def step_then_ctrl_c(grads):
        step(grads)
        if trainer.optimizer.step_count == 3:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):     # give the handler a chance to run inside the shield
                pass

    trainer.optimizer.step = step_then_ctrl_c
    hist = trainer.fit(reg_batches())
    assert hist.interrupted and hist.step == 3
    saved = rkio.load_checkpoint(tmp_path, expected=model)
    assert saved.training_state["step"] == 3
    assert params_equal(saved.arrays, three.state_dict())


def test_time_limit_stops_and_saves(tmp_path):
    hist = Trainer(Regressor(), quiet(epochs=5, time_limit=1e-9), out_dir=tmp_path).fit(reg_batches())
    assert hist.stop_reason == "time_limit" and hist.step == 0
    assert rkio.load_checkpoint(tmp_path).training_state["step"] == 0


def test_a_library_model_trains_and_resumes_from_its_config(tmp_path):
    """SequenceTagger (the language model) through TBPTT; Trainer.resume rebuilds it
    from config.json alone and finishes bit-identical to an uninterrupted run."""
    from rnnkit.models import SequenceTagger

    def make():
        return SequenceTagger(cell="lstm", hidden_size=8, vocab_size=2, embedding_dim=4, num_classes=2,
                              dropout=0.1, dtype="float64", seed=0)

    cfg = dict(epochs=3, carry_state=True, tbptt_k1=5, tbptt_k2=10, lr=0.02, seed=4)
    data = stream(10, 5, ids=LONG[:250])
    full = make()
    total = Trainer(full, quiet(**cfg)).fit(data).step
    part = Trainer(make(), quiet(max_steps=9, **cfg), out_dir=tmp_path)
    assert part.fit(data).stop_reason == "max_steps"
    resumed = Trainer.resume(tmp_path, max_steps=None)
    assert isinstance(resumed.model, SequenceTagger) and resumed.step == 9
    hist = resumed.fit(data)
    assert hist.stop_reason == "epochs" and hist.step == total > 9
    assert params_equal(resumed.model.state_dict(), full.state_dict())


def test_resume_refuses_a_mismatched_model_or_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint to resume from"):
        Trainer(Regressor(), quiet(), out_dir=tmp_path).fit(reg_batches(), resume=True)
    Trainer(Regressor(hidden=8), quiet(epochs=1), out_dir=tmp_path).fit(reg_batches())
    want = r"model\.npz: key 'rnn\.weight_ih_l0' has shape \(32, 1\), the model expects \(36, 1\)"
    with pytest.raises(CheckpointError, match=want):
        Trainer(Regressor(hidden=9), quiet(), out_dir=tmp_path).fit(reg_batches(), resume=True)
    with pytest.raises(CheckpointError, match="optimizer 'adam', this config uses 'sgd'"):
        Trainer(Regressor(hidden=8), quiet(optimizer="sgd"), out_dir=tmp_path).fit(reg_batches(), resume=True)
    rkio.save_checkpoint(tmp_path / "weights", Regressor().config(), Regressor().state_dict())
    with pytest.raises(CheckpointError, match="holds no training state to resume from"):
        Trainer.resume(tmp_path / "weights", model=Regressor())


# -- divergence and bad data ------------------------------------------------------------------

def _snapshot(d):
    return {n: (d / n).read_bytes() for n in sorted(os.listdir(d)) if n != "metrics.jsonl" and (d / n).is_file()}


@pytest.mark.parametrize("where,what", [("loss", "the loss is nan"), ("grad", "the gradient norm is inf")])
def test_divergence_names_the_step_and_keeps_the_checkpoint(tmp_path, where, what):
    model = Faulty(bad_call=6, where=where, vocab=2)
    trainer = Trainer(model, quiet(epochs=5, checkpoint_every=2, clip_norm=None), out_dir=tmp_path)
    snap = {}

    def batches(epoch, rng):
        for i, b in enumerate(stream(10)(epoch, rng)):
            if trainer.step == 4 and not snap:
                snap.update(_snapshot(tmp_path))        # the checkpoint of step 4, before step 5
            yield b

    with pytest.raises(DivergenceError, match=rf"diverged at step 6 \(epoch 1, batch 6\): {what}") as e:
        trainer.fit(batches)
    assert e.value.step == 6 and trainer.step == 5
    assert "left as of step 4" in str(e.value)
    assert set(snap) >= {"config.json", "model.npz", "trainer.json", "trainer.npz"}
    assert _snapshot(tmp_path) == snap
    assert all(np.isfinite(p).all() for p in model.params.values())   # no NaN reached the weights


def test_nan_in_the_data_names_the_step_and_keeps_the_checkpoint(tmp_path):
    data = reg_batches(n=6)
    data[4] = dict(data[4], x=data[4]["x"].copy())
    data[4]["x"][3, 1, 0] = np.nan
    trainer = Trainer(Regressor(), quiet(epochs=1, checkpoint_every=2), out_dir=tmp_path)
    snap = {}

    def batches(epoch, rng):
        for i, b in enumerate(data):
            if i == 4:
                snap.update(_snapshot(tmp_path))
            yield b

    with pytest.raises(ValueError, match=r"step 5 \(epoch 1, batch 5\): .*x contains NaN or inf"):
        trainer.fit(batches)
    assert _snapshot(tmp_path) == snap and rkio.load_checkpoint(tmp_path).meta["step"] == 4


def test_bad_batch_sources_are_refused():
    t = Trainer(Regressor(), quiet(epochs=1))
    with pytest.raises(TypeError, match="one-shot iterator"):
        t.fit(iter(reg_batches()))
    with pytest.raises(TypeError, match=r"step 1 \(epoch 1, batch 1\): training batch: expected a dict"):
        t.fit([np.zeros(3)])
    with pytest.raises(ValueError, match="patience needs val_batches"):
        Trainer(Regressor(), quiet(patience=2)).fit(reg_batches())
    with pytest.raises(ValueError, match="checkpoint_every needs an out_dir"):
        Trainer(Regressor(), quiet(checkpoint_every=2))
    assert isinstance(Trainer(Regressor(), quiet(epochs=1)).fit(reg_batches(n=1)), History)


# -- callbacks ------------------------------------------------------------------------------

class Recorder(rk.train.Callback):
    """Every hook call, in order, with what it was given."""

    def __init__(self):
        self.calls = []

    def on_start(self, trainer):
        self.calls.append(("start", trainer.step))

    def on_step(self, trainer, info):
        assert trainer.step == info["step"]           # called after the step is complete
        self.calls.append(("step", info))

    def on_record(self, trainer, record):
        self.calls.append(("record", record))

    def on_eval(self, trainer, info):
        self.calls.append(("eval", info))

    def on_epoch_end(self, trainer, info):
        self.calls.append(("epoch_end", info))

    def on_checkpoint(self, trainer, info):
        assert os.path.isfile(os.path.join(info["path"], "model.npz"))    # written before the call
        self.calls.append(("checkpoint", info))

    def on_end(self, trainer, history):
        self.calls.append(("end", history))

    def of(self, kind):
        return [arg for k, arg in self.calls if k == kind]


def test_epoch_end_checkpoints_keep_to_their_share_of_the_time(tmp_path):
    # a share no checkpoint can keep to: the first epoch end writes one, the others skip, the end
    # writes the last; the best weights are saved at every improvement all the same
    rec = Recorder()
    trainer = Trainer(Regressor(), quiet(epochs=6, checkpoint_share=1e-12), tmp_path, callbacks=[rec])
    hist = trainer.fit(reg_batches(n=2), reg_batches(n=2, seed=1))
    resume = [c["step"] for c in rec.of("checkpoint") if c["kind"] == "resume"]
    assert resume == [2, 12] and len(rec.of("epoch_end")) == 6
    assert [c["step"] for c in rec.of("checkpoint") if c["kind"] == "best"] == \
        [e["step"] for e in rec.of("eval") if e["improved"]]
    assert rkio.load_checkpoint(tmp_path).meta["step"] == hist.step == 12
    with pytest.raises(ValueError, match="checkpoint_share must be > 0"):
        TrainConfig(checkpoint_share=0.0)


def test_callbacks_see_steps_evaluations_checkpoints_and_the_end(tmp_path):
    rec = Recorder()
    batches = reg_batches(n=4)
    trainer = Trainer(Regressor(), quiet(epochs=2, val_every=3, log_every=2, checkpoint_share=None), tmp_path,
                      callbacks=[rec])
    hist = trainer.fit(batches, reg_batches(n=2, seed=1))
    assert rec.calls[0] == ("start", 0) and rec.calls[-1] == ("end", hist)
    steps = rec.of("step")
    assert [s["step"] for s in steps] == list(range(1, 9))
    assert [(s["epoch"], s["batch"]) for s in steps] == [(1, 1), (1, 2), (1, 3), (1, 4), (2, 1), (2, 2), (2, 3), (2, 4)]
    assert all(math.isfinite(s["loss"]) and s["grad_norm"] > 0 and s["lr"] > 0 for s in steps)
    evals = rec.of("eval")
    assert [e["step"] for e in evals] == [3, 4, 6, 8]          # every 3 steps and at the epoch ends
    assert [e["val_loss"] for e in evals] == [r["val_loss"] for r in hist.records if r["event"] == "val"]
    best = [e for e in evals if e["improved"]]
    assert best and all(e["best_step"] == e["step"] for e in best)
    assert [e["epoch"] for e in rec.of("epoch_end")] == [1, 2]
    cps = rec.of("checkpoint")
    assert [c["step"] for c in cps if c["kind"] == "best"] == [e["step"] for e in best]
    assert [c["step"] for c in cps if c["kind"] == "resume"] == [4, 8, 8]   # epoch ends and the end
    assert rec.of("record") == hist.records                      # every metrics.jsonl line, as written
    # checkpoints are reported after they are on disk; a checkpoint's weights are the model's then
    assert rkio.load_checkpoint(tmp_path).meta["step"] == 8


def test_a_callback_that_raises_keyboard_interrupt_stops_like_ctrl_c(tmp_path):
    class StopAt(rk.train.Callback):
        def on_step(self, trainer, info):
            if info["step"] == 3:
                raise KeyboardInterrupt

    trainer = Trainer(Regressor(), quiet(epochs=5), tmp_path, callbacks=StopAt())
    hist = trainer.fit(reg_batches())
    assert hist.interrupted and hist.step == 3
    assert json.loads((tmp_path / "trainer.json").read_text())["step"] == 3


def test_callbacks_must_have_hooks():
    with pytest.raises(TypeError, match="callbacks"):
        Trainer(Regressor(), quiet(), callbacks=[print])
