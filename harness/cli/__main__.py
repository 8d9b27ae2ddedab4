"""``python -m harness.cli``: the same as ``ha-bench``."""

import sys

from harness.cli import main

sys.exit(main())
