"""Argument helpers shared by the commands: integer types, the workload and run options, and
what those options turn into (the system, a synthetic cost, LoadGen setting overrides)."""

from __future__ import annotations

import argparse

from sim.cost.synthetic import parse_synthetic
from sim.sut.system import SystemSpec, load_system
from sim.util.checks import RANGES, flag


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
whole_duration_ms = flag(**{**RANGES["duration_ms"], "integer": True})
query_count = flag(**RANGES["count"])
seed = flag(**RANGES["seed"])
rel_tol = flag(**RANGES["rel_tol"])
repeats = flag(**RANGES["repeats"])
device_count = flag(**RANGES["instances"])
non_negative = flag(minimum=0.0)
seconds = flag(minimum=0.0, maximum=86_400.0, note="at most a day")
rounds = flag(minimum=0, maximum=1000, integer=True)
niceness = flag(minimum=-40, maximum=40, integer=True)


def add_workload_args(p: argparse.ArgumentParser) -> None:
    """The positional workload and ``--small``."""
    p.add_argument("workload", help="a built-in workload name or a path to a .onnx file")
    p.add_argument("--small", action="store_true", help="use the workload's small variant")


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
