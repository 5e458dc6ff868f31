"""Bad numbers from outside (flags, system YAML, user.conf, measurement CSVs, the Python API) are
refused with one line naming the flag or field, the value and what was expected; runs too large
to fit are refused up front with the estimate and the limit; nothing ends in a traceback.

The table runs each case through the command line (``sim.cli.main``) or the API; every case is
refused before any simulation work starts. The property tests feed random values into the
system-YAML and settings loaders.
"""

import math

import numpy as np
import pytest
import yaml

from sim.apps import plan as planner
from sim.apps.peak import peak_server_qps
from sim.apps.trace import chrome_trace
from sim.cli import main
from sim.cost.synthetic import parse_synthetic
from sim.errors import InputError
from sim.hw.measurements import read_measurements
from sim.loadgen.peak_search import find_peak_qps
from sim.loadgen.settings import _REQUESTED_FIELDS, TestSettings, load_settings
from sim.loadgen.traffic import check_run_size, run_size
from sim.run import simulate
from sim.sut.system import SystemSpec, parse_system
from sim.util.checks import LIMITS, MAX_QPS

FAST = ["--service-time-ms", "1"]       # a synthetic cost: no workload is measured

# --- command line ---------------------------------------------------------------------------

SYSTEMS = {
    "inf_overhead": {"host": {"issue_overhead_us": float("inf")}},
    "nan_bandwidth": {"link": {"bandwidth_gbps": float("nan")}},
    "zero_time": {"accelerators": {"cost": {"kind": "fixed", "time_us": 0}}},
    "batch_1e10_text": "batching: {policy: dynamic, max_batch: 1e10}\n",
    "batch_1e10": {"batching": {"policy": "dynamic", "max_batch": 10 ** 10}},
    "1e8_accelerators": {"accelerators": {"count": 10 ** 8}},
    "1e6_instances": {"accelerators": {"count": 1000, "instances": 1000}},
    "list_name": {"name": ["a", "b"]},
    "list_kind": {"accelerators": {"cost": {"kind": ["fixed"], "time_us": 1}}},
    "negative_workers": {"host": {"preprocess": {"workers": -1}}},
    "slow_link": {"link": {"bandwidth_gbps": 1e-9, "input_bytes_per_sample": 10 ** 6}},
}
CONFS = {
    "huge_count": "resnet50.Server.min_query_count = 1000000000000\n",
    "duration_wraps": "*.*.min_duration = 18446744073709551615\n",
    "tiny_rate": "*.Server.target_qps = 1e-300\n",
    "percentile_100": "*.Server.target_latency_percentile = 100\n",
}
CSVS = {
    "devices_0": "device,model,batch,latency_ms,devices\nt4,resnet50,1,1.0,0\n",
    "devices_negative": "device,model,batch,latency_ms,devices\nt4,resnet50,1,1.0,-3\n",
    "batch_1e12": "device,model,batch,latency_ms\nt4,resnet50,1000000000000,1.0\n",
    "latency_inf": "device,model,batch,latency_ms\nt4,resnet50,1,inf\n",
    "throughput_nan": "device,model,batch,throughput\nt4,resnet50,8,nan\n",
}

CLI_CASES = [
    # (argv; {system}/{conf}/{csv} stand for files written from the tables above), exit code, words
    (["run", "--scenario", "Server", "--qps", "1e30", *FAST], 2, ["--qps", "'1e30'", "<= 1e+09"]),
    (["run", "--scenario", "Server", "--qps", "inf", *FAST], 2, ["--qps", "'inf'", "finite"]),
    (["run", "--scenario", "Server", "--qps", "0", *FAST], 2, ["--qps", "'0'", "> 0"]),
    (["run", "--scenario", "Server", "--min-duration-ms", "nan", *FAST], 2, ["--min-duration-ms", "'nan'"]),
    (["run", "--scenario", "Server", "--min-duration-ms", "-5", *FAST], 2, ["--min-duration-ms", "'-5'", ">= 0"]),
    (["run", "--scenario", "Server", "--seed", "-1", *FAST], 2, ["--seed", "'-1'", "an integer >= 0"]),
    (["run", "--scenario", "Server", "--min-query-count", "0", *FAST], 2, ["--min-query-count", "'0'", ">= 1"]),
    (["run", "--scenario", "Server", "--service-time-ms", "nan"], 2, ["--service-time-ms", "'nan'", "finite"]),
    (["run", "--scenario", "Server", "--service-time-ms", "inf"], 2, ["--service-time-ms", "'inf'"]),
    (["run", "--scenario", "Server", "--service-time-ms", "affine:1,nan"], 2, ["--service-time-ms", "affine:1,nan"]),
    (["run", "--scenario", "Server", "--min-query-count", "1e9", *FAST], 2,
     ["resnet50 Server", "min_query_count 1000000000", "1,000,000,000 queries", "limit of 50,000,000"]),
    (["run", "--scenario", "Offline", "--min-query-count", "1e9"], 2,
     ["resnet50 Offline", "1,000,000,000 samples", "limit of 50,000,000"]),
    (["run", "--scenario", "Server", "--user-conf", "{conf:huge_count}"], 2,
     ["min_query_count 1000000000000", "1,000,000,000,000 queries", "limit of 50,000,000"]),
    (["run", "--scenario", "Server", "--qps", "1000000", "--service-time-ms", "0.001"], 2,
     ["min_duration 600000 ms at target QPS 1e+06", "600,000,001 queries", "limit of 50,000,000"]),
    (["run", "--scenario", "Server", "--user-conf", "{conf:duration_wraps}", *FAST], 2,
     ["key 'min_duration'", "64-bit range"]),
    (["run", "--scenario", "Server", "--user-conf", "{conf:tiny_rate}", *FAST], 2,
     ["rate of 1e-300", "positive finite rate"]),
    (["run", "--scenario", "Server", "--user-conf", "{conf:percentile_100}", *FAST], 2,
     ["target_latency_percentile", "100", "< 100"]),
    (["run", "--scenario", "Server", "--trace-max-queries", "3e6", "--trace", "t.json", *FAST], 2,
     ["--trace-max-queries", "'3e6'", "<= 333,333", "2,000,000 events"]),
    (["search", "--rel-tol", "nan", *FAST], 2, ["--rel-tol", "'nan'", "> 0"]),
    (["search", "--rel-tol", "0", *FAST], 2, ["--rel-tol", "'0'"]),
    (["search", "--repeats", "0", *FAST], 2, ["--repeats", "'0'", ">= 1"]),
    (["plan", "--qps", "inf", "--devices", "t4"], 2, ["--qps", "'inf'"]),
    (["plan", "--scenario", "SingleStream", "--latency-ms", "-1", "--devices", "t4"], 2, ["--latency-ms", "'-1'"]),
    (["plan", "--qps", "100", "--headroom", "nan", "--devices", "t4"], 2, ["--headroom", "'nan'"]),
    (["plan", "--qps", "100", "--max-devices", "1e9", "--devices", "t4"], 2, ["--max-devices", "<= 100,000"]),
    (["plan", "--qps", "100", "--devices", "t4", "--price", "t4=inf"], 2, ["--price", "DEVICE=AMOUNT"]),
    (["run", "--scenario", "Offline", "--system", "{system:inf_overhead}", *FAST], 2,
     ["field 'host.issue_overhead_us' = inf", "finite"]),
    (["run", "--scenario", "Offline", "--system", "{system:nan_bandwidth}", *FAST], 2,
     ["field 'link.bandwidth_gbps' = nan", "finite"]),
    (["run", "--scenario", "Offline", "--system", "{system:zero_time}"], 2,
     ["field 'accelerators.cost.time_us' = 0", "> 0"]),
    (["run", "--scenario", "Offline", "--system", "{system:batch_1e10_text}", *FAST], 2,
     ["field 'batching.max_batch' = '1e10'", "an integer"]),
    (["run", "--scenario", "Offline", "--system", "{system:batch_1e10}", *FAST], 2,
     ["field 'batching.max_batch' = 10000000000", "<= 1,000,000"]),
    (["run", "--scenario", "Offline", "--system", "{system:1e8_accelerators}", *FAST], 2,
     ["field 'accelerators.count' = 100000000", "<= 100,000"]),
    (["run", "--scenario", "Offline", "--system", "{system:1e6_instances}", *FAST], 2,
     ["1,000,000 instances", "limit of 100,000"]),
    (["run", "--scenario", "Offline", "--system", "{system:list_name}", *FAST], 2, ["field 'name'", "a string"]),
    (["run", "--scenario", "Offline", "--system", "{system:list_kind}", *FAST], 2,
     ["field 'accelerators.cost.kind'", "one of"]),
    (["run", "--scenario", "Offline", "--system", "{system:negative_workers}", *FAST], 2,
     ["field 'host.preprocess.workers' = -1", ">= 1"]),
    (["run", "--scenario", "Offline", "--system", "{system:slow_link}", *FAST], 2,
     ["field 'link.bandwidth_gbps'", "within an hour"]),
    (["calibrate", "--device", "t4", "--measurements", "{csv:devices_0}"], 2, ["field 'devices' = 0", ">= 1"]),
    (["calibrate", "--device", "t4", "--measurements", "{csv:devices_negative}"], 2, ["field 'devices' = -3"]),
    (["calibrate", "--device", "t4", "--measurements", "{csv:batch_1e12}"], 2,
     ["field 'batch' = 1000000000000", "<= 1,000,000"]),
    (["calibrate", "--device", "t4", "--measurements", "{csv:latency_inf}"], 2, ["field 'latency_ms' = inf"]),
    (["calibrate", "--device", "t4", "--measurements", "{csv:throughput_nan}"], 2, ["field 'throughput' = nan"]),
]


def _materialise(argv: list[str], tmp_path) -> list[str]:
    out = []
    for arg in argv:
        if arg.startswith("{") and arg.endswith("}"):
            kind, name = arg[1:-1].split(":")
            content = {"system": SYSTEMS, "conf": CONFS, "csv": CSVS}[kind][name]
            path = tmp_path / f"{name}.{ {'system': 'yaml', 'conf': 'conf', 'csv': 'csv'}[kind]}"
            path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
            arg = str(path)
        elif arg == "t.json":
            arg = str(tmp_path / arg)
        out.append(arg)
    return out


@pytest.mark.parametrize("argv, code, words", CLI_CASES, ids=[" ".join(c[0][:5]) for c in CLI_CASES])
def test_command_line_refuses_bad_numbers(argv, code, words, tmp_path, capsys):
    try:
        got = main(_materialise(argv, tmp_path))
    except SystemExit as exc:          # argparse: usage, then one error line
        got = exc.code
    out, err = capsys.readouterr()
    assert got == code, (out, err)
    assert "Traceback" not in err
    line = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(line) == 1, err
    for w in words:
        assert w in line[0], (w, line[0])
    assert len(line[0]) < 400


# --- Python API -----------------------------------------------------------------------------


class _Engine:
    """The parts of an engine result a trace reads: many queries, no batches."""
    samples_per_query = 1
    query_scheduled_ns = np.arange(1_000_000, dtype=np.int64)
    query_complete_ns = query_scheduled_ns + 10
    batches = {}


def _never(qps, seed_index):
    raise AssertionError("no trial may run")


API_CASES = [
    (lambda: simulate("Server", workload=None, cost=parse_synthetic("1"), overrides={"min_query_count": 10 ** 12}),
     ["1,000,000,000,000 queries", "limit of 50,000,000"]),
    (lambda: simulate("Server", workload=None, cost=parse_synthetic("1"), seed=-1), ["simulate", "'seed' = -1"]),
    (lambda: simulate("Server", workload=None, cost=parse_synthetic("1"),
                      overrides={"server_target_qps": float("nan")}), ["server_target_qps", "nan"]),
    (lambda: simulate("Server", workload=None, cost=parse_synthetic("1"), overrides={"server_target_qps": 1e30}),
     ["rate of 1e+30", "to 1e+09 queries/s"]),
    (lambda: simulate("Offline", workload=None, cost=parse_synthetic("1"),
                      overrides={"min_duration_ns": 0, "min_query_count": 0}), ["0 samples per query"]),
    (lambda: simulate("Server", workload=None, cost=parse_synthetic("1"),
                      overrides={"performance_sample_count_override": 10 ** 12}),
     ["loaded sample set", "1,000,000,000,000 samples"]),
    (lambda: find_peak_qps(_never, 100.0, rel_tol=float("nan")), ["find_peak_qps", "'rel_tol' = nan"]),
    (lambda: find_peak_qps(_never, float("inf")), ["'start_qps' = inf"]),
    (lambda: find_peak_qps(_never, 100.0, repeats=10 ** 9), ["'repeats'", "<= 1,000"]),
    (lambda: peak_server_qps(None, SystemSpec(), None, rel_tol=-1.0), ["peak_server_qps", "'rel_tol' = -1.0"]),
    (lambda: peak_server_qps(None, SystemSpec(), None, repeats=0), ["peak_server_qps", "'repeats' = 0"]),
    (lambda: planner.check_target(planner.Target("Server", qps=math.inf)), ["--qps", "inf"]),
    (lambda: planner.check_target(planner.Target("SingleStream", latency_ms=math.nan)), ["--latency-ms", "nan"]),
    (lambda: planner.check_target(planner.Target("Offline", qps=10.0, min_duration_ms=-1)), ["--min-duration-ms"]),
    (lambda: chrome_trace(_Engine(), max_queries=0), ["max_queries", ">= 1"]),
    (lambda: chrome_trace(_Engine(), max_queries=10 ** 9), ["3,000,000 trace events", "2,000,000"]),
    (lambda: parse_synthetic("exp:inf"), ["--service-time-ms", "'exp:inf'"]),
    (lambda: parse_system({"host": {"issue_overhead_us": float("inf")}}), ["host.issue_overhead_us", "inf"]),
    (lambda: parse_system({"accelerators": {"cost": {"kind": "affine", "a_us": 0, "b_us_per_sample": 0}}}),
     ["b_us_per_sample", "> 0"]),
    (lambda: load_settings("resnet50", "Server", overrides={"server_target_latency_percentile": 1.5}),
     ["server_target_latency_percentile", "< 1"]),
    (lambda: load_settings("resnet50", "Server", overrides={"min_query_count": -1}), ["min_query_count", ">= 0"]),
    (lambda: load_settings("resnet50", "MultiStream", overrides={"multi_stream_samples_per_query": 0}),
     ["0 samples per query"]),
    (lambda: load_settings("resnet50", "SingleStream", overrides={"single_stream_expected_latency_ns": 1e-3}),
     ["positive finite rate", "at least 1 ns"]),
]


@pytest.mark.parametrize("call, words", API_CASES, ids=[str(i) for i in range(len(API_CASES))])
def test_api_refuses_bad_numbers(call, words):
    with pytest.raises(InputError) as exc:
        call()
    message = str(exc.value)
    assert "\n" not in message and len(message) < 400
    for w in words:
        assert w in message, (w, message)


def test_api_measurements_refuse_bad_devices(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text(CSVS["devices_0"])
    with pytest.raises(InputError, match=r"m.csv:2: field 'devices' = 0: expected an integer >= 1"):
        read_measurements(path)


def test_runs_at_the_limits_pass_the_size_check():
    """The MLPerf-length runs of the benchmarks (50 M queries; 60 s at 90 % of 98,000 QPS) fit."""
    for scenario, over in (("Server", {"server_target_qps": 88_000.0, "min_query_count": LIMITS["queries"],
                                       "min_duration_ns": 0}),
                           ("Offline", {"offline_expected_qps": 88_000.0, "min_query_count": LIMITS["samples"],
                                        "min_duration_ns": 0}),
                           ("Server", {"server_target_qps": 88_200.0, "min_duration_ns": 60 * 10 ** 9,
                                       "min_query_count": 1}),
                           ("Server", {"server_target_qps": 20_000.0})):          # MLPerf's 600 s
        s = load_settings("resnet50", scenario, overrides=over)
        check_run_size(s)
        assert run_size(s)[1] <= LIMITS["samples"]


# --- property tests: random values into the loaders -----------------------------------------

_STRANGE = [float("nan"), float("inf"), -float("inf"), 1e300, -1e300, 10 ** 30, -(10 ** 30), 2 ** 64, 2 ** 63 - 1,
            -1, -1e-9, 0, 0.0, 1e-12, 0.5, 1, 2, 7, 64, 1000, 1e6, 12345.678, True, False, None, "1", "abc", "",
            "nan", [], [1, 2], [None], {}, {"a": 1}, {"kind": "fixed"}, 3.0, 1e9, 1e10]


def _draw(rng):
    kind = rng.integers(0, 4)
    if kind == 0:
        return _STRANGE[rng.integers(0, len(_STRANGE))]
    if kind == 1:
        return float(rng.choice([-1, 1]) * 10.0 ** rng.uniform(-12, 20))
    if kind == 2:
        return int(rng.integers(-5, 2 ** 62)) >> int(rng.integers(0, 62))
    return int(rng.integers(0, 100))


SYSTEM_FIELDS = [
    ("name",), ("host",), ("host", "issue_overhead_us"), ("host", "schedule_delay_us"), ("host", "preprocess"),
    ("host", "preprocess", "workers"), ("host", "preprocess", "time_us_per_sample"),
    ("host", "postprocess", "time_us_per_batch"), ("host", "postprocess", "workers"), ("batching",),
    ("batching", "policy"), ("batching", "max_batch"), ("batching", "max_queue_delay_us"),
    ("batching", "preferred_batch_sizes"), ("accelerators",), ("accelerators", "count"),
    ("accelerators", "instances"), ("accelerators", "idle_wake_us"), ("accelerators", "idle_after_us"),
    ("accelerators", "cost"), ("accelerators", "cost", "time_us"), ("accelerators", "cost", "mean_us"),
    ("accelerators", "cost", "a_us"), ("accelerators", "cost", "b_us_per_sample"), ("accelerators", "cost", "threads"),
    ("accelerators", "cost", "workload"), ("accelerators", "cost", "small"), ("link",), ("link", "bandwidth_gbps"),
    ("link", "latency_us"), ("link", "input_bytes_per_sample"), ("link", "output_bytes_per_sample"),
]
BASE_SYSTEM = {"batching": {"policy": "dynamic", "max_batch": 8},
               "accelerators": {"count": 2, "cost": {"kind": "affine", "a_us": 100, "b_us_per_sample": 5}},
               "link": {"bandwidth_gbps": 16}}
COST_KINDS = [{"kind": "fixed", "time_us": 10}, {"kind": "exponential", "mean_us": 10},
              {"kind": "affine", "a_us": 1, "b_us_per_sample": 1}, {"kind": "cpu_profile", "workload": "resnet50"}]


def _finite_non_negative(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x >= 0


def _check_system(spec: SystemSpec) -> None:
    for v in (spec.issue_overhead_ns, spec.schedule_delay_ns, spec.idle_wake_ns, spec.idle_after_ns,
              spec.batching.max_queue_delay_ns):
        assert _finite_non_negative(v)
    assert 1 <= spec.batching.max_batch <= LIMITS["batch"]
    assert 1 <= spec.servers <= LIMITS["instances"]
    assert all(1 <= p <= spec.batching.max_batch for p in spec.batching.preferred_batch_sizes)
    for stage in (spec.preprocess, spec.postprocess):
        if stage is not None:
            assert 1 <= stage.workers and _finite_non_negative(stage.time_ns_per_sample)
            assert _finite_non_negative(stage.time_ns_per_batch)
    if spec.link is not None:
        assert spec.link.bandwidth_bytes_per_s > 0 and math.isfinite(spec.link.bandwidth_bytes_per_s)
        assert _finite_non_negative(spec.link.latency_ns)
        assert _finite_non_negative(spec.link.transfer_ns(spec.link.input_bytes_per_sample * spec.batching.max_batch))
    if spec.cost is not None and spec.cost["kind"] != "cpu_profile":
        times = [v for k, v in spec.cost.items() if k != "kind"]
        assert all(_finite_non_negative(t) for t in times) and sum(times) > 0
    assert isinstance(spec.name, str)


def test_system_loader_gives_a_valid_system_or_a_clean_error():
    rng = np.random.default_rng(20260)
    outcomes = {"ok": 0, "refused": 0}
    for _ in range(600):
        doc = yaml.safe_load(yaml.safe_dump(BASE_SYSTEM))
        doc["accelerators"]["cost"] = dict(COST_KINDS[rng.integers(0, len(COST_KINDS))])
        for _ in range(rng.integers(1, 4)):
            path = SYSTEM_FIELDS[rng.integers(0, len(SYSTEM_FIELDS))]
            node = doc
            for key in path[:-1]:
                if not isinstance(node.get(key), dict):
                    node[key] = {}
                node = node[key]
            node[path[-1]] = _draw(rng)
        try:
            spec = parse_system(doc, "random.yaml")
        except InputError as exc:
            assert "\n" not in str(exc) and str(exc).startswith("random.yaml") and len(str(exc)) < 400
            outcomes["refused"] += 1
        else:
            _check_system(spec)
            outcomes["ok"] += 1
    assert outcomes["ok"] > 30 and outcomes["refused"] > 300, outcomes


_SCENARIOS = ("SingleStream", "MultiStream", "Server", "Offline")
_PERCENTILES = ("single_stream_target_latency_percentile", "multi_stream_target_latency_percentile",
                "server_target_latency_percentile", "target_latency_percentile")


def _check_settings(s: TestSettings) -> None:
    for name, value in vars(s).items():
        if isinstance(value, bool) or isinstance(value, str) or value is None:
            continue
        assert isinstance(value, (int, float)), name
        if isinstance(value, float):
            assert math.isfinite(value), name
        else:
            assert 0 <= value < 2 ** 64, name
    for name in _PERCENTILES:
        assert 0.0 < getattr(s, name) < 1.0, name
    assert 0.0 < s.target_qps <= MAX_QPS
    assert 0.0 <= s.accuracy_log_probability <= 1.0
    assert s.samples_per_query >= 1 and s.performance_sample_count >= 1


def test_settings_loader_gives_valid_settings_or_a_clean_error():
    rng = np.random.default_rng(7)
    fields = sorted(_REQUESTED_FIELDS)
    outcomes = {"ok": 0, "refused": 0}
    for _ in range(600):
        over = {}
        for _ in range(rng.integers(1, 4)):
            over[fields[rng.integers(0, len(fields))]] = _draw(rng)
        scenario = _SCENARIOS[rng.integers(0, 4)]
        total = [None, 1024, 0, -5, 2.5, float("nan"), 10 ** 7][rng.integers(0, 7)]
        try:
            s = load_settings("resnet50", scenario, overrides=over, total_sample_count=total)
        except InputError as exc:
            assert "\n" not in str(exc) and len(str(exc)) < 600
            outcomes["refused"] += 1
        else:
            _check_settings(s)
            outcomes["ok"] += 1
            try:                        # the run-size check of these settings: a size or a clean refusal
                queries, samples, loaded = run_size(s)
                check_run_size(s)
            except InputError as exc:
                assert "\n" not in str(exc)
            else:
                assert 1 <= queries <= LIMITS["queries"] and samples <= LIMITS["samples"]
    assert outcomes["ok"] > 30 and outcomes["refused"] > 300, outcomes
