"""The main job: ResNet-50 on this machine's CPU, simulated in all four MLPerf scenarios.

The CPU cost comes from a measured onnxruntime profile of ResNet-50 on this machine
(measured on the first run, then cached); the traffic is what LoadGen would issue with
its default settings for resnet50 (600 s minimum duration, 15 ms Server bound); the
system is one device with one instance and no batching. Prints one table; writes each
scenario's LoadGen-format logs under ``out_dir`` when given.
"""

from __future__ import annotations

import time
from pathlib import Path

from sim.apps.peak import peak_server_qps
from sim.loadgen.scenarios import CLOSED_LOOP, OFFLINE
from sim.run import offline_capacity_qps, resolve_cost, simulate
from sim.sut.system import SystemSpec


def main(workload: str = "resnet50", out_dir: str | None = "out/demo", small: bool = False) -> int:
    system = SystemSpec()
    t0 = time.perf_counter()
    print(f"Measuring (or loading the cached) onnxruntime profile of {workload} on this CPU ...", flush=True)
    cost = resolve_cost(system, workload, None, small)
    print(f"  cost model: {cost.describe()}  [{time.perf_counter() - t0:.1f} s]", flush=True)
    rows = []
    for scenario in (*CLOSED_LOOP, OFFLINE):
        t = time.perf_counter()
        r = simulate(scenario, workload=workload, system=system, cost=cost, small=small)
        rows.append((scenario, r.metrics.headline_name, r.metrics.headline_value, r.metrics.valid,
                     len(r.engine.query_scheduled_ns), time.perf_counter() - t))
        if out_dir:
            r.write(Path(out_dir) / scenario)
    t = time.perf_counter()
    peak = peak_server_qps(workload, system, cost, repeats=3)
    qps = peak.peak_qps or 0.5 * offline_capacity_qps(system, cost)
    r = simulate("Server", workload=workload, system=system, cost=cost, overrides={"server_target_qps": qps})
    if out_dir:
        r.write(Path(out_dir) / "Server")
    bound_ms = r.settings.target_latency_ns / 1e6
    label = f"peak VALID QPS (p99 <= {bound_ms:g} ms)" if peak.peak_qps else f"completed QPS at {qps:.3g} QPS"
    rows.append(("Server", label, r.metrics.headline_value, r.metrics.valid,
                 len(r.engine.query_scheduled_ns), time.perf_counter() - t))

    print()
    print(f"{workload} on this CPU, 1 instance, no batching, LoadGen default settings (simulated)")
    print(f"{'scenario':<13} {'metric':<40} {'value':>14} {'result':>8} {'queries':>9} {'wall s':>7}")
    for scenario, name, value, valid, n, wall in rows:
        shown = f"{value / 1e6:.2f} ms" if "(ns)" in name else f"{value:.2f}"
        name = name.replace(" (ns)", "")
        print(f"{scenario:<13} {name:<40} {shown:>14} {'VALID' if valid else 'INVALID':>8} {n:9d} {wall:7.1f}")
    print(f"Server search: {peak.describe()}")
    if out_dir:
        print(f"LoadGen-format logs: {out_dir}/<scenario>/mlperf_log_summary.txt")
    return 0
