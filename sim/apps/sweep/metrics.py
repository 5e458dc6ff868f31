"""One sweep point run: its system and cost, a simulated run (or a Server peak search), and
the record of its metrics (or of its error)."""

from __future__ import annotations

import math
import time

import numpy as np

from sim import run as sim_run
from sim.apps.peak import peak_server_qps
from sim.apps.sweep.point import point_id, seed_of
from sim.apps.sweep.records import RECORD_SCHEMA
from sim.apps.sweep.system import system_and_cost
from sim.loadgen.peak_search import PeakResult


def _stats(s) -> dict:
    out = {"min": s.min_ns, "mean": s.mean_ns, "max": s.max_ns}
    out.update({f"p{float(k):g}": v for k, v in s.percentiles_ns.items()})
    return out


def run_metrics(r: sim_run.RunResult) -> dict:
    """The metrics of one simulated run (``sim.run.RunResult``) kept in a sweep record."""
    m, eng = r.metrics, r.engine
    b = eng.batches
    count = b.get("count", np.zeros(0))
    servers = r.system.servers
    duration_ns = int(eng.sample_complete_ns.max()) if len(eng.sample_complete_ns) else 0
    busy_ns = float((b["end_ns"] - b["start_ns"]).sum()) if len(count) else 0.0
    out = {
        "metric": m.headline_name, "value": m.headline_value, "valid": m.valid,
        "query_count": m.query_count, "sample_count": m.sample_count,
        "latency_ns": _stats(m.sample_latency),
        "min_duration_met": m.min_duration_met, "min_queries_met": m.min_queries_met,
        "perf_constraints_met": m.perf_constraints_met, "early_stopping_met": m.early_stopping_met,
        "early_stopping_estimate_ns": m.early_stopping_estimate_ns,
        "batches": int(len(count)), "mean_batch_size": float(np.mean(count)) if len(count) else 0.0,
        "duration_ns": duration_ns,
        "utilisation": busy_ns / (servers * duration_ns) if duration_ns else 0.0,
        "hints": dict(r.hints),
        "cost_model": r.cost_description,
    }
    if m.query_latency is not None:
        out["query_latency_ns"] = _stats(m.query_latency)
    if r.scenario == "Server":
        out["target_qps"] = float(r.settings.server_target_qps)
        out["target_latency_ns"] = m.target_latency_ns
        out["overlatency_count"] = m.overlatency_count
    return out


def peak_metrics(peak: PeakResult, target_latency_ns: int) -> dict:
    """The metrics of a Server peak search (``sim.loadgen.peak_search.PeakResult``) kept in a record."""
    return {
        "metric": "peak VALID Server QPS", "value": peak.peak_qps, "valid": bool(peak.peak_qps > 0),
        "invalid_qps": peak.invalid_qps, "valid_share_at_peak": peak.valid_share_at_peak,
        "valid_share_at_invalid": peak.valid_share_at_invalid, "repeats": peak.repeats,
        "target_latency_ns": target_latency_ns, "reason": peak.reason,
        "trials": [{"qps": t.qps, "seed_index": t.seed_index, "valid": t.valid, "p99_ns": t.p99_ns,
                    "completed_qps": t.completed_qps} for t in peak.trials],
    }


def _plain(x):
    """JSON-safe copy: numpy scalars to Python, non-finite floats to None."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def run_point(params: dict) -> dict:
    """Run one point and return its record (errors in the point are recorded, not raised)."""
    pid = point_id(params)
    seed = seed_of(pid)
    t0 = time.perf_counter()
    metrics, error = None, None
    try:
        system, cost = system_and_cost(params)
        scenario = params["scenario"]
        workload = params.get("workload")
        model = params.get("mlperf_model") or sim_run.mlperf_model_of(workload)
        overrides = dict(params.get("settings") or {})
        if scenario == "Server" and params.get("qps") == "peak":
            search = params.get("search") or {}
            peak = peak_server_qps(workload, system, cost, model, None, overrides, seed,
                                   rel_tol=float(search.get("rel_tol", 0.01)), repeats=int(search.get("repeats", 5)))
            bound = sim_run.settings_of(model, "Server", overrides=overrides)[0].target_latency_ns
            metrics = peak_metrics(peak, int(bound))
        else:
            if scenario == "Server" and params.get("qps") is not None:
                overrides["server_target_qps"] = float(params["qps"])
            r = sim_run.simulate(scenario, workload=workload, system=system, cost=cost, mlperf_model=model,
                                 overrides=overrides, seed=seed, small=bool(params.get("small", False)))
            metrics = run_metrics(r)
    except Exception as exc:      # a point's failure is data: recorded, retried on the next run
        error = f"{type(exc).__name__}: {exc}"
    return _plain({"schema": RECORD_SCHEMA, "id": pid, "params": params, "seed": seed, "metrics": metrics,
                   "error": error, "elapsed_s": round(time.perf_counter() - t0, 6)})
