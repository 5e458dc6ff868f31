"""Scenario searches: the peak VALID Server QPS, and each other scenario's metric.

SingleStream's p90, MultiStream's p99 and Offline's samples/s come straight from one run;
Server needs a search over the target QPS (``sim.loadgen.peak_search.find_peak_qps``). Each trial is a
full simulated run with LoadGen's settings; the seed index of a trial offsets LoadGen's
schedule seed, so repeats see other Poisson arrival sequences.
"""

from __future__ import annotations

from sim.loadgen.peak_search import PeakResult, check_search, find_peak_qps
from sim.run import RunResult, mlperf_model_of, offline_capacity_qps, settings_of, simulate, unloaded_latency_ns
from sim.util.checks import RANGES, number


def scenario_metric(scenario: str, workload, system, cost, mlperf_model=None, user_conf=None,
                    overrides=None, seed: int = 0) -> RunResult:
    return simulate(scenario, workload=workload, system=system, cost=cost, mlperf_model=mlperf_model,
                    user_conf=user_conf, overrides=overrides, seed=seed)


def peak_server_qps(workload, system, cost, mlperf_model=None, user_conf=None, overrides=None, seed: int = 0,
                    rel_tol: float = 0.01, repeats: int = 5, start_qps: float | None = None) -> PeakResult:
    """The highest VALID Server QPS (``sim.loadgen.peak_search``), each trial a full simulated run."""
    start_qps, rel_tol, repeats, _, _ = check_search(start_qps, rel_tol, repeats, source="peak_server_qps")
    seed = number(seed, "peak_server_qps", "seed", **RANGES["seed"])
    overrides = dict(overrides or {})
    overrides.pop("server_target_qps", None)
    base_seed = None

    def trial(qps: float, seed_index: int):
        nonlocal base_seed
        extra = {"server_target_qps": qps}
        if seed_index:
            extra["schedule_rng_seed"] = (base_seed + seed_index) % 2**64
        r = simulate("Server", workload=workload, system=system, cost=cost, mlperf_model=mlperf_model,
                     user_conf=user_conf, overrides={**overrides, **extra}, seed=seed + seed_index)
        if base_seed is None:
            base_seed = r.settings.schedule_rng_seed
        return r.metrics

    settings, _ = settings_of(mlperf_model or mlperf_model_of(workload), "Server", user_conf=user_conf,
                              overrides=overrides)
    floor_ns = unloaded_latency_ns(system, cost, 1, seed)
    if floor_ns > settings.target_latency_ns:
        return PeakResult(0.0, 0.0, 0.0, 0.0, repeats, [],
                          reason=f"one query on the idle system takes {floor_ns / 1e6:.2f} ms, above the "
                                 f"{settings.target_latency_ns / 1e6:g} ms latency bound at any load")
    start = start_qps or 0.8 * offline_capacity_qps(system, cost, seed)
    return find_peak_qps(trial, start, rel_tol=rel_tol, repeats=repeats)
