"""Accelerators: instances that run batches, and the link that feeds them.

Each of the K accelerators has M instances (concurrent execution contexts); an instance
runs one batch at a time. A batch's life on a device is: host-to-device copy over the
device's link (one transfer at a time per direction), compute for the cost model's
service time, device-to-host copy; the instance is then free again, and the batch goes
on to host post-processing (a pool of workers). An instance that has been without work
for ``idle_after_ns`` is idle, and its next batch pays the cost model's wake-up time.
The cost model follows ``sim.cost.protocol``: the engine asks the most specific
capability it has (the time told when the batch starts, the time in context of the gap
since the instance's last batch and of the batches in compute at once, or the plain time
with the idle flag), chosen once per run; a run-bound model is bound to the run first.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Callable

import numpy as np
import simpy

from sim.cost.protocol import ContextCost, CostModel, RunBoundCost, TimedCost
from sim.sut.system import SystemSpec


class Instance:
    __slots__ = ("device", "index", "last_end_ns")

    def __init__(self, device: int, index: int):
        self.device = device
        self.index = index
        self.last_end_ns = -math.inf


class InstancePool:
    """Free instances, first freed first used.

    The batcher ``take``s one; when none is free it waits on ``wait()``, which the next
    ``put`` triggers. (A ``simpy.Store`` does the same with two events per batch.)
    """

    def __init__(self, env: simpy.Environment, instances: list[Instance]):
        self.env = env
        self.items: deque[Instance] = deque(instances)
        self._waiter: simpy.Event | None = None

    def take(self) -> Instance | None:
        return self.items.popleft() if self.items else None

    def wait(self) -> simpy.Event:
        self._waiter = self.env.event()
        return self._waiter

    def put(self, inst: Instance) -> None:
        self.items.append(inst)
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            waiter.succeed()


class Devices:
    """The accelerators of one system, their links and the post-processing pool."""

    def __init__(self, env: simpy.Environment, system: SystemSpec, cost: CostModel, rng: np.random.Generator,
                 record: Callable[..., None]):
        self.env = env
        self.system = system
        self.cost = cost.for_run(rng) if isinstance(cost, RunBoundCost) else cost
        self._time = _time_function(self.cost)
        self.rng = rng
        self.record = record          # record(first, count, device, instance, dispatch, start, end, done)
        self.link = system.link
        self.idle_after_ns = system.idle_after_ns
        self.instances = [Instance(d, i) for i in range(system.instances) for d in range(system.accelerators)]
        self.free = InstancePool(env, self.instances)
        if self.link is not None:
            self.h2d = [simpy.Resource(env, 1) for _ in range(system.accelerators)]
            self.d2h = [simpy.Resource(env, 1) for _ in range(system.accelerators)]
        post = system.postprocess
        self.post = simpy.Resource(env, post.workers) if post is not None else None
        self.in_flight = 0
        self.computing = 0            # batches in compute now (for context-dependent costs)

    def dispatch(self, inst: Instance, first: int, count: int, on_done) -> None:
        """Start a batch on ``inst`` now. Without a link or post-processing the batch is one
        timeout with a callback; otherwise a ``serve`` process."""
        self.in_flight += 1
        if self.link is not None or self.post is not None:
            self.env.process(self.serve(inst, first, count, self.env.now, on_done))
            return
        env = self.env
        start = env.now
        self.computing += 1
        done = env.timeout(self._service_ns(inst, count, start))

        def finish(_event, inst=inst):
            end = env.now
            inst.last_end_ns = end
            self.free.put(inst)
            self.in_flight -= 1
            self.computing -= 1
            self.record(first, count, inst.device, inst.index, start, start, end, end)
            on_done(first, count)

        done.callbacks.append(finish)

    def _service_ns(self, inst: Instance, count: int, start: float) -> float:
        """The cost model's time for a batch starting at ``start`` on ``inst``."""
        return self._time(self, count, start - inst.last_end_ns, start)

    def _transfer(self, lanes, device: int, nbytes: int):
        with lanes[device].request() as req:
            yield req
            yield self.env.timeout(self.link.transfer_ns(nbytes))

    def serve(self, inst: Instance, first: int, count: int, dispatch_ns: float, on_done):
        """Process: one batch of samples ``[first, first+count)`` on ``inst``."""
        env = self.env
        if self.link is not None and self.link.input_bytes_per_sample:
            yield from self._transfer(self.h2d, inst.device, count * self.link.input_bytes_per_sample)
        start = env.now
        self.computing += 1
        yield env.timeout(self._service_ns(inst, count, start))
        self.computing -= 1
        if self.link is not None and self.link.output_bytes_per_sample:
            yield from self._transfer(self.d2h, inst.device, count * self.link.output_bytes_per_sample)
        end = env.now
        inst.last_end_ns = end
        self.free.put(inst)
        if self.post is not None:
            post = self.system.postprocess
            with self.post.request() as req:
                yield req
                yield env.timeout(post.time_ns_per_batch + post.time_ns_per_sample * count)
        self.in_flight -= 1
        self.record(first, count, inst.device, inst.index, dispatch_ns, start, end, env.now)
        on_done(first, count)


def _time_function(cost: CostModel) -> Callable[[Devices, int, float, float], float]:
    """The one question the engine asks ``cost`` for every batch: its most specific capability."""
    if isinstance(cost, TimedCost):
        at = cost.service_time_at_ns
        return lambda dev, count, gap, start: at(count, gap, dev.computing, dev.rng, start)
    if isinstance(cost, ContextCost):   # depends on the gap and on neighbours
        in_context = cost.service_time_in_context_ns
        return lambda dev, count, gap, start: in_context(count, gap, dev.computing, dev.rng)
    if not isinstance(cost, CostModel):
        raise TypeError(f"{type(cost).__name__} is not a cost model: expected service_time_ns and describe "
                        "(sim.cost.protocol.CostModel)")
    plain = cost.service_time_ns
    return lambda dev, count, gap, start: plain(count, gap > dev.idle_after_ns, dev.rng)
