"""Where the project's files are: the repository root and the data folders beside the package.

Every module that needs a path outside ``sim/`` takes it from here, so moving a module never
changes what it reads.
"""

from __future__ import annotations

from pathlib import Path

#: the checkout holding ``sim/``, ``workloads/`` and ``hw_profiles/``
REPO_ROOT = Path(__file__).resolve().parent.parent
#: the shared data folder that sits beside the checkout (published MLPerf results)
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
