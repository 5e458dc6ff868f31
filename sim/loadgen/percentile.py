"""Latency percentiles as LoadGen computes them.

LoadGen sorts the latencies and takes the entry at index ``floor(n * p)`` (0-based),
with ``n * p`` computed in double precision: no interpolation, so the 99th percentile
of 100 latencies is the largest one. The mean is the integer sum divided by ``n`` with
the remainder dropped. The summary reports the percentiles in ``SUMMARY_PERCENTILES``.
"""

from __future__ import annotations

import numpy as np

#: The percentiles LoadGen's summary and detail log report, as fractions.
SUMMARY_PERCENTILES = (0.50, 0.90, 0.95, 0.97, 0.99, 0.999)


def percentile_index(count: int, fraction: float) -> int:
    """Index of percentile ``fraction`` in ``count`` sorted values: ``floor(count * fraction)``."""
    if count < 1:
        raise ValueError("no latencies")
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"percentile {fraction} outside [0, 1)")
    return int(float(count) * fraction)


def percentile_latency_ns(latencies_ns, fraction: float, *, presorted: bool = False) -> int:
    """LoadGen's percentile ``fraction`` (e.g. 0.99) of ``latencies_ns``."""
    values = np.asarray(latencies_ns, dtype=np.int64)
    i = percentile_index(values.size, fraction)
    if presorted:
        return int(values[i])
    return int(np.partition(values, i)[i])


def percentile_of_sorted(sorted_latencies_ns, fraction: float) -> int:
    """LoadGen's percentile of already sorted latencies: ``sorted[floor(n * fraction)]``."""
    return int(sorted_latencies_ns[percentile_index(len(sorted_latencies_ns), fraction)])


def mean_latency_ns(latencies_ns) -> int:
    """LoadGen's mean: integer sum divided by the count, remainder dropped."""
    values = np.asarray(latencies_ns, dtype=np.int64)
    if values.size == 0:
        raise ValueError("no latencies")
    return int(values.sum()) // values.size


def latency_summary_ns(latencies_ns) -> dict:
    """Min, max, mean and ``SUMMARY_PERCENTILES`` as LoadGen reports them (ns)."""
    values = np.sort(np.asarray(latencies_ns, dtype=np.int64))
    out = {"min": int(values[0]), "max": int(values[-1]), "mean": mean_latency_ns(values)}
    for fraction in SUMMARY_PERCENTILES:
        out[fraction] = percentile_latency_ns(values, fraction, presorted=True)
    return out
