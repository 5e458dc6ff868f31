"""The command line: ``python -m sim <command> ...``.

Each command is one module of ``sim.commands`` (``NAME``, ``add_parser``, ``run``); ``COMMANDS``
lists them in the order of the help. With no command, ``python -m sim`` runs ``procure``, the
main job. ``OUTPUTS`` names the paths each command writes and ``INPUTS`` the files it reads; the
outputs are checked before the command starts its work (``check_outputs``).

Exit codes: 0 success; 1 the question has no answer (``plan``: no device meets the target;
``search``: no VALID Server QPS; ``sweep``: some points failed); 2 bad input (``InputError``,
printed as one ``error: ...`` line; argparse's usage errors too); 3 an internal error (a bug:
its traceback is printed); 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from sim.apps.compare import COLUMNS as COMPARE_COLUMNS
from sim.apps.sweep.records import check_results_path
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
from sim.commands.args import flush_deprecations
from sim.errors import InputError
from sim.util import atomic, progress

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

class Output(NamedTuple):
    """A path a command writes: ``kind`` ``file`` (a file at the path), ``folder`` (files in a
    folder at the path) or ``prefix`` (a file at the path plus each of ``suffixes``); ``own``
    refuses an existing file that is not the command's own output."""
    dest: str
    flag: str
    kind: str
    suffixes: tuple = ()
    own: Callable[[Path, str], None] | None = None


def _own(what: str, *patterns: bytes) -> Callable[[Path, str], None]:
    """Recognise an existing output of the command by the start of its content (one of ``patterns``,
    regular expressions over the first 4 KiB); an empty file is anyone's."""
    compiled = [re.compile(p) for p in patterns]

    def check(path: Path, flag: str) -> None:
        try:
            with open(path, "rb") as fh:
                head = fh.read(4096)
        except OSError as exc:
            raise InputError(f"{flag} {path}: cannot read ({exc.strerror}); expected a new path or {what}") from None
        if head and not any(c.match(head) for c in compiled):
            raise InputError(f"{flag} {path}: an existing file that is not {what}; expected a new path or a file "
                             f"this command wrote earlier; it was left unchanged")
    return check


def _csv_header(columns) -> bytes:
    return re.escape(",".join(columns).encode())


def _md_header(columns) -> bytes:
    return re.escape(("| " + " | ".join(columns) + " |").encode())


#: What each command writes, checked before it starts (``check_outputs``).
OUTPUTS: dict[str, tuple[Output, ...]] = {
    run.NAME: (Output("out", "--out", "folder"),
               Output("trace", "--trace", "file", own=_own("a Chrome trace", rb'\{"traceEvents"'))),
    sweep.NAME: (Output("out_file", "--out", "file", own=lambda path, flag: check_results_path(path)),),
    compare.NAME: (Output(compare.OUT_DEST, "--out", "prefix", (".csv", ".md"),
                          own=_own("a device comparison", _csv_header(COMPARE_COLUMNS[:3]),
                                   _md_header(COMPARE_COLUMNS[:3]))),),
    plan.NAME: (Output("out_prefix", "--out", "prefix", (".csv", ".md", ".json"),
                       own=_own("a plan", _csv_header(plan.COLUMNS[:4]), rb"Plan for ",
                                rb'\{\s*"schema": "sim\.plan/')),),
    procure.NAME: (Output("out", "--out", "folder"),),
    demo.NAME: (Output("out", "--out", "folder"),),
    predict_published.NAME: (Output(predict_published.OUT_DEST, "--out", "file",
                                    own=_own("predictions (a CSV with a predicted_value column)",
                                             rb"[^\n]*\bpredicted_value\b")),),
    validate.NAME: (Output("out", "--out", "folder"), Output("plots", "--plots", "folder"),
                    Output("json", "--json", "file",
                           own=_own("validation records", rb'\{\s*"schema": "sim\.validation/')),
                    Output("report", "--report", "file", own=_own("a validation report", rb"# Validation"))),
}
#: The files each command reads (argument, flag): none of them may be an output.
INPUTS: dict[str, tuple[tuple[str, str], ...]] = {
    run.NAME: (("workload", "--workload"), ("system", "--system"), ("user_conf", "--user-conf")),
    sweep.NAME: (("grid", "--grid"),),
    predict_published.NAME: (("input", "--in"), ("results", "--results")),
    validate.NAME: (("system", "--system"),),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sim", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    for command in COMMANDS:
        command.add_parser(sub)
    for p in sub.choices.values():
        p.add_argument("--quiet", action="store_true",
                       help="no progress lines on stderr (results and errors are still printed)")
    return parser


def check_outputs(args) -> None:
    """Refuse, before the command's work, an output path it could not write or must not overwrite
    (``OUTPUTS``): a place that cannot be written, a folder where a file is meant or the reverse,
    one of the command's input files, an existing file that is not the command's own."""
    inputs = [(getattr(args, dest, None), flag) for dest, flag in INPUTS.get(args.command, ())]
    inputs = [(Path(p), flag) for p, flag in inputs if isinstance(p, str) and p and Path(p).is_file()]
    for out in OUTPUTS.get(args.command, ()):
        given = getattr(args, out.dest, None)
        if given is None:
            continue
        paths = [str(given) + s for s in out.suffixes] if out.kind == "prefix" else [given]
        for path in paths:
            path = atomic.check_output(path, "folder" if out.kind == "folder" else "file", out.flag)
            if out.kind == "folder" or not path.is_file():
                continue
            for source, flag in inputs:
                if os.path.samefile(source, path):
                    raise InputError(f"{out.flag} {path}: is the input {flag} {source}; expected another path "
                                     f"(writing it would destroy the input)")
            if out.own is not None:
                out.own(path, out.flag)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args([DEFAULT])
    command = {c.NAME: c for c in COMMANDS}[args.command]
    progress.set_quiet(getattr(args, "quiet", False))
    try:
        normalize = getattr(command, "normalize", None)
        if normalize is not None:        # old spellings of flags -> today's, with a note (sim.commands.args)
            normalize(args)
        check_outputs(args)
        return int(command.run(args) or 0)
    except InputError as exc:
        flush_deprecations(drop=True)       # bad input: one error line on stderr, nothing else
        progress.drop_pending()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception:       # a bug, not the user's input: its traceback, and a code of its own (not 1)
        traceback.print_exc()
        print(f"error: internal error in '{args.command}' (the traceback above); please report it", file=sys.stderr)
        return 3
    finally:
        progress.flush_pending()
        flush_deprecations()


if __name__ == "__main__":
    raise SystemExit(main())
