"""``python -m sim sweep``: a grid of what-ifs run in parallel, one JSON line per point, resumable
(``sim.apps.sweep``)."""

from __future__ import annotations

import argparse

from sim.apps.sweep import run_sweep
from sim.commands.args import (
    add_input_shape_arg,
    add_out_dir,
    deprecated,
    out_file,
    positive_int,
    seconds,
    use_input_shapes,
)

NAME = "sweep"


def add_parser(subparsers):
    p = subparsers.add_parser(NAME, help="run a grid of what-ifs in parallel, one JSON line per point (resumable)")
    p.add_argument("grid_positional", nargs="?", metavar="GRID", help=argparse.SUPPRESS)
    p.add_argument("--grid", help="sweep grid (YAML; format in sim/apps/sweep/__init__.py and docs/sweep.md)")
    add_out_dir(p, "results.jsonl (JSON lines; finished points in it are skipped on the next run)",
                default="out/sweep", old="a file name ending in .jsonl (the old meaning) with a note")
    p.add_argument("--workers", type=positive_int, help="local processes (default: CPU count)")
    p.add_argument("--dask", metavar="ADDRESS", help="run on this Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--dask-timeout-s", type=seconds, default=10.0, help="time to reach the scheduler (default 10)")
    p.add_argument("--chunk", type=positive_int, default=1, help="points per task (default 1)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress on stderr (default: on; a line rewritten in place on a terminal, plain "
                        "lines elsewhere; --quiet or --no-progress turn it off)")
    add_input_shape_arg(p)
    return p


def normalize(args) -> None:
    """``--grid`` (or the old positional spelling, with a note) and ``args.out_file``."""
    from sim.errors import InputError  # noqa: PLC0415 - only on this error
    if args.grid_positional is not None:
        if args.grid is not None and args.grid != args.grid_positional:
            raise InputError(f"sweep: grid given twice ({args.grid_positional!r} and --grid {args.grid!r}); "
                             f"expected one --grid")
        deprecated(f"'sweep {args.grid_positional}' is the old spelling; use 'sweep --grid {args.grid_positional}'")
        args.grid = args.grid_positional
    if args.grid is None:
        raise InputError("sweep: no grid; expected --grid FILE (a sweep grid, YAML)")
    args.out_file = out_file(args, NAME, "results.jsonl", (".jsonl", ".json"))


def run(args) -> int:
    use_input_shapes(args)
    from sim.util import progress as report  # noqa: PLC0415 - only when sweeping

    report.say(f"sweeping the grid {args.grid} into {args.out_file} (finished points there are skipped)")
    show = args.progress if args.progress is not None else not report.quiet()
    summary = run_sweep(args.grid, args.out_file, workers=args.workers, dask=args.dask,
                        dask_timeout_s=args.dask_timeout_s, progress=show and not report.quiet(), chunk=args.chunk)
    print(summary.describe())
    return 1 if summary.errors else 0
