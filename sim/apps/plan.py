"""Capacity planning: the smallest system of each candidate device that meets a target.

    python -m sim plan --workload resnet50 --scenario Server --qps 20000 --latency-ms 15 \\
        --devices t4,l4,a100-sxm,h100-sxm --objective power

For every candidate, the planner looks for the fewest devices whose *simulated* MLPerf run
meets the target with the stated headroom, and ranks the candidates by the objective:

- Server: VALID (LoadGen's verdict: p99 within the latency bound, early stopping, run
  length) at ``qps * (1 + headroom)``; the latency bound is ``--latency-ms`` or the model's
  MLPerf bound.
- Offline: samples/s of the simulated Offline run at least ``qps * (1 + headroom)``.
- SingleStream: p90 latency at most ``latency_ms / (1 + headroom)``; MultiStream: p99
  latency of 8-sample queries at most ``latency_ms / (1 + headroom)``, the samples spread
  over the devices.

A *device* is a hardware profile (``hw_profiles/``, through the calibrated hardware model
of ``sim.hw``) or a system file whose accelerator count is varied (``CostDevice``). For a
count the planner tries a few batching settings (the hardware model's choice, half and
twice its batch); a count fails only when none meets the target. Search: from the count
the throughput alone asks for, down while the smaller system still meets the target, or up
(doubling, then bisection) until one does; so the answer comes with the next smaller
system's failed run. The verdict is assumed to improve with the count, as it does for
these systems (more devices, same traffic).

What binds is read from the runs: *latency* (one batch on an idle device already misses
the bound: no count helps), *memory* (the weights do not fit the device), *host issue*
(the single LoadGen issue thread's rate), *throughput* (the next smaller system's capacity
is below the target) or *queueing* (the next smaller system has the capacity but its tail
latency misses the bound). The sensitivity: the planned system run at +10 % load, and the
count that keeps the headroom there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from sim.apps.compare import check_devices
from sim.errors import InputError
from sim.hw import analytic, profiles, published, whatif
from sim.hw import system_model as sm
from sim.loadgen.scenarios import CLOSED_LOOP, THROUGHPUT, percentile_label
from sim.loadgen.settings import MODEL_ALIASES
from sim.run import offline_capacity_qps, simulate
from sim.sut.system import BatchingSpec, SystemSpec
from sim.util.bisect import bisect
from sim.util.checks import RANGES, number

SCENARIOS = (*THROUGHPUT, *CLOSED_LOOP)      # Server, Offline, SingleStream, MultiStream
OBJECTIVES = ("cost", "hourly", "power", "count")
MS_SAMPLES = 8
DEVICES_PER_NODE = 8      # node size for the per-node scaling loss of the hardware model


#: The margin a plan keeps: load x (1 + h) or latency / (1 + h), h in [0, 10).
HEADROOM = {"minimum": 0.0, "below": 10.0}


@dataclass(frozen=True)
class Target:
    scenario: str
    qps: float | None = None            # Server target QPS, Offline samples/s
    latency_ms: float | None = None     # Server bound; SingleStream p90 / MultiStream p99 limit
    headroom: float = 0.1
    min_duration_ms: int | None = None  # None: the model's mlperf.conf rules
    min_query_count: int | None = None

    def required_qps(self, load: float = 1.0) -> float:
        return float(self.qps) * load * (1.0 + self.headroom)

    def latency_limit_ns(self) -> float:
        return float(self.latency_ms) * 1e6 / (1.0 + self.headroom)

    def duration_overrides(self) -> dict:
        out = {}
        if self.min_duration_ms is not None:
            out["min_duration_ns"] = int(self.min_duration_ms) * 1_000_000
        if self.min_query_count is not None:
            out["min_query_count"] = int(self.min_query_count)
        return out


def check_target(t: Target) -> None:
    """Field-named errors for a target the planner cannot work with (the numbers checked as the
    command line checks its flags: ``sim.util.checks.RANGES``)."""
    if t.scenario not in SCENARIOS:
        raise InputError(f"--scenario {t.scenario!r}: expected one of {list(SCENARIOS)}")
    if t.scenario in THROUGHPUT and t.qps is None:
        raise InputError(f"--qps {t.qps!r}: a {t.scenario} plan needs a target rate > 0 (queries/s)")
    if t.scenario in CLOSED_LOOP and t.latency_ms is None:
        raise InputError(f"--latency-ms {t.latency_ms!r}: a {t.scenario} plan needs a latency limit > 0 ms")
    if t.qps is not None:
        number(t.qps, "--qps", **RANGES["qps"])
    if t.latency_ms is not None:
        number(t.latency_ms, "--latency-ms", **RANGES["latency_ms"])
    number(t.headroom, "--headroom", **HEADROOM)
    if t.min_duration_ms is not None:
        number(t.min_duration_ms, "--min-duration-ms", **{**RANGES["duration_ms"], "integer": True})
    if t.min_query_count is not None:
        number(t.min_query_count, "--min-query-count", **RANGES["count"])


@dataclass
class Candidate:
    """One simulated system: a count of devices and its settings, and how it did."""
    count: int
    ok: bool
    batching: str = ""
    value: float | None = None          # Server p99 ms, Offline samples/s, SS p90 ms, MS p99 ms
    utilisation: float | None = None    # devices' busy share over the run
    reason: str = ""                    # why it fails (binding constraint), or ""
    detail: str = ""
    valid: bool | None = None           # LoadGen's verdict of the simulated run
    qps: float | None = None


@dataclass
class DevicePlan:
    device: str
    kind: str
    status: str = "ok"                  # ok / impossible: ... / unsupported: ...
    chosen: Candidate | None = None
    smaller: Candidate | None = None    # the next smaller system's run (why it is not enough)
    best: Candidate | None = None       # the best system found when none meets the target
    binding: str = ""
    sensitivity: str = ""
    plus10: Candidate | None = None
    count_at_plus10: int | None = None
    price_usd: float | None = None
    usd_per_hour: float | None = None
    tdp_w: float | None = None
    precision: str = ""
    source: str = ""
    evaluated: int = 0
    over_budget: bool = False

    @property
    def count(self) -> int | None:
        return self.chosen.count if self.chosen else None

    def total(self, objective: str) -> float | None:
        if self.chosen is None:
            return None
        per = {"cost": self.price_usd, "hourly": self.usd_per_hour, "power": self.tdp_w, "count": 1.0}[objective]
        return None if per is None else per * self.chosen.count


# ---------------------------------------------------------------------------------------
# devices
# ---------------------------------------------------------------------------------------

class Infeasible(Exception):
    """No count of this device can meet the target (the message says which constraint)."""

    def __init__(self, binding: str, message: str):
        super().__init__(message)
        self.binding = binding


def _busy_share(run, servers: int) -> float | None:
    b = run.engine.batches
    if not b or not len(b.get("start_ns", ())):
        return None
    busy = float(np.sum(b["end_ns"] - b["start_ns"]))
    span = float(np.max(b["end_ns"]) - np.min(run.engine.query_scheduled_ns))
    return busy / (servers * span) if span > 0 else None


def _p(run, pct: str) -> float:
    return run.metrics.sample_latency.percentiles_ns[pct] / 1e6


class _Simulated:
    """What every device kind shares: simulated runs of a system built for a count."""

    name = ""
    kind = ""
    mlperf_model = ""
    price_usd = usd_per_hour = tdp_w = None
    precision = source = ""
    seed = 0

    # subclasses: system(count, variant) -> (SystemSpec, cost, note) or None; capacity(count); feasible()
    def variants(self) -> tuple:
        return (0,)

    def evaluate(self, count: int, target: Target, load: float = 1.0) -> Candidate:
        """The first batching variant whose run meets the target; else the default's failure."""
        first = None
        for v in self.variants():
            built = self.system(count, v, target)
            if built is None:
                continue
            c = self._run(count, built, target, load)
            if c.ok:
                return c
            first = first or c
        return first

    def _run(self, count: int, built, target: Target, load: float) -> Candidate:

        system, cost, extra = built
        sc = target.scenario
        over = target.duration_overrides()
        common = dict(workload=None, mlperf_model=self.mlperf_model, system=system, cost=cost, seed=self.seed)
        label = _batching_label(system)
        if sc == "Server":
            qps = target.required_qps(load)
            cap = extra.get("capacity_qps")
            if cap is not None and qps > cap:
                return Candidate(count, False, label, qps=qps, reason="throughput",
                                 detail=f"{qps:,.0f} QPS is above its sustained capacity {cap:,.0f} QPS "
                                        f"({extra.get('capacity_note', '')})")
            issue = extra.get("issue_limit_qps")
            if issue is not None and qps > issue:
                return Candidate(count, False, label, qps=qps, reason="host issue",
                                 detail=f"{qps:,.0f} QPS is above the host's issue rate {issue:,.0f} QPS")
            bound_ns = int(round(float(target.latency_ms) * 1e6))
            r = simulate("Server", **common, overrides={"server_target_qps": qps, "server_target_latency_ns": bound_ns,
                                                        **over})
            m = r.metrics
            p99 = _p(r, "99.00")
            util = _busy_share(r, system.servers)
            if m.valid:
                busy = f", devices {util:.0%} busy" if util is not None else ""
                return Candidate(count, True, label, p99, util, valid=True, qps=qps,
                                 detail=f"VALID at {qps:,.0f} QPS: p99 {p99:.3g} ms of {target.latency_ms:g} ms{busy}")
            why = "queueing" if p99 > target.latency_ms else _invalid_reason(m)
            return Candidate(count, False, label, p99, util, why, valid=False, qps=qps,
                             detail=f"INVALID at {qps:,.0f} QPS: p99 {p99:.3g} ms against {target.latency_ms:g} ms"
                                    + (f", devices {util:.0%} busy" if util is not None else ""))
        if sc == "Offline":
            need = target.required_qps(load)
            expected = max(need, extra.get("expected_qps", need))
            r = simulate("Offline", **common, overrides={"offline_expected_qps": expected, **over})
            got = float(r.metrics.headline_value)
            util = _busy_share(r, system.servers)
            ok = got >= need and r.metrics.valid
            return Candidate(count, ok, label, got, util, "" if ok else ("throughput" if got < need
                                                                         else _invalid_reason(r.metrics)),
                             valid=r.metrics.valid, qps=need,
                             detail=f"{got:,.0f} samples/s against {need:,.0f} needed")
        limit_ms = target.latency_limit_ns() / 1e6
        if sc == "SingleStream":
            r = simulate("SingleStream", **common, overrides={**extra.get("hints", {}), **over})
            got = _p(r, "90.00")
        else:
            r = simulate("MultiStream", **common,
                         overrides={"multi_stream_samples_per_query": MS_SAMPLES, **extra.get("hints", {}), **over})
            got = r.metrics.query_latency.percentiles_ns["99.00"] / 1e6
        ok = got <= limit_ms and r.metrics.valid
        pct = percentile_label(sc)
        return Candidate(count, ok, label, got, _busy_share(r, system.servers),
                         "" if ok else ("latency" if got > limit_ms else _invalid_reason(r.metrics)),
                         valid=r.metrics.valid,
                         detail=f"{pct} {got:.3g} ms against {limit_ms:.3g} ms (the limit less the headroom)")


def _invalid_reason(m) -> str:
    if not m.min_duration_met:
        return "run length (min duration)"
    if not m.min_queries_met:
        return "run length (min queries)"
    if not m.early_stopping_met:
        return "early stopping"
    return "latency"


def _batching_label(system: SystemSpec) -> str:
    b = system.batching
    if b.policy == "none":
        return "no batching"
    if b.policy == "fixed":
        return f"batch {b.max_batch}"
    return f"dynamic max {b.max_batch}, {b.max_queue_delay_ns / 1e3:.0f} us"


class HwDevice(_Simulated):
    """A hardware profile through the calibrated hardware model (``sim.hw``)."""

    def __init__(self, name: str, workload: str, target: Target, calib, per_node: int = DEVICES_PER_NODE):

        if workload not in whatif.MODELS:
            raise InputError(f"--workload {workload!r}: the hardware model covers {sorted(whatif.MODELS)}")
        self.prof = profiles.get(name)
        self.name, self.kind = name, self.prof.kind
        self.model, self.workload = whatif.MODELS[workload], workload
        self.mlperf_model = MODEL_ALIASES.get(self.model, self.model)
        self.calib = calib
        self.per_node = per_node
        self.price_usd, self.tdp_w = self.prof.price_usd, self.prof.tdp_w
        self.bound_ns = (float(target.latency_ms) * 1e6 if target.latency_ms
                         else float(whatif.SERVER_BOUND_NS[self.model]))
        first = self._engine(1, target.scenario)
        self.precision, self.source = first.case.precision, first.source

    def _engine(self, count: int, scenario: str):

        try:
            return whatif.engine(self.name, self.workload, scenario, min(count, self.per_node), self.calib,
                                 self.bound_ns)
        except InputError as e:
            raise Infeasible("unsupported", str(e)) from None

    def _parts(self, count: int, scenario: str):
        """(case, setup, params, cost of one engine) for ``count`` devices (per-node scaling)."""
        e = self._engine(count, scenario)
        return e.case, e.setup, e.params, e.cost

    def feasible(self, target: Target) -> None:

        case, s, p, c = self._parts(1, target.scenario)
        if self.prof.memory_capacity_gb:
            need_gb = s.workload.total_weights * analytic.BYTES[case.precision] / 1e9
            have_gb = self.prof.memory_capacity_gb / self.prof.chips_per_device
            if need_gb > have_gb:
                raise Infeasible("memory", f"the weights take {need_gb:.1f} GB at {case.precision}, above the "
                                           f"{have_gb:.1f} GB of one {self.name} chip (no model parallelism modelled)")
        t1 = c.batch_seconds(1) * 1e3
        if target.scenario == "Server" and t1 > target.latency_ms:
            raise Infeasible("latency", f"one sample takes {t1:.3g} ms on an idle {self.name}, above the "
                                        f"{target.latency_ms:g} ms bound: no count helps")
        if target.scenario == "SingleStream" and t1 > target.latency_limit_ns() / 1e6:
            raise Infeasible("latency", f"one sample takes {t1:.3g} ms on an idle {self.name}, above the "
                                        f"{target.latency_limit_ns() / 1e6:.3g} ms limit (headroom included); "
                                        f"more devices do not shorten one sample")

    def variants(self) -> tuple:
        return (1.0, 0.5, 2.0)

    def engines(self, count: int) -> int:
        return count * self.prof.chips_per_device

    def system(self, count: int, variant, target: Target):

        case, s, p, c = self._parts(count, target.scenario)
        servers = self.engines(count)
        name = f"{count} x {self.name}"
        if target.scenario == "Server":
            b = int(sm.server_config(case, s, c).max_batch * variant)
            if b < 1 or b > sm.MAX_BATCH[self.kind] or (variant > 1 and c.batch_seconds(b) > self.bound_ns * 1e-9 / 2):
                return None
            batching = sm.server_config(case, s, c, batch=b)
            util, note = self._server_capacity(count, b)      # per engine
            issue_ns = p.issue_us * 1e3
            extra = {"capacity_qps": util * servers, "capacity_note": note,
                     "issue_limit_qps": 1e9 / issue_ns if issue_ns > 0 else None}
            return SystemSpec(name=name, issue_overhead_ns=issue_ns, batching=batching, accelerators=servers), c, extra
        if variant != 1.0:
            return None
        if target.scenario == "Offline":
            b = sm.run_offline_batch(s, c)
            # LoadGen issues expected QPS x min duration samples: a system faster than the
            # target would end its run early (INVALID) at the target's rate, so it is told its own
            expected = servers * b / c.batch_seconds(b)
            return SystemSpec(name=name, batching=BatchingSpec("fixed", b, 0.0), accelerators=servers), c, \
                {"expected_qps": expected}
        if target.scenario == "SingleStream":
            hint = {"single_stream_expected_latency_ns": max(1, int(c.batch_seconds(1) * 1e9))}
            return SystemSpec(name=name, accelerators=1), c, {"hints": hint}
        per = math.ceil(MS_SAMPLES / servers)
        hint = {"multi_stream_expected_latency_ns": max(1, int(c.batch_seconds(per) * 1e9))}
        return SystemSpec(name=name, batching=BatchingSpec("dynamic", per, 0.0), accelerators=servers), c, \
            {"hints": hint}

    def estimate(self, target: Target) -> int:
        """The count the throughput alone asks for (the search's starting point)."""

        if target.scenario in CLOSED_LOOP:
            return 1
        case, s, p, c = self._parts(1, target.scenario)
        if target.scenario == "Offline":
            b = sm.run_offline_batch(s, c)
            per = b / c.batch_seconds(b) * self.prof.chips_per_device
        else:
            b = sm.server_config(case, s, c).max_batch
            per = self._server_capacity(1, b)[0] * self.prof.chips_per_device
        return max(1, math.ceil(target.required_qps() / per))

    def _server_capacity(self, count: int, batch: int) -> tuple[float, str]:
        """Sustained Server QPS of one engine at ``batch``, and where it comes from: the
        calibrated Server utilisation of the batched capacity, at most the engine's Offline
        capacity (as ``sim.hw.published.predict_case`` caps a Server prediction)."""

        case, s, p, c = self._parts(count, "Server")
        _, so, _, co = self._parts(count, "Offline")
        bo = sm.run_offline_batch(so, co)
        per, capped = sm.server_within_offline(sm.server_capacity(case, s, p, c, batch) / s.servers,
                                               bo / co.batch_seconds(bo))
        if capped:
            return per, f"the Offline capacity of one {self.name}, where the Server calibration said more"
        return per, (f"{p.server_util:.0%} of the batched capacity, the calibrated Server utilisation of "
                     f"{self.prof.chip}")


class CostDevice(_Simulated):
    """A system description whose accelerator count is planned (any cost model)."""

    def __init__(self, name: str, system: SystemSpec, cost, mlperf_model: str = "resnet50", kind: str = "system",
                 price_usd: float | None = None, tdp_w: float | None = None, source: str = ""):
        self.name, self.kind, self.base, self.cost = name, kind, system, cost
        self.mlperf_model, self.price_usd, self.tdp_w = mlperf_model, price_usd, tdp_w
        self.source = source or getattr(cost, "describe", lambda: "")()

    def feasible(self, target: Target) -> None:
        return None

    def system(self, count: int, variant, target: Target):
        sys_ = replace(self.base, accelerators=count, name=f"{count} x {self.name}")
        if target.scenario == "MultiStream":     # a query's 8 samples spread over the devices
            sys_ = replace(sys_, batching=BatchingSpec("dynamic", math.ceil(MS_SAMPLES / sys_.servers), 0.0))
        extra = {}
        if target.scenario == "SingleStream":
            latency_ns = max(1, int(self.cost.service_time_ns(1, True, None)))
            extra["hints"] = {"single_stream_expected_latency_ns": latency_ns}
        if target.scenario == "MultiStream":
            per = sys_.batching.max_batch
            latency_ns = max(1, int(self.cost.service_time_ns(per, True, None)))
            extra["hints"] = {"multi_stream_expected_latency_ns": latency_ns}
        return sys_, self.cost, extra

    def estimate(self, target: Target) -> int:
        if target.scenario not in THROUGHPUT:
            return 1
        per = offline_capacity_qps(replace(self.base, accelerators=1), self.cost)
        return max(1, math.ceil(target.required_qps() / per))


# ---------------------------------------------------------------------------------------
# the search
# ---------------------------------------------------------------------------------------

def smallest_count(evaluate, start: int, max_count: int) -> tuple[Candidate | None, Candidate | None, Candidate]:
    """(smallest passing, the next smaller's failure or None at 1, best failure seen).

    ``evaluate(k)`` must improve with ``k``. Starts at ``start``: down while passing, else
    doubling up to ``max_count`` and bisecting. ``(None, None, best)`` when nothing up to
    ``max_count`` passes.
    """
    seen: dict[int, Candidate] = {}

    def ev(k: int) -> Candidate:
        if k not in seen:
            seen[k] = evaluate(k)
        return seen[k]

    k = min(max(1, start), max_count)
    if ev(k).ok:
        while k > 1 and ev(k - 1).ok:
            k -= 1
        return ev(k), (ev(k - 1) if k > 1 else None), ev(k)
    lo = k
    hi = None
    while hi is None:
        if lo >= max_count:
            return None, None, ev(lo)
        nxt = min(max_count, max(lo + 1, lo * 2))
        if ev(nxt).ok:
            hi = nxt
        else:
            lo = nxt
    hi, lo = bisect(lambda count: ev(count).ok, hi, lo)
    return ev(hi), ev(lo), ev(hi)


BINDING_TEXT = {
    "throughput": "throughput: one device fewer cannot carry the load",
    "queueing": "latency bound under queueing: one device fewer has the capacity but its p99 misses the bound",
    "latency": "latency bound",
    "host issue": "host issue rate",
    "memory": "memory",
    "early stopping": "run length: one device fewer meets the limit in this run, but the run is too short for "
                      "LoadGen's early-stopping estimate (lengthen --min-duration-ms)",
    "run length (min duration)": "run length: one device fewer fails LoadGen's minimum duration",
    "run length (min queries)": "run length: one device fewer fails LoadGen's minimum query count",
}


def plan_device(dev, target: Target, max_count: int = 256) -> DevicePlan:
    out = DevicePlan(dev.name, dev.kind, price_usd=dev.price_usd, usd_per_hour=dev.usd_per_hour, tdp_w=dev.tdp_w,
                     precision=dev.precision, source=dev.source)
    try:
        dev.feasible(target)
    except Infeasible as e:
        out.status, out.binding = f"impossible: {e}", e.binding
        return out
    calls = [0]

    def evaluate(k: int, load: float = 1.0) -> Candidate:
        calls[0] += 1
        return dev.evaluate(k, target, load)

    chosen, smaller, best = smallest_count(evaluate, dev.estimate(target), max_count)
    if chosen is None:
        out.status = (f"impossible: no system up to {max_count} x {dev.name} meets the target; best found: "
                      f"{best.count} devices, {best.detail}")
        out.best, out.binding = best, best.reason
        out.evaluated = calls[0]
        return out
    out.chosen, out.smaller = chosen, smaller
    if smaller is None:
        out.binding = "none: one device meets the target"
    else:
        out.binding = BINDING_TEXT.get(smaller.reason, smaller.reason)
    if target.scenario in THROUGHPUT:
        out.plus10 = evaluate(chosen.count, 1.1 / (1.0 + target.headroom))   # the planned system at +10 % load
        nxt, _, _ = smallest_count(lambda k: evaluate(k, 1.1), chosen.count, max_count)
        out.count_at_plus10 = nxt.count if nxt else None
        verdict = "meets it" if out.plus10.ok else f"fails ({out.plus10.reason})"
        n = out.count_at_plus10
        keep = (f"; {_devices(n)} {'keeps' if n == 1 else 'keep'} the {target.headroom:.0%} headroom there"
                if out.count_at_plus10 else f"; no count up to {max_count} keeps the headroom there")
        out.sensitivity = f"+10% load ({target.qps * 1.1:,.0f}): the planned system {verdict}{keep}"
    else:
        out.sensitivity = "load-independent (one query at a time): margin " + (
            f"{(1 - chosen.value * 1e6 / target.latency_limit_ns()) * 100:.0f}% below the limit")
    out.evaluated = calls[0]
    return out


def plan(workload: str, target: Target, devices: list[str], objective: str = "count",
         budget_usd: float | None = None, max_count: int = 256, prices: dict | None = None,
         hourly: dict | None = None, calib=None, log=None) -> list[DevicePlan]:
    """Plan every device (profile names) and rank them by ``objective``; see the module docstring."""

    check_target(target)
    if objective not in OBJECTIVES:
        raise InputError(f"--objective {objective!r}: expected one of {list(OBJECTIVES)}")
    check_devices(devices)
    for what, table in (("--price", prices or {}), ("--hourly", hourly or {})):
        for d in table:
            if d not in devices:
                raise InputError(f"{what}: {d!r} is not one of the planned devices {devices}")
    number(max_count, "--max-devices", **RANGES["instances"])
    if budget_usd is not None:
        number(budget_usd, "--budget", minimum=0.0)
    for what, table in (("--price", prices or {}), ("--hourly", hourly or {})):
        for d, amount in table.items():
            number(amount, f"{what} {d}", above=0.0)
    if target.scenario == "Server" and target.latency_ms is None:
        if workload in whatif.MODELS:
            target = replace(target, latency_ms=whatif.SERVER_BOUND_NS[whatif.MODELS[workload]] / 1e6)
    calib = calib or published.calibration_from()
    out = []
    for name in devices:
        try:
            dev = HwDevice(name, workload, target, calib)
        except Infeasible as e:
            prof = profiles.get(name)
            out.append(DevicePlan(name, prof.kind, status=f"unsupported: {e}", price_usd=prof.price_usd,
                                  tdp_w=prof.tdp_w))
            continue
        if prices and name in prices:
            dev.price_usd = prices[name]
        if hourly and name in hourly:
            dev.usd_per_hour = hourly[name]
        p = plan_device(dev, target, max_count)
        if log:
            log(f"  {name}: {p.count or '-'} ({p.evaluated} simulated runs)")
        out.append(p)
    return rank(out, objective, budget_usd)


def _devices(n: int) -> str:
    return f"{n} device" + ("" if n == 1 else "s")


def rank(plans: list[DevicePlan], objective: str, budget_usd: float | None = None) -> list[DevicePlan]:
    """Planned devices first, by objective (unknown objective values after known), then the rest."""
    for p in plans:
        total = p.total("cost")
        p.over_budget = bool(budget_usd is not None and p.chosen and (total is None or total > budget_usd))

    def key(p: DevicePlan):
        if p.chosen is None:
            return (2, 0.0, 0, p.device)
        v = p.total(objective)
        return (1 if (v is None or p.over_budget) else 0, v if v is not None else 0.0, p.chosen.count, p.device)

    return sorted(plans, key=key)
