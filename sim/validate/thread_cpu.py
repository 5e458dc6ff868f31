"""Where a harness process spends its CPU during a LoadGen test (``ThreadCensus``).

A real run shares the machine's cores between the model's intra-op threads, the SUT's
worker threads and LoadGen's own threads (the one that issues queries, the one that
writes its logs). ``ThreadCensus`` reads each thread's CPU time (``/proc/self/task/<tid>/
schedstat``, in ns) before and after the test, and the whole process's
(``time.process_time_ns``, which keeps the time of threads that ended):

- ``workers_ns``: the SUT's worker threads (by their native ids);
- ``main_ns``: the thread that called LoadGen's ``StartTest``;
- ``pool_ns``: threads that were there before the test and are none of those (the model's
  intra-op thread pool, the CPU monitor);
- ``loadgen_threads_ns``: the rest: threads born during the test (LoadGen's).

With a model that only sleeps (``sim.validate.loadgen_overhead``), ``main_ns +
loadgen_threads_ns`` per query is what LoadGen's own work costs the machine's cores, and
``workers_ns`` per sample the SUT's host work. Linux only; elsewhere ``available`` is False
and ``stop`` returns None.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

_TASKS = Path("/proc/self/task")


def thread_cpu_ns() -> dict[int, int]:
    """CPU time (ns) of every thread of this process, by native thread id."""
    out = {}
    for entry in os.scandir(_TASKS):
        try:
            out[int(entry.name)] = int((_TASKS / entry.name / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue                    # the thread ended meanwhile
    return out


class ThreadCensus:
    """CPU time of the process's threads over a LoadGen test (see the module docstring)."""

    def __init__(self):
        self.available = _TASKS.is_dir()
        self._before: dict[int, int] = {}
        self._total0 = 0
        self._main = threading.get_native_id()

    def start(self) -> "ThreadCensus":
        if self.available:
            self._before = thread_cpu_ns()
            self._total0 = time.process_time_ns()
        return self

    def stop(self, worker_ids) -> dict | None:
        if not self.available:
            return None
        total = time.process_time_ns() - self._total0
        after = thread_cpu_ns()
        workers = set(int(w) for w in worker_ids)
        known = {t: after[t] - self._before[t] for t in after if t in self._before}
        workers_ns = sum(v for t, v in known.items() if t in workers)
        main_ns = known.get(self._main, 0)
        pool_ns = sum(v for t, v in known.items() if t not in workers and t != self._main)
        return {"total_ns": int(total), "workers_ns": int(workers_ns), "main_ns": int(main_ns),
                "pool_ns": int(pool_ns),
                "loadgen_threads_ns": int(max(0, total - workers_ns - main_ns - pool_ns))}
