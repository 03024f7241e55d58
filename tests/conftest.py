"""The tests mirror the package's wings (``tests/<wing>/test_*.py``); the builders they share stay in one
place, ``tests/`` itself (``builders.py``, ``ingest_synth.py``, ``cdp.py``), importable from every wing's
folder."""

import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
