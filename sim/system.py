"""The name ``sim.system`` kept for notebooks and scripts written before the layout of
``docs/architecture.md``: the system description lives in ``sim.sut.system``."""

from sim.sut.system import *  # noqa: F401,F403
from sim.sut.system import SystemSpec, cost_from_spec, load_system, parse_system  # noqa: F401
