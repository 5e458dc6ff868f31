"""``python -m sim validate``: the command-line face of ``sim.validate``.

Runs each workload for real (onnxruntime + LoadGen) and simulated, prints the comparison
table, and writes what was asked: ``--json FILE`` (machine fingerprint and ``records``),
plots (latency CDFs per scenario, Server p99 against QPS) and ``--report FILE`` (the
markdown report, e.g. docs/validation.md).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from sim.commands.args import latency_ms, niceness, repeats, rounds, seconds, system_of
from sim.validate import LOAD_BASES, LOAD_BASES_HELP, experiment, report

NAME = "validate"


def add_parser(subparsers):
    p = subparsers.add_parser(NAME, help="compare predictions with real onnxruntime runs driven by LoadGen")
    p.add_argument("--workload", action="append", required=True,
                   help="built-in workload (name:key=value,... sets builder parameters, e.g. bert_base:seq_len=16) "
                        "or a .onnx file; repeat for several")
    p.add_argument("--small", action="store_true", help="use the workloads' small variants")
    p.add_argument("--system", help="system description (YAML) the harness realises; default: 1 worker, "
                                    "onnxruntime's default threads, no batching")
    p.add_argument("--mlperf-model", help="LoadGen model name for settings (default: the workload's)")
    p.add_argument("--quick", action="store_true", help="short runs of every scenario, one repeat (a smoke test)")
    p.add_argument("--repeats", type=repeats, help="real runs per setting (default 3; 1 with --quick)")
    p.add_argument("--sim-seeds", type=repeats, help="simulated runs per real run (default 3)")
    p.add_argument("--server-bound-ms", type=latency_ms,
                   help="Server latency bound for the comparison (default: 20x the idle batch-1 time, >= 2 ms)")
    p.add_argument("--no-peak", action="store_true", help="skip the peak VALID Server QPS search")
    p.add_argument("--server-loads-of", choices=LOAD_BASES, default=None,
                   help=LOAD_BASES_HELP + " (default: peak; offline with --no-peak)")
    p.add_argument("--quiet-wait-s", type=seconds,
                   help="wait up to this long before each real run for other processes to go quiet "
                        "(default 120; 0 with --quick)")
    p.add_argument("--nice", type=niceness, default=0,
                   help="niceness change for the measuring processes, e.g. -10 on a shared machine (needs the "
                        "privilege; recorded with every run)")
    p.add_argument("--out", default="out/validate", help="folder for LoadGen's logs of every run")
    p.add_argument("--replay", action="store_true",
                   help="no real runs: re-simulate from the real runs and calibration kept under --out")
    p.add_argument("--calibrate-after", action=argparse.BooleanOptionalAction, default=None,
                   help="calibrate again after the real runs and predict from the calibrations pooled at their "
                        "median per batch size (default: on, off with --quick)")
    p.add_argument("--calibrate-between", type=rounds, default=None, metavar="N",
                   help="calibrations between the rounds of real runs, pooled too (default: 1 with "
                        "--calibrate-after, else 0)")
    p.add_argument("--drift-probe", action=argparse.BooleanOptionalAction, default=None,
                   help="rescale each prediction by the one-second speed probe made in the run's process before "
                        "LoadGen starts (default: on where every batch is of one sample, as the probe's are)")
    p.add_argument("--json", metavar="FILE", help="write the fingerprint and records as JSON")
    p.add_argument("--plots", metavar="DIR", help="folder for the plots (default: <out>/plots)")
    p.add_argument("--report", metavar="FILE", help="write the markdown report (e.g. docs/validation.md)")
    return p


def run_llm(args) -> int:
    """The LLM branch: each workload an LLM workload (``sim.validate.llm_experiment``)."""
    from sim.validate import llm_experiment  # noqa: PLC0415 - only for LLM workloads

    for name in args.workload:
        result = llm_experiment.run_llm_validation(name, args.out, quick=args.quick, repeats=args.repeats,
                                                   mlperf_model=args.mlperf_model,
                                                   log=lambda *a: print(*a, flush=True))
        print()
        print(llm_experiment.format_table(result))
        print(f"wrote {Path(args.out) / result['workload'] / 'llm_validation.json'}")
        if args.report:
            command = "python -m sim " + " ".join(shlex.quote(a) for a in sys.argv[1:])
            section = llm_experiment.markdown_section(result, command)
            print(f"wrote {llm_experiment.write_section(args.report, section)}")
    return 0


def run(args) -> int:
    from sim.workload.llm import is_llm_workload  # noqa: PLC0415 - only to pick the branch

    llm = [is_llm_workload(w) for w in args.workload]
    if any(llm):
        if not all(llm):
            from sim.errors import InputError  # noqa: PLC0415 - only on this error

            raise InputError("--workload: LLM and other workloads in one validation; expected only LLM workloads "
                             "(e.g. tiny-llm) or none")
        return run_llm(args)
    basis = args.server_loads_of or ("offline" if args.no_peak else "peak")
    results = experiment.run_validation(args.workload, system_of(args), args.out, quick=args.quick, small=args.small,
                                        repeats=args.repeats, sim_seeds=args.sim_seeds,
                                        server_bound_ms=args.server_bound_ms, peak=not args.no_peak,
                                        mlperf_model=args.mlperf_model, quiet_wait_s=args.quiet_wait_s,
                                        nice=args.nice, drift_probe=args.drift_probe, replay=args.replay,
                                        calibrate_after=args.calibrate_after,
                                        calibrate_between=args.calibrate_between, load_basis=basis,
                                        system_file=args.system, log=lambda *a: print(*a, flush=True))
    print()
    print(report.format_table(report.all_records(results)))
    fp = experiment.machine_fingerprint(results)
    command = "python -m sim " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["validate"] \
        else "python -m sim validate ..."
    plots = report.write_plots(results, Path(args.plots) if args.plots else Path(args.out) / "plots")
    if args.json:
        print(f"wrote {report.write_json(args.json, results, fp, command)}")
    if args.report:
        print(f"wrote {report.write_markdown(args.report, results, fp, command, plots, json_path=args.json)}")
    print("plots: " + ", ".join(str(p) for p in plots))
    return 0
