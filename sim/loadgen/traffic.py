"""The queries LoadGen issues, generated exactly as LoadGen generates them.

LoadGen decides every query before the timed run starts; what the system under test
does only decides how many of them get issued (closed loops stop early) and when.
``generate(settings)`` reproduces that decision as numpy arrays:

Loaded set (``loaded_set``)
    The performance sample set loaded into memory: the indices
    ``0 .. performance_sample_count - 1`` (capped at the QSL's size) shuffled with
    ``mt19937(qsl_rng_seed)``. In MultiStream its first ``samples_per_query - 1``
    entries are appended again as padding, so a query can take contiguous entries from
    any start. This is what LoadGen logs as ``loaded_qsl_set``.

Per-query samples (``sample_index``, ``samples_per_query``)
    One flat ``int64`` array, query after query, ``samples_per_query`` entries each:
    ``sample_index.reshape(query_count, samples_per_query)`` (or ``per_query``) gives
    query by query. The generator ``mt19937(sample_index_rng_seed)`` is first advanced by
    LoadGen's setup shuffles (the "unique" order of the loaded set and the "equal issue"
    permutations, made whether used or not). Then:

    * SingleStream / Server: each query is ``loaded_set[u]``, ``u`` uniform in
      ``[0, performance_sample_count - 1]``;
    * MultiStream: each query is ``loaded_set[u : u + samples_per_query]``;
    * Offline: one query, the loaded set repeated in its loaded order (plus a partial
      copy) up to the Offline sample count;
    * equal-issue models (3d-unet, gptj, LLMs): the concatenated permutations instead of
      uniform draws (Offline: each repeat shuffled), with the query count padded to whole
      passes over the loaded set.

Server arrival times (``scheduled_ns``)
    Offsets from the start of the run, in ns: gaps drawn from
    ``exponential_distribution(target_qps)`` on ``mt19937(schedule_rng_seed)``, each cut
    to whole ns, summed; the first query is at 0. Closed loops (SingleStream,
    MultiStream) and Offline have none (``None``): a query is scheduled when issued.

How many queries (``query_count``)
    Queries are generated while the previous query's scheduled offset is below the
    generation horizon or fewer than ``min_query_count`` exist. The horizon is
    ``min_duration`` for Server and ``2 * min_duration`` for SingleStream/MultiStream,
    whose offsets advance by ``1 / target_qps`` (the expected latency) per query. So
    Server gets every arrival before ``min_duration`` plus one, and a closed loop
    ``max(min_query_count, ceil(2 * min_duration / expected_latency) + 1)``. Offline
    gets one query of ``max(min_query_count, 1.1 * min_duration * expected_qps)``
    samples (``settings.samples_per_query``). ``generated_query_duration_ns`` is the
    scheduled offset after the last query, as LoadGen logs it.

When to stop issuing is a separate rule (``stop_issuing``): a closed loop stops once
``min_query_count`` queries are issued and the last was issued at least
``min_duration`` after the start; any scenario stops at ``max_query_count`` or past
``max_duration``; Server stops when more than ``server_max_async_queries`` are
outstanding (an error ending, not a throttle).

API: ``generate(settings, total_sample_count=None) -> Traffic`` (fields ``scenario``,
``loaded_set``, ``sample_index``, ``samples_per_query``, ``scheduled_ns``,
``generated_query_duration_ns``; ``query_count``, ``per_query``, ``query(i)``), and the
rules one by one: ``loaded_sample_set``, ``server_schedule``, ``schedule_period_ns``,
``generation_horizon_ns``, ``generated_query_count``, ``stop_issuing``.

Size (``run_size``, ``check_run_size``): before anything is generated, the queries, samples
and loaded set a run would need are estimated from the settings (the minimum query count, the
minimum duration at the target QPS or expected latency) and a run past
``sim.util.checks.LIMITS`` is refused with the estimate and the limit; ``generate`` checks
first, and ``sim.run.simulate`` checks what the user's settings already fix before it builds
the cost model.

Only performance mode is modelled (accuracy mode issues each sample once), including
LoadGen's audit switches ``performance_issue_unique`` / ``performance_issue_same``;
``server_coalesce_queries`` (merging late Server queries) is left to the SUT model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from sim.errors import InputError
from sim.loadgen import rng as lg_random
from sim.loadgen.scenarios import CLOSED_LOOP
from sim.loadgen.settings import TestSettings
from sim.util.checks import MAX_SPAN_NS, check_work


@dataclass(frozen=True)
class Traffic:
    """LoadGen's pre-generated queries for one performance run (see module docstring)."""

    scenario: str
    loaded_set: np.ndarray
    sample_index: np.ndarray
    samples_per_query: int
    scheduled_ns: np.ndarray | None
    generated_query_duration_ns: int

    @property
    def query_count(self) -> int:
        return self.sample_index.size // self.samples_per_query

    @property
    def per_query(self) -> np.ndarray:
        """``(query_count, samples_per_query)`` view of ``sample_index``."""
        return self.sample_index.reshape(self.query_count, self.samples_per_query)

    def query(self, i: int) -> np.ndarray:
        """The sample indices of query ``i``."""
        k = self.samples_per_query
        return self.sample_index[i * k:(i + 1) * k]


# ---------------------------------------------------------------------------------------
# Rules


def loaded_sample_set(settings: TestSettings, total_sample_count: int | None = None
                      ) -> tuple[np.ndarray, int]:
    """The performance set LoadGen loads, and how many of its entries queries draw from.

    Returns ``(loaded_set, distribution_end)``; ``loaded_set`` includes the MultiStream
    padding, ``distribution_end`` excludes it.
    """
    total = total_sample_count if total_sample_count is not None else settings.total_sample_count
    count = settings.performance_sample_count
    if total is not None:
        count = min(count, total)
    if count < 1:
        raise InputError(f"{settings.model} {settings.scenario}: performance sample count "
                         f"is {count}; expected at least 1 sample")
    samples = lg_random.shuffle(lg_random.MT19937(settings.qsl_rng_seed),
                                np.arange(count, dtype=np.int64))
    pad = settings.samples_per_query - 1 if settings.scenario == "MultiStream" else 0
    if pad:
        samples = np.concatenate((samples, samples[:pad]))
    return samples, count


def schedule_period_ns(target_qps: float) -> int:
    """Gap between closed-loop (and Offline) scheduled offsets: ``1 / target_qps`` in ns."""
    return int(math.trunc((1.0 / target_qps) * 1e9))


def generation_horizon_ns(settings: TestSettings) -> int:
    """Queries are generated while the previous offset is below this (0 for Offline)."""
    if settings.performance_issue_unique:
        return 0
    multiplier = 2 if settings.scenario in CLOSED_LOOP else 1
    return multiplier * settings.target_duration_ns


def generation_min_queries(settings: TestSettings, loaded_size: int) -> int:
    """The query count LoadGen generates at least (before equal-issue padding)."""
    if settings.performance_issue_unique:
        return loaded_size // settings.samples_per_query
    return settings.min_query_count


def generated_query_count(settings: TestSettings, first_past_horizon: int,
                          loaded_size: int) -> int:
    """How many queries LoadGen generates.

    ``first_past_horizon`` is the index of the first query whose scheduled offset is at
    or past ``generation_horizon_ns``. Without equal issue that is
    ``max(min_queries, first_past_horizon + 1)``; with it, the count is padded to whole
    passes over the loaded set and grows by a pass each time it is reached before the
    horizon.
    """
    horizon = generation_horizon_ns(settings)
    m0 = generation_min_queries(settings, loaded_size)
    equal_issue = settings.sample_concatenate_permutation and settings.scenario != "Offline"
    if equal_issue and m0 % loaded_size:
        m0 += loaded_size - m0 % loaded_size
    if horizon <= 0:
        return m0
    k = first_past_horizon
    if not equal_issue:
        return max(m0, k + 1)
    return max(m0, (k // loaded_size + 1) * loaded_size)


def stop_issuing(settings: TestSettings, queries_issued: int, last_issue_ns: int,
                 queries_outstanding: int = 0) -> str | None:
    """Why LoadGen stops issuing after the query just issued, or ``None`` to go on.

    ``last_issue_ns``: when that query was issued, from the start of the run.
    """
    if settings.scenario == "Server":
        if settings.max_async_queries and queries_outstanding > settings.max_async_queries:
            return "too many outstanding queries"
    elif queries_issued >= settings.min_query_count and last_issue_ns >= settings.target_duration_ns:
        return "min query count and min duration met"
    if settings.max_query_count and queries_issued >= settings.max_query_count:
        return "max query count reached"
    if settings.max_duration_ns and last_issue_ns > settings.max_duration_ns:
        return "max duration reached"
    return None


# ---------------------------------------------------------------------------------------
# Generation


def server_schedule(settings: TestSettings, loaded_size: int) -> tuple[np.ndarray, int]:
    """Server arrival offsets (ns, one per generated query) and the offset after the last.

    Gaps are drawn in chunks; offsets are their running sums (exact int64 arithmetic).
    """
    rng = lg_random.MT19937(settings.schedule_rng_seed)
    qps = settings.target_qps
    horizon = generation_horizon_ns(settings)
    expected = horizon * 1e-9 * qps
    offsets = np.empty(int(expected + 8.0 * math.sqrt(expected) + 1024), dtype=np.int64)
    total = 0  # offsets generated so far
    next_offset = 0  # offset of query `total` (sum of all gaps drawn)
    needed = None
    while needed is None or total <= needed:  # one more: the offset after the last
        chunk = min(1 << 21, max(offsets.size - total, 1024))
        if total + chunk > offsets.size:
            offsets = np.resize(offsets, max(total + chunk, int(offsets.size * 1.25)))
        gaps = lg_random.exponential_ns(rng, qps, chunk)
        part = offsets[total:total + chunk]
        np.cumsum(gaps, out=part)
        part -= gaps
        part += next_offset
        next_offset = int(part[-1] + gaps[-1])
        if needed is None:
            hit = int(np.argmax(part >= horizon))
            if part[hit] >= horizon:
                needed = generated_query_count(settings, total + hit, loaded_size)
        total += chunk
    duration = int(offsets[needed])
    if offsets.size > needed + (needed >> 4) + 4096:
        return offsets[:needed].copy(), duration
    return offsets[:needed], duration


# ---------------------------------------------------------------------------------------
# Size, before any of it is generated


def run_size(settings: TestSettings, total_sample_count: int | None = None, *,
             by_duration: bool = True) -> tuple[int, int, int]:
    """``(queries, samples, loaded samples)`` that ``generate`` would make with ``settings``.

    Exact for SingleStream, MultiStream and Offline; for Server the expected count of
    arrivals before the horizon (the generated count is within a few standard deviations of
    it). ``by_duration=False`` leaves out what the minimum duration adds (a lower bound, for
    settings whose expected latency or QPS is still to be set).
    """
    total = total_sample_count if total_sample_count is not None else settings.total_sample_count
    loaded = settings.performance_sample_count if total is None else min(settings.performance_sample_count, total)
    spq = settings.samples_per_query
    loaded = max(int(loaded), 1) + (spq - 1 if settings.scenario == "MultiStream" else 0)
    if settings.scenario == "Offline":
        lower = settings.samples_per_query if settings.performance_issue_unique else settings.requested_min_query_count
        samples = spq if by_duration else max(lower, 1)
        if settings.sample_concatenate_permutation and samples % loaded:
            samples += loaded - samples % loaded
        return 1, samples, loaded
    horizon = generation_horizon_ns(settings) if by_duration else 0
    if horizon > 0 and settings.scenario == "Server":
        past = math.ceil(horizon * 1e-9 * settings.target_qps)
    elif horizon > 0:
        period = schedule_period_ns(settings.target_qps)
        past = -(-horizon // period) if period > 0 else math.inf
    else:
        past = 0
    if past == math.inf:
        return math.inf, math.inf, loaded
    queries = generated_query_count(replace(settings, target_duration_ns=settings.target_duration_ns
                                            if by_duration else 0), past, loaded)
    return queries, queries * spq, loaded


def check_run_size(settings: TestSettings, total_sample_count: int | None = None, *,
                   by_duration: bool = True) -> None:
    """Refuse settings whose run would not fit (``sim.util.checks.LIMITS``), before any work:
    the queries and samples ``run_size`` estimates, the loaded sample set, and a schedule that
    would run past the simulated clock."""
    queries, samples, loaded = run_size(settings, total_sample_count, by_duration=by_duration)
    s = settings
    why = f"min_query_count {s.requested_min_query_count}"
    if by_duration and s.scenario != "Offline" and generation_horizon_ns(s) > 0:
        rate = (f"target QPS {s.target_qps:g}" if s.scenario == "Server"
                else f"expected latency {1e9 / s.target_qps:g} ns")
        why += f", min_duration {s.min_duration_ns // 1_000_000} ms at {rate}"
    elif by_duration and s.scenario == "Offline":
        why += f", min_duration {s.min_duration_ns // 1_000_000} ms x 1.1 x expected QPS {s.target_qps:g}"
    what = f"{s.model} {s.scenario} run size ({why})"
    check_work("queries", queries, what)
    check_work("samples", samples, what)
    check_work("samples", loaded, f"{s.model} {s.scenario}: the loaded sample set "
                                  f"(performance_sample_count {s.performance_sample_count})")
    if by_duration:
        period = schedule_period_ns(s.target_qps)
        span = queries * period if s.scenario != "Server" else max(generation_horizon_ns(s), queries * period) + period
        if span > MAX_SPAN_NS or period > MAX_SPAN_NS:
            raise InputError(f"{s.model} {s.scenario}: the generated schedule would span {span / 1e9:.3g} s "
                             f"(min_duration {s.min_duration_ns // 1_000_000} ms, {queries:,} queries of "
                             f"{period / 1e9:.3g} s); expected at most {MAX_SPAN_NS / 1e9:.3g} s, the "
                             f"simulated clock's range")


def _sample_rng_after_setup(settings: TestSettings, loaded_size: int, end: int
                            ) -> tuple[lg_random.MT19937, np.ndarray | None, np.ndarray | None]:
    """The sample-index generator after LoadGen's setup shuffles.

    Returns the generator, the "unique" order (shuffled ``0, stride, 2*stride, ... <
    end``; ``None`` unless ``performance_issue_unique``) and, for equal issue, the
    concatenated permutations of ``0 .. loaded_size-1`` (else ``None``). Shuffles whose
    result is not needed only draw their positions.
    """
    rng = lg_random.MT19937(settings.sample_index_rng_seed)
    stride = settings.samples_per_query if settings.scenario == "MultiStream" else 1
    order = np.arange(0, end, stride, dtype=np.int64)
    si, sj = lg_random.shuffle_swaps(rng, order.size)
    unique = lg_random.apply_swaps(order, si, sj) if settings.performance_issue_unique else None
    m_setup = generation_min_queries(settings, loaded_size)
    passes = -(-m_setup // loaded_size)
    keep = settings.sample_concatenate_permutation
    perm = np.arange(loaded_size, dtype=np.int64)
    chained = []
    for _ in range(passes):
        si, sj = lg_random.shuffle_swaps(rng, loaded_size)
        if keep:  # the order matters only when equal issue is on
            perm = lg_random.apply_swaps(perm, si, sj)
            chained.append(perm)
    equal_issue = np.concatenate(chained) if keep and chained else None
    return rng, unique, equal_issue


def generate(settings: TestSettings, total_sample_count: int | None = None) -> Traffic:
    """LoadGen's pre-generated queries for a performance run with ``settings``."""
    if settings.mode in ("AccuracyOnly", "FindPeakPerformance"):
        raise InputError(f"{settings.model} {settings.scenario}: mode {settings.mode} is not "
                         f"modelled; expected PerformanceOnly or SubmissionRun")
    check_run_size(settings, total_sample_count)
    loaded, end = loaded_sample_set(settings, total_sample_count)
    size = loaded.size
    rng, unique, equal_order = _sample_rng_after_setup(settings, size, end)
    scenario = settings.scenario
    spq = settings.samples_per_query
    if scenario == "Offline":
        return _offline(settings, loaded, rng)
    if scenario == "Server":
        scheduled, duration = server_schedule(settings, size)
        n = scheduled.size
    else:
        scheduled = None
        period = schedule_period_ns(settings.target_qps)
        horizon = generation_horizon_ns(settings)
        if period <= 0 and horizon > 0:
            raise InputError(f"{settings.model} {scenario}: expected latency "
                             f"{1e9 / settings.target_qps} ns rounds to a 0 ns period; "
                             f"LoadGen would generate queries forever; expected >= 1 ns")
        first_past = -(-horizon // period) if horizon > 0 else 0
        n = generated_query_count(settings, first_past, size)
        duration = n * period
    if n == 0:
        raise InputError(f"{settings.model} {scenario}: LoadGen would generate no queries "
                         f"(min_duration and min_query_count are 0); expected at least one")
    if settings.performance_issue_unique:
        pos = unique[:n]
        if pos.size < n:
            raise InputError("performance_issue_unique: more queries than unique samples")
    elif settings.performance_issue_same:
        pos = np.full(n, settings.performance_issue_same_index, dtype=np.int64)
    elif equal_order is not None and scenario != "MultiStream":
        pos = equal_order[np.arange(n, dtype=np.int64) % equal_order.size]
    else:
        pos = lg_random.uniform_int(rng, 0, end - 1, n)
    if scenario == "MultiStream":
        idx = pos[:, None] + np.arange(spq, dtype=np.int64)[None, :]
        if int(idx.max()) >= size:
            raise InputError("performance_issue_same_index: query runs past the loaded set")
        sample_index = loaded[idx].reshape(-1)
    else:
        sample_index = loaded[pos]
    return Traffic(scenario, loaded, np.ascontiguousarray(sample_index, dtype=np.int64),
                   spq, scheduled, int(duration))


def _offline(settings: TestSettings, loaded: np.ndarray, rng: lg_random.MT19937) -> Traffic:
    size = loaded.size
    spq = settings.samples_per_query
    equal_issue = settings.sample_concatenate_permutation
    if equal_issue and spq % size:
        spq += size - spq % size
    if settings.performance_issue_same:
        samples = np.full(spq, loaded[settings.performance_issue_same_index], dtype=np.int64)
    else:
        full, rest = divmod(spq, size)
        if equal_issue:
            blocks = [lg_random.shuffle(rng, loaded) for _ in range(full)]
        else:
            blocks = [loaded] * full
        samples = np.concatenate(blocks + [loaded[:rest]])
    period = schedule_period_ns(settings.target_qps)
    return Traffic("Offline", loaded, samples.astype(np.int64), spq, None, period)
