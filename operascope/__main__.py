"""``python -m operascope``: the command line (same as the ``operascope`` console script)."""

from __future__ import annotations

import sys

from operascope.acquisition.cli import main

if __name__ == "__main__":
    sys.exit(main())
