"""``python -m agnt5``: the ``agnt5`` command line."""

from __future__ import annotations

import sys

from agnt5.cli import main

sys.exit(main())
