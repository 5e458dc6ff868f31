"""The simulated twin of a real validation run.

``simulate_twin`` simulates a run with the real run's LoadGen settings and seeds (the traffic
is LoadGen's own, query for query), the calibrated service times and host overheads
(``sim.validate.machine_calibration.MachineCalibration``). ``check_same_settings`` checks that
LoadGen generated the same run as the simulator (query count, sample count, target QPS and
bound), so a mismatch can never pass as a model error. ``sim_summary`` and
``sim_latencies`` are what the records and the plots keep of a simulated run.
"""

from __future__ import annotations

import math

import numpy as np

from sim.run import RunResult, simulate
from sim.sut.system import SystemSpec
from sim.validate.machine_calibration import MachineCalibration


def simulate_twin(cal: MachineCalibration, system: SystemSpec, workload: str, model: str, total: int, scenario: str,
                  overrides: dict, seed: int, cost=None) -> RunResult:
    """The simulated twin of a real run with LoadGen settings ``overrides``: ``system`` with the
    calibration's host overheads, ``cost`` (default: ``MachineCalibration.cost_for`` the scenario, Server's
    batches as measured under LoadGen's traffic), the same LoadGen seeds."""
    if cost is None:
        cost = cal.cost_for(scenario, overrides.get("server_target_qps") if scenario == "Server" else None)
    return simulate(scenario, workload=workload, system=cal.system_for(scenario, system), cost=cost,
                    mlperf_model=model, overrides=overrides, seed=seed, total_sample_count=total, auto_hints=False)


def sim_summary(r: RunResult) -> dict:
    """What the records keep of a simulated run: its verdict, latency percentiles and mean, headline
    metric, early-stopping estimate, query count and mean batch size."""
    m = r.metrics
    out = {"valid": bool(m.valid), "p50_ns": m.sample_latency.percentiles_ns["50.00"],
           "p90_ns": m.sample_latency.percentiles_ns["90.00"], "p99_ns": m.sample_latency.percentiles_ns["99.00"],
           "mean_ns": m.sample_latency.mean_ns, "headline": m.headline_value,
           "es_estimate_ns": m.early_stopping_estimate_ns, "queries": m.query_count,
           "mean_batch": float(np.mean(r.engine.batches["count"])) if len(r.engine.batches.get("count", []))
           else 0.0}
    if m.query_latency is not None:
        out["query_p99_ns"] = m.query_latency.percentiles_ns["99.00"]
        out["query_mean_ns"] = m.query_latency.mean_ns
    return out


def sim_latencies(r: RunResult) -> np.ndarray:
    """Per-sample (per-query for MultiStream) latencies of a simulated run, ns."""
    eng = r.engine
    if r.scenario == "MultiStream":
        return (eng.query_complete_ns - eng.query_scheduled_ns).astype(np.int64)
    if r.scenario == "Offline":
        return eng.sample_complete_ns.astype(np.int64)
    spq = eng.samples_per_query
    return (eng.sample_complete_ns - np.repeat(eng.query_scheduled_ns, spq)).astype(np.int64)


def check_same_settings(real: dict, r: RunResult, folder) -> None:
    """Raise where LoadGen's settings of the real run differ from the simulated run's."""
    lg = real["loadgen"]
    s, t = r.settings, r.traffic
    expected = {"generated_query_count": t.query_count, "generated_samples_per_query": t.samples_per_query,
                "effective_min_query_count": s.min_query_count,
                "effective_performance_sample_count": s.performance_sample_count,
                "effective_target_latency_ns": s.target_latency_ns,
                "effective_samples_per_query": s.samples_per_query}
    bad = {k: (lg.get(k), v) for k, v in expected.items() if k in lg and int(lg[k]) != int(v)}
    if "effective_target_qps" in lg and not math.isclose(float(lg["effective_target_qps"]), s.target_qps,
                                                         rel_tol=1e-5):
        bad["effective_target_qps"] = (lg["effective_target_qps"], s.target_qps)
    if bad:
        raise RuntimeError(f"{folder}: LoadGen's settings differ from the simulated run's "
                           f"(LoadGen, simulated): {bad}")
