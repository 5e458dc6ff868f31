"""A machine's speed over time, and a cost model that follows it.

Resampling measured service times one batch at a time treats every batch as independent.
On a shared machine they are not: for a few hundred milliseconds at a time every batch
runs 10-30% slower (another tenant, the issuing thread landing on the worker's core, a
frequency step), then speed comes back. Under a light load that only widens the latency
distribution a little; near capacity a slow phase pushes the arrival rate over the service
rate and the queue it leaves takes many times its length to drain, which is what sets p99.

A ``SpeedTrace`` keeps that time structure from a measurement: batches run for a while under
the traffic of interest, each batch's run time over the median run time of its batch size,
and the median of those ratios per time bin (a bin holds several batches, so one batch's own
jitter, which the resampled times already carry, is not counted twice). The trace is
normalised to median 1.

``TimeVaryingCost(base, trace)`` multiplies the base model's service time of a batch by the
trace's factor at the batch's start, read from a random offset into the trace (drawn from
the run's seeded generator when the engine binds the model to a run, ``for_run``), wrapping
around at its end.
"""

from __future__ import annotations

import math

import numpy as np

from sim.errors import InputError

SCHEMA = "sim.speed_trace/1"
MIN_BIN_NS = 20e6            # a bin is at least 20 ms ...
BATCHES_PER_BIN = 8          # ... and holds about this many batches
MIN_BINS = 10                # a shorter trace carries no time structure worth replaying


class SpeedTrace:
    """Relative speed factors (``factors[i]`` for time ``[i, i+1) * bin_ns``), median 1."""

    def __init__(self, factors, bin_ns: float, source: str = "speed trace"):
        f = np.asarray(factors, dtype=np.float64)
        if f.ndim != 1 or len(f) < MIN_BINS or not np.all(np.isfinite(f)) or np.any(f <= 0):
            raise InputError(f"{source}: field 'factors': expected at least {MIN_BINS} positive numbers, "
                             f"got {len(f) if f.ndim == 1 else f.shape}")
        if not (isinstance(bin_ns, (int, float)) and math.isfinite(bin_ns) and bin_ns > 0):
            raise InputError(f"{source}: field 'bin_ns' = {bin_ns!r}: expected a positive number of ns")
        self.factors = f / float(np.median(f))
        self.bin_ns = float(bin_ns)
        self.source = source

    @property
    def period_ns(self) -> float:
        return self.bin_ns * len(self.factors)

    @staticmethod
    def from_batches(start_ns, run_ns, count, source: str = "measured batches") -> "SpeedTrace | None":
        """The trace of batches that started at ``start_ns`` and ran ``run_ns`` with ``count``
        samples each; ``None`` when the measurement is too short for ``MIN_BINS`` bins."""
        start = np.asarray(start_ns, dtype=np.float64)
        run = np.asarray(run_ns, dtype=np.float64)
        count = np.asarray(count)
        keep = run > 0
        start, run, count = start[keep], run[keep], count[keep]
        if len(start) < MIN_BINS * BATCHES_PER_BIN:
            return None
        ratio = np.empty_like(run)
        for b in np.unique(count):
            m = count == b
            ratio[m] = run[m] / np.median(run[m])
        order = np.argsort(start)
        start, ratio = start[order] - start[order][0], ratio[order]
        span = float(start[-1])
        bin_ns = max(MIN_BIN_NS, BATCHES_PER_BIN * span / len(start))
        n_bins = int(span // bin_ns)
        if n_bins < MIN_BINS:
            return None
        idx = np.minimum((start // bin_ns).astype(np.int64), n_bins - 1)      # sorted, as start is
        factors = np.empty(n_bins)
        last = 1.0
        for i, r in enumerate(np.split(ratio, np.searchsorted(idx, np.arange(1, n_bins)))):
            last = float(np.median(r)) if len(r) else last       # an empty bin keeps the speed before it
            factors[i] = last
        return SpeedTrace(factors, bin_ns, source)

    def factor_at(self, t_ns: float) -> float:
        return float(self.factors[int((t_ns % self.period_ns) // self.bin_ns) % len(self.factors)])

    def share_slower(self, by: float = 0.1) -> float:
        """Share of the time the machine ran more than ``by`` slower than its median."""
        return float(np.mean(self.factors > 1.0 + by))

    def to_dict(self) -> dict:
        return {"schema": SCHEMA, "bin_ns": self.bin_ns, "factors": [round(float(x), 4) for x in self.factors]}

    @staticmethod
    def from_dict(d: dict, source: str = "speed trace") -> "SpeedTrace":
        if not isinstance(d, dict) or d.get("schema") != SCHEMA:
            got = d.get("schema") if isinstance(d, dict) else type(d).__name__
            raise InputError(f"{source}: field 'schema' = {got!r}: expected {SCHEMA!r}")
        return SpeedTrace(d.get("factors", []), d.get("bin_ns"), source)


class TimeVaryingCost:
    """``base``'s service times times ``trace``'s speed factor at each batch's start."""

    def __init__(self, base, trace: SpeedTrace, offset_ns: float | None = None):
        self.base = base
        self.trace = trace
        self.offset_ns = offset_ns

    def for_run(self, rng) -> "TimeVaryingCost":
        """This model bound to one run: the trace is read from an offset drawn from ``rng``."""
        return TimeVaryingCost(self.base, self.trace, float(rng.random()) * self.trace.period_ns)

    def _factor(self, start_ns: float) -> float:
        if self.offset_ns is None:
            raise ValueError("TimeVaryingCost: bind it to a run first (for_run)")
        return self.trace.factor_at(self.offset_ns + start_ns)

    def service_time_at_ns(self, batch, gap_ns: float, computing: int, rng, start_ns: float) -> float:
        in_context = getattr(self.base, "service_time_in_context_ns", None)
        base = (in_context(batch, gap_ns, computing, rng) if in_context is not None
                else self.base.service_time_ns(batch, False, rng))
        return float(max(1.0, math.ceil(base * self._factor(start_ns))))

    def median_ns(self, batch: int, idle: bool = False, concurrency: int = 1) -> float:
        return self.base.median_ns(batch, idle=idle, concurrency=concurrency)

    def scaled(self, factor: float) -> "TimeVaryingCost":
        return TimeVaryingCost(self.base.scaled(factor), self.trace, self.offset_ns)

    @property
    def batch_sizes(self):
        return self.base.batch_sizes

    def describe(self) -> str:
        return (f"{self.base.describe()}; speed over time from {self.trace.source} "
                f"({len(self.trace.factors)} bins of {self.trace.bin_ns / 1e6:g} ms, "
                f"{100 * self.trace.share_slower():.0f}% of the time >10% slower)")
