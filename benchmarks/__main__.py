"""`python -m benchmarks`: run the figures and print them (see benchmarks.cli)."""
from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
