"""LLM capacity planning and comparison (``sim.apps.llm_plan``, ``sim.apps.llm_compare``).

The planned system, simulated directly, is VALID and the same layout with one replica fewer is
not; the replica count is at least the bound the ideal roofline (100% of the datasheet peaks, no
fixed costs) allows; the binding constraint is named right on devices built so that one resource
is scarce; impossible targets and unknown devices get one clear line. Small, fast cases: short
trials and 30 s confirming runs over 2,048 loaded samples.
"""

from __future__ import annotations

import math
import subprocess
import sys
from dataclasses import replace

import pytest

from sim.apps import llm_compare
from sim.apps import llm_plan as P
from sim.cost.llm_roofline import RooflineParams, RooflineStepCost, ideal
from sim.errors import InputError
from sim.run_llm import simulate_llm_run
from sim.workload import llm

FAST = {"trial_s": 30.0, "confirm_duration_ms": 30_000.0}
T = 1e12


@pytest.fixture(scope="module")
def wl():
    return llm.load("llama2-70b")


@pytest.fixture(scope="module")
def h200():
    """H200 with the roofline's documented defaults, so the cases do not move with a recalibration."""
    return replace(llm_compare.resolve("h200-sxm"), params=RooflineParams(), calibration="defaults (test)")


def _direct(res, wl, plan, replicas: int, qps: float, target: P.LLMTarget):
    system = llm_compare.system_for(res, wl.model, plan.precision, plan.tp, replicas, pp=plan.pp,
                                    max_seqs=plan.max_seqs)
    over = {"server_target_qps": qps, **target.overrides(),
            **llm_compare.short_overrides(target.confirm_duration_ms / 1e3, P.TRIAL_SAMPLES)}
    return simulate_llm_run("Server", wl, system=system, overrides=over)


def _ideal_min_replicas(res, wl, plan, qps: float) -> int:
    """Replicas that even the ideal roofline needs: each replica at most ``max_seqs`` sequences a
    step, a step at least the time to read the weights plus the batch's KV at 100% of the HBM
    bandwidth (or its FLOPs at 100% of peak)."""
    model = replace(wl.model, precision=plan.precision, kv_precision=plan.precision)
    cost = RooflineStepCost(model, res.device, plan.tp, plan.pp, params=ideal())
    ds = wl.dataset
    b = plan.max_seqs
    step_ns = cost.step_ns(0, 0.0, b, int(b * ds.input.mean))      # decode only, the shortest context
    tokens_per_s = b / step_ns * 1e9
    return math.ceil(qps * ds.output.mean / tokens_per_s)


def test_planned_system_valid_and_next_smaller_not(h200, wl):
    target = P.LLMTarget(qps=20, ttft_ms=180, **FAST)
    plan = P.plan_device(h200, wl, target, tp_degrees=(1,), batch_limits=(256,))
    assert plan.status == "ok" and plan.devices == plan.replicas * plan.tp * plan.pp
    q = target.required_qps()
    assert q == pytest.approx(22.0)
    assert _direct(h200, wl, plan, plan.replicas, q, target).metrics.valid
    smaller = _direct(h200, wl, plan, plan.replicas - 1, q, target)
    assert not smaller.metrics.valid and "TTFT p99" in smaller.verdict_reason()
    assert plan.replicas >= _ideal_min_replicas(h200, wl, plan, q)
    # the smaller system keeps up with the load: its TTFT tail, not its throughput, fails
    assert plan.binding.startswith("TTFT queueing")
    assert plan.power_w == pytest.approx(plan.devices * 700.0)     # H200 SXM TDP 700 W
    assert plan.price_usd is None


def test_plus10_line_is_what_the_system_does_at_plus10(h200, wl):
    target = P.LLMTarget(qps=5, tpot_ms=2000, ttft_ms=20_000, **FAST)
    slow = replace(h200, device=replace(h200.device, peak_flops={"bf16": 60 * T, "fp8": 60 * T, "fp32": 10 * T},
                                        name="slow-flops"))
    plan = P.plan_device(slow, wl, target, tp_degrees=(4,), batch_limits=(128,))
    q10 = 5 * 1.1 * 1.1
    assert plan.plus10.startswith(f"+10% ({q10:.4g} QPS)")
    assert plan.plus10_trial.qps == pytest.approx(q10)
    assert _direct(slow, wl, plan, plan.replicas, q10, target).metrics.valid == plan.plus10_trial.valid
    if not plan.plus10_trial.valid:
        assert "keep it VALID" in plan.plus10
    # throughput binds on a device with a twentieth of the H200's FLOPS; its decode steps are compute-bound
    assert plan.binding.startswith("compute"), plan.binding
    assert plan.replicas >= _ideal_min_replicas(slow, wl, plan, target.required_qps())


def test_binding_kv_capacity(h200, wl):
    # 82 GB: the FP8 weights (69 GB) and the reserve leave about 5,000 tokens of KV per device,
    # so the running batch is cut by the cache long before the batch limit
    tight = replace(h200, has_link=False, device=replace(h200.device, memory_bytes=82e9, name="h200-82gb"))
    plan = P.plan_device(tight, wl, P.LLMTarget(qps=3, **FAST), tp_degrees=(1,), batch_limits=(256,))
    assert plan.kv_tokens_per_replica < 8000
    assert plan.binding.startswith("KV capacity"), plan.binding
    assert plan.smaller.preemptions > 0 or plan.smaller.kv_peak_share >= P.KV_FULL_SHARE


def test_binding_memory_bandwidth(h200, wl):
    slow = replace(h200, device=replace(h200.device, memory_bandwidth_Bps=1.2e12, memory_bytes=400e9,
                                        name="slow-hbm"))
    plan = P.plan_device(slow, wl, P.LLMTarget(qps=40, tpot_ms=2000, ttft_ms=20_000, **FAST), tp_degrees=(1,),
                         batch_limits=(512,))
    assert plan.binding.startswith("memory bandwidth"), plan.binding


def test_binding_rules_on_constructed_runs():
    def trial(**kw):
        base = {"replicas": 3, "devices": 3, "qps": 10.0, "valid": False, "full_length": True,
                "ttft_p99_ms": 500.0, "tpot_p99_ms": 50.0, "served_tokens_per_s": 1000.0,
                "offered_tokens_per_s": 1000.0,
                "decode_side": "memory bandwidth", "ttft_early_ms": 100.0, "ttft_late_ms": 110.0}
        return P.Trial(**{**base, **kw})
    assert P.binding_of(None, 200).startswith("memory")
    assert P.binding_of(trial(tpot_p99_ms=250.0), 200).startswith("TPOT")
    assert P.binding_of(trial(), 200).startswith("TTFT queueing")
    assert P.binding_of(trial(served_tokens_per_s=900.0), 200).startswith("memory bandwidth")
    assert P.binding_of(trial(ttft_late_ms=5000.0, decode_side="compute"), 200).startswith("compute")
    assert P.binding_of(trial(preemptions=3), 200).startswith("KV capacity")


def test_model_that_fits_no_layout(wl):
    big = llm.load("llama3.1-405b")
    plan = P.plan_device("l4", big, P.LLMTarget(qps=1, **FAST), precision="bf16")
    assert plan.status.startswith("impossible: llama3.1-405b in bf16") and "fits no layout of l4" in plan.status
    assert plan.trials == 0 and plan.devices is None


def test_latency_limit_below_one_step(h200, wl):
    plan = P.plan_device(h200, wl, P.LLMTarget(qps=1, tpot_ms=1, **FAST))
    assert plan.status.startswith("impossible: the TPOT limit 1 ms is below one step's time on h200-sxm")
    one_step = RooflineStepCost(replace(wl.model, precision="fp8", kv_precision="fp8"), h200.device, 8,
                                params=RooflineParams()).step_ns(0, 0.0, 1, 1) / 1e6
    assert f"({one_step:.2f} ms" in plan.status and one_step > 1.0
    plan = P.plan_device(h200, wl, P.LLMTarget(qps=1, ttft_ms=2, **FAST))
    assert plan.status.startswith("impossible: the TTFT limit 2 ms")


def test_unknown_and_unsupported_devices(wl):
    assert P.plan_device("nope", wl, P.LLMTarget(qps=1)).status.startswith(
        "unsupported: no device profile 'nope' in hw_profiles/")
    assert P.plan_device("xeon-8480", wl, P.LLMTarget(qps=1)).status.startswith(
        "unsupported: xeon-8480 is a cpu")
    with pytest.raises(InputError, match="--qps"):
        P.LLMTarget(qps=-1).check()
    r = subprocess.run([sys.executable, "-m", "sim", "plan", "--workload", "llama2-70b", "--qps", "10",
                        "--devices", "nope"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "nope: unsupported: no device profile" in r.stdout
    r = subprocess.run([sys.executable, "-m", "sim", "plan", "--workload", "llama2-70b", "--qps", "10",
                        "--devices", "h200-sxm", "--latency-ms", "5"], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "--latency-ms: not used for LLM workload" in r.stderr + r.stdout


def test_compare_per_device_watt_and_price(wl):
    rows = llm_compare.compare_llm("llama2-70b", ["h200-sxm", "nope"], server=False, offline_samples=2048,
                                   prices={"h200-sxm": 30_000.0})
    ok, bad = rows
    assert ok.status == "ok" and ok.devices == 8 and ok.offline_tokens_per_s > 0
    assert ok.per(ok.offline_tokens_per_s, "device") == pytest.approx(ok.offline_tokens_per_s / 8)
    assert ok.per(ok.offline_tokens_per_s, "watt") == pytest.approx(ok.offline_tokens_per_s / (8 * 700.0))
    assert ok.per(ok.offline_tokens_per_s, "usd") == pytest.approx(ok.offline_tokens_per_s / (8 * 30_000.0))
    assert bad.status.startswith("unsupported: no device profile 'nope'")
    text = llm_compare.to_markdown(rows, "llama2-70b", server=False)
    assert "| h200-sxm | 8 (" in text and "- nope: unsupported" in text
    assert ("calibrated on" in text) or ("datasheet figures, uncalibrated" in text) or ("calibration prior" in text)
