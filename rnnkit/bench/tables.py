"""The tables of ``rnnkit bench``: each case's medians, ratios and best target peer, the
long table and the summary (see :mod:`rnnkit.bench`)."""

from __future__ import annotations

import statistics

from rnnkit.bench.peers import SHORT_NAMES, TARGET_PEERS, matmul_flops

def _summarise(case, peak) -> dict:
    """One case's numbers per peer, its best target peer and the ratios of medians to torch,
    jax and that peer (see the module docstring)."""
    s = case["shape"]
    mode = case["mode"]
    flops = matmul_flops(case["cell"], s, "fwdbwd" if mode == "fwdbwd" else "fwd")
    out = {"cell": case["cell"], "shape": s.name, "mode": mode,
           "dims": {"T": s.T, "B": s.B, "I": s.I, "H": s.H, "layers": s.layers, "calls": s.calls},
           "gflop": flops / 1e9, "reference": case["reference"], "peers": {}, "ratios": {},
           "best_peer": None}
    for p, e in case["peers"].items():
        if not e["applicable"]:
            out["peers"][p] = dict(e)
            continue
        d = {"applicable": True, "max_rel_err": e["max_rel_err"], "check_ok": e["check_ok"]}
        if e["times"]:
            med, best = statistics.median(e["times"]), min(e["times"])
            d.update(median_ms=med * 1e3, min_ms=best * 1e3, n=len(e["times"]),
                     gflops=flops / med / 1e9, pct_peak=100.0 * flops / med / 1e9 / peak,
                     mem_mb=e["mem_mb"], mem_how=e["mem_how"])
        out["peers"][p] = d
    ms = {p: d["median_ms"] for p, d in out["peers"].items() if "median_ms" in d}
    targets = [p for p in TARGET_PEERS[mode] if p in ms]
    best_peer = min(targets, key=ms.get) if targets else None
    out["best_peer"] = best_peer
    for p, t in ms.items():
        for other, name in (("torch", "torch"), ("jax", "jax"), (best_peer, "best")):
            if other in ms and p != other:
                out["ratios"][f"{p}/{name}"] = t / ms[other]
    return out


def summarise_targets(results, peers=("rnnkit", "rnnkit.fast", "rnnkit-numpy")) -> dict:
    """rnnkit's ratio to the best target peer: one row per cell, one column per shape and mode.

    The row peer is the first of ``peers`` with a ratio to the best peer in any case
    (rnnkit, the public layer, when it ran). Returns {"peer", "columns", "rows"} with
    rows[cell][column] = {"ratio", "best_peer"}, column "<shape> <mode>" ("gen" for gen).
    """
    peer = next((p for p in peers if any(f"{p}/best" in r["ratios"] for r in results)), None)
    columns, rows = [], {}
    for r in results:
        col = "gen" if r["mode"] == "gen" else f"{r['shape']} {r['mode']}"
        if col not in columns:
            columns.append(col)
        row = rows.setdefault(r["cell"], {})
        if peer and f"{peer}/best" in r["ratios"]:
            row[col] = {"ratio": r["ratios"][f"{peer}/best"], "best_peer": r["best_peer"]}
    return {"peer": peer, "columns": columns, "rows": rows}


def summarise_int8(results, peer: str = "rnnkit-int8", against: str = "onnxruntime") -> dict:
    """``peer``'s median over ``against``'s (float32) in every case both ran:
    {"<cell> <shape> <mode>": {"int8_ms", "float_ms", "ratio"}} (< 0.5: int8 at least 2x faster)."""
    out = {}
    for r in results:
        a, b = r["peers"].get(peer, {}), r["peers"].get(against, {})
        if "median_ms" in a and "median_ms" in b:
            out[f"{r['cell']} {r['shape']} {r['mode']}"] = {
                "int8_ms": a["median_ms"], "float_ms": b["median_ms"],
                "ratio": a["median_ms"] / b["median_ms"]}
    return out


def format_int8(int8: dict) -> str:
    """:func:`summarise_int8` as lines: rnnkit with int8 weights against ONNX Runtime's float32."""
    lines = ["int8: rnnkit-int8 median / onnxruntime's (float32 weights); < 0.5: at least 2x faster"]
    lines += [f"  {case:22} {v['int8_ms']:9.3f} ms / {v['float_ms']:9.3f} ms = {v['ratio']:.2f}"
              for case, v in int8.items()]
    return "\n".join(lines)


def _ratio_text(v) -> str:
    """``0.83 ort`` from {"ratio": 0.83, "best_peer": "onnxruntime"}; "-" for None."""
    if v is None:
        return "-"
    return f"{v['ratio']:.2f} {SHORT_NAMES.get(v['best_peer'], v['best_peer'])}"


def format_summary(summary) -> str:
    """The summary as a table that fits a screen: ``0.83 ort`` = 0.83 × the time of ONNX Runtime."""
    if summary["peer"] is None:
        return "summary: no rnnkit peer was timed against a target peer (torch, jax, onnxruntime)"
    cols = summary["columns"]
    heads = [c.replace(" fwdbwd", " f+b") for c in cols]
    rows = {cell: [_ratio_text(row.get(c)) for c in cols] for cell, row in summary["rows"].items()}
    width = [max([len(h)] + [len(texts[j]) for texts in rows.values()]) for j, h in enumerate(heads)]
    lines = [(f"summary: {summary['peer']} median / the fastest target peer's (torch, jax for "
              f"fwdbwd; torch, ort for fwd, gen); < 1: rnnkit is faster"),
             f"{'cell':5}  " + "  ".join(f"{h:>{w}}" for h, w in zip(heads, width))]
    lines.append("-" * len(lines[-1]))
    for cell, texts in rows.items():
        lines.append(f"{cell:5}  " + "  ".join(f"{t:>{w}}" for t, w in zip(texts, width)))
    return "\n".join(lines)


def format_table(report) -> str:
    """The results as a fixed-width table, one row per cell, shape, mode and peer."""
    m = report["machine"]
    c = report["config"]
    lines = [f"rnnkit bench: {m['cpus']} CPUs, threads {m['threads'] or 'default'}, "
             f"{c['clock']} clock, GEMM peak {m['gemm_peak_gflops']:.1f} GFLOP/s (float32 "
             f"matmul), reference for checks: {c['reference']}"]
    for p, why in report["skipped"].items():
        lines.append(f"  skipped {p}: {why}")
    head = (f"{'cell':5} {'shape':7} {'mode':6} {'peer':12} {'median ms':>10} {'min ms':>10} "
            f"{'vs torch':>8} {'vs best':>7} {'GFLOP/s':>8} {'%peak':>6} {'mem MB':>8} {'max err':>8}")
    lines += [head, "-" * len(head)]
    for r in report["results"]:
        for p, d in r["peers"].items():
            row = f"{r['cell']:5} {r['shape']:7} {r['mode']:6} {p:12}"
            if not d["applicable"]:
                lines.append(f"{row} {'n/a':>10}  ({d['why']})")
            elif "median_ms" in d:
                ratio = r["ratios"].get(f"{p}/torch")
                vs_best = "best" if p == r["best_peer"] else r["ratios"].get(f"{p}/best")
                vs_best = f"{vs_best:.2f}" if isinstance(vs_best, float) else vs_best or ""
                mem = f"{d['mem_mb']:.2f}" + ("r" if d["mem_how"] == "maxrss" else "")
                lines.append(
                    f"{row} {d['median_ms']:10.3f} {d['min_ms']:10.3f} "
                    f"{'' if ratio is None else f'{ratio:.2f}':>8} {vs_best:>7} "
                    f"{d['gflops']:8.2f} {d['pct_peak']:6.1f} {mem:>8} {d['max_rel_err']:8.1e}")
            else:
                lines.append(f"{row} {'CHECK FAILED':>10} err {d['max_rel_err']:.2e} "
                             f"vs {r['reference']}")
    lines.append("vs torch: median time / torch's median (< 1: faster than torch). vs best: median / "
                 "the fastest target peer's,\n'best' marks it (torch, jax for fwdbwd; torch, "
                 "onnxruntime for fwd, gen). mem: tracemalloc peak of one run;\n'r': the worker's "
                 "max RSS (torch, jax, onnxruntime), its libraries included.")
    for f in report["failed_checks"]:
        lines.append(f"FAILED: {f}")
    lines.append(f"({report['seconds']:.0f} s)")
    return "\n".join(lines)
