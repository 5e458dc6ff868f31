"""``python -m sim run``: simulate one MLPerf scenario and print LoadGen's summary; optionally
write LoadGen's log files and a Chrome trace of the run."""

from __future__ import annotations

from sim.apps.trace import EVENTS_PER_QUERY, MAX_TRACE_QUERIES, write_trace
from sim.commands.args import add_run_args, overrides, qps, synthetic_cost, system_of, use_input_shapes
from sim.commands.llm_run import add_llm_args, is_llm_workload, run_llm
from sim.cost.protocol import describe as describe_cost
from sim.errors import InputError
from sim.run import SCENARIOS, simulate
from sim.util.checks import LIMITS, flag

NAME = "run"
_TRACE_QUERIES = flag(minimum=1, maximum=MAX_TRACE_QUERIES, integer=True,
                      note=f"a trace of at most {LIMITS['trace_events']:,} events, up to {EVENTS_PER_QUERY} a query")


def add_parser(subparsers):
    p = subparsers.add_parser(NAME, help="simulate one MLPerf scenario and print LoadGen's summary")
    add_run_args(p)
    p.add_argument("--scenario", required=True, choices=[*SCENARIOS, "Interactive"],
                   help="Interactive: an LLM workload's Server run with its <model>-interactive settings")
    p.add_argument("--qps", type=qps, help="Server target QPS")
    add_llm_args(p)
    p.add_argument("--out", help="folder for mlperf_log_summary.txt, mlperf_log_detail.txt, result.json")
    p.add_argument("--no-alternatives", action="store_true",
                   help="an INVALID Server verdict does not name the catalog devices that would meet the bound "
                        "(which loads the calibrated hardware model)")
    p.add_argument("--trace", metavar="FILE", help="also write a Chrome trace (JSON) of the run, for Perfetto")
    p.add_argument("--trace-max-queries", type=_TRACE_QUERIES, default=10_000,
                   help=f"queries exported to the trace (default 10000, at most {MAX_TRACE_QUERIES:,})")
    return p


def run(args) -> int:
    if is_llm_workload(args.workload):
        return run_llm(args)
    if args.scenario == "Interactive":
        raise InputError(f"--scenario Interactive: workload {args.workload!r} is not an LLM workload; expected "
                         f"one of {list(SCENARIOS)}")
    use_input_shapes(args)
    from sim.apps.verdict_reason import explain  # noqa: PLC0415 - loads the hardware model only when INVALID
    from sim.commands.header import what_simulated  # noqa: PLC0415 - reads /proc/cpuinfo
    from sim.run import resolve_cost  # noqa: PLC0415 - the run layer, already loaded by simulate's import
    from sim.util import progress  # noqa: PLC0415 - only when running

    system = system_of(args)
    print(what_simulated(args.scenario, args.workload, system, args.service_time_ms, args.small,
                         args.qps if args.scenario == "Server" else None), flush=True)
    cost = synthetic_cost(args)
    if cost is None:
        with progress.stage(f"loading or measuring the cost of {args.workload} (onnxruntime profile, cached "
                            f"after the first run)"):
            cost = resolve_cost(system, args.workload, None, args.small)
    print(f"cost model: {describe_cost(cost)}", flush=True)
    r = simulate(args.scenario, workload=args.workload, system=system, cost=cost,
                 mlperf_model=args.mlperf_model, user_conf=args.user_conf, overrides=overrides(args),
                 seed=args.seed, small=args.small)
    for note in r.notes:
        print(f"note: {note}")
    reason = explain(r, cost, alternatives=not args.no_alternatives)
    print("verdict: VALID" if reason is None else f"verdict: INVALID ({reason.short}; why, after the summary)",
          flush=True)
    print(r.summary_text(), end="")
    if reason is not None:
        print(f"why INVALID: {reason.text}")
    if r.hints:
        print("run-size hints set from the model (LoadGen would need them in user.conf): "
              + ", ".join(f"{k} = {v:g}" for k, v in r.hints.items()))
    if args.out:
        paths = r.write(args.out)
        print("wrote " + ", ".join(str(p) for p in paths))
    if args.trace:
        print(f"wrote {write_trace(r, args.trace, args.trace_max_queries)} (Chrome trace: open in ui.perfetto.dev)")
    return 0
