"""The name ``sim.system`` kept for notebooks and scripts written before the layout of
``docs/architecture.md``: the system description lives in ``sim.sut.system``, synthetic
costs from a description in ``sim.cost.resolve``."""

from sim.cost.resolve import synthetic as cost_from_spec  # noqa: F401
from sim.sut.system import *  # noqa: F401,F403
from sim.sut.system import SystemSpec, load_system, parse_system  # noqa: F401
