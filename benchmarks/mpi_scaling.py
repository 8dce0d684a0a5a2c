"""Data-parallel scaling on this machine: one process against N MPI ranks, one thread each.

    python benchmarks/mpi_scaling.py                       # 1 vs 2 ranks, the LM defaults
    python benchmarks/mpi_scaling.py --ranks 1 2 --repeats 3 --hidden 256 --json out.json

Each configuration trains the same character LSTM language model (truncated BPTT on
the development corpus, the global batch fixed) for ``--steps`` optimizer steps in a
fresh process group: 1 rank is a plain process without MPI, N > 1 ranks run under
``mpiexec -n N``; every process gets one thread (OMP/OpenBLAS/MKL = 1). The rate is
the median over the log intervals after the first (the warm-up) of the characters
trained on per second, counted over the whole global batch. The runs alternate
(1, 2, 1, 2, ...) so a busy machine disturbs both alike; the median of the repeats and
the ratio to one process are printed. The last step's training loss of every run is
printed too: it must be the same for every rank count, up to float rounding.

On a busy machine the wall-clock rates say more about the other processes than
about rnnkit, so the script also prints the ceiling that compute alone allows: the
CPU time of one forward+backward pass on the whole batch over that on a 1/N shard,
measured in one process, alternating, median of 15 (``--no-ceiling`` skips it).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = "/work/shared/data/text/moby_dick.txt.gz"


def worker(args) -> None:
    """One run (on every rank): train, then rank 0 prints one JSON line."""
    sys.path.insert(0, ROOT)
    import numpy as np

    from rnnkit import distributed, models
    from rnnkit.data.text import CharVocab, stream_batches
    from rnnkit.train import Trainer, TrainConfig

    comm = distributed.world()
    if os.path.exists(args.corpus):
        with gzip.open(args.corpus, "rt", encoding="utf-8") as f:
            text = f.read(args.chars)
    else:   # no development corpus here: a fixed pseudo-random text of the same size
        rng = np.random.default_rng(0)
        text = "".join(rng.choice(list("abcdefghij klmnop\n"), size=args.chars))
    vocab = CharVocab.from_text(text)
    ids = np.asarray(vocab.encode(text), dtype=np.int64)
    batches = list(stream_batches(ids, args.batch, args.seq_len))
    model = models.SequenceTagger("lstm", hidden_size=args.hidden, num_layers=args.layers,
                                  vocab_size=len(vocab), embedding_dim=32, num_classes=len(vocab), seed=0)
    config = TrainConfig(epochs=1000, max_steps=args.steps, optimizer="adam", lr=2e-3, clip_norm=5.0,
                         carry_state=True, tbptt_k2=args.seq_len, quiet=True, log_every=args.log_every)
    trainer = Trainer(model, config)
    history = trainer.fit(batches)
    rates = [r["items_per_sec"] for r in history.records if r["event"] == "train"][1:]
    losses = [r["train_loss"] for r in history.records if r["event"] == "train"]
    if comm.is_root:
        print(json.dumps({"ranks": comm.size, "chars_per_sec": statistics.median(rates),
                          "last_loss": losses[-1], "params": model.num_parameters()}), flush=True)


def ceiling(args, ranks: int) -> float:
    """CPU time of forward+backward on the global batch / on a 1/ranks shard (one thread)."""
    code = f"""
import statistics, time, numpy as np
from rnnkit import models
m = models.SequenceTagger("lstm", hidden_size={args.hidden}, num_layers={args.layers}, vocab_size=96,
                          embedding_dim=32, num_classes=96, seed=0)
rng = np.random.default_rng(0)
def batch(b):
    return {{"x": rng.integers(0, 96, ({args.seq_len}, b)), "y": rng.integers(0, 96, ({args.seq_len}, b))}}
whole, shard = batch({args.batch}), batch(-(-{args.batch} // {ranks}))
def cpu(b):
    t0 = time.process_time(); m.zero_grad(); m.loss(b); m.backward(); return time.process_time() - t0
for _ in range(3):
    cpu(whole); cpu(shard)
w, s = [], []
for _ in range(15):
    w.append(cpu(whole)); s.append(cpu(shard))
print(statistics.median(w) / statistics.median(s))
"""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=3600)
    if out.returncode != 0:
        raise SystemExit(f"the ceiling measurement failed:\n{out.stderr[-3000:]}")
    return float(out.stdout.split()[-1])


def run(args, ranks: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, os.path.abspath(__file__), "--worker"] + [
        a for a in sys.argv[1:] if a != "--worker"]
    if ranks > 1:
        sys.path.insert(0, ROOT)
        from rnnkit.distributed import find_mpiexec
        mpiexec = find_mpiexec()
        if mpiexec is None:
            raise SystemExit("no mpiexec: pip install \"rnnkit[mpi]\"")
        cmd = [mpiexec, "-n", str(ranks)] + cmd
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if out.returncode != 0:
        raise SystemExit(f"{ranks} rank(s) failed:\n{out.stderr[-3000:]}")
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2], help="rank counts to compare (1 first)")
    p.add_argument("--repeats", type=int, default=3, help="runs of each rank count, alternating")
    p.add_argument("--steps", type=int, default=40, help="optimizer steps per run")
    p.add_argument("--log-every", type=int, default=5, help="steps per rate measurement")
    p.add_argument("--hidden", type=int, default=128, help="LSTM hidden size")
    p.add_argument("--layers", type=int, default=2, help="LSTM layers")
    p.add_argument("--batch", type=int, default=32, help="global batch (streams)")
    p.add_argument("--seq-len", type=int, default=64, help="TBPTT window")
    p.add_argument("--chars", type=int, default=400_000, help="characters of the corpus to use")
    p.add_argument("--corpus", default=CORPUS, help="gzip text corpus")
    p.add_argument("--no-ceiling", action="store_true", help="skip the compute-only ceiling")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    results = {n: [] for n in args.ranks}
    for _ in range(args.repeats):
        for n in args.ranks:
            r = run(args, n)
            results[n].append(r)
            print(f"{n} rank(s): {r['chars_per_sec']:,.0f} chars/s, last loss {r['last_loss']:.6f}", flush=True)
    base = statistics.median(r["chars_per_sec"] for r in results[args.ranks[0]])
    summary = []
    for n in args.ranks:
        med = statistics.median(r["chars_per_sec"] for r in results[n])
        summary.append({"ranks": n, "median_chars_per_sec": med, "speedup": med / base,
                        "runs": results[n]})
        line = f"median {n} rank(s): {med:,.0f} chars/s = {med / base:.2f}x {args.ranks[0]} rank(s)"
        if n > 1 and not args.no_ceiling:
            summary[-1]["compute_ceiling"] = c = ceiling(args, n)
            line += f" (compute alone allows {c:.2f}x)"
        print(line, flush=True)
    if args.json:
        with tempfile.NamedTemporaryFile("w", dir=os.path.dirname(os.path.abspath(args.json)) or ".",
                                         delete=False, suffix=".tmp") as f:
            json.dump({"args": vars(args), "results": summary}, f, indent=1)
        os.replace(f.name, args.json)


if __name__ == "__main__":
    main()
