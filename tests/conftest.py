"""Shared test set-up: the cluster fixtures, and the helper modules beside this file.

Tests mirror the packages of ``harness/`` (``tests/core``, ``tests/platform/local`` ...);
the helpers they share (``groundtruth``, ``jsonserver``, ``reportdata``) live here.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

pytest_plugins = ["harness.run.testing"]
