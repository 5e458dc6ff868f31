"""Test session set-up: built models and profiles go to a temporary cache, never ~/.cache."""

import os
import tempfile

os.environ.setdefault("SIM_CACHE_DIR", tempfile.mkdtemp(prefix="sim-test-cache-"))
