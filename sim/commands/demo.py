"""``python -m sim demo``: ResNet-50 on this CPU in all four scenarios (``sim.apps.demo``)."""

from __future__ import annotations

from sim.apps import demo

NAME = "demo"


def add_parser(subparsers):
    p = subparsers.add_parser(NAME, help="ResNet-50 on this CPU (measured profile) in all four scenarios")
    p.add_argument("--workload", default="resnet50")
    p.add_argument("--small", action="store_true")
    p.add_argument("--out", default="out/demo", help="folder for the LoadGen-format logs")
    return p


def run(args) -> int:
    return demo.main(args.workload, args.out, args.small)
