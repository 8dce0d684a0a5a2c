"""rnnkit.distributed and data-parallel training: 2 ranks under mpiexec, in subprocesses.

Each test writes a small script, runs it with ``mpiexec -n 2 python script`` (bounded
timeout) and checks what the ranks report; without mpi4py or mpiexec they skip.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from rnnkit import distributed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in distributed.SIZE_VARIABLES}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    env["OPENBLAS_NUM_THREADS"] = "1"
    env.update(extra)
    return env


def mpiexec():
    pytest.importorskip("mpi4py")
    exe = distributed.find_mpiexec()
    if exe is None:
        pytest.skip("no mpiexec (pip install mpich)")
    return exe


PRELUDE = """
import json as _json, os as _os
def report(obj):
    # one file per rank: the launcher's forwarded stdout may interleave the ranks' lines
    from rnnkit import distributed as _d
    with open(_os.path.join(_os.environ["REPORTS"], "rank%d.json" % _d.world().rank), "w") as f:
        _json.dump(obj, f)
"""


def run_ranks(tmp_path, code: str, n: int = 2, timeout: float = 60, env=None, args=()):
    """Run ``code`` on ``n`` ranks; returns the CompletedProcess. ``report(obj)`` in the
    script leaves ``obj`` in ``tmp_path/reports/rank<r>.json`` (see :func:`reports`)."""
    script = tmp_path / "script.py"
    script.write_text(PRELUDE + textwrap.dedent(code))
    reports_dir = tmp_path / "reports"
    if reports_dir.exists():
        for f in reports_dir.iterdir():
            f.unlink()
    reports_dir.mkdir(exist_ok=True)
    env = dict(env or {}, REPORTS=str(reports_dir))
    return subprocess.run([mpiexec(), "-n", str(n), sys.executable, str(script), *args],
                          capture_output=True, text=True, timeout=timeout, env=_env(**env),
                          cwd=tmp_path)


def test_one_process_imports_no_mpi():
    code = ("import sys, rnnkit.distributed as d; c = d.world(); "
            "assert (c.rank, c.size, c.is_root) == (0, 1, True); "
            "assert c.allreduce is not None and c.same_on_all({}); "
            "assert 'mpi4py' not in sys.modules, 'mpi4py imported'; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=_env())
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_shard_range_covers_every_item_once():
    for n in range(0, 13):
        for size in range(1, 5):
            pieces = [distributed.shard_range(n, r, size) for r in range(size)]
            assert pieces[0][0] == 0 and pieces[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:]))
            lens = [b - a for a, b in pieces]
            assert max(lens) - min(lens) <= 1


def test_communicator_operations(tmp_path):
    out = run_ranks(tmp_path, """
        import numpy as np
        from rnnkit import distributed
        c = distributed.world()
        assert c.size == 2, c.size
        r = c.rank
        buf = np.arange(5, dtype=np.float64) * (r + 1)
        c.allreduce(buf)
        assert np.array_equal(buf, np.arange(5) * 3.0), buf
        f32 = np.full(3, 0.5 + r, dtype=np.float32)
        assert np.array_equal(c.allreduce(f32), np.full(3, 2.0, np.float32))
        tree = {"w": np.arange(6, dtype=np.float32).reshape(2, 3) + 10 * r, "step": 7 + r,
                "t": (np.int64(3 + r), [1.5, None]), "big": 2 ** 70 + r, "e": np.zeros((0, 4))}
        got = c.broadcast(tree)
        assert got["w"].dtype == np.float32 and np.array_equal(got["w"], np.arange(6).reshape(2, 3))
        assert got["step"] == 7 and got["t"][0] == 3 and got["t"][1] == [1.5, None], got
        assert got["big"] == 2 ** 70 and got["e"].shape == (0, 4)
        parts = c.gather_bytes(b"rank%d" % r * (r + 1))
        if r == 0:
            assert parts == [b"rank0", b"rank1rank1"], parts
        else:
            assert parts is None
        same = {"a": np.ones(3)}
        assert c.same_on_all(same)
        differ = {"a": np.ones(3) + (np.spacing(1.0) if r == 1 else 0.0)}   # one ulp apart
        assert not c.same_on_all(differ)
        c.barrier()
        report({"rank": r})
    """)
    assert [r["rank"] for r in reports(out, tmp_path)] == [0, 1]


def test_watchdog_aborts_a_hung_collective(tmp_path):
    out = run_ranks(tmp_path, """
        import time, numpy as np
        from rnnkit import distributed
        c = distributed.world()
        if c.rank == 1:
            time.sleep(300)     # never reaches the allreduce in time: only the abort ends it
        c.allreduce(np.zeros(2))
        report({"rank": c.rank})
    """, env={"RNNKIT_MPI_TIMEOUT": "1"}, timeout=120)
    assert out.returncode != 0
    assert not list((tmp_path / "reports").iterdir())
    assert "RNNKIT_MPI_TIMEOUT" in out.stderr, out.stderr


# -- data-parallel training --------------------------------------------------------------

EQUIVALENCE = """
    import json, sys
    import numpy as np
    from rnnkit import distributed, models
    from rnnkit.data.text import stream_batches
    from rnnkit.train import Trainer, TrainConfig

    comm = distributed.world()
    assert comm.size == 2
    rng = np.random.default_rng(0)
    kind = sys.argv[1]
    if kind == "lm":        # truncated BPTT over 5 streams (3 on rank 0, 2 on rank 1), LSTM
        ids = rng.integers(0, 7, size=400)
        batches = list(stream_batches(ids, 5, seq_len=8, k1=6))[:6]
        make = lambda: models.SequenceTagger("lstm", hidden_size=6, vocab_size=7, embedding_dim=4,
                                             num_classes=7, dtype="float64", seed=3)
        cfg = dict(carry_state=True, tbptt_k1=6, tbptt_k2=8, clip_norm=0.5)
    else:                   # ragged sequences, class weights (the mean's weight is not the count)
        batches = []
        for b in range(4):
            lengths = rng.integers(1, 7, size=7)
            batches.append({"x": rng.standard_normal((6, 7, 3)), "lengths": lengths,
                            "y": rng.integers(0, 3, size=7)})
        make = lambda: models.SequenceClassifier(3, "gru", hidden_size=5, input_size=3, dtype="float64",
                                                 seed=4, class_weights=[1.0, 3.0, 0.5])
        cfg = dict(clip_norm=0.3)
    config = TrainConfig(epochs=2, optimizer="adam", lr=0.05, quiet=True, **cfg)

    model = make()
    trainer = Trainer(model, config, out_dir=sys.argv[2])
    step = trainer.optimizer.step
    checks = []
    def checked_step(grads):
        step(grads)
        checks.append(comm.same_on_all(model.params))     # the hash allreduce, every step
    trainer.optimizer.step = checked_step
    history = trainer.fit(batches, val_batches=batches[:2])

    ref_model = make()
    ref = Trainer(ref_model, config, comm=distributed.SingleProcess())
    ref_history = ref.fit(batches, val_batches=batches[:2])
    err = max(float(np.max(np.abs(model.params[k] - ref_model.params[k]))
                    / max(1.0, float(np.max(np.abs(ref_model.params[k]))))) for k in model.params)
    losses = [r["train_loss"] for r in history.records if r["event"] == "train"]
    ref_losses = [r["train_loss"] for r in ref_history.records if r["event"] == "train"]
    report(({"rank": comm.rank, "steps": trainer.step, "ref_steps": ref.step, "checks": checks,
                      "err": err, "val": history.best_val_loss, "ref_val": ref_history.best_val_loss,
                      "loss": losses, "ref_loss": ref_losses}))
"""


def reports(out, tmp_path, n: int = 2):
    """What each rank passed to ``report``, in rank order, after a run that succeeded."""
    assert out.returncode == 0, out.stdout + out.stderr
    rows = [json.loads((tmp_path / "reports" / f"rank{r}.json").read_text()) for r in range(n)]
    assert [r["rank"] for r in rows] == list(range(n))
    return rows


@pytest.mark.parametrize("kind", ["lm", "classify"])
def test_two_ranks_equal_one_process_step_for_step(tmp_path, kind):
    rows = reports(run_ranks(tmp_path, EQUIVALENCE, args=(kind, str(tmp_path / "run"))), tmp_path)
    for r in rows:
        assert r["steps"] == r["ref_steps"] > 0
        assert len(r["checks"]) == r["steps"] and all(r["checks"]), r["checks"]
        assert r["err"] < 1e-12, r["err"]
        assert abs(r["val"] - r["ref_val"]) < 1e-12 * max(1.0, abs(r["ref_val"]))
        np.testing.assert_allclose(r["loss"], r["ref_loss"], rtol=1e-12)
    # rank 0 alone wrote the run directory, and it resumes in one process
    from rnnkit.train import Trainer
    from rnnkit import distributed
    resumed = Trainer.resume(tmp_path / "run", comm=distributed.SingleProcess())
    assert resumed.step == rows[0]["steps"]


STOPS = """
    import json, os, signal, sys, time
    import numpy as np
    from rnnkit import distributed, models
    from rnnkit.data.text import stream_batches
    from rnnkit.train import Trainer, TrainConfig

    comm = distributed.world()
    mode, out_dir = sys.argv[1], sys.argv[2]
    ids = np.random.default_rng(1).integers(0, 7, size=900)
    batches = list(stream_batches(ids, 5, seq_len=8, k1=6))[:12]
    make = lambda: models.SequenceTagger("lstm", hidden_size=6, vocab_size=7, embedding_dim=4,
                                         num_classes=7, dtype="float64", seed=3)
    config = TrainConfig(epochs=1, optimizer="adam", lr=0.05, quiet=True, carry_state=True, tbptt_k1=6,
                         tbptt_k2=8, checkpoint_every=1)
    start = 0
    if mode == "resume":
        trainer = Trainer.resume(out_dir, max_steps=9)
        start = trainer.step
    elif mode == "time":
        trainer = Trainer(make(), config.replace(time_limit=1.0, checkpoint_every=None), out_dir)
    else:
        trainer = Trainer(make(), config.replace(max_steps=9 if mode == "straight" else None), out_dir)
    step = trainer.optimizer.step
    def stepped(grads):
        step(grads)
        n = trainer.step + 1
        if comm.rank == 1 and n == 4 and mode == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if comm.rank == 1 and mode == "time":
            time.sleep(0.3)                       # rank 1's clock runs out first; rank 0 follows it
        if comm.rank == 1 and n == 4 and mode == "int":
            os.kill(os.getpid(), signal.SIGINT)   # one rank only: the others learn it at the next allreduce
    trainer.optimizer.step = stepped
    history = trainer.fit(batches)
    report(({"rank": comm.rank, "start": start, "steps": trainer.step, "reason": history.stop_reason,
                      "params": {k: v.tolist() for k, v in trainer.model.params.items()}}))
"""


def test_ctrl_c_and_kill_9_stop_every_rank_and_resume_exactly(tmp_path):
    straight = reports(run_ranks(tmp_path, STOPS, args=("straight", str(tmp_path / "a"))), tmp_path)
    assert straight[0]["steps"] == 9 and straight[0]["params"] == straight[1]["params"]

    # Ctrl-C on one rank after step 4's update: its vote rides step 5's allreduce, so
    # every rank stops after step 5 and rank 0 checkpoints it
    stopped = reports(run_ranks(tmp_path, STOPS, args=("int", str(tmp_path / "b"))), tmp_path)
    assert [r["reason"] for r in stopped] == ["interrupted"] * 2 and {r["steps"] for r in stopped} == {5}

    # kill -9 of rank 1 during step 4: the launcher ends rank 0; the step-3 checkpoint stays
    killed = run_ranks(tmp_path, STOPS, args=("kill", str(tmp_path / "c")))
    assert killed.returncode != 0 and not list((tmp_path / "reports").iterdir())

    # the time limit is voted on: both ranks stop after the same step
    timed = reports(run_ranks(tmp_path, STOPS, args=("time", str(tmp_path / "d"))), tmp_path)
    assert [r["reason"] for r in timed] == ["time_limit"] * 2
    assert timed[0]["steps"] == timed[1]["steps"] < 9 and timed[0]["params"] == timed[1]["params"]

    for directory, steps in (("b", 5), ("c", 3)):
        resumed = reports(run_ranks(tmp_path, STOPS, args=("resume", str(tmp_path / directory))), tmp_path)
        for r in resumed:
            assert r["start"] == steps and r["steps"] == 9 and r["reason"] == "max_steps"
            for k, v in r["params"].items():   # the carried state was assembled and split again
                np.testing.assert_allclose(v, straight[0]["params"][k], rtol=1e-12, atol=1e-13, err_msg=k)


# -- the shards every model's batch_axes cut (in one process) ------------------------------

def _model_cases():
    from rnnkit import models
    rng = np.random.default_rng(5)
    T, B = 5, 6
    lengths = rng.integers(1, T + 1, size=B)
    mask = rng.random((T, B)) < 0.8
    yield (models.SequenceTagger("gru", hidden_size=4, vocab_size=6, embedding_dim=3, num_classes=6,
                                 dtype="float64", seed=1),
           {"x": rng.integers(0, 6, (T, B)), "y": rng.integers(0, 6, (T, B)), "mask": mask, "lengths": lengths})
    yield (models.SequenceClassifier(3, "lstm", hidden_size=4, input_size=2, dtype="float64", seed=2,
                                     pooling="mean", class_weights=[1.0, 2.5, 0.3]),
           {"x": rng.standard_normal((T, B, 2)), "lengths": lengths, "y": rng.integers(0, 3, B)})
    yield (models.SequenceRegressor(2, "rnn", hidden_size=4, input_size=2, dtype="float64", seed=3),
           {"x": rng.standard_normal((T, B, 2)), "lengths": lengths, "y": rng.standard_normal((B, 2))})
    yield (models.OneToOne("gru", hidden_size=4, input_size=3, output_size=1, dtype="float64", seed=4),
           {"x": rng.standard_normal((B, 3)), "y": rng.standard_normal(B)})
    yield (models.OneToMany(cond_classes=3, num_classes=5, hidden_size=4, embedding_dim=3, dtype="float64", seed=5),
           {"cond": rng.integers(0, 3, B), "y": rng.integers(0, 5, (T, B)), "lengths": lengths})
    yield (models.EncoderDecoder(7, src_vocab_size=6, hidden_size=4, embedding_dim=3, dtype="float64", seed=6),
           {"x": rng.integers(0, 6, (T, B)), "lengths": lengths, "y": rng.integers(0, 7, (T + 1, B))})
    yield (models.AttentionEncoderDecoder(7, src_vocab_size=6, hidden_size=4, embedding_dim=3, bidirectional=True,
                                          attention="additive", dtype="float64", seed=7),
           {"x": rng.integers(0, 6, (T, B)), "lengths": lengths, "y": rng.integers(0, 7, (T + 1, B))})


@pytest.mark.parametrize("case", list(range(7)))
def test_every_models_shards_recombine_to_the_whole_batch(case):
    """Σ_r W_r·L_r / Σ_r W_r and Σ_r (W_r/W)·∇L_r over the shards equal the whole batch's
    loss and gradient: what the allreduce of a data-parallel step computes."""
    from rnnkit.models import MODELS
    model, batch = list(_model_cases())[case]
    assert isinstance(type(model).batch_axes, dict)
    model.zero_grad()
    whole, _, _ = model.loss(batch)
    model.backward()
    want = {k: g.copy() for k, g in model.grads.items()}
    n = distributed.batch_size(batch, model.batch_axes)
    parts = []
    for r in range(3):
        start, stop = distributed.shard_range(n, r, 3)
        model.zero_grad()
        loss, count, _ = model.loss(distributed.shard_batch(batch, model.batch_axes, start, stop))
        model.backward()
        w = count if model.loss_weight is None else model.loss_weight
        parts.append((float(loss), w, {k: g.copy() for k, g in model.grads.items()}))
    W = sum(w for _, w, _ in parts)
    assert abs(sum(l * w for l, w, _ in parts) / W - whole) < 1e-12 * max(1, abs(whole))
    for k in want:
        got = sum((w / W) * g[k] for _, w, g in parts)
        np.testing.assert_allclose(got, want[k], rtol=1e-10, atol=1e-13, err_msg=f"{type(model).__name__} {k}")
    assert set(MODELS) == {type(m).__name__ for m, _ in _model_cases()}   # every model is covered


def test_shard_batch_names_a_key_it_cannot_split():
    with pytest.raises(ValueError, match="'extra'"):
        distributed.shard_batch({"x": np.zeros((2, 4)), "extra": np.zeros(4)}, {"x": 1}, 0, 2)


# -- the command line ----------------------------------------------------------------------

def _rnnkit(args, timeout=120, **env):
    return subprocess.run([sys.executable, "-m", "rnnkit", *args], capture_output=True, text=True,
                          timeout=timeout, env=_env(**env))


def test_train_lm_workers_2_matches_one_process(tmp_path):
    mpiexec()
    rng = np.random.default_rng(0)
    words = ["the ", "whale ", "sea ", "ship ", "and ", "of ", "captain ", "white "]
    (tmp_path / "t.txt").write_text("".join(rng.choice(words, size=3000)))
    common = ["train-lm", str(tmp_path / "t.txt"), "--hidden", "24", "--layers", "1", "--max-steps", "12",
              "--epochs", "2", "--threads", "1"]
    one = _rnnkit(common + ["--out", str(tmp_path / "one")])
    two = _rnnkit(common + ["--out", str(tmp_path / "two"), "--workers", "2"])
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    assert two.stdout.count("model: ") == 1           # rank 1 prints nothing
    val = {}
    for name in ("one", "two"):
        lines = (tmp_path / name / "train" / "metrics.jsonl").read_text().splitlines()
        val[name] = [json.loads(line)["val_loss"] for line in lines if '"val"' in line]
    assert len(val["two"]) == len(val["one"]) > 0      # rank 0 alone wrote the metrics
    np.testing.assert_allclose(val["two"], val["one"], rtol=2e-5)   # float32 rounding
    assert (tmp_path / "two" / "report.html").is_file()


def test_classify_under_mpiexec(tmp_path):
    """Another training command started by hand under mpiexec (the models' shards are
    checked in one process above, the LM through --workers)."""
    exe = mpiexec()
    rng = np.random.default_rng(1)
    rows = [[c] + list(np.sin(np.arange(12) * (c + 1) / 3 + rng.random()) + 0.1 * rng.random(12))
            for c in (1, 2) for _ in range(10)]
    (tmp_path / "train.tsv").write_text("\n".join("\t".join(f"{v:g}" for v in r) for r in rows) + "\n")
    done = subprocess.run([exe, "-n", "2", sys.executable, "-m", "rnnkit", "classify", str(tmp_path / "train.tsv"),
                           "--epochs", "2", "--hidden", "8", "--out", str(tmp_path / "clf"), "--threads", "1"],
                          capture_output=True, text=True, timeout=120, env=_env())
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("report: ") == 1          # rank 1 prints nothing
    assert (tmp_path / "clf" / "report.html").is_file() and (tmp_path / "clf" / "model.npz").is_file()
    records = [json.loads(line) for line in (tmp_path / "clf" / "train" / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if r["event"] == "train"]
    assert steps == sorted(set(steps)) and steps   # one line per log interval: rank 0 alone wrote


def test_workers_errors_name_the_flag(tmp_path, monkeypatch, capsys):
    from rnnkit.cli import main
    from rnnkit.cli.workers import strip_workers
    assert strip_workers(["a", "--workers", "2", "--b", "--workers=3", "c"]) == ["a", "--b", "c"]
    monkeypatch.setattr(distributed, "find_mpiexec", lambda: None)
    (tmp_path / "t.txt").write_text("abc " * 100)
    assert main(["train-lm", str(tmp_path / "t.txt"), "--out", str(tmp_path / "o"), "--workers", "2"]) == 1
    err = capsys.readouterr().err
    assert "--workers 2" in err and "rnnkit[mpi]" in err
    assert not (tmp_path / "o").exists()
    from rnnkit.cli.workers import start_workers
    from rnnkit.errors import RnnkitError
    monkeypatch.setenv("PMI_SIZE", "3")        # as if mpiexec -n 3 had started this process
    with pytest.raises(RnnkitError, match="--workers 2: this command already runs as 3 MPI processes"):
        start_workers(["train-lm", "t.txt", "--workers", "2"], 2, None)
    assert start_workers(["train-lm", "t.txt", "--workers", "3"], 3, None) is None   # go on as a rank


DIVERGE = """
    import sys
    import numpy as np
    from rnnkit import distributed, models
    from rnnkit._checks import NonFiniteError
    from rnnkit.data.text import stream_batches
    from rnnkit.errors import DivergenceError
    from rnnkit.train import Trainer, TrainConfig

    comm = distributed.world()
    ids = np.random.default_rng(1).integers(0, 7, size=900)
    batches = list(stream_batches(ids, 4, seq_len=8))[:12]
    model = models.SequenceTagger("gru", hidden_size=6, vocab_size=7, embedding_dim=4, num_classes=7,
                                  dtype="float64", seed=3)
    trainer = Trainer(model, TrainConfig(epochs=1, lr=0.05, quiet=True, checkpoint_every=1), sys.argv[1])
    loss = model.loss
    def overflowing(batch, **kw):
        # rank 1 alone: its activations overflow at step 4 (finite data, a NaN inside)
        if comm.rank == 1 and trainer.step + 1 == 4:
            raise NonFiniteError("SequenceTagger: logits contains NaN or inf")
        return loss(batch, **kw)
    model.loss = overflowing
    try:
        trainer.fit(batches)
        outcome = "finished"
    except DivergenceError as exc:
        outcome = str(exc)
    report({"rank": comm.rank, "outcome": outcome, "step": trainer.step})
"""


def test_divergence_on_one_rank_stops_every_rank_at_the_same_step(tmp_path):
    """A NaN inside one rank's shard is decided together: no rank waits for another."""
    rows = reports(run_ranks(tmp_path, DIVERGE, args=(str(tmp_path / "run"),), timeout=60), tmp_path)
    for r in rows:
        assert r["outcome"].startswith("training diverged at step 4 "), r
        assert "overflowed" in r["outcome"] and "left as of step 3" in r["outcome"], r
        assert r["step"] == 3
    from rnnkit.train import Trainer
    resumed = Trainer.resume(tmp_path / "run", comm=distributed.SingleProcess())
    assert resumed.step == 3                   # the last good checkpoint is kept


def test_train_lm_divergence_under_mpiexec_ends_every_rank(tmp_path):
    """The command: --lr 1e30 diverges on both ranks at once; the job ends (no hang) with the
    message naming the step, and the run directory keeps a loadable model."""
    exe = mpiexec()
    (tmp_path / "t.txt").write_text("the whale and the sea and the ship " * 60)
    done = subprocess.run([exe, "-n", "2", sys.executable, "-m", "rnnkit", "train-lm", str(tmp_path / "t.txt"),
                           "--out", str(tmp_path / "lm"), "--hidden", "8", "--layers", "1", "--lr", "1e30",
                           "--clip", "none", "--max-steps", "50", "--threads", "1", "--quiet"],
                          capture_output=True, text=True, timeout=120, env=_env())
    assert done.returncode != 0
    assert "error: training diverged at step " in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    from rnnkit.tasks.lm import CharLanguageModel
    CharLanguageModel.load(tmp_path / "lm")


def test_time_limit_under_workers_plans_one_run_for_every_rank(tmp_path):
    """With --time-limit each rank measures its own step time and clock: the plan (steps,
    validation interval, refit) comes from rank 0's, or the ranks' collectives would differ."""
    import time
    mpiexec()
    rng = np.random.default_rng(2)
    rows = [[c] + list(np.sin(np.arange(16) * (c + 1) / 3 + rng.random()) + 0.1 * rng.random(16))
            for c in (1, 2) for _ in range(30)]
    (tmp_path / "train.tsv").write_text("\n".join("\t".join(f"{v:g}" for v in r) for r in rows) + "\n")
    start = time.perf_counter()
    done = _rnnkit(["classify", str(tmp_path / "train.tsv"), "--test", str(tmp_path / "train.tsv"), "--hidden", "8",
                    "--time-limit", "8", "--out", str(tmp_path / "clf"), "--workers", "2", "--quiet"], timeout=120)
    wall = time.perf_counter() - start
    assert done.returncode == 0, done.stdout + done.stderr
    assert wall < 8 + 15, wall                 # two MPI processes start (and import) besides the limit
    metrics = json.loads((tmp_path / "clf" / "metrics.json").read_text())
    assert metrics["steps"] > 0 and metrics["test"]["of"] == 60
