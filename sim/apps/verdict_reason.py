"""Why a simulated run is INVALID, in the user's terms, and what would make it VALID.

LoadGen's summary says which constraint failed and, for a Server latency failure, always
recommends "Reduce target QPS". That advice is right when the latency comes from queueing,
and useless when one sample alone, on the idle system, already takes longer than the bound.
``explain`` tells the cases apart from three figures of the run's own system and cost model:

- ``floor_ns``: the latency of one sample through the idle system (one simulated query);
- ``capacity_qps``: the samples per second of the system kept full (a short Offline run);
- the run's bound, target QPS and measured percentile.

and returns one of these kinds (``Reason.kind``):

- ``sample_over_bound``: ``floor_ns`` > bound: no load is VALID on this system; the catalog
  devices whose calibrated batch-1 time for the workload is under the bound are named
  (``sim.hw.whatif``), since that is necessary for any VALID Server run on them;
- ``over_capacity``: target QPS > capacity: the queue grows without end; reduce the target
  below the capacity or add devices (LoadGen's advice, with the figure);
- ``queueing``: the system keeps up on average but its tail is over the bound: LoadGen's
  advice (reduce the target QPS) is right;
- ``too_short``: the run missed the minimum duration or query count (LoadGen's advice);
- ``early_stopping``: only the early-stopping estimate failed (too few queries to prove the
  percentile): a longer run, or a slightly lower load.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sim.loadgen.scenarios import SERVER
from sim.run import RunResult, offline_capacity_qps, unloaded_latency_ns
from sim.util import progress

#: devices named per kind in a ``sample_over_bound`` reason
MAX_NAMED_PER_KIND = 6


@dataclass
class Reason:
    kind: str                               # see the module docstring
    text: str                               # one paragraph for the user
    short: str = ""                         # one clause: the verdict line's
    figures: dict = field(default_factory=dict)
    devices: list = field(default_factory=list)   # (device, batch-1 ms) meeting the bound, fastest first


def _ms(ns: float) -> str:
    return f"{ns / 1e6:.3g} ms"


def catalog_devices_meeting(workload: str, bound_ns: float) -> tuple[list[tuple[str, str, float]], str]:
    """Catalog devices whose calibrated batch-1 time for ``workload`` is under ``bound_ns``:
    [(device, kind, ms)] fastest first, and a note ('' or why none could be predicted)."""
    from sim.hw import profiles, whatif  # noqa: PLC0415 - loads the calibration: only for an INVALID Server run

    if workload not in whatif.MODELS:
        return [], (f"the hardware model has no predictions for '{workload}' (it covers "
                    f"{', '.join(sorted(whatif.MODELS))})")
    out = []
    with progress.stage("looking up the catalog devices that would meet the bound (the calibrated hardware "
                        "model; fitted once, then cached)"):
        for name in profiles.names():
            try:
                e = whatif.engine(name, workload, "SingleStream", 1)
            except Exception:       # noqa: BLE001 - a device the model does not cover is simply not named
                continue
            t_ns = float(e.cost.service_time_ns(1))
            if t_ns < bound_ns:
                out.append((name, profiles.get(name).kind, t_ns / 1e6))
    out.sort(key=lambda x: x[2])
    return out, ""


def _name_devices(devices: list[tuple[str, str, float]]) -> str:
    by_kind: dict[str, list] = {}
    for name, kind, ms in devices:
        by_kind.setdefault(kind, []).append(f"{name} {ms:.2g} ms")
    parts = []
    for kind, names in by_kind.items():
        more = f" and {len(names) - MAX_NAMED_PER_KIND} more" if len(names) > MAX_NAMED_PER_KIND else ""
        parts.append(f"{kind}: {', '.join(names[:MAX_NAMED_PER_KIND])}{more}")
    return "; ".join(parts)


def classify(valid: bool, scenario: str, min_duration_met: bool, min_queries_met: bool,
             perf_constraints_met: bool | None, floor_ns: float | None, bound_ns: float,
             target_qps: float | None, capacity_qps: float | None) -> str | None:
    """The kind of reason (None: VALID), from the run's figures alone."""
    if valid:
        return None
    if scenario == SERVER and floor_ns is not None and bound_ns and floor_ns > bound_ns:
        return "sample_over_bound"
    if scenario == SERVER and target_qps and capacity_qps and target_qps > capacity_qps:
        return "over_capacity"
    if scenario == SERVER and perf_constraints_met is False:
        return "queueing"
    if not (min_duration_met and min_queries_met):
        return "too_short"
    return "early_stopping"


def explain(result: RunResult, cost, alternatives: bool = True) -> Reason | None:
    """The reason ``result`` is INVALID (None when VALID); ``cost``: the run's cost model."""
    m, s = result.metrics, result.settings
    if m.valid:
        return None
    server = result.scenario == SERVER
    bound_ns = float(s.target_latency_ns) if server else 0.0
    floor_ns = float(unloaded_latency_ns(result.system, cost, 1, result.seed)) if server else None
    target_qps = float(s.server_target_qps) if server else None
    capacity = offline_capacity_qps(result.system, cost, result.seed) if server else None
    kind = classify(m.valid, result.scenario, m.min_duration_met, m.min_queries_met, m.perf_constraints_met,
                    floor_ns, bound_ns, target_qps, capacity)
    figures = {"floor_ns": floor_ns, "bound_ns": bound_ns, "target_qps": target_qps, "capacity_qps": capacity}
    if kind == "sample_over_bound":
        text = (f"one sample alone takes {_ms(floor_ns)} on this system (idle, batch 1), above the "
                f"{_ms(bound_ns)} latency bound: no target QPS is VALID here, so LoadGen's \"Reduce target QPS\" "
                f"cannot help; a faster device can.")
        devices: list = []
        if alternatives:
            devices, why = catalog_devices_meeting(result.workload, bound_ns)
            if why:
                text += f" No catalog devices to suggest: {why}."
            elif devices:
                text += (f" Catalog devices whose predicted batch-1 time for {result.workload} is under the bound "
                         f"(necessary for a VALID Server run; `python -m sim plan` sizes the count): "
                         f"{_name_devices(devices)}.")
            else:
                text += " No catalog device is predicted under the bound at batch 1."
        return Reason(kind, text, figures=figures, devices=devices,
                      short=f"one sample takes {_ms(floor_ns)} on this system, above the {_ms(bound_ns)} bound")
    if kind == "over_capacity":
        text = (f"the target {target_qps:,.4g} QPS is above this system's capacity of about {capacity:,.4g} "
                f"samples/s (a full system, {_ms(floor_ns)} a sample when idle): the queue grows without end. "
                f"Reduce the target QPS below {capacity:,.4g} or add devices or instances "
                f"(`python -m sim search` finds the peak, `python -m sim plan` the count).")
    elif kind == "queueing":
        p_ns = m.sample_latency.percentiles_ns.get(f"{m.target_percentile * 100:.2f}")
        text = (f"the {m.target_percentile * 100:g}th percentile latency {_ms(p_ns)}" if p_ns is not None
                else "the tail latency")
        text += (f" is above the {_ms(bound_ns)} bound at {target_qps:,.4g} QPS, {100 * target_qps / capacity:.0f}% "
                 f"of the capacity of about {capacity:,.4g} samples/s, while one sample alone takes "
                 f"{_ms(floor_ns)}: queueing. LoadGen's advice holds: reduce the target QPS "
                 f"(`python -m sim search` finds the highest VALID one).")
    elif kind == "too_short":
        text = ("the run is shorter than LoadGen's minimum duration or query count: "
                + " ".join(m.recommendations or ["lengthen the run (--min-duration-ms, --min-query-count)."]))
    else:
        text = ("the early-stopping estimate failed: too few queries to show the percentile meets the bound; "
                "a longer run or a slightly lower load makes it VALID.")
    short = {"over_capacity": f"target {target_qps:,.4g} QPS above the capacity of about {capacity:,.4g} samples/s"
             if kind == "over_capacity" else "",
             "queueing": "queueing: the tail latency is over the bound", "too_short": "the run is too short",
             "early_stopping": "early stopping failed"}[kind]
    return Reason(kind, text, figures=figures, short=short)
