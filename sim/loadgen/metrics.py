"""LoadGen's metrics and verdict for one simulated run.

Each rule sits in one function named after it (``min_duration_met``,
``perf_constraints_met``, ...), written from LoadGen's ``results.cc``:

- latencies are sorted and the p-th percentile is ``sorted[floor(n * p)]``
  (``sim.loadgen.percentile``); the mean is the integer mean, as LoadGen's integer division;
- SingleStream's headline is the 90th percentile sample latency, MultiStream's the 99th
  percentile query latency, Server's "Completed samples per second" = (n - 1) / time the
  last issued query completed, Offline's samples / largest sample latency;
- "Result is : VALID" needs min duration, min queries, the Server latency bound (Server
  only) and early stopping.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from sim.loadgen import early_stopping
from sim.loadgen.percentile import percentile_of_sorted

REPORTED_PERCENTILES = (0.5, 0.9, 0.95, 0.97, 0.99, 0.999)


@dataclass
class LatencyStats:
    min_ns: int
    max_ns: int
    mean_ns: int
    percentiles_ns: dict[str, int]      # "50.00" -> ns

    @staticmethod
    def of_sorted(lat_sorted: np.ndarray) -> "LatencyStats":
        n = len(lat_sorted)
        return LatencyStats(
            min_ns=int(lat_sorted[0]), max_ns=int(lat_sorted[-1]),
            mean_ns=int(lat_sorted.sum(dtype=np.int64) // n),
            percentiles_ns={f"{p * 100:.2f}": percentile_of_sorted(lat_sorted, p) for p in REPORTED_PERCENTILES})


@dataclass
class Metrics:
    scenario: str
    query_count: int
    sample_count: int
    target_percentile: float
    target_latency_ns: int
    headline_name: str
    headline_value: float
    valid: bool
    min_duration_met: bool
    min_queries_met: bool
    perf_constraints_met: bool | None
    early_stopping_met: bool
    early_stopping_lines: list[str]
    recommendations: list[str]
    sample_latency: LatencyStats
    query_latency: LatencyStats | None = None
    early_stopping_estimate_ns: int | None = None
    early_stopping_p99_estimate_ns: int | None = None
    overlatency_count: int | None = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


# ---- one rule per function -------------------------------------------------------
def min_duration_met(scenario: str, min_duration_ns: int, final_scheduled_ns: int, final_issued_ns: int,
                     max_latency_ns: int) -> bool:
    """Offline: largest latency; Server: last scheduled time; SS/MS: last issue time."""
    if scenario == "Offline":
        return max_latency_ns >= min_duration_ns
    if scenario == "Server":
        return final_scheduled_ns >= min_duration_ns
    return final_issued_ns >= min_duration_ns


MIN_DURATION_ADVICE = {
    "SingleStream": "Decrease the expected latency so the loadgen pre-generates more queries.",
    "MultiStream": "Decrease the expected latency so the loadgen pre-generates more queries.",
    "Server": "Increase the target QPS so the loadgen pre-generates more queries.",
    "Offline": "Increase expected QPS so the loadgen pre-generates a larger (coalesced) query.",
}


def min_queries_met(queries_issued: int, min_query_count: int) -> bool:
    return queries_issued >= min_query_count


def perf_constraints_met(scenario: str, target_percentile_latency_ns: int, target_latency_ns: int) -> bool | None:
    """Server only: the target-percentile latency must not exceed the bound."""
    if scenario != "Server":
        return None
    return target_percentile_latency_ns <= target_latency_ns


def overlatency_count(lat_sorted: np.ndarray, target_latency_ns: int) -> int:
    """Server queries whose latency is above the bound (``latency > bound``)."""
    return int(len(lat_sorted) - np.searchsorted(lat_sorted, target_latency_ns + 1, side="left"))


# ---- assembling a run's metrics ----------------------------------------------------
def compute(scenario: str, settings, query_scheduled_ns: np.ndarray, query_complete_ns: np.ndarray,
            sample_latency_ns: np.ndarray, samples_per_query: int) -> Metrics:
    """Metrics for a finished run. ``sample_latency_ns`` may be sorted in place."""
    n_queries = len(query_scheduled_ns)
    lat = sample_latency_ns
    lat.sort()
    n_samples = len(lat)
    pct = float(settings.target_latency_percentile)
    bound = int(settings.target_latency_ns) if scenario == "Server" else 0
    sample_stats = LatencyStats.of_sorted(lat)
    query_stats = None
    qlat_sorted = None
    if scenario == "MultiStream":
        qlat_sorted = np.sort(query_complete_ns - query_scheduled_ns)
        query_stats = LatencyStats.of_sorted(qlat_sorted)

    final_scheduled = int(query_scheduled_ns[-1])
    final_issued = int(query_scheduled_ns[-1])
    final_done = int(query_complete_ns[-1])  # LoadGen: the last issued query's completion
    extra: dict = {}
    es_estimate = es_p99 = over = None
    if scenario == "SingleStream":
        headline_name = f"{pct * 100:.1f}th percentile latency (ns)"
        headline = percentile_of_sorted(lat, pct)
        extra["qps_with_loadgen_overhead"] = (n_samples - 1) / (final_issued / 1e9) if final_issued else 0.0
        extra["qps_without_loadgen_overhead"] = 1.0 / (sample_stats.mean_ns / 1e9) if sample_stats.mean_ns else 0.0
        es = early_stopping.stream_early_stopping(lat, pct)
        es99 = early_stopping.stream_early_stopping(lat, 0.99)
        es_met = es.enough_queries
        es_estimate = es.estimate_ns
        es_p99 = es99.estimate_ns
        lines = es.summary_lines(pct) + es99.summary_lines_secondary(0.99)
    elif scenario == "MultiStream":
        headline_name = f"{pct * 100:.1f}th percentile latency (ns)"
        headline = percentile_of_sorted(qlat_sorted, pct)
        es = early_stopping.stream_early_stopping(qlat_sorted, pct)
        es_met = es.enough_queries
        es_estimate = es.estimate_ns
        lines = es.summary_lines(pct)
    elif scenario == "Server":
        over = overlatency_count(lat, bound)
        es = early_stopping.server_early_stopping(n_queries, over, pct)
        es_met = es.met
        lines = es.summary_lines()
        headline_name = "Completed samples per second"
        headline = (n_samples - 1) / (final_done / 1e9) if final_done else 0.0
        extra["scheduled_samples_per_second"] = (n_samples - 1) / (final_scheduled / 1e9) if final_scheduled else 0.0
        extra["completed_samples_per_second"] = headline
    else:
        headline_name = "Samples per second"
        headline = n_samples / (sample_stats.max_ns / 1e9) if sample_stats.max_ns else 0.0
        es_met = True
        lines = []

    md = min_duration_met(scenario, int(settings.min_duration_ns), final_scheduled, final_issued,
                          sample_stats.max_ns)
    mq = min_queries_met(n_queries, int(settings.min_query_count))
    perf = perf_constraints_met(scenario, percentile_of_sorted(lat, pct), bound)
    valid = md and mq and (perf is not False) and es_met
    recs = []
    if not valid:
        if perf is False:
            recs.append("Reduce target QPS to improve latency.")
        if not md:
            recs.append(MIN_DURATION_ADVICE[scenario])
        if not mq:
            recs.append("The test exited early, before enough queries were issued.\n"
                        "   See the detailed log for why this may have occurred.")
    extra["final_query_scheduled_ns"] = final_scheduled
    extra["final_query_all_samples_done_ns"] = final_done
    return Metrics(scenario=scenario, query_count=n_queries, sample_count=n_samples, target_percentile=pct,
                   target_latency_ns=bound, headline_name=headline_name, headline_value=float(headline),
                   valid=bool(valid), min_duration_met=bool(md), min_queries_met=bool(mq),
                   perf_constraints_met=perf, early_stopping_met=bool(es_met), early_stopping_lines=lines,
                   recommendations=recs, sample_latency=sample_stats, query_latency=query_stats,
                   early_stopping_estimate_ns=es_estimate, early_stopping_p99_estimate_ns=es_p99,
                   overlatency_count=over, extra=extra)
