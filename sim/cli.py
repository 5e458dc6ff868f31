"""The command line: ``python -m sim <command> ...``.

Each command is one module of ``sim.commands`` (``NAME``, ``add_parser``, ``run``); ``COMMANDS``
lists them in the order of the help. With no command, ``python -m sim`` runs ``procure``, the
main job. User mistakes (``InputError``) print one ``error: ...`` line and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys

from sim.commands import (
    calibrate,
    compare,
    demo,
    layers,
    plan,
    predict_published,
    procure,
    profile,
    run,
    search,
    sweep,
    validate,
)
from sim.errors import InputError

COMMANDS = [
    procure,            # the main job, and the default command
    demo,
    compare,
    layers,
    profile,
    run,
    sweep,
    search,
    plan,               # capacity planning
    validate,           # real runs against predictions
    calibrate,          # sim/hw: fit a device's parameters
    predict_published,  # sim/hw: predict published results
]
DEFAULT = procure.NAME


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sim", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args([DEFAULT])
    command = {c.NAME: c for c in COMMANDS}[args.command]
    try:
        return int(command.run(args) or 0)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
