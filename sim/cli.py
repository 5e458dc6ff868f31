"""The command line: ``python -m sim <command> ...``.

Each sub-command parses its arguments and calls the library function a notebook would
call; user mistakes (``InputError``) print one ``error: ...`` line and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys

from sim.errors import InputError


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer; expected an integer >= 1") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} is not >= 1; expected an integer >= 1")
    return value


def _int_list(text: str) -> list[int]:
    return [_positive_int(part) for part in text.split(",") if part.strip()]


def _add_workload_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("workload", help="a built-in workload name or a path to a .onnx file")
    p.add_argument("--small", action="store_true", help="use the workload's small variant")


def cmd_layers(args) -> int:
    from sim.workload import layers
    from sim.workload import catalog as workloads
    w = workloads.resolve(args.workload, small=args.small)
    table = layers.layer_table(w.model, batch=args.batch, name=w.name, source=str(w.path))
    if args.json:
        print(json.dumps(table.to_dict()))
    else:
        print(layers.format_table(table, max_rows=None if args.all else 60))
    return 0


def cmd_profile(args) -> int:
    from sim.profile import cpu_profile
    from sim.workload import catalog as workloads
    w = workloads.resolve(args.workload, small=args.small)
    profile = cpu_profile.load_or_measure(w, batch_sizes=args.batch_sizes, threads=args.threads,
                                          cache_dir=args.cache_dir, remeasure=args.remeasure)
    print(cpu_profile.summarise(profile))
    return 0


def _load_system(args):
    from sim.sut.system import SystemSpec, load_system
    return load_system(args.system) if args.system else SystemSpec()


def _overrides(args) -> dict:
    out = {}
    if getattr(args, "qps", None) is not None:
        out["server_target_qps"] = float(args.qps)
    if args.min_query_count is not None:
        out["min_query_count"] = args.min_query_count
    if args.min_duration_ms is not None:
        out["min_duration_ns"] = int(args.min_duration_ms * 1_000_000)
    return out


def _synthetic_cost(args, system):
    from sim.cost.synthetic import parse_synthetic
    if args.service_time_ms is None:
        return None
    return parse_synthetic(args.service_time_ms, "--service-time-ms")


def _add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workload", default="resnet50", help="built-in workload or .onnx file (default resnet50)")
    p.add_argument("--small", action="store_true", help="use the workload's small variant")
    p.add_argument("--system", help="system description (YAML); default: 1 device, 1 instance, no batching")
    p.add_argument("--user-conf", help="a LoadGen user.conf")
    p.add_argument("--mlperf-model", help="LoadGen model name for settings (default: the workload's)")
    p.add_argument("--service-time-ms", metavar="T",
                   help="synthetic cost instead of the workload's: T or fixed:T, exp:MEAN, affine:A,B (ms)")
    p.add_argument("--min-query-count", type=_positive_int)
    p.add_argument("--min-duration-ms", type=float)
    p.add_argument("--seed", type=int, default=0, help="seed of random service times (traffic uses LoadGen's seeds)")


def cmd_run(args) -> int:
    from sim.run import simulate
    system = _load_system(args)
    r = simulate(args.scenario, workload=args.workload, system=system, cost=_synthetic_cost(args, system),
                 mlperf_model=args.mlperf_model, user_conf=args.user_conf, overrides=_overrides(args),
                 seed=args.seed, small=args.small)
    print(r.summary_text(), end="")
    if r.hints:
        print("run-size hints set from the model (LoadGen would need them in user.conf): "
              + ", ".join(f"{k} = {v:g}" for k, v in r.hints.items()))
    if args.out:
        paths = r.write(args.out)
        print("wrote " + ", ".join(str(p) for p in paths))
    if args.trace:
        from sim.apps.trace import write_trace
        print(f"wrote {write_trace(r, args.trace, args.trace_max_queries)} (Chrome trace: open in ui.perfetto.dev)")
    return 0


def cmd_sweep(args) -> int:
    from sim.apps.sweep import run_sweep
    summary = run_sweep(args.grid, args.out, workers=args.workers, dask=args.dask,
                        dask_timeout_s=args.dask_timeout_s, progress=args.progress, chunk=args.chunk)
    print(summary.describe())
    return 1 if summary.errors else 0


def cmd_search(args) -> int:
    from sim.run import resolve_cost
    from sim.apps.peak import peak_server_qps, scenario_metric
    system = _load_system(args)
    cost = _synthetic_cost(args, system) or resolve_cost(system, args.workload, None, args.small)
    if args.scenario != "Server":
        r = scenario_metric(args.scenario, args.workload, system, cost, args.mlperf_model, args.user_conf,
                            _overrides(args), args.seed)
        print(f"{args.scenario}: {r.metrics.headline_name} = {r.metrics.headline_value:.6g} "
              f"({'VALID' if r.metrics.valid else 'INVALID'})")
        return 0
    peak = peak_server_qps(args.workload, system, cost, args.mlperf_model, args.user_conf, _overrides(args),
                           args.seed, rel_tol=args.rel_tol, repeats=args.repeats)
    print(f"{'target QPS':>12} {'seed':>4} {'valid':>7} {'p99 ms':>9} {'completed/s':>12}")
    for t in peak.trials:
        print(f"{t.qps:12.2f} {t.seed_index:4d} {'VALID' if t.valid else 'INVALID':>7} {t.p99_ns / 1e6:9.3f} "
              f"{t.completed_qps:12.2f}")
    print(peak.describe())
    return 0


def cmd_compare(args) -> int:
    from sim.apps import compare
    rows = compare.compare(args.workload, [d for d in args.devices.split(",") if d], args.count)
    print(compare.to_markdown(rows), end="")
    if args.out:
        print("wrote " + ", ".join(str(p) for p in compare.write(rows, args.out)))
    return 0


def cmd_procure(args) -> int:
    from sim.apps import procurement
    devices = [d.strip() for d in args.devices.split(",") if d.strip()] if args.devices else procurement.DEVICES
    return procurement.main(args.workload, args.out, devices)


def cmd_demo(args) -> int:
    from sim.apps import demo
    return demo.main(args.workload, args.out, args.small)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sim", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")

    p = sub.add_parser("procure", help="the main job (default): ResNet-50 procurement comparison across the "
                                       "bundled devices, table and plots")
    p.add_argument("--workload", default="resnet50")
    p.add_argument("--devices", help="comma-separated profile names (default: the bundled list)")
    p.add_argument("--out", default="out/procurement", help="folder for the table (CSV, Markdown) and plots")
    p.set_defaults(func=cmd_procure)

    p = sub.add_parser("demo", help="ResNet-50 on this CPU (measured profile) in all four scenarios")
    p.add_argument("--workload", default="resnet50")
    p.add_argument("--small", action="store_true")
    p.add_argument("--out", default="out/demo", help="folder for the LoadGen-format logs")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("compare", help="devices side by side on one workload (calibrated hardware model)")
    p.add_argument("--workload", default="resnet50")
    p.add_argument("--devices", required=True, help="comma-separated profile names, e.g. t4,l4,a100-sxm")
    p.add_argument("--count", type=_positive_int, default=1, help="devices per system")
    p.add_argument("--out", help="path prefix for PREFIX.csv and PREFIX.md")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("layers", help="per-node layer table (MACs, FLOPs, bytes) of a workload")
    _add_workload_args(p)
    p.add_argument("--batch", type=_positive_int, default=1)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--all", action="store_true", help="print every node (default: first 60)")
    p.set_defaults(func=cmd_layers)

    p = sub.add_parser("profile", help="measure per-kernel CPU cost with onnxruntime")
    _add_workload_args(p)
    p.add_argument("--batch-sizes", type=_int_list, default=[1, 2, 4, 8])
    p.add_argument("--threads", type=_positive_int, default=None, help="intra-op threads (default: all cores)")
    p.add_argument("--cache-dir", default=None, help="profile cache folder (default: $SIM_CACHE_DIR or ~/.cache/mlperf-sim)")
    p.add_argument("--remeasure", action="store_true", help="measure again even if cached")
    p.set_defaults(func=cmd_profile)

    from sim.run import SCENARIOS
    p = sub.add_parser("run", help="simulate one MLPerf scenario and print LoadGen's summary")
    _add_run_args(p)
    p.add_argument("--scenario", required=True, choices=SCENARIOS)
    p.add_argument("--qps", type=float, help="Server target QPS")
    p.add_argument("--out", help="folder for mlperf_log_summary.txt, mlperf_log_detail.txt, result.json")
    p.add_argument("--trace", metavar="FILE", help="also write a Chrome trace (JSON) of the run, for Perfetto")
    p.add_argument("--trace-max-queries", type=_positive_int, default=10_000,
                   help="queries exported to the trace (default 10000)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("sweep", help="run a grid of what-ifs in parallel, one JSON line per point (resumable)")
    p.add_argument("grid", help="sweep grid (YAML; format in sim/apps/sweep.py and docs/sweep.md)")
    p.add_argument("--out", required=True, help="results file (JSON lines); finished points in it are skipped")
    p.add_argument("--workers", type=_positive_int, help="local processes (default: CPU count)")
    p.add_argument("--dask", metavar="ADDRESS", help="run on this Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--dask-timeout-s", type=float, default=10.0, help="time to reach the scheduler (default 10)")
    p.add_argument("--chunk", type=_positive_int, default=1, help="points per task (default 1)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: when stderr is a terminal)")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("search", help="highest VALID Server QPS (or a scenario's metric)")
    _add_run_args(p)
    p.add_argument("--scenario", default="Server", choices=SCENARIOS)
    p.add_argument("--rel-tol", type=float, default=0.01, help="bracket width relative to the peak (default 0.01)")
    p.add_argument("--repeats", type=_positive_int, default=5, help="schedule seeds tried at the bracket ends")
    p.set_defaults(func=cmd_search)

    from sim.commands.plan import add_parser as add_plan_parser     # capacity planning
    add_plan_parser(sub)

    from sim.commands.validate import add_parser as add_validate_parser   # real runs vs predictions
    add_validate_parser(sub)

    from sim.commands.hw import add_parsers as add_hw_parsers   # calibrate, predict-published (sim/hw)
    add_hw_parsers(sub)
    return parser


def cmd_calibrate(args) -> int:
    from sim.commands.hw import cmd_calibrate as run
    return run(args)


def cmd_predict_published(args) -> int:
    from sim.commands.hw import cmd_predict_published as run
    return run(args)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["procure"])
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
