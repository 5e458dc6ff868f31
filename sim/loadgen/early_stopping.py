"""LoadGen's early-stopping rule: is a run long enough to trust its percentile?

A latency percentile measured over ``n`` queries is itself uncertain. LoadGen asks: if
the true pass rate were exactly the target percentile ``p`` (e.g. 0.99), how likely is
it to see at most ``t`` over-latency queries among ``h + t`` queries? That probability
is the regularized incomplete beta function ``I_p(h, t + 1)`` (the binomial CDF).
``h(t)`` is the smallest ``h`` for which it is below ``1 - 0.99`` (LoadGen's confidence
0.99, tolerance 0), found by binary search since the odds fall as ``h`` grows.

* Server (``server_early_stopping``): ``t`` = queries with latency above the bound;
  the run passes when ``n >= h(t) + t``.
* SingleStream / MultiStream (``stream_early_stopping``): the run needs
  ``n >= h(1) + 1`` queries (64 at p90, 662 at p99); ``t`` is the largest ``i`` with
  ``n >= h(i) + i`` and the reported latency is the sorted latency at index ``n - t``
  (the ``t - 1`` highest are discarded).

Both verdicts can print LoadGen's "Early Stopping Result" lines word for word
(``summary_lines``). The odds come from ``scipy.special.betainc``. Where they lie within 1e-9 of the
threshold, they are recomputed with LoadGen's own formula (its series for the beta
function, with the C library's ``lgamma``), so decisions match LoadGen's even there.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.special import betainc

#: LoadGen's early-stopping confidence and tolerance.
CONFIDENCE = 0.99
TOLERANCE = 0.0


def early_stopping_odds(h: int, t: int, percentile: float) -> float:
    """Probability of at most ``t`` over-latency queries in ``h + t`` at pass rate ``percentile``."""
    if h <= 0:
        return 1.0
    return float(betainc(h, t + 1, percentile - TOLERANCE))


def _passes(h: int, t: int, percentile: float, confidence: float) -> bool:
    threshold = 1 - confidence
    odds = early_stopping_odds(h, t, percentile)
    if abs(odds - threshold) <= 1e-9 * threshold:
        odds = _loadgen_odds(h, t, percentile - TOLERANCE)
    return odds < threshold


@lru_cache(maxsize=65536)
def min_passing_queries(t: int, percentile: float, confidence: float = CONFIDENCE) -> int:
    """``h(t)``: the fewest under-latency queries that, with ``t`` over, pass early stopping."""
    if t < 0:
        raise ValueError("t must be >= 0")
    if not 0.0 < percentile < 1.0:
        raise ValueError(f"percentile {percentile} outside (0, 1)")
    lo = max(1, int(t * percentile / (1.0 - percentile)))  # below h(t): the odds mean
    while _passes(lo, t, percentile, confidence) and lo > 1:
        lo = max(1, lo // 2)
    hi = max(lo + 1, 2 * lo)
    while not _passes(hi, t, percentile, confidence):
        lo, hi = hi, 2 * hi
    while lo < hi:  # smallest h in [lo, hi] that passes
        mid = (lo + hi) // 2
        if _passes(mid, t, percentile, confidence):
            hi = mid
        else:
            lo = mid + 1
    return lo


def server_queries_needed(overlatency_count: int, percentile: float) -> int:
    """Queries a Server run needs when ``overlatency_count`` of them are over the bound."""
    return min_passing_queries(overlatency_count, percentile) + overlatency_count


@dataclass(frozen=True)
class ServerEarlyStopping:
    met: bool
    query_count: int
    overlatency_count: int
    queries_needed: int  # h(t) + t

    @property
    def more_queries_needed(self) -> int:
        """LoadGen's "would need to run at least N more queries" (0 when met)."""
        return max(0, self.queries_needed - self.query_count)

    def summary_lines(self) -> list[str]:
        """The "Early Stopping Result" lines of LoadGen's summary, word for word."""
        if self.met:
            return [" * Run successful."]
        return [" * Run unsuccessful.",
                f" * Processed {self.query_count} queries.",
                f" * Would need to run at least {self.more_queries_needed} more queries,",
                " with the run being successful if every additional",
                " query were under latency."]


def server_early_stopping(query_count: int, overlatency_count: int,
                          percentile: float) -> ServerEarlyStopping:
    """LoadGen's Server early-stopping verdict for ``query_count`` issued queries."""
    needed = server_queries_needed(overlatency_count, percentile)
    return ServerEarlyStopping(query_count >= needed, query_count, overlatency_count, needed)


def stream_min_queries(percentile: float) -> int:
    """Queries a SingleStream/MultiStream run needs for any early-stopping estimate."""
    return min_passing_queries(1, percentile) + 1


def stream_overlatency_allowed(query_count: int, percentile: float) -> int:
    """``t``: the largest ``i`` with ``query_count >= h(i) + i`` (needs ``stream_min_queries``)."""
    if query_count < stream_min_queries(percentile):
        raise ValueError("too few queries for an early-stopping estimate")
    lo, hi = 1, query_count  # predicate true at lo; h(i) + i > i so false past query_count
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if query_count >= min_passing_queries(mid, percentile) + mid:
            lo = mid
        else:
            hi = mid - 1
    return lo


@dataclass(frozen=True)
class StreamEarlyStopping:
    percentile: float
    query_count: int
    enough_queries: bool
    min_queries_needed: int
    overlatency_allowed: int | None  # t; None when too few queries
    estimate_ns: int | None  # sorted latency at index n - t

    @property
    def discarded(self) -> int | None:
        """How many highest latencies the estimate discards (``t - 1``)."""
        return None if self.overlatency_allowed is None else self.overlatency_allowed - 1

    def summary_lines(self, percentile: float | None = None) -> list[str]:
        """The "Early Stopping Result" lines of LoadGen's summary, word for word."""
        pct = _pct_text(self.percentile if percentile is None else percentile)
        if not self.enough_queries:
            return [f" * Only processed {self.query_count} queries.",
                    f" * Need to process at least {self.min_queries_needed} queries for "
                    f"early stopping."]
        return [f" * Processed at least {self.min_queries_needed} queries ({self.query_count}).",
                f" * Would discard {self.discarded} highest latency queries.",
                f" * Early stopping {pct}th percentile estimate: {self.estimate_ns}"]

    def summary_lines_secondary(self, percentile: float | None = None) -> list[str]:
        """SingleStream's extra lines for the 99th percentile estimate (this result's)."""
        pct = _pct_text(self.percentile if percentile is None else percentile)
        if not self.enough_queries:
            return [f" * Not enough queries processed for {pct}th percentile",
                    " early stopping estimate (would need to process at",
                    f" least {self.min_queries_needed} total queries)."]
        return [f" * Early stopping {pct}th percentile estimate: {self.estimate_ns}"]


def _pct_text(fraction: float) -> str:
    return f"{fraction * 100:.1f}"


def stream_early_stopping(latencies_ns, percentile: float) -> StreamEarlyStopping:
    """SingleStream (sample latencies) / MultiStream (query latencies) estimate."""
    values = np.asarray(latencies_ns, dtype=np.int64)
    n = values.size
    needed = stream_min_queries(percentile)
    if n < needed:
        return StreamEarlyStopping(percentile, n, False, needed, None, None)
    t = stream_overlatency_allowed(n, percentile)
    estimate = int(np.partition(values, n - t)[n - t])
    return StreamEarlyStopping(percentile, n, True, needed, t, estimate)


# ---------------------------------------------------------------------------------------
# LoadGen's own odds formula, for values at the threshold.


@lru_cache(maxsize=1)
def _libm_lgamma():
    name = ctypes.util.find_library("m")
    try:
        fn = ctypes.CDLL(name).lgamma if name else None
    except OSError:
        fn = None
    if fn is None:
        return math.lgamma
    fn.restype = ctypes.c_double
    fn.argtypes = [ctypes.c_double]
    return fn


def _loadgen_odds(h: int, t: int, p: float) -> float:
    """``I_p(h, t + 1)`` evaluated step by step as LoadGen evaluates it."""
    lgamma = _libm_lgamma()
    a, b = h, t + 1
    lbeta = lgamma(float(a)) + lgamma(float(b)) - lgamma(float(a + b))
    x = p / (p - 1)
    tolerance = 1.0 / (1 << 33)
    term, total, i = 1.0, 1.0, 0
    bb, c = 1 - b, 1 + a
    while abs(term) > tolerance:
        term *= float(bb + i) * x / float(c + i)
        total += term
        i += 1
    prefix = math.exp(float(a) * math.log(p) + float(b - 1) * math.log(1 - p) - lbeta)
    return prefix / float(a) * total
