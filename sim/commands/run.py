"""``python -m sim run``: simulate one MLPerf scenario and print LoadGen's summary; optionally
write LoadGen's log files and a Chrome trace of the run."""

from __future__ import annotations

from sim.apps.trace import write_trace
from sim.commands.args import add_run_args, overrides, positive_int, synthetic_cost, system_of
from sim.run import SCENARIOS, simulate

NAME = "run"


def add_parser(subparsers):
    p = subparsers.add_parser(NAME, help="simulate one MLPerf scenario and print LoadGen's summary")
    add_run_args(p)
    p.add_argument("--scenario", required=True, choices=SCENARIOS)
    p.add_argument("--qps", type=float, help="Server target QPS")
    p.add_argument("--out", help="folder for mlperf_log_summary.txt, mlperf_log_detail.txt, result.json")
    p.add_argument("--trace", metavar="FILE", help="also write a Chrome trace (JSON) of the run, for Perfetto")
    p.add_argument("--trace-max-queries", type=positive_int, default=10_000,
                   help="queries exported to the trace (default 10000)")
    return p


def run(args) -> int:
    r = simulate(args.scenario, workload=args.workload, system=system_of(args), cost=synthetic_cost(args),
                 mlperf_model=args.mlperf_model, user_conf=args.user_conf, overrides=overrides(args),
                 seed=args.seed, small=args.small)
    print(r.summary_text(), end="")
    if r.hints:
        print("run-size hints set from the model (LoadGen would need them in user.conf): "
              + ", ".join(f"{k} = {v:g}" for k, v in r.hints.items()))
    if args.out:
        paths = r.write(args.out)
        print("wrote " + ", ".join(str(p) for p in paths))
    if args.trace:
        print(f"wrote {write_trace(r, args.trace, args.trace_max_queries)} (Chrome trace: open in ui.perfetto.dev)")
    return 0
