"""Validation on models the project never tuned to: the zoo (``benchmarks/zoo_models.py``).

    python benchmarks/validation_zoo.py                      # both set-ups, every model (about 45 min)
    python benchmarks/validation_zoo.py --setup default      # onnxruntime's defaults only
    python benchmarks/validation_zoo.py --models mlp,gru     # some models
    python benchmarks/validation_zoo.py --replay             # re-simulate the kept real runs only

Each zoo model is written to ``<out>/models/`` and validated with ``python -m sim validate
--quick`` as a user would: calibration by microbenchmarks, one real LoadGen run of every
scenario, the simulated twins, the peak VALID Server QPS. Two set-ups:

- ``default``: what ``validate`` does without a system file (one worker, no batching,
  onnxruntime's own intra-op thread count, which fills every core);
- ``curated``: ``benchmarks/validation_system.yaml`` (one intra-op thread, dynamic batching
  up to 8), the set-up of the curated report.

Prints, per set-up and model, the median and worst |error| over the compared metrics and the
errors of the three headline metrics (Offline samples/s, SingleStream p90, peak VALID Server
QPS), then the median over all metrics of each set-up. ``--json FILE`` keeps every record.
Nothing is fitted to the compared runs: the predictions come from the calibrations alone.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sim.sut.system import SystemSpec, load_system  # noqa: E402  (after the path is set)
from sim.util.atomic import write_text  # noqa: E402
from sim.validate import LOAD_BASES, LOAD_BASES_HELP  # noqa: E402
from sim.validate.experiment import run_validation  # noqa: E402
from sim.validate.report import put_section  # noqa: E402

SECTION_START = "<!-- zoo-validation: written by python benchmarks/validation_zoo.py --report FILE -->"
SECTION_END = "<!-- zoo-validation: end -->"
SETUPS = {"default": None, "curated": ROOT / "benchmarks" / "validation_system.yaml"}
HEADLINE = (("Offline", "samples/s"), ("SingleStream", "p90 latency (ms)"), ("Server", "peak VALID QPS"))


def _zoo():
    spec = importlib.util.spec_from_file_location("zoo_models", ROOT / "benchmarks" / "zoo_models.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def headline_errors(records: list[dict]) -> dict:
    """The error (%) of each headline metric, by its short name (None where not compared)."""
    out = {}
    for scenario, metric in HEADLINE:
        hit = [r for r in records if r["scenario"] == scenario and r["metric"] == metric]
        out[f"{scenario} {metric}"] = hit[0]["error_pct"] if hit else None
    return out


def summary_row(model: str, records: list[dict]) -> dict:
    errs = [abs(r["error_pct"]) for r in records if np.isfinite(r["error_pct"])]
    worst = max(records, key=lambda r: abs(r["error_pct"]) if np.isfinite(r["error_pct"]) else -1)
    at_speed = [abs(r["error_at_run_speed_pct"]) for r in records
                if np.isfinite(r.get("error_at_run_speed_pct", np.nan))]
    return {"model": model, "metrics": len(errs), "median_abs_error_pct": float(np.median(errs)),
            "median_abs_error_at_run_speed_pct": float(np.median(at_speed)) if at_speed else None,
            "worst_abs_error_pct": float(max(errs)), "worst_metric": f"{worst['scenario']} {worst['metric']}",
            **headline_errors(records)}


def _fmt(x) -> str:
    return "-" if x is None else f"{x:+.1f}"


def print_table(setup: str, rows: list[dict], records: list[dict]) -> None:
    print(f"\n== {setup} set-up")
    print(f"{'model':<16} {'n':>3} {'median|e|%':>10} {'at speed':>8} {'worst|e|%':>9}  {'Offline':>8} {'SS p90':>8} "
          f"{'peak QPS':>8}  worst metric")
    for r in rows:
        h = [r[f"{s} {m}"] for s, m in HEADLINE]
        speed = r["median_abs_error_at_run_speed_pct"]
        print(f"{r['model']:<16} {r['metrics']:>3} {r['median_abs_error_pct']:>10.1f} "
              f"{'-' if speed is None else f'{speed:.1f}':>8} {r['worst_abs_error_pct']:>9.1f}"
              f"  {_fmt(h[0]):>8} {_fmt(h[1]):>8} {_fmt(h[2]):>8}  {r['worst_metric']}")
    errs = [abs(r["error_pct"]) for r in records if np.isfinite(r["error_pct"])]
    if errs:
        within = sum(1 for r in rows if all(abs(r[f"{s} {m}"]) <= 10 for s, m in HEADLINE
                                            if r[f"{s} {m}"] is not None))
        print(f"{setup}: {len(errs)} metrics over {len(rows)} models: median |error| {np.median(errs):.1f}%, "
              f"p90 {np.percentile(errs, 90):.1f}%; models with every headline metric within 10%: "
              f"{within}/{len(rows)}; models with median |error| <= 5%: "
              f"{sum(r['median_abs_error_pct'] <= 5 for r in rows)}/{len(rows)}")


def markdown_section(report: dict, command: str, notes: list[str]) -> str:
    """The zoo's section of the validation report: per set-up, a row per model."""
    lines = [SECTION_START, "## Models the project never tuned to (the zoo)", "",
             "Ten ONNX models built by `benchmarks/zoo_models.py` with onnx and numpy alone (none of the catalog's "
             "builders), from 0.04 ms to about 100 ms per sample, each validated with `validate --quick` as a user "
             "would (calibration by microbenchmarks, one real LoadGen run of every scenario, the peak VALID Server "
             "QPS). Errors are predicted minus measured, in % of measured; one real run per metric, so each error "
             "holds the machine's run-to-run spread as well as the model's error (see the noise floor above). "
             "`at the runs' speed` simulates each run at the speed its own batches ran (read from its batch log "
             "after the fact, a diagnostic, never the prediction): what remains there is the system model's error, "
             "the rest is the machine's speed in that run's process against the calibration's.", "",
             "What the system model holds for a CPU SUT as it runs (each a measurement of the calibration, none "
             "fitted to the compared runs):", "",
             "- scheduler stalls (`sim/cost/stalls.py`): when the model's intra-op threads fill every core, any "
             "other thread that runs stalls a parallel operator until the scheduler's next tick (1 to 9 ms, 1 to 3 "
             "a second on a quiet machine); taken out of the measured tables and drawn as a process in time at the "
             "rate seen over the whole calibration;",
             "- LoadGen's own work on the cores (`sim/validate/thread_cpu.py`, `loadgen_overhead`): each thread's "
             "CPU time in null-model LoadGen runs of each scenario; where the model fills the cores, a Server run "
             "lasts `t / (1 - qps x c)` for `c` ns of LoadGen work a query, an Offline batch of `b` samples `b x c` "
             "ns longer (`MachineCalibration.contention`); in the closed loops LoadGen works between runs;",
             "- the closed loop's gap: the stand-in issues the next query as soon as its thread wakes from the wait "
             "for the results, as LoadGen does (no thread spins in the gap);",
             "- the Server loads are fractions of the real peak VALID QPS (searched first): in the default set-up a "
             "small model's Server sustains far less than its Offline rate (LoadGen's 45 to 150 us of work a query "
             "against 0.04 to 1 ms of inference), and a run above its peak has a latency that grows with its "
             "length.", "",
             "```", command, "```", ""]
    for setup, got in report["setups"].items():
        rows, records = got["rows"], got["records"]
        errs = [abs(r["error_pct"]) for r in records if np.isfinite(r["error_pct"])]
        lines += [f"### {setup} set-up" + (" (no --system: one worker, onnxruntime's default threads, no batching)"
                                          if setup == "default" else f" (`{_rel(SETUPS[setup])}`)"), "",
                  "| model | metrics | median abs error % | at the runs' speed % | worst abs error % | Offline % "
                  "| SingleStream p90 % | peak VALID QPS % | worst metric |", "|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            h = [r[f"{s} {m}"] for s, m in HEADLINE]
            speed = r["median_abs_error_at_run_speed_pct"]
            lines.append(f"| {r['model']} | {r['metrics']} | {r['median_abs_error_pct']:.1f} | "
                         f"{'-' if speed is None else f'{speed:.1f}'} | "
                         f"{r['worst_abs_error_pct']:.1f} | {_fmt(h[0])} | {_fmt(h[1])} | {_fmt(h[2])} | "
                         f"{r['worst_metric']} |")
        if errs:
            lines += ["", f"All {len(errs)} metrics: median |error| {np.median(errs):.1f}%, 90th percentile "
                          f"{np.percentile(errs, 90):.1f}%.", ""]
    lines += ["### What is weak", ""] + [f"- {n}" for n in notes] + ["", SECTION_END]
    return "\n".join(lines) + "\n"


def _rel(path: Path) -> str:
    return str(Path(path).resolve().relative_to(ROOT))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--setup", choices=["default", "curated", "both"], default="both")
    ap.add_argument("--models", help="comma-separated zoo models (default: all)")
    ap.add_argument("--out", default=str(ROOT / "out" / "validation-zoo"))
    ap.add_argument("--replay", action="store_true", help="re-simulate the real runs and calibrations kept under --out")
    ap.add_argument("--quiet-wait-s", type=float, default=30.0,
                    help="wait up to this long before each real run for other processes to go quiet")
    ap.add_argument("--server-loads-of", choices=LOAD_BASES, default="peak", help=LOAD_BASES_HELP)
    ap.add_argument("--drift-probe", action=argparse.BooleanOptionalAction, default=None,
                    help="rescale each prediction by the speed probe made in the run's process before LoadGen starts "
                         "(default: as validate, on where every batch is of one sample)")
    ap.add_argument("--json", help="write every record and the summary rows here")
    ap.add_argument("--report", help="put the zoo's section into this markdown report (e.g. docs/validation.md)")
    ap.add_argument("--note", action="append", default=[], help="a line for the section's 'What is weak' list")
    args = ap.parse_args(argv)
    zoo = _zoo()
    names = args.models.split(",") if args.models else list(zoo.ZOO)
    unknown = [n for n in names if n not in zoo.ZOO]
    if unknown:
        ap.error(f"--models: unknown {unknown}; expected some of {list(zoo.ZOO)}")
    out = Path(args.out)
    paths = zoo.write_zoo(out / "models", names)
    setups = list(SETUPS) if args.setup == "both" else [args.setup]
    report = {"setups": {}}
    t0 = time.perf_counter()
    for setup in setups:
        system = load_system(SETUPS[setup]) if SETUPS[setup] else SystemSpec()
        rows, records = [], []
        for name in names:
            t = time.perf_counter()
            print(f"-- {setup}: {name}", file=sys.stderr, flush=True)
            result = run_validation([str(paths[name])], system, out / setup, quick=True, replay=args.replay,
                                    load_basis=args.server_loads_of, drift_probe=args.drift_probe,
                                    quiet_wait_s=args.quiet_wait_s, log=lambda *a, **k: None,
                                    system_file=_rel(SETUPS[setup]) if SETUPS[setup] else None)[0]
            for r in result["records"]:
                r["model"] = name
            records += result["records"]
            rows.append(summary_row(name, result["records"]))
            print(f"   {time.perf_counter() - t:.0f} s: median |error| {rows[-1]['median_abs_error_pct']:.1f}%",
                  file=sys.stderr, flush=True)
        print_table(setup, rows, records)
        report["setups"][setup] = {"rows": rows, "records": records}
    print(f"\n{time.perf_counter() - t0:.0f} s")
    if args.report:
        command = "python benchmarks/validation_zoo.py " + " ".join(argv if argv is not None else sys.argv[1:])
        print(f"wrote {put_section(args.report, markdown_section(report, command, args.note), SECTION_START, SECTION_END)}")
    if args.json:
        write_text(Path(args.json), json.dumps(report, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
