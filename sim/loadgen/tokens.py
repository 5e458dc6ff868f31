"""LoadGen's results for LLM runs: token latencies, token throughput and their verdict.

An LLM benchmark (``use_token_latencies = 1`` in mlperf.conf) reports each sample twice to
LoadGen: ``FirstTokenComplete`` when its first token is ready and ``QuerySamplesComplete``
when it is done, the latter with ``n_tokens``, the sample's output token count. From these
LoadGen derives, per sample, measured from the query's *scheduled* time (so queueing counts):

* TTFT (time to first token) = first-token time - scheduled time;
* latency = completion time - scheduled time;
* TPOT (time per output token) = (latency - TTFT) // (n_tokens - 1), integer ns: one average
  per sample; percentiles are taken over these per-sample averages, not over token gaps.

The statistics are LoadGen's (``sim.loadgen.percentile``): sorted values, index
``floor(n * p)``, integer means (TTFT and TPOT means divide by the sample count).
Throughput: Server "Completed samples per second" = (samples - 1) / completion time of the
last issued query, "Completed tokens per second" = tokens / that same time; Offline
"Tokens per second" = tokens / largest sample latency.

The verdict (Server): the TTFT p99 must not exceed ``ttft_latency`` and the TPOT p99 must
not exceed ``tpot_latency`` (performance constraints), early stopping
(``sim.loadgen.early_stopping``) must pass on the TPOT values against the TPOT limit and
then on the TTFT values against the TTFT limit (LoadGen evaluates the second only when the
first passes), the minimum duration and the minimum query count must be met. Offline has
neither constraints nor early stopping. An Interactive run is a Server run with the
``<model>-interactive`` settings (tighter limits); nothing else differs.

gptj (``infer_token_latencies = 1``) instead infers tokens from samples:
tokens/s = ``token_latency_scaling_factor`` x samples/s, with its plain end-to-end latency
bound; ``compute_token_metrics`` reports that too (``inferred_tokens_per_second``).

Samples LoadGen refuses (``n_tokens`` of 0, negative or 1, a completion before the first
token, a non-Offline sample with no first token) are errors in LoadGen's log; here they are
listed in ``TokenMetrics.errors`` with LoadGen's message and make the run INVALID
(``strict=True`` raises ``InputError`` instead).

API: ``compute_token_metrics(settings, scheduled_ns, first_token_ns, complete_ns, n_tokens)
-> TokenMetrics``; ``tpot_ns`` (the per-sample rule).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from sim.errors import InputError
from sim.loadgen import early_stopping, metrics
from sim.loadgen.metrics import (
    MIN_DURATION_ADVICE,
    LatencyStats,
    Metrics,
    min_duration_met,
    min_queries_met,
)
from sim.loadgen.percentile import percentile_of_sorted

#: LoadGen's error messages for samples it cannot use (its log's ``error_runtime`` lines).
ERROR_NO_TOKENS = "n_tokens argument missing or attempted to record 0 as number of tokens"
ERROR_NEGATIVE_TOKENS = "Attempted to record a negative number of tokens"
ERROR_ONE_TOKEN = "Number of tokens need to be greater than 1"
ERROR_BEFORE_FIRST_TOKEN = "Attempted to record a sample latency before it's first token latency"
ERROR_TOKEN_AFTER_COMPLETION = "Attempted to record token latency after sample was completed"

TTFT_ADVICE = "TTFT constrain not met: Reduce target QPS to improve latency."
TPOT_ADVICE = "TPOT constrain not met: Reduce target QPS to improve latency."
MIN_QUERIES_ADVICE = ("The test exited early, before enough queries were issued.\n"
                      "   See the detailed log for why this may have occurred.")


@dataclass
class TokenMetrics:
    """LoadGen's results for one LLM run (field conventions as ``sim.loadgen.metrics.Metrics``).

    ``headline_name`` / ``headline_value``: the official metric ("Completed tokens per
    second" for Server and Interactive, "Tokens per second" for Offline; gptj's inferred
    tokens/s where ``infer_token_latencies``). Times in ns, throughputs per second.
    ``ttft`` / ``tpot``: statistics over the samples (``None`` in Offline, where LoadGen
    reports neither). ``perf_constraints_met``: ``None`` outside Server.
    ``ttft_early_stopping_lines`` / ``tpot_early_stopping_lines``: LoadGen's summary lines
    under "TTFT Early Stopping Result:" / "TPOT Early Stopping Result:" (empty for TTFT when
    the TPOT check failed: LoadGen does not evaluate it then). ``errors``: the messages
    LoadGen would log as errors (a run with any is not accepted for submission, whatever its
    verdict). ``base_metrics``: gptj only, LoadGen's plain-latency results
    (``sim.loadgen.metrics.Metrics``) its verdict comes from.
    """

    scenario: str
    query_count: int
    sample_count: int
    token_count: int
    target_percentile: float
    ttft_latency_ns: int
    tpot_latency_ns: int
    headline_name: str
    headline_value: float
    valid: bool
    min_duration_met: bool
    min_queries_met: bool
    perf_constraints_met: bool | None
    early_stopping_met: bool
    ttft_early_stopping_lines: list[str]
    tpot_early_stopping_lines: list[str]
    recommendations: list[str]
    sample_latency: LatencyStats
    ttft: LatencyStats | None
    tpot: LatencyStats | None
    samples_per_second: float
    tokens_per_second: float
    scheduled_samples_per_second: float | None = None
    ttft_percentile_ns: int | None = None
    tpot_percentile_ns: int | None = None
    ttft_overlatency_count: int | None = None
    tpot_overlatency_count: int | None = None
    inferred_tokens_per_second: float | None = None
    errors: list[str] = field(default_factory=list)
    base_metrics: Metrics | None = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def tpot_ns(latency_ns, ttft_ns, n_tokens) -> np.ndarray:
    """LoadGen's per-sample time per output token: ``(latency - TTFT) // (n_tokens - 1)``."""
    lat = np.asarray(latency_ns, dtype=np.int64)
    first = np.asarray(ttft_ns, dtype=np.int64)
    n = np.asarray(n_tokens, dtype=np.int64)
    return _trunc_div(lat - first, n - 1)


def _trunc_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """C++ integer division (rounds toward zero)."""
    if a.size and a.min() >= 0 and b.min() > 0:
        return a // b
    q = np.abs(a) // np.abs(b)
    return np.where((a < 0) ^ (b < 0), -q, q)


def compute_token_metrics(settings, scheduled_ns, first_token_ns, complete_ns, n_tokens, *,
                          strict: bool = False) -> TokenMetrics:
    """LoadGen's LLM results for a finished run.

    Per-sample arrays in issue order (one sample per Server query; Offline: the samples of
    its one query, all scheduled at 0), all times in ns from the run's start:
    ``scheduled_ns`` (the query's scheduled time), ``first_token_ns`` (when the first token
    was ready; ``None``, or -1 entries, where a sample reported none: allowed in Offline, an
    error elsewhere), ``complete_ns`` (when the sample completed), ``n_tokens`` (its output
    tokens, int). ``settings``: a
    ``sim.loadgen.settings.TestSettings`` with ``use_token_latencies`` or
    ``infer_token_latencies``. The arrays are not modified. ``strict``: raise ``InputError``
    on a sample LoadGen would log an error for, instead of listing it in ``errors``.
    """
    scenario = settings.scenario
    if scenario not in ("Server", "Offline"):
        raise InputError(f"{settings.model} {scenario}: token metrics are modelled for Server "
                         f"(and Interactive) and Offline; expected one of those scenarios")
    if not (settings.use_token_latencies or settings.infer_token_latencies):
        raise InputError(f"{settings.model} {scenario}: neither use_token_latencies nor "
                         f"infer_token_latencies is set; expected an LLM benchmark's settings "
                         f"(use sim.loadgen.metrics.compute for the others)")
    sched = np.asarray(scheduled_ns, dtype=np.int64)
    done = np.asarray(complete_ns, dtype=np.int64)
    tokens = np.asarray(n_tokens, dtype=np.int64)
    n = sched.size
    if n == 0:
        raise InputError(f"{settings.model} {scenario}: no samples completed; expected at least one")
    if done.shape != sched.shape or tokens.shape != sched.shape:
        raise InputError(f"{settings.model} {scenario}: per-sample arrays of different lengths "
                         f"(scheduled {sched.size}, complete {done.size}, n_tokens {tokens.size}); "
                         f"expected one entry per sample each")
    if first_token_ns is None:
        first = np.full(n, -1, dtype=np.int64)
    else:
        first = np.asarray(first_token_ns, dtype=np.int64)
        if first.shape != sched.shape:
            raise InputError(f"{settings.model} {scenario}: first_token_ns has {first.size} "
                             f"entries; expected {n}, one per sample")
    if np.any(done < sched):
        i = int(np.argmax(done < sched))
        raise InputError(f"{settings.model} {scenario}: sample {i} completes at {int(done[i])} ns, "
                         f"before its scheduled time {int(sched[i])} ns; expected complete >= scheduled")
    latency = done - sched
    if settings.use_token_latencies:
        return _token_metrics(settings, sched, first, done, tokens, latency, strict)
    return _inferred_metrics(settings, sched, done, latency)


def _sample_errors(scenario: str, first: np.ndarray, done: np.ndarray,
                   tokens: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
    """LoadGen's error messages for unusable samples, and which samples have a usable TTFT
    and a usable TPOT."""
    errors: list[str] = []
    has_first = first >= 0
    needs_first = scenario != "Offline"
    for i in np.flatnonzero(tokens <= 1):
        k = int(tokens[i])
        errors.append(ERROR_NO_TOKENS if k == 0 else
                      ERROR_NEGATIVE_TOKENS if k < 0 else ERROR_ONE_TOKEN)
    if needs_first:
        late = has_first & (first > done)
        for _ in np.flatnonzero(~has_first | late):
            errors.append(ERROR_BEFORE_FIRST_TOKEN)
        for _ in np.flatnonzero(late):
            errors.append(ERROR_TOKEN_AFTER_COMPLETION)
        ttft_ok = has_first & ~late
    else:
        ttft_ok = has_first & (first <= done)
    tpot_ok = ttft_ok & (tokens > 1)
    return errors, ttft_ok, tpot_ok


def _token_metrics(settings, sched, first, done, tokens, latency, strict) -> TokenMetrics:
    scenario = settings.scenario
    n = sched.size
    errors, ttft_ok, tpot_ok = _sample_errors(scenario, first, done, tokens)
    if errors and strict:
        raise InputError(f"{settings.model} {scenario}: {len(errors)} sample(s) LoadGen would "
                         f"log an error for, the first: {errors[0]}")
    token_count = int(tokens[tokens > 1].sum())  # LoadGen drops the counts it refused
    lat_sorted = np.sort(latency)
    sample_stats = LatencyStats.of_sorted(lat_sorted)
    pct = float(settings.target_latency_percentile)
    ttft_limit = int(settings.server_ttft_latency_ns)
    tpot_limit = int(settings.server_tpot_latency_ns)
    final_scheduled = int(sched[-1])
    final_done = int(done[-1])  # the last issued query's completion
    max_latency = sample_stats.max_ns
    ttft_stats = tpot_stats = None
    ttft_p = tpot_p = ttft_over = tpot_over = None
    perf = None
    es_met = True
    ttft_lines: list[str] = []
    tpot_lines: list[str] = []
    recs: list[str] = []
    scheduled_sps = None
    if scenario == "Server":
        ttft_all = first - sched
        if tpot_ok.all():
            ttft = ttft_all
            tpot = tpot_ns(latency, ttft_all, tokens)
        else:
            ttft = ttft_all[ttft_ok]
            tpot = tpot_ns(latency[tpot_ok], ttft_all[tpot_ok], tokens[tpot_ok])
        ttft.sort()
        tpot.sort()
        ttft_stats = _stats(ttft, n)
        tpot_stats = _stats(tpot, n)
        ttft_p = percentile_of_sorted(ttft, pct) if ttft.size else None
        tpot_p = percentile_of_sorted(tpot, pct) if tpot.size else None
        ttft_over = int(ttft.size - np.searchsorted(ttft, ttft_limit, side="right"))
        tpot_over = int(tpot.size - np.searchsorted(tpot, tpot_limit, side="right"))
        perf = True
        if ttft_p is None or ttft_p > ttft_limit:
            recs.append(TTFT_ADVICE)
            perf = False
        if tpot_p is None or tpot_p > tpot_limit:
            recs.append(TPOT_ADVICE)
            perf = False
        # LoadGen checks TPOT first and TTFT only when TPOT passes
        es_tpot = early_stopping.server_early_stopping(n, tpot_over, pct)
        tpot_lines = es_tpot.summary_lines()
        es_met = es_tpot.met
        if es_met:
            es_ttft = early_stopping.server_early_stopping(n, ttft_over, pct)
            ttft_lines = es_ttft.summary_lines()
            es_met = es_ttft.met
        samples_ps = (n - 1) / (final_done / 1e9) if final_done else 0.0
        tokens_ps = token_count / (final_done / 1e9) if final_done else 0.0
        scheduled_sps = (n - 1) / (final_scheduled / 1e9) if final_scheduled else 0.0
        headline_name = "Completed tokens per second"
    else:
        samples_ps = n / (max_latency / 1e9) if max_latency else 0.0
        tokens_ps = token_count / (max_latency / 1e9) if max_latency else 0.0
        headline_name = "Tokens per second"
    md = min_duration_met(scenario, int(settings.min_duration_ns), final_scheduled,
                          final_scheduled, max_latency)
    query_count = n if scenario == "Server" else 1
    mq = (min_queries_met(query_count, int(settings.min_query_count))
          and n >= int(settings.min_sample_count))
    valid = md and mq and perf is not False and es_met
    if not md:
        recs.append(MIN_DURATION_ADVICE[scenario])
    if not mq:
        recs.append(MIN_QUERIES_ADVICE)
    extra = {"final_query_scheduled_ns": final_scheduled,
             "final_query_all_samples_done_ns": final_done,
             "overlatency_query_count": int((latency > int(settings.target_latency_ns)).sum())}
    if scenario == "Server":
        # LoadGen's detail-log figures: tokens / last issue time, and its "throughput"
        # tokens / (mean latency in ns x samples)
        extra["token_throughput_with_loadgen_overhead"] = (
            token_count / (final_scheduled / 1e9) if final_scheduled else 0.0)
        extra["token_throughput"] = (token_count / (sample_stats.mean_ns * n)
                                     if sample_stats.mean_ns else 0.0)
    return TokenMetrics(
        scenario=scenario, query_count=query_count, sample_count=n, token_count=token_count,
        target_percentile=pct, ttft_latency_ns=ttft_limit, tpot_latency_ns=tpot_limit,
        headline_name=headline_name, headline_value=float(tokens_ps), valid=bool(valid),
        min_duration_met=bool(md), min_queries_met=bool(mq), perf_constraints_met=perf,
        early_stopping_met=bool(es_met), ttft_early_stopping_lines=ttft_lines,
        tpot_early_stopping_lines=tpot_lines, recommendations=recs,
        sample_latency=sample_stats, ttft=ttft_stats, tpot=tpot_stats,
        samples_per_second=float(samples_ps), tokens_per_second=float(tokens_ps),
        scheduled_samples_per_second=scheduled_sps, ttft_percentile_ns=ttft_p,
        tpot_percentile_ns=tpot_p, ttft_overlatency_count=ttft_over,
        tpot_overlatency_count=tpot_over, errors=errors, extra=extra)


def _stats(values_sorted: np.ndarray, sample_count: int) -> LatencyStats | None:
    """LoadGen's token statistics: percentiles over the values, the mean over all samples."""
    if values_sorted.size == 0:
        return None
    stats = LatencyStats.of_sorted(values_sorted)
    stats.mean_ns = int(values_sorted.sum(dtype=np.int64) // sample_count)
    return stats


def _inferred_metrics(settings, sched, done, latency) -> TokenMetrics:
    """gptj: LoadGen's plain latency verdict, tokens inferred from samples."""
    scenario = settings.scenario
    n = sched.size
    factor = int(settings.token_latency_scaling_factor)
    if scenario == "Server":
        q_sched, q_done = sched, done
    else:
        q_sched, q_done = sched[:1], done.max(keepdims=True)
    m = metrics.compute(scenario, settings, q_sched, q_done, latency.copy(), 1)
    if scenario == "Server":
        final_done = int(done[-1])
        samples_ps = (n - 1) / (final_done / 1e9) if final_done else 0.0
        inferred = factor * (n - 1) / (final_done / 1e9) if final_done else 0.0
        headline_name = "Completed tokens per second (inferred)"
    else:
        max_latency = m.sample_latency.max_ns
        samples_ps = n / (max_latency / 1e9) if max_latency else 0.0
        inferred = factor * n / (max_latency / 1e9) if max_latency else 0.0
        headline_name = "Tokens per second (inferred)"
    return TokenMetrics(
        scenario=scenario, query_count=m.query_count, sample_count=n, token_count=0,
        target_percentile=m.target_percentile, ttft_latency_ns=int(settings.server_ttft_latency_ns),
        tpot_latency_ns=int(settings.server_tpot_latency_ns), headline_name=headline_name,
        headline_value=float(inferred), valid=m.valid,
        min_duration_met=m.min_duration_met, min_queries_met=m.min_queries_met,
        perf_constraints_met=m.perf_constraints_met, early_stopping_met=m.early_stopping_met,
        ttft_early_stopping_lines=[], tpot_early_stopping_lines=[],
        recommendations=list(m.recommendations),
        sample_latency=m.sample_latency, ttft=None, tpot=None,
        samples_per_second=float(samples_ps), tokens_per_second=float(inferred),
        scheduled_samples_per_second=m.extra.get("scheduled_samples_per_second"),
        inferred_tokens_per_second=float(inferred), base_metrics=m, extra=dict(m.extra))
