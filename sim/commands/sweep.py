"""``python -m sim sweep``: a grid of what-ifs run in parallel, one JSON line per point, resumable
(``sim.apps.sweep``)."""

from __future__ import annotations

import argparse

from sim.apps.sweep import run_sweep
from sim.commands.args import positive_int, seconds

NAME = "sweep"


def add_parser(subparsers):
    p = subparsers.add_parser(NAME, help="run a grid of what-ifs in parallel, one JSON line per point (resumable)")
    p.add_argument("grid", help="sweep grid (YAML; format in sim/apps/sweep/__init__.py and docs/sweep.md)")
    p.add_argument("--out", required=True, help="results file (JSON lines); finished points in it are skipped")
    p.add_argument("--workers", type=positive_int, help="local processes (default: CPU count)")
    p.add_argument("--dask", metavar="ADDRESS", help="run on this Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--dask-timeout-s", type=seconds, default=10.0, help="time to reach the scheduler (default 10)")
    p.add_argument("--chunk", type=positive_int, default=1, help="points per task (default 1)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: when stderr is a terminal)")
    return p


def run(args) -> int:
    summary = run_sweep(args.grid, args.out, workers=args.workers, dask=args.dask,
                        dask_timeout_s=args.dask_timeout_s, progress=args.progress, chunk=args.chunk)
    print(summary.describe())
    return 1 if summary.errors else 0
