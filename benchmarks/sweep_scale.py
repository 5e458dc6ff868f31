"""Sweep throughput: points per second of a >= 1,000-point grid on local processes.

Grid: 4 scenarios x 5 synthetic devices (fixed, affine, exponential costs) x 4 device
counts x 2 instance counts x 4 batching settings x 4 Server QPS (QPS only applies to
Server, so the other scenarios have 160 points each): 1,120 points. Each point is a short run: min_query_count 256,
min_duration 50 ms of simulated time, so the figure measures the sweep machinery
(dispatch, one fsynced JSON line per point) as much as the simulator. Runs the grid into
a fresh results file in a temporary folder, for each ``--workers`` value (1 = in this
process) and ``--chunk`` (points per task), then reruns it once to time the resume check.

    python benchmarks/sweep_scale.py [--workers 1,2] [--chunk 1,8] [--min-query-count 256]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from sim.apps.sweep import expand, read_records, run_sweep

DEVICES = [
    {"label": "fixed 0.8 ms", "kind": "fixed", "time_us": 800},
    {"label": "affine 0.5+0.05", "kind": "affine", "a_us": 500, "b_us_per_sample": 50},
    {"label": "affine 2+0.02", "kind": "affine", "a_us": 2000, "b_us_per_sample": 20},
    {"label": "exp 1 ms", "kind": "exponential", "mean_us": 1000},
    {"label": "affine 0.2+0.1", "kind": "affine", "a_us": 200, "b_us_per_sample": 100},
]
BATCHING = [
    {"policy": "none"},
    {"policy": "fixed", "max_batch": 4},
    {"policy": "dynamic", "max_batch": 8, "max_queue_delay_us": 500},
    {"policy": "dynamic", "max_batch": 32, "max_queue_delay_us": 2000, "preferred_batch_sizes": [16, 32]},
]


def grid(min_query_count: int, min_duration_ms: int) -> dict:
    return {
        "name": "sweep-scale",
        "base": {"mlperf_model": "resnet50",
                 "settings": {"min_query_count": min_query_count, "min_duration_ns": min_duration_ms * 1_000_000}},
        "axes": {"scenario": ["Server", "SingleStream", "MultiStream", "Offline"], "device": DEVICES,
                 "accelerators": [1, 2, 4, 8], "instances": [1, 2], "batching": BATCHING,
                 "qps": [200.0, 1000.0, 4000.0, 16000.0]},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", default=f"1,{os.cpu_count() or 1}", help="comma-separated worker counts")
    ap.add_argument("--chunk", default="1,8", help="comma-separated points per task")
    ap.add_argument("--min-query-count", type=int, default=256)
    ap.add_argument("--min-duration-ms", type=int, default=50)
    args = ap.parse_args()
    g = expand(grid(args.min_query_count, args.min_duration_ms), "sweep-scale grid")
    print(f"grid: {len(g.points)} points ({g.duplicates} combinations collapsed: QPS only applies to Server); "
          f"{os.cpu_count()} CPUs")
    print(f"{'workers':>7} {'chunk':>5} {'points':>6} {'wall s':>7} {'points/s':>9} {'errors':>6} "
          f"{'mean point s':>12} {'resume check s':>14}")
    with tempfile.TemporaryDirectory() as tmp:
        reference = None
        for workers in [int(w) for w in args.workers.split(",")]:
            for chunk in [int(c) for c in args.chunk.split(",")]:
                if workers == 1 and chunk != 1:
                    continue
                out = Path(tmp) / f"w{workers}-c{chunk}.jsonl"
                t0 = time.perf_counter()
                s = run_sweep(g, out, workers=workers, chunk=chunk, progress=False)
                wall = time.perf_counter() - t0
                t0 = time.perf_counter()
                again = run_sweep(g, out, workers=workers, chunk=chunk, progress=False)
                resume = time.perf_counter() - t0
                recs = read_records(out)
                mean_point = sum(r["elapsed_s"] for r in recs) / len(recs)
                same = {(r["id"], repr(r["metrics"])) for r in recs}
                reference = reference or same
                assert again.ran == 0 and same == reference, "results differ between runs"
                print(f"{workers:7d} {chunk:5d} {s.ran:6d} {wall:7.2f} {s.ran / wall:9.1f} {len(s.errors):6d} "
                      f"{mean_point:12.4f} {resume:14.3f}")
    print("identical records across all runs: True")


if __name__ == "__main__":
    main()
