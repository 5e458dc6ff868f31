"""Simulated queries per wall-second: the batch-level engine against a one-process-per-query model.

System: 8 accelerators, one instance each, dynamic batching (max batch 64, max queue delay
2 ms), batch cost 2 ms + 50 us x batch (capacity about 98,000 samples/s), LoadGen's issue
overhead 1 us per query. Traffic: LoadGen's exact Server schedule for resnet50 at 30%, 60%
and 90% of the Offline capacity. For each load the engine runs a full test (traffic
generation, simulation, metrics) of ``--duration-s`` simulated seconds; the naive model runs
the first ``--naive-queries`` queries of the same schedule, and the engine is re-run on that
prefix to check the latencies are identical. Then a full Server peak search with
MLPerf-length trials (min_query_count 270,336) is timed.

    python benchmarks/engine_speed.py [--duration-s 60] [--naive-queries 100000]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from sim.apps.peak import peak_server_qps
from sim.cost.resolve import synthetic as cost_from_spec
from sim.run import offline_capacity_qps, simulate
from sim.sut.engine import simulate_open
from sim.sut.naive import simulate_open_naive
from sim.sut.system import parse_system

SYSTEM = {
    "name": "8 accelerators, dynamic batching",
    "host": {"issue_overhead_us": 1},
    "batching": {"policy": "dynamic", "max_batch": 64, "max_queue_delay_us": 2000},
    "accelerators": {"count": 8, "instances": 1, "cost": {"kind": "affine", "a_us": 2000, "b_us_per_sample": 50}},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration-s", type=float, default=60.0)
    ap.add_argument("--naive-queries", type=int, default=100_000)
    args = ap.parse_args()
    system = parse_system(SYSTEM)
    cost = cost_from_spec(system.cost)
    capacity = offline_capacity_qps(system, cost)
    print(f"system: {system.name}; Offline capacity {capacity:,.0f} samples/s")
    print(f"{'load':>5} {'target QPS':>11} {'queries':>10} {'engine q/s':>12} {'full run q/s':>13} "
          f"{'naive q/s':>10} {'speed-up':>9} {'mean batch':>10} {'identical':>9}")
    for load in (0.3, 0.6, 0.9):
        qps = load * capacity
        over = {"server_target_qps": qps, "min_duration_ns": int(args.duration_s * 1e9), "min_query_count": 1}
        t0 = time.perf_counter()
        r = simulate("Server", workload=None, system=system, cost=cost, overrides=over)
        full_s = time.perf_counter() - t0
        sched = r.engine.query_scheduled_ns
        t0 = time.perf_counter()
        simulate_open(system, cost, sched)
        engine_s = time.perf_counter() - t0
        prefix = sched[:args.naive_queries]
        t0 = time.perf_counter()
        naive = simulate_open_naive(system, cost, prefix)
        naive_s = time.perf_counter() - t0
        fast = simulate_open(system, cost, prefix)
        same = np.array_equal(fast.sample_complete_ns, naive.sample_complete_ns)
        n = len(sched)
        print(f"{load:5.0%} {qps:11,.0f} {n:10,d} {n / engine_s:12,.0f} {n / full_s:13,.0f} "
              f"{len(prefix) / naive_s:10,.0f} {(n / engine_s) / (len(prefix) / naive_s):8.1f}x "
              f"{r.engine.batches['count'].mean():10.1f} {str(same):>9}")

    over = {"min_query_count": 270_336, "min_duration_ns": 0}
    t0 = time.perf_counter()
    peak = peak_server_qps(None, system, cost, mlperf_model="resnet50", overrides=over, repeats=5)
    search_s = time.perf_counter() - t0
    queries = sum(1 for _ in peak.trials) * 270_336
    print(f"peak search, trials of min_query_count 270,336: {search_s:.2f} s wall, {len(peak.trials)} trials "
          f"(~{queries / 1e6:.1f} M simulated queries); {peak.describe()}")
    print(f"max RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")


if __name__ == "__main__":
    main()
