"""``python -m sim layers``: the per-node layer table of a workload (``sim.workload.layers``)."""

from __future__ import annotations

import json

from sim.commands.args import add_workload_args, positive_int, take_workload, use_input_shapes

NAME = "layers"


def add_parser(subparsers):
    p = subparsers.add_parser(NAME, help="per-node layer table (MACs, FLOPs, bytes) of a workload")
    add_workload_args(p)
    p.add_argument("--batch", type=positive_int, default=1)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--all", action="store_true", help="print every node (default: first 60)")
    return p


def normalize(args) -> None:
    take_workload(args, NAME)


def run(args) -> int:
    from sim.util import progress  # noqa: PLC0415 - only for the table
    from sim.workload import catalog as workloads  # noqa: PLC0415 - loads onnx: kept out of `python -m sim --help`
    from sim.workload import layers  # noqa: PLC0415 - loads onnx: kept out of `python -m sim --help`
    use_input_shapes(args)
    # the model first (a bad name or file fails here, before any other line), then what is done
    with progress.stage(f"loading or building {args.workload} (built models are cached)"):
        w = workloads.resolve(args.workload, small=args.small)
    layers.check_ops(w.model, str(w.path))
    progress.say(f"layer table of {w.name} at batch {args.batch}: counting each node")
    table = layers.layer_table(w.model, batch=args.batch, name=w.name, source=str(w.path))
    if args.json:
        print(json.dumps(table.to_dict()))
    else:
        print(layers.format_table(table, max_rows=None if args.all else 60))
    return 0
