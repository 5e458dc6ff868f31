"""Scheduler stalls: rare, long interruptions of a run, modelled as a process in time.

When a model's intra-op threads fill every core of the CPU, its parallel operators wait for
their slowest thread. If anything else needs a core meanwhile (a kernel thread, a timer,
another process, the load generator's own threads), one of those threads is put aside, and
the thread waiting for it keeps spinning on the core it would need: the run stands still
until the scheduler's next tick (4 ms at 250 Hz) gives the core back. On this project's
2-core machine such stalls come 1 to 3 times a second of busy time when the machine is quiet,
each 1 to 9 ms long; a model of 0.07 ms per sample sees one in thousands of runs, a model of
70 ms in a few.

Measured service times hold them as a far tail: a few samples many times the median. Drawn
from a table as they are, they make every percentile above one minus their share wrong for
sums of runs: a calibration table of 1,200 runs of 0.09 ms (0.1 s) that caught two stalls
gives each run a 0.17% chance of one, where the rate over all of the calibration's 0.8 s of
runs is 2.6 a second (a 0.02% chance for such a run). So they are taken out of the tables
(``split``) and put back as a process in time (``StallProcess``): a run of ``t`` seconds
meets ``Poisson(rate_per_s * t)`` stalls, each as long as one of the measured stalls'
excesses over their table's median. The rate is estimated over every table at once
(``rate_per_s`` = stalls / seconds of runs measured), the only way to see a rate of a few a
second in a calibration of seconds.

A sample counts as a stall where it exceeds ``STALL_FACTOR`` times its table's median and
``STALL_MIN_NS`` (no tick is shorter): a model whose runs are so long that a stall hides in
their ordinary spread keeps its tables as measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

STALL_FACTOR = 4.0              # a stall: more than this many times its table's median ...
STALL_MIN_NS = 1_000_000.0      # ... and longer than this (a scheduler tick is 1 to 10 ms)


def stall_threshold_ns(median_ns: float) -> float:
    """The time above which a run of a table with this median is counted as a stall."""
    return max(STALL_MIN_NS, STALL_FACTOR * float(median_ns))


@dataclass(frozen=True)
class StallProcess:
    """Stalls at ``rate_per_s`` per second of run time, each adding one of ``excess_ns``
    (sorted, drawn uniformly)."""
    rate_per_s: float
    excess_ns: np.ndarray
    seconds_measured: float = 0.0

    @property
    def count(self) -> int:
        return int(self.excess_ns.size)

    def extra_ns(self, run_ns: float, rng) -> float:
        """The stall time a run of ``run_ns`` meets (0 most of the time): one draw of ``rng``, and
        one more per stall."""
        if self.rate_per_s <= 0 or not self.excess_ns.size:
            return 0.0
        mean = self.rate_per_s * run_ns / 1e9
        u = float(rng.random())
        n, p = 0, math.exp(-mean)
        cdf = p
        while u > cdf and n < 50:       # Poisson's inverse distribution; ``mean`` is small
            n += 1
            p *= mean / n
            cdf += p
        size = self.excess_ns.size
        return float(sum(self.excess_ns[min(size - 1, int(float(rng.random()) * size))] for _ in range(n)))

    def describe(self) -> str:
        if not self.count:
            return f"no stall in {self.seconds_measured:.2f} s of runs"
        return (f"{self.count} stalls in {self.seconds_measured:.2f} s of runs ({self.rate_per_s:.1f}/s, "
                f"median {np.median(self.excess_ns) / 1e6:.2f} ms)")


def split(tables: dict) -> tuple[dict, StallProcess]:
    """``tables`` (key -> sorted samples, ns) without their stalls, and the stall process they
    held. A table keeps at least half of its samples (a table that is mostly "stalls" is a
    slow table, not stalls)."""
    clean, excess, seconds, count = {}, [], 0.0, 0
    for key, samples in tables.items():
        arr = np.asarray(samples, dtype=np.float64)
        seconds += float(arr.sum()) / 1e9
        med = float(np.median(arr))
        stalled = arr > stall_threshold_ns(med)
        if stalled.sum() * 2 > arr.size:
            clean[key] = arr
            continue
        clean[key] = arr[~stalled]
        excess.extend((arr[stalled] - med).tolist())
        count += int(stalled.sum())
    rate = count / seconds if seconds > 0 else 0.0
    return clean, StallProcess(rate, np.sort(np.asarray(excess, dtype=np.float64)), seconds)
