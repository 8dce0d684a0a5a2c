"""Benchmark rnnkit against torch.nn on the CPU; see the rnnkit.bench package (also ``rnnkit bench``).

    python benchmarks/bench.py [--quick] [--json out.json]
"""

import sys

import numpy  # noqa: F401  (first, as users' scripts import it: rnnkit must not need to come first)

from rnnkit.bench import main

if __name__ == "__main__":
    sys.exit(main())
