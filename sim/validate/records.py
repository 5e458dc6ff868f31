"""The validation's records: one per compared metric, measured against predicted.

A ``RunPair`` is one compared setting (a scenario, and for Server a load): its real repeats
and, per repeat, its simulated twins, one per seed. ``make_records`` lines up the metrics:
SingleStream p90 and its early-stopping estimate, MultiStream p99, Offline samples/s, Server
p99 and mean latency at each load, and the peak VALID QPS. ``measured`` is the median of the
real repeats (``measured_spread_pct``: their max - min over the median); ``predicted`` is the
median over the repeats of the mean over the seeds; ``error_pct`` = 100 (predicted -
measured) / measured. ``plot_data`` is what the report's plots draw.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim.validate.real_runs import invalid_reasons, loadgen_value, real_latencies


def ns_to_ms(ns) -> float:
    """Nanoseconds to milliseconds."""
    return float(ns) / 1e6


@dataclass
class RunPair:
    """One compared setting: its real repeats and their simulated twins."""
    scenario: str
    tag: str                                    # "SingleStream", "Server@0.60", "peak@123.4" ...
    overrides: dict
    real: list = field(default_factory=list)    # harness.json dicts, one per repeat
    sim: list = field(default_factory=list)     # per repeat: summaries of simulated runs, one per seed
    drift: list = field(default_factory=list)   # per repeat: the machine's speed then, relative to calibration
    sim_traffic: object = None                  # LoadGen's traffic (the same for every seed)
    sim_latencies: object = None                # latencies of the first simulated run (for plots)
    speed: list = field(default_factory=list)   # per repeat: its batches' time against the calibration's
    sim_at_speed: list = field(default_factory=list)  # per repeat: twins at that speed (a diagnostic)
    load: float = 0.0                           # Server: fraction of the measured capacity
    qps: float = 0.0                            # Server: target QPS


def _agg(values, center=np.median) -> tuple[float, float]:
    """(centre, spread %): the median of the repeats (one disturbed run cannot move it) and
    their max - min in % of it."""
    v = np.array([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if v.size == 0:
        return float("nan"), float("nan")
    mid = float(center(v))
    spread = float(100.0 * (v.max() - v.min()) / mid) if mid else float("nan")
    return mid, spread


def _error_pct(predicted: float, measured: float) -> float:
    """100 (predicted - measured) / measured; nan without a measured value."""
    return 100.0 * (predicted - measured) / measured if measured and np.isfinite(measured) else float("nan")


def _record(workload: str, scenario: str, metric: str, measured_values, predicted_values, real_runs=None,
            sim_runs=None, **extra) -> dict:
    measured, spread = _agg(measured_values)
    predicted, sim_spread = _agg(predicted_values)
    err = _error_pct(predicted, measured)
    rec = {"workload": workload, "scenario": scenario, "metric": metric, "measured": measured,
           "predicted": predicted, "error_pct": err, "measured_spread_pct": spread,
           "measured_runs": [float(x) for x in measured_values],
           "predicted_runs": [float(x) for x in predicted_values], "predicted_spread_pct": sim_spread}
    if real_runs is not None:
        rec["measured_valid"] = f"{sum(bool(r['valid']) for r in real_runs)}/{len(real_runs)}"
        reasons = sorted({reason for r in real_runs for reason in invalid_reasons(r)})
        if reasons:
            rec["invalid_reasons"] = reasons
        rec["foreign_cores_max"] = max((r["machine"].get("foreign_cores_mean") or 0.0) for r in real_runs)
    if sim_runs is not None:
        rec["predicted_valid"] = f"{sum(bool(s['valid']) for s in sim_runs)}/{len(sim_runs)}"
    rec.update(extra)
    return rec


def _predicted(rp: RunPair, value, sims: list | None = None) -> list[float]:
    """Per repeat: the mean over the simulation seeds of ``value(summary)``."""
    out = []
    for seeds in (rp.sim if sims is None else sims):
        v = [value(s) for s in seeds]
        v = [x for x in v if x is not None and np.isfinite(x)]
        out.append(float(np.mean(v)) if v else float("nan"))
    return out


def _flat(rp: RunPair) -> list[dict]:
    return [s for seeds in rp.sim for s in seeds]


def make_records(label: str, pairs: list[RunPair], server_pairs: list[RunPair], peak: dict | None,
                 system: str = "") -> list[dict]:
    """One record per compared metric: measured (median of the real repeats) against predicted
    (median over the repeats of the mean over seeds, each repeat simulated at its own drift)."""
    recs = []
    by_tag = {p.tag: p for p in pairs}
    ss, ms, off = by_tag["SingleStream"], by_tag["MultiStream"], by_tag["Offline"]

    def rec(rp, scenario, metric, key, value, **extra):
        measured = [loadgen_value(r, key) if not callable(key) else key(r) for r in rp.real]
        out = _record(label, scenario, metric, measured,
                      _predicted(rp, value), rp.real, _flat(rp), drift=rp.drift, batch_speed=rp.speed, **extra)
        at_speed, _ = _agg(_predicted(rp, value, rp.sim_at_speed))
        out["predicted_at_run_speed"] = at_speed
        out["error_at_run_speed_pct"] = _error_pct(at_speed, out["measured"])
        return out

    ms_ = lambda key: (lambda r: ns_to_ms(loadgen_value(r, key)))  # noqa: E731
    recs.append(rec(ss, "SingleStream", "p90 latency (ms)", ms_("result_90.00_percentile_latency_ns"),
                    lambda s: ns_to_ms(s["p90_ns"])))
    recs.append(rec(ss, "SingleStream", "early-stopping p90 estimate (ms)", ms_("early_stopping_latency_ss"),
                    lambda s: ns_to_ms(s["es_estimate_ns"]) if s["es_estimate_ns"] else None))
    recs.append(rec(ms, "MultiStream", "p99 latency (ms)", ms_("result_99.00_percentile_per_query_latency_ns"),
                    lambda s: ns_to_ms(s["query_p99_ns"])))
    recs.append(rec(off, "Offline", "samples/s", "result_samples_per_second", lambda s: s["headline"]))
    for sp in server_pairs:
        pct = f"{sp.load:.0%}"
        recs.append(rec(sp, "Server", f"p99 latency at {pct} load (ms)", ms_("result_99.00_percentile_latency_ns"),
                        lambda s: ns_to_ms(s["p99_ns"]), qps=sp.qps, load=sp.load))
        recs.append(rec(sp, "Server", f"mean latency at {pct} load (ms)", ms_("result_mean_latency_ns"),
                        lambda s: ns_to_ms(s["mean_ns"]), qps=sp.qps, load=sp.load))
    if peak is not None:
        recs.append(_record(label, "Server", "peak VALID QPS", peak["real"], peak["sim"],
                            trials=len(peak["trials"]), drift=peak.get("drift")))
    for r in recs:
        r["system"] = system
    return recs


def _cdf(values, points: int = 200) -> dict:
    v = np.sort(np.asarray(values, dtype=np.float64))
    if v.size == 0:
        return {"ms": [], "p": []}
    q = np.linspace(0, 1, points)
    idx = np.minimum(v.size - 1, (q * v.size).astype(int))
    return {"ms": [float(x / 1e6) for x in v[idx]], "p": [float(x) for x in q]}


def plot_data(pairs: list[RunPair], server_pairs: list[RunPair], peak: dict | None, curve: dict) -> dict:
    """What the report's plots draw: the latency CDFs (measured and predicted) of each setting, the
    predicted Server curve, the measured Server points and the peak search."""
    cdfs = {}
    for p in pairs:
        real = real_latencies(p.real[0], p.sim_traffic) if p.real else None
        cdfs[p.tag] = {"measured": _cdf(real) if real is not None else None, "predicted": _cdf(p.sim_latencies)}
    points = [{"qps": sp.qps, "load": sp.load,
               "p99_ms": [ns_to_ms(loadgen_value(r, "result_99.00_percentile_latency_ns")) for r in sp.real],
               "predicted_p99_ms": float(np.median(_predicted(sp, lambda s: ns_to_ms(s["p99_ns"]))))}
              for sp in server_pairs]
    return {"cdf": cdfs, "server_curve": curve, "server_points": points,
            "peak": peak and {"real": peak["real"], "sim": peak["sim"], "trials": peak["trials"]}}

