"""The measured values a calibration is fitted on, read from CSV files.

Published results (``read_results``, ``observed``): the rows of a results CSV, and each
row's published value (calibration and evaluation only; never a prediction input).

User measurements (``read_measurements``): a CSV with columns ``device`` (a profile
name), ``model`` (``resnet50``, ``ssd-mobilenet``, ``ssd-resnet34``, ``retinanet``,
``bert-99``), ``batch`` (samples per batch), and ``latency_ms`` (time of one batch) or
``throughput`` (samples/s at that batch, one device); optional ``devices`` (default 1),
``precision`` and ``framework`` (on a CPU, the software stack: its calibration unit is the
chip and that stack, else ``<chip>/user``); other columns (a ``source``, say) are
ignored. Each row becomes an Offline-like (throughput) or SingleStream-like (latency) case at
that batch.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

from sim.errors import InputError
from sim.hw import precision as precision_rules
from sim.hw import profiles
from sim.hw.rows import Case, read_case, stack_of
from sim.util.checks import RANGES, parse_number, short
from sim.util.textfile import read_csv


def observed(row: dict) -> float | None:
    """The published value of a row (calibration and evaluation only; never a prediction input)."""
    try:
        v = float(row.get("value", ""))
    except (TypeError, ValueError):
        return None
    return v if v > 0 and math.isfinite(v) else None


def read_results(path: str | Path) -> list[dict]:
    """The rows of a results or measurements CSV (UTF-8, a byte-order mark accepted, size-limited)."""
    return read_csv(path, "a results CSV")[1]


MEASUREMENT_COLUMNS = ("device", "model", "batch")


def read_measurements(path: str | Path) -> tuple[list[Case], dict[int, float]]:
    """A user's measurements (module docstring) as cases and values (ns for latencies)."""
    rows = read_results(path)
    cases, values = [], {}
    for i, r in enumerate(rows):
        line = i + 2
        for col in MEASUREMENT_COLUMNS:
            if not (r.get(col) or "").strip():
                raise InputError(f"{path}:{line}: field '{col}' is empty; expected columns {list(MEASUREMENT_COLUMNS)} "
                                 f"and latency_ms or throughput")
        batch = parse_number(r["batch"].strip(), f"{path}:{line}", "batch", **RANGES["batch"])
        lat, thr = (r.get("latency_ms") or "").strip(), (r.get("throughput") or "").strip()
        if bool(lat) == bool(thr):
            raise InputError(f"{path}:{line}: fields 'latency_ms' = {short(lat)}, 'throughput' = {short(thr)}: "
                             f"expected exactly one of them")
        value = (parse_number(lat, f"{path}:{line}", "latency_ms", **RANGES["latency_ms"]) if lat else
                 parse_number(thr, f"{path}:{line}", "throughput", **RANGES["qps"]))
        name = r["device"].strip()
        prof = profiles.get(name)
        devices = parse_number((r.get("devices") or "1").strip(), f"{path}:{line}", "devices", **RANGES["instances"])
        model = r["model"].strip()
        case = read_case({"version": "v5.1", "division": "closed", "submitter": "user", "system": f"measurement-{line}",
                          "accelerator": "", "accelerator_kind": prof.kind, "accelerators_per_node": str(devices),
                          "framework": r.get("framework", ""), "model": model,
                          "scenario": "Offline" if thr else "SingleStream",
                          "metric": "Samples per second" if thr else "90th percentile latency (ns)",
                          "units": "samples/s" if thr else "ns", "number_of_nodes": "1",
                          "host_processors_per_node": str(devices)}, i)
        if case.workload is None:
            raise InputError(f"{path}:{line}: field 'model' = {model!r}: expected one of "
                             f"resnet50, ssd-mobilenet, ssd-resnet34, retinanet, bert-99")
        prec = (r.get("precision") or "").strip()
        if prec and prec not in prof.peak_tops:
            raise InputError(f"{path}:{line}: field 'precision' = {prec!r}: expected one of {sorted(prof.peak_tops)}")
        chosen, why = (prec, "given in the measurements") if prec else precision_rules.choose(prof, model)
        framework = (r.get("framework") or "").strip()
        stack = (stack_of(prof.kind, "", framework) if framework else "user") if prof.kind == "cpu" else case.stack
        case = replace(case, profile=prof.name, unsupported=None, precision=chosen, precision_reason=why,
                       devices=devices, year=prof.release_year, system_key=f"user/{prof.name}/{line}",
                       batch=batch, stack=stack)
        cases.append(case)
        values[i] = value * 1e6 if lat else value
    return cases, values
