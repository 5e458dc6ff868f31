"""One device of ``hw_profiles/`` as a simulator cost model, for what-if questions.

``engine(device, workload, scenario, count)`` gives the calibrated cost of one execution
engine (a chip: a GPU, a card's SoC, a CPU socket) of ``count`` such devices in a node,
as a submission of the current round would run it (``ROUND``, with the chip's
latest published software), plus the case and parameters it came from. ``sim.apps.compare``,
``sim.apps.plan`` and sweeps (``device: <profile name>``) all build their costs here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sim.cost import resolve
from sim.errors import InputError
from sim.hw import profiles, published
from sim.hw import system_model as sm
from sim.hw.rows import ROUND_YEAR, read_case, unit_of
from sim.hw.summaries import MLPERF_WORKLOADS
from sim.loadgen.scenarios import CLOSED_LOOP, SERVER, THROUGHPUT
from sim.loadgen.settings import load_settings

#: the round whose rules a what-if follows
ROUND = "v5.1"
#: built-in workload -> the results name a what-if row of it carries (its first in ``MLPERF_WORKLOADS``)
MODELS: dict[str, str] = {}
for _model, _workload in MLPERF_WORKLOADS.items():
    MODELS.setdefault(_workload, _model)
#: each results name's Server latency bound, from LoadGen's mlperf.conf (ssd-resnet34's from its last round)
SERVER_BOUND_NS: dict[str, int] = {
    model: load_settings(model, SERVER, defaults="6.0+legacy").target_latency_ns for model in MODELS.values()}
SCENARIOS = (("Offline", "Samples per second", "samples/s", "offline_samples_per_s"),
             ("Server", "Scheduled samples per second", "samples/s", "server_samples_per_s"),
             ("SingleStream", "90th percentile latency (ns)", "ns", "singlestream_p90_ns"),
             ("MultiStream", "99th percentile latency (ns)", "ns", "multistream_p99_ns"))


def software_round(prof, calib) -> str:
    """The round whose software a prediction assumes: the current round, or the last round
    with published results of the device's chip when that is older. The fitted software
    trend is not extrapolated past a chip's last results: a product that stopped
    submitting (e.g. Habana Goya, last seen in v0.5) shows no later software gains."""
    f = calib.units.get(unit_of_profile(prof))
    if f is None or not f.fitted or not f.row_keys:
        return ROUND
    last = max(k[6] for k in f.row_keys)
    if last >= ROUND_YEAR[ROUND]:
        return ROUND
    return min((v for v, y in ROUND_YEAR.items() if y >= last and not v.startswith("mobile")),
               key=lambda v: ROUND_YEAR[v])


def what_if_row(prof, count: int, model: str, scenario: str, metric: str, units: str, version: str = ROUND) -> dict:
    return {"version": version, "division": "closed", "submitter": "what-if", "system": f"{count}x {prof.name}",
            "accelerator": prof.name, "accelerator_kind": prof.kind,
            "accelerators_per_node": str(count) if prof.kind != "cpu" else "0",
            "host_processors_per_node": str(count) if prof.kind == "cpu" else "",
            "number_of_nodes": "1", "framework": prof.software, "host_cpu": "", "model": model, "scenario": scenario,
            "metric": metric, "units": units, "power_measured": "no",
            "target_latency_ns": str(SERVER_BOUND_NS[model]) if scenario == "Server" else "0"}


def unit_of_profile(prof) -> str | None:
    """The calibration unit a what-if row of ``prof`` is predicted by (None: unsupported)."""
    case = read_case(what_if_row(prof, 1, "resnet50", "Offline", SCENARIOS[0][1], SCENARIOS[0][2]), 0)
    return unit_of(case) if case.ok else None


@dataclass(frozen=True)
class DeviceEngine:
    cost: object                 # sim.hw.analytic.AnalyticCost of one engine
    case: object                 # sim.hw.rows.Case the cost was built for
    setup: object                # sim.hw.system_model.Setup
    params: object               # sim.hw.system_model.Params
    engines_per_device: int
    source: str                  # where the parameters come from
    version: str                 # the round whose software is assumed


def row(prof, count: int, model: str, scenario: str, version: str, bound_ns: float | None = None) -> dict:
    """A results-file row (input columns only) describing ``count`` x ``prof`` in ``scenario``."""
    _, metric, units, _ = next(x for x in SCENARIOS if x[0] == scenario)
    r = what_if_row(prof, count, model, scenario, metric, units, version)
    if scenario == "Server" and bound_ns:
        r["target_latency_ns"] = str(int(bound_ns))
    return r


def default_calibration():
    """The calibration on the shared published results, fitted (or loaded) once per process."""
    return resolve.cached("hw-calibration", published.calibration_from)


def engine(device: str, workload: str, scenario: str, count: int = 1, calib=None,
           bound_ns: float | None = None) -> DeviceEngine:
    """The calibrated cost of one engine of ``count`` x ``device`` running ``workload``
    (built once per process and calibration, ``sim.cost.resolve.cached``)."""
    calib = calib or default_calibration()
    resolve.cached(("hw-calibration-held", id(calib)), lambda: calib)   # its id stays its own while cached
    key = ("hw-engine", device, workload, scenario, count, bound_ns, id(calib))
    return resolve.cached(key, lambda: _build(device, workload, scenario, count, calib, bound_ns))


def _build(device: str, workload: str, scenario: str, count: int, calib, bound_ns: float | None) -> DeviceEngine:
    if workload not in MODELS:
        raise InputError(f"workload {workload!r}: the hardware model covers {sorted(MODELS)}")
    if device not in set(profiles.names()):
        raise InputError(f"device {device!r}: unknown; expected one of {sorted(profiles.names())}")
    prof = profiles.get(device)
    version = software_round(prof, calib)
    case = read_case(row(prof, count, MODELS[workload], scenario, version, bound_ns), 0)
    if not case.ok:
        raise InputError(f"device {device!r}, workload {workload!r}, {scenario}: unsupported ({case.unsupported})")
    p, src = calib.params_for(case)
    corr, _ = calib.correction(case)
    s = sm.setup(case)
    c = sm.cost(case, s, p, overlap_link=scenario in THROUGHPUT)
    # the residual correction divides a prediction by exp(corr): a throughput through
    # service times longer by exp(corr), a latency through service times shorter by it
    sign = -1.0 if scenario in CLOSED_LOOP else 1.0
    c = c.with_scale(c.scale / sm.scaling(s, p) * math.exp(sign * corr))
    if version != ROUND:
        src += f"; software as of {version}, its latest published round"
    return DeviceEngine(c, case, s, p, prof.chips_per_device, src, version)
