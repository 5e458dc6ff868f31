"""Chrome trace export: valid JSON trace events, one per query and per batch, tracks that do not overlap."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict

import numpy as np
import pytest

from sim.apps.trace import PID_DEVICE0, PID_POST, PID_QUERIES, chrome_trace, write_trace
from sim.run import simulate
from sim.sut.system import parse_system

SYSTEM = parse_system({"name": "2x2 with link and post-processing",
                       "batching": {"policy": "dynamic", "max_batch": 8, "max_queue_delay_us": 500},
                       "accelerators": {"count": 2, "instances": 2,
                                        "cost": {"kind": "affine", "a_us": 500, "b_us_per_sample": 50}},
                       "host": {"postprocess": {"workers": 2, "time_us_per_batch": 30}},
                       "link": {"bandwidth_gbps": 16, "input_bytes_per_sample": 600_000}})
SETTINGS = {"min_query_count": 1500, "min_duration_ns": 100_000_000}


def run(scenario, **extra):
    over = {**SETTINGS, **extra}
    if scenario == "Server":
        over.setdefault("server_target_qps", 6000.0)
    return simulate(scenario, workload=None, system=SYSTEM, overrides=over)


def by_kind(trace):
    out = defaultdict(list)
    for e in trace["traceEvents"]:
        out[(e["ph"], e.get("cat"))].append(e)
    return out


def assert_tracks_do_not_overlap(events):
    tracks = defaultdict(list)
    for e in events:
        tracks[(e["pid"], e["tid"])].append((e["ts"], e["ts"] + e["dur"]))
    for spans in tracks.values():
        spans.sort()
        for (s0, e0), (s1, _) in zip(spans, spans[1:]):
            assert s1 >= e0 - 1e-9, "events on one track must not overlap (Perfetto nests them)"


@pytest.mark.parametrize("scenario", ["Server", "MultiStream"])
def test_trace_has_an_event_per_query_and_per_batch(tmp_path, scenario):
    r = run(scenario)
    path = write_trace(r, tmp_path / "t.json")
    with open(path) as fh:
        trace = json.load(fh)
    assert trace["displayTimeUnit"] == "ms" and trace["otherData"]["scenario"] == scenario
    ev = by_kind(trace)
    queries, batches = ev[("X", "query")], ev[("X", "batch")]
    eng = r.engine
    assert len(queries) == len(eng.query_scheduled_ns)
    assert len(batches) == len(eng.batches["count"])
    assert sum(e["args"]["samples"] for e in batches) == len(eng.sample_complete_ns)
    assert len(ev[("X", "link")]) == len(batches)            # a copy-in per batch (the system has a link)
    assert len(ev[("X", "post")]) == len(batches)            # and post-processing
    # times: microseconds of simulated time, the query spans issue -> completion
    q = sorted(queries, key=lambda e: e["args"]["query"])
    np.testing.assert_allclose([e["ts"] for e in q], eng.query_scheduled_ns / 1e3)
    np.testing.assert_allclose([e["ts"] + e["dur"] for e in q], eng.query_complete_ns / 1e3, rtol=1e-12)
    assert {e["pid"] for e in batches} == {PID_DEVICE0, PID_DEVICE0 + 1}
    assert {e["tid"] for e in batches} == {0, 1}
    assert_tracks_do_not_overlap([e for e in trace["traceEvents"] if e["ph"] == "X"])
    names = {(e["pid"], e["args"]["name"]) for e in ev[("M", None)] if e["name"] == "process_name"}
    assert (PID_DEVICE0 + 1, "device 1") in names and (PID_POST, "post-processing") in names
    assert any(p == PID_QUERIES for p, _ in names)
    threads = {(e["pid"], e["tid"]) for e in ev[("M", None)] if e["name"] == "thread_name"}
    assert {(e["pid"], e["tid"]) for e in trace["traceEvents"] if e["ph"] == "X"} <= threads
    counters = ev[("C", None)]
    assert counters and max(c["args"]["queries"] for c in counters) >= 1 and counters[-1]["args"]["queries"] == 0


def test_cap_keeps_large_runs_small():
    r = run("Server", min_query_count=20_000)
    full = chrome_trace(r)
    small = chrome_trace(r, max_queries=100)
    ev = by_kind(small)
    assert len(ev[("X", "query")]) == 100
    assert small["otherData"]["queries_exported"] == 100 and small["otherData"]["queries_total"] == 20_000
    last_sample = 100 * r.engine.samples_per_query
    assert all(e["args"]["first_sample"] < last_sample for e in ev[("X", "batch")])
    assert len(json.dumps(small)) < len(json.dumps(full)) / 20
    offline = chrome_trace(run("Offline"), max_queries=50)
    assert len(by_kind(offline)[("X", "batch")]) == 50                 # Offline: one query, batches capped


def test_cli_run_writes_a_trace(tmp_path):
    out = tmp_path / "run.trace.json"
    r = subprocess.run([sys.executable, "-m", "sim", "run", "--scenario", "SingleStream", "--service-time-ms", "0.5",
                        "--min-query-count", "200", "--min-duration-ms", "50", "--trace", str(out),
                        "--trace-max-queries", "50"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Chrome trace" in r.stdout
    trace = json.loads(out.read_text())
    assert len(by_kind(trace)[("X", "query")]) == 50
