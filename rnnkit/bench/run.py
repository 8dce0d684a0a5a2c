"""``rnnkit bench``'s coordinator: options, the workers, the interleaved rounds, the report."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict

import numpy as np

from rnnkit.bench.peers import (ALL_PEERS, CELLS, DEFAULT_PEERS, MODES, QUICK_SHAPES, RUNNERS,
                                SHAPES, TARGET_PEERS)
from rnnkit.bench.tables import (format_int8, format_summary, format_table, summarise_int8,
                                 summarise_targets, _summarise)
from rnnkit.bench.worker import _CLOCKS, Worker, compare

DESCRIPTION = "Benchmark rnnkit's recurrent layers against PyTorch, JAX and ONNX Runtime on the CPU."
BUSY = "while True: pass"              # one --load process: a thread that never sleeps


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rnnkit bench", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="tiny shapes, one round: a smoke test that runs in seconds")
    p.add_argument("--json", metavar="PATH", help="also write every number to this JSON file")
    p.add_argument("--cells", default=",".join(CELLS), help="comma-separated: lstm,gru,rnn")
    p.add_argument("--shapes", default=None,
                   help=f"comma-separated shape names (default all: "
                        f"{','.join(s.name for s in SHAPES)})")
    p.add_argument("--modes", default=",".join(MODES), help="comma-separated: fwd,fwdbwd")
    p.add_argument("--peers", default=",".join(DEFAULT_PEERS),
                   help=f"comma-separated, from {','.join(ALL_PEERS)} (default "
                        f"{','.join(DEFAULT_PEERS)}); one that does not import is skipped")
    p.add_argument("--rounds", type=int, default=None,
                   help="interleaved timing rounds (default 5, or 1 with --quick)")
    p.add_argument("--target", type=float, default=None,
                   help="seconds each timing call should last (default 0.2, or 0.005 with --quick)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads of every peer: BLAS/OpenMP, torch.set_num_threads, ONNX Runtime's "
                        "intra-op threads, XLA's CPU pool (default: the libraries' own; 1 with --quick)")
    p.add_argument("--clock", choices=sorted(_CLOCKS), default="wall",
                   help="wall: elapsed time (default); cpu: the worker's CPU time, steadier on a "
                        "busy machine but only comparable with --threads 1")
    p.add_argument("--tol", type=float, default=1e-3,
                   help="largest relative difference from the reference peer that passes")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and inputs")
    p.add_argument("--load", type=int, default=0, metavar="N",
                   help="run N busy processes (one spinning thread each) beside the benchmark, "
                        "to show its behaviour on a shared machine")
    return p


def _split(value: str, allowed, what: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in items if v not in allowed]
    if bad or not items:
        raise ValueError(f"bench: {what} must be a comma-separated list from "
                         f"{', '.join(allowed)}; got {value!r}")
    return items


def main(argv=None) -> int:
    """Run the benchmark; return 0, or 1 when a peer's outputs disagree with the reference."""
    args = build_parser().parse_args(argv)
    shapes_all = QUICK_SHAPES if args.quick else SHAPES
    names = [s.name for s in shapes_all]
    shapes = [s for s in shapes_all if s.name in _split(args.shapes or ",".join(names), names, "--shapes")]
    cells = _split(args.cells, CELLS, "--cells")
    modes = _split(args.modes, MODES, "--modes")
    peers = _split(args.peers, ALL_PEERS, "--peers")
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 5)
    target = args.target if args.target is not None else (0.005 if args.quick else 0.2)
    if rounds < 1 or target <= 0:
        raise ValueError(f"bench: --rounds must be >= 1 and --target > 0, got {rounds} and {target}")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"bench: --threads must be >= 1 (leave it out for the libraries' own), "
                         f"got {args.threads}")
    if args.load < 0:
        raise ValueError(f"bench: --load must be >= 0 (busy processes beside the benchmark), "
                         f"got {args.load}")

    # one thread in quick mode: a smoke test must not stall on threads that spin
    # while a busy machine has descheduled their partner
    threads = args.threads if args.threads is not None else (1 if args.quick else None)
    started = time.time()
    load = [subprocess.Popen([sys.executable, "-c", BUSY], stdin=subprocess.DEVNULL)
            for _ in range(args.load)]
    workers = {}
    try:
        workers.update((p, Worker(p, threads)) for p in peers)   # they import their libraries at once
        for w in workers.values():
            w.wait_ready()
        return _run(args, workers, cells, shapes, modes, rounds, target, threads, started)
    finally:
        for w in workers.values():
            w.close()
        for proc in load:
            proc.kill()
            proc.wait()


def _first_exact(peers: list):
    """The first of ``peers`` whose outputs are exact (a peer with a loose ``TOL``, int8,
    cannot be the yardstick of float peers), else the first, else None."""
    exact = [p for p in peers if getattr(RUNNERS[p], "TOL", None) is None]
    return (exact or peers or [None])[0]


def _run(args, workers, cells, shapes, modes, rounds, target, threads, started) -> int:
    live = [p for p, w in workers.items() if w.ok]
    skipped = {p: w.error for p, w in workers.items() if not w.ok}
    # torch, else the first peer whose outputs are exact, else the first
    ref_peer = "torch" if "torch" in live else _first_exact(live)
    for p in live:
        workers[p].ask(op="clock", clock=args.clock)
    n_peak = 256 if args.quick else 2048
    peaks = {p: workers[p].ask(op="peak", n=n_peak)["gflops"] for p in live}
    peak = max(peaks.values()) if peaks else float("nan")

    cases = []
    for cell in cells:
        for s in shapes:
            for mode in modes:
                if s.calls and mode == "fwdbwd":
                    continue               # generation is inference only
                cases.append({"cell": cell, "shape": s, "mode": "gen" if s.calls else mode})
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, case in enumerate(cases):
            case["key"] = key = f"{case['cell']}-{case['shape'].name}"
            case["peers"] = {}
            runs = [p for p in live if case["mode"] in RUNNERS[p].modes]
            # the overall reference, else the first exact peer that runs this mode, else the first
            case["reference"] = ref = ref_peer if ref_peer in runs else _first_exact(runs)
            for p in live:
                if i == 0 or cases[i - 1]["key"] != key:
                    workers[p].ask(op="setup", key=key, cell=case["cell"],
                                   shape=asdict(case["shape"]), seed=args.seed)
                if p in runs:
                    path = os.path.join(tmp, f"{p}.npz")
                    workers[p].ask(op="check", key=key, mode=case["mode"], path=path)
            ref_out = _load(os.path.join(tmp, f"{ref}.npz")) if ref else None
            for p in live:
                if p not in runs:
                    case["peers"][p] = {"applicable": False,
                                        "why": f"{p} runs {', '.join(RUNNERS[p].modes)} only"}
                    continue
                err = compare(_load(os.path.join(tmp, f"{p}.npz")), ref_out)
                loose = getattr(RUNNERS[p], "TOL", None)      # rnnkit-int8: the weights' rounding
                ok = err <= (args.tol if loose is None else max(args.tol, loose))
                entry = {"applicable": True, "max_rel_err": err, "check_ok": ok, "times": []}
                if not ok:
                    failed.append(f"{case['cell']} {case['shape'].name} {case['mode']}: {p} "
                                  f"differs from {ref} by {err:.2e}")
                else:
                    w = workers[p].ask(op="warmup", key=key, mode=case["mode"])
                    entry["reps"] = max(1, min(200, int(target / max(w["seconds"], 1e-9))))
                    m = workers[p].ask(op="memory", key=key, mode=case["mode"])
                    entry["mem_mb"], entry["mem_how"] = m["mb"], m["how"]
                case["peers"][p] = entry

        for r in range(rounds):
            for case in cases:
                order = [p for p in live if case["peers"][p].get("check_ok")]
                order = order[r % len(order):] + order[:r % len(order)] if order else order
                for p in order:
                    e = case["peers"][p]
                    e["times"] += workers[p].ask(op="time", key=case["key"], mode=case["mode"],
                                                 reps=e["reps"])["times"]

    results = [_summarise(c, peak) for c in cases]
    report = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "python": platform.python_version(), "cpus": os.cpu_count(),
                    "threads": threads, "gemm_peak_gflops": peak, "gemm_peak_by_peer": peaks,
                    "workers": {p: workers[p].info for p in live}},
        "config": {"quick": args.quick, "rounds": rounds, "target_s": target, "seed": args.seed,
                   "reference": ref_peer, "tol": args.tol, "clock": args.clock, "dtype": "float32",
                   "load": args.load,
                   "target_peers": TARGET_PEERS},
        "skipped": skipped,
        "failed_checks": failed,
        "results": results,
        "summary": summarise_targets(results),
        "int8": summarise_int8(results),
        "seconds": time.time() - started,
    }
    print(format_table(report))
    print()
    print(format_summary(report["summary"]))
    if report["int8"]:
        print()
        print(format_int8(report["int8"]))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=1)
    return 1 if failed else 0


def _load(path: str) -> dict:
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}
