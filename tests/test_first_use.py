"""A newcomer's first commands: what they say they simulate, why a run is INVALID, the flags
spelt the same in every command (old spellings accepted with a note).

Truth for the INVALID reasons is computed by hand: a fixed service time T on one idle
instance takes exactly T, so T above the bound means no load is VALID; a fixed 1 ms server
carries at most 1,000 samples/s; an M/M/1 queue (exponential 1 ms service, Poisson arrivals
at rate lambda) has an exponential sojourn time of rate mu - lambda, so its p99 is
ln(100) / (mu - lambda): 18.4 ms at 750 QPS, over a 15 ms bound at 75 % load (queueing).
"""

from __future__ import annotations

import math

import pytest

from sim import cli
from sim.apps.verdict_reason import classify, explain
from sim.commands.header import cost_source, what_simulated
from sim.cost.synthetic import ExponentialCost, FixedCost
from sim.hw.local_cpu import this_machine_differs
from sim.run import simulate
from sim.sut.system import SystemSpec

SHORT = {"min_duration_ns": 20 * 10 ** 9, "min_query_count": 100}


def _server(cost, qps: float):
    return simulate("Server", workload=None, mlperf_model="resnet50", system=SystemSpec(), cost=cost,
                    overrides={"server_target_qps": qps, **SHORT})


def test_one_sample_over_the_bound_is_said_with_its_figures():
    cost = FixedCost(20e6)                     # 20 ms a sample; ResNet-50's Server bound is 15 ms
    r = _server(cost, 10.0)
    reason = explain(r, cost, alternatives=False)
    assert reason.kind == "sample_over_bound"
    assert reason.figures["floor_ns"] == pytest.approx(20e6)
    assert reason.figures["bound_ns"] == 15e6
    assert "20 ms" in reason.text and "15 ms" in reason.text and "cannot help" in reason.text


def test_a_target_above_capacity_keeps_loadgens_advice_with_the_figure():
    cost = FixedCost(1e6)                      # 1 ms: at most 1,000 samples/s
    r = _server(cost, 2000.0)
    reason = explain(r, cost, alternatives=False)
    assert reason.kind == "over_capacity"
    assert reason.figures["capacity_qps"] == pytest.approx(1000.0, rel=1e-6)
    assert "Reduce the target QPS below 1,000" in reason.text


def test_queueing_keeps_loadgens_advice():
    lam, mu = 750.0, 1000.0
    assert math.log(100) / (mu - lam) * 1e3 == pytest.approx(18.42, abs=0.01)      # the M/M/1 p99, ms
    cost = ExponentialCost(1e6)
    r = _server(cost, lam)
    p99_ms = r.metrics.sample_latency.percentiles_ns["99.00"] / 1e6
    assert p99_ms == pytest.approx(18.42, rel=0.15)
    reason = explain(r, cost, alternatives=False)
    assert reason.kind == "queueing" and "reduce the target QPS" in reason.text


def test_a_valid_run_has_no_reason():
    cost = FixedCost(1e6)
    r = _server(cost, 100.0)
    assert r.metrics.valid and explain(r, cost) is None


def test_classify_by_hand():
    common = dict(min_duration_met=True, min_queries_met=True, bound_ns=15e6)
    assert classify(True, "Server", perf_constraints_met=True, floor_ns=1e6, target_qps=1, capacity_qps=9,
                    **common) is None
    assert classify(False, "Server", perf_constraints_met=False, floor_ns=16e6, target_qps=1, capacity_qps=60,
                    **common) == "sample_over_bound"
    assert classify(False, "Server", perf_constraints_met=False, floor_ns=1e6, target_qps=2000, capacity_qps=1000,
                    **common) == "over_capacity"
    assert classify(False, "Server", perf_constraints_met=False, floor_ns=1e6, target_qps=900, capacity_qps=1000,
                    **common) == "queueing"
    assert classify(False, "Offline", min_duration_met=False, min_queries_met=True, perf_constraints_met=None,
                    floor_ns=None, bound_ns=0, target_qps=None, capacity_qps=None) == "too_short"


def test_what_simulated_names_device_count_and_cost_source():
    system = SystemSpec(name="two cards", accelerators=2, instances=3)
    line = what_simulated("Server", "resnet50", system, "affine:2,0.05", qps=20.0)
    assert line.startswith("simulating resnet50, Server at 20 QPS, on 'two cards' (2 devices x 3 instances")
    assert "synthetic service time affine:2,0.05 ms" in line
    measured = cost_source(SystemSpec(), "resnet50", None)
    assert "measured onnxruntime profile of resnet50 on this machine's CPU" in measured and "FP32" in measured
    from_file = cost_source(SystemSpec(cost={"kind": "fixed", "time_us": 5.0}), "resnet50", None)
    assert from_file.startswith("synthetic fixed cost from the system file (time_us=5.0)")


def test_run_prints_what_it_simulates_first_and_the_verdict(capsys):
    code = cli.main(["run", "--scenario", "Server", "--qps", "10", "--service-time-ms", "20",
                     "--min-duration-ms", "2000", "--min-query-count", "10", "--quiet",
                     "--no-alternatives"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0].startswith("simulating resnet50, Server at 10 QPS, on '1 device, 1 instance, no batching'")
    verdict = next(line for line in out if line.startswith("verdict:"))
    assert verdict.startswith("verdict: INVALID (one sample takes 20 ms on this system, above the 15 ms bound")


def test_positional_workload_is_the_old_spelling(capsys):
    assert cli.main(["layers", "mobilenet_v1", "--small", "--json"]) == 0
    old = capsys.readouterr()
    assert "'layers mobilenet_v1' is the old spelling; use 'layers --workload mobilenet_v1'" in old.err
    assert cli.main(["layers", "--workload", "mobilenet_v1", "--small", "--json"]) == 0
    new = capsys.readouterr()
    assert new.out == old.out and "old spelling" not in new.err
    assert cli.main(["layers", "resnet50", "--workload", "mobilenet_v1"]) == 2
    assert "workload given twice" in capsys.readouterr().err


def test_out_is_a_folder_and_the_old_file_spelling_is_noted(tmp_path):
    args = cli.build_parser().parse_args(["sweep", "--grid", "g.yaml", "--out", str(tmp_path / "s")])
    cli.COMMANDS[[c.NAME for c in cli.COMMANDS].index("sweep")].normalize(args)
    assert args.out_file == str(tmp_path / "s" / "results.jsonl")
    args = cli.build_parser().parse_args(["sweep", "g.yaml", "--out", str(tmp_path / "r.jsonl")])
    cli.COMMANDS[[c.NAME for c in cli.COMMANDS].index("sweep")].normalize(args)
    assert args.grid == "g.yaml" and args.out_file == str(tmp_path / "r.jsonl")


def test_min_duration_is_a_float_everywhere():
    parser = cli.build_parser()
    for argv in (["run", "--scenario", "Offline"], ["search"],
                 ["plan", "--devices", "t4", "--qps", "1"]):
        args = parser.parse_args(argv + ["--min-duration-ms", "1500.5"])
        assert args.min_duration_ms == 1500.5


def test_local_cpu_says_when_it_is_not_this_machine():
    zen4 = "vendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n"
    zen3 = "vendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\n"
    assert this_machine_differs(zen4, cpus=2) is None
    note = this_machine_differs(zen3, cpus=2)
    assert "not of this machine" in note and "model 1 (measured: 17)" in note
    assert "8 CPUs (measured: 2)" in this_machine_differs(zen4, cpus=8)
