"""Regenerate docs/validation.md: predictions against real onnxruntime + LoadGen runs.

    python benchmarks/validation_report.py              # the full report (about 2.5 h)
    python benchmarks/validation_report.py --quick      # a few minutes, to check the machinery

For each (system, workload) of ``PLAN`` (five shapes: a residual CNN, a depthwise CNN, a
detector, a transformer, a recommender, on the main system; two of them also with
onnxruntime's default threading), ``sim.validate`` calibrates the system with
microbenchmarks, runs every MLPerf scenario for real (three repeats) and simulated, and
compares. Each result is kept in ``out/validation-report/<system>/<workload>/result.json``;
``--reuse`` assembles the report from the kept results of the workloads not named in
``--rerun`` (so one noisy workload can be run again without the others). Writes
docs/validation.md, docs/validation.json and the plots under docs/validation/.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORKLOADS = [
    "resnet50:resolution=112",       # residual CNN (112x112 keeps MultiStream's 662 queries short)
    "mobilenet_v1",                  # depthwise-separable CNN, 224x224
    "ssd_mobilenet_v1:resolution=224",   # detector, many outputs
    "bert_base:seq_len=8",           # transformer encoder, int64 inputs, a short sequence
    "dlrm:pairs_per_sample=100",     # recommender: embeddings + MLPs; an MLPerf sample is 100-700 user-item pairs
]
#: (system file, workloads): the main system for all five, onnxruntime's default threading for two
PLAN = [
    ("benchmarks/validation_system.yaml", WORKLOADS),
    ("benchmarks/validation_system_2threads.yaml", ["mobilenet_v1", "bert_base:seq_len=8"]),
]


def _rel(path) -> str:
    p = Path(path).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(path)


def slug(ref: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in ref)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short runs, one repeat (not for the report)")
    ap.add_argument("--workload", action="append", help="only these (default: the plan above)")
    ap.add_argument("--system", action="append", help="only these system files (default: the plan above)")
    ap.add_argument("--out", default=str(ROOT / "out" / "validation-report"))
    ap.add_argument("--reuse", action="store_true", help="keep finished workloads' results")
    ap.add_argument("--rerun", action="append", default=[], help="with --reuse: run this workload again")
    ap.add_argument("--doc", default=str(ROOT / "docs" / "validation.md"))
    ap.add_argument("--quiet-wait-s", type=float, default=None)
    ap.add_argument("--replay", action="store_true",
                    help="no real runs: re-simulate from the real runs and calibrations kept under --out")
    ap.add_argument("--drift-probe", action="store_true",
                    help="rescale each prediction by the run's one-second speed probe (off by default)")
    ap.add_argument("--nice", type=int, default=-10,
                    help="niceness change of the measuring processes (default -10: on a shared machine other "
                         "processes take less CPU from the runs; 0 to turn off)")
    args = ap.parse_args(argv)

    from sim.system import load_system
    from sim.validate import compare, report

    plan = [(ROOT / f, ws) for f, ws in PLAN]
    if args.system:
        plan = [(Path(f).resolve(), args.workload or WORKLOADS) for f in args.system]
    elif args.workload:
        plan = [(f, [w for w in ws if w in args.workload]) for f, ws in plan]
    results = []
    for system_file, workloads in plan:
        system = load_system(system_file)
        out = Path(args.out) / Path(system_file).stem
        for w in workloads:
            kept = out / slug(w) / "result.json"
            if args.reuse and kept.exists() and w not in args.rerun:
                print(f"== {w} on {system.name}: reusing {kept}", flush=True)
                results.append(json.loads(kept.read_text()))
                continue
            (res,) = compare.run_validation([w], system, out, quick=args.quick, quiet_wait_s=args.quiet_wait_s,
                                            nice=args.nice, log=lambda *a: print(*a, flush=True),
                                            drift_probe=args.drift_probe, replay=args.replay)
            kept.parent.mkdir(parents=True, exist_ok=True)
            kept.write_text(json.dumps(report._clean(res)) + "\n")
            results.append(res)
            print(report.format_table(res["records"]), flush=True)

    print()
    print(report.format_table(report.all_records(results)))
    doc = Path(args.doc)
    fp = compare.machine_fingerprint(results)
    command = "python benchmarks/validation_report.py" + "".join(f" {shlex.quote(a)}" for a in (argv or sys.argv[1:]))
    plots = report.write_plots(results, doc.parent / doc.stem)
    json_path = doc.with_suffix(".json")
    report.write_json(json_path, results, fp, command)
    notes = NOTES + ["System files: " + ", ".join(f"`{_rel(f)}` ({load_system(f).name})" for f, _ in plan) + "."]
    report.write_markdown(doc, results, fp, command, plots, notes=notes, json_path=_rel(json_path))
    print(f"wrote {doc}, {json_path} and {len(plots)} plots")
    return 0


NOTES = [
    "How this report was made: the real runs and calibrations with `python benchmarks/validation_report.py "
    "--system benchmarks/validation_system.yaml` (89 minutes on 2026-11-24); the predictions re-simulated from "
    "those kept runs with `--replay` once the speed probe was taken out of the predictions (see below); dlrm "
    "calibrated and run again (17 minutes) with `--reuse --rerun dlrm`, twice: once the calibration measured "
    "idle times after a 30 us gap, and again once it measured busy cycles under issue traffic (below); "
    "ssd_mobilenet_v1 and resnet50 calibrated and run again the same way (18 and 21 minutes) after that "
    "(resnet50's traffic measurement: 0.98 to 1.01 times the busy cycles at 13, 25 and 38 QPS; its worst "
    "error went from -6.6% to -7.8%, Server p99 at 85% load, real spread 7.2%). mobilenet_v1 and bert_base "
    "were calibrated and run again the same way (37 minutes for both): bert_base's worst error went from 4.9% "
    "to 5.1%; mobilenet_v1's median from 0.8% to 7.9% and worst from 3.5% to 18.2% (Server p99 at 30% load, "
    "real spread 15.4%), its traffic measurement slowing busy cycles by at most 1%. In those real runs the "
    "machine ran about 3% slower than during calibration (capacity 83.9 samples/s measured, 86.3 expected) and "
    "the repeats spread more (median 5.9% against 2.4% before): the same pipeline on the same workload moved "
    "its error that much between two runs on this VM. Then dlrm's workload became MLPerf's sample of 100 "
    "user-item pairs (`dlrm:pairs_per_sample=100`, below), calibrated and run with `--reuse` (19 minutes), and "
    "mobilenet_v1 was calibrated and run once more (`--reuse --rerun mobilenet_v1`, 17 minutes): median error "
    "7.9% to 5.1%, worst 18.2% to 14.5% (Server mean latency at 85% load -14.5%, real spread 21.1%; p99 at 30% "
    "load -18.2% to -9.2%). In both of its last two runs mobilenet_v1 ran slower under LoadGen than in its "
    "calibration (Offline 83.9 and 82.9 samples/s measured against 86.3 and 86.7 expected: batches of 8 took "
    "96.9 ms against 91.7 ms busy in the calibration) while the speed probe before each run read 0.98 to 1.04 "
    "of the calibration's; every mobilenet_v1 prediction is on the fast side (SingleStream -4.2%, MultiStream "
    "-5.4%, Offline +5.1%), and at 85% load a 5% faster service becomes 13 to 15% lower latencies. The other "
    "four workloads show no such gap (Offline within -2.3 to +1.3%). `python benchmarks/server_diagnosis.py "
    "--workload mobilenet_v1`, run afterwards in its own process, found the gap outside LoadGen too: batches "
    "of 4 back to back took 47.4 ms under LoadGen and 47.4 to 48.1 ms on the harness's SUT code alone, against "
    "45.5 ms busy in the calibration (batch 1: 11.9 to 12.3 ms against 11.87 ms), so the calibration's "
    "process ran mobilenet_v1's larger batches about 4% faster than other processes did. mobilenet_v1 was then "
    "calibrated and run a third time (`--reuse --rerun mobilenet_v1`, 18 minutes), the first runs to record the "
    "speed probe at the largest batch too: median error 5.1% to 7.0%, worst 14.5% to 14.2% (Server p99 at 30% "
    "load +14.2%, real spread 16.0%). This time the calibration ran slow (batch 8 busy 97.2 ms against 91.7 ms "
    "before; capacity 82.1 samples/s expected, 81.4 measured: Offline +1.0%), its traffic measurement read x1.18 "
    "for batch 1 at 21 QPS (1.00 to 1.01 in the two runs before), which is what makes Server at 30% load come out "
    "slow, and the real repeats spread more (Server p99 at 60% load 89%). Across these runs the probe at batch 8 "
    "read 0.93 to 1.07 of the calibration's and the batch-1 probe 0.98 to 1.15, while Offline ran within 1% of "
    "the calibration: neither probe follows the runs' own speed, so neither enters the predictions. The "
    "machine's speed for mobilenet_v1's batches moves by about 5% from one window of minutes to the next, and "
    "at 85% load that becomes 10 to 15% in latency. "
    "The kept runs are under "
    "out/validation-report/ on the machine that ran them.",
    "Each real run is its own process (LoadGen reads its mlperf.conf once per process) with LoadGen's "
    "seeds; the simulated run replays LoadGen's exact traffic (same queries, same sample indices, same "
    "Server arrival times) through the calibrated system model, averaged over 3 seeds of the resampled "
    "service times per real repeat.",
    "The calibration (service times of every batch size busy and after idle gaps, back-to-back cycles while a "
    "thread issues single queries on a seeded Poisson schedule at 25, 50 and 75% of the max-batch capacity, "
    "LoadGen's issue overhead with a model that only sleeps) is measured before the validation runs and never "
    "fitted to them. Server's busy times are the measured ones times the slowdown under traffic at the run's "
    "target QPS, per batch size, linear in the rate between the measured rates (`Calibration.cost_for`). Each "
    "real run also starts with a one-second speed probe (batch-1 runs back to back) compared with the same "
    "probe during calibration; its ratio is recorded per run (probe_drift in docs/validation.json) but does "
    "not enter the predictions (`--drift-probe` would rescale them by it): on bert_base the probe read up "
    "to +11% where the run's own batches ran +2 to 4% slower and batch 8 not slower. Calibrations and runs "
    "made since record the same probe at the largest batch too (probe_drift_max: recorded, not used); the kept "
    "runs of this report predate it.",
    "Run lengths: SingleStream 15 s (>= 200 queries), MultiStream >= 662 queries (p99 early stopping), "
    "Offline 15 s, Server 20 s per load, peak search trials 20 s bisected to 2%. The Server latency bound "
    "is 20x the idle batch-1 service time (at least 2 ms), not the MLPerf bound of the model, which this "
    "CPU cannot meet for some and meets trivially for others.",
    "The machine is a shared 2-core VM (other sessions run tests and benchmarks on it). Against that: "
    "the measuring processes (calibration and real runs) run at niceness -10, so other processes take less "
    "CPU from them; before every real run the harness waits up to 120 s for other processes to use < 0.35 "
    "cores; a run during which they used > 0.6 cores on average is made again (up to twice, the least "
    "disturbed attempt is kept). The CPU other processes used is recorded with every run.",
    "DLRM's sample. In MLPerf Inference a DLRM sample is one user's query: the reference harness aggregates "
    "100 to 700 user-item pairs into each LoadGen sample. This report first ran a sample of one pair (`dlrm`: "
    "0.16 to 0.45 ms per batch of 1 to 8), where LoadGen's and the machine's stalls are the size of the "
    "service times: SingleStream p90 -0.1%, MultiStream p99 -14.4%, Offline +4.8%, Server p99 -19.2, -53.2 "
    "and -74.1% and mean -6.3, -12.5 and -30.4% at 30, 60 and 85% load, peak VALID QPS +15.5% (real spread "
    "up to 238%). What `benchmarks/server_diagnosis.py` found in those runs: the worker ran back-to-back "
    "batches 1.03 to 1.39 times slower while queries kept arriving (the calibration's traffic measurement "
    "saw 1.04 to 1.12); LoadGen's issue stalled 2.3 to 3.6 times a second (median stall 1.0 to 1.4 ms, longest "
    "7.7 to 13.6 ms; `benchmarks/loadgen_issue_lag.py` reproduces such stalls only with a busy second core, "
    "not with the interpreter lock); and at 85% load the worst 1% of samples came from two to four slow phases "
    "of the machine a run (100 to 400 ms of batches 15 to 35% slower, during which the queue outgrew what the "
    "phase lasted). `sim.speed_trace` models such phases (`SpeedTrace`, `TimeVaryingCost`, tested against "
    "Pollaczek-Khinchine over two speed phases); two stand-in traces of 20 s gave p99 3.9 and 25.4 ms at 85% "
    "load against LoadGen's 6.1 to 23.2 ms, as noisy as the metric, so predictions do not use one. With "
    "MLPerf's sample of 100 pairs (`dlrm:pairs_per_sample=100`, 6.0 ms per sample, 46.7 ms per batch of 8), "
    "the same harness, model and calibration put every dlrm metric within 7.6% (peak VALID QPS +7.6%, real "
    "spread 8.9%; Server p99 at 85% load -7.1%, spread 13.3%). Other effects `server_diagnosis.py` measured on "
    "the one-pair runs and the model leaves out: after a 2 ms idle gap the next five batch-1 cycles took 195, "
    "173, 166, 164 and 164 us against 161 busy (the model charges the idle penalty to the first batch only); "
    "LoadGen's completion call costs about 0.4 to 1.1 us a batch.",
    "ssd_mobilenet_v1: before its rerun, its Server latencies came out 5 to 20% low at 60 and 85% load (mean "
    "latency at 85% load -20.0%, real spread 5.7%) while its other scenarios were within 2.3%; its Server "
    "batches then ran 1 to 6% longer than the calibration's back-to-back batches of the same size. In the rerun "
    "its traffic measurement slowed busy cycles by at most 1% (at 19, 37 and 56 QPS) and every metric is within "
    "4.5% (mean latency at 85% load -4.2%, real spread 9.3%): the change is the new real runs, not the model.",
    "`measured` is the median of 3 real repeats; the spread (max - min over the median) is printed next "
    "to each error: an error inside the spread is noise, not model error.",
]


if __name__ == "__main__":
    raise SystemExit(main())
