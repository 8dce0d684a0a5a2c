"""``python -m rnnkit.bench``: the same as ``rnnkit bench``."""

import sys

from rnnkit.bench.run import main

sys.exit(main())
