"""``python -m sim procure``: the main job (the default command), the procurement comparison
of ``sim.apps.procurement``."""

from __future__ import annotations

from sim.apps import procurement

NAME = "procure"


def add_parser(subparsers):
    p = subparsers.add_parser(NAME, help="the main job (default): ResNet-50 procurement comparison across the "
                                         "bundled devices, table and plots")
    p.add_argument("--workload", default="resnet50")
    p.add_argument("--devices", help="comma-separated profile names (default: the bundled list)")
    p.add_argument("--out", default="out/procurement", help="folder for the table (CSV, Markdown) and plots")
    return p


def run(args) -> int:
    devices = [d.strip() for d in args.devices.split(",") if d.strip()] if args.devices else procurement.DEVICES
    return procurement.main(args.workload, args.out, devices)
