"""The simulated traffic against the real LoadGen (``mlcommons-loadgen``), run for real.

Each case runs LoadGen in its own process (it reads its embedded mlperf.conf once per
process) with a SUT that completes every sample inside ``IssueQuery``, a user.conf with
short settings, and tracing on. What is compared, exactly (no tolerance):

* settings: LoadGen's ``requested_*`` / ``effective_*`` detail-log lines (seeds from the
  embedded mlperf.conf included) against ``load_settings`` on the same user.conf;
* the loaded set: ``loaded_qsl_set`` in the detail log and the list the QSL's load
  callback received;
* query counts: ``generated_query_count``, ``generated_samples_per_query``,
  ``generated_query_duration`` (the scheduled offset after the last query, in ns; for
  Server the exact sum of all generated exponential gaps);
* sample indices: the indices the SUT received, in order, call by call, against the
  generated queries (closed loops stop early, so the issued prefix is compared; Server
  and Offline issue everything);
* Server schedule: every sample's trace event carries its scheduled time (LoadGen
  writes microseconds with 3 decimals, i.e. whole ns, relative to the log origin); the
  offsets from the first query must equal ``scheduled_ns`` to the nanosecond;
* LoadGen's verdicts on its own latencies: the trace records each sample's latency in ns
  (``complete_ns``); the summary's percentiles, mean and early-stopping figures must
  equal ``sim.loadgen.percentile`` / ``sim.loadgen.early_stopping`` applied to those latencies.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

CASES = {
    "single_stream": dict(
        model="resnet50", scenario="SingleStream", total=5000, perf=1024,
        user_conf=("resnet50.SingleStream.target_latency = 0.002\n"
                   "*.*.min_duration = 250\n"
                   "*.SingleStream.min_query_count = 200\n")),
    # 60000 loaded samples: every shuffle draws two positions per call, from ranges up to
    # 3.6e9 where Lemire's method rejects often
    "multi_stream": dict(
        model="resnet50", scenario="MultiStream", total=100000, perf=1024,
        user_conf=("resnet50.*.performance_sample_count_override = 60000\n"
                   "resnet50.MultiStream.target_latency = 0.005\n"
                   "*.*.min_duration = 250\n"
                   "*.*.min_query_count = 100\n")),
    # a 60 us bound puts part of the queries over latency: early stopping has work to do
    "server": dict(
        model="resnet50", scenario="Server", total=5000, perf=1024,
        user_conf=("resnet50.Server.target_qps = 3000\n"
                   "*.Server.min_duration = 300\n"
                   "*.*.min_query_count = 50\n"),
        overrides={"server_target_latency_ns": 60000}),
    # 70000 loaded samples: the shuffle draws one position per call; 82500 samples in
    # the query: one full pass over the loaded set plus a partial one
    "offline": dict(
        model="resnet50", scenario="Offline", total=100000, perf=1024,
        user_conf=("resnet50.*.performance_sample_count_override = 70000\n"
                   "resnet50.Offline.target_qps = 250000\n"
                   "*.*.min_duration = 300\n"
                   "resnet50.Offline.min_query_count = 100\n")),
    # equal issue, and LoadGen's 3D-UNet query-count rule (multiple of the QSL size)
    "3d_unet_single_stream": dict(
        model="3d-unet", scenario="SingleStream", total=43, perf=43,
        user_conf=("3d-unet.SingleStream.target_latency = 0.5\n"
                   "*.*.min_duration = 100\n"
                   "*.*.min_query_count = 10\n")),
    # audit modes (TEST01/TEST04 style): each loaded sample once, or one sample repeated
    "single_stream_unique": dict(
        model="resnet50", scenario="SingleStream", total=5000, perf=1024,
        user_conf=("resnet50.SingleStream.target_latency = 0.002\n"
                   "*.*.min_duration = 50\n"
                   "resnet50.*.performance_issue_unique = 1\n")),
    "multi_stream_unique": dict(
        model="resnet50", scenario="MultiStream", total=5000, perf=1024,
        user_conf=("resnet50.*.performance_sample_count_override = 1000\n"
                   "resnet50.MultiStream.target_latency = 0.005\n"
                   "*.*.min_duration = 50\n"
                   "resnet50.*.performance_issue_unique = 1\n")),
    "offline_same": dict(
        model="resnet50", scenario="Offline", total=5000, perf=1024,
        user_conf=("resnet50.Offline.target_qps = 2000\n"
                   "*.*.min_duration = 300\n"
                   "resnet50.Offline.min_query_count = 10\n"
                   "resnet50.*.performance_issue_same = 1\n"
                   "resnet50.*.performance_issue_same_index = 3\n")),
    # equal issue in Offline: the query is padded to whole passes, each pass shuffled
    "3d_unet_offline": dict(
        model="3d-unet", scenario="Offline", total=43, perf=43,
        user_conf=("3d-unet.Offline.target_qps = 1000\n"
                   "*.*.min_duration = 300\n")),
    "gptj_server": dict(
        model="gptj", scenario="Server", total=13368, perf=13368,
        user_conf=("gptj.*.performance_sample_count_override = 500\n"
                   "gptj.Server.target_qps = 3000\n"
                   "gptj.Server.min_duration = 300\n"
                   "gptj.Server.min_query_count = 50\n")),
}

_SAMPLE_EVENT = re.compile(
    r'"name":"Sample","cat":"default","ph":"b","pid":\d+,"id":\d+,"ts":(\d+)\.(\d{3}),'
    r'"args":\{"sample_seq":(\d+),"query_seq":(\d+),"sample_idx":(\d+),'
    r'"issue_start_ns":(-?\d+),"complete_ns":(-?\d+)\}')

_GENERATE_EVENT = re.compile(r'"name":"GenerateQueries","ph":"X",[^}]*?"ts":([\d.]+),"dur":([\d.]+)')

# ---------------------------------------------------------------------------------------
# The LoadGen side (runs in a subprocess: `python this_file.py '<json>'`)


def _run_loadgen_here(args: dict) -> None:
    import mlperf_loadgen as lg

    out = args["outdir"]
    os.chdir(out)  # no audit.config here
    settings = lg.TestSettings()
    rc = settings.FromConfig(os.path.join(out, "user.conf"), args["model"], args["scenario"])
    if rc != 0:
        raise SystemExit(f"FromConfig failed: {rc}")
    settings.scenario = getattr(lg.TestScenario, args["scenario"])
    settings.mode = lg.TestMode.PerformanceOnly
    for key, value in args.get("overrides", {}).items():
        setattr(settings, key, value)
    issued: list[list[int]] = []
    loaded: list[list[int]] = []

    def issue(samples):
        issued.append([s.index for s in samples])
        lg.QuerySamplesComplete([lg.QuerySampleResponse(s.id, 0, 0) for s in samples])

    sut = lg.ConstructSUT(issue, lambda: None)
    qsl = lg.ConstructQSL(args["total"], args["perf"], lambda idx: loaded.append(list(idx)),
                          lambda idx: None)
    log = lg.LogSettings()
    log.log_output.outdir = out
    log.enable_trace = True
    lg.StartTestWithLogSettings(sut, qsl, settings, log, "no-audit.config")
    lg.DestroyQSL(qsl)
    lg.DestroySUT(sut)
    with open(os.path.join(out, "sut_record.json"), "w") as fh:
        json.dump({"issued": issued, "loaded": loaded}, fh)


# ---------------------------------------------------------------------------------------
# The test side


def _detail(path: Path) -> dict:
    values: dict = {}
    for line in path.read_text().splitlines():
        if line.startswith(":::MLLOG "):
            entry = json.loads(line[len(":::MLLOG "):])
            values.setdefault(entry["key"], entry["value"])
    return values


def _trace_samples(path: Path) -> dict:
    rows = [tuple(int(g) for g in m.groups()) for m in _SAMPLE_EVENT.finditer(path.read_text())]
    rows.sort(key=lambda r: r[2])  # by sample sequence number = issue order
    a = np.array(rows, dtype=np.int64).reshape(-1, 7)
    gen = _GENERATE_EVENT.search(path.read_text())
    return {"scheduled_ns": a[:, 0] * 1000 + a[:, 1], "query_seq": a[:, 3],
            "sample_idx": a[:, 4], "latency_ns": a[:, 6],
            # LoadGen starts its run clock after generating the queries, before the first issue
            "queries_generated_ns": round((float(gen.group(1)) + float(gen.group(2))) * 1000)}


def _execute(name: str, case: dict, root: Path) -> dict:
    out = root / name
    out.mkdir(parents=True, exist_ok=True)
    (out / "user.conf").write_text(case["user_conf"])
    args = {k: case[k] for k in ("model", "scenario", "total", "perf")}
    args.update(outdir=str(out), overrides=case.get("overrides", {}))
    proc = subprocess.run([sys.executable, __file__, json.dumps(args)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((out / "sut_record.json").read_text())
    return {"conf": out / "user.conf", "detail": _detail(out / "mlperf_log_detail.txt"),
            "summary": (out / "mlperf_log_summary.txt").read_text(),
            "trace": _trace_samples(out / "mlperf_log_trace.json"), **record}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    pytest.importorskip("mlperf_loadgen")
    root = tmp_path_factory.mktemp("loadgen")
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {n: pool.submit(_execute, n, c, root) for n, c in CASES.items()}
        return {n: f.result() for n, f in futures.items()}


def _simulated(name: str, run: dict):
    from sim.loadgen.settings import load_settings
    from sim.loadgen.traffic import generate

    case = CASES[name]
    settings = load_settings(case["model"], case["scenario"], run["conf"],
                             overrides=case.get("overrides"), total_sample_count=case["total"],
                             qsl_performance_sample_count=case["perf"])
    return settings, generate(settings)


def _summary_int(summary: str, label: str) -> int:
    m = re.search(re.escape(label) + r"\s*:\s*(\d+)", summary)
    assert m, f"{label!r} not in summary"
    return int(m.group(1))


@pytest.mark.parametrize("name", list(CASES))
def test_settings_match_loadgen(runs, name):
    settings, _ = _simulated(name, runs[name])
    d = runs[name]["detail"]
    exact = {
        "effective_samples_per_query": settings.samples_per_query,
        "effective_target_latency_ns": settings.target_latency_ns,
        "effective_max_async_queries": settings.max_async_queries,
        "effective_target_duration_ms": settings.target_duration_ns // 10**6,
        "effective_min_duration_ms": settings.min_duration_ns // 10**6,
        "effective_max_duration_ms": settings.max_duration_ns // 10**6,
        "effective_min_query_count": settings.min_query_count,
        "effective_max_query_count": settings.max_query_count,
        "effective_min_sample_count": settings.min_sample_count,
        "effective_qsl_rng_seed": settings.qsl_rng_seed,
        "effective_sample_index_rng_seed": settings.sample_index_rng_seed,
        "effective_schedule_rng_seed": settings.schedule_rng_seed,
        "effective_performance_sample_count": settings.performance_sample_count,
        "effective_accuracy_sample_count": settings.accuracy_sample_count,
        "effective_sample_concatenate_permutation": settings.sample_concatenate_permutation,
        "requested_min_query_count": settings.requested_min_query_count,
        "requested_performance_sample_count_override": settings.performance_sample_count_override,
    }
    for key, value in exact.items():
        assert d[key] == value, key
    assert d["effective_target_qps"] == pytest.approx(settings.target_qps, rel=1e-5)
    assert d["effective_target_latency_percentile"] == pytest.approx(
        settings.target_latency_percentile, rel=1e-6)
    # the seeds LoadGen took from the mlperf.conf embedded in the installed wheel
    assert (d["requested_qsl_rng_seed"], d["requested_sample_index_rng_seed"],
            d["requested_schedule_rng_seed"]) == (
        2085463073848966840, 2747215439041700203, 16159082839903944936)


@pytest.mark.parametrize("name", list(CASES))
def test_loaded_set_and_counts_match_loadgen(runs, name):
    _, traffic = _simulated(name, runs[name])
    run = runs[name]
    d = run["detail"]
    assert d["loaded_qsl_set"] == traffic.loaded_set.tolist()
    assert run["loaded"] == [traffic.loaded_set.tolist()]
    assert d["generated_query_count"] == traffic.query_count
    assert d["generated_samples_per_query"] == traffic.samples_per_query
    assert d["generated_query_duration"] == traffic.generated_query_duration_ns


@pytest.mark.parametrize("name", list(CASES))
def test_issued_samples_match_loadgen(runs, name):
    _, traffic = _simulated(name, runs[name])
    run = runs[name]
    issued = run["issued"]
    n = len(issued)
    assert n == run["detail"]["result_query_count"]
    assert 0 < n <= traffic.query_count
    if traffic.scenario in ("Server", "Offline"):
        assert n == traffic.query_count  # open loops issue every generated query
    expected = traffic.per_query[:n]
    assert np.array_equal(np.array(issued, dtype=np.int64), expected)
    trace = run["trace"]
    assert np.array_equal(trace["sample_idx"], expected.reshape(-1))
    assert np.array_equal(trace["query_seq"] - trace["query_seq"][0],
                          np.repeat(np.arange(n), traffic.samples_per_query))


@pytest.mark.parametrize("name", ["single_stream", "multi_stream"])
def test_closed_loop_stop_rule_consistent_with_loadgen(runs, name):
    """The issue times LoadGen logged agree with ``stop_issuing``.

    A closed-loop query is scheduled when issued, so the trace gives issue times, but
    relative to the log origin, not to the run's start (which comes a few us before the
    first issue). Hence: the query before the last must not satisfy the rule even
    measured from the first issue; the last must satisfy it allowing 10 ms for the start.
    """
    from sim.loadgen.traffic import stop_issuing

    settings, traffic = _simulated(name, runs[name])
    issue = runs[name]["trace"]["scheduled_ns"][::traffic.samples_per_query]
    n = issue.size
    if n == traffic.query_count:
        pytest.skip("this machine issued every generated query (ran out)")
    since_first = issue - issue[0]
    assert stop_issuing(settings, n - 1, int(since_first[n - 2])) is None
    assert stop_issuing(settings, n, int(since_first[n - 1]) + 10_000_000) is not None
    assert all(stop_issuing(settings, k + 1, int(since_first[k])) is None
               for k in range(0, n - 1, max(1, n // 50)))


@pytest.mark.parametrize("name", ["server", "gptj_server"])
def test_server_schedule_matches_loadgen_to_the_ns(runs, name):
    settings, traffic = _simulated(name, runs[name])
    scheduled = runs[name]["trace"]["scheduled_ns"]
    assert np.array_equal(scheduled - scheduled[0], traffic.scheduled_ns)
    met = bool(traffic.scheduled_ns[-1] >= settings.min_duration_ns)
    assert runs[name]["detail"]["result_min_duration_met"] == met


@pytest.mark.parametrize("name", list(CASES))
def test_latency_statistics_match_loadgen(runs, name):
    from sim.loadgen.percentile import SUMMARY_PERCENTILES, latency_summary_ns

    settings, traffic = _simulated(name, runs[name])
    run = runs[name]
    latency = run["trace"]["latency_ns"]
    if traffic.scenario == "MultiStream":  # a query's latency: its last sample's
        per_query = latency.reshape(-1, traffic.samples_per_query).max(axis=1)
        stats = latency_summary_ns(per_query)
    else:
        stats = latency_summary_ns(latency)
    summary = run["summary"]
    for fraction in SUMMARY_PERCENTILES:
        label = f"{fraction * 100:.2f} percentile latency (ns)"
        assert _summary_int(summary, label) == stats[fraction], label
    assert _summary_int(summary, "Min latency (ns)") == stats["min"]
    assert _summary_int(summary, "Max latency (ns)") == stats["max"]
    assert _summary_int(summary, "Mean latency (ns)") == stats["mean"]


def _early_stopping_lines(summary: str) -> list[str]:
    lines = summary.splitlines()
    start = lines.index("Early Stopping Result:") + 1
    end = lines.index("", start)
    return lines[start:end]


@pytest.mark.parametrize("name", ["single_stream", "multi_stream", "3d_unet_single_stream",
                                  "server", "gptj_server"])
def test_early_stopping_text_matches_loadgen_word_for_word(runs, name):
    from sim.loadgen.early_stopping import server_early_stopping, stream_early_stopping

    settings, traffic = _simulated(name, runs[name])
    latency = runs[name]["trace"]["latency_ns"]
    p = settings.target_latency_percentile
    if traffic.scenario == "Server":
        over = int((latency > settings.target_latency_ns).sum())
        lines = server_early_stopping(latency.size, over, p).summary_lines()
    elif traffic.scenario == "MultiStream":
        per_query = latency.reshape(-1, traffic.samples_per_query).max(axis=1)
        lines = stream_early_stopping(per_query, p).summary_lines()
    else:
        lines = (stream_early_stopping(latency, p).summary_lines()
                 + stream_early_stopping(latency, 0.99).summary_lines_secondary())
    assert lines == _early_stopping_lines(runs[name]["summary"])


@pytest.mark.parametrize("name", ["single_stream", "multi_stream", "3d_unet_single_stream"])
def test_stream_early_stopping_matches_loadgen(runs, name):
    from sim.loadgen.early_stopping import stream_early_stopping
    from sim.loadgen.percentile import percentile_latency_ns

    settings, traffic = _simulated(name, runs[name])
    run = runs[name]
    latency = run["trace"]["latency_ns"]
    if traffic.scenario == "MultiStream":
        latency = latency.reshape(-1, traffic.samples_per_query).max(axis=1)
    p = settings.target_latency_percentile
    label = f"{p * 100:.1f}th percentile latency (ns)"
    assert _summary_int(run["summary"], label) == percentile_latency_ns(latency, p)
    result = stream_early_stopping(latency, p)
    summary = run["summary"]
    if not result.enough_queries:
        assert f"Need to process at least {result.min_queries_needed} queries" in summary
        return
    assert f"Processed at least {result.min_queries_needed} queries ({latency.size})" in summary
    assert f"Would discard {result.discarded} highest latency queries" in summary
    assert _summary_int(summary, f"Early stopping {p * 100:.1f}th percentile estimate") == \
        result.estimate_ns
    if traffic.scenario == "SingleStream":  # also LoadGen's p99 estimate
        p99 = stream_early_stopping(latency, 0.99)
        if p99.enough_queries:
            assert _summary_int(summary, "Early stopping 99.0th percentile estimate") == \
                p99.estimate_ns
        else:
            assert f"least {p99.min_queries_needed} total queries" in summary


@pytest.mark.parametrize("name", ["server", "gptj_server"])
def test_server_early_stopping_matches_loadgen(runs, name):
    from sim.loadgen.early_stopping import server_early_stopping

    settings, traffic = _simulated(name, runs[name])
    run = runs[name]
    latency = run["trace"]["latency_ns"]
    overlatency = int((latency > settings.target_latency_ns).sum())
    assert run["detail"]["result_overlatency_query_count"] == overlatency
    verdict = server_early_stopping(latency.size, overlatency, settings.target_latency_percentile)
    assert run["detail"]["early_stopping_met"] == verdict.met
    if verdict.met:
        assert "Run successful" in run["detail"]["early_stopping_result"]
    else:
        assert (f"Would need to run at least {verdict.more_queries_needed} more queries"
                in run["detail"]["early_stopping_result"])


# ---------------------------------------------------------------------------------------
# Pure simulator checks of the generation rules (no LoadGen run needed)


def _loadgen_generation_loop(offsets, horizon, min_queries, loaded_size, equal_issue):
    """LoadGen's GenerateQueries loop restated literally: how many queries it makes."""
    if equal_issue and min_queries % loaded_size:
        min_queries += loaded_size - min_queries % loaded_size
    count, prev = 0, 0
    while prev < horizon or count < min_queries:
        count += 1
        prev = offsets(count - 1)
        if equal_issue and count >= min_queries and prev < horizon:
            min_queries += loaded_size
    return count


@pytest.mark.parametrize("equal_issue", [False, True])
def test_generated_query_count_rule_equals_the_loop(equal_issue):
    from dataclasses import replace

    from sim.loadgen.settings import load_settings
    from sim.loadgen.traffic import generated_query_count

    base = load_settings("resnet50", "SingleStream")
    rng = np.random.default_rng(4)
    for _ in range(300):
        period = int(rng.integers(1, 50))
        horizon = int(rng.integers(0, 1500))
        m0 = int(rng.integers(0, 400))
        size = int(rng.integers(1, 120))
        s = replace(base, min_query_count=m0, target_duration_ns=horizon,
                    sample_concatenate_permutation=equal_issue)
        h = 2 * horizon  # a closed loop generates up to twice min_duration
        if h == 0 and m0 == 0:
            continue  # LoadGen would generate nothing
        first_past = -(-h // period)
        expected = _loadgen_generation_loop(lambda k: k * period, h, m0, size, equal_issue)
        assert generated_query_count(s, first_past, size) == expected


def test_long_server_schedule_is_exact_across_chunks():
    from sim.loadgen import rng as lg_random
    from sim.loadgen.settings import load_settings
    from sim.loadgen.traffic import server_schedule

    s = load_settings("resnet50", "Server", overrides={"server_target_qps": 50000.0,
                                                       "min_duration_ns": 60_000_000_000})
    scheduled, end = server_schedule(s, 1024)
    gaps = lg_random.exponential_ns(lg_random.MT19937(s.schedule_rng_seed), 50000.0,
                                    scheduled.size + 1)
    offsets = np.concatenate(([0], np.cumsum(gaps)))
    assert np.array_equal(scheduled, offsets[:-2]) and end == offsets[-2]
    assert scheduled[-2] < s.min_duration_ns <= scheduled[-1]  # every arrival before, plus one


if __name__ == "__main__":
    _run_loadgen_here(json.loads(sys.argv[1]))


@pytest.mark.parametrize("name", ["single_stream", "multi_stream", "server", "offline"])
def test_simulated_summary_reads_like_loadgen(runs, name):
    """``sim.loadgen.metrics`` + ``sim.loadgen.logs`` applied to LoadGen's own per-sample times give
    LoadGen's summary, line for line (the SUT name and LoadGen's warning count aside; the
    throughput lines, which depend on LoadGen's clock origin, are compared to 0.1%).

    SingleStream's origin is recovered from the summary; MultiStream's is known to lie
    between the end of query generation and the first issue, and both ends are tried."""
    settings, traffic = _simulated(name, runs[name])
    trace = runs[name]["trace"]
    spq = traffic.samples_per_query if traffic.scenario == "MultiStream" else 1
    theirs = runs[name]["summary"]
    sched = trace["scheduled_ns"] - trace["scheduled_ns"][0]
    shifts_ns = [0]
    if traffic.scenario in ("SingleStream", "MultiStream"):
        # The trace's times start at the first issue; LoadGen's run clock starts a few us
        # earlier, after generating the queries. A last issue within those us after
        # min_duration is VALID to LoadGen and would not be, measured from the first issue.
        earliest = trace["queries_generated_ns"] - int(trace["scheduled_ns"][0])
        assert earliest <= 0
        shifts_ns = [0, -earliest]
        qps = re.search(r"QPS w/ loadgen overhead\s*:\s*([\d.]+)", theirs)
        if qps:  # SingleStream prints (queries - 1) / last issue time, to 2 decimals
            n_queries = sched.size // traffic.samples_per_query
            shift = round((n_queries - 1) / float(qps.group(1)) * 1e9) - int(sched[-1])
            assert -10 <= shift <= -earliest + 10, (shift, earliest)
            shifts_ns = [shift]
    theirs = theirs.splitlines()
    mismatch = None
    for shift in shifts_ns:  # the summary must equal LoadGen's for some origin in the range
        mismatch = _summary_mismatch(traffic, settings, trace, sched + shift, spq, theirs)
        if mismatch is None:
            break
    assert mismatch is None, mismatch


def _summary_mismatch(traffic, settings, trace, sched, spq, theirs):
    from sim.loadgen import logs as loadgen_logs
    from sim.loadgen import metrics

    done = sched + trace["latency_ns"]
    if traffic.scenario == "Offline":
        q_sched, q_done = sched[:1], done.max(keepdims=True)
    else:
        q_sched = sched[::spq]
        q_done = done.reshape(-1, spq).max(axis=1)
    m = metrics.compute(traffic.scenario, settings, q_sched, q_done, trace["latency_ns"].copy(), spq)
    ours = loadgen_logs.summary_text(m, loadgen_logs.summary_params(settings)).splitlines()
    end = theirs.index("Test Parameters Used") + 2
    params_end = theirs.index("", end)
    theirs, ours = theirs[:params_end], ours[:params_end]
    if len(ours) != len(theirs):
        return "\n".join(ours)
    for a, b in zip(ours, theirs):
        if b.startswith("SUT name"):
            continue
        la, _, va = a.rpartition(":")
        lb, _, vb = b.rpartition(":")
        if any(k in b for k in ("samples per second", "Samples per second", "QPS w/")):
            if not (la == lb and float(va) == pytest.approx(float(vb), rel=1e-3)):
                return a, b
        elif a != b:
            return a, b
    return None
