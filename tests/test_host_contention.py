"""The CPU system under test as it runs: scheduler stalls as a process in time
(``sim.cost.stalls``), LoadGen's own work taking cores from a model that fills them
(``MachineCalibration.contention``), and the census of a process's threads' CPU time
(``sim.validate.thread_cpu``). Checked against closed forms: Poisson counts, the mean of a
stalled service time, M/D/1's mean wait."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest

from sim.cost.empirical import EmpiricalCost
from sim.cost.stalls import STALL_MIN_NS, StallProcess, split, stall_threshold_ns
from sim.run import simulate
from sim.validate.config import HarnessConfig
from sim.validate.machine_calibration import MachineCalibration
from sim.validate.service_times import GAPS_NS
from sim.validate.thread_cpu import ThreadCensus

US = 1_000
MS = 1_000_000


def _tables():
    rng = np.random.default_rng(0)
    busy = np.sort(np.concatenate([rng.normal(100 * US, 5 * US, 1000), [4.1 * MS, 4.3 * MS, 8.2 * MS]]))
    idle = np.sort(np.concatenate([rng.normal(120 * US, 5 * US, 2000), [5.0 * MS]]))
    return busy, idle


def test_split_takes_the_stalls_out_and_estimates_their_rate_over_every_table():
    busy, idle = _tables()
    clean, stalls = split({"busy": busy, "idle": idle})
    assert clean["busy"].size == 1000 and clean["idle"].size == 2000
    assert clean["busy"].max() < stall_threshold_ns(np.median(busy)) and clean["busy"].max() < STALL_MIN_NS
    seconds = (busy.sum() + idle.sum()) / 1e9
    assert stalls.count == 4 and stalls.seconds_measured == pytest.approx(seconds)
    assert stalls.rate_per_s == pytest.approx(4 / seconds)
    expected = sorted([4.1 * MS - np.median(busy), 4.3 * MS - np.median(busy), 8.2 * MS - np.median(busy),
                       5.0 * MS - np.median(idle)])
    assert stalls.excess_ns == pytest.approx(expected)
    # a table of slow runs is not "mostly stalls": it is kept as measured
    slow = np.full(10, 3 * MS)
    clean, stalls = split({"slow": np.concatenate([slow, [100 * US] * 4])})
    assert clean["slow"].size == 14 and stalls.count == 0


def test_stall_counts_are_poisson_in_the_run_time():
    p = StallProcess(rate_per_s=50.0, excess_ns=np.array([4 * MS]))
    rng = np.random.default_rng(1)
    n = 40_000
    extra = np.array([p.extra_ns(1 * MS, rng) for _ in range(n)])
    counts = extra / (4 * MS)
    mean = 50.0 * 1e-3                     # stalls expected in a 1 ms run
    assert np.allclose(counts, np.round(counts))
    share = (counts > 0).mean()
    assert share == pytest.approx(1 - math.exp(-mean), abs=4 * math.sqrt(mean / n))
    assert counts.mean() == pytest.approx(mean, abs=4 * math.sqrt(mean / n))
    assert StallProcess(0.0, np.array([1.0])).extra_ns(1e9, rng) == 0.0


def test_offline_throughput_with_stalls_matches_the_mean_stalled_service_time():
    # flat 100 us runs; 0.5% of the busy samples are 4.1 ms stalls -> the process's rate
    busy = [100 * US] * 995 + [4.1 * MS] * 5
    idle = {(1, g): [100 * US] * 50 for g in GAPS_NS}
    raw = EmpiricalCost({(1, 1): busy}, idle, "flat with stalls")
    cost = raw.with_stall_process()
    assert cost is not raw and cost.stalls.count == 5 and cost.with_stall_process() is cost
    rate = cost.stalls.rate_per_s
    assert rate == pytest.approx(5 / ((995 + len(GAPS_NS) * 50) * 100e-6 + 5 * 4.1e-3))
    r = simulate("Offline", workload=None, cost=cost, seed=4, overrides={"min_duration_ns": 2 * 10**9,
                                                                        "offline_expected_qps": 9000.0})
    mean_ns = 100 * US * (1 + rate * 100e-6 * 4.0 * MS / (100 * US))      # m + rate * m * excess
    assert r.metrics.headline_value == pytest.approx(1e9 / mean_ns, rel=0.03)
    clean = EmpiricalCost({(1, 1): [100 * US] * 10}, idle, "clean")
    assert clean.with_stall_process() is clean


def _calibration(intra_op_threads=0, per_query_ns=50 * US, per_sample_ns=10 * US, idle_ms=1.2):
    busy = {(1, 1): [1.0 * MS] * 5, (2, 1): [1.8 * MS] * 5}
    idle = {(1, g): [idle_ms * MS] * 5 for g in GAPS_NS}
    host = {"issue_overhead_ns": 0.0, "schedule_delay_ns": 0.0, "loadgen_cpu_ns_per_query": per_query_ns,
            "loadgen_cpu_ns_per_sample": per_sample_ns}
    return MachineCalibration(HarnessConfig(workload="w", intra_op_threads=intra_op_threads, max_batch=2),
                              "sha", EmpiricalCost(busy, idle, "test"),
                              {s: dict(host) for s in ("SingleStream", "MultiStream", "Server", "Offline")},
                              fingerprint={"usable_cores": 2, "logical_cores": 2, "physical_cores": 2})


def test_loadgen_work_slows_a_model_that_fills_the_cores():
    cal = _calibration()
    assert cal.fills_cores()
    server = cal.cost_for("Server", 4000.0)           # 4000 x 50 us = 0.2 of a core
    assert server.median_ns(1) == pytest.approx(1.0 * MS / 0.8)
    assert server.median_ns(1, idle=True) == pytest.approx(1.2 * MS / 0.8)
    offline = cal.cost_for("Offline", None)
    assert offline.median_ns(1) == pytest.approx(1.0 * MS + 10 * US)
    assert offline.median_ns(2) == pytest.approx(1.8 * MS + 20 * US)
    assert cal.cost_for("SingleStream", None).median_ns(1) == pytest.approx(1.0 * MS)
    assert cal.cost_for("MultiStream", None).median_ns(2) == pytest.approx(1.8 * MS)
    # one intra-op thread leaves a core to LoadGen: no contention
    one = _calibration(intra_op_threads=1)
    assert not one.fills_cores() and one.cost_for("Server", 4000.0).median_ns(1) == pytest.approx(1.0 * MS)
    # a calibration made before LoadGen's work was measured: none assumed
    old = _calibration()
    for o in old.overhead.values():
        del o["loadgen_cpu_ns_per_query"], o["loadgen_cpu_ns_per_sample"]
    assert old.cost_for("Server", 4000.0).median_ns(1) == pytest.approx(1.0 * MS)
    # pooled calibrations: the mean of their measurements
    pooled = MachineCalibration.pooled([_calibration(per_query_ns=40 * US), _calibration(per_query_ns=60 * US)])
    assert pooled.loadgen_cpu_ns("Server") == pytest.approx((50 * US, 10 * US))


def test_contended_server_waits_follow_md1():
    # deterministic 1 ms runs stretched by LoadGen's work at 400 QPS (40 us a query: 1.6% of a
    # core): M/D/1 with service s = 1 ms / (1 - 0.016); mean wait = rho s / (2 (1 - rho))
    cal = _calibration(per_query_ns=40 * US, idle_ms=1.0)
    qps = 400.0
    cost = cal.cost_for("Server", qps)
    s = 1.0 * MS / (1 - qps * 40e-6)
    assert cost.median_ns(1) == pytest.approx(s, rel=1e-6)
    assert cost.median_ns(1, idle=True) == pytest.approx(s, rel=1e-6)
    r = simulate("Server", workload=None, cost=cost, seed=5,
                 overrides={"server_target_qps": qps, "min_query_count": 40_000, "min_duration_ns": 0})
    rho = qps * s / 1e9
    wait_ns = rho * s / (2 * (1 - rho))
    lat = r.engine.sample_complete_ns - r.engine.query_scheduled_ns
    assert lat.mean() == pytest.approx(s + wait_ns, rel=0.04)


def test_thread_census_attributes_cpu_to_workers_and_to_threads_born_during_the_test():
    def burn(seconds, ids=None):
        if ids is not None:
            ids.append(threading.get_native_id())
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            pass

    census = ThreadCensus()
    if not census.available:
        pytest.skip("no /proc/self/task on this system")
    ids: list[int] = []
    ready, go, burned, counted = threading.Event(), threading.Event(), threading.Event(), threading.Event()

    def worker():                           # alive until counted, as the SUT's workers are
        ids.append(threading.get_native_id())
        ready.set()
        go.wait()
        burn(0.06)
        burned.set()
        counted.wait()
    w = threading.Thread(target=worker)
    w.start()
    ready.wait()
    census.start()
    go.set()
    born = threading.Thread(target=burn, args=(0.08,))      # born and ended during the test
    born.start()
    born.join()
    burned.wait()
    got = census.stop(ids)
    counted.set()
    w.join()
    assert got["workers_ns"] >= 0.055e9
    assert got["loadgen_threads_ns"] >= 0.075e9
    assert got["total_ns"] >= got["workers_ns"] + got["loadgen_threads_ns"]


def test_the_setup_is_stated_with_the_default_thread_count_resolved():
    from sim.validate.config import setup_lines

    default = setup_lines(HarnessConfig(workload="w"), physical_cores=2, usable_cores=2, system_file=None)
    assert default[0] == ("set-up (the default: no --system file): 1 worker(s) x onnxruntime's default intra-op "
                          "threads (2: one per physical core), batching none")
    assert "fill all 2 usable cores" in default[1]
    curated = setup_lines(HarnessConfig(workload="w", intra_op_threads=1, policy="dynamic", max_batch=8),
                          physical_cores=2, usable_cores=2, system_file="benchmarks/validation_system.yaml")
    assert curated[0].startswith("set-up (benchmarks/validation_system.yaml): 1 worker(s) x 1 intra-op thread(s), "
                                 "batching dynamic max 8")
    assert "leave 1 of 2 usable cores" in curated[1]
