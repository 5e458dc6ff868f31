"""From a published system (a ``Case``) and calibrated parameters to a simulated result.

``build(case, params)`` makes the simulator inputs for one published test: the
``SystemSpec`` (accelerators, instances, batching policy, host issue cost) and the
``AnalyticCost`` of one instance. ``simulate_case`` runs the scenario through the
simulator and returns the value in the row's units:

- Offline: samples/s of one Offline run with fixed batches of the Offline batch size;
- Server: the highest target QPS whose simulated run is VALID at the row's latency bound
  (``sim.loadgen.peak_search.find_peak_qps``), over a few dynamic-batching configurations;
- SingleStream: the 90th percentile latency of a SingleStream run;
- MultiStream (v2.0+): the 99th percentile latency of 8-sample queries, split over the
  system's instances;
- MultiStream (v0.5-v1.0): the largest samples per query whose 99th percentile latency
  stays within the row's interval (bisection over simulated MultiStream runs).

``closed_form(case, params)`` gives the same quantities without the simulator for the
scenarios without queueing (used inside the fitting loop, where thousands of evaluations
are needed); ``tests/test_hw_analytic.py`` (simulator) and ``tests/test_hw_calibrate.py``
(the fit's vectorised form) check that they agree.

Fixed choices (stated, not fitted):
- Offline batch: a power of two up to ``MAX_BATCH[kind]`` and to the largest batch whose
  activations fit in a quarter of the device memory: on ``TUNED_BATCH_KINDS`` (GPUs) the
  one of the highest throughput ``b / T(b)`` (submitters tune their batch size), elsewhere
  the largest (``best_batch``). Throughput mostly grows with the batch, but not always: a
  batch small enough for each layer's activations to stay in on-chip memory (the 48 MB
  L2 of an L4) can beat a larger one.
- Server: dynamic batching with ``max_batch`` chosen the same way among the powers of two
  whose batch latency is within half the bound, queue delay a tenth of the bound or
  the batch time; a target QPS above the calibrated sustainable capacity (``server_util``
  of the batched capacity) is INVALID, below it a simulated run of at least
  ``SERVER_QUERIES`` queries and 40 latency bounds decides; search down from the capacity,
  bisection to 1.5 %.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from sim.errors import InputError
from sim.hw import analytic, profiles
from sim.hw.analytic import AnalyticCost, Device, Efficiency
from sim.hw.rows import Case
from sim.loadgen.settings import MODEL_ALIASES
from sim.run import simulate
from sim.sut.system import BatchingSpec, SystemSpec
from sim.util.bisect import bisect

MAX_BATCH = {"gpu": 2048, "asic": 32, "fpga": 16, "dsp": 1, "cpu": 32}
TUNED_BATCH_KINDS = ("gpu",)
SERVER_QUERIES = 10000
# at most this many queries per simulated Server trial: 40 bounds of a network served at millions
# of queries/s (DLRM) would be tens of millions of queries, and p99 is settled long before
SERVER_MAX_QUERIES = 500_000
MS_SAMPLES = 8
# Harnesses that split a MultiStream query's samples over all accelerators of the node.
# Published results: Qualcomm's do (one server with 1, 2, 5 and 8 Cloud AI 100 cards,
# v2.0 ResNet-50: p99 1.02, 0.64, 0.42 and 0.42 ms); NVIDIA's run the 8 samples as one
# batch on one GPU (the same A2 server with 2 and 4 GPUs: 3.092 and 3.093 ms).
MS_SPLIT_VENDORS: tuple = ("qualcomm",)
SCHEDULE_SEED = 16159082839903944936     # LoadGen's Server schedule seed (mlperf.conf, current round)


@dataclass(frozen=True)
class Params:
    """Calibrated parameters of one calibration unit (a chip, or a CPU chip + software stack)."""
    eff: Efficiency = field(default_factory=Efficiency)
    trend: float = 0.0          # log-throughput gain per year of software age on the device
    maxq: float = 1.0           # throughput factor of power-measured (power-capped) runs
    power: float = 0.0          # throughput ~ power_headroom ** power across products of one chip
    multi: float = 0.0          # per-device throughput falls as devices**-multi in one node
    server_util: float = 0.9    # highest sustainable share of the batched capacity under Server traffic
    triton_util: float = 1.0    # factor on server_util when the harness serves through Triton
    issue_us: float = 0.0       # host cost per Server query on one issue thread (not fitted)
    triton_us: float = 0.0      # extra host cost per query through Triton (not fitted)
    triton_ms_us: float = 0.0   # extra latency of a MultiStream query served through Triton
    net: dict = field(default_factory=dict)        # workload -> network factor on kernel time (1 = as predicted)
    net_batch_us: dict = field(default_factory=dict)   # workload -> fixed cost per batch (us), else eff.batch_us

    def as_dict(self) -> dict:
        return {**self.eff.as_dict(), "trend": self.trend, "maxq": self.maxq, "power": self.power,
                "multi": self.multi, "server_util": self.server_util, "triton_util": self.triton_util,
                "issue_us": self.issue_us, "triton_us": self.triton_us, "triton_ms_us": self.triton_ms_us,
                **{f"net_{w}": v for w, v in sorted(self.net.items())},
                **{f"batch_us_{w}": v for w, v in sorted(self.net_batch_us.items())}}

    @classmethod
    def from_dict(cls, d: dict) -> "Params":
        e = Efficiency(**{k: float(d[k]) for k in Efficiency().as_dict() if k in d})
        net = {k[4:]: float(v) for k, v in d.items() if k.startswith("net_")}
        nb = {k[9:]: float(v) for k, v in d.items() if k.startswith("batch_us_")}
        return cls(eff=e, trend=float(d["trend"]), maxq=float(d["maxq"]), power=float(d.get("power", 0.0)),
                   multi=float(d["multi"]), server_util=float(d.get("server_util", 0.9)),
                   triton_util=float(d.get("triton_util", 1.0)),
                   issue_us=float(d.get("issue_us", 0.0)), triton_us=float(d.get("triton_us", 0.0)),
                   triton_ms_us=float(d.get("triton_ms_us", 0.0)), net=net,
                   net_batch_us=nb)


@dataclass(frozen=True)
class Setup:
    """Everything about a case that does not depend on the parameters."""
    profile: profiles.Profile
    device: Device
    workload: analytic.AnalyticWorkload
    servers: int                 # concurrent execution engines (devices x chips x MIG instances)
    physical: int                # physical devices in the node (for the scaling term)
    age_years: float             # software age: years since the chip first shipped
    headroom: float              # power per unit of peak relative to the chip's best-fed product
    offline_batch: int           # the largest Offline batch (memory), or the case's own batch
    batch_given: bool = False    # the case fixes its batch (a user's measurement)


def setup(case: Case) -> Setup:
    if not case.ok:
        raise InputError(f"row {case.index}: unsupported ({case.unsupported})")
    prof = profiles.get(case.profile)
    fraction = case.mig_slices / prof.mig_slices if case.mig_slices else 1.0
    dev = Device.from_profile(prof, fraction=fraction, cores=case.cores)
    w = analytic.workload(case.workload)
    per_device = prof.chips_per_device * (case.mig_instances or 1)
    return Setup(profile=prof, device=dev, workload=w, servers=case.devices * per_device, physical=case.devices,
                 age_years=max(0.0, case.year - profiles.chip_release_year(prof)),
                 headroom=profiles.power_headroom(prof),
                 offline_batch=case.batch or offline_batch(prof, w, case.precision, fraction),
                 batch_given=bool(case.batch))


def ms_engines(s: Setup) -> int:
    """Engines a MultiStream query's samples are spread over (see MS_SPLIT_VENDORS)."""
    if s.profile.vendor in MS_SPLIT_VENDORS:
        return s.servers
    return s.profile.chips_per_device * 1


def best_batch(batch_seconds, cap: int, limit_s: float | None = None, tuned: bool = True) -> int:
    """The power of two up to ``cap`` with the highest throughput ``b / batch_seconds(b)``
    (the larger on a tie), counting only batches within ``limit_s`` when given (batch 1
    always counts): the batch size a submitter's tuning would settle on."""
    best, best_rate, b = 1, 1.0 / batch_seconds(1), 2
    while b <= cap:
        t = batch_seconds(b)
        if limit_s is not None and t > limit_s:
            break
        if not tuned or b / t >= best_rate:
            best, best_rate = b, b / t
        b *= 2
    return best


def run_offline_batch(s: Setup, c: AnalyticCost) -> int:
    """The Offline batch of one instance: the case's own, or the best up to the memory cap."""
    if s.batch_given:
        return s.offline_batch
    return best_batch(c.batch_seconds, s.offline_batch, tuned=s.profile.kind in TUNED_BATCH_KINDS)


def batch_of(case: Case, s: Setup) -> int:
    """The batch size one instance runs for a closed-form target with a fixed batch."""
    if case.target == "offline":
        if not s.batch_given:
            raise ValueError("the Offline batch depends on the parameters (run_offline_batch)")
        return s.offline_batch
    if case.target == "singlestream":
        return case.batch or 1
    if case.target == "multistream":
        return math.ceil(MS_SAMPLES / ms_engines(s))
    raise ValueError(f"no single batch size for target {case.target!r}")


def offline_batch(prof: profiles.Profile, w: analytic.AnalyticWorkload, precision: str, fraction: float = 1.0) -> int:
    """The largest Offline batch: ``MAX_BATCH`` of the kind, halved while one batch's largest
    activations (twice, in and out) exceed a quarter of the engine's memory (its chip's
    share of the card, times ``fraction`` for a MIG instance)."""
    cap = MAX_BATCH[prof.kind]
    if prof.memory_capacity_gb:
        per_sample = float(w.a_elems.max() if len(w.a_elems) else 0.0) * analytic.BYTES[precision] * 2
        mem = prof.memory_capacity_gb * 1e9 / prof.chips_per_device * fraction
        while cap > 1 and per_sample * cap > 0.25 * mem:
            cap //= 2
    return cap


def time_scale(case: Case, s: Setup, p: Params) -> float:
    """Multiplier on every service time: software age, the product's power budget, power capping."""
    scale = math.exp(-p.trend * s.age_years) / s.headroom ** p.power
    if case.power_capped:
        scale /= p.maxq
    return scale


LATENCY_TARGETS = ("singlestream", "multistream")
MS_TARGETS = ("multistream", "ms_streams")


def triton_ms_s(case: Case, p: Params) -> float:
    """Seconds Triton adds to a MultiStream query (0 for other harnesses and scenarios).

    Published MultiStream results of one system through Triton and without it differ by a
    latency, not a factor: 0.06 to 0.3 ms on A100 and A2 systems, whatever the network
    (the query's samples reach the server as separate requests, which its batcher gathers
    into one batch again); their SingleStream results do not differ. Fitted per unit.
    """
    return p.triton_ms_us * 1e-6 if case.triton and case.target in MS_TARGETS else 0.0


def cost(case: Case, s: Setup, p: Params, overlap_link: bool) -> AnalyticCost:
    """The cost of one instance; SingleStream and MultiStream run latency-optimised."""
    return AnalyticCost(s.workload, s.device, case.precision, p.eff, scale=time_scale(case, s, p),
                        overlap_link=overlap_link, net=p.net.get(s.workload.name, 1.0),
                        batch_us=p.net_batch_us.get(s.workload.name), latency_mode=case.target in LATENCY_TARGETS)


def scaling(s: Setup, p: Params) -> float:
    """Per-device throughput share kept when ``physical`` devices share one node."""
    return float(s.physical) ** (-p.multi) if s.physical > 1 else 1.0


def ms_streams_batch(c: AnalyticCost, bound_s: float, limit: int = 1 << 16) -> int:
    """Largest batch whose latency is within ``bound_s`` (0 when even batch 1 is too slow)."""
    if c.batch_seconds(1) > bound_s:
        return 0
    lo, hi = 1, 2
    while hi <= limit and c.batch_seconds(hi) <= bound_s:
        lo, hi = hi, hi * 2
    lo, hi = bisect(lambda batch: c.batch_seconds(batch) <= bound_s, lo, hi)
    return lo


def closed_form(case: Case, p: Params, s: Setup | None = None) -> float:
    """The row's metric without the simulator (for Server: the sustainable capacity, which
    the simulated search confirms or lowers where queueing breaks the latency bound)."""
    s = s or setup(case)
    if case.target == "offline":
        c = cost(case, s, p, overlap_link=True)
        b = run_offline_batch(s, c)
        return s.servers * b / c.batch_seconds(b) * scaling(s, p)
    c = cost(case, s, p, overlap_link=False)
    if case.target in LATENCY_TARGETS:
        return (c.batch_seconds(batch_of(case, s)) + triton_ms_s(case, p)) * 1e9
    if case.target == "ms_streams":
        return float(ms_streams_batch(c, case.latency_bound_ns * 1e-9 - triton_ms_s(case, p)) * s.servers)
    if case.target == "server":
        # the sustainable capacity: the upper end of the simulator's search (server_peak)
        c = cost(case, s, p, overlap_link=True)
        c = c.with_scale(c.scale / scaling(s, p))
        b = server_batch(s.profile.kind, case.latency_bound_ns * 1e-9, c.batch_seconds)
        return server_capacity(case, s, p, c, b)
    raise ValueError(f"unknown target {case.target!r}")


# ---------------------------------------------------------------------------
# through the simulator
# ---------------------------------------------------------------------------

def _ms_ns(seconds: float) -> int:
    """A duration in whole milliseconds (LoadGen keeps durations in ms), at least 1 ms."""
    return int(max(1, math.ceil(seconds * 1e3))) * 1_000_000


def _system(s: Setup, p: Params, case: Case, batching: BatchingSpec, issue_ns: float = 0.0) -> SystemSpec:
    return SystemSpec(name=f"{case.devices} x {case.profile}" + (f" (MIG {case.mig_instances}x{case.mig_slices}g)"
                                                                   if case.mig_slices else ""),
                      issue_overhead_ns=issue_ns, batching=batching, accelerators=s.servers, instances=1)


# performance sample counts of the rounds that had these models (mlperf.conf of v0.5-v1.1
# for the SSDs, which the current LoadGen no longer lists)
PERFORMANCE_SAMPLES = {"resnet50": 1024, "ssd-mobilenet": 256, "ssd-resnet34": 64, "retinanet": 64, "bert": 10833}


def _settings(model: str, **fields) -> dict:
    return {"performance_sample_count_override": PERFORMANCE_SAMPLES.get(model, 1024), **fields}


def _mlperf_model(case: Case) -> str:
    return MODEL_ALIASES.get(case.model, case.model)


def simulate_case(case: Case, p: Params, seed: int = 0) -> float:
    """The row's metric, through the simulator (see the module docstring)."""

    s = setup(case)
    model = _mlperf_model(case)
    if case.target == "offline":
        c = cost(case, s, p, overlap_link=True)
        # the node-level scaling loss slows every device alike
        c = c.with_scale(c.scale / scaling(s, p))
        b = run_offline_batch(s, c)
        est = s.servers * b / c.batch_seconds(b)
        system = _system(s, p, case, BatchingSpec("fixed", b, 0.0))
        # whole rounds of full batches on every instance, at least 20 of them
        per_round = b * s.servers
        n = per_round * max(20, math.ceil(est / per_round))
        r = simulate("Offline", workload=None, mlperf_model=model, system=system, cost=c, seed=seed,
                     overrides=_settings(model, offline_expected_qps=n / 1.1, min_duration_ns=10 ** 9,
                                         min_query_count=n))
        return float(r.metrics.headline_value)
    if case.target == "singlestream":
        c = cost(case, s, p, overlap_link=False)
        t = c.batch_seconds(1)
        r = simulate("SingleStream", workload=None, mlperf_model=model, system=_system(s, p, case, BatchingSpec()),
                     cost=c, seed=seed, overrides=_settings(model, single_stream_expected_latency_ns=t * 1e9,
                                                  min_duration_ns=_ms_ns(100 * t), min_query_count=100))
        return float(r.metrics.headline_value)
    if case.target == "multistream":
        c = cost(case, s, p, overlap_link=False)
        per = batch_of(case, s)
        t = c.batch_seconds(per)
        r = simulate("MultiStream", workload=None, mlperf_model=model,
                     system=_system(s, p, case, BatchingSpec("dynamic", per, 0.0), triton_ms_s(case, p) * 1e9),
                     cost=c, seed=seed,
                     overrides=_settings(model, multi_stream_expected_latency_ns=t * 1e9,
                                         min_duration_ns=_ms_ns(700 * t), min_query_count=700,
                                         multi_stream_samples_per_query=MS_SAMPLES))
        return float(r.metrics.headline_value)
    if case.target == "ms_streams":
        return float(_ms_streams_simulated(case, s, p, model, seed))
    if case.target == "server":
        return server_peak(case, p, s, seed)
    raise ValueError(f"unknown target {case.target!r}")


def _ms_streams_ok(case, s, p, model, n: int, seed: int) -> bool:

    c = cost(case, s, p, overlap_link=False)
    per = math.ceil(n / s.servers)
    t = c.batch_seconds(per)
    r = simulate("MultiStream", workload=None, mlperf_model=model,
                 system=_system(s, p, case, BatchingSpec("dynamic", per, 0.0), triton_ms_s(case, p) * 1e9),
                 cost=c, seed=seed,
                 overrides={"multi_stream_samples_per_query": n, "multi_stream_expected_latency_ns": t * 1e9,
                            "min_duration_ns": _ms_ns(300 * t), "min_query_count": 300,
                            "performance_sample_count_override": max(n, PERFORMANCE_SAMPLES.get(model, 1024))})
    return float(r.metrics.headline_value) <= case.latency_bound_ns


def _ms_streams_simulated(case, s, p, model, seed) -> int:
    """Largest samples per query (a multiple of the instance count) meeting the interval at p99."""
    c = cost(case, s, p, overlap_link=False)
    per = ms_streams_batch(c, case.latency_bound_ns * 1e-9 - triton_ms_s(case, p))
    if per == 0:
        return 0
    # the closed form is exact for a deterministic cost; confirm it (and its neighbour) by simulation
    n = per * s.servers
    while n > 0 and not _ms_streams_ok(case, s, p, model, n, seed):
        n -= s.servers
    return n


SERVER_BATCHES = tuple(2 ** k for k in range(0, 12))


# A Server batch's service time is at most this share of the latency bound: a query that
# arrives just after a batch started waits for it and then runs in the next one, about two
# batch times. The simulation then decides which QPS meets the bound at that batch. Measured
# against a third of the bound (benchmarks/hw_accuracy.py on the shared results, docs/hardware.md).
SERVER_BATCH_SHARE = 1 / 2


def server_batch(kind: str, bound_s: float, batch_seconds) -> int:
    """The power-of-two batch of the highest throughput among those whose service time is
    within ``SERVER_BATCH_SHARE`` of the latency bound (waiting behind one batch, then
    running in the next), at most ``MAX_BATCH[kind]``."""
    return best_batch(batch_seconds, MAX_BATCH[kind], limit_s=bound_s * SERVER_BATCH_SHARE,
                      tuned=kind in TUNED_BATCH_KINDS)


def server_config(case: Case, s: Setup, c: AnalyticCost, batch: int | None = None) -> BatchingSpec:
    """Dynamic batching for Server: ``server_batch`` (or ``batch``), and a queue delay of a
    tenth of the bound or the batch time, whichever is shorter."""
    bound_s = case.latency_bound_ns * 1e-9
    b = batch or server_batch(s.profile.kind, bound_s, c.batch_seconds)
    return BatchingSpec("dynamic", b, min(bound_s / 10, c.batch_seconds(b)) * 1e9)


def server_capacity(case: Case, s: Setup, p: Params, c: AnalyticCost, batch: int) -> float:
    """Sustainable Server QPS: the batched capacity times the calibrated utilisation ceiling."""
    util = p.server_util * (p.triton_util if case.triton else 1.0)
    return util * s.servers * batch / c.batch_seconds(batch)


def server_within_offline(server: float, offline: float) -> tuple[float, bool]:
    """(Server throughput, whether it was capped): a Server run does not sustain more than
    the same system's Offline throughput (649 of the 656 closed-division Offline/Server
    pairs of one system in the shared results; the other 7 exceed it by 0.4 to 24%). Where
    the Server calibration says more, the Offline figure stands."""
    return (offline, True) if server > offline else (server, False)


def server_peak(case: Case, p: Params, s: Setup | None = None, seed: int = 0, rel_tol: float = 0.015) -> float:
    """Highest VALID Server target QPS at the row's latency bound.

    A target above the sustainable capacity (``server_capacity``) is INVALID: in a 600 s
    run the backlog of an overloaded system grows past any bound. Below it, a simulated run
    decides: at least ``SERVER_QUERIES`` queries and 40 latency bounds of simulated time
    (long enough for the queue to settle), at most ``SERVER_MAX_QUERIES`` queries, one
    schedule seed. The search starts at the
    sustainable capacity, steps down by 8 % until VALID, then bisects to ``rel_tol``.
    """

    s = s or setup(case)
    model = _mlperf_model(case)
    c = cost(case, s, p, overlap_link=True)
    c = c.with_scale(c.scale / scaling(s, p))
    issue_ns = (p.issue_us + (p.triton_us if case.triton else 0.0)) * 1e3
    batching = server_config(case, s, c)
    capacity = server_capacity(case, s, p, c, batching.max_batch)
    if issue_ns > 0:
        capacity = min(capacity, 1e9 / issue_ns)
    system = _system(s, p, case, batching, issue_ns)
    bound_s = case.latency_bound_ns * 1e-9

    def valid(qps: float) -> bool:
        if qps > capacity:
            return False
        dur = max(SERVER_QUERIES / qps, min(max(40 * bound_s, 0.1), SERVER_MAX_QUERIES / qps))
        r = simulate("Server", workload=None, mlperf_model=model, system=system, cost=c, seed=seed,
                     overrides=_settings(model, server_target_qps=qps,
                                         server_target_latency_ns=int(case.latency_bound_ns),
                                         min_duration_ns=_ms_ns(dur), min_query_count=1,
                                         schedule_rng_seed=SCHEDULE_SEED))
        return bool(r.metrics.valid)

    q = capacity
    if valid(q):
        return q
    hi, lo = q, None
    for _ in range(25):          # down to 12 % of the capacity; below that the bound cannot be met
        q *= 0.92
        if valid(q):
            lo = q
            break
        hi = q
    if lo is None:
        return 0.0
    lo, hi = bisect(valid, lo, hi, rel_tol=rel_tol)
    return lo
