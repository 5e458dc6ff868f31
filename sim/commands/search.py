"""``python -m sim search``: the highest VALID Server QPS (``sim.apps.peak``), or another
scenario's metric."""

from __future__ import annotations

from sim.apps.peak import DEFAULT_TRIAL_MS, peak_server_qps, scenario_metric, trial_overrides
from sim.commands.args import (
    add_run_args,
    duration_ms,
    overrides,
    rel_tol,
    repeats,
    synthetic_cost,
    system_of,
    use_input_shapes,
)
from sim.commands.header import what_simulated
from sim.commands.llm_run import add_llm_args, is_llm_workload, search_llm
from sim.errors import InputError
from sim.run import SCENARIOS, resolve_cost

NAME = "search"


def add_parser(subparsers):
    p = subparsers.add_parser(NAME, help="highest VALID Server QPS (or a scenario's metric)")
    add_run_args(p)
    p.add_argument("--scenario", default="Server", choices=[*SCENARIOS, "Interactive"],
                   help="Interactive: an LLM workload's Server search with its <model>-interactive settings")
    add_llm_args(p)
    p.add_argument("--rel-tol", type=rel_tol, default=0.01, help="bracket width relative to the peak (default 0.01)")
    p.add_argument("--repeats", type=repeats, default=5, help="schedule seeds tried at the bracket ends")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--trial-ms", type=duration_ms, default=DEFAULT_TRIAL_MS,
                        help=f"simulated length of each trial, with LoadGen's generic minimum of 100 queries "
                             f"(default {DEFAULT_TRIAL_MS:g} ms: seconds per search)")
    length.add_argument("--mlperf-length", action="store_true",
                        help="trials of MLPerf length (the model's min duration and query count: 600 s; at "
                             "high QPS minutes and gigabytes per trial)")
    return p


def run(args) -> int:
    from sim.util import progress  # noqa: PLC0415 - only when searching

    if is_llm_workload(args.workload):
        return search_llm(args)
    if args.scenario == "Interactive":
        raise InputError(f"--scenario Interactive: workload {args.workload!r} is not an LLM workload; expected "
                         f"one of {list(SCENARIOS)}")
    use_input_shapes(args)
    system = system_of(args)
    print(what_simulated(args.scenario, args.workload, system, args.service_time_ms, args.small), flush=True)
    given = overrides(args)
    if args.mlperf_length or "min_duration_ns" in given:
        length = "trials of MLPerf length" if args.mlperf_length else \
            f"trials of at least {args.min_duration_ms:g} ms (--min-duration-ms)"
        over = given
    else:
        over = {**trial_overrides(args.trial_ms), **given}
        length = (f"short trials: {args.trial_ms:g} ms simulated, at least {over['min_query_count']} queries "
                  f"(--mlperf-length for MLPerf's; a short-trial peak estimates the MLPerf one)")
    print(f"search: {length}", flush=True)
    cost = synthetic_cost(args)
    if cost is None:
        with progress.stage(f"loading or measuring the cost of {args.workload} (onnxruntime profile, cached)"):
            cost = resolve_cost(system, args.workload, None, args.small)
    if args.scenario != "Server":
        r = scenario_metric(args.scenario, args.workload, system, cost, args.mlperf_model, args.user_conf,
                            over, args.seed)
        print(f"{args.scenario}: {r.metrics.headline_name} = {r.metrics.headline_value:.6g} "
              f"({'VALID' if r.metrics.valid else 'INVALID'})")
        return 0
    peak = peak_server_qps(args.workload, system, cost, args.mlperf_model, args.user_conf, over,
                           args.seed, rel_tol=args.rel_tol, repeats=args.repeats)
    print(f"{'target QPS':>12} {'seed':>4} {'valid':>7} {'p99 ms':>9} {'completed/s':>12}")
    for t in peak.trials:
        print(f"{t.qps:12.2f} {t.seed_index:4d} {'VALID' if t.valid else 'INVALID':>7} {t.p99_ns / 1e6:9.3f} "
              f"{t.completed_qps:12.2f}")
    print(peak.describe())
    return 0 if peak.peak_qps else 1        # 1: no VALID Server QPS (exit codes: sim/cli.py)
