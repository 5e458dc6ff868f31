"""``python -m sim compare``: devices side by side on one workload (``sim.apps.compare``)."""

from __future__ import annotations

from sim.apps import compare
from sim.commands.args import device_count

NAME = "compare"


def add_parser(subparsers):
    p = subparsers.add_parser(NAME, help="devices side by side on one workload (calibrated hardware model)")
    p.add_argument("--workload", default="resnet50")
    p.add_argument("--devices", required=True, help="comma-separated profile names, e.g. t4,l4,a100-sxm")
    p.add_argument("--count", type=device_count, default=1, help="devices per system")
    p.add_argument("--out", help="path prefix for PREFIX.csv and PREFIX.md")
    return p


def run(args) -> int:
    rows = compare.compare(args.workload, [d for d in args.devices.split(",") if d], args.count)
    print(compare.to_markdown(rows), end="")
    if args.out:
        print("wrote " + ", ".join(str(p) for p in compare.write(rows, args.out)))
    return 0
