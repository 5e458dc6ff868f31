"""Batches woken by LoadGen's Server traffic: their times over the calibrated medians, read from a
batch log, and the Server cost model that draws every batch started after a wait from them."""

from __future__ import annotations

import numpy as np
import pytest

from sim.cost.empirical import EmpiricalCost
from sim.errors import InputError
from sim.run import simulate
from sim.validate.config import HarnessConfig
from sim.validate.loadgen_wakes import wake_ratios
from sim.validate.machine_calibration import MachineCalibration as Calibration
from sim.validate.service_times import GAPS_NS

MS = 1_000_000


def _cost(busy1=1.0, idle1=1.2, busy2=1.8):
    busy = {(1, 1): [busy1 * MS] * 5, (2, 1): [busy2 * MS] * 5}
    idle = {(1, g): [idle1 * MS * (1 + k / 10)] * 5 for k, g in enumerate(GAPS_NS)}
    return EmpiricalCost(busy, idle, "test cost")


def test_batches_under_traffic_take_their_busy_median_times_a_ratio_of_their_kind():
    c = _cost()
    t = c.under_traffic([1.0, 1.5], [1.1], "test")
    rng = np.random.default_rng(1)
    # back to back (gap 0): the busy median of the size times the queued ratio
    assert {t.service_time_in_context_ns(2, 0.0, rng=rng) for _ in range(50)} == {np.ceil(1.8 * 1.1 * MS)}
    # after a wait, whatever the gap: the busy median times a woken ratio, half each
    for gap in (40e3, 25e6, 1e9):
        after = [t.service_time_in_context_ns(2, gap, rng=rng) for _ in range(2000)]
        assert set(after) == {1.8 * MS, 1.5 * 1.8 * MS}
        assert np.mean(np.array(after) == 1.8 * MS) == pytest.approx(0.5, abs=0.05)
    for bad in ([], [1.0, -2.0], [float("nan")]):
        with pytest.raises(InputError, match="woken ratios"):
            c.under_traffic(bad, [1.0], "test")
    with pytest.raises(InputError, match="queued ratios: expected positive numbers, got 1 values, 1 of them not"):
        c.under_traffic([1.0], [0.0], "test")


def test_ratios_from_a_batch_log():
    c = _cost()
    # worker 0: a batch 1 (its first: woken, 1.3 ms over the busy 1.0); a batch 2 whose first
    # query arrived at 1.0 ms, before the first was done at 1.32 ms (queued: its cycle 1.32 ->
    # 3.15 ms over the busy 1.8 ms); a batch 1 whose query came at 5.0 ms, after the previous
    # was done (woken: 2.88 ms). Worker 1: one batch 1, its first (woken: 2.4 ms).
    log = {"batch_worker": np.array([0, 0, 0, 1]), "batch_first": np.array([0, 1, 2, 3]),
           "cb_ns": np.array([-100_000, 1_000_000, 5_000_000, -50_000]),
           "batch_start_ns": np.array([0, 1_330_000, 5_110_000, 0]),
           "batch_end_ns": np.array([1_300_000, 3_110_000, 7_990_000, 2_400_000]),
           "batch_done_ns": np.array([1_320_000, 3_150_000, 8_000_000, 2_410_000]),
           "batch_count": np.array([1, 2, 1, 1])}
    r = wake_ratios(log, c)
    assert r["queued"] == pytest.approx([1.83 / 1.8])
    assert r["woken"] == pytest.approx([1.3, 2.4, 2.88])


def _calibration(ratios, queued=(), rate=40.0):
    cfg = HarnessConfig(workload="w")
    return Calibration(cfg, "sha", _cost(), {"SingleStream": {"issue_overhead_ns": 0.0, "schedule_delay_ns": 0.0}},
                       wakes={"rate_qps": rate, "ratios": list(ratios), "queued_ratios": list(queued)})


def test_server_cost_uses_the_ratios_and_pooled_calibrations_take_all_of_them():
    a, b = _calibration([1.0, 1.1], [1.0]), _calibration([1.3], [1.0])
    pooled = Calibration.pooled([a, b])
    assert list(pooled.wake_ratios()) == [1.0, 1.1, 1.3]
    rng = np.random.default_rng(2)
    assert pooled.cost_for("Server", 40.0) is pooled.cost          # not by default (no stand-in traffic here)
    server = pooled.cost_for("Server", 40.0, loadgen_ratios=True)
    assert {server.service_time_in_context_ns(1, 25e6, rng=rng) for _ in range(300)} == \
        {float(np.ceil(1.0 * MS * r)) for r in (1.0, 1.1, 1.3)}
    assert pooled.cost_for("SingleStream", None) is pooled.cost      # no traffic arrives mid-batch
    # with queued ratios, back-to-back batches take the busy median times those
    q = Calibration.pooled([_calibration([1.0], [1.2]), _calibration([1.0], [1.4])]).cost_for(
        "Server", 40.0, loadgen_ratios=True)
    assert {q.service_time_in_context_ns(2, 0.0, rng=rng) for _ in range(200)} == {1.8 * 1.2 * MS, 1.8 * 1.4 * MS}
    none = _calibration([])
    assert none.cost_for("Server", 40.0, loadgen_ratios=True) is none.cost   # calibrated before the measurement
    assert pooled.cost_for("Server", 40.0, pooled.cost.scaled(1.1), loadgen_ratios=True).median_ns(1) == \
        pytest.approx(1.1 * MS)
    assert Calibration.from_dict(a.to_dict()).wakes == a.wakes
    assert any("woken batches under LoadGen Server traffic at 40 QPS" in ln for ln in pooled.summary_lines())


def test_at_low_load_every_query_is_served_as_a_woken_batch():
    # queries 10 s apart on average, services of a few ms: no queueing, every batch starts after
    # a wait, so the latencies are the woken service times: the busy median (1.0 ms) times 1.0
    # or 2.0, half each; the same cost without the ratios serves each after its idle gap (1.2 ms)
    c = EmpiricalCost({(1, 1): [1.0 * MS] * 5}, {(1, g): [1.2 * MS] * 5 for g in GAPS_NS}, "flat idle")
    for cost, values in ((c.under_traffic([1.0, 2.0], [1.0], "test"), (1.0, 2.0)), (c, (1.2,))):
        r = simulate("Server", workload=None, cost=cost, seed=3,
                     overrides={"server_target_qps": 0.1, "min_query_count": 2000, "min_duration_ns": 0})
        lat_ms = (r.engine.sample_complete_ns - r.engine.query_scheduled_ns) / MS
        hits = [np.isclose(lat_ms, v) for v in values]
        assert lat_ms.size == 2000 and np.all(np.any(hits, axis=0))
        assert hits[0].mean() == pytest.approx(1 / len(values), abs=4 * np.sqrt(0.25 / lat_ms.size))
