"""Finding the highest Server QPS whose run is VALID.

LoadGen's FindPeakPerformance mode brackets the peak and then bisects; this module does
the same with simulated trials. ``find_peak_qps`` takes a ``trial(qps, seed_index)``
callable that runs one Server test and returns its ``Metrics``:

1. bracket: from a starting guess, double while VALID (or halve while INVALID) until one
   VALID and one INVALID target QPS are known;
2. bisect until the bracket is narrower than ``rel_tol`` of its lower end;
3. confidence: validity near the limit is noisy (a few unlucky arrival bursts put queries
   over the bound, and early stopping turns them into INVALID), so the lower end and the
   upper end are each re-run with ``repeats`` other schedule seeds, and the share of
   VALID runs is reported with the bracket.

Validity is not guaranteed to be monotonic in QPS; the bisection assumes it is and the
confidence figures say how far that assumption held.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from sim.util.bisect import bisect
from sim.util.checks import RANGES, number


class ScheduleSeeds:
    """The Server schedules of a search's trials: repeat ``k`` of a trial draws its own, with
    LoadGen's schedule seed of the search's first run plus ``k`` (repeat 0 keeps the settings')."""

    def __init__(self):
        self.base: int | None = None

    def overrides(self, qps: float, seed_index: int) -> dict:
        """The settings that make a trial at ``qps`` repeat ``seed_index``."""
        extra = {"server_target_qps": qps}
        if seed_index:
            extra["schedule_rng_seed"] = (self.base + seed_index) % 2**64
        return extra

    def saw(self, settings) -> None:
        """Record the schedule seed of a run's settings (the first one seen is the base)."""
        if self.base is None:
            self.base = settings.schedule_rng_seed


@dataclass
class Trial:
    qps: float
    seed_index: int
    valid: bool
    p99_ns: int
    completed_qps: float


@dataclass
class PeakResult:
    peak_qps: float                 # highest target QPS seen VALID with the base seed (0: none)
    invalid_qps: float              # lowest target QPS seen INVALID above it
    valid_share_at_peak: float      # share of seeds VALID at peak_qps
    valid_share_at_invalid: float   # share of seeds VALID at invalid_qps
    repeats: int
    trials: list[Trial] = field(default_factory=list)
    reason: str = ""                # why there is no peak, when peak_qps is 0

    def describe(self) -> str:
        if not self.peak_qps:
            return f"no VALID Server QPS: {self.reason}"
        return (f"peak VALID Server QPS: {self.peak_qps:.1f} (INVALID at {self.invalid_qps:.1f}); "
                f"{self.valid_share_at_peak:.0%} of {self.repeats} seeds VALID at the peak, "
                f"{self.valid_share_at_invalid:.0%} at the upper end; {len(self.trials)} trials")


def check_search(start_qps: float | None, rel_tol: float, repeats: int, max_trials: int = 60,
                 min_qps: float | None = None, source: str = "peak search") -> tuple:
    """The search's numbers, checked (``sim.util.checks``): ``start_qps`` and ``min_qps`` None
    or > 0, ``rel_tol`` in (0, 1], ``repeats`` 1 to 1000, ``max_trials`` 1 to 10000."""
    positive = {"above": 0.0}
    return (None if start_qps is None else number(start_qps, source, "start_qps", **positive),
            number(rel_tol, source, "rel_tol", **RANGES["rel_tol"]),
            number(repeats, source, "repeats", **RANGES["repeats"]),
            number(max_trials, source, "max_trials", minimum=1, maximum=10_000, integer=True),
            None if min_qps is None else number(min_qps, source, "min_qps", **positive))


def find_peak_qps(trial: Callable[[float, int], object], start_qps: float, rel_tol: float = 0.01,
                  repeats: int = 5, max_trials: int = 60, min_qps: float | None = None) -> PeakResult:
    """Bracket and bisect; below ``min_qps`` (default start / 1024) the search gives up.

    ``InputError`` for a search that cannot be run as asked: a start, tolerance, repeat or
    trial count that is not a finite number in its range (a NaN tolerance would stop the
    bisection at once and report the unbisected bracket).
    """
    start_qps, rel_tol, repeats, max_trials, min_qps = check_search(start_qps, rel_tol, repeats, max_trials,
                                                                     min_qps, "find_peak_qps")
    trials: list[Trial] = []

    def run(qps: float, seed_index: int = 0) -> bool:
        m = trial(qps, seed_index)
        p99 = m.sample_latency.percentiles_ns.get("99.00", 0)
        trials.append(Trial(qps, seed_index, bool(m.valid), int(p99), float(m.headline_value)))
        return bool(m.valid)

    lo, hi = None, None
    q = float(start_qps)
    if run(q):
        lo = q
        while hi is None and len(trials) < max_trials:
            q *= 2
            if run(q):
                lo = q
            else:
                hi = q
    else:
        hi = q
        floor = min_qps if min_qps is not None else start_qps / 1024
        while lo is None and len(trials) < max_trials:
            q /= 2
            if q < floor:
                return PeakResult(0.0, hi, 0.0, 0.0, repeats, trials,
                                  reason=f"every trial INVALID down to {hi:.3g} QPS")
            if run(q):
                lo = q
            else:
                hi = q
    if lo is None or hi is None:
        raise RuntimeError(f"could not bracket the peak within {max_trials} trials (last QPS {q:g})")
    lo, hi = bisect(run, lo, hi, rel_tol=rel_tol, max_steps=max_trials - len(trials))
    share_lo = (1 + sum(run(lo, k) for k in range(1, repeats))) / repeats if repeats > 1 else 1.0
    share_hi = sum(run(hi, k) for k in range(1, repeats)) / repeats if repeats > 1 else 0.0
    return PeakResult(peak_qps=lo, invalid_qps=hi, valid_share_at_peak=share_lo,
                      valid_share_at_invalid=share_hi, repeats=repeats, trials=trials)
