"""A published result row, read as a prediction task (never its result columns).

``read_case(row)`` turns one row of a results CSV into a ``Case``: the device profile and
how many of it, the workload, what to predict (from the metric's units), the latency
bound, the round's date, and the precision the prediction assumes. It reads only the
columns that describe the system and the test (``INPUT_COLUMNS``); the result columns and
the submitter's own expectations (``target_qps``, ``samples_per_query``,
``min_query_count``) are never looked at. A row no profile or workload covers gets
``unsupported`` set to the reason (``sim.hw.benchmarks`` says which network a results name
is in the row's round, and why the catalog cannot build one); so does a row with a number
no system has (``NUMBER_COLUMNS``:
a count that is negative, fractional, infinite or past ``MAX_DEVICES``, a latency bound that is
not a finite number of ns up to an hour), its reason naming the row and the column. A
cell that is not a number at all (``N/A``, ``4 (big); 4 (LITTLE)``) reads as absent, as published
results write them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from sim.errors import InputError
from sim.hw import benchmarks, names, precision, profiles
from sim.util.checks import LIMITS, short

INPUT_COLUMNS = ("version", "division", "submitter", "system", "accelerator", "accelerator_kind",
                 "accelerators_per_node", "host_cpu", "framework", "model", "scenario", "metric", "units",
                 "target_latency_ns", "min_duration_ms", "power_measured", "system_type", "system_status",
                 "number_of_nodes", "host_processors_per_node", "host_processor_core_count")
REQUIRED_COLUMNS = ("version", "accelerator", "accelerator_kind", "accelerators_per_node", "model", "scenario",
                    "metric", "units")

# publication date of each round (year + fraction): the software's age on a device
ROUND_YEAR = {"v0.5": 2019.85, "v0.7": 2020.8, "v1.0": 2021.3, "v1.1": 2021.7, "v2.0": 2022.3, "v2.1": 2022.7,
              "v3.0": 2023.3, "v3.1": 2023.7, "v4.0": 2024.2, "v4.1": 2024.7, "v5.0": 2025.3, "v5.1": 2025.7,
              "v6.0": 2026.3}
TARGETS = ("offline", "server", "singlestream", "multistream", "ms_streams")
#: The most devices (accelerators or CPU sockets, over all nodes) a row may describe: the largest
#: published system has 128; the simulated runs of a system 10 times larger still fit the work
#: limits (``sim.util.checks.LIMITS``) in seconds, past that they are refused only after minutes.
MAX_DEVICES = 1024
#: The numeric columns a prediction reads: (largest value, whole numbers only). A cell that
#: parses as a number outside [0, largest] (or fractional where a count is expected) makes
#: the row unsupported with that reason.
NUMBER_COLUMNS = {"accelerators_per_node": (MAX_DEVICES, True), "number_of_nodes": (MAX_DEVICES, True),
                  "host_processors_per_node": (MAX_DEVICES, True),
                  "host_processor_core_count": (LIMITS["instances"], True),
                  "target_latency_ns": (3.6e12, False)}


@dataclass(frozen=True)
class Case:
    """One row as a prediction task."""
    index: int
    system_key: str                  # submitter/system: the unit of leave-one-system-out
    version: str
    year: float
    submitter: str
    system: str
    accelerator: str
    kind: str
    model: str
    scenario: str
    target: str = ""                 # one of TARGETS
    units: str = ""
    profile: str | None = None
    workload: str | None = None
    devices: int = 0                 # physical accelerators (GPUs, cards) or CPU sockets
    mig_slices: int = 0
    mig_instances: int = 0
    cores: int | None = None         # CPU cores per socket, when the row says
    latency_bound_ns: float | None = None
    power_capped: bool = False
    stack: str = ""                  # software stack family (calibration unit part for CPUs)
    triton: bool = False
    precision: str = ""
    precision_reason: str = ""
    batch: int = 0                   # a measured batch size (user measurements); 0 = the model's choice
    unsupported: str | None = None
    notes: tuple = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return self.unsupported is None


def round_year(version: str) -> float | None:
    v = version.strip().lower()
    if v.startswith("mobile-"):
        v = v[len("mobile-"):]
    return ROUND_YEAR.get(v)


def target_of(scenario: str, metric: str, units: str) -> str | None:
    u, m = units.strip().lower(), metric.strip().lower()
    if u.startswith("samples/s"):
        return {"offline": "offline", "server": "server"}.get(scenario.strip().lower())
    if u == "ns":
        if m.startswith("90"):
            return "singlestream"
        if m.startswith("99"):
            return "multistream"
        return None
    if u.startswith("samples/query"):
        return "ms_streams"
    return None


def _int(text: str) -> int | None:
    try:
        return int(float(text))
    except (TypeError, ValueError):
        return None


def bad_number(g: dict, index: int) -> str | None:
    """The reason a row's numeric cells (``NUMBER_COLUMNS``) describe no system, or None."""
    for col, (largest, whole) in NUMBER_COLUMNS.items():
        text = g.get(col, "")
        try:
            v = float(text)
        except (TypeError, ValueError):
            continue                        # not a number: read as absent (module docstring)
        if not (math.isfinite(v) and 0 <= v <= largest and (v.is_integer() or not whole)):
            expected = (f"a whole number from 0 to {largest:,}" if whole
                        else f"a finite number of ns from 0 to {largest:.3g} (an hour)")
            return f"row {index + 1}: column '{col}' = {short(text)}: expected {expected}"
    return None


def stack_of(kind: str, system: str, framework: str) -> str:
    """The software stack family: what a CPU's efficiency depends on besides the silicon."""
    t = f"{system} {framework}".lower()
    if kind != "cpu":
        return "vendor"
    for key, pats in (("openvino", ("openvino",)), ("pytorch", ("pytorch", "ipex")), ("mxnet", ("mxnet",)),
                      ("armnn", ("armnn",)), ("tflite", ("tflite",)), ("onnxruntime", ("onnxruntime",)),
                      ("tvm", ("tvm",)), ("tensorflow", ("tensorflow", "tf v", " tf"))):
        if any(p in t for p in pats):
            return key
    return "other"


def read_case(row: dict, index: int = 0, workload: str | None = None) -> Case:
    """The prediction task of one row (see the module docstring). ``workload``, a summary key
    (``sim.hw.summaries.resolve``), predicts that network instead of the one the ``model``
    column names (a what-if of any network: the ``model`` column then only names the
    settings and quality target it follows)."""
    missing = [c for c in REQUIRED_COLUMNS if c not in row]
    if missing:
        raise InputError(f"row {index}: column '{missing[0]}' is missing; expected columns {list(REQUIRED_COLUMNS)}")
    g = {c: (row.get(c) or "").strip() for c in INPUT_COLUMNS}
    version, kind, model, scenario = g["version"], g["accelerator_kind"].lower(), g["model"], g["scenario"]
    base = dict(index=index, system_key=f"{g['submitter']}/{g['system']}", version=version,
                year=round_year(version) or 0.0, submitter=g["submitter"], system=g["system"],
                accelerator=g["accelerator"], kind=kind, model=model, scenario=scenario, units=g["units"])

    def unsupported(reason: str, **kw) -> Case:
        return Case(**{**base, **kw}, unsupported=reason)

    bad = bad_number(g, index)
    if bad:
        return unsupported(bad)
    target = target_of(scenario, g["metric"], g["units"])
    if target is None:
        return unsupported(f"metric {g['metric']!r} in units {g['units']!r} is not one this model predicts")
    if round_year(version) is None:
        return unsupported(f"round {version!r} is not a known MLPerf Inference round", target=target)
    if g["division"].lower() == "open":
        return unsupported("open division: the model may differ from the reference", target=target)
    if workload is None:
        bench = benchmarks.lookup(model, version)
        if bench is None:
            return unsupported(f"model {model!r} has no workload in the catalog; expected one of "
                               f"{benchmarks.names()}", target=target)
        if not bench.ok:
            return unsupported(bench.unsupported, target=target)
        if scenario not in bench.scenarios:
            return unsupported(f"{scenario} is not an MLPerf test of {model} (it defines "
                               f"{', '.join(bench.scenarios)})", target=target)
        workload = bench.workload
    dev = names.normalise(g["accelerator"], kind)
    if dev is None:
        return unsupported(f"accelerator {g['accelerator']!r} ({kind}) matches no hardware profile",
                           target=target, workload=workload)
    try:
        prof = profiles.get(dev.profile)
    except InputError as exc:
        return unsupported(f"profile {dev.profile!r} unreadable: {exc}", target=target, workload=workload)
    if dev.mig_slices and not prof.mig_slices:
        return unsupported(f"a MIG partition of {dev.profile!r}, whose profile gives no mig_slices (the GPU's "
                           f"compute slices under MIG)", target=target, workload=workload, profile=dev.profile)
    if dev.mig_slices and dev.mig_slices * max(1, dev.mig_instances) > prof.mig_slices:
        return unsupported(f"MIG instances of {max(1, dev.mig_instances)} x {dev.mig_slices} slices on "
                           f"{dev.profile!r}, which has {prof.mig_slices}", target=target, workload=workload,
                           profile=dev.profile)
    nodes = _int(g["number_of_nodes"]) or 1
    cores = None
    if prof.kind == "cpu":
        sockets = _int(g["host_processors_per_node"])
        if not sockets:
            return unsupported("CPU system without host_processors_per_node (sockets)", target=target,
                               workload=workload, profile=dev.profile)
        count = sockets * nodes
        if count > MAX_DEVICES:
            return unsupported(f"row {index + 1}: {count:,} CPU sockets (host_processors_per_node x "
                               f"number_of_nodes); expected at most {MAX_DEVICES:,}",
                               target=target, workload=workload, profile=dev.profile)
        cores = _int(g["host_processor_core_count"])
        if cores is not None and prof.compute_units and not (prof.compute_units / 4 <= cores <= prof.compute_units):
            # a named part has no more cores than its datasheet: more is a total over sockets
            # or a thread count (one 2-socket Xeon 8480+ system is published with 56, 112 and
            # 224 by its submitters): keep the profile's cores
            cores = None
    else:
        per_node = _int(g["accelerators_per_node"])
        if not per_node:
            return unsupported(f"accelerators_per_node {g['accelerators_per_node']!r} is not a count",
                               target=target, workload=workload, profile=dev.profile)
        count = per_node * nodes
        if count > MAX_DEVICES:
            return unsupported(f"row {index + 1}: {count:,} accelerators (accelerators_per_node x "
                               f"number_of_nodes); expected at most {MAX_DEVICES:,}",
                               target=target, workload=workload, profile=dev.profile)
        if dev.mig_slices and dev.mig_instances == 1:
            count = 1       # "(1x1g.10gb MIG)": one MIG instance in the whole system runs the test
    bound = None
    if target in ("server", "ms_streams"):
        b = _int(g["target_latency_ns"])
        if not b:
            return unsupported(f"{scenario} row without a latency bound (target_latency_ns)", target=target,
                               workload=workload, profile=dev.profile)
        bound = float(b)
    text = f"{g['system']} {g['framework']}".lower()
    if prof.kind == "gpu" and any(s in text for s in ("reference", "onnxruntime", "pytorch", "armnn", "openvino")):
        return unsupported("GPU run without a vendor inference engine (reference / generic framework): "
                           "no calibration for that software", target=target, workload=workload, profile=dev.profile)
    prec, why = precision.choose(prof, model, g["system"], g["framework"])
    return Case(**base, target=target, profile=dev.profile, workload=workload, devices=count,
                mig_slices=dev.mig_slices, mig_instances=dev.mig_instances, cores=cores, latency_bound_ns=bound,
                power_capped=g["power_measured"].lower() == "yes",
                stack=stack_of(prof.kind, g["system"], g["framework"]),
                triton=bool(re.search(r"triton", text)), precision=prec, precision_reason=why)


def unit_of(case: Case) -> str:
    """The calibration unit: the chip, plus the software stack on CPUs."""
    prof = profiles.get(case.profile)
    return f"{prof.chip}/{case.stack}" if prof.kind == "cpu" else prof.chip
