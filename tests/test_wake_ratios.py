"""Batches woken by LoadGen's Server traffic: their times over the calibrated medians, read from a
batch log, and the Server cost model that draws every batch started after a wait from them."""

from __future__ import annotations

import numpy as np
import pytest

from sim.empirical_cost import EmpiricalCost
from sim.errors import InputError
from sim.run import simulate
from sim.validate.calibrate_cpu import GAPS_NS, Calibration, wake_ratios
from sim.validate.harness import HarnessConfig

MS = 1_000_000


def _cost(busy1=1.0, idle1=1.2, busy2=1.8, idle8=None):
    busy = {(1, 1): [busy1 * MS] * 5, (2, 1): [busy2 * MS] * 5}
    idle = {(1, g): [idle1 * MS * (1 + k / 10)] * 5 for k, g in enumerate(GAPS_NS)}
    if idle8:
        busy[(8, 1)] = [idle8 * 0.9 * MS] * 5
    return EmpiricalCost(busy, idle, "test cost")


def test_context_median_is_the_table_a_batch_draws_from():
    c = _cost()
    assert c.context_median_ns(1, 0.0) == 1.0 * MS                       # back to back: busy
    assert c.context_median_ns(1, 2.1e6) == pytest.approx(1.2 * 1.2 * MS)  # nearest gap 2 ms (third)
    # batch 2 has no idle table: busy plus batch 1's idle penalty at that gap
    assert c.context_median_ns(2, 25e6) == pytest.approx(1.8 * MS + (1.2 * 1.3 - 1.0) * MS)
    rng = np.random.default_rng(0)
    assert {c.service_time_in_context_ns(2, 25e6, rng=rng) for _ in range(20)} == {c.context_median_ns(2, 25e6)}


def test_woken_batches_take_their_context_median_times_a_ratio():
    c = _cost()
    w = c.woken([1.0, 1.5], "test")
    rng = np.random.default_rng(1)
    back = {w.service_time_in_context_ns(2, 0.0, rng=rng) for _ in range(50)}
    assert back == {1.8 * MS}                                         # back to back: unchanged
    after = [w.service_time_in_context_ns(2, 25e6, rng=rng) for _ in range(4000)]
    m = c.context_median_ns(2, 25e6)
    assert set(after) == {m, 1.5 * m}
    assert np.mean(np.array(after) == m) == pytest.approx(0.5, abs=0.04)
    for bad in ([], [1.0, -2.0], [float("nan")]):
        with pytest.raises(InputError, match="wake-up ratios"):
            c.woken(bad, "test")


def test_ratios_from_a_batch_log():
    c = _cost()
    # worker 0: batch 1 at 0-1.3 ms; then 10 us later a back-to-back batch 2 (1.8 ms);
    # then after a 2 ms gap a batch 1 of 2.88 ms. Worker 1: one batch 1 (its first, after the longest gap).
    log = {"batch_worker": np.array([0, 0, 0, 1]),
           "batch_start_ns": np.array([0, 1_310_000, 5_110_000, 0]),
           "batch_end_ns": np.array([1_300_000, 3_110_000, 7_990_000, 2_400_000]),
           "batch_count": np.array([1, 2, 1, 1])}
    ratios, back_to_back = wake_ratios(log, c)
    assert back_to_back == 1
    first = 1.3 / (1.2 * 1.5)              # the first batch counts as woken after the longest gap (200 ms)
    later = 2.88 / (1.2 * 1.2)             # 2 ms gap
    other = 2.4 / (1.2 * 1.5)
    assert ratios == pytest.approx(sorted([first, later, other]))


def _calibration(ratios, rate=40.0):
    cfg = HarnessConfig(workload="w")
    return Calibration(cfg, "sha", _cost(), {"SingleStream": {"issue_overhead_ns": 0.0, "schedule_delay_ns": 0.0}},
                       wakes={"rate_qps": rate, "ratios": list(ratios)})


def test_server_cost_uses_the_wake_ratios_and_pooled_calibrations_take_all_of_them():
    a, b = _calibration([1.0, 1.1]), _calibration([1.3])
    pooled = Calibration.pooled([a, b])
    assert list(pooled.wake_ratios()) == [1.0, 1.1, 1.3]
    rng = np.random.default_rng(2)
    server = pooled.cost_for("Server", 40.0)
    m = pooled.cost.context_median_ns(1, 25e6)
    assert {server.service_time_in_context_ns(1, 25e6, rng=rng) for _ in range(300)} == \
        {float(np.ceil(m * r)) for r in (1.0, 1.1, 1.3)}
    assert pooled.cost_for("SingleStream", None) is pooled.cost      # no traffic arrives mid-batch
    none = _calibration([])
    assert none.cost_for("Server", 40.0) is none.cost              # calibrated before the measurement: as before
    assert Calibration.from_dict(a.to_dict()).wakes == a.wakes
    assert any("woken batches under LoadGen Server traffic at 40 QPS" in ln for ln in pooled.summary_lines())


def test_at_low_load_every_query_is_served_as_a_woken_batch():
    # queries 10 s apart on average, services of a few ms: no queueing, every batch starts after
    # a wait, so the latencies are the woken service times: the idle median (1.2 ms after every
    # gap here) times 1.0 or 2.0, half each
    c = EmpiricalCost({(1, 1): [1.0 * MS] * 5}, {(1, g): [1.2 * MS] * 5 for g in GAPS_NS}, "flat idle")
    r = simulate("Server", workload=None, cost=c.woken([1.0, 2.0], "test"), seed=3,
                 overrides={"server_target_qps": 0.1, "min_query_count": 2000, "min_duration_ns": 0})
    lat_ms = (r.engine.sample_complete_ns - r.engine.query_scheduled_ns) / MS
    short, long = np.isclose(lat_ms, 1.2), np.isclose(lat_ms, 2.4)
    assert np.all(short | long) and lat_ms.size == 2000
    assert short.mean() == pytest.approx(0.5, abs=4 * np.sqrt(0.25 / lat_ms.size))
    # the same cost without the wake-up ratios serves every one in 1.2 ms
    r = simulate("Server", workload=None, cost=c, seed=3,
                 overrides={"server_target_qps": 0.1, "min_query_count": 2000, "min_duration_ns": 0})
    assert np.allclose((r.engine.sample_complete_ns - r.engine.query_scheduled_ns) / MS, 1.2)
