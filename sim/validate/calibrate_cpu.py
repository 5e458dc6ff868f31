"""Microbenchmarks for the few parameters of a real CPU system the simulator needs.

Nothing here looks at a validation run. Two kinds of measurement, each in a fresh process:

Service times (``measure_service``, no LoadGen)
    The harness's own SUT code (``sim.validate.harness.WorkerSUT`` with the same
    onnxruntime sessions, input gathering and worker threads) is fed by a stand-in for
    LoadGen that completes into nothing:

    - *busy*: many batches of exactly ``b`` samples queued at once; the time between one
      batch's results and the next's on the same worker is a busy service time (the cycle
      of a worker that never waits). Measured for every batch size up to ``max_batch``
      with one worker, and with all ``instances`` workers at once when there are several,
      in three passes over the batch sizes, so each size is timed in three spells of the
      machine rather than one (``foreign_cores`` of a busy entry: the most over its passes);
      4.5 s and at least 30 cycles per size in all, so a slow spell of a second is a small
      share of even the largest batch's cycles.
    - *idle*: after waiting a gap (0.03, 0.2, 2, 20, 60 and 200 ms), hand over one batch and
      time from the hand-over to its results: waking the worker, a cold thread pool, cold
      caches. Batch 1 at every gap, and the MultiStream batch (8 samples, capped at
      max_batch) at the two shortest gaps. At those two gaps both are measured at length
      (10 s): their tails are SingleStream's p90 and MultiStream's p99. The
      shortest gap is what a closed loop sees: LoadGen issues the next query some 20-40 us
      after a response. A sleep that short overshoots by tens of us, so gaps under 1 ms
      are waited out on the clock (yielding the CPU and the interpreter lock between readings).
    - *under traffic*: a thread issues single queries on a seeded Poisson schedule (sleeping
      until just before each one, then waiting on the clock) at 25, 50 and 75% of the
      max-batch capacity, through the configured batching rule; the back-to-back cycles of
      each batch size against busy cycles of the same size measured right before and after
      that segment (so the machine's drift over the calibration does not count as traffic)
      give how much slower a worker runs while queries keep arriving (another thread takes
      the interpreter lock and the CPU for each issue; a worker that just woke from a short
      idle spell is still cold). Per batch size
      and rate: ``traffic`` in the result, ``MachineCalibration.cost_for`` applies it to Server.
    - a *speed probe* before and after (batch-1 runs back to back for a second, and the
      same at the largest batch: the probes each real run makes before LoadGen starts):
      the ratio of a run's probe to the calibration's is the machine's drift since
      calibration (``MachineCalibration.drift``, ``MachineCalibration.drift_max``).

LoadGen's overhead (``measure_loadgen_overhead``, LoadGen with no model)
    The real harness, with a model that only sleeps (for the measured service time, so
    LoadGen's threads sleep and wake as they would), in short SingleStream, MultiStream and
    Server runs with LoadGen's trace on. The trace gives each sample's latency and how late
    its issue started (``issue_start_ns``: the Server scheduler's wake-up delay); the SUT's
    own clock gives the time from the issue callback to the results. The difference is
    LoadGen's share: ``issue_overhead_ns`` (issue stamp -> callback, plus completion call
    -> completion stamp) and ``schedule_delay_ns`` (Server only).

Batches woken by LoadGen's Server traffic (``measure_loadgen_wakes``, LoadGen with the model)
    The real harness and model in one short LoadGen Server run at ``WAKE_LOAD`` of the
    batch-1 busy capacity (not a load the validation compares). Each batch is timed against
    the busy median of its size, apart for batches whose first query waited for the previous
    batch (their cycle) and batches that woke the worker (their inference time): under
    LoadGen's threads the medians hold but the tails do not (dlrm, 100 pairs a sample, at 78
    QPS: batch-1 times p90 7.5 to 8.2 ms against 5.7 to 6.6 ms in the calibration's busy and
    idle segments), and a queue's waiting time follows the tail. ``MachineCalibration.cost_for(...,
    loadgen_ratios=True)`` draws Server's batches from these ratios; predictions do not by
    default (dlrm: closer than without them at 78 QPS, p99 17.7% too high at 110 QPS).

``calibrate`` runs them and returns a ``MachineCalibration``: an ``EmpiricalCost`` and the
per-scenario host overheads, which ``system_for`` puts into the simulated ``SystemSpec``.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from sim.cost.empirical import EmpiricalCost
from sim.errors import InputError
from sim.util.fingerprint import fingerprint
from sim.validate.harness import (
    CpuMonitor,
    ForeignMeter,
    HarnessConfig,
    WorkerSUT,
    _current_niceness,
    load_workload,
    make_executors,
    run_in_subprocess,
    wait_quiet,
)

GAPS_NS = (30_000.0, 200_000.0, 2_000_000.0, 20_000_000.0, 60_000_000.0, 200_000_000.0)
SPIN_BELOW_NS = 1_000_000.0     # shorter gaps are waited out on the clock, not slept
MS_BATCH = 8
IDLE_LONG_S = 10.0                 # idle segments at the closed-loop gaps (batch 1 and MS_BATCH)
IDLE_SHORT_S = 1.5                 # idle segments at the longer gaps (batch 1)
IDLE_MAX_REPS = 2000               # most batches of one long idle segment
BUSY_PASSES = 3                    # busy times: passes over the batch sizes (see measure_service)
BUSY_S = 4.5                       # busy times: seconds per batch size, over all passes
BUSY_MIN_BATCHES = 30              # busy times: fewest cycles per batch size, over all passes
BUSY_MAX_BATCHES = 1200            # busy times: most cycles per batch size, over all passes
TRAFFIC_LOADS = (0.25, 0.5, 0.75)  # issue rates, as fractions of the max-batch capacity
TRAFFIC_MIN_CYCLES = 20            # fewer back-to-back cycles of a batch size: no ratio for it
TRAFFIC_REFERENCE_MAX = 4          # busy cycles of batches 1..this bracket each traffic segment
WAKE_LOAD = 0.4                    # the wake-up ratios' LoadGen Server run: this share of batch 1's capacity
WAKE_S = 12.0                      # ... for this long (quick: a sixth)
SCHEMA = "sim.cpu_calibration/1"


class _Sample:
    __slots__ = ("id", "index")

    def __init__(self, i: int, index: int):
        self.id = i
        self.index = index


def _respond_factory():
    try:
        import mlperf_loadgen as lg  # noqa: PLC0415 - optional extra
        return lambda i: lg.QuerySampleResponse(i, 0, 0)
    except ImportError:
        return lambda i: (i, 0, 0)


# ---------------------------------------------------------------------------------------
# in the child process: service times


def _timed_probe(ex, b: int) -> float:
    t = time.perf_counter_ns()
    ex.run(np.arange(b))
    return max(1.0, float(time.perf_counter_ns() - t))


def _answered_all(total: int) -> tuple:
    """``(complete, done)``: a completion callback that sets the event ``done`` once
    ``total`` responses have come back."""
    done = threading.Event()
    count = [0]

    def complete(responses):
        count[0] += len(responses)
        if count[0] >= total:
            done.set()
    return complete, done


def _busy(cfg: HarnessConfig, executors, b: int, seconds: float, min_batches: int, max_batches: int,
          respond) -> list[int]:
    est = _timed_probe(executors[0], b)
    per_worker = int(np.clip(seconds * 1e9 / est, min_batches, max_batches)) + 1
    total = per_worker * len(executors) * b
    complete, done = _answered_all(total)
    sut = WorkerSUT(replace(cfg, policy="fixed", max_batch=b), executors, "Offline", complete, respond)
    sut.start()
    sut.issue_queries([_Sample(i, i) for i in range(total)])
    done.wait()
    sut.stop()
    a = sut.arrays()
    cycles = []
    for k in range(len(executors)):
        mine = np.sort(a["batch_done_ns"][a["batch_worker"] == k])
        d = np.diff(mine)
        if len(executors) > 1:
            d = d[:-1]                                   # the last batch may run with fewer neighbours
        cycles += d.tolist()
    return [int(x) for x in cycles if x > 0]


def wait_ns(gap_ns: float) -> None:
    """Wait ``gap_ns``: slept when long, on the clock when short (a sleep overshoots by tens
    of us; a clock loop of ``time.sleep(0)`` took 71 us for 30); ``os.sched_yield`` between readings lets the
    other threads have the CPU and the GIL."""
    if gap_ns >= SPIN_BELOW_NS:
        time.sleep(gap_ns / 1e9)
        return
    end = time.perf_counter_ns() + gap_ns
    while time.perf_counter_ns() < end:
        os.sched_yield()


def _idle(cfg: HarnessConfig, ex, b: int, gap_ns: float, seconds: float, min_reps: int, max_reps: int,
          respond) -> list[int]:
    est = _timed_probe(ex, b) + gap_ns
    reps = int(np.clip(seconds * 1e9 / est, min_reps, max_reps))
    ready = threading.Event()
    sut = WorkerSUT(replace(cfg, policy="fixed", max_batch=b), [ex], "Offline", lambda r: ready.set(), respond)
    sut.start()
    samples = [_Sample(i, i) for i in range(b)]
    for _ in range(reps):
        wait_ns(gap_ns)
        ready.clear()
        sut.issue_queries(samples)
        ready.wait()
    sut.stop()
    a = sut.arrays()
    first = a["batch_first"]
    handover = a["batch_done_ns"] - a["cb_ns"][first]
    run = a["batch_done_ns"] - a["batch_start_ns"]
    gaps = a["cb_ns"][first][1:] - a["batch_done_ns"][:-1]
    return {"ns": [int(x) for x in handover if x > 0], "run_mean_ns": float(np.mean(run)),
            "gap_mean_ns": float(np.mean(gaps)) if len(gaps) else float(gap_ns)}


def back_to_back_cycles(a: dict) -> dict[int, list[int]]:
    """Per batch size, the completion-to-completion cycles (ns) of batches whose first query
    was waiting before the worker's previous batch finished (``WorkerSUT.arrays`` layout)."""
    out: dict[int, list[int]] = {}
    for k in np.unique(a["batch_worker"]):
        mine = a["batch_worker"] == k
        order = np.argsort(a["batch_start_ns"][mine])
        count = a["batch_count"][mine][order]
        done = a["batch_done_ns"][mine][order]
        first = a["batch_first"][mine][order]
        back_to_back = a["cb_ns"][first[1:]] < done[:-1]
        cycles = np.diff(done)
        for b in np.unique(count[1:][back_to_back]):
            out.setdefault(int(b), []).extend(cycles[back_to_back & (count[1:] == b)].tolist())
    return out


def traffic_arrays(cfg: HarnessConfig, executors, rate_qps: float, seconds: float, seed: int, respond,
                   spin: bool = True) -> dict:
    """Single queries at ``rate_qps`` (Poisson, seeded) through the configured batching rule,
    issued by a thread that sleeps until 0.1 ms before each query's time and then, with
    ``spin``, waits out the rest on the clock (else it sleeps to about 55 us before it and
    issues then, as a timer thread does); the worker's arrays (``WorkerSUT.arrays``)."""
    n = max(1, int(rate_qps * seconds))
    due = np.cumsum(np.random.default_rng(seed).exponential(1e9 / rate_qps, n))
    complete, done = _answered_all(n)
    sut = WorkerSUT(cfg, executors, "Server", complete, respond)
    sut.start()
    t0 = time.perf_counter_ns() + 1_000_000

    def issuer():
        for i in range(n):
            target = t0 + int(due[i])
            if not spin:
                if (left := target - time.perf_counter_ns()) > 60_000:
                    time.sleep((left - 55_000) / 1e9)
            else:
                while (left := target - time.perf_counter_ns()) > 0:
                    if left > 100_000:
                        time.sleep((left - 60_000) / 1e9)
                    else:
                        os.sched_yield()
            sut.issue_queries([_Sample(i, i)])
    th = threading.Thread(target=issuer, name="traffic-issuer")
    th.start()
    th.join()
    sut.flush_queries()
    done.wait()
    sut.stop()
    return sut.arrays()


def _traffic(cfg: HarnessConfig, executors, rate_qps: float, seconds: float, seed: int, respond) -> dict:
    """Median back-to-back cycle (ns) and count per batch size under ``traffic_arrays``."""
    cycles = back_to_back_cycles(traffic_arrays(cfg, executors, rate_qps, seconds, seed, respond))
    return {str(b): {"median_ns": float(np.median(v)), "count": len(v)} for b, v in sorted(cycles.items())}


def _reference(cfg: HarnessConfig, executors, scale: float, respond) -> dict[int, list[int]]:
    """Busy cycles of the batch sizes issue traffic forms most (1 to ``TRAFFIC_REFERENCE_MAX``),
    measured right next to a traffic segment: the machine's speed in that window, so the
    traffic's slowdown is not confused with a drift of the machine since the busy runs."""
    return {b: _busy(cfg, executors, b, 0.4 * scale, 8, 200, respond)
            for b in range(1, min(TRAFFIC_REFERENCE_MAX, cfg.max_batch) + 1)}


def measure_service(spec: dict) -> dict:
    """Busy and idle service times of the harness's SUT code (see the module docstring)."""
    cfg = HarnessConfig.from_dict(spec["config"])
    scale = float(spec.get("seconds_scale", 1.0))
    executors = make_executors(cfg, seed=int(spec.get("seed", 0)))
    for ex in executors:
        ex.warm_up()
    probe_s = float(spec.get("probe_s", 1.0))
    probe = executors[0].probe(probe_s)
    probe_max = executors[0].probe_largest(probe_s)
    respond = _respond_factory()
    disturbed = float(spec.get("disturbed_cores", math.inf))
    quiet_wait_s = float(spec.get("quiet_wait_s", 0.0))
    retries = int(spec.get("retries", 0))
    redone = [0]

    def segment(measure):
        """One measurement; repeated (after waiting for quiet) while other processes disturb it."""
        for attempt in range(1 + retries):
            meter = ForeignMeter().start()
            ns = measure()
            foreign = meter.read()
            if foreign <= disturbed or attempt == retries:
                return ns, foreign
            redone[0] += 1
            if quiet_wait_s > 0:
                wait_quiet(min(disturbed, 0.35), quiet_wait_s)
        raise AssertionError("unreachable")

    monitor = CpuMonitor()
    monitor.start()
    t0 = time.perf_counter()
    sizes = list(range(1, cfg.max_batch + 1))
    levels = sorted({1, len(executors)})
    busy, idle = [], []
    for c in levels:
        got = {b: ([], []) for b in sizes}
        # in passes over the batch sizes: the machine's speed moves in spells of seconds, so
        # each size is measured at BUSY_PASSES times spread over the whole measurement rather
        # than in one spell that may be a slow one
        for _ in range(BUSY_PASSES):
            for b in sizes:
                ns, foreign = segment(lambda: _busy(cfg, executors[:c], b, BUSY_S * scale / BUSY_PASSES,
                                                    -(-BUSY_MIN_BATCHES // BUSY_PASSES),
                                                    BUSY_MAX_BATCHES // BUSY_PASSES, respond))
                got[b][0].extend(ns)
                got[b][1].append(foreign)
        busy += [{"batch": b, "concurrency": c, "ns": ns, "foreign_cores": max(foreign), "passes": len(foreign)}
                 for b, (ns, foreign) in got.items()]
    ms_batch = min(MS_BATCH, cfg.max_batch)
    for gap in GAPS_NS:
        at_length = gap in GAPS_NS[:2]
        batches = [1] + ([ms_batch] if at_length and ms_batch > 1 else [])
        for b in batches:
            # at the closed-loop gaps, batch 1's tail sets SingleStream's p90 and the MultiStream
            # batch's sets MultiStream's p99: measured at length (IDLE_LONG_S), so one spell of a
            # slow machine is a small share of the samples, as it is of a real run's
            secs = (IDLE_LONG_S if at_length else IDLE_SHORT_S) * scale
            least = (150 if at_length else 20) if scale >= 1 else (40 if at_length else 8)
            got, foreign = segment(lambda: _idle(cfg, executors[0], b, gap, secs, least,
                                                 IDLE_MAX_REPS if at_length else 600, respond))
            idle.append({"batch": b, "gap_ns": gap, **got, "foreign_cores": foreign})
    traffic = []
    level = len(executors)
    cap = cfg.max_batch * 1e9 / np.median(next(e["ns"] for e in busy
                                               if e["batch"] == cfg.max_batch and e["concurrency"] == level)) * level
    for k, load in enumerate(TRAFFIC_LOADS):
        rate = load * cap
        secs = min(20.0, max(2.0, 400.0 / rate)) * scale
        before = _reference(cfg, executors, scale, respond)
        got, foreign = segment(lambda: _traffic(cfg, executors, rate, secs, int(spec.get("seed", 0)) + k, respond))
        after = _reference(cfg, executors, scale, respond)
        reference = {str(b): float(np.median(before[b] + after[b])) for b in before}
        traffic.append({"load": load, "rate_qps": rate, "seconds": secs, "concurrency": level, "cycles": got,
                        "reference_ns": reference, "foreign_cores": foreign})
    probe += executors[0].probe(probe_s)        # the same probe before and after: drift during calibration
    probe_max += executors[0].probe_largest(probe_s)
    machine = monitor.stop()
    machine["segments_repeated"] = redone[0]
    machine["niceness"] = _current_niceness()
    return {"schema": "sim.service_times/1", "config": cfg.to_dict(), "busy": busy, "idle": idle,
            "traffic": traffic, "probe_ns": probe, "probe_max_ns": probe_max, "seconds": time.perf_counter() - t0,
            "machine": machine}


# ---------------------------------------------------------------------------------------
# LoadGen's overhead (parent side: runs the harness with a sleeping model)

_TRACE_SAMPLE = re.compile(r'"sample_seq":(\d+),"query_seq":(\d+),"sample_idx":(\d+),'
                           r'"issue_start_ns":(-?\d+),"complete_ns":(-?\d+)')


def trace_samples(path: Path) -> np.ndarray:
    """``(sample_seq, issue_start_ns, latency_ns)`` rows of a LoadGen trace, in issue order."""
    rows = [(int(m.group(1)), int(m.group(4)), int(m.group(5)))
            for m in _TRACE_SAMPLE.finditer(Path(path).read_text(errors="replace"))]
    a = np.array(rows, dtype=np.int64).reshape(-1, 3)
    return a[np.argsort(a[:, 0], kind="stable")]


def _overhead_from_run(folder: Path) -> dict:
    trace = trace_samples(folder / "mlperf_log_trace.json")
    own = np.load(folder / "samples.npz")
    n = min(len(trace), len(own["cb_ns"]))
    if n == 0:
        raise RuntimeError(f"{folder}: no samples in LoadGen's trace")
    sut_ns = (own["done_ns"][:n] - own["cb_ns"][:n]).astype(np.float64)
    start = trace[:n, 1].astype(np.float64)
    lat = trace[:n, 2].astype(np.float64)
    inline = lat - start - sut_ns
    return {"samples": int(n), "issue_overhead_ns": float(np.mean(inline)),
            "issue_overhead_median_ns": float(np.median(inline)),
            "schedule_delay_ns": float(np.mean(start)), "schedule_delay_median_ns": float(np.median(start)),
            "schedule_delay_p90_ns": float(np.percentile(start, 90))}


def _harness_run(spec: dict, folder: Path, timeout_s: float, disturbed_cores: float, quiet_wait_s: float,
                 retries: int, nice: int) -> dict:
    """One harness run (LoadGen, ``spec``), made again (up to ``retries`` times, each after
    waiting up to ``quiet_wait_s`` for quiet) while other processes used more than
    ``disturbed_cores`` during it; the last attempt's result."""
    for _ in range(1 + retries):
        if quiet_wait_s > 0:
            wait_quiet(min(disturbed_cores, 0.35), quiet_wait_s)
        run = run_in_subprocess("sim.validate.harness", spec, folder, timeout_s, nice=nice)
        if (run["machine"].get("foreign_cores_mean") or 0.0) <= disturbed_cores:
            break
    return run


def measure_loadgen_overhead(cfg: HarnessConfig, cost: EmpiricalCost, outdir: Path, mlperf_model: str,
                             seconds: float = 2.0, timeout_s: float = 300.0, disturbed_cores: float = math.inf,
                             quiet_wait_s: float = 0.0, retries: int = 0, nice: int = 0) -> dict:
    """Short null-model LoadGen runs per scenario; LoadGen's share of each sample's latency."""
    idle1 = cost.median_ns(1, idle=True)
    busy1 = cost.median_ns(1)
    ms_b = min(MS_BATCH, cfg.max_batch)
    plans = {
        "SingleStream": ({"single_stream_expected_latency_ns": int(idle1), "min_query_count": 50}, idle1),
        "MultiStream": ({"multi_stream_expected_latency_ns": int(cost.median_ns(ms_b, idle=True)),
                         "min_query_count": 50}, None),
        "Server": ({"server_target_qps": 0.5e9 / busy1, "min_query_count": 50,
                    "server_target_latency_ns": int(1e9)}, busy1),
    }
    out = {}
    for scenario, (overrides, _) in plans.items():
        folder = Path(outdir) / f"null_{scenario}"
        spec = {"config": cfg.to_dict(), "scenario": scenario, "mlperf_model": mlperf_model,
                "overrides": {**overrides, "min_duration_ns": int(seconds * 1000) * 1_000_000},
                "outdir": str(folder), "total_sample_count": 1024, "null_model": True, "trace": True,
                "null_sleep_ns": {str(b): cost.median_ns(b, idle=(scenario != "Server"))
                                  for b in range(1, cfg.max_batch + 1)}}
        run = _harness_run(spec, folder, timeout_s, disturbed_cores, quiet_wait_s, retries, nice)
        out[scenario] = {**_overhead_from_run(folder), "machine": run["machine"]}
    return out


def wake_ratios(arrays: dict, cost: EmpiricalCost) -> dict[str, np.ndarray]:
    """A real Server run's batches (``WorkerSUT.arrays``) against ``cost``'s busy medians, two
    kinds of sorted ratios. ``queued``: batches whose first query arrived before the worker's
    previous batch was done (back to back in the simulator), their completion-to-completion
    cycle (what the busy times are, ``back_to_back_cycles``). ``woken``: every other batch
    (each worker's first among them), its inference time. Batch sizes ``cost`` did not measure
    are left out."""
    out = {"queued": [], "woken": []}
    for k in np.unique(arrays["batch_worker"]):
        mine = arrays["batch_worker"] == k
        order = np.argsort(arrays["batch_start_ns"][mine])
        start = arrays["batch_start_ns"][mine][order].astype(np.float64)
        end = arrays["batch_end_ns"][mine][order].astype(np.float64)
        done = arrays["batch_done_ns"][mine][order].astype(np.float64)
        count = arrays["batch_count"][mine][order]
        arrived = arrays["cb_ns"][arrays["batch_first"][mine][order]].astype(np.float64)
        for i, (b, s, e) in enumerate(zip(count, start, end)):
            if not cost.batch_sizes[0] <= int(b) <= cost.batch_sizes[-1] or e <= s:
                continue
            if i and arrived[i] < done[i - 1]:
                out["queued"].append((done[i] - done[i - 1]) / cost.median_ns(int(b)))
            else:
                out["woken"].append((e - s) / cost.median_ns(int(b)))
    return {name: np.sort(np.asarray(v, dtype=np.float64)) for name, v in out.items()}


def measure_loadgen_wakes(cfg: HarnessConfig, cost: EmpiricalCost, outdir: Path, mlperf_model: str,
                          seconds: float = WAKE_S, timeout_s: float = 300.0, disturbed_cores: float = math.inf,
                          quiet_wait_s: float = 0.0, retries: int = 0, nice: int = 0) -> dict:
    """One LoadGen Server run of the real model at ``WAKE_LOAD`` of batch 1's busy capacity;
    its queued and woken batches' times over the busy medians (``wake_ratios``)."""
    folder = Path(outdir) / "loadgen_wakes"
    qps = WAKE_LOAD * 1e9 / cost.median_ns(1)
    spec = {"config": cfg.to_dict(), "scenario": "Server", "mlperf_model": mlperf_model,
            "overrides": {"server_target_qps": qps, "min_query_count": 50, "server_target_latency_ns": int(1e9),
                          "min_duration_ns": int(seconds * 1000) * 1_000_000},
            "outdir": str(folder), "total_sample_count": 1024}
    run = _harness_run(spec, folder, timeout_s, disturbed_cores, quiet_wait_s, retries, nice)
    with np.load(folder / "samples.npz") as z:
        ratios = wake_ratios({name: z[name] for name in z.files}, cost)
    return {"rate_qps": qps, "seconds": seconds, "ratios": [round(float(x), 5) for x in ratios["woken"]],
            "queued_ratios": [round(float(x), 5) for x in ratios["queued"]], "machine": run["machine"]}


# ---------------------------------------------------------------------------------------
# the result


def _probe_ratio(run: dict, key: str, reference_ns: float | None) -> float | None:
    """A run's speed probe ``key`` over the calibration's (None if either is missing)."""
    p = (run.get(key) or {}).get("median_ns")
    return float(p / reference_ns) if p and reference_ns else None


@dataclass
class MachineCalibration:
    config: HarnessConfig
    workload_sha256: str
    cost: EmpiricalCost
    overhead: dict                      # scenario -> {issue_overhead_ns, schedule_delay_ns, ...}
    machine: dict = field(default_factory=dict)
    seconds: float = 0.0
    fingerprint: dict = field(default_factory=dict)
    probe_ns: float | None = None       # median batch-1 run time of the speed probe during calibration
    traffic: list = field(default_factory=list)   # back-to-back cycles under issue traffic (measure_service)
    probe_max_ns: float | None = None   # the same probe at the largest batch
    parts: list = field(default_factory=list)     # pooled: the calibrations it was made of (``pooled``)
    wakes: dict = field(default_factory=dict)     # woken batches under LoadGen Server traffic (measure_loadgen_wakes)

    @staticmethod
    def pooled(parts: list["MachineCalibration"]) -> "MachineCalibration":
        """One calibration from several of the same system made at different times (before,
        between and after the real runs). The machine's speed drifts by some percent from one
        window of minutes to the next, and a run sees one window's speed, not a mix: so each
        part keeps the shape of its own samples and is rescaled, batch size by batch size, to
        the median over the parts (``EmpiricalCost.pooled``); with three or more parts one
        slow or fast window cannot set the level (with two, the median is their mean).
        LoadGen's overheads are averaged, the traffic slowdown (each part against its own
        busy cycles) averaged over the parts, the wake-up ratios (each part's against its own
        medians) taken together; the speed probes are the first part's (runs' drift is recorded
        against it).
        ``slowdowns`` reports each part's overall service time against the first's."""
        if len(parts) == 1:
            return parts[0]
        first = parts[0]
        for other in parts[1:]:
            if other.config != first.config or other.workload_sha256 != first.workload_sha256:
                raise InputError(f"calibration of {first.config.workload}: the calibrations to pool are of "
                                 f"different systems or workloads")
        cost = EmpiricalCost.pooled([c.cost for c in parts],
                                    f"{first.cost.source}, {len(parts)} calibrations pooled at their median")
        overhead = {s: {k: float(np.mean([c.overhead[s][k] for c in parts])) for k in o
                        if all(isinstance(c.overhead.get(s, {}).get(k), (int, float)) for c in parts)}
                    for s, o in first.overhead.items() if all(s in c.overhead for c in parts)}
        return MachineCalibration(first.config, first.workload_sha256, cost, overhead,
                           {f"part{k + 1}": c.machine for k, c in enumerate(parts)},
                           float(sum(c.seconds for c in parts)), first.fingerprint, first.probe_ns, [],
                           first.probe_max_ns, list(parts))

    def slowdowns(self) -> list[float]:
        """Pooled: each part's service times against the first part's (1.10: 10% slower);
        else [1.0]."""
        return [c.cost.slowdown_against(self.parts[0].cost) for c in self.parts] if self.parts else [1.0]

    def traffic_ratios(self) -> list[tuple[float, dict]]:
        """``(rate_qps, {batch: cycle under traffic / busy cycle})`` per measured rate, for
        batch sizes with at least ``TRAFFIC_MIN_CYCLES`` back-to-back cycles. The busy cycle is
        the one measured next to that traffic segment (``reference_ns``) where there is one,
        else the busy median of the calibration (calibrations made before the reference)."""
        out = []
        for t in self.traffic:
            level = int(t.get("concurrency", 1))
            local = t.get("reference_ns") or {}
            ratios = {int(b): c["median_ns"] / (local.get(b) or self.cost.median_ns(int(b), concurrency=level))
                      for b, c in t["cycles"].items()
                      if c["count"] >= TRAFFIC_MIN_CYCLES and int(b) in self.cost.batch_sizes}
            if ratios:
                out.append((float(t["rate_qps"]), ratios))
        return sorted(out, key=lambda x: x[0])

    def traffic_factors(self, qps: float) -> dict:
        """Per batch size, how much slower back-to-back batches run with queries arriving at
        ``qps``: the measured ratio, linear in the rate between measured rates and held at
        the ends; a batch size without enough cycles at a rate takes the nearest size's."""
        if self.parts:
            each = [c.traffic_factors(qps) for c in self.parts]
            return {b: float(np.mean([f[b] for f in each if b in f])) for b in self.cost.batch_sizes
                    if any(b in f for f in each)}
        measured = self.traffic_ratios()
        if not measured:
            return {}

        def at(ratios: dict, b: int) -> float:
            return ratios[min(ratios, key=lambda k: (abs(k - b), k))]
        rates = [r for r, _ in measured]
        out = {}
        for b in self.cost.batch_sizes:
            values = [at(ratios, b) for _, ratios in measured]
            out[b] = float(np.interp(qps, rates, values))
        return out

    def wake_ratios(self, key: str = "ratios") -> np.ndarray:
        """Under LoadGen's Server traffic (``measure_loadgen_wakes``), of every part: the woken
        batches' times (``key`` "ratios") or the queued batches' cycles ("queued_ratios") over
        the busy medians; none from calibrations made before it."""
        parts = self.parts or [self]
        return np.sort(np.concatenate([np.asarray((c.wakes or {}).get(key) or [], dtype=np.float64)
                                       for c in parts]))

    def cost_for(self, scenario: str, qps: float | None, cost: EmpiricalCost | None = None,
                 loadgen_ratios: bool = False) -> EmpiricalCost:
        """The cost model for a run. Server: the busy times slowed by the issue traffic at the
        target QPS (``traffic_factors``); with ``loadgen_ratios``, where the calibration measured
        batches under LoadGen's Server traffic (``wake_ratios``), every batch at its size's busy
        median times a ratio measured for its kind instead (``EmpiricalCost.under_traffic``: on
        dlrm closer at 46% of batch 1's capacity, too slow at 65%, so not the default). Other
        scenarios (no queries arrive while a batch runs) use the times as measured."""
        cost = cost or self.cost
        if scenario != "Server" or not qps:
            return cost
        woken, queued = self.wake_ratios(), self.wake_ratios("queued_ratios")
        if loadgen_ratios and woken.size and queued.size:
            return cost.under_traffic(woken, queued, "batches x ratios measured under LoadGen Server traffic")
        factors = self.traffic_factors(float(qps))
        return cost.busy_scaled(factors, f"busy times under traffic at {qps:.0f} QPS") if factors else cost

    def drift(self, run: dict) -> float:
        """How much slower than at calibration the machine was just before ``run`` (its probe)."""
        r = _probe_ratio(run, "probe", self.probe_ns)
        return 1.0 if r is None else float(min(2.0, max(0.5, r)))

    def drift_max(self, run: dict) -> float | None:
        """The same at the largest batch, unclamped (None where either side has no such probe)."""
        return _probe_ratio(run, "probe_max", self.probe_max_ns)

    def host_ns(self, scenario: str) -> tuple[float, float]:
        """(issue_overhead_ns, schedule_delay_ns) for a scenario."""
        o = self.overhead.get(scenario) or self.overhead["SingleStream"]
        delay = o["schedule_delay_ns"] if scenario == "Server" else 0.0
        return float(o["issue_overhead_ns"]), float(delay)

    def system_for(self, scenario: str, system):
        """``system`` with this machine's measured host overheads for ``scenario``."""
        issue, delay = self.host_ns(scenario)
        return replace(system, issue_overhead_ns=max(0.0, issue), schedule_delay_ns=max(0.0, delay),
                       idle_after_ns=0.0, idle_wake_ns=0.0)

    def to_dict(self) -> dict:
        return {"schema": SCHEMA, "config": self.config.to_dict(), "workload_sha256": self.workload_sha256,
                "cost": self.cost.to_dict(), "overhead": self.overhead, "machine": self.machine,
                "seconds": self.seconds, "fingerprint": self.fingerprint, "probe_ns": self.probe_ns,
                "traffic": self.traffic, "probe_max_ns": self.probe_max_ns, "wakes": self.wakes}

    @staticmethod
    def from_dict(d: dict, source: str = "calibration") -> "MachineCalibration":
        if not isinstance(d, dict) or d.get("schema") != SCHEMA:
            raise InputError(f"{source}: field 'schema' = {d.get('schema') if isinstance(d, dict) else d!r}: "
                             f"expected {SCHEMA!r}")
        return MachineCalibration(HarnessConfig.from_dict(d["config"]), d["workload_sha256"],
                           EmpiricalCost.from_dict(d["cost"], source), d["overhead"], d.get("machine", {}),
                           d.get("seconds", 0.0), d.get("fingerprint", {}), d.get("probe_ns"),
                           list(d.get("traffic") or []), d.get("probe_max_ns"), wakes=dict(d.get("wakes") or {}))

    def summary_lines(self) -> list[str]:
        c = self.cost
        pooled = (f", {len(self.parts)} calibrations (service times " + ", ".join(f"{x:.3f}" for x in self.slowdowns())
                  + " times the first's) pooled at their median per batch size") if self.parts else ""
        lines = [f"calibration of {self.config.workload} ({self.config.describe()}), {self.seconds:.0f} s{pooled}"]
        for b in c.batch_sizes:
            lines.append(f"  batch {b}: busy median {c.median_ns(b) / 1e6:.3f} ms"
                         + (f", idle median {c.median_ns(b, idle=True) / 1e6:.3f} ms"
                            if any(bb == b for bb, _ in c.idle) else ""))
        for k, part in enumerate(self.parts or [self]):
            when = f" (calibration {k + 1})" if self.parts else ""
            for rate, ratios in part.traffic_ratios():
                lines.append(f"  under traffic at {rate:,.0f} QPS{when}: back-to-back cycles x "
                             + ", ".join(f"{r:.2f} (batch {b})" for b, r in sorted(ratios.items())))
        for k, part in enumerate(self.parts or [self]):
            for key, what in (("ratios", "woken batches"), ("queued_ratios", "queued batches' cycles")):
                r = np.asarray((part.wakes or {}).get(key) or [])
                if r.size:
                    when = f" (calibration {k + 1})" if self.parts else ""
                    lines.append(f"  {what} under LoadGen Server traffic at {part.wakes['rate_qps']:,.0f} QPS"
                                 f"{when}: x {np.median(r):.2f} median, {np.percentile(r, 90):.2f} p90, "
                                 f"{np.percentile(r, 99):.2f} p99 of the calibrated times ({r.size} batches)")
        for s, o in self.overhead.items():
            lines.append(f"  LoadGen {s}: issue overhead {o['issue_overhead_ns'] / 1e3:.1f} us, "
                         f"scheduler delay {o['schedule_delay_ns'] / 1e3:.1f} us")
        return lines


def calibrate(cfg: HarnessConfig, outdir: Path, mlperf_model: str, quick: bool = False, seed: int = 0,
              timeout_s: float = 1800.0, disturbed_cores: float = math.inf, quiet_wait_s: float = 0.0,
              retries: int = 0, nice: int = 0) -> MachineCalibration:
    """Service-time microbenchmarks and LoadGen overhead runs; writes ``calibration.json``.

    A measurement during which other processes used more than ``disturbed_cores`` is made
    again (up to ``retries`` times, after waiting up to ``quiet_wait_s`` for quiet).
    """
    outdir = Path(outdir)
    t0 = time.perf_counter()
    spec = {"config": cfg.to_dict(), "seed": seed, "seconds_scale": 0.3 if quick else 1.0,
            "result_file": "service.json", "disturbed_cores": disturbed_cores, "quiet_wait_s": quiet_wait_s,
            "retries": retries}
    service = run_in_subprocess("sim.validate.calibrate_cpu", spec, outdir / "service", timeout_s, nice=nice)
    cost = EmpiricalCost({(e["batch"], e["concurrency"]): e["ns"] for e in service["busy"]},
                         {(e["batch"], e["gap_ns"]): e["ns"] for e in service["idle"]},
                         source=f"service times of {cfg.workload} measured on this machine")
    overhead = measure_loadgen_overhead(cfg, cost, outdir, mlperf_model, seconds=1.0 if quick else 2.0,
                                        disturbed_cores=disturbed_cores, quiet_wait_s=quiet_wait_s, retries=retries,
                                        nice=nice)
    wakes = measure_loadgen_wakes(cfg, cost, outdir, mlperf_model, seconds=WAKE_S / 6 if quick else WAKE_S,
                                  disturbed_cores=disturbed_cores, quiet_wait_s=quiet_wait_s, retries=retries,
                                  nice=nice)
    w = load_workload(cfg.workload, cfg.small)
    probe = service.get("probe_ns") or []
    probe_max = service.get("probe_max_ns") or []
    cal = MachineCalibration(cfg, w.sha256, cost, overhead, {"service": service["machine"]},
                      time.perf_counter() - t0,
                      fingerprint(intra_op_threads=cfg.intra_op_threads, inter_op_threads=1),
                      float(np.median(probe)) if probe else None, list(service.get("traffic") or []),
                      float(np.median(probe_max)) if probe_max else None, wakes=wakes)
    (outdir / "calibration.json").write_text(json.dumps(cal.to_dict()) + "\n")
    return cal


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m sim.validate.calibrate_cpu SPEC.json", file=sys.stderr)
        return 2
    path = Path(argv[0])
    try:
        spec = json.loads(path.read_text())
        result = measure_service(spec)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    (path.parent / spec.get("result_file", "service.json")).write_text(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
