"""The validation harness: bad input, the empirical cost model, and a CI smoke run.

The smoke run (``test_quick_validation_end_to_end``) is the CI version of
``python -m sim validate --quick``: a tiny ONNX model written here (two inputs with
unusual names, one of them integer ids), every scenario for real with LoadGen and
simulated, with a loose bound on the errors. The strict figures live in
docs/validation.md (benchmarks/validation_report.py).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto

from sim.errors import InputError
from sim.sut.system import SystemSpec, parse_system

# ---------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("data, field", [
    ({"accelerators": {"count": 2}}, "accelerators.count"),
    ({"link": {"bandwidth_gbps": 16}}, "link"),
    ({"host": {"preprocess": {"workers": 2, "time_us_per_sample": 50}}}, "host.preprocess"),
    ({"host": {"postprocess": {"workers": 1, "time_us_per_batch": 5}}}, "host.postprocess"),
    ({"host": {"issue_overhead_us": 3}}, "host.issue_overhead_us"),
    ({"accelerators": {"idle_wake_us": 100}}, "accelerators.idle_wake_us"),
    ({"accelerators": {"cost": {"kind": "fixed", "time_us": 100}}}, "accelerators.cost.kind"),
])
def test_realise_refuses_what_a_cpu_cannot_be(data, field):
    from sim.validate.config import realise
    with pytest.raises(InputError) as exc:
        realise(parse_system(data, "sys.yaml"), "mobilenet_v1", source="sys.yaml")
    assert "sys.yaml" in str(exc.value) and field in str(exc.value) and "cannot realise" in str(exc.value)


def test_realise_maps_the_system():
    from sim.validate.config import realise
    spec = parse_system({"batching": {"policy": "dynamic", "max_batch": 4, "max_queue_delay_us": 500,
                                      "preferred_batch_sizes": [2, 4]},
                         "accelerators": {"instances": 2, "cost": {"kind": "cpu_profile", "threads": 1}}})
    cfg = realise(spec, "mobilenet_v1")
    assert (cfg.instances, cfg.intra_op_threads, cfg.policy, cfg.max_batch) == (2, 1, "dynamic", 4)
    assert cfg.max_queue_delay_ns == 500_000 and cfg.preferred == (2, 4)


def test_fixed_batch_dimension_refuses_batching():
    from sim.validate.config import check_model_batches
    from sim.workload.graphs.builder import GraphBuilder
    g = GraphBuilder("fixed")
    x = g.input("x", [1, 16])
    g.output(g.linear(x, 16, 4))
    model = g.build()
    with pytest.raises(InputError, match="fixed first dimension 1"):
        check_model_batches(model, 8, "fixed.onnx")
    check_model_batches(model, 1, "fixed.onnx")


def test_missing_loadgen_says_how_to_install(monkeypatch, capsys):
    from sim import cli
    from sim.validate import require_loadgen
    monkeypatch.setitem(sys.modules, "mlperf_loadgen", None)   # import now raises ImportError
    with pytest.raises(InputError, match=r"pip install -e '\.\[loadgen\]'"):
        require_loadgen()
    assert cli.main(["validate", "--workload", "mobilenet_v1", "--quick"]) == 2
    err = capsys.readouterr().err
    assert "mlcommons-loadgen is not installed" in err and "pip install -e '.[loadgen]'" in err


def test_workload_reference_parameters():
    from sim.validate.config import parse_workload_ref
    assert parse_workload_ref("bert_base:seq_len=16,num_layers=2") == ("bert_base", {"seq_len": 16,
                                                                                      "num_layers": 2})
    assert parse_workload_ref("resnet50") == ("resnet50", {})
    assert parse_workload_ref("models/x.onnx") == ("models/x.onnx", {})
    with pytest.raises(InputError):
        parse_workload_ref("bert_base:seq_len")


# ---------------------------------------------------------------------------------------
# the model pieces validation added


def _cost(busy=None, idle=None):
    from sim.cost.empirical import EmpiricalCost
    busy = busy or {(1, 1): [1000, 1100, 1200, 1300], (4, 1): [3000, 3300, 3600, 3900]}
    idle = idle or {(1, 200_000.0): [2000, 2100], (1, 20_000_000.0): [5000, 5100]}
    return EmpiricalCost(busy, idle, "test")


def test_empirical_cost_draws_measured_values_reproducibly():
    c = _cost()
    rng = np.random.default_rng(1)
    draws = [c.service_time_in_context_ns(1, 0.0, 1, rng) for _ in range(200)]
    assert set(draws) == {1000.0, 1100.0, 1200.0, 1300.0}
    rng2 = np.random.default_rng(1)
    assert draws == [c.service_time_in_context_ns(1, 0.0, 1, rng2) for _ in range(200)]
    # idle: the measured gap nearest in log scale; batch 4 idle = busy shifted by batch 1's idle penalty
    assert c.service_time_in_context_ns(1, 300_000.0, 1, rng) in (2000.0, 2100.0)
    assert c.service_time_in_context_ns(1, math.inf, 1, rng) in (5000.0, 5100.0)
    v = c.service_time_in_context_ns(4, 150_000.0, 1, rng)
    assert v - 900.0 in (3000.0, 3300.0, 3600.0, 3900.0)     # idle median 2050 - busy median 1150
    # between measured sizes: the two quantile functions interpolated at one quantile
    assert 1000.0 + 2 / 3 * 2000 <= c.service_time_in_context_ns(3, 0.0, 1, rng) <= 1300 + 2 / 3 * 2600
    with pytest.raises(InputError, match="outside the measured range"):
        c.service_time_in_context_ns(5, 0.0, 1, rng)


def test_empirical_cost_json_round_trip():
    from sim.cost.empirical import EmpiricalCost
    c = _cost()
    d = EmpiricalCost.from_dict(c.to_dict())
    rng1, rng2 = np.random.default_rng(3), np.random.default_rng(3)
    for b, gap in ((1, 0.0), (4, 0.0), (1, 1e6), (2, 5e7)):
        assert c.service_time_in_context_ns(b, gap, 1, rng1) == d.service_time_in_context_ns(b, gap, 1, rng2)
    with pytest.raises(InputError, match="schema"):
        EmpiricalCost.from_dict({"schema": "x"})


def test_server_busy_times_follow_the_measured_traffic_slowdown():
    """Busy cycles measured under issue traffic at two rates (batch 1 slowed 1.2x and 1.1x;
    batch 4 has too few cycles at the low rate and takes batch 1's there): Server's cost
    interpolates linearly in the rate and holds the end values; other scenarios and a
    calibration without traffic keep the busy times as measured."""
    from sim.validate.config import HarnessConfig
    from sim.validate.machine_calibration import MachineCalibration as Calibration
    c = _cost()
    traffic = [{"rate_qps": 1000.0, "concurrency": 1,
                "cycles": {"1": {"median_ns": 1.2 * 1150, "count": 500}, "4": {"median_ns": 9e9, "count": 3}}},
               {"rate_qps": 3000.0, "concurrency": 1,
                "cycles": {"1": {"median_ns": 1.1 * 1150, "count": 500}, "4": {"median_ns": 1.3 * 3450, "count": 80}}}]
    cal = Calibration(HarnessConfig("w"), "sha", c, {}, traffic=traffic)
    assert cal.traffic_factors(2000.0) == pytest.approx({1: 1.15, 4: 1.25})
    assert cal.traffic_factors(500.0) == pytest.approx({1: 1.2, 4: 1.2})
    assert cal.traffic_factors(9000.0) == pytest.approx({1: 1.1, 4: 1.3})
    server = cal.cost_for("Server", 2000.0)
    assert server.median_ns(1) == pytest.approx(1.15 * c.median_ns(1))
    assert server.median_ns(4) == pytest.approx(1.25 * c.median_ns(4))
    assert server.median_ns(1, idle=True) == c.median_ns(1, idle=True)      # the first batch after idle: as measured
    assert cal.cost_for("SingleStream", None) is c and cal.cost_for("Offline", None) is c
    back = Calibration.from_dict(cal.to_dict())
    assert back.traffic_factors(2000.0) == pytest.approx(cal.traffic_factors(2000.0))
    assert Calibration(HarnessConfig("w"), "sha", c, {}).cost_for("Server", 2000.0) is c


def test_calibrations_before_and_after_the_runs_pool_their_samples():
    """Two calibrations of one system, the second on a machine 10% slower: the pooled one
    draws from both sets of samples, each rescaled to the median level (here halfway, 1.05x
    the first), so it keeps one window's spread rather than two humps; LoadGen's overheads
    and the traffic slowdowns are averaged; calibrations of other systems are refused."""
    from sim.cost.empirical import EmpiricalCost
    from sim.validate.config import HarnessConfig
    from sim.validate.machine_calibration import MachineCalibration as Calibration
    a = _cost()
    b = EmpiricalCost({k: v * 1.1 for k, v in a.busy.items()}, {k: v * 1.1 for k, v in a.idle.items()}, "test")
    over = lambda issue: {"Server": {"issue_overhead_ns": issue, "schedule_delay_ns": 2 * issue}}  # noqa: E731
    traffic = lambda r: [{"rate_qps": 1000.0, "concurrency": 1,  # noqa: E731
                          "cycles": {"1": {"median_ns": r * 1150, "count": 500}}}]
    ca = Calibration(HarnessConfig("w"), "sha", a, over(100.0), traffic=traffic(1.2))
    cb = Calibration(HarnessConfig("w"), "sha", b, over(300.0), traffic=traffic(1.1 * 1.0))
    pooled = Calibration.pooled([ca, cb])
    assert pooled.cost.busy[(4, 1)].size == 8 and pooled.cost.idle[(1, 200_000.0)].size == 4
    assert pooled.slowdowns() == pytest.approx([1.0, 1.1])
    # every sample at 1.05x the first calibration's: each value twice, no second hump
    assert sorted(pooled.cost.busy[(4, 1)]) == pytest.approx(sorted(1.05 * np.repeat(a.busy[(4, 1)], 2)))
    assert sorted(pooled.cost.idle[(1, 200_000.0)]) == pytest.approx(sorted(1.05 * np.repeat(a.idle[(1, 200_000.0)], 2)))
    assert pooled.host_ns("Server") == (200.0, 400.0)
    # batch 1 under traffic: 1.2x busy in the first, 1.0x in the second (its busy times are 1.1x)
    assert pooled.traffic_factors(1000.0) == pytest.approx({1: 1.1, 4: 1.1})
    assert Calibration.pooled([ca]) is ca
    with pytest.raises(InputError, match="different systems"):
        Calibration.pooled([ca, Calibration(HarnessConfig("other"), "sha", b, over(1.0))])


def test_calibrations_between_rounds_are_spread_evenly_and_never_after_the_last():
    from sim.validate.experiment import rounds_followed_by_a_calibration as after
    assert after(3, 1) == {2}
    assert after(3, 2) == {1, 2} and after(3, 5) == {1, 2}
    assert after(5, 1) == {2}
    assert after(6, 2) == {2, 4}
    assert after(1, 1) == set() and after(3, 0) == set()


def test_one_slow_calibration_window_of_three_does_not_set_the_level():
    """Three calibrations: one made while the machine ran 37% slow (bert_base's case), one
    slow only while it measured batch 4 (a calibration measures its batch sizes one after
    another): each batch size's pooled median is the middle window's, so the 37% slow one
    sets nothing."""
    from sim.cost.empirical import EmpiricalCost
    from sim.validate.config import HarnessConfig
    from sim.validate.machine_calibration import MachineCalibration as Calibration
    a = _cost()

    def at(f, f4=None):
        busy = {k: v * (f4 if f4 and k == (4, 1) else f) for k, v in a.busy.items()}
        return EmpiricalCost(busy, {k: v * f for k, v in a.idle.items()}, "test")
    over = {"Server": {"issue_overhead_ns": 100.0, "schedule_delay_ns": 200.0}}
    parts = [Calibration(HarnessConfig("w"), "sha", c, over) for c in (at(1.37), at(1.0), at(1.02, f4=1.2))]
    pooled = Calibration.pooled(parts)
    assert pooled.slowdowns() == pytest.approx([1.0, 1 / 1.37, (1.02 / 1.37 + 1.2 / 1.37) / 2])
    assert pooled.cost.median_ns(1) == pytest.approx(1.02 * a.median_ns(1))
    assert pooled.cost.median_ns(4) == pytest.approx(1.2 * a.median_ns(4))
    assert pooled.cost.median_ns(1, idle=True) == pytest.approx(1.02 * a.median_ns(1, idle=True))
    # each window's spread is kept: batch 1's samples, three times over at the median level
    assert sorted(pooled.cost.busy[(1, 1)]) == pytest.approx(sorted(1.02 * np.tile(a.busy[(1, 1)], 3)))


def test_batch_speed_reads_a_runs_batch_log_against_the_calibration(tmp_path):
    """Batches of 1 taking 1.1x and batches of 4 taking 1.2x the calibrated busy medians
    (1150 and 3450 ns): the median over the run's batches; no log, no figure."""
    from sim.validate.real_runs import batch_speed
    c = _cost()
    count = np.array([1, 1, 1, 4, 4])
    took = np.array([1.1 * 1150, 1.1 * 1150, 1.1 * 1150, 1.2 * 3450, 1.2 * 3450])
    start = np.arange(5) * 10_000
    np.savez(tmp_path / "samples.npz", batch_count=count, batch_start_ns=start, batch_end_ns=start + took)
    assert batch_speed(tmp_path, c) == pytest.approx(1.1)
    assert batch_speed(tmp_path / "missing", c) is None


def test_traffic_slowdown_is_measured_against_busy_cycles_of_its_own_window():
    """A machine 15% slower during a traffic segment than during the busy runs: cycles under
    traffic of 1.15x the busy median are no slowdown when the busy cycles measured right next
    to the segment (``reference_ns``) ran 1.15x too; a size without a reference falls back
    to the busy median."""
    from sim.validate.config import HarnessConfig
    from sim.validate.machine_calibration import MachineCalibration as Calibration
    c = _cost()
    slow = 1.15
    traffic = [{"rate_qps": 1000.0, "concurrency": 1, "reference_ns": {"1": slow * c.median_ns(1)},
                "cycles": {"1": {"median_ns": slow * c.median_ns(1), "count": 500},
                           "4": {"median_ns": 1.3 * c.median_ns(4), "count": 80}}}]
    cal = Calibration(HarnessConfig("w"), "sha", c, {}, traffic=traffic)
    assert cal.traffic_factors(1000.0) == pytest.approx({1: 1.0, 4: 1.3})
    assert cal.cost_for("Server", 1000.0).median_ns(1) == pytest.approx(c.median_ns(1))
    del traffic[0]["reference_ns"]
    assert Calibration(HarnessConfig("w"), "sha", c, {}, traffic=traffic).traffic_factors(1000.0)[1] == \
        pytest.approx(slow)


def test_engine_asks_the_context_cost_busy_versus_idle():
    """A closed loop with an issue overhead finds its instance idle every time (the next query
    arrives after the last completed); a full Offline queue keeps it busy."""
    from sim.sut.engine import simulate_closed, simulate_open
    c = _cost(busy={(1, 1): [1000]}, idle={(1, 200_000.0): [7000]})
    r = simulate_closed(SystemSpec(issue_overhead_ns=10.0), c, 1, 5, lambda n, t: n >= 5)
    assert r.query_latency_ns.tolist() == [7010] * 5
    r = simulate_closed(SystemSpec(), c, 1, 3, lambda n, t: n >= 3)   # no gap at all: back to back
    assert r.query_latency_ns.tolist() == [7000, 1000, 1000]
    r = simulate_open(SystemSpec(), c, np.zeros(1, dtype=np.int64), 10)
    assert r.sample_complete_ns.tolist() == [7000 + 1000 * k for k in range(10)]


def test_schedule_delay_is_a_delay_not_a_queue():
    from sim.cost.synthetic import FixedCost
    from sim.sut.engine import simulate_open
    spec = parse_system({"host": {"schedule_delay_us": 50}})
    assert spec.schedule_delay_ns == 50_000
    sched = np.array([0, 10_000, 20_000], dtype=np.int64)            # closer together than the delay
    r = simulate_open(spec, FixedCost(1000), sched, 1)
    assert (r.sample_complete_ns - sched).tolist() == [51_000] * 3


def test_batch_rule_matches_the_simulated_policies():
    """The harness decides like ``sim.sut.batching`` on the same queue state."""
    from sim.sut.batching import QueueView, make_policy
    from sim.validate.config import HarnessConfig
    from sim.validate.sut import BatchRule
    rng = np.random.default_rng(0)
    for policy, max_batch, delay, pref in (("none", 1, 0, ()), ("fixed", 4, 0, ()), ("dynamic", 8, 0, ()),
                                           ("dynamic", 8, 1000, (2, 4, 8))):
        spec = parse_system({"batching": {"policy": policy, "max_batch": max_batch, "max_queue_delay_us": delay,
                                          **({"preferred_batch_sizes": list(pref)} if pref else {})}}).batching
        rule = BatchRule(HarnessConfig("x", policy=policy, max_batch=max_batch, max_queue_delay_ns=delay * 1e3,
                                       preferred=pref))
        sim = make_policy(spec)
        for _ in range(200):
            queued = int(rng.integers(1, 12))
            arrivals = np.sort(rng.integers(0, 2_000_000, queued)).astype(float)
            now = float(arrivals[-1] + rng.integers(0, 2_000_000))
            decision = sim.decide(QueueView(arrivals, 0, queued, False), now)
            action, arg = rule.decide(queued, int(arrivals[0]), int(now), False)
            assert action == "take" and decision[0] == "dispatch"
            assert arg == decision[2]


# ---------------------------------------------------------------------------------------
# the CI smoke run


def tiny_model(path):
    """~2 ms per sample on one core: a small conv stack plus an id embedding; odd input names."""
    from sim.workload.graphs.builder import GraphBuilder
    g = GraphBuilder("tiny", seed=0)
    x = g.input("pixels", ["batch", 3, 48, 48])
    ids = g.input("token_ids", ["batch", 4], TensorProto.INT64, high=50)
    h = g.relu(g.conv(x, 3, 32, 3))
    for _ in range(6):
        h = g.relu(g.conv(h, 32, 32, 3))
    h = g.flatten(g.global_avgpool(h))
    e = g.op("ReduceMean", [g.op("Gather", [g.weight((50, 32)), ids], axis=0)], axes=[1], keepdims=0)
    g.output(g.linear(g.add(h, e), 32, 10))
    onnx.save(g.build(), str(path))
    return path


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    pytest.importorskip("mlperf_loadgen")
    from sim.validate.experiment import run_validation
    root = tmp_path_factory.mktemp("validate")
    model = tiny_model(root / "tiny_model.onnx")
    system = parse_system({"batching": {"policy": "dynamic", "max_batch": 4},
                           "accelerators": {"cost": {"kind": "cpu_profile", "threads": 1}}})
    # Server loads as fractions of the real peak (the command line's default): one real validation
    # serves the end-to-end checks and those of the peak basis
    results = run_validation([str(model)], system, root / "out", quick=True, log=lambda *a: None,
                             calibrate_after=True, load_basis="peak")
    return root, results


def test_quick_validation_end_to_end(quick_run):
    from sim.validate import report
    root, results = quick_run
    (res,) = results
    recs = res["records"]
    by = {(r["scenario"], r["metric"]): r for r in recs}
    expected = {("SingleStream", "p90 latency (ms)"), ("SingleStream", "early-stopping p90 estimate (ms)"),
                ("MultiStream", "p99 latency (ms)"), ("Offline", "samples/s"), ("Server", "peak VALID QPS")}
    for load in ("30%", "60%", "85%"):
        expected |= {("Server", f"p99 latency at {load} load (ms)"), ("Server", f"mean latency at {load} load (ms)")}
    assert expected <= set(by)
    for r in recs:
        assert set(r) >= {"workload", "scenario", "metric", "measured", "predicted", "error_pct"}
        assert math.isfinite(r["measured"]) and r["measured"] > 0 and math.isfinite(r["predicted"])
    # a loose bound (CI machines are shared and noisy): the harness and the model agree on the
    # basic figures within a factor of two, which still catches unit or wiring mistakes
    for key in (("SingleStream", "p90 latency (ms)"), ("Offline", "samples/s"),
                ("Server", "mean latency at 30% load (ms)")):
        ratio = by[key]["predicted"] / by[key]["measured"]
        assert 0.5 < ratio < 2.0, by[key]
    assert report.error_summary(recs)["median_abs_error_pct"] < 60
    # each repeat's batch times against the calibration, read back from its batch log
    for r in recs:
        if r["metric"] != "peak VALID QPS":
            assert len(r["batch_speed"]) == 1 and 0.3 < r["batch_speed"][0] < 3.0, r
            assert math.isfinite(r["predicted_at_run_speed"]) and r["predicted_at_run_speed"] > 0, r
    # LoadGen really ran: its logs are there, and its verdicts are kept
    logs = list((root / "out").rglob("mlperf_log_summary.txt"))
    assert len(logs) >= 9 and all("Result is" in p.read_text() for p in logs)


def test_every_run_records_its_speed_probes_against_the_calibration(quick_run):
    # batch 1 and the largest batch (4 here), before LoadGen starts, beside the same probes
    # in the calibration: the machine's drift, which batch sizes that go through DRAM can
    # show where batch 1 does not
    import json
    root, (res,) = quick_run
    assert res["runs"]
    for run in res["runs"]:
        for key in ("probe_drift", "probe_drift_max"):
            assert run[key] is not None and math.isfinite(run[key]) and run[key] > 0, (key, run)
        harness = json.loads((Path(run["folder"]) / "harness.json").read_text())
        assert harness["probe_max"]["batch"] == 4 and harness["probe_max"]["runs"] >= 5
    cals = sorted((root / "out").rglob("calibration.json"))
    assert [c.parent.name for c in cals] == ["calibration", "calibration_after"]
    # busy times in passes over the batch sizes: one entry per size, every pass's cycles in it
    from sim.validate.service_times import BUSY_MIN_BATCHES, BUSY_PASSES
    service = json.loads((cals[0].parent / "service" / "service.json").read_text())
    assert sorted(e["batch"] for e in service["busy"]) == [1, 2, 3, 4]
    assert all(e["passes"] == BUSY_PASSES == 3 and len(e["ns"]) >= BUSY_MIN_BATCHES == 30 for e in service["busy"]), \
        [(e["passes"], len(e["ns"])) for e in service["busy"]]
    assert all(json.loads(c.read_text())["probe_max_ns"] > 0 for c in cals)
    # idle times at the closed-loop gaps (SingleStream's p90, MultiStream's p99) measured at
    # length: batch 1 and the MultiStream batch (4 here) span about IDLE_LONG_S x the quick
    # scale (0.3), unless the segment hit its cap of batches
    from sim.validate.service_times import GAPS_NS, IDLE_LONG_S, IDLE_MAX_REPS
    for e in service["idle"]:
        span_s = (sum(e["ns"]) + (len(e["ns"]) - 1) * e["gap_mean_ns"]) / 1e9
        if e["gap_ns"] in GAPS_NS[:2]:
            assert len(e["ns"]) >= IDLE_MAX_REPS - 1 or span_s > 0.5 * IDLE_LONG_S * 0.3, (e["batch"], span_s)
    assert sorted((e["batch"], e["gap_ns"]) for e in service["idle"] if e["gap_ns"] in GAPS_NS[:2]) == \
        [(1, GAPS_NS[0]), (1, GAPS_NS[1]), (4, GAPS_NS[0]), (4, GAPS_NS[1])]
    # the predictions pool the calibrations before and after the runs
    assert len(res["calibration"]["parts"]) == 2
    assert "2 calibrations (service times 1.000, " in res["calibration"]["summary"][0]
    assert res["calibration"]["slowdowns"][0] == 1.0 and len(res["calibration"]["slowdowns"]) == 2


def test_replay_reproduces_the_predictions(quick_run):
    """A replay reads the kept real runs and calibration back and simulates again: with the
    same seeds it gives the same records, and it needs neither LoadGen runs nor a calibration."""
    from sim.validate.experiment import run_validation
    root, (res,) = quick_run
    system = parse_system({"batching": {"policy": "dynamic", "max_batch": 4},
                           "accelerators": {"cost": {"kind": "cpu_profile", "threads": 1}}})
    (again,) = run_validation([str(root / "tiny_model.onnx")], system, root / "out", quick=True, replay=True,
                              log=lambda *a: None, load_basis="peak")
    key = ("scenario", "metric", "measured", "predicted", "error_pct")
    assert [tuple(r[k] for k in key) for r in again["records"]] == [tuple(r[k] for k in key) for r in res["records"]]
    with pytest.raises(InputError, match="no calibration to replay"):
        run_validation([str(root / "tiny_model.onnx")], system, root / "elsewhere", quick=True, replay=True,
                       log=lambda *a: None)


def test_replay_pools_a_calibration_made_between_the_rounds(quick_run, tmp_path):
    """A kept validation with a calibration between the rounds: the replay reads it back
    after its round and pools all three (here a copy of the one after the runs, 10% slower)."""
    import json
    import shutil

    from sim.validate.experiment import run_validation
    root, (res,) = quick_run
    kept = tmp_path / "out"
    shutil.copytree(root / "out", kept)
    (folder,) = [p.parent for p in kept.rglob("calibration_after")]
    between = json.loads((folder / "calibration_after" / "calibration.json").read_text())
    for e in between["cost"]["busy"] + between["cost"]["idle"]:
        e["ns"] = [int(1.1 * x) for x in e["ns"]]
    (folder / "calibration_between1").mkdir()
    (folder / "calibration_between1" / "calibration.json").write_text(json.dumps(between))
    system = parse_system({"batching": {"policy": "dynamic", "max_batch": 4},
                           "accelerators": {"cost": {"kind": "cpu_profile", "threads": 1}}})
    (again,) = run_validation([str(root / "tiny_model.onnx")], system, kept, quick=True, replay=True,
                              log=lambda *a: None, load_basis="peak")
    cal = again["calibration"]
    assert len(cal["parts"]) == 3 and "3 calibrations" in cal["summary"][0]
    assert cal["slowdowns"][1] == pytest.approx(1.1 * cal["slowdowns"][2], rel=0.01)


def test_invalid_runs_are_reported_not_hidden(quick_run):
    """--quick runs 64 MultiStream queries, too few for the p99 early-stopping estimate."""
    from sim.validate import report
    _, (res,) = quick_run
    ms = next(r for r in res["records"] if r["scenario"] == "MultiStream")
    assert ms["measured_valid"] == "0/1" and "early stopping" in ms["invalid_reasons"]
    assert ms["predicted_valid"].startswith("0/")
    table = report.format_table(res["records"])
    assert "INVALID 1/1 (early stopping)" in table


def test_outputs_json_plots_and_report(quick_run, tmp_path):
    import json

    from sim.validate import experiment as compare
    from sim.validate import report
    root, results = quick_run
    fp = compare.machine_fingerprint(results)
    path = report.write_json(tmp_path / "v.json", results, fp, "python -m sim validate --quick")
    data = json.loads(path.read_text())
    assert data["fingerprint"]["cpu_model"] and data["fingerprint"]["loadgen"]
    assert {"workload", "scenario", "metric", "measured", "predicted", "error_pct"} <= set(data["records"][0])
    plots = report.write_plots(results, tmp_path / "plots")
    assert len(plots) == 2 and all(p.stat().st_size > 1000 for p in plots)
    md = report.write_markdown(tmp_path / "validation.md", results, fp, "cmd", plots).read_text()
    assert "| workload | scenario | metric |" in md and "![" in md and "Machine" in md


def test_peak_search_brackets_and_bisects():
    from sim.validate.peak import bisect_peak
    calls = []

    def trial(q):
        calls.append(q)
        return q <= 73.3

    # loads known VALID at 30 and 60, INVALID at 85 (of a capacity of 100)
    peak = bisect_peak(trial, {30.0: True, 60.0: True, 85.0: False}, 100.0, 0.02)
    assert 73.3 * 0.98 <= peak <= 73.3 and len(calls) <= 6
    # nothing known INVALID: step up until a trial fails, then bisect
    assert 73.3 * 0.98 <= bisect_peak(trial, {30.0: True}, 100.0, 0.02) <= 73.3
    # nothing VALID down to a tenth of the capacity
    assert bisect_peak(lambda q: False, {30.0: False}, 100.0, 0.02) == 0.0


def test_records_use_the_median_of_repeats_and_report_invalid_runs():
    from sim.validate import report
    from sim.validate.records import _record
    real = [{"valid": True, "loadgen": {}, "machine": {"foreign_cores_mean": 0.1}},
            {"valid": False, "loadgen": {"early_stopping_met": False}, "machine": {"foreign_cores_mean": 0.9}},
            {"valid": True, "loadgen": {}, "machine": {"foreign_cores_mean": 0.0}}]
    r = _record("w", "Server", "p99 latency at 30% load (ms)", [10.0, 30.0, 11.0], [10.5, 11.5], real,
                [{"valid": True}, {"valid": True}])
    assert r["measured"] == 11.0 and r["predicted"] == 11.0 and r["error_pct"] == 0.0
    assert math.isclose(r["measured_spread_pct"], 100 * 20 / 11)
    assert r["measured_valid"] == "2/3" and r["invalid_reasons"] == ["early stopping"]
    assert "INVALID 1/3 (early stopping)" in report.format_table([r])
    s = report.error_summary([r, {**r, "error_pct": -8.0}])
    assert s["median_abs_error_pct"] == 4.0 and s["worst_abs_error_pct"] == 8.0


def test_server_loads_of_the_real_peak_end_to_end(quick_run):
    """``load_basis="peak"``: the peak search runs before the Server loads, which are fractions
    of the real peak (the median over the repeats), not of the Offline samples/s."""
    _, (res,) = quick_run
    assert res["load_basis"] == "peak"
    by = {(r["scenario"], r["metric"]): r for r in res["records"]}
    peak = by[("Server", "peak VALID QPS")]["measured"]
    assert res["load_basis_qps"] == pytest.approx(peak, rel=1e-6)
    assert res["load_basis_qps"] != pytest.approx(res["capacity_qps"], rel=1e-3)
    folders = [Path(r["folder"]).parts for r in res["runs"]]
    first_server = min(i for i, f in enumerate(folders) if any(x.startswith("Server_at") for x in f))
    assert all(i < first_server for i, f in enumerate(folders) if "peak" in f)    # searched first
    spec = json.loads((Path(res["runs"][first_server]["folder"]) / "spec.json").read_text())
    assert spec["overrides"]["server_target_qps"] == pytest.approx(0.30 * peak, rel=1e-3)


def test_server_load_basis_refuses_what_it_cannot_use():
    from sim.validate.experiment import run_validation, server_load_basis
    assert server_load_basis("offline", 80.0, None) == 80.0
    assert server_load_basis("peak", 80.0, {"real": [60.0, 66.0, 63.0]}) == 63.0
    with pytest.raises(InputError, match="no VALID Server QPS"):
        server_load_basis("peak", 80.0, {"real": [0.0, 0.0, 0.0]})
    with pytest.raises(InputError, match="expected 'offline'"):
        run_validation(["mobilenet_v1"], load_basis="capacity")
    with pytest.raises(InputError, match="drop --no-peak"):
        run_validation(["mobilenet_v1"], load_basis="peak", peak=False)
