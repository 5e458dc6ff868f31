"""Why a workload's Server predictions miss: service and issue measurements beside the model.

    python benchmarks/server_diagnosis.py [--workload dlrm] [--kept out/validation-report/validation_system]
        [--speed-trace | --only-speed-trace]

Prints four (or five) things the validation report's notes quote (docs/validation.md):

1. warm-up: after an idle gap, the cycles of the next few back-to-back batches on the
   harness's SUT code (the model charges an idle penalty to the first batch only);
2. LoadGen's completion path: back-to-back cycles under LoadGen Offline with fixed batches
   (the real model), beside the calibration's busy medians (measured with a stand-in for
   LoadGen), and the same with a model that does nothing (LoadGen's own cost per batch);
3. from the kept real Server runs of ``validate`` (if ``--kept`` has them): issue stalls
   (lag over 0.5 ms against LoadGen's schedule), back-to-back cycles against calibration;
4. a diagnosis, not a prediction: the simulator fed the real run's own batch times, beside
   the prediction (the calibration's cost for Server at the run's QPS) and LoadGen's
   measured p99 (how much of the miss is service time).

Runs at niceness -10 where allowed, like the calibration and the real runs. The dlrm
figures the report quotes come from one-pair dlrm runs (``--workload dlrm``: kept by
``python benchmarks/validation_report.py --system benchmarks/validation_system.yaml
--workload dlrm --doc out/dlrm-one-pair.md``); the report itself now runs MLPerf's sample
of 100 pairs (``--workload dlrm:pairs_per_sample=100``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STALL_NS = 500_000


def warm_up(cfg, gaps_ns=(30e3, 200e3, 2e6), batches=(1, 4), following: int = 5, reps: int = 300) -> None:
    from sim.validate.service_times import _respond_factory, _Sample, wait_ns
    from sim.validate.sut import WorkerSUT, make_executors
    ex = make_executors(cfg)[0]
    ex.warm_up()
    respond = _respond_factory()
    k = following + 1
    print("1. warm-up: handing over k batches at once after an idle gap (median us)")
    for b in batches:
        steady = None
        for gap in gaps_ns:
            ready = threading.Event()
            count = [0]

            def complete(_r, ready=ready, count=count):
                count[0] += 1
                if count[0] % k == 0:
                    ready.set()
            sut = WorkerSUT(replace(cfg, policy="fixed", max_batch=b), [ex], "Offline", complete, respond)
            sut.start()
            samples = [_Sample(i, i) for i in range(b * k)]
            for _ in range(reps):
                wait_ns(gap)
                ready.clear()
                sut.issue_queries(samples)
                ready.wait()
            sut.stop()
            a = sut.arrays()
            done = a["batch_done_ns"].reshape(-1, k)
            cb = a["cb_ns"][a["batch_first"]].reshape(-1, k)
            first = np.median(done[:, 0] - cb[:, 0]) / 1e3
            cycles = np.median(np.diff(done, axis=1), axis=0) / 1e3
            steady = cycles[-1] if steady is None else min(steady, cycles[-1])
            print(f"   batch {b}, gap {gap / 1e3:g} us: first (hand-over to done) {first:.0f}, "
                  f"next cycles {', '.join(f'{c:.0f}' for c in cycles)}")


def _cycles(samples: dict) -> np.ndarray:
    done = np.sort(samples["batch_done_ns"])
    return np.diff(done)[5:-5]


def loadgen_completion(cfg, model: str, cal, outdir: Path, batches=(1, 4, 8), seconds: float = 2.0) -> None:
    import time

    from sim.validate.process import run_in_subprocess
    from sim.validate.service_times import _respond_factory, _Sample
    from sim.validate.sut import WorkerSUT, make_executors
    print("2. LoadGen's completion path: back-to-back cycles, median us")
    respond = _respond_factory()
    for b in batches:
        if b > cfg.max_batch:
            continue
        c = replace(cfg, policy="fixed", max_batch=b)
        row = []
        for null in (False, True):
            where = outdir / f"offline_b{b}{'_null' if null else ''}"
            spec = {"config": c.to_dict(), "scenario": "Offline", "mlperf_model": model, "total_sample_count": 1024,
                    "overrides": {"offline_expected_qps": 200_000 if null else 1e9 / cal.cost.median_ns(1),
                                  "min_query_count": 1, "min_duration_ns": int(seconds * 1e9)},
                    "outdir": str(where), "null_model": null}
            run_in_subprocess("sim.validate.harness", spec, where, 600, nice=-10)
            row.append(np.median(_cycles(np.load(where / "samples.npz"))) / 1e3)
        # the same null model with a stand-in for LoadGen (as the calibration measures)
        ex = make_executors(c, null=True)
        total = 20_000 * b
        done = threading.Event()
        count = [0]

        def complete(rs, done=done, count=count, total=total):
            count[0] += len(rs)
            if count[0] >= total:
                done.set()
        sut = WorkerSUT(c, ex, "Offline", complete, respond)
        sut.start()
        t = time.perf_counter()
        sut.issue_queries([_Sample(i, i) for i in range(total)])
        done.wait(timeout=120)
        sut.stop()
        del t
        stand_in = np.median(_cycles(sut.arrays())) / 1e3
        print(f"   batch {b}: under LoadGen {row[0]:.0f} (calibration, stand-in: {cal.cost.median_ns(b) / 1e3:.0f}); "
              f"model that does nothing: LoadGen {row[1]:.2f}, stand-in {stand_in:.2f}")


def kept_runs(kept: Path, workload: str, cal, system_file: Path) -> None:
    from sim.cost.empirical import EmpiricalCost
    from sim.loadgen.settings import load_settings
    from sim.loadgen.traffic import generate
    from sim.run import simulate
    from sim.sut.system import load_system
    from sim.validate.service_times import back_to_back_cycles
    runs = sorted((kept / workload / "real").glob("Server_at_*/r*/spec.json"))
    if not runs:
        print(f"3./4. no kept Server runs under {kept / workload / 'real'}")
        return
    busy = {b: cal.cost.median_ns(b) for b in cal.cost.batch_sizes}
    system = cal.system_for("Server", load_system(system_file))
    print("3. kept real Server runs: issue stalls and back-to-back cycles / calibration busy median")
    print("4. simulator with the run's own batch times (diagnosis) vs predicted vs LoadGen's p99, ms")
    for spec_path in runs:
        spec = json.loads(spec_path.read_text())
        own = np.load(spec_path.parent / "samples.npz")
        st = load_settings(spec["mlperf_model"], "Server", overrides=spec["overrides"],
                           total_sample_count=spec["total_sample_count"])
        sched = generate(st).scheduled_ns
        cb = own["cb_ns"]
        n = min(len(cb), len(sched))
        lag = (cb[:n] - cb[0]) - (sched[:n] - sched[0])
        lag = lag - np.median(lag)
        stalled = lag > STALL_NS
        starts = np.flatnonzero(np.diff(stalled.astype(np.int8)) == 1) + 1
        peaks = [lag[s:s + (np.argmax(~stalled[s:]) or len(lag) - s)].max() / 1e6 for s in starts]
        secs = (sched[n - 1] - sched[0]) / 1e9
        cycles = back_to_back_cycles(own)
        ratios = {b: np.median(cycles[b]) / busy[b] for b in busy if len(cycles.get(b, ())) >= 10}
        tag = f"{spec_path.parent.parent.name}/{spec_path.parent.name}"
        print(f"   {tag}: {len(starts) / secs:.1f} stalls/s (median {np.median(peaks) if peaks else 0:.2f} ms, "
              f"longest {max(peaks) if peaks else 0:.1f} ms); cycle ratio "
              + ", ".join(f"b{b} {r:.2f}" for b, r in ratios.items()))
        durations = own["batch_done_ns"] - own["batch_start_ns"]
        counts = own["batch_count"]
        own_busy = {(b, 1): durations[counts == b] for b in busy if np.count_nonzero(counts == b) >= 3}
        if (1, 1) not in own_busy or len(own_busy) < len(busy):
            continue
        oracle = EmpiricalCost(own_busy, {(1, g): own_busy[(1, 1)] for g in cal.cost.gaps}, "the run's own batch times")
        p99 = []
        for cost in (oracle, cal.cost_for("Server", spec["overrides"].get("server_target_qps"))):
            r = simulate("Server", workload=workload, system=system, cost=cost, mlperf_model=spec["mlperf_model"],
                         overrides=spec["overrides"], seed=0, total_sample_count=spec["total_sample_count"],
                         auto_hints=False)
            p99.append(r.metrics.sample_latency.percentiles_ns["99.00"] / 1e6)
        lg = json.loads((spec_path.parent / "harness.json").read_text())["loadgen"]
        measured = lg.get("result_99.00_percentile_latency_ns")
        print(f"      p99: own batch times {p99[0]:.2f}, predicted {p99[1]:.2f}, LoadGen "
              f"{measured / 1e6 if measured else float('nan'):.2f}")


def speed_traces(kept: Path, workload: str, cal, system_file: Path, seconds: float = 20.0, seeds: int = 3) -> None:
    from sim.cost.speed_trace import SpeedTrace, TimeVaryingCost
    from sim.loadgen.settings import load_settings
    from sim.loadgen.traffic import generate
    from sim.sut.engine import simulate_open
    from sim.sut.system import load_system
    from sim.validate.service_times import _respond_factory, traffic_arrays
    from sim.validate.sut import make_executors
    loads = sorted((kept / workload / "real").glob("Server_at_*"))
    if not loads:
        print(f"5. no kept Server runs under {kept / workload / 'real'}")
        return
    executors = make_executors(cal.config)
    for ex in executors:
        ex.warm_up()
    system = cal.system_for("Server", load_system(system_file))
    print(f"5. speed over time from a {seconds:g} s stand-in run at each load's QPS; p99 / mean latency, ms")
    for folder in loads:
        specs = sorted(folder.glob("r*/spec.json"))
        spec = json.loads(specs[0].read_text())
        qps = float(spec["overrides"]["server_target_qps"])
        a = traffic_arrays(cal.config, executors, qps, seconds, 0, _respond_factory(), spin=False)
        trace = SpeedTrace.from_batches(a["batch_start_ns"], a["batch_end_ns"] - a["batch_start_ns"],
                                        a["batch_count"], f"stand-in run at {qps:.0f} QPS")
        if trace is None:
            print(f"   {folder.name}: stand-in run too short for a trace")
            continue
        print(f"   {folder.name} ({qps:,.0f} QPS): {100 * trace.share_slower(0.1):.0f}% of the time >10% slower, "
              f"{100 * trace.share_slower(0.2):.0f}% >20%, slowest bin x{trace.factors.max():.2f}")
        base = cal.cost_for("Server", qps)
        simulated = {}                  # the repeats share LoadGen's settings: simulate each once
        for spec_path in specs:
            spec = json.loads(spec_path.read_text())
            key = json.dumps([spec["overrides"], spec["total_sample_count"]], sort_keys=True)
            if key not in simulated:
                st = load_settings(spec["mlperf_model"], "Server", overrides=spec["overrides"],
                                   total_sample_count=spec["total_sample_count"])
                sched = generate(st).scheduled_ns
                figs = {}
                for name, cost in (("predicted", base), ("with trace", TimeVaryingCost(base, trace))):
                    p99, mean = [], []
                    for seed in range(seeds):
                        lat = simulate_open(system, cost, sched, 1, seed).sample_complete_ns - sched
                        p99.append(np.percentile(lat, 99) / 1e6)
                        mean.append(lat.mean() / 1e6)
                    figs[name] = (np.mean(p99), np.mean(mean))
                simulated[key] = figs
            figs = simulated[key]
            lg = json.loads((spec_path.parent / "harness.json").read_text())["loadgen"]
            print(f"      {spec_path.parent.name}: predicted {figs['predicted'][0]:.2f} / {figs['predicted'][1]:.3f}, "
                  f"with the trace {figs['with trace'][0]:.2f} / {figs['with trace'][1]:.3f}, LoadGen "
                  f"{lg['result_99.00_percentile_latency_ns'] / 1e6:.2f} / {lg['result_mean_latency_ns'] / 1e6:.3f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", default="dlrm")
    ap.add_argument("--kept", default=str(ROOT / "out" / "validation-report" / "validation_system"),
                    help="the validation report's kept runs and calibration for the system")
    ap.add_argument("--system", default=str(ROOT / "benchmarks" / "validation_system.yaml"))
    ap.add_argument("--out", default=str(ROOT / "out" / "server-diagnosis"))
    ap.add_argument("--speed-trace", action="store_true", help="also section 5 (a 20 s stand-in run per load)")
    ap.add_argument("--only-speed-trace", action="store_true", help="section 5 alone")
    a = ap.parse_args(argv)
    if importlib.util.find_spec("mlperf_loadgen") is None:
        print("needs the LoadGen extra: pip install -e '.[loadgen]'", file=sys.stderr)
        return 2
    try:
        os.nice(-10)
    except OSError:
        pass
    from sim.validate.machine_calibration import MachineCalibration
    cal_path = Path(a.kept) / a.workload / "calibration" / "calibration.json"
    if not cal_path.is_file():
        print(f"{cal_path}: no calibration; run benchmarks/validation_report.py first", file=sys.stderr)
        return 2
    cal = MachineCalibration.from_dict(json.loads(cal_path.read_text()), str(cal_path))
    from sim.validate.config import load_workload
    model = load_workload(a.workload).mlperf_model
    if not a.only_speed_trace:
        warm_up(cal.config)
        loadgen_completion(cal.config, model, cal, Path(a.out) / a.workload)
        kept_runs(Path(a.kept), a.workload, cal, Path(a.system))
    if a.speed_trace or a.only_speed_trace:
        speed_traces(Path(a.kept), a.workload, cal, Path(a.system))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
