"""The peak VALID Server QPS: searched for real and simulated with the same procedure.

``bisect_peak`` brackets the highest target QPS LoadGen still marks VALID from the results
known already (the Server loads' runs), then bisects (``sim.util.bisect``).
``search_real_peak`` runs that search on real trials, once per repeat, and keeps each
repeat's trials and the machine's speed during them; ``predict_peak`` runs it on each
repeat's simulated trials, per seed, at that speed, bisected finer.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sim.util.bisect import bisect
from sim.validate.real_runs import loadgen_value
from sim.validate.records import RunPair, ns_to_ms


def bisect_peak(trial: Callable[[float], bool], known: dict, capacity: float, rel_tol: float,
                max_trials: int = 12) -> float:
    """Highest VALID target QPS: bracket from the ``known`` {qps: valid} results, then bisect.

    The same procedure for real and simulated trials; 0.0 when nothing down to a tenth of
    the capacity is VALID.
    """
    valid = [q for q, v in known.items() if v]
    lo = max(valid) if valid else None
    invalid = [q for q, v in known.items() if not v and (lo is None or q > lo)]
    hi = min(invalid) if invalid else None
    n = 0
    while lo is None and n < max_trials:
        q = (hi if hi is not None else capacity) * 0.7
        if q < 0.1 * capacity:
            return 0.0
        n += 1
        if trial(q):
            lo = q
        else:
            hi = q
    while hi is None and n < max_trials:
        q = max(lo * 1.1, min(capacity, lo * 1.25)) if lo < capacity else lo * 1.1
        n += 1
        if trial(q):
            lo = q
        else:
            hi = q
    if hi is not None and lo is not None:
        lo, hi = bisect(trial, lo, hi, rel_tol=rel_tol, max_steps=max_trials - n)
    return float(lo or 0.0)


def search_real_peak(run_trial: Callable[[int, float], tuple[dict, float]], server_pairs: list[RunPair],
                     capacity: float, repeats: int, rel_tol: float, log: Callable[..., object]) -> dict:
    """The real peak VALID QPS search, bisected per repeat (``predict_peak`` simulates it).

    ``run_trial(k, qps)``: repeat ``k``'s (from 0) real run at ``qps`` and the machine's speed
    during it (its drift); the Server loads' runs of that repeat are known already.
    """
    peaks_real, trials, drifts = [], [], []
    for k in range(repeats):
        known = {round(sp.qps, 3): bool(sp.real[k]["valid"]) for sp in server_pairs if k < len(sp.real)}
        mine = []

        def real_trial(qps, k=k, mine=mine):
            res, drift = run_trial(k, qps)
            mine.append(drift)
            trials.append({"repeat": k + 1, "qps": qps, "valid": bool(res["valid"]), "drift": mine[-1],
                           "p99_ms": ns_to_ms(loadgen_value(res, "result_99.00_percentile_latency_ns"))})
            return bool(res["valid"])

        log(f"  peak VALID QPS search, repeat {k + 1}")
        peaks_real.append(bisect_peak(real_trial, known, capacity, rel_tol))
        # the simulated search of this repeat: the machine's speed during its real trials
        drifts.append(float(np.median(mine or [sp.drift[k] for sp in server_pairs if k < len(sp.drift)]
                                      or [1.0])))
    return {"real": peaks_real, "sim": [], "trials": trials, "drift": drifts}


def predict_peak(peak: dict, sim_valid: Callable[[float, int, float], bool], server_pairs: list[RunPair],
                 capacity: float, seeds: int, rel_tol: float) -> dict:
    """The simulated peak search of each real repeat (``peak["sim"]``), bisected finer.

    ``sim_valid(qps, seed, drift)``: whether the simulated trial at ``qps`` is VALID.
    """
    peak["sim"] = []
    for drift in peak["drift"]:
        per_seed = []
        for seed in range(seeds):
            def sim_trial(qps, seed=seed, drift=drift):
                return sim_valid(qps, seed, drift)

            sim_known = {round(sp.qps, 3): sim_trial(round(sp.qps, 3)) for sp in server_pairs}
            per_seed.append(bisect_peak(sim_trial, sim_known, capacity, min(0.005, rel_tol)))
        peak["sim"].append(float(np.mean(per_seed)))
    return peak
