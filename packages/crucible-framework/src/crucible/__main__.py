"""`python -m crucible`: the crucible command line."""

from __future__ import annotations

import sys

from crucible._cli import main

sys.exit(main())
