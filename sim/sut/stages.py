"""First-come-first-served host stages in front of the batcher.

A stage has ``workers`` identical workers and a fixed time per item (LoadGen's issue
thread is a one-worker stage; pre-processing has its own pool). Items leave such a stage
in the order they came, and item ``i`` is served by the worker that served item
``i - workers``, so its finish time obeys Lindley's recursion with lag ``workers``::

    finish[i] = max(arrive[i], finish[i - workers]) + service

Written as ``u[k] = max(u[k-1], arrive[k] - k*service)`` on each residue class, it is a
running maximum, so whole arrays are served with numpy instead of one event per query.
The result equals what a SimPy model with one process per query computes (the tests
check this against ``sim.sut.naive``). The stage keeps its state between calls, so a
closed loop can push one query at a time.
"""

from __future__ import annotations

import numpy as np


class FifoStage:
    def __init__(self, workers: int, service_ns: float):
        if workers < 1:
            raise ValueError("a stage needs at least one worker")
        self.workers = int(workers)
        self.service_ns = float(service_ns)
        self._free_at = np.full(self.workers, -np.inf)   # finish time of the last item per residue
        self._count = 0

    def apply(self, arrive_ns: np.ndarray) -> np.ndarray:
        """Finish times of items arriving at ``arrive_ns`` (sorted ascending)."""
        arrive_ns = np.asarray(arrive_ns, dtype=np.float64)
        n = len(arrive_ns)
        if self.service_ns == 0.0 or n == 0:
            self._count += n
            return arrive_ns
        s, w = self.service_ns, self.workers
        out = np.empty(n, dtype=np.float64)
        for r in range(min(w, n)):
            residue = (self._count + r) % w
            sub = arrive_ns[r::w]
            k = np.arange(len(sub), dtype=np.float64) * s
            u = np.maximum.accumulate(sub - k)
            np.maximum(u, self._free_at[residue], out=u)
            u += k
            u += s
            out[r::w] = u
            self._free_at[residue] = u[-1]
        self._count += n
        return out
