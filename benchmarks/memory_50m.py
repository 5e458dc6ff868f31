"""Peak memory of a 50-million-query run (Server or Offline) on the 8-accelerator system.

    python benchmarks/memory_50m.py [--scenario Server|Offline] [--queries 50000000]

Prints wall time, queries and the process's peak resident memory.
"""

from __future__ import annotations

import argparse
import resource
import time

from sim.cost.resolve import synthetic as cost_from_spec
from sim.run import simulate
from sim.sut.system import parse_system

SYSTEM = {"batching": {"policy": "dynamic", "max_batch": 64, "max_queue_delay_us": 2000},
          "accelerators": {"count": 8, "cost": {"kind": "affine", "a_us": 2000, "b_us_per_sample": 50}}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default="Server", choices=("Server", "Offline"))
    ap.add_argument("--queries", type=int, default=50_000_000)
    args = ap.parse_args()
    system = parse_system(SYSTEM)
    cost = cost_from_spec(system.cost)
    qps = 88_000.0
    if args.scenario == "Server":
        over = {"server_target_qps": qps, "min_query_count": args.queries, "min_duration_ns": 0}
    else:
        over = {"offline_expected_qps": qps, "min_query_count": args.queries, "min_duration_ns": 0}
    t0 = time.perf_counter()
    r = simulate(args.scenario, workload=None, system=system, cost=cost, overrides=over)
    wall = time.perf_counter() - t0
    print(f"{args.scenario}: {r.metrics.sample_count:,} samples in {wall:.1f} s wall "
          f"({r.metrics.sample_count / wall:,.0f}/s); {r.metrics.headline_name} = {r.metrics.headline_value:,.1f}; "
          f"{'VALID' if r.metrics.valid else 'INVALID'}")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")


if __name__ == "__main__":
    main()
