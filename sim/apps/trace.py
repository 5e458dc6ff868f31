"""A simulated run as a Chrome trace: open it in Perfetto (ui.perfetto.dev) or chrome://tracing.

The file is the JSON trace-event format: ``{"traceEvents": [...], "displayTimeUnit": "ms"}``
with "X" (complete) events, each on a track named by its process id and thread id, and
"M" (metadata) events naming the processes and threads. Times are microseconds of
simulated time (``ts``, ``dur``; fractions keep nanoseconds).

Tracks:

- *LoadGen queries*: one event per query, from its scheduled (issue) time to its last
  sample's completion. Queries overlap (Server), so they are spread over lanes (threads):
  each query goes on the first lane free at its issue time, which uses as many lanes as
  queries were ever outstanding at once. A counter track shows the queries outstanding.
- *device d*: one thread per instance; on it each batch's copy-in (dispatch to compute
  start, when the system has a host link) and its compute (compute start to the instance
  being free again, including the copy back).
- *post-processing*: each batch's post-processing (instance free to samples done), in lanes
  like the queries, when the system has a post-processing stage.

Large runs are cut: the first ``max_queries`` queries are exported, with the batches that
serve their samples (Offline has one query; there at most ``max_queries`` batches are
exported). ``otherData`` says what was left out.
"""

from __future__ import annotations

import heapq
import json
from pathlib import Path

import numpy as np

from sim.util import atomic
from sim.util.checks import LIMITS, check_work, number

PID_QUERIES = 1
PID_POST = 2
PID_DEVICE0 = 10
#: Events one exported query may add at most: its own, two changes of the outstanding counter,
#: and one batch's copy-in, compute and post-processing.
EVENTS_PER_QUERY = 6
#: The most queries a trace exports: past it a trace could exceed ``LIMITS["trace_events"]``.
MAX_TRACE_QUERIES = LIMITS["trace_events"] // EVENTS_PER_QUERY


def _us(ns) -> float:
    return float(ns) / 1e3


def _lanes(start_ns: np.ndarray, end_ns: np.ndarray) -> np.ndarray:
    """Interval partitioning: the lowest free lane for each interval (in start order)."""
    order = np.argsort(start_ns, kind="stable")
    lane = np.zeros(len(start_ns), dtype=np.int64)
    busy: list[tuple[int, int]] = []         # (end, lane) of lanes in use
    free: list[int] = []                     # lanes free again, lowest first
    n_lanes = 0
    for i in order:
        s = start_ns[i]
        while busy and busy[0][0] <= s:
            heapq.heappush(free, heapq.heappop(busy)[1])
        if free:
            k = heapq.heappop(free)
        else:
            k, n_lanes = n_lanes, n_lanes + 1
        lane[i] = k
        heapq.heappush(busy, (int(end_ns[i]), k))
    return lane


def _meta(pid: int, name: str, sort: int, tid: int | None = None, thread: str | None = None) -> list[dict]:
    if tid is None:
        return [{"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": name}},
                {"ph": "M", "name": "process_sort_index", "pid": pid, "tid": 0, "args": {"sort_index": sort}}]
    return [{"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": thread}},
            {"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": tid, "args": {"sort_index": sort}}]


def chrome_trace(run, max_queries: int = 10_000) -> dict:
    """The trace of a ``sim.run.RunResult`` (or a bare ``sim.sut.engine.EngineResult``) as a dict."""
    max_queries = number(max_queries, "chrome_trace", "max_queries", minimum=1, integer=True)
    eng = getattr(run, "engine", run)
    scenario = getattr(run, "scenario", None)
    system = getattr(run, "system", None)
    spq = int(eng.samples_per_query)
    n_q = len(eng.query_scheduled_ns)
    q_n = min(n_q, max_queries)
    sched = np.asarray(eng.query_scheduled_ns[:q_n], dtype=np.int64)
    done = np.asarray(eng.query_complete_ns[:q_n], dtype=np.int64)

    b = eng.batches
    nb = len(b.get("first", []))
    order = np.argsort(b["first"], kind="stable") if nb else np.zeros(0, dtype=np.int64)
    cols = {k: np.asarray(v)[order] for k, v in b.items()} if nb else {}
    sample_limit = q_n * spq
    keep = np.flatnonzero(cols["first"] < sample_limit)[:max_queries] if nb else np.zeros(0, dtype=np.int64)
    check_work("trace_events", 3 * q_n + 3 * len(keep),
               f"a trace of {q_n:,} queries and {len(keep):,} batches (max_queries {max_queries:,})")

    events: list[dict] = []
    name = f"LoadGen queries ({scenario})" if scenario else "LoadGen queries"
    events += _meta(PID_QUERIES, name + (f", first {q_n:,} of {n_q:,}" if q_n < n_q else ""), 0)
    lanes = _lanes(sched, done)
    for k in range(int(lanes.max()) + 1 if q_n else 0):
        events += _meta(PID_QUERIES, "", k, tid=k, thread=f"lane {k}")
    first_batch = np.searchsorted(cols["first"], np.arange(q_n) * spq, side="right") - 1 if nb else None
    for q in range(q_n):
        args = {"query": q, "samples": spq, "latency_ms": (done[q] - sched[q]) / 1e6}
        if nb:
            lo = int(first_batch[q])
            hi = int(np.searchsorted(cols["first"], (q + 1) * spq, side="left"))
            args["batches"] = [max(lo, 0), max(hi - 1, lo)]          # first and last batch serving it
        events.append({"name": f"query {q}", "cat": "query", "ph": "X", "pid": PID_QUERIES, "tid": int(lanes[q]),
                       "ts": _us(sched[q]), "dur": _us(done[q] - sched[q]), "args": args})
    # outstanding-queries counter
    if q_n:
        t = np.concatenate([sched, done])
        step = np.concatenate([np.ones(q_n, dtype=np.int64), -np.ones(q_n, dtype=np.int64)])
        o = np.lexsort((step, t))            # at equal times completions first
        t, level = t[o], np.cumsum(step[o])
        last = np.r_[t[1:] != t[:-1], True]   # one value per distinct time
        for ti, lv in zip(t[last], level[last]):
            events.append({"name": "queries outstanding", "ph": "C", "pid": PID_QUERIES, "tid": 0,
                           "ts": _us(ti), "args": {"queries": int(lv)}})

    devices = sorted(set(int(d) for d in cols["device"][keep])) if len(keep) else []
    if system is not None:
        devices = list(range(system.accelerators))
    instances = system.instances if system is not None else (int(cols["instance"].max()) + 1 if nb else 1)
    for d in devices:
        events += _meta(PID_DEVICE0 + d, f"device {d}", PID_DEVICE0 + d)
        for i in range(instances):
            events += _meta(PID_DEVICE0 + d, "", i, tid=i, thread=f"instance {i}")
    post = keep[cols["done_ns"][keep] > cols["end_ns"][keep]] if len(keep) else keep
    if len(post):
        events += _meta(PID_POST, "post-processing", 1)
        plane = _lanes(cols["end_ns"][post], cols["done_ns"][post])
        for k in range(int(plane.max()) + 1):
            events += _meta(PID_POST, "", k, tid=k, thread=f"lane {k}")
    for j in keep:
        first, count = int(cols["first"][j]), int(cols["count"][j])
        pid, tid = PID_DEVICE0 + int(cols["device"][j]), int(cols["instance"][j])
        dispatch, start, end, fin = (int(cols[k][j]) for k in ("dispatch_ns", "start_ns", "end_ns", "done_ns"))
        args = {"batch": int(j), "samples": count, "first_sample": first,
                "queries": [first // spq, (first + count - 1) // spq]}
        if start > dispatch:
            events.append({"name": f"copy in ({count})", "cat": "link", "ph": "X", "pid": pid, "tid": tid,
                           "ts": _us(dispatch), "dur": _us(start - dispatch), "args": args})
        events.append({"name": f"batch of {count}", "cat": "batch", "ph": "X", "pid": pid, "tid": tid,
                       "ts": _us(start), "dur": _us(end - start), "args": args})
    if len(post):
        for j, k in zip(post, plane):
            events.append({"name": f"post ({int(cols['count'][j])})", "cat": "post", "ph": "X", "pid": PID_POST,
                           "tid": int(k), "ts": _us(cols["end_ns"][j]),
                           "dur": _us(cols["done_ns"][j] - cols["end_ns"][j]), "args": {"batch": int(j)}})
    other = {"source": "mlperf-inference-sim", "queries_exported": q_n, "queries_total": n_q,
             "batches_exported": int(len(keep)), "batches_total": nb, "samples_per_query": spq}
    if scenario:
        other["scenario"] = scenario
    if system is not None:
        other["system"] = system.name
    if getattr(run, "cost_description", None):
        other["cost_model"] = run.cost_description
    return {"traceEvents": events, "displayTimeUnit": "ms", "otherData": other}


def write_trace(run, path: str | Path, max_queries: int = 10_000) -> Path:
    """Write ``chrome_trace(run)`` to ``path`` (atomically); open it in ui.perfetto.dev."""
    trace = chrome_trace(run, max_queries)
    return atomic.write_text(path, json.dumps(trace, separators=(",", ":")) + "\n")
