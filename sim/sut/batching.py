"""Batching policies: when to send which queued samples to a free instance.

The queue is a window ``[head, known)`` of the arrival-time array (samples leave the
queue in arrival order, so every batch is a contiguous range of samples). When an
instance is free, the batcher asks its policy to ``decide``; the answer is either a
batch (dispatch time, sample count) or "wait until this time or the next arrival,
then ask again". Because arrival times already known are in the array, a policy can
compute the exact time a batch fills without one event per arriving sample.

- ``NoBatching``: one sample per batch, as soon as it is queued.
- ``FixedBatch(B)``: waits for B samples; sends a short batch only when no further sample
  can arrive (end of an open-loop stream, or a closed loop whose issued samples are all
  queued).
- ``DynamicBatch(max_batch, max_queue_delay_ns, preferred)``: sends as soon as ``target``
  samples are queued (the largest preferred size, else ``max_batch``), or when the oldest
  queued sample has waited ``max_queue_delay_ns``; at that deadline it sends the largest
  preferred size not above the queue length (or the whole queue, up to ``max_batch``, when
  no preferred size fits), as Triton's dynamic batcher does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

INF = math.inf


@dataclass
class QueueView:
    arrival_ns: np.ndarray    # arrival time of every sample (valid below ``known``)
    head: int                 # first queued (not yet dispatched) sample
    known: int                # samples whose arrival time is known
    more_possible: bool       # can samples beyond ``known`` still arrive?

    def count_by(self, t: float, limit: int) -> int:
        """Samples in the queue that arrived by time ``t``, at most ``limit``."""
        hi = min(self.known, self.head + limit)
        return int(np.searchsorted(self.arrival_ns[self.head:hi], t, side="right"))


class NoBatching:
    max_batch = 1

    def decide(self, q: QueueView, now: float):
        return ("dispatch", max(now, float(q.arrival_ns[q.head])), 1)


class FixedBatch:
    def __init__(self, batch: int):
        self.max_batch = batch

    def decide(self, q: QueueView, now: float):
        b = self.max_batch
        if q.head + b <= q.known:
            return ("dispatch", max(now, float(q.arrival_ns[q.head + b - 1])), b)
        if q.more_possible:
            return ("wait", INF)
        return ("dispatch", max(now, float(q.arrival_ns[q.known - 1])), q.known - q.head)


class DynamicBatch:
    def __init__(self, max_batch: int, max_queue_delay_ns: float, preferred: tuple[int, ...] = ()):
        self.max_batch = max_batch
        self.delay_ns = float(max_queue_delay_ns)
        self.preferred = tuple(sorted(preferred))
        self.target = self.preferred[-1] if self.preferred else max_batch

    def _shrink(self, count: int) -> int:
        fits = [p for p in self.preferred if p <= count]
        return fits[-1] if fits else count

    def decide(self, q: QueueView, now: float):
        deadline = float(q.arrival_ns[q.head]) + self.delay_ns
        full_at = float(q.arrival_ns[q.head + self.target - 1]) if q.head + self.target <= q.known else INF
        if full_at <= deadline:
            return ("dispatch", max(now, full_at), self.target)
        if deadline > now and q.more_possible:
            return ("wait", deadline)
        t = max(now, deadline)
        return ("dispatch", t, self._shrink(q.count_by(t, self.max_batch)))


def make_policy(spec):
    """The policy object for a ``sim.sut.system.BatchingSpec``."""
    if spec.policy == "none":
        return NoBatching()
    if spec.policy == "fixed":
        return FixedBatch(spec.max_batch)
    return DynamicBatch(spec.max_batch, spec.max_queue_delay_ns, spec.preferred_batch_sizes)
