"""The command line: ``python -m sim <command> ...``.

Each sub-command parses its arguments and calls the library function a notebook would
call; user mistakes (``InputError``) print one ``error: ...`` line and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys

from sim.errors import InputError


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer; expected an integer >= 1") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} is not >= 1; expected an integer >= 1")
    return value


def _int_list(text: str) -> list[int]:
    return [_positive_int(part) for part in text.split(",") if part.strip()]


def _add_workload_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("workload", help="a built-in workload name or a path to a .onnx file")
    p.add_argument("--small", action="store_true", help="use the workload's small variant")


def cmd_layers(args) -> int:
    from sim import layers, workloads
    w = workloads.resolve(args.workload, small=args.small)
    table = layers.layer_table(w.model, batch=args.batch, name=w.name, source=str(w.path))
    if args.json:
        print(json.dumps(table.to_dict()))
    else:
        print(layers.format_table(table, max_rows=None if args.all else 60))
    return 0


def cmd_profile(args) -> int:
    from sim import cpu_profile, workloads
    w = workloads.resolve(args.workload, small=args.small)
    profile = cpu_profile.load_or_measure(w, batch_sizes=args.batch_sizes, threads=args.threads,
                                          cache_dir=args.cache_dir, remeasure=args.remeasure)
    print(cpu_profile.summarise(profile))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sim", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("layers", help="per-node layer table (MACs, FLOPs, bytes) of a workload")
    _add_workload_args(p)
    p.add_argument("--batch", type=_positive_int, default=1)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--all", action="store_true", help="print every node (default: first 60)")
    p.set_defaults(func=cmd_layers)

    p = sub.add_parser("profile", help="measure per-kernel CPU cost with onnxruntime")
    _add_workload_args(p)
    p.add_argument("--batch-sizes", type=_int_list, default=[1, 2, 4, 8])
    p.add_argument("--threads", type=_positive_int, default=None, help="intra-op threads (default: all cores)")
    p.add_argument("--cache-dir", default=None, help="profile cache folder (default: $SIM_CACHE_DIR or ~/.cache/mlperf-sim)")
    p.add_argument("--remeasure", action="store_true", help="measure again even if cached")
    p.set_defaults(func=cmd_profile)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
