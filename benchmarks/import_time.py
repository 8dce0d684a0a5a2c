"""What ``import rnnkit`` costs, on top of NumPy's own import.

Each statement runs in a fresh interpreter (``python -c``), in interleaved rounds so
a busy machine slows every statement alike; the script prints the median and the
minimum wall time over the rounds, the median CPU time (user + system: less
disturbed by other processes), and each statement's medians minus those of
``import numpy`` (the goal: ``import numpy, rnnkit`` adds at most 40 ms).
``import rnnkit`` itself loads neither NumPy nor any task (PEP 562 lazy names);
the later rows show what the first use of a name costs.

    python benchmarks/import_time.py [--rounds 30] [--rnnkit-path DIR]

``--rnnkit-path`` puts a checkout first on ``sys.path`` (e.g. to compare branches);
the default is this checkout. Every statement runs in the same environment (rnnkit sets
no variables of its own), so the difference is the import's. ``python -X importtime -c "import rnnkit"`` shows the
modules one by one.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

STATEMENTS = [
    "pass",
    "import numpy",
    "import rnnkit",
    "import numpy, rnnkit",
    "import rnnkit; rnnkit.Recurrent",
    "import rnnkit; rnnkit.Trainer",
    "import rnnkit; rnnkit.CharLanguageModel",
    "import rnnkit; rnnkit.Forecaster",
]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30, help="interleaved rounds (default 30)")
    parser.add_argument("--rnnkit-path", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        help="directory holding the rnnkit package to time (default: this checkout)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds must be >= 1, got {args.rounds}")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [args.rnnkit_path,
                                                                     os.environ.get("PYTHONPATH")])))
    wall: dict[str, list[float]] = {s: [] for s in STATEMENTS}
    cpu: dict[str, list[float]] = {s: [] for s in STATEMENTS}
    for _ in range(args.rounds):
        for stmt in STATEMENTS:
            r0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
            # cwd "/": the interpreter puts the current directory first on sys.path
            subprocess.run([sys.executable, "-c", stmt], env=env, check=True, cwd=os.sep)
            t1, r1 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
            wall[stmt].append((t1 - t0) * 1e3)
            cpu[stmt].append((r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) * 1e3)
    base_wall, base_cpu = statistics.median(wall["import numpy"]), statistics.median(cpu["import numpy"])
    print(f"{'statement':42s} {'wall med':>9s} {'wall min':>9s} {'- numpy':>8s} {'cpu med':>8s} {'- numpy':>8s}")
    for stmt in STATEMENTS:
        w, c = statistics.median(wall[stmt]), statistics.median(cpu[stmt])
        print(f"{stmt:42s} {w:9.1f} {min(wall[stmt]):9.1f} {w - base_wall:+8.1f} {c:8.1f} {c - base_cpu:+8.1f}")
    print("milliseconds; '- numpy': the median minus that of `import numpy`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
