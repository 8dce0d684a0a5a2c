"""Whole training steps of rnnkit's jobs against the same steps in PyTorch, side by side.

    python benchmarks/jobs.py [--rounds 5] [--target 1.0] [--threads N] [--blas-one] [--quick]
                              [--json out.json]

One training step of each job, float32, with the same shapes in both libraries:

    charlm      ids (T=100, B=32) -> Embedding(65, 64) -> 2-layer LSTM(256) -> Linear(65)
                -> softmax cross-entropy over every position -> clip (norm 1) -> Adam
    classifier  x (T=100, B=32, 8) -> 1-layer GRU(128) -> last state -> Linear(10)
                -> softmax cross-entropy -> clip -> Adam
    forecaster  x (T=48, B=64, 1) -> 1-layer LSTM(64) -> last state -> Linear(12)
                -> mean squared error on the next 12 values -> clip -> Adam

The classifier and the forecaster read the last state as rnnkit's models do: rnnkit's
backward starts from ∂L/∂h_n alone (``rnn.backward(None, dh_n)``), torch's autograd from
the last output.

Each library runs in its own process (its threads and allocator undisturbed by the
other's), NumPy imported first in both. Timing is interleaved: every round times
each job in each process in turn, every timing call repeats the step for about
``--target`` seconds after one untimed step. Reported: the median step time and
the throughput in samples per second (characters per second for charlm: T·B per
step), and rnnkit's throughput over torch's ("x torch", > 1: rnnkit faster).
With ``--blas-one`` rnnkit's process holds NumPy's BLAS to one thread for the whole
run, as ``rnnkit``'s commands do: the recurrent layers' products then all run on
the loops' own threads, with no second pool beside them. Without it the BLAS keeps
its own threads, as in a script that trains rnnkit's modules with nothing else set.
On a machine others are busy on the numbers say as much about the neighbours as
about the code: compare ratios from the same run, never absolute times.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import time

import numpy as np

JOBS = {   # name: (cell, T, B, input, hidden, layers, outputs, kind)
    "charlm": ("lstm", 100, 32, 64, 256, 2, 65, "lm"),
    "classifier": ("gru", 100, 32, 8, 128, 1, 10, "classify"),
    "forecaster": ("lstm", 48, 64, 1, 64, 1, 12, "forecast"),
}
QUICK = {name: (c, max(4, T // 10), B // 4, I, H // 4, L, O, k)
         for name, (c, T, B, I, H, L, O, k) in JOBS.items()}
VOCAB, CLIP, LR = 65, 1.0, 2e-3


def _data(job, seed=0):
    cell, T, B, I, H, L, O, kind = job
    rng = np.random.default_rng(seed)
    if kind == "lm":
        ids = rng.integers(0, VOCAB, size=(T + 1, B))
        return ids[:-1], ids[1:]
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    if kind == "classify":
        return x, rng.integers(0, O, size=B)
    return x, rng.standard_normal((B, O)).astype(np.float32)


def _rnnkit_step(job):
    """One rnnkit training step of ``job`` as a function of no arguments."""
    import rnnkit as rk
    from rnnkit import losses, optim

    cell, T, B, I, H, L, O, kind = job
    x, target = _data(job)
    emb = rk.Embedding(VOCAB, I, seed=1) if kind == "lm" else None
    rnn = rk.Recurrent(cell, I, H, num_layers=L, seed=2)
    head = rk.Linear(H, O, seed=3)
    modules = [m for m in (emb, rnn, head) if m is not None]
    params = {f"{i}.{k}": v for i, m in enumerate(modules) for k, v in m.params.items()}
    opt = optim.Adam(params, lr=LR)

    def step():
        for m in modules:
            m.zero_grad()
        inp = emb.forward(x) if emb is not None else x
        y, _ = rnn.forward(inp)
        if kind == "lm":
            logits = head.forward(y)
            _, d = losses.softmax_cross_entropy(logits, target)
            dx, _ = rnn.backward(head.backward(d))
        else:
            out = head.forward(y[-1])
            if kind == "classify":
                _, d = losses.softmax_cross_entropy(out, target)
            else:
                _, d = losses.mse(out, target)
            dh_n = np.zeros((L, B, H), dtype=y.dtype)    # the models' "last" pooling: only h_n is read
            dh_n[-1] = head.backward(d)
            dx, _ = rnn.backward(None, (dh_n, None) if cell == "lstm" else dh_n)
        if emb is not None:
            emb.backward(dx)
        grads = {f"{i}.{k}": v for i, m in enumerate(modules) for k, v in m.grads.items()}
        optim.clip_grad_norm(grads, CLIP)
        opt.step(grads)
    return step


def _torch_step(job):
    """The same step in PyTorch."""
    import torch

    cell, T, B, I, H, L, O, kind = job
    x, target = _data(job)
    torch.manual_seed(0)
    emb = torch.nn.Embedding(VOCAB, I) if kind == "lm" else None
    rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](I, H, num_layers=L)
    head = torch.nn.Linear(H, O)
    modules = [m for m in (emb, rnn, head) if m is not None]
    params = [p for m in modules for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=LR)
    xt = torch.from_numpy(x)
    tt = torch.from_numpy(target)

    def step():
        opt.zero_grad(set_to_none=False)
        inp = emb(xt) if emb is not None else xt
        y, _ = rnn(inp)
        if kind == "lm":
            loss = torch.nn.functional.cross_entropy(head(y).reshape(-1, O), tt.reshape(-1))
        elif kind == "classify":
            loss = torch.nn.functional.cross_entropy(head(y[-1]), tt)
        else:
            loss = torch.nn.functional.mse_loss(head(y[-1]), tt)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, CLIP)
        opt.step()
    return step


def _worker(side, jobs, threads, conn, blas_one=False):
    """A side's process: build every job's step, then time what it is asked to (rnnkit's
    with the BLAS held to one thread for the whole run when ``blas_one``)."""
    try:
        if side == "rnnkit" and blas_one:
            from rnnkit.blas import blas_threads
            blas_threads(1).__enter__()       # for the life of this process, as the commands do
        if side == "torch":
            import torch
            if threads:
                torch.set_num_threads(threads)
        steps = {name: (_rnnkit_step if side == "rnnkit" else _torch_step)(job)
                 for name, job in jobs.items()}
        from threadpoolctl import threadpool_info
        pools = [{k: p.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
                 for p in threadpool_info()]
        conn.send({"ok": True, "pools": pools})
    except Exception as exc:                # e.g. torch not installed: that side is skipped
        conn.send({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
        return
    while True:
        req = conn.recv()
        if req is None:
            return
        name, target = req
        fn = steps[name]
        fn()                                # untimed: this job's memory is in place again
        times, spent = [], 0.0
        while spent < target or len(times) < 3:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
            spent += times[-1]
        conn.send(times)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    p.add_argument("--target", type=float, default=1.0, help="seconds per timing call")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for both sides (OMP/OpenBLAS/MKL and torch.set_num_threads)")
    p.add_argument("--quick", action="store_true", help="small shapes, one short round")
    p.add_argument("--blas-one", action="store_true",
                   help="rnnkit's side holds NumPy's BLAS to one thread for the whole run, as "
                        "rnnkit's commands do (--threads auto); torch's side is unchanged")
    p.add_argument("--json", metavar="PATH", help="also write the numbers to this JSON file")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.target <= 0 or (args.threads is not None and args.threads < 1):
        raise SystemExit("jobs.py: --rounds and --threads must be >= 1, --target > 0")
    jobs = QUICK if args.quick else JOBS
    rounds, target = (1, 0.05) if args.quick else (args.rounds, args.target)
    if args.threads:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.threads)    # inherited by the spawned workers
    ctx = mp.get_context("spawn")
    sides, procs, info = {}, [], {}
    for side in ("rnnkit", "torch"):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker, args=(side, jobs, args.threads, child, args.blas_one),
                           daemon=True)
        proc.start()
        procs.append(proc)
        hello = parent.recv()
        info[side] = hello
        if hello["ok"]:
            sides[side] = parent
        else:
            print(f"{side}: skipped ({hello['error']})", file=sys.stderr)
    times = {side: {name: [] for name in jobs} for side in sides}
    try:
        for r in range(rounds):
            for name in jobs:
                order = list(sides)[r % len(sides):] + list(sides)[:r % len(sides)] if sides else []
                for side in order:
                    sides[side].send((name, target))
                    times[side][name] += sides[side].recv()
    finally:
        for conn in sides.values():
            conn.send(None)
        for proc in procs:
            proc.join(30)
    report = {"threads": args.threads, "blas_one": args.blas_one, "rounds": rounds, "jobs": {},
              "workers": info}
    print(f"{'job':12s} {'side':8s} {'median ms':>10s} {'samples/s':>11s} {'x torch':>8s}")
    for name, job in jobs.items():
        per_step = job[1] * job[2] if job[7] == "lm" else job[2]     # characters or sequences
        entry = {}
        for side in sides:
            med = statistics.median(times[side][name])
            entry[side] = {"median_ms": med * 1e3, "samples_per_s": per_step / med}
        ratio = (entry["rnnkit"]["samples_per_s"] / entry["torch"]["samples_per_s"]
                 if len(entry) == 2 else None)
        report["jobs"][name] = {**entry, "rnnkit/torch_throughput": ratio}
        for side, e in entry.items():
            r = f"{ratio:8.2f}" if side == "rnnkit" and ratio is not None else ""
            print(f"{name:12s} {side:8s} {e['median_ms']:10.2f} {e['samples_per_s']:11.0f} {r:>8s}")
    for side, hello in info.items():
        for pool in hello.get("pools", []):
            print(f"{side}: {pool['internal_api']} {pool.get('version') or ''} "
                  f"kernel {pool.get('architecture') or '-'}, {pool['num_threads']} threads")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
