"""Long-memory table: steps and seconds for each cell to solve the adding problem and the
copy task at several lengths (``rnnkit memory`` runs, one per task, length and cell).

Solved: the adding problem at MSE < 0.01; the copy task at a mean cross-entropy below
0.1 nats over the 10 recalled symbols (:func:`rnnkit.diagnostics.memory.solve_threshold`).
Each run stops when it solves the task, after ``--steps`` optimizer steps, or after
``--time-limit`` seconds of wall time. Every finished run is saved as its own JSON file
under ``--out`` (atomically), so an interrupted table resumes where it stopped; the
table is rebuilt from every file found there.

Examples::

    python benchmarks/memory_table.py --out runs/memory_table --jobs 2 --time-limit 900
    python benchmarks/memory_table.py --out runs/memory_table --table-only     # Markdown table
    python benchmarks/memory_table.py --out runs/memory_table --order cell --cell indrnn,lstm-chrono
    python benchmarks/memory_table.py --out runs/speed --speed --length 1000   # s/step per cell
    python benchmarks/memory_table.py --out runs/speed --speed --length 1000 --threads 2

Seconds are training time (evaluations excluded) on the machine that ran them; on a
shared machine they are noisy: compare cells measured in the same session.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

LENGTHS = (200, 500, 1000, 2000)
CELLS = ("lstm", "lstm-chrono", "gru", "indrnn", "mingru", "minlstm")
EXTRA = {"indrnn": (5000,)}          # lengths beyond LENGTHS for a cell


#: the orders of the runs (--order): by length (short sequences first), by cell (each
#: cell's runs together, in the order --cell lists them), by task (in --task's order),
#: or as given (--task, then --cell, then --length, each in the order listed)
ORDERS = ("length", "cell", "task", "given")


def jobs(tasks, lengths, cells, extra: bool, order: str = "length") -> list[tuple[str, int, str]]:
    """(task, T, cell) for every combination in ``order`` (:data:`ORDERS`); ``extra``: also
    the lengths of EXTRA."""
    if order not in ORDERS:
        raise ValueError(f"jobs: order must be one of {', '.join(ORDERS)}, got {order!r}")
    out = []
    for task in tasks:
        for cell in cells:
            more = [T for T in EXTRA.get(cell, ()) if T not in lengths] if extra else []
            for T in list(lengths) + sorted(more):
                out.append((task, T, cell))
    rank = {"task": {t: i for i, t in enumerate(tasks)}, "cell": {c: i for i, c in enumerate(cells)}}
    keys = {"length": lambda j: (j[1], rank["task"][j[0]], rank["cell"][j[2]]),
            "cell": lambda j: (rank["cell"][j[2]], rank["task"][j[0]], j[1]),
            "task": lambda j: (rank["task"][j[0]], j[1], rank["cell"][j[2]]),
            "given": lambda j: 0}
    return sorted(out, key=keys[order])          # stable: "given" keeps the listed order


def run_one(job, args_dict) -> str:
    from rnnkit.diagnostics.memory import run_memory
    from rnnkit.io import save_json

    task, T, cell = job
    path = Path(args_dict["out"]) / f"{task}_T{T}_{cell}.json"
    if path.exists():
        return f"{path.name}: already done"
    res = run_memory(task=task, length=T, cells=[cell], steps=args_dict["steps"], hidden=args_dict["hidden"],
                     batch_size=args_dict["batch"], eval_every=args_dict["eval_every"],
                     eval_size=args_dict["eval_size"], seed=args_dict["seed"], plot=False,
                     num_layers=args_dict["layers"], stop_when_solved=True, time_limit=args_dict["time_limit"])
    run = res["cells"][cell]         # with its learning curve: evaluated loss against step and seconds
    record = {"task": task, "length": T, "cell": cell, "solved_below": res["solved_below"],
              "baseline": res["baseline"], "batch": run["batch_size"], "time_limit": args_dict["time_limit"],
              **run}
    save_json(path, record)
    solved = run["steps_to_solve"]
    return (f"{task:6} T={T:<5} {cell:12} " + (f"solved at step {solved} ({run['seconds_to_solve']:.0f} s)"
            if solved is not None else f"not solved: best {run['best_loss']:.4g} in {run['steps_run']} steps"))


def table(out: Path) -> str:
    """The Markdown table of every run found under ``out``."""
    records = [json.loads(p.read_text()) for p in sorted(out.glob("*_T*_*.json"))
               if not p.name.startswith("speed_")]          # --speed's timings share the folder
    if not records:
        return "(no runs yet)"
    cols = sorted({(r["task"], r["length"]) for r in records})
    cells = [c for c in CELLS if any(r["cell"] == c for r in records)]
    cells += sorted({r["cell"] for r in records} - set(cells))
    by = {(r["task"], r["length"], r["cell"]): r for r in records}
    head = "| cell | " + " | ".join(f"{t} T={T}" for t, T in cols) + " |"
    lines = [head, "|" + "---|" * (len(cols) + 1)]
    for cell in cells:
        row = []
        for t, T in cols:
            r = by.get((t, T, cell))
            if r is None and T not in LENGTHS and T not in EXTRA.get(cell, ()):
                row.append("—")                 # a length only some cells are run at
            elif r is None:
                row.append("not run")
            elif r["steps_to_solve"] is not None:
                row.append(f"{r['steps_to_solve']} steps, {r['seconds_to_solve']:.0f} s")
            else:
                why = "diverged" if r["diverged"] else f"{r['steps_run']} steps, {r['seconds']:.0f} s"
                best = "-" if r["best_loss"] is None else f"{r['best_loss']:.3g}"
                row.append(f"no ({why}; best {best})")
        lines.append(f"| {cell} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def speed(cells, T: int, B: int, H: int, repeats: int, threads: int = 1) -> dict:
    """Median seconds per training step (forward + backward of the adding model), cells interleaved.

    ``threads``: of BLAS and of the compiled loops; above 1 the loops take them whatever
    the machine's load (rnnkit otherwise gives a call only the CPUs other processes leave
    free), each within its own rule of how much work pays for a thread."""
    from threadpoolctl import threadpool_limits

    from rnnkit import fast
    from rnnkit.diagnostics.memory import _task_batch, make_memory_model
    from rnnkit.fast import _util

    rng = np.random.default_rng(0)
    batch = _task_batch("adding", B, T, rng, np.float32)
    models = {c: make_memory_model("adding", c, H, seed=0, length=T) for c in cells}
    times = {c: [] for c in cells}
    free_cpus, old = _util.free_cpus, fast.set_max_threads(threads)
    _util.free_cpus = lambda: threads
    try:
        with threadpool_limits(limits=threads, user_api="blas"):
            for _ in range(repeats + 1):
                for c, m in models.items():
                    m.zero_grad()
                    t0 = time.perf_counter()
                    m.loss(batch)
                    m.backward()
                    times[c].append(time.perf_counter() - t0)
    finally:
        _util.free_cpus = free_cpus
        fast.set_max_threads(old)
    return {c: float(np.median(v[1:])) for c, v in times.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="directory of the runs' JSON files")
    p.add_argument("--task", default="adding,copy", help="comma-separated: adding,copy")
    p.add_argument("--length", default=",".join(map(str, LENGTHS)), help="comma-separated T")
    p.add_argument("--cell", default=",".join(CELLS), help="comma-separated cells (rnnkit memory's names)")
    p.add_argument("--steps", type=int, default=20000, help="most optimizer steps per run")
    p.add_argument("--time-limit", type=float, default=1800.0, help="most seconds of wall time per run")
    p.add_argument("--hidden", type=int, default=None, help="hidden units (default: each cell's memory_setup)")
    p.add_argument("--batch", type=int, default=None, help="sequences per step (default: each cell's memory_setup)")
    p.add_argument("--layers", type=int, default=None, help="layers per model (default: each cell's memory_setup)")
    p.add_argument("--order", choices=ORDERS, default="length",
                   help="order of the runs: by length (short first), by cell or task (in the order listed), "
                        "or as given")
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--eval-size", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=1, help="runs at once, one process each")
    p.add_argument("--table-only", action="store_true", help="print the table of the runs found and stop")
    p.add_argument("--speed", action="store_true", help="time one training step per cell instead")
    p.add_argument("--repeats", type=int, default=5, help="timed steps per cell with --speed")
    p.add_argument("--threads", type=int, default=1,
                   help="with --speed: threads of BLAS and of the compiled loops, whatever the load")
    a = p.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    cells = [c.strip() for c in a.cell.split(",") if c.strip()]
    lengths = [int(v) for v in a.length.split(",")]
    if a.speed:
        for T in lengths:
            load = os.getloadavg()[0]
            res = speed(cells, T, a.batch or 32, a.hidden or 64, a.repeats, a.threads)   # one size for every cell
            for c, s in res.items():
                print(f"T={T:<5} {c:12} {s * 1000:8.1f} ms/step")
            print(f"T={T:<5} {a.threads} thread(s), load {load:.1f} before, {os.getloadavg()[0]:.1f} after")
            from rnnkit.io import save_json
            save_json(out / f"speed_T{T}_threads{a.threads}.json",
                      {"length": T, "batch": a.batch or 32, "hidden": a.hidden or 64, "threads": a.threads,
                       "load_before": load, "seconds_per_step": res})
        return 0
    if not a.table_only:
        todo = jobs([t.strip() for t in a.task.split(",")], lengths, cells, extra=tuple(lengths) == LENGTHS,
                    order=a.order)
        args_dict = {"out": str(out), "steps": a.steps, "hidden": a.hidden, "batch": a.batch,
                     "eval_every": a.eval_every, "eval_size": a.eval_size, "seed": a.seed,
                     "layers": a.layers, "time_limit": a.time_limit}
        with ProcessPoolExecutor(max_workers=max(1, a.jobs)) as pool:
            for line in pool.map(run_one, todo, [args_dict] * len(todo)):
                print(line, flush=True)
    print(table(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
