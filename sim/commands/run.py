"""``python -m sim run``: simulate one MLPerf scenario and print LoadGen's summary; optionally
write LoadGen's log files and a Chrome trace of the run."""

from __future__ import annotations

from sim.apps.trace import EVENTS_PER_QUERY, MAX_TRACE_QUERIES, write_trace
from sim.commands.args import add_run_args, overrides, qps, synthetic_cost, system_of
from sim.run import SCENARIOS, simulate
from sim.util.checks import LIMITS, flag

NAME = "run"
_TRACE_QUERIES = flag(minimum=1, maximum=MAX_TRACE_QUERIES, integer=True,
                      note=f"a trace of at most {LIMITS['trace_events']:,} events, up to {EVENTS_PER_QUERY} a query")


def add_parser(subparsers):
    p = subparsers.add_parser(NAME, help="simulate one MLPerf scenario and print LoadGen's summary")
    add_run_args(p)
    p.add_argument("--scenario", required=True, choices=SCENARIOS)
    p.add_argument("--qps", type=qps, help="Server target QPS")
    p.add_argument("--out", help="folder for mlperf_log_summary.txt, mlperf_log_detail.txt, result.json")
    p.add_argument("--trace", metavar="FILE", help="also write a Chrome trace (JSON) of the run, for Perfetto")
    p.add_argument("--trace-max-queries", type=_TRACE_QUERIES, default=10_000,
                   help=f"queries exported to the trace (default 10000, at most {MAX_TRACE_QUERIES:,})")
    return p


def run(args) -> int:
    r = simulate(args.scenario, workload=args.workload, system=system_of(args), cost=synthetic_cost(args),
                 mlperf_model=args.mlperf_model, user_conf=args.user_conf, overrides=overrides(args),
                 seed=args.seed, small=args.small)
    for note in r.notes:
        print(f"note: {note}")
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
