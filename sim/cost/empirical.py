"""An empirical cost model: service times resampled from measured ones.

A fixed service time per batch size makes every percentile the same; a real CPU's
service times vary from run to run, and depend on what the instance did just before:

- *busy*: the instance takes its next batch straight after the last one (the queue was not
  empty). Its time is the completion-to-completion cycle of back-to-back batches, which
  includes the worker's own overhead (taking the batch from the queue, gathering inputs,
  building responses).
- *idle*: the instance waited for work. Its time runs from the moment the work was handed
  over to the moment the results are ready, so it includes waking the worker thread and
  whatever went cold (the intra-op thread pool stops spinning and parks, caches cool).
  How much that costs depends on how long it waited, so idle times are kept per *gap*
  (measured after a few idle gaps; a batch uses the measured gap nearest in log scale).
- *concurrency*: several instances on one CPU share its cores, caches and memory
  bandwidth, so busy times are kept per number of batches in compute at once (measured
  with 1 and with all instances busy; the nearest measured level is used).

``EmpiricalCost(busy, idle)`` takes the measured samples (ns) keyed ``(batch, concurrency)``
and ``(batch, gap_ns)``. Between measured batch sizes a draw interpolates the two
neighbours' quantile functions at the same random quantile; a batch outside the measured
range is an error (no calibration data). An idle batch size without its own measurement
is its busy draw shifted by the batch-1 idle penalty (median idle minus median busy).

The engine asks ``service_time_in_context_ns(batch, gap_ns, computing, rng)`` (see
``sim.sut.device``); ``service_time_ns(batch, idle, rng)`` answers the plain interface
(idle at the shortest measured gap, no concurrency). Draws use the run's seeded
generator, so a simulated run is reproducible bit for bit.
"""

from __future__ import annotations

import bisect
import math

import numpy as np

from sim.cost.stalls import StallProcess, split
from sim.errors import InputError

SCHEMA = "sim.empirical_cost/1"


def _sorted_samples(values, what: str, source: str) -> np.ndarray:
    arr = np.sort(np.asarray(values, dtype=np.float64))
    if arr.size == 0 or not np.all(np.isfinite(arr)) or arr[0] <= 0:
        raise InputError(f"{source}: {what}: expected a non-empty list of positive times (ns)")
    return arr


def _ratios(values, what: str, source: str) -> np.ndarray:
    r = np.asarray(values, dtype=np.float64)
    if r.size == 0 or not np.all(np.isfinite(r) & (r > 0)):
        bad = r[~(np.isfinite(r) & (r > 0))]
        raise InputError(f"{source}: {what}: expected positive numbers, got {r.size} values"
                         + (f", {bad.size} of them not (first: {bad[0]!r})" if bad.size else ""))
    return r


class EmpiricalCost:
    random = True

    def __init__(self, busy: dict, idle: dict, source: str = "empirical cost", idle_after_ns: float = 0.0,
                 stalls: StallProcess | None = None):
        self.source = source
        self.stalls = stalls
        self.idle_after_ns = float(idle_after_ns)
        self.busy = {(int(b), int(c)): _sorted_samples(v, f"busy batch {b} concurrency {c}", source)
                     for (b, c), v in busy.items()}
        self.idle = {(int(b), float(g)): _sorted_samples(v, f"idle batch {b} gap {g} ns", source)
                     for (b, g), v in idle.items()}
        if not self.busy:
            raise InputError(f"{source}: no busy service times; expected at least batch 1 at concurrency 1")
        self.batch_sizes = tuple(sorted({b for b, _ in self.busy}))
        self.levels = tuple(sorted({c for _, c in self.busy}))
        for b in self.batch_sizes:
            for c in self.levels:
                if (b, c) not in self.busy:
                    raise InputError(f"{source}: busy times for batch {b} at concurrency {c} are missing; "
                                     f"expected every batch size at every concurrency level")
        self.gaps = tuple(sorted({g for _, g in self.idle}))
        if 1 not in self.batch_sizes or not any(b == 1 for b, _ in self.idle):
            raise InputError(f"{source}: expected busy and idle times at batch size 1")
        lo = self.levels[0]
        self._idle_penalty = {g: float(np.median(self.idle[(1, g)]) - np.median(self.busy[(1, lo)]))
                              for g in self.gaps if (1, g) in self.idle}

    # ---- drawing ------------------------------------------------------------------
    @staticmethod
    def _quantile(arr: np.ndarray, u: float) -> float:
        return float(arr[min(arr.size - 1, int(u * arr.size))])

    def _check_batch(self, batch) -> int:
        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch <= 0:
            raise InputError(f"{self.source}: batch size {batch!r}: expected an integer >= 1")
        batch = int(batch)
        lo, hi = self.batch_sizes[0], self.batch_sizes[-1]
        if batch < lo or batch > hi:
            raise InputError(f"{self.source}: batch {batch} outside the measured range [{lo}, {hi}]; "
                             f"calibrate with a larger max batch")
        return batch

    def _busy_draw(self, batch: int, level: int, u: float) -> float:
        sizes = self.batch_sizes
        k = bisect.bisect_left(sizes, batch)
        if sizes[k] == batch:
            return self._quantile(self.busy[(batch, level)], u)
        b0, b1 = sizes[k - 1], sizes[k]
        w = (batch - b0) / (b1 - b0)
        return (1 - w) * self._quantile(self.busy[(b0, level)], u) + w * self._quantile(self.busy[(b1, level)], u)

    def _nearest_gap(self, gap_ns: float, batch: int | None = None) -> float:
        gaps = [g for b, g in self.idle if batch is None or b == batch] or list(self.gaps)
        if math.isinf(gap_ns):
            return max(gaps)
        lg = math.log(max(gap_ns, 1.0))
        return min(gaps, key=lambda g: (abs(math.log(g) - lg), g))

    def _nearest_level(self, computing: int) -> int:
        return min(self.levels, key=lambda c: (abs(c - computing), c))

    def service_time_in_context_ns(self, batch, gap_ns: float, computing: int = 1, rng=None) -> float:
        if rng is None:
            raise ValueError("EmpiricalCost needs the run's random generator")
        batch = self._check_batch(batch)
        u = float(rng.random())
        if gap_ns <= self.idle_after_ns:
            value = self._busy_draw(batch, self._nearest_level(computing), u)
        else:
            gap = self._nearest_gap(gap_ns, batch)
            if (batch, gap) in self.idle:
                value = self._quantile(self.idle[(batch, gap)], u)
            else:
                gap = self._nearest_gap(gap_ns, 1)
                value = self._busy_draw(batch, self.levels[0], u) + self._idle_penalty[gap]
        if self.stalls is not None:
            value += self.stalls.extra_ns(value, rng)
        return float(max(1.0, math.ceil(value)))      # whole ns keep simulated times exact

    def service_time_ns(self, batch, idle: bool = False, rng=None) -> float:
        gap = min(self.gaps) if idle and self.gaps else 0.0
        return self.service_time_in_context_ns(batch, gap if idle else self.idle_after_ns, 1, rng)

    # ---- summaries ------------------------------------------------------------------
    def median_ns(self, batch: int, idle: bool = False, concurrency: int = 1) -> float:
        if idle:
            gap = self._nearest_gap(min(self.gaps), batch)
            if (batch, gap) in self.idle:
                return float(np.median(self.idle[(batch, gap)]))
            return float(np.median(self.busy[(batch, self.levels[0])])) + self._idle_penalty[min(self.gaps)]
        return float(np.median(self.busy[(batch, self._nearest_level(concurrency))]))

    def describe(self) -> str:
        sizes = ",".join(str(b) for b in self.batch_sizes)
        gaps = ",".join(f"{g / 1e6:g}" for g in self.gaps)
        levels = ",".join(str(c) for c in self.levels)
        return (f"empirical ({self.source}): measured busy times at batch {sizes} (concurrency {levels}), "
                f"idle times after gaps of {gaps} ms, resampled")

    def scaled(self, factor: float) -> "EmpiricalCost":
        """The same model with every service time multiplied by ``factor`` (a slower or faster machine)."""
        if factor == 1.0:
            return self
        return EmpiricalCost({k: v * factor for k, v in self.busy.items()},
                             {k: v * factor for k, v in self.idle.items()},
                             f"{self.source}, x{factor:.4f}", self.idle_after_ns, self.stalls)

    def busy_scaled(self, factors: dict, note: str) -> "EmpiricalCost":
        """The same model with busy times of batch ``b`` multiplied by ``factors[b]`` (1 where absent)."""
        return EmpiricalCost({(b, c): v * float(factors.get(b, 1.0)) for (b, c), v in self.busy.items()},
                             dict(self.idle), f"{self.source}, {note}", self.idle_after_ns, self.stalls)

    def under_traffic(self, woken, queued, note: str) -> "EmpiricalCost":
        """The model of batches while queries keep arriving: a batch started after a wait
        (gap > ``idle_after_ns``) takes its size's busy median times a ratio drawn from
        ``woken``, one started back to back the same times a ratio drawn from ``queued``,
        whatever the gap (the idle tables are replaced, at every gap, for every batch size)."""
        w = _ratios(woken, "woken ratios", self.source)
        q = _ratios(queued, "queued ratios", self.source)
        busy = {k: float(np.median(v)) * q for k, v in self.busy.items()}
        lo = self.levels[0]
        idle = {(b, g): float(np.median(self.busy[(b, lo)])) * w for b in self.batch_sizes for g in self.gaps}
        return EmpiricalCost(busy, idle, f"{self.source}, {note}", self.idle_after_ns, self.stalls)

    def with_stall_process(self) -> "EmpiricalCost":
        """The same measurements with their scheduler stalls taken out of the tables and put
        back as a process in time (``sim.cost.stalls``); unchanged where it has one already or its
        tables hold no stall."""
        if self.stalls is not None:
            return self
        tables = {("busy", k): v for k, v in self.busy.items()}
        tables.update({("idle", k): v for k, v in self.idle.items()})
        clean, stalls = split(tables)
        if not stalls.count:
            return self
        return EmpiricalCost({k: v for (kind, k), v in clean.items() if kind == "busy"},
                             {k: v for (kind, k), v in clean.items() if kind == "idle"},
                             f"{self.source}, {stalls.describe()} as a process in time", self.idle_after_ns, stalls)

    def slowdown_against(self, other: "EmpiricalCost") -> float:
        """How much slower this model is than ``other`` overall: the median over the busy
        keys both measured of the ratio of their medians (1.10: 10% slower)."""
        keys = [k for k in self.busy if k in other.busy]
        if not keys:
            raise InputError(f"{self.source}: no busy batch size in common with {other.source}")
        return float(np.median([np.median(self.busy[k]) / np.median(other.busy[k]) for k in keys]))

    @staticmethod
    def pooled(costs: list, source: str) -> "EmpiricalCost":
        """One model from several measured at different times, each key's samples together.
        Each model's samples of a key are first rescaled so that their median is the median
        over the models of that key's medians: a model keeps the spread it saw within its
        own window, and one window of three that ran slow (the machine's speed drifts between
        windows of minutes, and a calibration measures its keys one after another) cannot
        set a key's level, nor give it a second hump. With two models the median is their
        mean: a slow window still sets half the level. Every model must have measured the
        same keys."""
        first = costs[0]
        for other in costs[1:]:
            if set(other.busy) != set(first.busy) or set(other.idle) != set(first.idle):
                raise InputError(f"{source}: the calibrations to pool measured different batch sizes or gaps")

        def at_median(samples: list) -> np.ndarray:
            medians = [float(np.median(v)) for v in samples]
            target = float(np.median(medians))
            return np.concatenate([v * (target / m) for v, m in zip(samples, medians)])
        return EmpiricalCost({k: at_median([c.busy[k] for c in costs]) for k in first.busy},
                             {k: at_median([c.idle[k] for c in costs]) for k in first.idle},
                             source, first.idle_after_ns)

    # ---- JSON -------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"schema": SCHEMA, "source": self.source, "idle_after_ns": self.idle_after_ns,
                "busy": [{"batch": b, "concurrency": c, "ns": [int(x) for x in v]}
                         for (b, c), v in sorted(self.busy.items())],
                "idle": [{"batch": b, "gap_ns": g, "ns": [int(x) for x in v]}
                         for (b, g), v in sorted(self.idle.items())]}

    @staticmethod
    def from_dict(d: dict, source: str | None = None) -> "EmpiricalCost":
        if not isinstance(d, dict) or d.get("schema") != SCHEMA:
            got = d.get("schema") if isinstance(d, dict) else type(d).__name__
            raise InputError(f"{source or 'empirical cost'}: field 'schema' = {got!r}: expected {SCHEMA!r}")
        try:
            busy = {(e["batch"], e["concurrency"]): e["ns"] for e in d["busy"]}
            idle = {(e["batch"], e["gap_ns"]): e["ns"] for e in d["idle"]}
        except (KeyError, TypeError):
            raise InputError(f"{source or 'empirical cost'}: fields 'busy'/'idle': expected lists of "
                             f"{{batch, concurrency|gap_ns, ns}} entries") from None
        return EmpiricalCost(busy, idle, source or d.get("source", "empirical cost"), d.get("idle_after_ns", 0.0))
