"""Benchmark rnnkit against torch.nn on the CPU; see rnnkit/bench.py (also ``rnnkit bench``).

    python benchmarks/bench.py [--quick] [--json out.json]
"""

import sys

from rnnkit.bench import main

if __name__ == "__main__":
    sys.exit(main())
