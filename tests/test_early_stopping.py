"""Early stopping and percentiles against LoadGen's numbers.

Truth: the test vectors of the semantics page (numbers LoadGen prints), a step-by-step
restatement of LoadGen's own procedure (its odds series, its bracketed binary search
with the per-t cache, its sequential scan over t), and closed forms. The real LoadGen's
summaries are also checked in test_traffic_vs_loadgen.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom

from sim.loadgen.early_stopping import (
    early_stopping_odds,
    min_passing_queries,
    server_early_stopping,
    server_queries_needed,
    stream_early_stopping,
    stream_min_queries,
    stream_overlatency_allowed,
)
from sim.loadgen.percentile import latency_summary_ns, mean_latency_ns, percentile_index, percentile_latency_ns

SERVER_P99_VECTORS = {0: 459, 1: 662, 2: 838, 5: 1307, 10: 2010, 25: 3924, 50: 6898,
                      100: 12571, 237: 27517, 435: 48579}


@pytest.mark.parametrize("t,needed", sorted(SERVER_P99_VECTORS.items()))
def test_server_queries_needed_for_t_overlatency_queries(t, needed):
    assert server_queries_needed(t, 0.99) == needed
    assert server_early_stopping(needed, t, 0.99).met
    verdict = server_early_stopping(needed - 1, t, 0.99)
    assert not verdict.met and verdict.more_queries_needed == 1


def test_stream_vectors():
    assert stream_overlatency_allowed(3317, 0.90) == 291
    assert stream_overlatency_allowed(2624, 0.99) == 14
    assert stream_min_queries(0.90) == 64
    assert stream_min_queries(0.99) == 662


def test_odds_is_the_binomial_cdf():
    for h, t in [(459, 0), (661, 1), (2000, 10), (48144, 435)]:
        assert early_stopping_odds(h, t, 0.99) == pytest.approx(binom.cdf(t, h + t, 0.01), rel=1e-9)
    assert early_stopping_odds(459, 0, 0.99) == pytest.approx(0.99 ** 459, rel=1e-12)


def test_h_is_the_smallest_passing_value():
    for p in (0.9, 0.99, 0.999):
        for t in (0, 1, 7, 300):
            h = min_passing_queries(t, p)
            assert early_stopping_odds(h, t, p) < 1 - 0.99 <= early_stopping_odds(h - 1, t, p)


# ---------------------------------------------------------------------------------------
# LoadGen's procedure, restated step by step


def _lg_odds(h: int, t: int, p: float) -> float:
    """LoadGen's beta_regularized(p, h, t + 1): a series for 2F1 times a prefactor."""
    a, b = h, t + 1
    lbeta = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    x = p / (p - 1)
    term, total, i = 1.0, 1.0, 0
    while abs(term) > 1.0 / (1 << 33):
        term *= (1 - b + i) * x / (1 + a + i)
        total += term
        i += 1
    return math.exp(a * math.log(p) + (b - 1) * math.log(1 - p) - lbeta) / a * total


class _LoadGenFinder:
    """LoadGen's MinPassingQueriesFinder: a binary search inside a bracket built from the
    results cached for smaller t (so a bad bracket would show as a different h)."""

    def __init__(self, p: float) -> None:
        self.p, self.cache = p, {}

    def __call__(self, t: int) -> int:
        if t in self.cache:
            return self.cache[t]
        below = sorted(k for k in self.cache if k < t)
        x0, y0, x1 = -1, 0, 0
        y1 = math.ceil(math.log(1 - 0.99) / math.log(self.p))
        if below:
            x1, y1 = below[-1], self.cache[below[-1]]
        if len(below) >= 2:
            x0, y0 = below[-2], self.cache[below[-2]]
        min_h = int((t - x1) * (self.p / (1 - self.p)) + y1)
        max_h = int((t - x1) * ((y1 - y0) * (x1 - x0)) + y1 + 1)
        count = max_h - min_h
        while count > 0:
            step = count // 2
            h = min_h + step
            if _lg_odds(h, t, self.p) < 1 - 0.99:
                count = step
            else:
                min_h = h + 1
                count -= step + 1
        self.cache[t] = min_h
        return min_h


def _lg_stream_t(n: int, finder: _LoadGenFinder) -> int:
    """LoadGen's scan: t = i - 1 for the first i with n < h(i) + i."""
    if n < finder(1) + 1:
        return 0
    for i in range(2, n + 1):
        if n < finder(i) + i:
            return i - 1
    return 1


@pytest.mark.parametrize("p,t_max", [(0.90, 400), (0.99, 120), (0.999, 12)])
def test_h_equals_loadgens_bracketed_search(p, t_max):
    finder = _LoadGenFinder(p)
    for t in range(1, t_max + 1):  # LoadGen's SingleStream order: t = 1, 2, 3, ...
        assert min_passing_queries(t, p) == finder(t), t


@pytest.mark.parametrize("p", [0.90, 0.99])
def test_stream_t_equals_loadgens_scan(p):
    finder = _LoadGenFinder(p)
    rng = np.random.default_rng(0)
    ns = [stream_min_queries(p), stream_min_queries(p) + 1, 3317, 2624, 5000]
    ns += rng.integers(stream_min_queries(p), 6000, size=15).tolist()
    for n in ns:
        assert stream_overlatency_allowed(n, p) == _lg_stream_t(n, finder), n


def test_server_h_equals_loadgens_first_call():
    # a Server run calls the finder once, with an empty cache
    for t in (0, 3, 40, 250, 773):
        assert min_passing_queries(t, 0.99) == _LoadGenFinder(0.99)(t), t


def test_stream_estimate_is_sorted_n_minus_t():
    latencies = np.random.default_rng(1).permutation(np.arange(1, 3318) * 1000)
    result = stream_early_stopping(latencies, 0.90)
    assert result.enough_queries and result.overlatency_allowed == 291
    assert result.discarded == 290
    assert result.estimate_ns == np.sort(latencies)[3317 - 291]
    short = stream_early_stopping(latencies[:63], 0.90)
    assert not short.enough_queries and short.min_queries_needed == 64
    assert short.estimate_ns is None


def test_fifty_million_queries_is_fast():
    assert stream_overlatency_allowed(50_000_000, 0.90) > 4_900_000


# ---------------------------------------------------------------------------------------
# Percentiles


def test_percentile_is_sorted_floor_n_p():
    values = np.arange(100)[::-1] * 10
    assert percentile_index(100, 0.99) == 99
    assert percentile_latency_ns(values, 0.99) == 990  # the largest of 100
    assert percentile_latency_ns(values, 0.50) == 500
    assert percentile_index(1000, 0.999) == 999
    assert percentile_index(10, 0.9) == 9
    assert percentile_index(929, 0.99) == 919  # floor(919.71)


def test_summary_statistics():
    values = [5, 1, 4, 2, 3]
    s = latency_summary_ns(values)
    assert (s["min"], s["max"], s["mean"], s[0.5], s[0.9]) == (1, 5, 3, 3, 5)
    assert mean_latency_ns([1, 2]) == 1  # integer division, as LoadGen
