"""A reference model of the same system with one SimPy process per query.

This is how one would first write the model: every query is a process that waits for
its scheduled time, queues for LoadGen's issue thread and the pre-processing workers
(SimPy resources), joins the batch queue and waits for its own completion event; the
batcher wakes on every arrival. It is slow, and that is the point: the fast engine
(``sim.sut.engine``) must give the same latencies, and ``benchmarks/engine_speed.py``
times both. Open loop only (Server, Offline).
"""

from __future__ import annotations

import numpy as np
import simpy

from sim.sut.batching import DynamicBatch
from sim.sut.device import Devices
from sim.sut.engine import EngineResult


def simulate_open_naive(system, cost, query_scheduled_ns, samples_per_query: int = 1, seed: int = 0) -> EngineResult:
    env = simpy.Environment()
    rng = np.random.default_rng(seed)
    sched = np.asarray(query_scheduled_ns, dtype=np.int64)
    n_samples = len(sched) * samples_per_query
    issue = simpy.Resource(env, 1)
    pre_spec = system.preprocess
    pre = simpy.Resource(env, pre_spec.workers) if pre_spec and pre_spec.time_ns_per_sample else None
    queue: list[int] = []
    arrival_time = np.zeros(n_samples)
    done_time = np.zeros(n_samples)
    state = {"arrived": 0, "signal": env.event()}
    log: list[tuple] = []
    devices = Devices(env, system, cost, rng, lambda *row: log.append(row))

    def signal():
        if not state["signal"].triggered:
            state["signal"].succeed()

    def on_done(first, count):
        for i in range(first, first + count):
            done_events[i].succeed()

    done_events = [env.event() for _ in range(n_samples)]

    def sample(i):
        if pre is not None:
            with pre.request() as req:
                yield req
                yield env.timeout(pre_spec.time_ns_per_sample)
        arrival_time[i] = env.now
        queue.append(i)
        state["arrived"] += 1
        signal()
        yield done_events[i]
        done_time[i] = env.now

    def query(q):
        yield env.timeout(float(sched[q]))
        if system.issue_overhead_ns:
            with issue.request() as req:
                yield req
                yield env.timeout(system.issue_overhead_ns)
        for k in range(samples_per_query):
            env.process(sample(q * samples_per_query + k))

    pol = system.batching

    def take(count):
        first = queue[0]
        del queue[:count]
        return first

    def batcher():
        while True:
            inst = devices.free.take()
            while inst is None:
                yield devices.free.wait()
                inst = devices.free.take()
            while True:
                if not queue:
                    if state["arrived"] == n_samples:
                        devices.free.put(inst)
                        return
                    state["signal"] = env.event()
                    yield state["signal"]
                    continue
                all_in = state["arrived"] == n_samples
                if pol.policy == "none":
                    count = 1
                elif pol.policy == "fixed":
                    if len(queue) < pol.max_batch and not all_in:
                        state["signal"] = env.event()
                        yield state["signal"]
                        continue
                    count = min(len(queue), pol.max_batch)
                else:
                    dyn = DynamicBatch(pol.max_batch, pol.max_queue_delay_ns, pol.preferred_batch_sizes)
                    deadline = arrival_time[queue[0]] + dyn.delay_ns
                    if len(queue) >= dyn.target:
                        count = dyn.target
                    elif env.now >= deadline:
                        count = dyn._shrink(min(len(queue), dyn.max_batch))
                    else:
                        state["signal"] = env.event()
                        yield env.any_of([state["signal"], env.timeout(deadline - env.now)])
                        continue
                first = take(count)
                devices.in_flight += 1
                env.process(devices.serve(inst, first, count, env.now, on_done))
                break

    for q in range(len(sched)):
        env.process(query(q))
    env.process(batcher())
    env.run()
    sample_complete = done_time.astype(np.int64)
    query_complete = (sample_complete if samples_per_query == 1
                      else sample_complete.reshape(-1, samples_per_query).max(axis=1))
    return EngineResult(samples_per_query, sched, query_complete, sample_complete, {})


__all__ = ["simulate_open_naive"]
