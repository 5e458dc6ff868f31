"""Scenario searches: the peak VALID Server QPS, and each other scenario's metric.

SingleStream's p90, MultiStream's p99 and Offline's samples/s come straight from one run;
Server needs a search over the target QPS (``sim.loadgen.peak_search.find_peak_qps``). Each trial is a
full simulated run with LoadGen's settings; the seed index of a trial offsets LoadGen's
schedule seed, so repeats see other Poisson arrival sequences.

A trial of MLPerf length (600 s simulated, and the model's minimum query count) costs memory
and time in proportion to the QPS: at 98,000 QPS one trial is 59 million queries (about
4.7 GB). ``trial_overrides`` gives the settings of shorter trials (a duration and a minimum
query count of LoadGen's generic 100), which a search uses unless MLPerf length is asked for;
their verdicts are LoadGen's own rules over a shorter run (early stopping included), so a
peak found with short trials is an estimate of the MLPerf one.

``expected_trials`` estimates how many trials a search takes, for its progress report: the
bracket (a doubling or halving or two from the start at 80 % of capacity), the bisection to
``rel_tol`` (log2 of 1/rel_tol halvings of a bracket one doubling wide) and the repeats
at both ends.
"""

from __future__ import annotations

import math

from sim.loadgen.peak_search import PeakResult, ScheduleSeeds, check_search, find_peak_qps
from sim.run import RunResult, mlperf_model_of, offline_capacity_qps, settings_of, simulate, unloaded_latency_ns
from sim.util import progress
from sim.util.checks import RANGES, number

#: trial length of a search unless MLPerf length is asked for (simulated milliseconds)
DEFAULT_TRIAL_MS = 5_000.0
#: the minimum query count of a short trial: LoadGen's generic default (mlperf.conf ``*``)
SHORT_TRIAL_MIN_QUERIES = 100


def trial_overrides(trial_ms: float | None) -> dict:
    """LoadGen overrides of a short trial of ``trial_ms`` simulated ms; {} (MLPerf length) for None."""
    if trial_ms is None:
        return {}
    return {"min_duration_ns": round(float(trial_ms) * 1e6), "min_query_count": SHORT_TRIAL_MIN_QUERIES}


def expected_trials(rel_tol: float, repeats: int) -> int:
    """Trials a search usually takes (see the module docstring): an estimate for progress only."""
    return 2 + math.ceil(math.log2(1.0 / rel_tol)) + 2 * max(0, repeats - 1)


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
    seeds = ScheduleSeeds()

    def trial(qps: float, seed_index: int):
        r = simulate("Server", workload=workload, system=system, cost=cost, mlperf_model=mlperf_model,
                     user_conf=user_conf, overrides={**overrides, **seeds.overrides(qps, seed_index)},
                     seed=seed + seed_index)
        seeds.saw(r.settings)
        task.set_total(max(task.total or 0, task.done + 1))
        task.advance(note=f"{qps:,.0f} QPS {'VALID' if r.metrics.valid else 'INVALID'}")
        return r.metrics

    settings, _ = settings_of(mlperf_model or mlperf_model_of(workload), "Server", user_conf=user_conf,
                              overrides=overrides)
    floor_ns = unloaded_latency_ns(system, cost, 1, seed)
    if floor_ns > settings.target_latency_ns:
        return PeakResult(0.0, 0.0, 0.0, 0.0, repeats, [],
                          reason=f"one query on the idle system takes {floor_ns / 1e6:.2f} ms, above the "
                                 f"{settings.target_latency_ns / 1e6:g} ms latency bound at any load")
    start = start_qps or 0.8 * offline_capacity_qps(system, cost, seed)
    with progress.task("searching the peak Server QPS", total=expected_trials(rel_tol, repeats), unit="trials",
                       done_message="") as task:
        return find_peak_qps(trial, start, rel_tol=rel_tol, repeats=repeats)
