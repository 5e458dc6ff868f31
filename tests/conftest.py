"""Test session set-up: built models and profiles go to a temporary cache, never ~/.cache.

The cache lives for one test session and is removed at its end (built BERT-large alone is
1.3 GB).
"""

import atexit
import os
import shutil
import tempfile

if "SIM_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="sim-test-cache-")
    os.environ["SIM_CACHE_DIR"] = _cache
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
