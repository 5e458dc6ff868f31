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
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sim.validate import LOAD_BASES, LOAD_BASES_HELP  # noqa: E402  (after the path is set)

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


def _utc(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _commit() -> str:
    """The commit the report is written from ('+changes' when sim/ or benchmarks/ differ from it)."""
    def git(*a):
        return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    head = git("rev-parse", "--short", "HEAD")
    return (head + ("+changes" if git("status", "--porcelain", "--", "sim", "benchmarks") else "")) if head else ""


def method(load_basis: str, quick: bool) -> str:
    """How the runs of a report are made, recorded with the report in its history."""
    return ("3 calibrations (before, between rounds 2 and 3, after) pooled at their median; 3 repeats in rounds; "
            + ("Server loads of the real peak VALID QPS" if load_basis == "peak"
               else "Server loads of the Offline capacity") + (" (--quick)" if quick else ""))


def slug(ref: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in ref)


def runs_machine(results: list[dict], here: dict) -> dict:
    """The fingerprint of the machine the results' real runs ran on (kept with each result);
    ``here``, this machine's, for results kept before they recorded it. Results from machines
    of different fingerprints are refused: one report describes one machine."""
    fps = {r["fingerprint"]["hash"]: r["fingerprint"] for r in results if r.get("fingerprint")}
    if len(fps) > 1:
        raise SystemExit("validation results from machines of different fingerprints ("
                         + ", ".join(f"{r['workload']}: {r['fingerprint']['hash']}" for r in results
                                     if r.get("fingerprint")) + "); expected one machine per report")
    return next(iter(fps.values())) if fps and all(r.get("fingerprint") for r in results) else here


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
    ap.add_argument("--server-loads-of", choices=LOAD_BASES, default="peak",
                    help=LOAD_BASES_HELP)
    ap.add_argument("--nice", type=int, default=-10,
                    help="niceness change of the measuring processes (default -10: on a shared machine other "
                         "processes take less CPU from the runs; 0 to turn off)")
    args = ap.parse_args(argv)

    from sim.sut.system import load_system
    from sim.validate import experiment, history, noise_floor, report

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
                res = json.loads(kept.read_text())
                # results kept before runs recorded their end: the file was written when they ended
                res.setdefault("finished_utc", _utc(kept.stat().st_mtime))
                results.append(res)
                continue
            (res,) = experiment.run_validation([w], system, out, quick=args.quick, quiet_wait_s=args.quiet_wait_s,
                                            nice=args.nice, log=lambda *a: print(*a, flush=True),
                                            drift_probe=args.drift_probe, replay=args.replay,
                                            load_basis=args.server_loads_of)
            res["finished_utc"], res["runs_commit"] = _utc(time.time()), _commit()
            res["fingerprint"] = experiment.machine_fingerprint([res])
            kept.parent.mkdir(parents=True, exist_ok=True)
            kept.write_text(json.dumps(report._clean(res)) + "\n")
            results.append(res)
            print(report.format_table(res["records"]), flush=True)

    print()
    print(report.format_table(report.all_records(results)))
    doc = Path(args.doc)
    fp = runs_machine(results, experiment.machine_fingerprint(results))
    command = "python benchmarks/validation_report.py" + "".join(f" {shlex.quote(a)}" for a in (argv or sys.argv[1:]))
    plots = report.write_plots(results, doc.parent / doc.stem)
    json_path = doc.with_suffix(".json")
    report.write_json(json_path, results, fp, command)
    notes = NOTES + ["System files: " + ", ".join(f"`{_rel(f)}` ({load_system(f).name})" for f, _ in plan) + "."]
    now = history.entry(results, method(args.server_loads_of, args.quick), _commit(), command)
    entries = history.update(doc.with_name(doc.stem + "_history.json"), now)
    lengths = asdict(experiment.QUICK if args.quick else experiment.Durations())
    report.write_markdown(doc, results, fp, command, plots, notes=notes, json_path=_rel(json_path),
                          history=history.markdown_lines(entries, now["key"]),
                          repeatability=noise_floor.markdown_lines(entries, lengths, args.server_loads_of))
    print(f"wrote {doc}, {json_path} and {len(plots)} plots")
    return 0


NOTES = [
    "What the targets mean on this machine (the section above; `python benchmarks/validation_noise_floor.py` "
    "prints it from `docs/validation_history.json`): with the report's 3 repeats, a perfect model's worst "
    "|error| over the 55 metrics has a median of 36.8% over 10,000 simulated reports and is within 10% in 0.1% "
    "of them, while its median |error| is 1.7% (within 5% in all of them); the worst is set by the Server "
    "latencies, whose repeats spread most. On the 25 metrics every kept set ran with the same settings, another "
    "set's measured values taken as the prediction have a median |error| of 3.3 to 6.0% and a worst of 8.3 to "
    "52.2% (per measured set: median over the other sets, and their best to worst); the model's were 1.8 to 4.7% "
    "and 7.9 to 36.8%.",
    "Run length (`python benchmarks/run_length_spread.py`: dlrm:pairs_per_sample=100, Server at 78 QPS, 60% of "
    "the last report's real peak, rounds of one 20-second and one 120-second run in alternating order, "
    "2026-12-04): 21:59-22:16 UTC, 6 rounds: p99 medians 50.6 and 40.8 ms, spread 54.8% and 59.9% (standard "
    "deviation of log 0.206 and 0.182); 22:17-22:40, 6 rounds: 44.7 and 40.0 ms, 29.0% and 42.8% (0.108 and "
    "0.142); 22:44-23:08, 6 rounds: 38.8 and 35.3 ms, 23.1% and 14.4% (0.092 and 0.051). In 3 of these 36 runs "
    "(both runs of one round of the first set, one 120-second run of the second) the batches ran at 7.48 ms per "
    "sample against a median of 6.1 in the others, with other processes using 0.01 cores: a state of the host "
    "some 23% slower that lasts minutes, longer than either run, raising p99 by 26 to 50% and the mean by 19 to "
    "30%. Without it (the third set) the 120-second runs repeat about twice as closely as the 20-second ones.",
    "Server under real LoadGen traffic. In the second set above, three 120-second runs' batch-1 inference times "
    "had a p90 of 7.5 to 8.2 ms after gaps of 30 us to 60 ms (98% of their batches), against 5.7 to 6.6 ms in "
    "the busy segment and the idle segments of gaps up to 60 ms of the calibrations made before and after "
    "them, with about the same median (5.9 to 6.2 ms); simulated with the runs' own batch times (resampled), "
    "their p99 came out -7.2, -0.2 and -6.2% off the real ones, against -24.0, -21.9 and -21.6% with the "
    "calibrated times. So calibrations now also measure batches under real LoadGen Server traffic (below) "
    "and `Calibration.cost_for(..., loadgen_ratios=True)` draws Server's batches from those ratios. On the "
    "third set, calibrated before and after its runs: p99 -0.1% (20-second runs) and -7.7% (120-second runs), "
    "mean -1.4% and -2.6%; the previous model gave -10.2%, -13.4%, -4.9% and -4.8%. "
    "On mobilenet_v1 at 39 QPS (60% of the last report's real peak; 5 rounds, 23:09-23:29 UTC, a quiet hour: "
    "the 120-second runs within 1.5% of each other; its calibrations' ratios: woken batches p90 x1.02 to 1.04, "
    "queued cycles x1.02 to 1.05): p99 -3.6% (20-second runs) and +0.5% (120-second runs), mean -1.7% and "
    "-1.4%; the previous model gave -4.0%, -2.7%, -2.4% and -2.2%. The 20-second runs' p99 (80.8 ms) lies far "
    "above the 120-second runs' (57.4 ms): the start of LoadGen's schedule sets it, and the simulated runs, "
    "replaying that schedule, show the same (77.9 and 57.7 ms). But on dlrm at 110 QPS (85% of the peak; 4 "
    "rounds, 23:43-23:59 UTC) the ratios gave p99 +17.6% and +17.7%, mean +9.1% and +10.1%, where the previous "
    "model gave -3.5%, -6.5%, -7.9% and -6.4%: the 12-second segment's tail (p99 ratio 1.5 to 1.75 over the "
    "busy medians) was heavier than the runs' own (1.29 to 1.39). So predictions keep the previous model by "
    "default.",
    "How the runs are made and kept: every workload calibrated and run with the method below, one after "
    "another; a noisy workload can be run again alone (`--reuse --rerun W`). The table under Summary lists "
    "every kept set of runs with its method and figures (`docs/validation_history.json`), the earlier ones "
    "as their reports stated them then.",
    "Why three calibrations, pooled at their median per batch size: this VM's speed moves in spells of seconds "
    "to minutes. Pooling the raw samples of two windows of different speed gave a two-humped service time "
    "that no run has (a run sees one state of the machine): when bert_base's calibration before its runs ran "
    "37% slower than the one after (batch 1: 33.3 against 24.4 ms busy), its SingleStream p90 came out "
    "+20.8% and its Server latencies at 85% load +137 to +158%. Now a third calibration runs between rounds "
    "2 and 3; each calibration's samples of a batch size keep their own spread and are rescaled to the median "
    "over the three (`Calibration.pooled`), so one slow window sets nothing; and busy times are measured in "
    "three passes over the batch sizes, so each size is timed in three spells rather than one 1.2-second "
    "spell (dlrm's calibration after its earlier runs had batches 1, 3, 5 and 7 at 1.3 to 1.5 times the "
    "first calibration's, and 2, 4, 6 and 8 within 1.05). bert_base with this method: median 2.9%, worst "
    "12.3% (Server mean at 60% load, whose runs' batches took 0.93 to 0.97 of the calibrated times), where "
    "it had 17.5% and 158.1%.",
    "In the runs of 2026-11-25 15:17-17:52 UTC (the history's last row; resnet50 at 15:17-15:48, the other "
    "four at 16:08-17:52, with the same measuring code): busy times measured for 4.5 s and at least 30 cycles "
    "per batch size (were 1.2 s and 12). ssd_mobilenet_v1 median 2.8%, worst 9.3% (was 7.5% and 16.0%): its "
    "three calibrations timed busy batch 8 at 112 to 119 ms (were 114 to 122), its Offline runs 68.8 samples/s "
    "(116 ms per batch of 8), Offline -1.0% (was -8.1%), Server p99 -7.7 to +1.0% (were +10.8 to +14.9%). "
    "Median |error| 3.4% (target 5%), worst 41.5% (target 10%), 47 of 55 within 10%; the runs' own spread had "
    "median 12.7% (8.6 to 25.7% per workload) against 7.6% in the row before: a noisier period. Misses over "
    "10%: dlrm Server p99 at 60% load +41.5% (repeats 40.9, 58.2 and 42.5 ms; the 58.2 ms round's batches ran "
    "at 1.24 of the calibration, the others at 0.97 and 1.00) and at 30% -10.6% (repeats 22.4 to 32.7 ms); "
    "bert_base SingleStream p90 +15.3% and its early-stopping estimate +17.3% (repeats 24.9, 25.9 and 30.8 "
    "ms, spread 23%; predicted 29.8 ms); resnet50 MultiStream p99 -12.2% (repeats 195.5 to 206.4 ms at 1.01 to "
    "1.04 of the calibration, -10.6% at the runs' speed; the row before's runs measured 172.5 ms where the "
    "prediction was 180.2 ms, this one's 180.4 ms); mobilenet_v1 MultiStream p99 +10.2%, SingleStream "
    "early-stopping estimate +10.2% and Server p99 at 60% load +13.9%: its three calibrations timed batch 1 "
    "after 30 us idle gaps at a median of 12.8 to 13.2 ms against 11.8 to 12.0 ms busy (the row before's "
    "calibrations: 11.8 to 12.3 against 11.9 to 12.9), while its SingleStream runs ran at 0.98 to 1.00 of the "
    "calibration.",
    "In the runs of 2026-11-25 12:57-15:05 UTC (the history's fifth row): two changes against the row "
    "before. (1) `--server-loads-of peak`: the Server loads are fractions of the real peak VALID QPS, so no "
    "compared load lies above what the system sustains; the 85% loads are now VALID in all 15 repeats "
    "(were INVALID in 9 of 15), and the worst Server error at 85% fell from 35.3% to 16.0%. (2) Batch 1's "
    "idle times at the closed-loop gaps measured for 10 s (were 1.5 s, some 60 samples of bert_base): "
    "bert_base SingleStream p90 +3.9% (was +12.4%), its worst metric 7.1% (was 13.6%). Median |error| "
    "5.5% (target 5%), worst 18.5% (target 10%), 47 of 55 within 10%; the runs' own spread had median 7.6% "
    "(4.2 to 12.2% per workload) against 6.4% in the row before. Misses over 10%: resnet50 Server p99 at "
    "30% load +18.5% (+11.5% at the runs' speed; repeats 78.5 to 87.7 ms) and at 85% +13.6% and mean "
    "+10.4% (+2.3% and +3.0% at the runs' speed: its batches ran at 0.98 to 1.00 of the calibration, and near the peak p99 moves several "
    "percent per percent of speed); ssd_mobilenet_v1 Server p99 at all three loads +10.8 to +14.9%, mean at 85% +16.0%, and Offline "
    "-8.1% (Offline +0.5% at the runs' speed): its three calibrations timed busy batch 8 at a median of "
    "114 to 122 ms from 12 cycles each, where their 10 s idle batch-8 segments read 110 to 111 ms and the "
    "Offline runs' batches 109 ms. Busy times are since measured for 4.5 s and at least 30 cycles per "
    "batch size (`BUSY_S`, `BUSY_MIN_BATCHES` in `sim/validate/service_times.py`), first used in the "
    "runs of the last row. dlrm Server p99 at 30% load -16.4%, where its real repeats spread 38.1% (21.9 to 32.4 ms; "
    "one round's batches at 1.27 of the calibration).",
    "In the runs of 2026-11-25 10:08-12:02 UTC (the history's fourth row): the machine's speed held (batch time "
    "vs calibration 0.90 to 1.04 in every kept run, the repeats of one setting within 0.07 of each other; other processes used at most 0.04 cores). Median |error| "
    "3.4% meets the 5% target, the worst (35.3%) misses 10%. Misses over 10%: (1) Server at 85% of the "
    "Offline capacity lies at or above the Server peak VALID QPS the real runs found on four workloads of five "
    "(ssd_mobilenet_v1 62.1 QPS against a real peak of 57.6, mobilenet_v1 71.1 against 67.2, dlrm 146.1 "
    "against 138.0, resnet50 42.5 against 42.5): there the queue grows through the run and p99 depends on "
    "how long the run lasts and on speed differences of a percent (ssd_mobilenet_v1's three repeats: p99 338, "
    "455 and 491 ms at batch times 1.01 to 1.02 of the calibration; predicted 300 ms, -34.0%); (2) the "
    "calibrations of bert_base and dlrm ran slower and with a heavier tail than their SingleStream runs "
    "(bert_base batch 1: pooled busy median 24.02 ms, p90 over median 1.06 to 1.17 in the calibrations' idle "
    "segments, against 22.9 to 23.4 ms and 1.02 to 1.04 in the runs), so SingleStream p90 comes out +12.4% "
    "(bert_base) and +15.2% (dlrm), MultiStream p99 +10.5% (bert_base); (3) dlrm Server at 60% load, p99 "
    "+19.6% where its real repeats spread 28.2%.",
    "In the runs of 2026-11-25 02:27-04:24 UTC (the history's third row): where the targets were missed, "
    "the runs' own batch logs showed the machine slower during the runs than in "
    "all three calibrations, and more so in the scenarios where LoadGen issues queries one at a time; "
    "Server came out too fast on three workloads of five (ssd_mobilenet_v1: Server batches at 0.99 to "
    "1.05 of the calibrated times, p99 -11 to -18%, peak VALID QPS +11.3%, while its SingleStream, "
    "MultiStream and Offline are within 2.2%). "
    "mobilenet_v1: batches at 1.01 to 1.12 times the calibrated times in SingleStream and 1.01 to 1.13 in "
    "Server, 1.00 to 1.03 in Offline; SingleStream p90 -9.3% (-3.8% at the runs' own speed). Its Server at "
    "85% load (70.7 QPS) lies above the peak VALID QPS the real runs found (65.5; predicted 69.8), so "
    "latency there grows with the run: two repeats had p99 479 and 504 ms, one 311 ms; predicted 222 ms "
    "(-53.7%, -42.7% at the runs' speed). dlrm: Server batches at 30% load took 1.21 to 1.25 times the "
    "calibrated busy times in all three rounds (SingleStream's 0.98 to 1.02), where the calibration's own "
    "measurement of batches under issue traffic at the same rate read 0.96 to 1.08; predicted Server "
    "latencies -17 to -50% (+7 to -26% at the runs' speed), and SingleStream p90 -11.2% at the runs' speed "
    "(its real tail, p90 over median, is heavier than any calibration's). The earlier quiet-period kept run "
    "of dlrm had worst 7.6%. In each round, dlrm's Server run at 30% load came straight after its "
    "MultiStream run, and the speed probes just before those Server runs read 1.08 to 1.39 times the "
    "calibration's.",
    "Is it LoadGen? The calibration times batches under Server traffic with a Python thread standing in "
    "for LoadGen. `python benchmarks/standin_vs_loadgen.py` runs real LoadGen Server runs (the validation "
    "harness and system, 12-second runs) and that stand-in alternately at the same rate, each pair measured "
    "against busy batch-1 runs made right after its stand-in run. Batch-1 inference time under LoadGen over "
    "the stand-in's: dlrm at 48 QPS 1.026, 1.070 and 1.002 (3 pairs, LoadGen first in each), then 0.988, "
    "0.996 and 0.974 (3 pairs, the order alternating); mobilenet_v1 at 30 QPS (`--workload mobilenet_v1 "
    "--qps 30 --pairs 4`) 0.993, 1.000, 0.985 and 0.981. Meanwhile the stand-in's own back-to-back batch-1 "
    "cycles ran at 0.98 to 1.06 of the busy cycle measured right after them. So LoadGen's threads do not "
    "slow the model more than the stand-in does: the Server misses above are windows of a slower machine, "
    "not a mechanism the calibration leaves out.",
    "Method. Each real run is its own process (LoadGen reads its mlperf.conf once per process) with LoadGen's "
    "seeds; the simulated run replays LoadGen's exact traffic (same queries, same sample indices, same Server "
    "arrival times) through the calibrated system model, with 3 seeds of the resampled service times per "
    "real repeat. `measured` is the median of 3 real repeats and the spread (max - min over the median) is "
    "printed next to each error: an error inside the spread is noise, not model error. Offline runs first; "
    "with `--server-loads-of peak` the peak VALID QPS search comes next and the Server loads are fractions "
    "of the real peak, so that no compared load lies above what the system sustains (without it they are "
    "fractions of the Offline samples/s and the search comes last). SingleStream, MultiStream and the three "
    "Server loads run in three rounds of one run each, so a slow spell of the machine lasting minutes spoils "
    "one repeat of several metrics (which the median sets aside) rather than every repeat of a few.",
    "Calibration (`sim/validate/calibrate_cpu.py`), made three times per workload: right before its real "
    "runs, between rounds 2 and 3, and right after the runs; the predictions draw from all three, each batch "
    "size at the median over them (`Calibration.pooled`). Each calibration measures the service time of every "
    "batch size busy (in three passes over the sizes) and after idle gaps; back-to-back cycles while a thread "
    "issues single queries on a seeded Poisson schedule at 25, 50 and 75% of the max-batch capacity, each "
    "against busy cycles of the same batch sizes measured right before and after that traffic segment; and "
    "LoadGen's issue overhead with a model that only sleeps. Calibrations now also run "
    "the real model under real LoadGen Server traffic for 12 s at 40% of batch 1's busy capacity "
    "(`measure_loadgen_wakes`) and keep each batch's time over the busy median of its size, for batches whose "
    "first query waited for the previous batch (their cycle) and for batches that woke the worker; on request "
    "(`Calibration.cost_for(..., loadgen_ratios=True)`, not by default: see the notes above) Server's batches "
    "are drawn at their size's busy median times those ratios. Server's busy times are the measured ones times "
    "the slowdown under the stand-in's traffic at the run's target QPS (`Calibration.cost_for`), its batches "
    "after a wait drawn from the idle tables. Nothing is fitted to the runs compared here.",
    "Speed probes: each real run starts with a one-second probe at batch 1 and at the largest batch, compared "
    "with the same probes during calibration (probe_drift and probe_drift_max per run in docs/validation.json). "
    "They do not enter the predictions (`--drift-probe` would rescale them by the batch-1 probe): the runs' "
    "own batch logs (the `batch time vs calibration` column) show they do not follow a run's speed. In "
    "mobilenet_v1's earlier runs, Server runs whose batches took 1.09 to 1.13 times the calibrated busy times "
    "had probes reading 0.99 to 1.04.",
    "Run lengths: SingleStream 15 s (>= 200 queries), MultiStream >= 662 queries (p99 early stopping), "
    "Offline 15 s, Server 20 s per load, peak search trials 20 s bisected to 2%. The Server latency bound "
    "is 20x the idle batch-1 service time (at least 2 ms), not the MLPerf bound of the model, which this "
    "CPU cannot meet for some and meets trivially for others.",
    "The machine is a shared 2-core VM. Against that: the measuring processes (calibration and real runs) run "
    "at niceness -10; before every real run the harness waits up to 120 s for other processes to use < 0.35 "
    "cores; a run during which they used > 0.6 cores on average is made again (up to twice, the least "
    "disturbed attempt is kept). The CPU other processes used is recorded with every run. What it cannot "
    "shield from is the host: the other virtual machines on it. In mobilenet_v1's earlier runs its batches "
    "took from 0.96 to 1.13 times the calibrated busy times from one run to the next with no other process "
    "running in this VM. Of the kept runs, one was disturbed under that limit: during bert_base's second "
    "Server run at 85% load a test run of this project used 0.54 cores on average (its p99 342 ms, the "
    "other two 348 and 372 ms); every other kept run saw under 0.15 cores used by others.",
    "DLRM's sample. In MLPerf Inference a DLRM sample is one user's query: the reference harness aggregates "
    "100 to 700 user-item pairs into each LoadGen sample, so the report runs `dlrm:pairs_per_sample=100` (6.0 "
    "ms per sample, 46.7 ms per batch of 8 on one core). A sample of one pair (0.16 to 0.45 ms per batch of 1 "
    "to 8) was run first: there LoadGen's and the machine's stalls are the size of the service times "
    "(`benchmarks/server_diagnosis.py`: LoadGen's issue stalled 2.3 to 3.6 times a second, median stall 1.0 "
    "to 1.4 ms; slow phases of 100 to 400 ms with batches 15 to 35% slower) and Server p99 came out -19, -53 "
    "and -74% at 30, 60 and 85% load (real spread up to 238%). `sim.cost.speed_trace` models such phases "
    "(`SpeedTrace`, `TimeVaryingCost`, tested against Pollaczek-Khinchine over two speed phases); predictions "
    "do not use one.",
]


if __name__ == "__main__":
    raise SystemExit(main())
