"""Service times of the real SUT code without LoadGen (``measure_service``), measured in a
process of their own (``python -m sim.validate.service_times SPEC.json``, started by
``sim.validate.calibrate_cpu.calibrate``). Nothing here looks at a validation run.

The harness's own SUT code (``sim.validate.sut.WorkerSUT`` with the same
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
  shortest gap is what a closed loop sees: LoadGen's thread, blocked until a response,
  issues the next query some 20-40 us after it; so does the stand-in at that gap (it waits
  for the results and issues at once: no thread spins in the gap, which on a machine whose
  cores the model's threads fill made the next run 15 to 35% slower than LoadGen's).
  Other gaps under 1 ms are waited out on the clock (a sleep that short overshoots by tens
  of us; the clock loop yields the CPU and the interpreter lock between readings).
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
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from sim.errors import InputError
from sim.validate.config import HarnessConfig
from sim.validate.machine import CpuMonitor, ForeignMeter, _current_niceness, wait_quiet
from sim.validate.sut import WorkerSUT, make_executors

GAPS_NS = (30_000.0, 200_000.0, 2_000_000.0, 20_000_000.0, 60_000_000.0, 200_000_000.0)
SPIN_BELOW_NS = 1_000_000.0     # shorter gaps are waited out on the clock, not slept
CLOSED_LOOP_GAP_NS = GAPS_NS[0]  # the closed-loop gap: no wait beyond the issuer's own wake-up
MS_BATCH = 8
IDLE_LONG_S = 10.0                 # idle segments at the closed-loop gaps (batch 1 and MS_BATCH)
IDLE_SHORT_S = 1.5                 # idle segments at the longer gaps (batch 1)
IDLE_MAX_REPS = 2000               # most batches of one long idle segment
BUSY_PASSES = 3                    # busy times: passes over the batch sizes (see measure_service)
BUSY_S = 4.5                       # busy times: seconds per batch size, over all passes
BUSY_MIN_BATCHES = 30              # busy times: fewest cycles per batch size, over all passes
BUSY_MAX_BATCHES = 1200            # busy times: most cycles per batch size, over all passes
TRAFFIC_LOADS = (0.25, 0.5, 0.75)  # issue rates, as fractions of the max-batch capacity
TRAFFIC_REFERENCE_MAX = 4          # busy cycles of batches 1..this bracket each traffic segment


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
        if gap_ns > CLOSED_LOOP_GAP_NS:
            wait_ns(gap_ns)
        # else: the next batch goes as soon as this thread wakes from its wait for the results,
        # as LoadGen's closed loop issues the next query (no thread spins meanwhile)
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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m sim.validate.service_times SPEC.json", file=sys.stderr)
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

