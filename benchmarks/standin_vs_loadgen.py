"""Does the calibration's stand-in for LoadGen's Server traffic slow batches as LoadGen does?

    python benchmarks/standin_vs_loadgen.py [--workload dlrm:pairs_per_sample=100] [--qps 48]
        [--seconds 12] [--pairs 3] [--system benchmarks/validation_system.yaml] [--nice -10]
        [--out out/standin-vs-loadgen]

The calibration (``sim.validate.calibrate_cpu``) measures how much slower batches run while
queries keep arriving with a Python thread that issues Poisson queries through the harness's
SUT (the *stand-in*), not with LoadGen. If LoadGen's own threads (its issue thread, its
logging thread, the pybind hand-over) slowed the model more than the stand-in's thread does,
every Server prediction would come out fast by that much.

This script runs, in alternation, ``--pairs`` pairs of:

- a real LoadGen Server run at ``--qps`` through the validation harness
  (``sim.validate.harness``, the same code and settings as the validation's runs);
- the stand-in at the same rate for the same time (``service_times.traffic_arrays``), in
  a fresh process, followed by busy batch-1 runs (the pair's reference: the median
  completion-to-completion cycle of batches queued back to back);

the LoadGen run first in odd pairs, the stand-in first in even ones. The LoadGen runs'
latency bound (``--bound-ms``, default 1 s) only decides VALID: with no queue delay it
does not change what the SUT does.

Both write the harness's batch log; per run it prints the median inference time of batch-1
batches and the median back-to-back cycle of batch-1 batches, each over the pair's busy
cycle (the inference time leaves out the worker's own overhead, which the cycle holds, so
only the cycle ratio is like for like; the LoadGen-over-stand-in ratios of either cancel the
reference). The machine's speed moves by 10% or more between windows of seconds, so what
tells LoadGen from the stand-in is whether the LoadGen run of each pair is consistently
slower than its stand-in, not one pair's ratio. One worker only (``instances: 1``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def ratios(arrays: dict, reference_ns: float) -> dict:
    """Median batch-1 inference time and back-to-back batch-1 cycle over ``reference_ns``."""
    from sim.validate.service_times import back_to_back_cycles
    one = arrays["batch_count"] == 1
    took = (arrays["batch_end_ns"] - arrays["batch_start_ns"])[one]
    cycles = back_to_back_cycles(arrays).get(1, [])
    return {"batches": int(len(one)), "batch1": int(one.sum()), "back_to_back1": len(cycles),
            "inference": float(np.median(took) / reference_ns) if len(took) else float("nan"),
            "cycle": float(np.median(cycles) / reference_ns) if cycles else float("nan")}


def child(spec_path: str) -> int:
    """The stand-in side, in its own process: traffic, then the busy reference."""
    from sim.validate import service_times as cc
    from sim.validate.config import HarnessConfig
    from sim.validate.sut import make_executors
    spec = json.loads(Path(spec_path).read_text())
    cfg = HarnessConfig.from_dict(spec["config"])
    executors = make_executors(cfg, seed=0)
    for ex in executors:
        ex.warm_up()
    respond = cc._respond_factory()
    arrays = cc.traffic_arrays(cfg, executors, spec["qps"], spec["seconds"], spec["seed"], respond)
    reference = {1: float(np.median(cc._busy(cfg, executors, 1, 0.6, 8, 200, respond)))}
    np.savez_compressed(Path(spec["out"]) / "samples.npz", **arrays)
    Path(spec["out"], "reference.json").write_text(json.dumps(reference) + "\n")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", default="dlrm:pairs_per_sample=100")
    ap.add_argument("--system", default=str(ROOT / "benchmarks" / "validation_system.yaml"))
    ap.add_argument("--qps", type=float, default=48.0)
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--nice", type=int, default=-10)
    ap.add_argument("--bound-ms", type=float, default=1000.0, help="Server latency bound of the LoadGen runs")
    ap.add_argument("--out", default=str(ROOT / "out" / "standin-vs-loadgen"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args.child)

    from sim.loadgen.settings import canonical_model
    from sim.sut import system as system_mod
    from sim.validate import require_loadgen
    from sim.validate.config import load_workload, realise
    from sim.validate.experiment import total_samples
    from sim.validate.process import _niceness, child_env, run_in_subprocess
    require_loadgen()
    cfg = realise(system_mod.load_system(args.system), args.workload, False)
    if cfg.instances != 1:
        raise SystemExit(f"{args.system}: instances = {cfg.instances}: this benchmark compares one worker's "
                         f"batches; expected a system with instances: 1")
    model = canonical_model(load_workload(args.workload).mlperf_model, allow_unknown_model=True)
    out = Path(args.out).resolve()
    rows = []
    print(f"{args.workload}: {cfg.describe()}; {args.pairs} pairs at {args.qps:g} QPS, {args.seconds:g} s each")
    print(f"{'pair':>4s} {'side':9s} {'batches':>7s} {'b2b b=1':>7s} {'inference/busy cycle':>20s} "
          f"{'b2b cycle/busy cycle':>20s}")
    for k in range(args.pairs):
        lg_dir, si_dir = out / f"pair{k + 1}" / "loadgen", out / f"pair{k + 1}" / "standin"
        spec = {"config": cfg.to_dict(), "scenario": "Server", "mlperf_model": model,
                "overrides": {"min_duration_ns": int(args.seconds * 1e9), "min_query_count": 100,
                              "server_target_qps": args.qps, "server_target_latency_ns": int(args.bound_ms * 1e6)},
                "outdir": str(lg_dir), "total_sample_count": total_samples(model), "probe_s": 0.0}
        si_dir.mkdir(parents=True, exist_ok=True)
        child_spec = {"config": cfg.to_dict(), "qps": args.qps, "seconds": args.seconds, "seed": k,
                      "out": str(si_dir)}
        (si_dir / "spec.json").write_text(json.dumps(child_spec) + "\n")

        def standin():
            proc = subprocess.run([sys.executable, __file__, "--child", str(si_dir / "spec.json")],
                                  env=child_env(), capture_output=True, text=True,
                                  timeout=600.0 + 20 * args.seconds, preexec_fn=_niceness(args.nice))
            if proc.returncode:
                raise SystemExit(f"stand-in run failed in {si_dir}:\n{proc.stderr[-2000:]}")

        def loadgen():
            run_in_subprocess("sim.validate.harness", spec, lg_dir, 600.0 + 20 * args.seconds, nice=args.nice)
        # which side runs first alternates, so a drift within a pair favours neither
        for side in ((loadgen, standin) if k % 2 == 0 else (standin, loadgen)):
            side()
        reference = json.loads((si_dir / "reference.json").read_text())["1"]
        pair = {}
        for side, folder in (("loadgen", lg_dir), ("stand-in", si_dir)):
            with np.load(folder / "samples.npz") as z:
                r = ratios({name: z[name] for name in z.files}, reference)
            pair[side] = r
            print(f"{k + 1:4d} {side:9s} {r['batches']:7d} {r['back_to_back1']:7d} {r['inference']:20.3f} "
                  f"{r['cycle']:20.3f}")
        rows.append(pair)
    for key, label in (("inference", "batch-1 inference"), ("cycle", "back-to-back batch-1 cycle")):
        each = [p["loadgen"][key] / p["stand-in"][key] for p in rows]
        print(f"LoadGen over stand-in, {label}: " + ", ".join(f"{x:.3f}" for x in each)
              + f" (median {np.median(each):.3f})")
    (out / "summary.json").write_text(json.dumps({"workload": args.workload, "qps": args.qps,
                                                  "seconds": args.seconds, "pairs": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
