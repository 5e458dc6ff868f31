"""The roofline step cost against hand-computed figures (H100 SXM datasheet: 989 TFLOPS BF16 dense,
1,979 FP8, 3.35 TB/s, NVLink 450 GB/s per direction)."""

from __future__ import annotations

import numpy as np
import pytest

from sim.cost.llm_device import DEVICES
from sim.cost.llm_roofline import RooflineParams, RooflineStepCost, distinct_experts, ideal
from sim.cost.protocol import StepCost
from sim.errors import InputError
from sim.workload import llm

H100 = DEVICES["h100-sxm"]
L70 = llm.load("llama2-70b").model
MIX = llm.load("mixtral-8x7b").model
BW = 3.35e12
# llama2-70b weights read per step: every parameter but the 32,000 x 8,192 embedding table, BF16
W70 = 2 * (68_976_648_192 - 32_000 * 8_192)


def test_total_params_constant_used_here():
    assert L70.params().total == 68_976_648_192


def test_decode_batch1_one_h100_at_full_bandwidth_is_41_ms():
    c = RooflineStepCost(L70, H100, params=ideal())
    assert isinstance(c, StepCost)
    t = c.step_ns(0, 0.0, 1, 0)
    # 137.4 GB of weights (+ one token's 320 KiB of KV written) over 3.35 TB/s
    assert t == pytest.approx((W70 + 327_680) / BW * 1e9, rel=1e-9)
    assert t / 1e6 == pytest.approx(41.0, abs=0.05)


def test_decode_reads_the_kv_cache():
    c = RooflineStepCost(L70, H100, params=ideal())
    kv_tokens = 64 * 1000                        # 64 sequences of 1,000 tokens of context
    t = c.step_ns(0, 0.0, 64, kv_tokens)
    assert t == pytest.approx((W70 + (kv_tokens + 64) * 327_680) / BW * 1e9, rel=1e-9)


def test_tp8_decode_splits_weights_and_kv_and_adds_two_allreduces_per_layer():
    p = RooflineParams(memory_efficiency=1.0, compute_efficiency=1.0, step_overhead_ns=0.0, layer_overhead_ns=0.0,
                       allreduce_latency_ns=35_000.0)
    c = RooflineStepCost(L70, H100, tp=8, params=p)
    t = c.step_ns(0, 0.0, 1, 1000)
    memory = (W70 / 8 + 1001 * 327_680 / 8) / BW * 1e9
    # 160 ring all-reduces of one token's 8,192 BF16 activations: 35 us + 2 x 7/8 x 16,384 B / 450 GB/s
    allreduce = 160 * (35_000 + 2 * 7 / 8 * 16_384 / 450e9 * 1e9)
    assert t == pytest.approx(memory + allreduce, rel=1e-9)
    assert allreduce / 1e6 == pytest.approx(5.61, abs=0.01)     # the ~5.6 ms per step of the facts page


def test_large_prefill_is_compute_bound():
    c = RooflineStepCost(L70, H100, params=ideal())
    n = 4096
    pairs = n * (n + 1) / 2
    t = c.step_ns(n, pairs, 0, 0)
    gemm = 2 * (W70 / 2) * n
    attn = 2 * 64 * (128 + 128) * 80 * pairs
    assert t == pytest.approx((gemm + attn) / 989e12 * 1e9, rel=1e-9)
    assert t > (W70 + n * 327_680) / BW * 1e9


def test_knee_between_bandwidth_and_compute_bound():
    # ideal roofline: the crossover is at peak FLOPS / bandwidth / 2 FLOPs per weight byte pair,
    # 989e12 / 3.35e12 = 295 tokens per step for BF16 weights (2 bytes, 2 FLOPs per parameter)
    c = RooflineStepCost(L70, H100, params=ideal())
    parts = c.components(np.array([200, 400]), np.zeros(2), np.zeros(2), np.zeros(2))
    assert parts["memory_ns"][0] > parts["compute_ns"][0] and parts["compute_ns"][1] > parts["memory_ns"][1]


def test_default_efficiencies_and_fixed_costs():
    c = RooflineStepCost(L70, H100)
    t = c.step_ns(0, 0.0, 1, 0)
    assert t == pytest.approx((W70 + 327_680) / (BW * 0.87) * 1e9 + 126_000 + 80 * 32_000, rel=1e-9)
    assert "not calibrated" in c.describe()


def test_fp8_weights_use_the_fp8_peak_and_half_the_bytes():
    from dataclasses import replace
    m8 = replace(L70, precision="fp8")
    c = RooflineStepCost(m8, H100, params=ideal())
    assert c.step_ns(0, 0.0, 1, 0) == pytest.approx((W70 / 2 + 327_680) / BW * 1e9, rel=1e-9)
    assert c.gemm_peak == 1979e12
    a100 = RooflineStepCost(m8, DEVICES["a100-sxm"], params=ideal())
    assert a100.gemm_peak == 312e12 and a100.gemm_precision == "bf16"    # no FP8 units: BF16 math


def test_distinct_experts_against_random_routing():
    rng = np.random.default_rng(0)
    for tokens in (1, 3, 20):
        draws = [len({e for _ in range(tokens) for e in rng.choice(8, 2, replace=False)}) for _ in range(4000)]
        assert distinct_experts(8, 2, tokens) == pytest.approx(np.mean(draws), rel=0.02)


def test_moe_decode_reads_only_the_touched_experts():
    c = RooflineStepCost(MIX, H100, params=ideal())
    p = MIX.params()
    dense = (p.total - p.expert * 8 * 32 - p.embedding) * 2
    one_token = c.components(0, 0.0, 1, 0)["weight_bytes"]
    assert one_token == pytest.approx(dense + 2 * 32 * p.expert * 2, rel=1e-9)     # 2 experts of 8, 32 layers
    many = c.components(0, 0.0, 256, 0)["weight_bytes"]
    assert many == pytest.approx(dense + 8 * 32 * p.expert * 2, rel=1e-6)          # all of them
    # GEMM FLOPs follow the active parameters
    assert c.components(0, 0.0, 1, 0)["gemm_flops"] == pytest.approx(2 * (p.active - p.embedding))


def test_latent_attention_kv_is_not_split_by_tp():
    ds = llm.load("deepseek-r1").model
    c1 = RooflineStepCost(ds, DEVICES["h200-sxm"], tp=1, params=ideal())
    c8 = RooflineStepCost(ds, DEVICES["h200-sxm"], tp=8, params=ideal())
    assert c1.kv_bytes_per_token == c8.kv_bytes_per_token == 70_272


def test_array_form_equals_scalar_form():
    c = RooflineStepCost(MIX, H100, tp=2)
    args = (np.array([0, 512, 37]), np.array([0.0, 512 * 513 / 2, 900.0]), np.array([7, 0, 100]),
            np.array([7000, 0, 55_000]))
    arr = c.step_ns_array(*args)
    assert arr.tolist() == pytest.approx([c.step_ns(*(int(a[i]) if a.dtype.kind == "i" else float(a[i]) for a in args))
                                          for i in range(3)], rel=1e-12)


def test_expert_parallelism_needs_experts():
    with pytest.raises(InputError, match="'ep' = 2"):
        RooflineStepCost(L70, H100, tp=2, ep=2)


def test_bad_efficiency_is_refused():
    with pytest.raises(InputError, match="memory_efficiency"):
        RooflineStepCost(L70, H100, params=RooflineParams(memory_efficiency=1.5))
