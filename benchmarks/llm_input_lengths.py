"""Estimate the unpublished mean input lengths of MLPerf LLM datasets from the published rows.

    python benchmarks/llm_input_lengths.py [--bench llama2-70b=60:900 ...] [--tol 0.04] [--rounds 2]

For each benchmark named (default: those whose workload file marks the mean input as estimated,
``prior_mean``, or as an unsourced assumption), ``sim.hw.llm_lengths.estimate`` searches the mean
input that minimises the two-stage calibration's loss over every modelled row of the shared file,
one benchmark at a time, round after round. It prints every point tried and, per benchmark, the
estimate and the range of means whose loss is within 5% of the best (how sharply the rows pin the
number down). Nothing is written: the figures go into the workload files by hand, with this
command and the data's hash in their notes.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.hw import llm_calibrate as lc  # noqa: E402
from sim.hw import llm_lengths  # noqa: E402
from sim.paths import SHARED_DATA  # noqa: E402

#: The benchmarks whose datasets publish no mean input (mean output, maximum input and sample
#: count are published), with the search range in tokens.
DEFAULT = {"llama2-70b": (60.0, 900.0), "mixtral-8x7b": (100.0, 1000.0), "gpt-j-6b": (200.0, 1800.0)}


def _range(text: str) -> tuple[str, tuple[float, float]]:
    name, _, rng = text.partition("=")
    lo, _, hi = rng.partition(":")
    return name, (float(lo), float(hi))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bench", action="append", type=_range, help="NAME=LOW:HIGH (tokens); repeatable")
    ap.add_argument("--tol", type=float, default=0.04, help="log-space width at which a search stops")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--start", action="append", default=[], help="NAME=TOKENS: where a benchmark's search starts "
                    "(default: its prior_mean, else its file's mean)")
    a = ap.parse_args(argv)
    names = dict(a.bench) if a.bench else dict(DEFAULT)
    path = SHARED_DATA / "mlperf_llm_results" / "results.csv"
    print(f"data: {path.name} (sha256 {hashlib.sha256(path.read_bytes()).hexdigest()[:12]})")
    start = {n: lc.workload(n).dataset.input.prior_mean or lc.workload(n).dataset.input.mean for n in names}
    start.update({n: float(v) for n, _, v in (x.partition("=") for x in a.start)})
    print("start: " + ", ".join(f"{n} {m:g}" for n, m in start.items()))
    t0 = time.time()
    est, profiles = llm_lengths.estimate(names, start=start, tol=a.tol, rounds=a.rounds)
    print("\n| benchmark | start | estimate | loss within 5% | median abs err at estimate |\n|---|---:|---:|---|---:|")
    for n, m in est.items():
        p = profiles[n]
        lo, hi = p.within(0.05)
        print(f"| {n} | {start[n]:g} | {m:g} | {lo:g} to {hi:g} | {100 * p.points[p.best()][1]:.1f}% |")
    print(f"\nseconds: {time.time() - t0:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
