"""Do longer real runs repeat more closely? Real LoadGen Server runs at one QPS, at several lengths.

    python benchmarks/run_length_spread.py [--workload dlrm:pairs_per_sample=100] [--qps 78]
        [--seconds 20,120] [--repeats 6] [--bound-ms 120.7]
        [--system benchmarks/validation_system.yaml] [--nice -10] [--out out/run-length-spread]

The validation's Server latencies spread most from one real repeat to the next
(``sim.validate.noise_floor``): a perfect model misses the median of three 20-second runs by
more than 10% on some Server metric in almost every report. Whether that spread is set by the
run's length (a p99 from a few hundred queries, a slow spell of the machine covering much of
a short run) or by the machine whatever the length decides what a validation of this machine
can be held to. This script runs the validation harness (``sim.validate.harness``, the same
code and settings as the validation's real runs) at ``--qps`` for each length in
``--seconds``, ``--repeats`` rounds of one run of each length, the order rotating from one
round to the next so that a slow spell of minutes falls on each length alike; before each run
it waits up to 120 s for other processes to use under 0.35 cores.

Per run it prints LoadGen's p99 and mean latency, the queries, the CPU other processes used
and the median inference time per sample of the run's batches (the machine's speed during the
run). Per length: the spread of p99 and mean over the repeats ((max - min) / median, and the
standard deviation of log), and how often a perfect model (the median of that length's
runs' distribution) misses the median of 3 repeats drawn from them by more than 10%
(``noise_floor.oracle_errors``). Writes ``summary.json`` under ``--out``.

``--predict``: the system is also calibrated right before and right after the runs (the
validation's microbenchmarks, ``sim.validate.calibrate_cpu``, pooled at their median as the
validation pools its calibrations) and each length's runs are simulated with 3 seeds and the
same LoadGen settings (``compare.simulate_twin``): as the validation predicts Server
(``MachineCalibration.cost_for``: the busy times slowed under the stand-in's issue traffic), with the
ratios measured under LoadGen instead (``loadgen_ratios=True``), and with the busy and idle
times as measured; measured medians against predicted, nothing fitted to these runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sim.util import atomic  # noqa: E402  (after the path is set)


def spread(values) -> dict:
    """(max - min) / median in %, the standard deviation of log, and the perfect model's share
    of 3-repeat medians missed by more than 10% (5,000 draws, seed 0)."""
    from sim.validate import noise_floor
    v = np.asarray(values, dtype=np.float64)
    dev = noise_floor.log_deviations(v)
    miss = float("nan")
    if dev.size:
        miss = float(np.mean(noise_floor.oracle_errors({"m": dev}, 3, draws=5000)[:, 0] > 10.0))
    return {"median": float(np.median(v)), "spread_pct": float((v.max() - v.min()) / np.median(v) * 100),
            "sd_log": float(np.std(np.log(v), ddof=1)) if v.size > 1 else float("nan"),
            "oracle_miss_10pct_share": miss}


def calibrated(cfg, folder: Path, model: str, nice: int):
    """The validation's calibration of ``cfg``, as it makes it (quiet waits, disturbed parts again)."""
    from sim.validate.calibrate_cpu import calibrate
    from sim.validate.machine import wait_quiet
    wait_quiet(0.35, 120.0)
    return calibrate(cfg, folder, model, disturbed_cores=0.6, quiet_wait_s=120.0, retries=4, nice=nice)


def predictions(cal, system, args, model: str, lengths: list, measured: dict) -> dict:
    """Each length's runs simulated (3 seeds, LoadGen's settings and seeds), as the validation
    predicts Server and with the times as measured, against the measured medians."""
    from sim.validate.experiment import Validator, total_samples
    from sim.validate.twin import simulate_twin
    out = {}
    for seconds in lengths:
        overrides = {"min_duration_ns": int(seconds * 1e9), "min_query_count": 100, "server_target_qps": args.qps,
                     "server_target_latency_ns": int(args.bound_ms * 1e6)}
        row = {}
        variants = (("as the validation predicts", None),
                    ("with the LoadGen ratios", cal.cost_for("Server", args.qps, loadgen_ratios=True)),
                    ("busy and idle times as measured", cal.cost))
        for label, cost in variants:
            sims = [Validator.sim_summary(simulate_twin(cal, system, args.workload, model, total_samples(model),
                                                        "Server", overrides, seed, cost)) for seed in range(3)]
            for m, key in (("p99", "p99_ns"), ("mean", "mean_ns")):
                pred = float(np.mean([x[key] for x in sims])) / 1e6
                real = measured[f"{seconds:g}"][m]["median"]
                row[f"{m} {label}"] = {"predicted_ms": pred, "measured_ms": real,
                                       "error_pct": (pred - real) / real * 100.0}
                print(f"{seconds:g} s, {m} {label}: predicted {pred:.2f} ms, measured median {real:.2f} ms, "
                      f"error {(pred - real) / real * 100.0:+.1f}%")
        out[f"{seconds:g}"] = row
    return out


def predict_again(args) -> int:
    """``--predict-again``: the predictions of a finished ``--predict`` run under ``--out``."""
    from sim.loadgen.settings import canonical_model
    from sim.sut import system as system_mod
    from sim.validate.config import load_workload
    from sim.validate.machine_calibration import MachineCalibration
    out = Path(args.out).resolve()
    path = out / "summary.json"
    if not path.is_file():
        raise SystemExit(f"{path}: no finished run to predict again; run with --predict first")
    summary = json.loads(path.read_text())
    names = ("calibration_before", "calibration_after")
    missing = [n for n in names if not (out / n / "calibration.json").is_file()]
    if missing:
        raise SystemExit(f"{out}: no {', '.join(missing)}/calibration.json; the run was made without --predict")
    cal = MachineCalibration.pooled([MachineCalibration.from_dict(json.loads((out / n / "calibration.json").read_text()), n)
                              for n in names])
    args.workload, args.qps = summary["workload"], summary["qps"]
    args.bound_ms = summary.get("bound_ms", args.bound_ms)
    model = canonical_model(load_workload(args.workload).mlperf_model, allow_unknown_model=True)
    lengths = [float(x) for x in summary["lengths"]]
    summary["predicted"] = predictions(cal, system_mod.load_system(args.system), args, model, lengths,
                                       summary["lengths"])
    atomic.write_text(path, json.dumps(summary, indent=1) + "\n")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", default="dlrm:pairs_per_sample=100")
    ap.add_argument("--system", default=str(ROOT / "benchmarks" / "validation_system.yaml"))
    ap.add_argument("--qps", type=float, default=78.0)
    ap.add_argument("--seconds", default="20,120", help="comma-separated run lengths (default: %(default)s)")
    ap.add_argument("--repeats", type=int, default=6, help="rounds of one run per length")
    ap.add_argument("--bound-ms", type=float, default=120.7,
                    help="Server latency bound (only decides VALID; default: the validation's for dlrm)")
    ap.add_argument("--nice", type=int, default=-10)
    ap.add_argument("--out", default=str(ROOT / "out" / "run-length-spread"))
    ap.add_argument("--predict", action="store_true",
                    help="calibrate before and after the runs and simulate them (see the module docstring)")
    ap.add_argument("--predict-again", action="store_true",
                    help="no runs: simulate the runs and calibrations kept under --out again")
    args = ap.parse_args(argv)
    try:
        lengths = [float(x) for x in args.seconds.split(",")]
    except ValueError:
        ap.error(f"--seconds {args.seconds!r}: expected comma-separated seconds, e.g. 20,120")
    if min(lengths) <= 0 or args.repeats < 2 or args.qps <= 0:
        ap.error(f"--seconds {args.seconds!r}, --repeats {args.repeats}, --qps {args.qps:g}: expected positive "
                 f"lengths, at least 2 repeats and a positive QPS")

    if args.predict_again:
        return predict_again(args)
    from sim.loadgen.settings import canonical_model
    from sim.sut import system as system_mod
    from sim.validate import require_loadgen
    from sim.validate.config import load_workload, realise
    from sim.validate.experiment import total_samples
    from sim.validate.machine import wait_quiet
    from sim.validate.process import run_in_subprocess
    require_loadgen()
    system = system_mod.load_system(args.system)
    cfg = realise(system, args.workload, False)
    model = canonical_model(load_workload(args.workload).mlperf_model, allow_unknown_model=True)
    out = Path(args.out).resolve()
    cals = [calibrated(cfg, out / "calibration_before", model, args.nice)] if args.predict else []
    runs = []
    print(f"{args.workload}: {cfg.describe()}; Server at {args.qps:g} QPS, lengths {args.seconds} s, "
          f"{args.repeats} rounds")
    print(f"{'round':>5s} {'length s':>8s} {'queries':>7s} {'p99 ms':>8s} {'mean ms':>8s} {'valid':>5s} "
          f"{'others cores':>12s} {'ms/sample':>9s}")
    for k in range(args.repeats):
        order = lengths[k % len(lengths):] + lengths[:k % len(lengths)]
        for seconds in order:
            waited, _ = wait_quiet(0.35, 120.0)
            folder = out / f"round{k + 1}" / f"{seconds:g}s"
            spec = {"config": cfg.to_dict(), "scenario": "Server", "mlperf_model": model,
                    "overrides": {"min_duration_ns": int(seconds * 1e9), "min_query_count": 100,
                                  "server_target_qps": args.qps,
                                  "server_target_latency_ns": int(args.bound_ms * 1e6)},
                    "outdir": str(folder), "total_sample_count": total_samples(model), "probe_s": 0.0}
            t0 = time.time()
            res = run_in_subprocess("sim.validate.harness", spec, folder, 600.0 + 20 * seconds, nice=args.nice)
            with np.load(folder / "samples.npz") as z:
                per_sample = (z["batch_end_ns"] - z["batch_start_ns"]) / np.maximum(z["batch_count"], 1)
            lg = res["loadgen"]
            row = {"round": k + 1, "seconds": seconds, "started_utc": time.strftime("%H:%M:%S", time.gmtime(t0)),
                   "waited_s": waited, "queries": res["samples_issued"],
                   "p99_ms": float(lg["result_99.00_percentile_latency_ns"]) / 1e6,
                   "mean_ms": float(lg["result_mean_latency_ns"]) / 1e6, "valid": res["valid"],
                   "foreign_cores": res["machine"].get("foreign_cores_mean"),
                   "ms_per_sample": float(np.median(per_sample)) / 1e6}
            runs.append(row)
            print(f"{row['round']:5d} {seconds:8g} {row['queries']:7d} {row['p99_ms']:8.2f} {row['mean_ms']:8.2f} "
                  f"{str(row['valid']):>5s} {row['foreign_cores'] or 0:12.2f} {row['ms_per_sample']:9.3f}",
                  flush=True)
    summary = {"workload": args.workload, "system": cfg.describe(), "qps": args.qps, "bound_ms": args.bound_ms,
               "runs": runs, "lengths": {}}
    for seconds in lengths:
        mine = [r for r in runs if r["seconds"] == seconds]
        summary["lengths"][f"{seconds:g}"] = {m: spread([r[f"{m}_ms"] for r in mine]) for m in ("p99", "mean")}
        summary["lengths"][f"{seconds:g}"]["ms_per_sample"] = spread([r["ms_per_sample"] for r in mine])
        for m in ("p99", "mean", "ms_per_sample"):
            s = summary["lengths"][f"{seconds:g}"][m]
            print(f"{seconds:g} s, {m}: median {s['median']:.2f}, spread {s['spread_pct']:.1f}%, sd of log "
                  f"{s['sd_log']:.3f}, a perfect model misses the median of 3 by > 10% in "
                  f"{s['oracle_miss_10pct_share']:.0%} of draws")
    if args.predict:
        from sim.validate.machine_calibration import MachineCalibration
        cal = MachineCalibration.pooled(cals + [calibrated(cfg, out / "calibration_after", model, args.nice)])
        summary["predicted"] = predictions(cal, system, args, model, lengths, summary["lengths"])
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_text(out / "summary.json", json.dumps(summary, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
