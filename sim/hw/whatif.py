"""One device of ``hw_profiles/`` as a simulator cost model, for what-if questions.

``engine(device, workload, scenario, count)`` gives the calibrated cost of one execution
engine (a chip: a GPU, a card's SoC, a CPU socket) of ``count`` such devices in a node,
as a submission of the current round would run it (``sim.apps.compare.ROUND``, with the chip's
latest published software), plus the case and parameters it came from. ``sim.apps.compare``,
``sim.apps.plan`` and sweeps (``device: <profile name>``) all build their costs here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sim.errors import InputError


@dataclass(frozen=True)
class Engine:
    cost: object                 # sim.hw.analytic.AnalyticCost of one engine
    case: object                 # sim.hw.rows.Case the cost was built for
    setup: object                # sim.hw.system_model.Setup
    params: object               # sim.hw.system_model.Params
    engines_per_device: int
    source: str                  # where the parameters come from
    version: str                 # the round whose software is assumed


def row(prof, count: int, model: str, scenario: str, version: str, bound_ns: float | None = None) -> dict:
    """A results-file row (input columns only) describing ``count`` x ``prof`` in ``scenario``."""
    from sim.apps import compare
    _, metric, units, _ = next(x for x in compare.SCENARIOS if x[0] == scenario)
    r = compare._row(prof, count, model, scenario, metric, units, version)
    if scenario == "Server" and bound_ns:
        r["target_latency_ns"] = str(int(bound_ns))
    return r


def engine(device: str, workload: str, scenario: str, count: int = 1, calib=None,
           bound_ns: float | None = None) -> Engine:
    """The calibrated cost of one engine of ``count`` x ``device`` running ``workload``."""
    from sim.apps import compare
    from sim.hw import profiles, published
    from sim.hw import system_model as sm
    from sim.hw.rows import read_case

    if workload not in compare.MODELS:
        raise InputError(f"workload {workload!r}: the hardware model covers {sorted(compare.MODELS)}")
    if device not in set(profiles.names()):
        raise InputError(f"device {device!r}: unknown; expected one of {sorted(profiles.names())}")
    calib = calib or published.calibration_from()
    prof = profiles.get(device)
    version = compare.software_round(prof, calib)
    case = read_case(row(prof, count, compare.MODELS[workload], scenario, version, bound_ns), 0)
    if not case.ok:
        raise InputError(f"device {device!r}, workload {workload!r}, {scenario}: unsupported ({case.unsupported})")
    p, src = calib.params_for(case)
    corr, _ = calib.correction(case)
    s = sm.setup(case)
    c = sm.cost(case, s, p, overlap_link=scenario in ("Offline", "Server"))
    # the residual correction divides a prediction by exp(corr): a throughput through
    # service times longer by exp(corr), a latency through service times shorter by it
    sign = -1.0 if scenario in ("SingleStream", "MultiStream") else 1.0
    c = c.with_scale(c.scale / sm.scaling(s, p) * math.exp(sign * corr))
    if version != compare.ROUND:
        src += f"; software as of {version}, its latest published round"
    return Engine(c, case, s, p, prof.chips_per_device, src, version)
