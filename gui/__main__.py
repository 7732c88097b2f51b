"""``python -m operascope.gui``: the microscope window."""

from __future__ import annotations

import sys

from operascope.gui.cli import main

if __name__ == "__main__":
    sys.exit(main())
