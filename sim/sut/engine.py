"""The simulation run: LoadGen's queries through the modelled system under test.

Two ways queries enter:

- Open loop (Server, Offline): every query's scheduled time is known before the run.
  The host stages in front of the batcher (LoadGen's issue thread, pre-processing) are
  first-come-first-served with fixed costs, so their output times are computed for the
  whole array at once (``sim.sut.stages``). The batcher, the instances, the link and
  post-processing are SimPy processes that handle whole batches: the number of events
  grows with batches, not queries.
- Closed loop (SingleStream, MultiStream): a source process issues the next query when
  the previous one completes, until the scenario's stop rule says enough.

Samples leave the single queue in arrival order, so each batch is a contiguous range of
samples; per-sample completion times are filled in from the batch log at the end.
All times are nanoseconds on SimPy's clock (float64 holding whole numbers, exact below
2**53 ns = 104 days).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import simpy

from sim.cost.protocol import CostModel
from sim.sut.batching import INF, QueueView, make_policy
from sim.sut.device import Devices
from sim.sut.stages import FifoStage
from sim.sut.system import SystemSpec

BATCH_FIELDS = ("first", "count", "device", "instance", "dispatch_ns", "start_ns", "end_ns", "done_ns")


@dataclass
class EngineResult:
    """Per-query and per-sample times of one simulated run, plus the batch log."""
    samples_per_query: int
    query_scheduled_ns: np.ndarray          # int64, one per query, issue order
    query_complete_ns: np.ndarray           # int64, last sample's completion
    sample_complete_ns: np.ndarray          # int64, one per sample, issue order
    batches: dict = field(default_factory=dict)   # BATCH_FIELDS -> arrays, in completion order

    @property
    def query_latency_ns(self) -> np.ndarray:
        return self.query_complete_ns - self.query_scheduled_ns


class Engine:
    def __init__(self, system: SystemSpec, cost: CostModel, seed: int = 0):
        self.system = system
        self.env = simpy.Environment()
        self.rng = np.random.default_rng(seed)
        self.policy = make_policy(system.batching)
        self.issue = FifoStage(1, system.issue_overhead_ns)
        pre = system.preprocess
        self.pre = FifoStage(pre.workers, pre.time_ns_per_sample) if pre and pre.time_ns_per_sample else None
        self._log: list[tuple] = []
        self.devices = Devices(self.env, system, cost, self.rng, self._log_batch)
        self.arrival = np.empty(0)
        self.known = 0
        self.head = 0
        self.closed = False
        self.source_done = True
        self._signal: simpy.Event | None = None
        self._pending = 0
        self._query_done: simpy.Event | None = None

    # ---- shared pieces ------------------------------------------------------
    def _log_batch(self, *row) -> None:
        self._log.append(row)

    def _wake(self) -> None:
        if self._signal is not None and not self._signal.triggered:
            self._signal.succeed()

    def _wait_signal(self) -> simpy.Event:
        self._signal = self.env.event()
        return self._signal

    def _on_done(self, first: int, count: int) -> None:
        if self.closed:
            self._pending -= count
            if self._pending == 0 and self._query_done is not None:
                self._query_done.succeed()
            self._wake()

    def _more_possible(self) -> bool:
        return self.closed and not self.source_done and self.devices.in_flight > 0

    def _sample_arrivals(self, query_issue_ns: np.ndarray, samples_per_query: int) -> np.ndarray:
        t = self.issue.apply(query_issue_ns)
        if samples_per_query > 1:
            t = np.repeat(t, samples_per_query)
        return self.pre.apply(t) if self.pre is not None else t

    # ---- the batcher ----------------------------------------------------------
    def _batcher(self):
        env, dev, policy = self.env, self.devices, self.policy
        while True:
            inst = dev.free.take()
            while inst is None:
                yield dev.free.wait()
                inst = dev.free.take()
            while True:
                h = self.head
                if h >= self.known:
                    if not self.closed or self.source_done:
                        dev.free.put(inst)
                        return
                    yield self._wait_signal()
                    continue
                a = self.arrival[h]
                if a > env.now:
                    yield env.timeout(a - env.now)
                    continue
                view = QueueView(self.arrival, h, self.known, self._more_possible())
                decision = policy.decide(view, env.now)
                if decision[0] == "wait":
                    events = [self._wait_signal()]
                    if decision[1] < INF:
                        events.append(env.timeout(decision[1] - env.now))
                    yield env.any_of(events)
                    continue
                _, t, count = decision
                if t > env.now:
                    yield env.timeout(t - env.now)
                self.head = h + count
                dev.dispatch(inst, h, count, self._on_done)
                break

    # ---- sources --------------------------------------------------------------
    def run_open(self, query_scheduled_ns: np.ndarray, samples_per_query: int = 1) -> EngineResult:
        """Server (one sample per query) or Offline (one query of many samples)."""
        sched = np.asarray(query_scheduled_ns, dtype=np.int64)
        # a scheduled query reaches the SUT late by the scheduler's wake-up delay (not queued)
        delay = float(getattr(self.system, "schedule_delay_ns", 0.0))
        self.arrival = self._sample_arrivals(sched.astype(np.float64) + delay, samples_per_query)
        self.known = len(self.arrival)
        self.closed = False
        self.env.process(self._batcher())
        self.env.run()
        self.arrival = np.empty(0)            # release before the per-sample result is built
        sample_complete = self._sample_completions(self.known)
        if samples_per_query == 1:
            query_complete = sample_complete
        else:
            query_complete = sample_complete.reshape(-1, samples_per_query).max(axis=1)
        return EngineResult(samples_per_query, sched, query_complete, sample_complete, self._batch_arrays())

    def run_closed(self, samples_per_query: int, max_queries: int,
                   stop: Callable[[int, int], bool]) -> EngineResult:
        """SingleStream / MultiStream: issue the next query when the previous completes.

        ``stop(queries_issued, last_issue_ns)`` is asked after each completion.
        """
        self.closed = True
        self.source_done = False
        self.arrival = np.empty(max(1024, samples_per_query * 64))
        sched: list[float] = []
        done: list[float] = []
        env = self.env

        def source():
            for q in range(max_queries):
                t = env.now
                sched.append(t)
                arr = self._sample_arrivals(np.array([t]), samples_per_query)
                if self.known + samples_per_query > len(self.arrival):
                    self.arrival = np.resize(self.arrival, 2 * len(self.arrival) + samples_per_query)
                self.arrival[self.known:self.known + samples_per_query] = arr
                self.known += samples_per_query
                self._pending = samples_per_query
                self._query_done = env.event()
                self._wake()
                yield self._query_done
                done.append(env.now)
                if stop(q + 1, int(t)):
                    break
            self.source_done = True
            self._wake()

        env.process(source())
        env.process(self._batcher())
        env.run()
        sample_complete = self._sample_completions(self.known)
        return EngineResult(samples_per_query, np.array(sched, dtype=np.int64), np.array(done, dtype=np.int64),
                            sample_complete, self._batch_arrays())

    # ---- results --------------------------------------------------------------
    def _batch_arrays(self) -> dict:
        if not self._log:
            return {k: np.zeros(0, dtype=np.int64) for k in BATCH_FIELDS}
        cols = list(zip(*self._log))
        return {k: np.asarray(c, dtype=np.int64) for k, c in zip(BATCH_FIELDS, cols)}

    def _sample_completions(self, n: int) -> np.ndarray:
        if not self._log:
            return np.zeros(0, dtype=np.int64)
        first = np.fromiter((r[0] for r in self._log), dtype=np.int64, count=len(self._log))
        order = np.argsort(first, kind="stable")
        count = np.fromiter((r[1] for r in self._log), dtype=np.int64, count=len(self._log))[order]
        done = np.fromiter((r[7] for r in self._log), dtype=np.float64, count=len(self._log))[order]
        if count.sum() != n:
            raise RuntimeError(f"internal error: {count.sum()} samples completed of {n} issued")
        return np.repeat(done.astype(np.int64), count)


def simulate_open(system: SystemSpec, cost: CostModel, query_scheduled_ns: np.ndarray, samples_per_query: int = 1,
                  seed: int = 0) -> EngineResult:
    return Engine(system, cost, seed).run_open(query_scheduled_ns, samples_per_query)


def simulate_closed(system: SystemSpec, cost: CostModel, samples_per_query: int, max_queries: int,
                    stop: Callable[[int, int], bool], seed: int = 0) -> EngineResult:
    return Engine(system, cost, seed).run_closed(samples_per_query, max_queries, stop)
