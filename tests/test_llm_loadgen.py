"""LoadGen's LLM rules (``sim.loadgen.tokens`` and the token logs) against the real LoadGen.

Each case runs the real ``mlcommons-loadgen`` wheel in its own process with a scripted SUT:
for every sample it draws (seeded) a time to first token, a time per output token and an
output token count, calls ``FirstTokenComplete`` and then ``QuerySamplesComplete`` with
``n_tokens`` at those times. LoadGen's trace gives, per sample, its scheduled time, its
latency and (``Token_Latency`` events) its first-token latency, all in ns as LoadGen measured
them; the SUT records the token counts. The simulator is fed exactly those per-sample times
(``compute_token_metrics``) and must give:

* the same issued samples in the same order (equal issue: concatenated permutations of the
  loaded set, padded to whole passes) and the same Server schedule, to the ns;
* LoadGen's summary, line for line (the same lines in the same order: TTFT / TPOT statistics,
  completed samples and tokens per second, Offline tokens/s, gptj's inferred tokens/s, the
  verdict, the recommendations, the TTFT and TPOT early-stopping blocks, the test
  parameters with their ttft/tpot lines and the equal-issue warning, the error count);
* LoadGen's detail-log result records, key for key and in order (values exact, doubles to the
  6 digits LoadGen writes; the one figure measured from the last *issue* time, which the
  simulator takes as the scheduled time, to 1%).

Cases: Server VALID; INVALID by TPOT; INVALID by TTFT (with the TTFT early-stopping block);
both limits missed; Interactive (``llama2-70b-interactive``'s limits) failing early stopping
only; Offline; gptj Server and Offline (inferred tokens); samples LoadGen logs errors for.
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

from sim.errors import InputError

LLAMA = "llama2-70b.*.performance_sample_count_override = 64\n"
CASES = {
    # about 500 queries at 250/s: early stopping passes with none over either limit
    "server_valid": dict(
        model="llama2-70b", scenario="Server",
        user_conf=LLAMA + "llama2-70b.Server.target_qps = 250\n*.Server.min_duration = 2000\n"
                          "*.Server.min_query_count = 100\n",
        ttft_ms=(5, 30), tpot_ms=(0.5, 3.0), ntok=(2, 40)),
    "server_tpot_invalid": dict(
        model="llama2-70b", scenario="Server",
        user_conf=LLAMA + "llama2-70b.Server.target_qps = 100\n*.Server.min_duration = 1000\n"
                          "llama2-70b.Server.tpot_latency = 2\n",
        ttft_ms=(5, 30), tpot_ms=(0.5, 3.0), ntok=(2, 40)),
    # enough queries for TPOT early stopping to pass, so LoadGen also judges TTFT's
    "server_ttft_invalid": dict(
        model="llama2-70b", scenario="Server",
        user_conf=LLAMA + "llama2-70b.Server.target_qps = 250\n*.Server.min_duration = 2000\n"
                          "llama2-70b.Server.ttft_latency = 20\n",
        ttft_ms=(5, 30), tpot_ms=(0.5, 3.0), ntok=(2, 40)),
    "server_both_invalid": dict(
        model="llama2-70b", scenario="Server",
        user_conf=LLAMA + "llama2-70b.Server.target_qps = 100\n*.Server.min_duration = 500\n"
                          "llama2-70b.Server.ttft_latency = 20\n"
                          "llama2-70b.Server.tpot_latency = 2\n",
        ttft_ms=(5, 30), tpot_ms=(0.5, 3.0), ntok=(2, 40)),
    # Interactive limits (450 ms / 40 ms) met, too few queries for early stopping
    "interactive_early_stopping": dict(
        model="llama2-70b-interactive", scenario="Server",
        user_conf=("llama2-70b-interactive.*.performance_sample_count_override = 48\n"
                   "llama2-70b-interactive.Server.target_qps = 100\n"
                   "*.Server.min_duration = 1000\n"),
        ttft_ms=(5, 30), tpot_ms=(0.5, 3.0), ntok=(2, 40)),
    # 100 samples asked, 128 issued (two whole passes over 64), each pass shuffled
    "offline": dict(
        model="llama2-70b", scenario="Offline",
        user_conf=LLAMA + "llama2-70b.Offline.target_qps = 100\n*.Offline.min_duration = 500\n"
                          "llama2-70b.Offline.min_query_count = 100\n",
        ttft_ms=(5, 300), tpot_ms=(0.5, 3.0), ntok=(2, 200)),
    "gptj_server": dict(
        model="gptj", scenario="Server",
        user_conf=("gptj.*.performance_sample_count_override = 40\n"
                   "gptj.Server.target_qps = 100\n*.Server.min_duration = 500\n"
                   "gptj.Server.min_query_count = 20\n"),
        ttft_ms=(5, 30), tpot_ms=(0.5, 3.0), ntok=(2, 40)),
    "gptj_offline": dict(
        model="gptj", scenario="Offline",
        user_conf=("gptj.*.performance_sample_count_override = 40\n"
                   "gptj.Offline.target_qps = 100\n*.Offline.min_duration = 300\n"
                   "gptj.Offline.min_query_count = 50\n"),
        ttft_ms=(5, 30), tpot_ms=(0.5, 3.0), ntok=(2, 40)),
    # sample 3 reports one token; sample 5 completes before its first token
    "server_errors": dict(
        model="llama2-70b", scenario="Server",
        user_conf=LLAMA + "llama2-70b.Server.target_qps = 100\n*.Server.min_duration = 300\n"
                          "*.Server.min_query_count = 20\n",
        ttft_ms=(5, 30), tpot_ms=(0.5, 3.0), ntok=(2, 40), special={"3": "one_token", "5": "early"}),
}
TOTAL_SAMPLES = 100  # the QSL's size

_SAMPLE_EVENT = re.compile(
    r'"name":"Sample","cat":"default","ph":"b","pid":\d+,"id":\d+,"ts":(\d+)\.(\d{3}),'
    r'"args":\{"sample_seq":(\d+),"query_seq":(\d+),"sample_idx":(\d+),'
    r'"issue_start_ns":(-?\d+),"complete_ns":(-?\d+)\}')
_TOKEN_EVENT = re.compile(r'"name":"Token_Latency","ph": "C","pid":\d+,"ts":(\d+)\.(\d{3}),'
                          r'"args":\{ "issue_delay":(-?\d+),"issue_to_done":(-?\d+)\}')

# ---------------------------------------------------------------------------------------
# The LoadGen side (runs in a subprocess: `python this_file.py '<json>'`)


def _run_loadgen_here(args: dict) -> None:
    import heapq
    import threading
    import time

    import mlperf_loadgen as lg

    out = args["outdir"]
    os.chdir(out)
    settings = lg.TestSettings()
    if settings.FromConfig(os.path.join(out, "user.conf"), args["model"], args["scenario"]) != 0:
        raise SystemExit("FromConfig failed")
    settings.scenario = getattr(lg.TestScenario, args["scenario"])
    settings.mode = lg.TestMode.PerformanceOnly
    rng = np.random.default_rng(7)
    events: list = []
    cv = threading.Condition()
    stop = [False]
    issued: list = []

    def worker():
        while True:
            with cv:
                while not events and not stop[0]:
                    cv.wait()
                if not events:
                    return
                when, kind, sample_id, n = events[0]
                wait = when - time.perf_counter()
                if wait > 0:
                    cv.wait(wait)
                    continue
                heapq.heappop(events)
            if kind == 0:
                lg.FirstTokenComplete([lg.QuerySampleResponse(sample_id, 0, 0)])
            else:
                lg.QuerySamplesComplete([lg.QuerySampleResponse(sample_id, 0, 0, n)])

    thread = threading.Thread(target=worker)
    thread.start()
    special = args.get("special", {})

    def issue(samples):
        now = time.perf_counter()
        with cv:
            for s in samples:
                ttft = rng.uniform(*args["ttft_ms"]) / 1e3
                n = int(rng.integers(args["ntok"][0], args["ntok"][1] + 1))
                tpot = rng.uniform(*args["tpot_ms"]) / 1e3
                what = special.get(str(len(issued)))
                first, done = now + ttft, now + ttft + (n - 1) * tpot
                if what == "one_token":
                    n, done = 1, now + ttft + 1e-3
                elif what == "early":
                    first, done = now + ttft + 5e-3, now + ttft
                issued.append([s.index, n])
                heapq.heappush(events, (first, 0, s.id, n))
                heapq.heappush(events, (done, 1, s.id, n))
            cv.notify()

    sut = lg.ConstructSUT(issue, lambda: None)
    qsl = lg.ConstructQSL(TOTAL_SAMPLES, TOTAL_SAMPLES, lambda idx: None, lambda idx: None)
    log = lg.LogSettings()
    log.log_output.outdir = out
    log.enable_trace = True
    lg.StartTestWithLogSettings(sut, qsl, settings, log, "no-audit.config")
    with cv:
        stop[0] = True
        cv.notify()
    thread.join()
    lg.DestroyQSL(qsl)
    lg.DestroySUT(sut)
    with open(os.path.join(out, "sut_record.json"), "w") as fh:
        json.dump({"issued": issued}, fh)


# ---------------------------------------------------------------------------------------
# The test side


def _detail_records(path: Path) -> list[tuple[str, object]]:
    rows = []
    for line in path.read_text().splitlines():
        if line.startswith(":::MLLOG "):
            entry = json.loads(line[len(":::MLLOG "):])
            rows.append((entry["key"], entry["value"]))
    return rows


def _trace(path: Path, scenario: str) -> dict:
    text = path.read_text()
    rows = sorted((tuple(int(g) for g in m.groups()) for m in _SAMPLE_EVENT.finditer(text)),
                  key=lambda r: r[2])
    a = np.array(rows, dtype=np.int64).reshape(-1, 7)
    scheduled = a[:, 0] * 1000 + a[:, 1]
    out = {"scheduled_ns": scheduled, "sample_idx": a[:, 4], "latency_ns": a[:, 6]}
    if scenario == "Server":  # first-token latencies, matched to samples by scheduled time
        ttft = {int(m.group(1)) * 1000 + int(m.group(2)): int(m.group(3)) + int(m.group(4))
                for m in _TOKEN_EVENT.finditer(text)}
        out["ttft_ns"] = np.array([ttft.get(int(t), -1) for t in scheduled], dtype=np.int64)
        assert len(set(scheduled.tolist())) == scheduled.size  # the matching is unambiguous
    return out


def _execute(name: str, case: dict, root: Path) -> dict:
    out = root / name
    out.mkdir(parents=True, exist_ok=True)
    (out / "user.conf").write_text(case["user_conf"])
    args = {k: v for k, v in case.items() if k != "user_conf"}
    args["outdir"] = str(out)
    proc = subprocess.run([sys.executable, __file__, json.dumps(args)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((out / "sut_record.json").read_text())
    return {"conf": out / "user.conf", "detail": _detail_records(out / "mlperf_log_detail.txt"),
            "summary": (out / "mlperf_log_summary.txt").read_text(),
            "trace": _trace(out / "mlperf_log_trace.json", case["scenario"]), **record}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    pytest.importorskip("mlperf_loadgen")
    root = tmp_path_factory.mktemp("loadgen_llm")
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {n: pool.submit(_execute, n, c, root) for n, c in CASES.items()}
        return {n: f.result() for n, f in futures.items()}


def _settings(name: str, run: dict):
    from sim.loadgen.settings import load_settings

    case = CASES[name]
    return load_settings(case["model"], case["scenario"], run["conf"],
                         total_sample_count=TOTAL_SAMPLES)


def _simulated(name: str, run: dict):
    """The simulator's settings, traffic and token metrics on LoadGen's own per-sample times."""
    from sim.loadgen.tokens import compute_token_metrics
    from sim.loadgen.traffic import generate

    settings = _settings(name, run)
    traffic = generate(settings)
    trace = run["trace"]
    n_tokens = np.array([n for _, n in run["issued"]], dtype=np.int64)
    if settings.scenario == "Server":
        scheduled = trace["scheduled_ns"] - trace["scheduled_ns"][0]
        ttft = trace["ttft_ns"]
        first = np.where(ttft >= 0, scheduled + ttft, -1)
        for seq, what in CASES[name].get("special", {}).items():
            if what == "early":  # LoadGen drops a first token reported after completion
                first[int(seq)] = scheduled[int(seq)] + trace["latency_ns"][int(seq)] + 5_000_000
    else:  # one query: every sample scheduled at the start
        scheduled = np.zeros(trace["latency_ns"].size, dtype=np.int64)
        first = None
    done = scheduled + trace["latency_ns"]
    metrics = compute_token_metrics(settings, scheduled, first, done, n_tokens)
    return settings, traffic, metrics


def test_issued_samples_and_schedule_match_loadgen(runs):
    for name, run in runs.items():
        settings, traffic, _ = _simulated(name, run)
        issued = np.array([i for i, _ in run["issued"]], dtype=np.int64)
        assert np.array_equal(issued, traffic.sample_index), name
        assert np.array_equal(run["trace"]["sample_idx"], traffic.sample_index), name
        detail = dict(run["detail"])
        assert detail["generated_query_count"] == traffic.query_count, name
        assert detail["generated_samples_per_query"] == traffic.samples_per_query, name
        loaded = traffic.loaded_set.size
        # equal issue: whole passes, each a permutation of the loaded set
        assert traffic.sample_index.size % loaded == 0, name
        for p in traffic.sample_index.reshape(-1, loaded):
            assert sorted(p.tolist()) == sorted(traffic.loaded_set.tolist()), name
        if settings.scenario == "Server":
            sched = run["trace"]["scheduled_ns"]
            assert np.array_equal(sched - sched[0], traffic.scheduled_ns), name


def test_offline_query_padded_to_whole_passes(runs):
    settings, traffic, _ = _simulated("offline", runs["offline"])
    assert settings.samples_per_query == 100
    assert traffic.samples_per_query == 128 == 2 * traffic.loaded_set.size


def _summary_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("SUT name")]


@pytest.mark.parametrize("name", list(CASES))
def test_summary_matches_loadgen_line_for_line(runs, name):
    from sim.loadgen import logs

    run = runs[name]
    settings, _, metrics = _simulated(name, run)
    ours = logs.summary_text(metrics, logs.summary_params(settings), sut_name="PySUT")
    theirs = run["summary"]
    if name == "server_errors":
        # LoadGen mixes placeholder values into its token statistics for such samples; the
        # verdict, the throughputs, the latencies and the error count are compared
        keep = ("Result is", "  ", "Completed", "Min latency", "Max latency", "Mean latency",
                "No warnings")

        def kept(text):
            return "\n".join(ln for ln in text.splitlines()
                             if (ln.startswith(keep) and "Token" not in ln) or "ERROR" in ln)

        ours, theirs = kept(ours), kept(theirs)
        assert "3 ERRORS encountered. See detailed log." in theirs
    assert _summary_lines(ours) == _summary_lines(theirs)


@pytest.mark.parametrize("name", [n for n in CASES if n != "server_errors"])
def test_detail_results_match_loadgen(runs, name):
    from sim.loadgen import logs

    run = runs[name]
    settings, _, metrics = _simulated(name, run)
    ours = [(r["key"], r["value"]) for r in
            (json.loads(line[len(":::MLLOG "):]) for line in logs.detail_lines(metrics, {}))]
    start = next(i for i, (k, _) in enumerate(ours) if k == "result_validity")
    ours = ours[start:]
    theirs = [kv for kv in run["detail"][[k for k, _ in run["detail"]].index("result_validity"):]
              if kv[0].startswith(("result_", "early_stopping", "num_errors"))]
    assert [k for k, _ in ours] == [k for k, _ in theirs]
    for (key, a), (_, b) in zip(ours, theirs):
        if key == "result_token_throughput_with_loadgen_overhead":
            assert a == pytest.approx(b, rel=1e-2), key  # LoadGen: from the last issue time
        elif isinstance(b, float):
            assert a == pytest.approx(b, rel=2e-6), key
        else:
            assert a == b, key


def test_token_statistics_match_loadgen(runs):
    """The per-sample rules, stated directly: TTFT from the scheduled time, TPOT =
    (latency - TTFT) // (n_tokens - 1), LoadGen's percentile index and integer means."""
    from sim.loadgen.percentile import latency_summary_ns

    run = runs["server_valid"]
    _, _, m = _simulated("server_valid", run)
    summary = run["summary"]
    trace = run["trace"]
    n_tokens = np.array([n for _, n in run["issued"]])
    tpot = (trace["latency_ns"] - trace["ttft_ns"]) // (n_tokens - 1)
    for label, values, stats in (("first token latency", trace["ttft_ns"], m.ttft),
                                 ("time to output token", tpot, m.tpot)):
        expected = latency_summary_ns(values)
        assert stats.min_ns == expected["min"] and stats.max_ns == expected["max"]
        assert stats.mean_ns == expected["mean"]
        for fraction in (0.5, 0.9, 0.95, 0.97, 0.99, 0.999):
            text = f"{fraction * 100:.2f} percentile {label} (ns)   : {expected[fraction]}"
            assert text in summary
    assert m.token_count == int(n_tokens.sum())
    assert m.valid and "Result is : VALID" in summary


def test_verdicts_are_the_expected_ones(runs):
    """The cases exercise what they are named for (LoadGen's verdict, and ours)."""
    want = {"server_valid": (True, True, True), "server_tpot_invalid": (False, False, False),
            "server_ttft_invalid": (False, False, False), "server_both_invalid": (False, False, False),
            "interactive_early_stopping": (False, True, False), "offline": (True, None, True)}
    for name, (valid, perf, es) in want.items():
        _, _, m = _simulated(name, runs[name])
        assert (m.valid, m.perf_constraints_met, m.early_stopping_met) == (valid, perf, es), name
    _, _, m = _simulated("server_ttft_invalid", runs["server_ttft_invalid"])
    assert m.tpot_early_stopping_lines == [" * Run successful."]
    assert m.ttft_early_stopping_lines[0] == " * Run unsuccessful."
    _, _, m = _simulated("server_both_invalid", runs["server_both_invalid"])
    assert len(m.recommendations) == 2 and m.ttft_early_stopping_lines == []
    settings, _, m = _simulated("interactive_early_stopping", runs["interactive_early_stopping"])
    assert (settings.server_ttft_latency_ns, settings.server_tpot_latency_ns) == (450_000_000, 40_000_000)
    _, _, m = _simulated("server_errors", runs["server_errors"])
    errors = sorted(v for k, v in runs["server_errors"]["detail"] if k == "error_runtime")
    assert sorted(m.errors) == errors and len(errors) == 3


# ---------------------------------------------------------------------------------------
# Rules checked without LoadGen


def test_tpot_rule_closed_form():
    from sim.loadgen.tokens import tpot_ns

    assert tpot_ns([1_000], [100], [4]).tolist() == [300]
    assert tpot_ns([1_001], [100], [4]).tolist() == [300]  # integer ns, truncated
    assert tpot_ns(np.array([10**12]), np.array([0]), np.array([2])).tolist() == [10**12]


def test_constant_rate_server_run_by_hand():
    """600 queries 10 ms apart, first token 5 ms after scheduling, then 99 tokens 1 ms apart:
    TTFT 5 ms and TPOT 1 ms for every sample, tokens/s = 600 x 100 tokens / last completion."""
    from sim.loadgen.settings import load_settings
    from sim.loadgen.tokens import compute_token_metrics

    s = load_settings("llama2-70b", "Server", overrides={"server_target_qps": 100.0,
                                                         "min_duration_ns": 5_000_000_000})
    n = 600
    sched = np.arange(n, dtype=np.int64) * 10_000_000
    first = sched + 5_000_000
    done = first + 99 * 1_000_000
    m = compute_token_metrics(s, sched, first, done, np.full(n, 100))
    assert m.ttft.percentiles_ns["99.00"] == 5_000_000 and m.tpot.max_ns == 1_000_000
    assert m.headline_value == pytest.approx(n * 100 / (int(done[-1]) / 1e9))
    assert m.samples_per_second == pytest.approx((n - 1) / (int(done[-1]) / 1e9))
    assert m.valid and m.ttft_early_stopping_lines == [" * Run successful."]
    # one sample over the TPOT limit: early stopping then needs h(1) + 1 = 662 queries at
    # p99 / 99% confidence, more than the 600 run, while the p99 itself is still 1 ms
    slow = done.copy()
    slow[7] = first[7] + 99 * 300_000_000
    m = compute_token_metrics(s, sched, first, slow, np.full(n, 100))
    assert m.tpot_overlatency_count == 1 and not m.early_stopping_met and not m.valid
    assert m.tpot_early_stopping_lines[2] == " * Would need to run at least 62 more queries,"
    assert m.ttft_early_stopping_lines == []  # LoadGen judges TTFT only once TPOT passes
    assert m.perf_constraints_met  # p99 of 600: the value at index 594, still 1 ms


def test_bad_token_input_is_refused_or_reported():
    from sim.loadgen.settings import load_settings
    from sim.loadgen.tokens import ERROR_ONE_TOKEN, compute_token_metrics

    s = load_settings("llama2-70b", "Server", overrides={"min_duration_ns": 1_000_000})
    sched = np.array([0, 10, 20])
    first = sched + 5
    done = sched + 100
    m = compute_token_metrics(s, sched, first, done, np.array([5, 1, 5]))
    assert m.errors == [ERROR_ONE_TOKEN] and m.tpot.max_ns == 23
    with pytest.raises(InputError, match="greater than 1"):
        compute_token_metrics(s, sched, first, done, np.array([5, 1, 5]), strict=True)
    with pytest.raises(InputError, match="before its scheduled time"):
        compute_token_metrics(s, sched, first, sched - 1, np.array([5, 5, 5]))
    with pytest.raises(InputError, match="different lengths"):
        compute_token_metrics(s, sched, first, done, np.array([5, 5]))
    plain = load_settings("resnet50", "Server")
    with pytest.raises(InputError, match="use_token_latencies"):
        compute_token_metrics(plain, sched, first, done, np.array([5, 5, 5]))


def test_interactive_settings():
    from sim.loadgen.settings import load_settings

    s = load_settings("llama3_1-8b", "Interactive")
    assert (s.model, s.scenario) == ("llama3_1-8b-interactive", "Server")
    assert (s.server_ttft_latency_ns, s.server_tpot_latency_ns) == (500_000_000, 30_000_000)
    assert s.use_token_latencies and s.sample_concatenate_permutation
    assert s.performance_sample_count == 13368 and s.target_latency_ns == 0
    with pytest.raises(InputError, match="no Interactive settings"):
        load_settings("mixtral-8x7b", "Interactive")
    g = load_settings("gptj", "Server")
    assert g.infer_token_latencies and g.token_latency_scaling_factor == 69
    assert not g.use_token_latencies and g.target_latency_ns == 20_000_000_000


if __name__ == "__main__":
    _run_loadgen_here(json.loads(sys.argv[1]))
