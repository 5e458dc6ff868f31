"""``python -m sim search``: the highest VALID Server QPS (``sim.apps.peak``), or another
scenario's metric."""

from __future__ import annotations

from sim.apps.peak import peak_server_qps, scenario_metric
from sim.commands.args import add_run_args, overrides, rel_tol, repeats, synthetic_cost, system_of
from sim.run import SCENARIOS, resolve_cost

NAME = "search"


def add_parser(subparsers):
    p = subparsers.add_parser(NAME, help="highest VALID Server QPS (or a scenario's metric)")
    add_run_args(p)
    p.add_argument("--scenario", default="Server", choices=SCENARIOS)
    p.add_argument("--rel-tol", type=rel_tol, default=0.01, help="bracket width relative to the peak (default 0.01)")
    p.add_argument("--repeats", type=repeats, default=5, help="schedule seeds tried at the bracket ends")
    return p


def run(args) -> int:
    system = system_of(args)
    cost = synthetic_cost(args) or resolve_cost(system, args.workload, None, args.small)
    if args.scenario != "Server":
        r = scenario_metric(args.scenario, args.workload, system, cost, args.mlperf_model, args.user_conf,
                            overrides(args), args.seed)
        print(f"{args.scenario}: {r.metrics.headline_name} = {r.metrics.headline_value:.6g} "
              f"({'VALID' if r.metrics.valid else 'INVALID'})")
        return 0
    peak = peak_server_qps(args.workload, system, cost, args.mlperf_model, args.user_conf, overrides(args),
                           args.seed, rel_tol=args.rel_tol, repeats=args.repeats)
    print(f"{'target QPS':>12} {'seed':>4} {'valid':>7} {'p99 ms':>9} {'completed/s':>12}")
    for t in peak.trials:
        print(f"{t.qps:12.2f} {t.seed_index:4d} {'VALID' if t.valid else 'INVALID':>7} {t.p99_ns / 1e6:9.3f} "
              f"{t.completed_qps:12.2f}")
    print(peak.describe())
    return 0 if peak.peak_qps else 1        # 1: no VALID Server QPS (exit codes: sim/cli.py)
