"""Capacity planning: the planned system meets the target and the next smaller one does not.

The truth is independent of the planner's search: queueing theory (the p99 sojourn time of
M/M/c), a closed form for MultiStream on deterministic devices, and direct simulated runs
of the planned and the next smaller system.
"""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
from scipy.optimize import brentq

from sim.apps import plan as planner
from sim.cost.synthetic import AffineCost, ExponentialCost
from sim.errors import InputError
from sim.run import simulate
from sim.sut.system import SystemSpec


def erlang_c(c: int, a: float) -> float:
    """Probability that an arrival waits in M/M/c (offered load a = lambda/mu erlangs)."""
    terms = sum(a ** k / math.factorial(k) for k in range(c))
    last = a ** c / math.factorial(c) * c / (c - a)
    return last / (terms + last)


def mmc_sojourn_quantile(c: int, lam: float, mu: float, q: float) -> float:
    """t with P(sojourn > t) = 1 - q for FCFS M/M/c: W has an atom at 0 and an exponential
    tail C e^{-(c mu - lam) t}; the sojourn adds an independent exp(mu) service."""
    C, theta = erlang_c(c, lam / mu), c * mu - lam

    def tail(t):
        return math.exp(-mu * t) + C * mu / (mu - theta) * (math.exp(-theta * t) - math.exp(-mu * t)) - (1 - q)

    return brentq(tail, 1e-9, 100.0 / min(mu, theta))


def test_plan_matches_mmc_closed_form():
    mu, lam = 1000.0, 3500.0          # 1 ms mean service, 3,500 queries/s
    p99 = {c: mmc_sojourn_quantile(c, lam, mu, 0.99) for c in (4, 5, 6)}
    assert p99[4] > 1.5 * p99[5]      # a clear gap for the bound to sit in
    bound_ms = math.sqrt(p99[4] * p99[5]) * 1e3
    dev = planner.CostDevice("mm1", SystemSpec(name="M/M/1 device"), ExponentialCost(1e6))
    target = planner.Target("Server", qps=lam, latency_ms=bound_ms, headroom=0.0, min_duration_ms=60_000,
                            min_query_count=1000)
    p = planner.plan_device(dev, target, max_count=32)
    assert p.status == "ok" and p.chosen.count == 5, (p.status, p.chosen, p.smaller)
    assert p.smaller.count == 4 and not p.smaller.ok and p.smaller.reason == "queueing"
    assert p.chosen.value < bound_ms < p.smaller.value
    # the simulated p99s agree with the closed form (1 M/M/c queue, 210k queries)
    assert p.chosen.value == pytest.approx(p99[5] * 1e3, rel=0.08)
    assert p.smaller.value == pytest.approx(p99[4] * 1e3, rel=0.08)


def test_plan_multistream_closed_form():
    # deterministic devices: a query's 8 samples over K devices take a + b * ceil(8 / K)
    a_ms, b_ms, limit_ms = 1.0, 1.0, 4.5
    truth = min(k for k in range(1, 9) if a_ms + b_ms * math.ceil(8 / k) <= limit_ms)
    dev = planner.CostDevice("affine", SystemSpec(name="affine device"), AffineCost(a_ms * 1e6, b_ms * 1e6))
    # (at least 662 queries: fewer leave LoadGen's p99 early-stopping estimate undefined: INVALID)
    target = planner.Target("MultiStream", latency_ms=limit_ms, headroom=0.0, min_duration_ms=4000,
                            min_query_count=700)
    p = planner.plan_device(dev, target, max_count=16)
    assert truth == 3 and p.chosen.count == truth
    assert p.chosen.value == pytest.approx(a_ms + b_ms * 3, rel=1e-6)
    assert p.smaller.count == 2 and p.smaller.value == pytest.approx(a_ms + b_ms * 4, rel=1e-6)


@pytest.fixture(scope="module")
def calib():
    from sim.hw import published
    return published.calibration_from()


def _direct_server_valid(dev, count, target) -> bool:
    """The planner's verdict for ``count`` recomputed from simulate() and the hardware
    model's sustained capacity, over the same batching variants."""
    for v in dev.variants():
        built = dev.system(count, v, target)
        if built is None:
            continue
        system, cost, extra = built
        qps = target.required_qps()
        if qps > extra["capacity_qps"] or (extra["issue_limit_qps"] and qps > extra["issue_limit_qps"]):
            continue
        r = simulate("Server", workload=None, mlperf_model=dev.mlperf_model, system=system, cost=cost,
                     overrides={"server_target_qps": qps,
                                "server_target_latency_ns": int(target.latency_ms * 1e6),
                                **target.duration_overrides()})
        if r.metrics.valid:
            return True
    return False


@pytest.mark.parametrize("device,qps", [("t4", 20000.0), ("l4", 20000.0)])
def test_plan_server_hardware(calib, device, qps):
    target = planner.Target("Server", qps=qps, latency_ms=15.0, headroom=0.1, min_duration_ms=3000)
    (p,) = planner.plan("resnet50", target, [device], calib=calib)
    assert p.status == "ok" and p.chosen.count >= 2
    dev = planner.HwDevice(device, "resnet50", target, calib)
    assert _direct_server_valid(dev, p.chosen.count, target)
    assert not _direct_server_valid(dev, p.chosen.count - 1, target)
    assert p.binding and p.sensitivity.startswith("+10% load")


def test_plan_offline_hardware(calib):
    target = planner.Target("Offline", qps=50000.0, headroom=0.0, min_duration_ms=2000)
    (p,) = planner.plan("resnet50", target, ["l4"], calib=calib)
    dev = planner.HwDevice("l4", "resnet50", target, calib)

    def rate(k):
        system, cost, _ = dev.system(k, 1.0, target)
        return simulate("Offline", workload=None, mlperf_model="resnet50", system=system, cost=cost,
                        overrides={"offline_expected_qps": 50000.0, "min_duration_ns": 2 * 10 ** 9}).metrics.headline_value

    k = p.chosen.count
    assert rate(k) >= 50000.0 > rate(k - 1)
    assert p.binding.startswith("throughput")


def test_plan_ranks_by_objective(calib):
    target = planner.Target("Server", qps=8000.0, latency_ms=15.0, min_duration_ms=2000)
    plans = planner.plan("resnet50", target, ["t4", "l4"], objective="power", calib=calib)
    assert all(p.chosen for p in plans)
    watts = [p.total("power") for p in plans]
    assert watts == sorted(watts)
    priced = planner.plan("resnet50", target, ["t4", "l4"], objective="cost", prices={"t4": 100.0, "l4": 10_000.0},
                          budget_usd=1000.0, calib=calib)
    assert priced[0].device == "t4" and not priced[0].over_budget and priced[1].over_budget


def test_plan_impossible_targets(calib):
    # the latency bound below one sample's time: no count helps
    target = planner.Target("Server", qps=1000.0, latency_ms=0.05, min_duration_ms=1000)
    (p,) = planner.plan("resnet50", target, ["t4"], calib=calib)
    assert p.chosen is None and p.status.startswith("impossible") and p.binding == "latency"
    # the count limit: say so and show the best found
    target = planner.Target("Server", qps=200000.0, latency_ms=15.0, min_duration_ms=1000)
    (p,) = planner.plan("resnet50", target, ["t4"], max_count=4, calib=calib)
    assert p.chosen is None and "no system up to 4 x t4" in p.status and p.best.count == 4
    assert "best found: 4 devices" in p.status
    # SingleStream: more devices do not shorten one sample
    target = planner.Target("SingleStream", latency_ms=0.01, min_duration_ms=1000)
    (p,) = planner.plan("resnet50", target, ["t4"], calib=calib)
    assert p.binding == "latency" and "no count helps" not in p.status and "shorten one sample" in p.status


def test_plan_bad_input(calib):
    t = planner.Target("Server", qps=1000.0, latency_ms=15.0)
    with pytest.raises(InputError, match="unknown device 'no-such-gpu'"):
        planner.plan("resnet50", t, ["no-such-gpu"], calib=calib)
    with pytest.raises(InputError, match="--qps"):
        planner.plan("resnet50", planner.Target("Server", qps=None), ["t4"], calib=calib)
    with pytest.raises(InputError, match="--latency-ms"):
        planner.plan("resnet50", planner.Target("SingleStream"), ["t4"], calib=calib)
    with pytest.raises(InputError, match="--workload 'no_such_workload': unknown"):
        planner.plan("no_such_workload", t, ["t4"], calib=calib)
    with pytest.raises(InputError, match="--objective"):
        planner.plan("resnet50", t, ["t4"], objective="speed", calib=calib)


def test_plan_command_line(tmp_path):
    out = tmp_path / "plan"
    r = subprocess.run([sys.executable, "-m", "sim", "plan", "--workload", "resnet50", "--qps", "5000",
                        "--latency-ms", "15", "--devices", "t4,l4", "--min-duration-ms", "2000",
                        "--objective", "power", "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "| rank | device | count |" in r.stdout and "Binding:" in r.stdout
    assert r.stdout.startswith("planning resnet50 for t4, l4:")          # what it does, first
    assert (out / "plan.csv").read_text().startswith("rank,device,kind,count")     # --out is a folder
    assert '"schema": "sim.plan/1"' in (out / "plan.json").read_text()
    bad = subprocess.run([sys.executable, "-m", "sim", "plan", "--devices", "t4,nope", "--qps", "10"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown device 'nope'" in bad.stderr
    bad = subprocess.run([sys.executable, "-m", "sim", "plan", "--devices", "t4", "--qps", "10", "--price", "t4"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "DEVICE=AMOUNT" in bad.stderr


def test_plan_agrees_with_compare(calib):
    """Two paths to one prediction: the plan's simulated SingleStream p90 of one device and
    Offline rate of one device equal what ``sim.apps.compare`` (through ``sim.hw.published``) says."""
    from sim.apps import compare
    rows = {r.device: r for r in compare.compare("resnet50", ["t4", "l4"], 1, calib)}
    for d in ("t4", "l4"):
        ss = planner.plan("resnet50", planner.Target("SingleStream", latency_ms=50.0, min_duration_ms=1000),
                          [d], calib=calib)[0]
        assert ss.chosen.count == 1
        assert ss.chosen.value == pytest.approx(rows[d].values["singlestream_p90_ns"] / 1e6, rel=0.01)
        dev = planner.HwDevice(d, "resnet50", planner.Target("Offline", qps=1.0), calib)
        off = dev.evaluate(1, planner.Target("Offline", qps=1.0, min_duration_ms=2000))
        assert off.value == pytest.approx(rows[d].values["offline_samples_per_s"], rel=0.02)


class _LinearDevice:
    """A device whose k copies carry exactly k x 1,000 QPS (a run meets a target iff its load fits)."""
    name, kind, price_usd, usd_per_hour, tdp_w, precision, source = "lin", "gpu", None, None, None, "", ""

    def __init__(self):
        self.loads = []

    def feasible(self, target):
        return None

    def estimate(self, target):
        return 1

    def evaluate(self, k, target, load=1.0):
        need = target.required_qps(load)
        self.loads.append((k, need))
        return planner.Candidate(k, need <= 1000.0 * k, "no batching", reason="" if need <= 1000.0 * k
                                 else "throughput", detail=f"{need:,.0f} against {1000 * k:,.0f}")


def test_sensitivity_tests_load_beyond_the_headroom():
    # 1,800 QPS with 10 % headroom: planned at 1,980 -> 2 devices (2,000 QPS). +10 % beyond the
    # headroom is 2,178 QPS: the 2 devices fail it and 3 meet it. (Testing 1,800 x 1.1 = 1,980,
    # what the headroom already covers, would always pass.)
    dev = _LinearDevice()
    target = planner.Target("Server", qps=1800.0, latency_ms=15.0, headroom=0.1)
    p = planner.plan_device(dev, target)
    assert p.chosen.count == 2
    assert not p.plus10.ok and p.count_at_plus10 == 3
    assert p.sensitivity.startswith("+10% load beyond the 10% headroom (2,178 QPS): the planned system fails")
    # 1,500 QPS: planned at 1,650 on 2 devices; +10 % beyond, 1,815, still fits
    p = planner.plan_device(_LinearDevice(), planner.Target("Server", qps=1500.0, latency_ms=15.0, headroom=0.1))
    assert p.chosen.count == 2 and p.plus10.ok and p.count_at_plus10 == 2


def _plan(device, count, price=None, tdp=None):
    return planner.DevicePlan(device, "gpu", chosen=planner.Candidate(count, True), price_usd=price, tdp_w=tdp)


def test_devices_without_the_ranked_quantity_are_listed_apart():
    from sim.commands.plan import rows, to_markdown
    plans = [_plan("xeon", 4, price=9000.0), _plan("t4", 2), _plan("l4", 1), _plan("cheap", 3, price=1000.0),
             planner.DevicePlan("nope", "gpu", status="impossible: too slow")]
    ranked = planner.rank(plans, "cost")
    assert [p.device for p in ranked] == ["cheap", "xeon", "l4", "t4", "nope"]
    target = planner.Target("Offline", qps=100.0)
    table = rows(ranked, target, "cost")
    assert [r["rank"] for r in table] == [1, 2, "", "", ""]          # no price: no rank
    text = to_markdown(ranked, target, "cost", "resnet50")
    assert "Not ranked by cost (their profiles have no purchase price; give --price DEVICE=USD): l4, t4" in text
