"""What runs here: versions, which recurrent loops (C or NumPy) and the BLAS behind NumPy.

:func:`info` gathers it as a dict (``rnnkit info --json`` prints that);
:func:`format_info` writes it for people (``rnnkit info``). The thread pools
come from threadpoolctl, which sees every BLAS and OpenMP library loaded in the
process: NumPy's BLAS, and the OpenMP runtime of the C loops once they load.
"""

from __future__ import annotations

import platform


def _version(module: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        return None


def info() -> dict:
    """Versions, the recurrent loops that run and the loaded thread pools.

    Returns:
        {"versions": {name: version}, "platform": str, "cpus": int,
         "loops": {"runs": "C" or "NumPy", "status": str, "isa": str, "isas": [str],
                   "openmp": int (the _OPENMP date, 0 without), "threads": int,
                   "compiled": [str] (the cells and variants the C loops run),
                   "numpy": [str] (what always runs the NumPy cells)},
         "pools": [threadpoolctl's record of each BLAS or OpenMP library]}
    """
    import os

    import numpy as np
    from threadpoolctl import threadpool_info

    import rnnkit
    from rnnkit import fast
    from rnnkit.cells.variants import compiled_summary

    ext = fast._ext
    runs_c = ext is not None and fast.enabled()
    loops = {"runs": "C" if runs_c else "NumPy", "status": fast.status(),
             "isa": fast.isa() if runs_c else "", "isas": list(ext.ISAS) if ext else [],
             "openmp": int(ext.OPENMP) if ext else 0, "threads": fast.max_threads() if runs_c else 1,
             "abi": int(ext.ABI_VERSION) if ext else 0, **compiled_summary()}
    versions = {"rnnkit": rnnkit.__version__, "python": platform.python_version(),
                "numpy": np.__version__}
    for name in ("threadpoolctl", "tqdm"):
        versions[name] = _version(name)
    pools = [{k: v for k, v in pool.items() if k in ("user_api", "internal_api", "version",
                                                    "num_threads", "threading_layer",
                                                    "architecture", "filepath", "prefix")}
             for pool in threadpool_info()]
    return {"versions": versions, "platform": f"{platform.system()} {platform.machine()}",
            "cpus": os.cpu_count() or 1, "loops": loops, "pools": pools}


def format_info(d: dict) -> str:
    """:func:`info`'s dict as lines for people."""
    v = d["versions"]
    lines = ["versions: " + ", ".join(f"{k} {v[k] or 'not installed'}" for k in v),
             f"machine: {d['platform']}, {d['cpus']} CPUs"]
    loops = d["loops"]
    if loops["runs"] == "C":
        openmp = (f"OpenMP {loops['openmp']}, up to {loops['threads']} threads" if loops["openmp"]
                  else "no OpenMP: 1 thread")
        lines.append(f"recurrent loops: C, {loops['isa']} (built: {', '.join(loops['isas'])}); {openmp}")
        lines.append(f"  compiled: {', '.join(loops['compiled'])}; NumPy: {', '.join(loops['numpy'])}")
    else:
        lines.append(f"recurrent loops: NumPy ({loops['status']})")
    blas = [p for p in d["pools"] if p["user_api"] == "blas"]
    if not blas:
        lines.append("BLAS: none found by threadpoolctl")
    for p in blas:
        extra = f", kernel {p['architecture']}" if p.get("architecture") else ""
        layer = f", {p['threading_layer']} threads" if p.get("threading_layer") else ""
        lines.append(f"BLAS: {p['internal_api']} {p.get('version') or ''}{extra}{layer}, "
                     f"{p['num_threads']} threads ({p['filepath']})")
    for p in d["pools"]:
        if p["user_api"] == "openmp":
            lines.append(f"OpenMP runtime: {p['internal_api']}, {p['num_threads']} threads "
                         f"({p['filepath']})")
    return "\n".join(lines)
