"""The analytical model's limits and its agreement with the simulator."""

import math
from dataclasses import replace

import numpy as np
import pytest

from sim.hw import analytic, profiles
from sim.hw import system_model as sm
from sim.hw.analytic import Device, Efficiency
from sim.hw.rows import read_case

EFF = Efficiency(conv=0.5, gconv=0.1, matmul=0.5, bmm=0.3, mem=0.7, kernel_us=0.0, batch_us=0.0)


def _dev(**kw) -> Device:
    base = Device.from_profile(profiles.get("a100-sxm"))
    return replace(base, **kw)


def test_compute_bound_time_is_flops_over_peak():
    w = analytic.workload("resnet50")
    dev = _dev(bandwidth_bps=1e18, units=1)          # memory free, one unit: no tile waste
    t = analytic.batch_time_s(w, dev, "int8", EFF, 64)
    ideal = w.flops.sum() * 64 / (dev.peak_ops["int8"] * 0.5)   # resnet50 is all dense conv (and one matmul)
    assert t == pytest.approx(ideal, rel=0.02)


def test_memory_bound_time_is_bytes_over_bandwidth():
    w = analytic.workload("resnet50")
    dev = _dev(peak_ops={"int8": 1e21}, onchip_bytes=0.0)   # compute free, nothing stays on chip
    b = 8
    t = analytic.batch_time_s(w, dev, "int8", EFF, b)
    moved = w.w_elems.sum() + w.a_elems.sum() * b + w.v_elems.sum() * b
    assert t == pytest.approx(moved / (dev.bandwidth_bps * 0.7), rel=1e-6)


def test_weights_on_chip_are_read_once_per_batch_not_per_sample():
    w = analytic.workload("resnet50")
    dev = _dev(peak_ops={"int8": 1e21}, onchip_bytes=0.0)
    t1, t2 = (analytic.batch_time_s(w, dev, "int8", EFF, b) for b in (1, 2))
    # time(2) - time(1) is one sample of activations; time(1) includes the weights once
    per_sample = w.a_elems.sum() + w.v_elems.sum()
    assert (t2 - t1) * dev.bandwidth_bps * 0.7 == pytest.approx(per_sample, rel=1e-6)


def test_throughput_grows_with_batch_and_saturates():
    w = analytic.workload("resnet50")
    dev = Device.from_profile(profiles.get("a100-sxm"))
    eff = replace(EFF, kernel_us=5.0, batch_us=50.0)
    thr = [b / analytic.batch_time_s(w, dev, "int8", eff, b) for b in (1, 4, 16, 64, 256, 1024)]
    assert all(a < b for a, b in zip(thr, thr[1:]))
    assert thr[-1] / thr[-2] < 1.1 < thr[1] / thr[0]


def test_latency_mode_slows_compute_only():
    w = analytic.workload("bert_large")
    dev = Device.from_profile(profiles.get("cloud-ai-100-pro"))
    eff = replace(EFF, latency_eff=0.5)
    fast = analytic.batch_time_s(w, dev, "int8", eff, 1)
    slow = analytic.batch_time_s(w, dev, "int8", eff, 1, latency_mode=True)
    assert fast < slow < 2.0 * fast + 1e-12


def test_gpu_latency_mode_runs_the_same_kernels():
    w = analytic.workload("bert_large")
    dev = Device.from_profile(profiles.get("t4"))
    eff = replace(EFF, latency_eff=0.5)
    assert analytic.batch_time_s(w, dev, "int8", eff, 1, latency_mode=True) == \
        analytic.batch_time_s(w, dev, "int8", eff, 1)


def test_vectorised_times_equal_pointwise():
    w = analytic.workload("ssd_mobilenet_v1")
    eff = replace(EFF, kernel_us=3.0, batch_us=20.0, latency_eff=0.7)
    devs = [Device.from_profile(profiles.get(n)) for n in ("t4", "cloud-ai-100-pro", "xeon-8380")]
    rows = [(d, prec, b, lat) for d in devs for prec in ("int8", "fp32") if prec in d.peak_ops
            for b in (1, 7, 64) for lat in (False, True)]
    many = analytic.batch_times_many(
        w, "gpu", eff, np.array([d.peak_ops[p] for d, p, _, _ in rows]), np.array([d.bandwidth_bps for d, *_ in rows]),
        np.array([d.onchip_bytes for d, *_ in rows]), np.array([d.units for d, *_ in rows]),
        np.array([analytic.BYTES[p] for _, p, _, _ in rows]), np.array([b for *_, b, _ in rows]),
        np.array([lat for *_, lat in rows]))
    for (d, p, b, lat), t in zip(rows, many):
        d = replace(d, kind="gpu")
        assert t == pytest.approx(analytic.batch_time_s(w, d, p, eff, b, latency_mode=lat), rel=1e-12)


def _row(scenario, metric, units, devices="1", model="resnet50", accelerator="NVIDIA T4", bound="0", version="v2.1"):
    return {"version": version, "division": "closed", "submitter": "test", "system": "sys", "accelerator": accelerator,
            "accelerator_kind": "gpu", "accelerators_per_node": devices, "framework": "TensorRT", "model": model,
            "scenario": scenario, "metric": metric, "units": units, "target_latency_ns": bound,
            "number_of_nodes": "1"}


@pytest.mark.parametrize("row", [
    _row("Offline", "Samples per second", "samples/s", devices="4"),
    _row("SingleStream", "90th percentile latency (ns)", "ns"),
    _row("MultiStream", "99th percentile latency (ns)", "ns", devices="2"),
    _row("MultiStream", "Samples per query", "samples/query (streams)", bound="50000000", version="v1.0"),
])
def test_simulator_agrees_with_closed_form_where_nothing_queues(row):
    case = read_case(row)
    assert case.ok, case.unsupported
    p = sm.Params(eff=replace(EFF, kernel_us=5.0, batch_us=100.0))
    sim, closed = sm.simulate_case(case, p), sm.closed_form(case, p)
    assert sim == pytest.approx(closed, rel=0.01)


def test_server_peak_is_at_most_the_sustainable_capacity_and_meets_the_bound():
    case = read_case(_row("Server", "Scheduled samples per second", "samples/s", devices="2", bound="15000000"))
    p = sm.Params(eff=replace(EFF, kernel_us=5.0, batch_us=100.0), server_util=0.9)
    cap = sm.closed_form(case, p)
    peak = sm.simulate_case(case, p)
    assert 0.5 * cap < peak <= cap * (1 + 1e-9)
    # a tighter bound can only lower the peak
    tight = replace(case, latency_bound_ns=2e6)
    assert sm.simulate_case(tight, p) <= peak


def test_analytic_cost_is_a_simulator_cost_model():
    case = read_case(_row("Offline", "Samples per second", "samples/s"))
    s = sm.setup(case)
    c = sm.cost(case, s, sm.Params(eff=replace(EFF, kernel_us=5.0, batch_us=100.0)), overlap_link=False)
    assert c.service_time_ns(8) > c.service_time_ns(1) > 0
    assert math.isclose(c.service_time_ns(8, idle=True), c.service_time_ns(8))
    assert "analytic roofline" in c.describe()


def test_fused_attention_keeps_the_score_matrices_off_dram():
    """BERT-large at 384 tokens: each of the 24 layers has a 16 x 384 x 384 score matrix per
    sample. Unfused it is written by the score product, read and written by the Softmax and
    read by the context product; fused (GPU engines) none of that reaches DRAM."""
    w = analytic.workload("bert_large")
    scores = 16 * 384 * 384
    a_gpu, v_gpu = w.traffic("gpu")
    a_cpu, v_cpu = w.traffic("cpu")
    assert a_cpu.sum() - a_gpu.sum() == pytest.approx(24 * 2 * scores)
    assert v_cpu.sum() - v_gpu.sum() == pytest.approx(24 * 2 * scores)
    # a network without attention is the same either way
    cnn = analytic.workload("resnet50")
    assert all(np.array_equal(x, y) for x, y in zip(cnn.traffic("gpu"), cnn.traffic("cpu")))


def test_best_batch_takes_the_highest_throughput_within_the_limit():
    # per-sample time falls to batch 16 (fixed cost amortised), then rises (activations spill
    # off chip past 16): the tuned batch is 16, not the largest allowed
    def seconds(b):
        return 1e-3 + b * (1e-4 if b <= 16 else 2e-4)
    assert sm.best_batch(seconds, cap=1024) == 16
    assert sm.best_batch(seconds, cap=8) == 8
    assert sm.best_batch(seconds, cap=1024, limit_s=1.5e-3) == 4      # 1.4 ms fits, batch 8 (1.8 ms) does not
    assert sm.best_batch(lambda b: 1e-3 + b * 1e-4, cap=1024) == 1024  # monotone: the largest


def test_l4_offline_runs_a_batch_that_stays_in_its_l2():
    """The L4's 48 MB L2 holds a small batch's activations: the model's best ResNet-50 Offline
    batch is below the memory cap and faster per sample than the largest batch."""
    case = read_case(_row("Offline", "Samples per second", "samples/s", accelerator="NVIDIA L4"))
    s = sm.setup(case)
    c = sm.cost(case, s, sm.Params(eff=replace(EFF, kernel_us=3.0, batch_us=30.0)), overlap_link=True)
    b = sm.run_offline_batch(s, c)
    assert b < s.offline_batch
    assert b / c.batch_seconds(b) > s.offline_batch / c.batch_seconds(s.offline_batch)
