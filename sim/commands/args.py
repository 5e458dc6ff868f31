"""Argument helpers shared by the commands: integer types, the workload and run options, and
what those options turn into (the system, a synthetic cost, LoadGen setting overrides)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sim.cost.synthetic import parse_synthetic
from sim.errors import InputError
from sim.sut.system import SystemSpec, load_system
from sim.util.checks import RANGES, flag
from sim.workload.catalog import is_file, set_input_shapes


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    return _POSITIVE_INT(text)


def int_list(text: str) -> list[int]:
    """An argparse type: comma-separated batch sizes (integers >= 1), e.g. ``1,2,4,8``."""
    return [_BATCH(part) for part in text.split(",") if part.strip()]


_POSITIVE_INT = flag(minimum=1, integer=True)
_BATCH = flag(**RANGES["batch"])

# argparse types of the numbers the commands take, each with the range the Python API applies to
# the same quantity (``sim.util.checks.RANGES``): a bad value is one line from argparse, status 2
qps = flag(**RANGES["qps"])
latency_ms = flag(**RANGES["latency_ms"])
duration_ms = flag(**RANGES["duration_ms"])
query_count = flag(**RANGES["count"])
seed = flag(**RANGES["seed"])
rel_tol = flag(**RANGES["rel_tol"])
repeats = flag(**RANGES["repeats"])
device_count = flag(**RANGES["instances"])
non_negative = flag(minimum=0.0)
seconds = flag(minimum=0.0, maximum=86_400.0, note="at most a day")
rounds = flag(minimum=0, maximum=1000, integer=True)
niceness = flag(minimum=-40, maximum=40, integer=True)


def add_workload_args(p: argparse.ArgumentParser, default: str | None = None) -> None:
    """``--workload`` (also accepted as the old positional spelling, with a note) and ``--small``;
    ``take_workload`` settles the two after parsing."""
    p.add_argument("workload_positional", nargs="?", metavar="WORKLOAD", help=argparse.SUPPRESS)
    p.add_argument("--workload", default=None,
                   help="a built-in workload name or a path to a .onnx file"
                        + (f" (default {default})" if default else ""))
    p.set_defaults(workload_default=default)
    p.add_argument("--small", action="store_true", help="use the workload's small variant")
    add_input_shape_arg(p)


#: deprecation notes of this command, written on stderr after it (``flush_deprecations``), so an
#: error line stays the first line of stderr
_PENDING: list[str] = []


def deprecated(message: str) -> None:
    """A ``note: ...`` line for an old spelling still accepted (on stderr, after the command)."""
    _PENDING.append(f"note: {message}")


def flush_deprecations(drop: bool = False) -> None:
    """Write the pending notes on stderr (``drop``: discard them: bad input is one error line)."""
    while _PENDING:
        note = _PENDING.pop(0)
        if not drop:
            print(note, file=sys.stderr, flush=True)


def take_workload(args, command: str) -> None:
    """``args.workload`` from ``--workload`` or the old positional spelling (with a deprecation
    note); both given and different is an error."""
    pos = getattr(args, "workload_positional", None)
    if pos is not None:
        if args.workload is not None and args.workload != pos:
            raise InputError(f"{command}: workload given twice ({pos!r} and --workload {args.workload!r}); "
                             f"expected one --workload")
        deprecated(f"'{command} {pos}' is the old spelling; use '{command} --workload {pos}'")
        args.workload = pos
    if args.workload is None:
        args.workload = getattr(args, "workload_default", None)
    if args.workload is None:
        raise InputError(f"{command}: no workload; expected --workload NAME (a built-in name or a .onnx file)")


def add_out_dir(p: argparse.ArgumentParser, what: str, default: str | None = None, old: str = "") -> None:
    """``--out DIR``, the same meaning in every command: a folder the command writes its files into."""
    p.add_argument("--out", metavar="DIR", default=default,
                   help=f"folder for {what}" + (f" (default {default})" if default else "")
                        + (f"; {old} is still accepted" if old else ""))


def out_file(args, command: str, name: str, old_suffixes: tuple[str, ...]) -> str | None:
    """The file ``name`` in the ``--out`` folder; an ``--out`` ending in one of ``old_suffixes`` is the old
    spelling (the file itself), accepted with a note."""
    given = getattr(args, "out", None)
    if given is None:
        return None
    if str(given).endswith(old_suffixes):
        deprecated(f"{command} --out {given}: a file name is the old meaning of --out (now a folder); "
                   f"writing that file; use --out {Path(given).parent or '.'} for {Path(given).parent / name}")
        return str(given)
    return str(Path(given) / name)


def out_prefix(args, command: str, stem: str, suffixes: tuple[str, ...]) -> str | None:
    """``DIR/stem`` (files ``DIR/stem`` + each suffix) for ``--out DIR``; where files of the old
    meaning (``--out`` a path prefix: ``PREFIX.csv``...) exist, a note says where the new ones go."""
    given = getattr(args, "out", None)
    if given is None:
        return None
    old = [str(given) + s for s in suffixes if Path(str(given) + s).is_file()]
    if old:
        deprecated(f"{command} --out {given} is now a folder: writing {Path(given) / stem}{suffixes[0]} etc.; "
                   f"earlier runs wrote {', '.join(old)} (--out as a path prefix)")
    return str(Path(given) / stem)


def add_run_args(p: argparse.ArgumentParser) -> None:
    """What one simulated run needs: workload, system, LoadGen settings, cost and seed."""
    p.add_argument("--workload", default="resnet50", help="built-in workload or .onnx file (default resnet50)")
    p.add_argument("--small", action="store_true", help="use the workload's small variant")
    p.add_argument("--system", help="system description (YAML); default: 1 device, 1 instance, no batching")
    p.add_argument("--user-conf", help="a LoadGen user.conf")
    p.add_argument("--mlperf-model", help="LoadGen model name for settings (default: the workload's)")
    p.add_argument("--service-time-ms", metavar="T",
                   help="synthetic cost instead of the workload's: T or fixed:T, exp:MEAN, affine:A,B (ms)")
    p.add_argument("--min-query-count", type=query_count)
    p.add_argument("--min-duration-ms", type=duration_ms)
    p.add_argument("--seed", type=seed, default=0, help="seed of random service times (traffic uses LoadGen's seeds)")
    add_input_shape_arg(p)


def system_of(args) -> SystemSpec:
    """The system file given by ``--system``, or the default system."""
    return load_system(args.system) if args.system else SystemSpec()


def overrides(args) -> dict:
    """LoadGen settings from ``--qps``, ``--min-query-count`` and ``--min-duration-ms``."""
    out = {}
    if getattr(args, "qps", None) is not None:
        out["server_target_qps"] = float(args.qps)
    if args.min_query_count is not None:
        out["min_query_count"] = args.min_query_count
    if args.min_duration_ms is not None:
        out["min_duration_ns"] = round(args.min_duration_ms * 1_000_000)
    return out


def synthetic_cost(args):
    """The cost model of ``--service-time-ms``, or None without it."""
    if args.service_time_ms is None:
        return None
    return parse_synthetic(args.service_time_ms, "--service-time-ms")


def add_input_shape_arg(p: argparse.ArgumentParser) -> None:
    """``--input-shape NAME=DIMS``: sizes for a user's .onnx inputs (``sim.workload.inputs``)."""
    p.add_argument("--input-shape", action="append", metavar="NAME=DIMS",
                   help="sizes of a .onnx file's input, e.g. input=Nx3x224x224 (N: the batch); "
                        "repeat or comma-separate for several inputs")


def use_input_shapes(args) -> dict:
    """Make ``--input-shape`` the overrides of every .onnx file this run loads (a bad value, or one
    given with a catalog workload, is one line)."""
    shapes = set_input_shapes(getattr(args, "input_shape", None))
    workload = getattr(args, "workload", None)
    if shapes and isinstance(workload, str) and not is_file(workload):
        raise InputError(f"--input-shape: workload {workload!r} is a catalog workload; expected a .onnx file "
                         f"(catalog workloads take builder parameters)")
    return shapes
