"""``python -m benchmarks``: the whole run (see ``benchmarks.run``)."""

import sys

from benchmarks.run import main

sys.exit(main())
