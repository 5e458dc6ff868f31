"""Sweeps: a grid of what-if questions, run in parallel, written point by point.

A *grid* (a YAML file, format below) names the questions: which devices or cost models,
how many of them, which batching settings, which Server QPS, which workloads, which
scenarios. Every combination is a *point*: a plain mapping of parameters. A point's *id*
is a hash of its parameters (``point_id``), so the same question always has the same
id, and its seed (for random service times) is derived from that id: a point gives the
same metrics whichever worker runs it, in whichever order, on whichever day.

Points run on local processes (``concurrent.futures.ProcessPoolExecutor``) by default,
or on an existing Dask cluster given its scheduler address (``dask.distributed``; the
workers need this package installed). The launching process writes one JSON line per
finished point to the results file, flushed and fsynced before the next one, so a sweep
killed at any moment loses no point it had written, and a rerun with the same results
file skips every id it finds there (a torn last line, from a kill in the middle of a
write, is cut off and ignored). Points that failed are recorded with their error and
are tried again on the next run.

Grid format (YAML)::

    name: batching what-ifs          # optional
    base:                            # fields shared by every point (optional)
      workload: resnet50             # needed by cpu_profile costs; names LoadGen's model
      settings: {min_query_count: 2000, min_duration_ns: 200000000}
    axes:                            # every combination of these lists (optional)
      scenario: [Server, Offline]
      device:
        - {label: fast, kind: affine, a_us: 500, b_us_per_sample: 20}
        - {label: cpu, kind: cpu_profile, small: true}
      accelerators: [1, 2, 4]
      batching:
        - {policy: none}
        - {policy: dynamic, max_batch: 16, max_queue_delay_us: 1000}
      qps: [500, 1000, peak]         # Server only; dropped for other scenarios
    points:                          # extra points, each merged over base (optional)
      - {scenario: SingleStream, device: {kind: fixed, time_us: 800}}

Point fields:

- ``scenario`` (required): SingleStream, MultiStream, Server or Offline.
- ``workload``: a built-in workload or .onnx path (its CPU profile is the cost when no
  device is given; its MLPerf model picks LoadGen's settings); ``small``: its small variant.
- ``mlperf_model``: LoadGen's model name for the settings (default: the workload's, or resnet50).
- ``system``: a system description (mapping, or a path to a system YAML file relative
  to the grid file; see ``sim.sut.system``). The file's content, not its path, goes into the
  point, so editing the file makes new points.
- ``device``: the accelerator's cost: a mapping as a system file's ``accelerators.cost``
  (``kind: fixed | exponential | affine | cpu_profile`` and its fields) plus an optional
  ``label``; or a device profile name of ``hw_profiles/`` (``device: a100-sxm``): the
  calibrated cost of one of its engines for the point's workload (one the hardware model
  covers) and scenario (``sim.hw.whatif``), ``accelerators`` then counting devices.
- ``accelerators``, ``instances``: device count and instances per device.
- ``batching``: a system file's ``batching`` mapping (policy, max_batch, max_queue_delay_us,
  preferred_batch_sizes).
- ``system.<path>``: any other system field, e.g. ``system.host.issue_overhead_us: [1, 5]``.
- ``qps``: the Server target QPS, or ``peak`` to search for the highest VALID QPS
  (``sim.apps.peak.peak_server_qps``; ``search: {rel_tol: 0.01, repeats: 5}`` tunes
  it). Ignored, and dropped from the point, in the other scenarios (so crossing scenarios
  with QPS values does not repeat their points).
- ``settings``: LoadGen test settings by ``TestSettings`` field name in SI units
  (``min_query_count``, ``min_duration_ns``, ``server_target_latency_ns``, ...).
- ``replica``: an integer that only changes the id, hence the seed (repeats of a point
  with random service times).

A record (one JSON line)::

    {"schema": "sim.sweep.record/1", "id": "9f2c...", "params": {...}, "seed": 11488...,
     "metrics": {"metric": "...", "value": ..., "valid": true, "latency_ns": {"p99": ...}, ...},
     "error": null, "elapsed_s": 0.012}

``python -m sim sweep GRID.yaml --out RESULTS.jsonl [--workers N] [--dask tcp://host:8786]``
runs a grid; ``run_sweep`` is the same call from Python, ``read_records`` reads results.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import os
import signal
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Executor, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from dataclasses import replace as _replace
from pathlib import Path

import numpy as np
import yaml

from sim.apps.peak import peak_server_qps
from sim.cost import resolve
from sim.errors import InputError, field_error
from sim.hw import profiles, whatif
from sim.loadgen.scenarios import SCENARIOS
from sim.loadgen.settings import load_settings
from sim.run import mlperf_model_of, simulate
from sim.sut.system import parse_system
from sim.util.yamlfile import read_yaml
from sim.workload.catalog import catalog

RECORD_SCHEMA = "sim.sweep.record/1"
GRID_KEYS = ("name", "description", "base", "axes", "points")
POINT_FIELDS = ("scenario", "workload", "small", "mlperf_model", "system", "device", "accelerators", "instances",
                "batching", "qps", "settings", "search", "replica")
SYSTEM_PREFIX = "system."


# ---- grid: reading, checking, expanding -------------------------------------------------
@dataclass
class Grid:
    """An expanded grid: its points (parameter mappings, distinct ids, in grid order)."""
    source: str
    name: str
    points: list[dict]
    ids: list[str]
    duplicates: int = 0          # combinations that collapsed onto an earlier point


def point_id(params: dict) -> str:
    """The stable id of a point: 16 hex digits of the SHA-256 of its canonical JSON."""
    text = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def seed_of(pid: str) -> int:
    """The seed of random service times of a point, derived from its id."""
    return int(pid, 16)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_value(name: str, value, src: str, where: str, base_dir: Path):
    """Check one field's value (as written at ``where``) and return its normal form."""
    def bad(expected: str):
        return field_error(src, where, value, expected)

    if name.startswith(SYSTEM_PREFIX):
        if len(name) == len(SYSTEM_PREFIX):
            raise bad("a system field path after 'system.', e.g. system.host.issue_overhead_us")
        return value                                       # checked with the whole system
    if name == "scenario":
        if value not in SCENARIOS:
            raise bad(f"one of {list(SCENARIOS)}")
        return value
    if name == "mlperf_model":
        if value is not None and not (isinstance(value, str) and value):
            raise bad("a LoadGen model name (string) or null")
        return value
    if name == "workload":
        if value is None:
            return value
        names = sorted(catalog())
        is_file = isinstance(value, str) and (value.endswith(".onnx") or os.sep in value)
        if not isinstance(value, str) or not (value in names or (is_file and Path(value).is_file())):
            raise bad(f"a built-in workload (one of {names}), an existing .onnx file, or null")
        return value
    if name == "small":
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if name in ("accelerators", "instances"):
        if not _is_int(value) or value < 1:
            raise bad("an integer >= 1")
        return value
    if name == "replica":
        if not _is_int(value) or value < 0:
            raise bad("an integer >= 0")
        return value
    if name == "qps":
        if value == "peak":
            return value
        if not _is_number(value) or value <= 0:
            raise bad("a number > 0 (Server target QPS) or 'peak'")
        return float(value)
    if name == "batching":
        if not isinstance(value, dict):
            raise bad("a mapping like a system file's batching entry (policy, max_batch, ...)")
        return dict(value)
    if name == "device":
        if isinstance(value, str):
            return _check_device_name(value, src, where)
        if not isinstance(value, dict) or "kind" not in value:
            raise bad("a cost mapping {kind: fixed|exponential|affine|cpu_profile, ...} (label optional)")
        if "label" in value and not isinstance(value["label"], str):
            raise field_error(src, f"{where}.label", value["label"], "a string")
        return dict(value)
    if name == "system":
        if isinstance(value, str):
            path = Path(value) if Path(value).is_absolute() else base_dir / value
            if not path.is_file():
                raise bad(f"a system mapping or the path of a system YAML file ({path} does not exist)")
            try:
                data = yaml.safe_load(path.read_text()) or {}
            except yaml.YAMLError as exc:
                raise InputError(f"{path}: not valid YAML ({str(exc).splitlines()[0]}); "
                                 f"expected a system description (from {src}: {where})") from None
            parse_system(data, str(path))
            return data
        if not isinstance(value, dict):
            raise bad("a system mapping or the path of a system YAML file")
        return dict(value)
    if name == "settings":
        if not isinstance(value, dict):
            raise bad("a mapping of LoadGen test settings (TestSettings field names, SI units)")
        try:
            load_settings("resnet50", "Server", overrides=value, allow_unknown_model=True)
        except InputError as exc:
            raise InputError(f"{src}: {where}: {exc}") from None
        return dict(value)
    if name == "search":
        if not isinstance(value, dict) or set(value) - {"rel_tol", "repeats"}:
            raise bad("a mapping with rel_tol (> 0) and/or repeats (>= 1)")
        if "rel_tol" in value and (not _is_number(value["rel_tol"]) or value["rel_tol"] <= 0):
            raise field_error(src, f"{where}.rel_tol", value["rel_tol"], "a number > 0")
        if "repeats" in value and (not _is_int(value["repeats"]) or value["repeats"] < 1):
            raise field_error(src, f"{where}.repeats", value["repeats"], "an integer >= 1")
        return dict(value)
    raise bad(f"a point field: one of {list(POINT_FIELDS)} or system.<path>")


def _check_device_name(name: str, src: str, where: str):
    """A device profile name (``hw_profiles/<name>.yaml``), run through the calibrated hardware model."""
    known = profiles.names()
    if name not in known:
        raise field_error(src, where, name, f"a cost mapping {{kind: fixed|exponential|affine|cpu_profile, ...}} "
                                            f"or a device profile name, one of {sorted(known)}")
    return name


def _field_name(key, src: str, where: str) -> str:
    if not isinstance(key, str) or (key not in POINT_FIELDS and not key.startswith(SYSTEM_PREFIX)):
        raise field_error(src, where, key, f"a point field: one of {list(POINT_FIELDS)} or system.<path>")
    return key


def _check_mapping(d, src: str, where: str, base_dir: Path) -> dict:
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise field_error(src, where, d, "a mapping of point fields")
    return {_field_name(k, src, f"{where}.{k}"): _check_value(k, v, src, f"{where}.{k}", base_dir)
            for k, v in d.items()}


def _set_path(d: dict, path: list[str], value) -> None:
    for key in path[:-1]:
        nxt = d.get(key)
        if nxt is None:
            nxt = d[key] = {}
        elif not isinstance(nxt, dict):
            raise InputError(f"system field '{key}' = {nxt!r}: expected a mapping (to set {'.'.join(path)})")
        d = nxt
    d[path[-1]] = value


def _normal_point(merged: dict, src: str, where: str) -> dict:
    """Drop what does not apply (QPS outside Server) and check the point as a whole."""
    if "scenario" not in merged:
        raise field_error(src, f"{where}.scenario", None, f"one of {list(SCENARIOS)} (required in every point)")
    p = dict(merged)
    if p["scenario"] != "Server":
        p.pop("qps", None)
        p.pop("search", None)
    try:
        system_and_cost(p, build_cost=False)
    except InputError as exc:
        raise InputError(f"{src}: {where} ({describe_point(p)}): {exc}") from None
    return p


def expand(data, src: str = "grid", base_dir: str | Path = ".") -> Grid:
    """Check a grid mapping and list its points (distinct ids, in grid order)."""
    base_dir = Path(base_dir)
    if not isinstance(data, dict) or not data:
        raise InputError(f"{src}: empty grid; expected a mapping with base, axes and/or points (see sim.apps.sweep)")
    for key in data:
        if key not in GRID_KEYS:
            raise field_error(src, str(key), data[key], f"one of {list(GRID_KEYS)} (a point field belongs "
                                                         f"under base, axes or points)")
    base = _check_mapping(data.get("base"), src, "base", base_dir)
    axes_raw = data.get("axes") or {}
    if not isinstance(axes_raw, dict):
        raise field_error(src, "axes", axes_raw, "a mapping of point field -> list of values")
    axes: dict[str, list] = {}
    for key, values in axes_raw.items():
        name = _field_name(key, src, f"axes.{key}")
        if not isinstance(values, list) or not values:
            raise field_error(src, f"axes.{key}", values, "a non-empty list of values")
        axes[name] = [_check_value(name, v, src, f"axes.{key}[{i}]", base_dir) for i, v in enumerate(values)]
    extra = data.get("points") or []
    if not isinstance(extra, list):
        raise field_error(src, "points", extra, "a list of point mappings")
    extra = [_check_mapping(p, src, f"points[{i}]", base_dir) for i, p in enumerate(extra)]
    if not axes and not extra and not base:
        raise InputError(f"{src}: the grid has no points; expected base, axes and/or points")

    raw: list[tuple[str, dict]] = []
    if axes or not extra:
        names = list(axes)
        for k, combo in enumerate(itertools.product(*(axes[n] for n in names))):
            raw.append((f"point {k}", {**base, **dict(zip(names, combo))}))
    raw += [(f"points[{i}]", {**base, **p}) for i, p in enumerate(extra)]

    points, ids, seen = [], [], set()
    for where, merged in raw:
        p = _normal_point(merged, src, where)
        try:
            pid = point_id(p)
        except (TypeError, ValueError):
            raise InputError(f"{src}: {where}: a value is not plain data (numbers, strings, lists, mappings); "
                             f"expected values JSON can hold") from None
        if pid in seen:
            continue
        seen.add(pid)
        points.append(p)
        ids.append(pid)
    name = data.get("name") if isinstance(data.get("name"), str) else Path(src).stem
    return Grid(src, name, points, ids, duplicates=len(raw) - len(points))


def load_grid(path: str | Path) -> Grid:
    path = Path(path)
    data = read_yaml(path, "a sweep grid (see sim.apps.sweep)")
    return expand(data, str(path), path.parent)


# ---- one point: parameters -> (system, cost) -> metrics -----------------------------------
def describe_point(p: dict) -> str:
    parts = [p.get("scenario", "?")]
    dev = p.get("device")
    if isinstance(dev, dict):
        parts.append(dev.get("label") or dev.get("kind", "?"))
    elif dev is not None:
        parts.append(str(dev))
    for key in ("workload", "accelerators", "instances", "qps", "replica"):
        if key in p:
            parts.append(f"{key}={p[key]}")
    if "batching" in p:
        b = p["batching"]
        parts.append(f"batching={b.get('policy', 'none')}/{b.get('max_batch', 1)}")
    return ", ".join(str(x) for x in parts)


def system_mapping(p: dict) -> dict:
    """The system description (as in a system YAML file) a point asks for."""
    sysd = copy.deepcopy(p.get("system") or {})
    changes = {}
    if "accelerators" in p:
        changes["accelerators.count"] = p["accelerators"]
    if "instances" in p:
        changes["accelerators.instances"] = p["instances"]
    if isinstance(p.get("device"), dict):
        changes["accelerators.cost"] = {k: v for k, v in p["device"].items() if k != "label"}
    if "batching" in p:
        changes["batching"] = dict(p["batching"])
    changes.update({k[len(SYSTEM_PREFIX):]: copy.deepcopy(v) for k, v in p.items() if k.startswith(SYSTEM_PREFIX)})
    for path, value in changes.items():
        _set_path(sysd, path.split("."), value)
    composed = _system_name(p, sysd)
    if changes or "name" not in sysd:
        sysd["name"] = f"{sysd['name']}: {composed}" if sysd.get("name") and changes else composed
    return sysd


def _system_name(p: dict, sysd: dict) -> str:
    acc = sysd.get("accelerators") if isinstance(sysd.get("accelerators"), dict) else {}
    dev = p.get("device")
    cost = acc.get("cost") if isinstance(acc.get("cost"), dict) else {}
    label = (dev.get("label") or dev.get("kind")) if isinstance(dev, dict) else (dev or cost.get("kind") or "device")
    bat = sysd.get("batching") if isinstance(sysd.get("batching"), dict) else {}
    policy = bat.get("policy", "none")
    batching = "no batching" if policy == "none" else f"{policy} batching (max {bat.get('max_batch', 1)})"
    inst = acc.get("instances", 1)
    return f"{acc.get('count', 1)}x {label}" + (f" x{inst} instances" if inst != 1 else "") + f", {batching}"


def system_and_cost(p: dict, *, build_cost: bool = True):
    """The one place a grid point becomes a ``SystemSpec`` and a cost model.

    ``device`` mappings are system-file cost entries (synthetic or ``cpu_profile``; the
    latter measured once per process, cached on disk by ``sim.profile.store``); a device
    profile name goes through the calibrated hardware model (``_hw_system_and_cost``). With ``build_cost=False``
    the point is only checked (cheap: nothing is measured) and the cost is ``None``.
    """
    if isinstance(p.get("device"), str):
        return _hw_system_and_cost(p, build_cost)
    sysd = system_mapping(p)
    system = parse_system(sysd, "system")
    workload = p.get("workload")
    spec = system.cost
    if spec is None and workload is None:
        raise InputError("no cost model: expected a device (cost mapping), a system with accelerators.cost, "
                         "or a workload (whose CPU profile is measured)")
    if spec is not None and spec["kind"] == "cpu_profile" and not (spec.get("workload") or workload):
        raise InputError("device kind cpu_profile needs a workload: expected 'workload' in the point or the cost")
    if not build_cost:
        return system, None
    return system, resolve.for_system(system, workload, None, bool(p.get("small", False)), cache=True)


def _hw_system_and_cost(p: dict, build_cost: bool):
    """A point whose device is a profile name: the calibrated cost of one engine
    (``sim.hw.whatif``); ``accelerators`` counts devices (each has the profile's engines)."""

    name, workload = _check_device_name(p["device"], "point", "device"), p.get("workload")
    if workload not in whatif.MODELS:
        raise InputError(f"device {name!r} (a hardware profile) needs a workload the hardware model covers: "
                         f"expected 'workload' one of {sorted(whatif.MODELS)}, got {workload!r}")
    system = parse_system(system_mapping(p), "system")
    if system.cost is not None:
        raise InputError(f"device {name!r} is a hardware profile: the system must not give accelerators.cost too")
    if not build_cost:
        return system, None
    bound = (p.get("settings") or {}).get("server_target_latency_ns")
    e = whatif.engine(name, workload, p["scenario"], system.accelerators, None, bound)
    return _replace(system, accelerators=system.accelerators * e.engines_per_device), e.cost




def _stats(s) -> dict:
    out = {"min": s.min_ns, "mean": s.mean_ns, "max": s.max_ns}
    out.update({f"p{float(k):g}": v for k, v in s.percentiles_ns.items()})
    return out


def run_metrics(r) -> dict:
    """The metrics of one simulated run (``sim.run.RunResult``) kept in a sweep record."""
    m, eng = r.metrics, r.engine
    b = eng.batches
    count = b.get("count", np.zeros(0))
    servers = r.system.servers
    duration_ns = int(eng.sample_complete_ns.max()) if len(eng.sample_complete_ns) else 0
    busy_ns = float((b["end_ns"] - b["start_ns"]).sum()) if len(count) else 0.0
    out = {
        "metric": m.headline_name, "value": m.headline_value, "valid": m.valid,
        "query_count": m.query_count, "sample_count": m.sample_count,
        "latency_ns": _stats(m.sample_latency),
        "min_duration_met": m.min_duration_met, "min_queries_met": m.min_queries_met,
        "perf_constraints_met": m.perf_constraints_met, "early_stopping_met": m.early_stopping_met,
        "early_stopping_estimate_ns": m.early_stopping_estimate_ns,
        "batches": int(len(count)), "mean_batch_size": float(np.mean(count)) if len(count) else 0.0,
        "duration_ns": duration_ns,
        "utilisation": busy_ns / (servers * duration_ns) if duration_ns else 0.0,
        "hints": dict(r.hints),
        "cost_model": r.cost_description,
    }
    if m.query_latency is not None:
        out["query_latency_ns"] = _stats(m.query_latency)
    if r.scenario == "Server":
        out["target_qps"] = float(r.settings.server_target_qps)
        out["target_latency_ns"] = m.target_latency_ns
        out["overlatency_count"] = m.overlatency_count
    return out


def peak_metrics(peak, target_latency_ns: int) -> dict:
    """The metrics of a Server peak search (``sim.loadgen.peak_search.PeakResult``) kept in a record."""
    return {
        "metric": "peak VALID Server QPS", "value": peak.peak_qps, "valid": bool(peak.peak_qps > 0),
        "invalid_qps": peak.invalid_qps, "valid_share_at_peak": peak.valid_share_at_peak,
        "valid_share_at_invalid": peak.valid_share_at_invalid, "repeats": peak.repeats,
        "target_latency_ns": target_latency_ns, "reason": peak.reason,
        "trials": [{"qps": t.qps, "seed_index": t.seed_index, "valid": t.valid, "p99_ns": t.p99_ns,
                    "completed_qps": t.completed_qps} for t in peak.trials],
    }


def _plain(x):
    """JSON-safe copy: numpy scalars to Python, non-finite floats to None."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def run_point(params: dict) -> dict:
    """Run one point and return its record (errors in the point are recorded, not raised)."""
    pid = point_id(params)
    seed = seed_of(pid)
    t0 = time.perf_counter()
    metrics, error = None, None
    try:
        system, cost = system_and_cost(params)
        scenario = params["scenario"]
        workload = params.get("workload")
        model = params.get("mlperf_model") or mlperf_model_of(workload)
        overrides = dict(params.get("settings") or {})
        if scenario == "Server" and params.get("qps") == "peak":
            search = params.get("search") or {}
            peak = peak_server_qps(workload, system, cost, model, None, overrides, seed,
                                   rel_tol=float(search.get("rel_tol", 0.01)), repeats=int(search.get("repeats", 5)))
            bound = load_settings(model, "Server", overrides=overrides, allow_unknown_model=True).target_latency_ns
            metrics = peak_metrics(peak, int(bound))
        else:
            if scenario == "Server" and params.get("qps") is not None:
                overrides["server_target_qps"] = float(params["qps"])
            r = simulate(scenario, workload=workload, system=system, cost=cost, mlperf_model=model,
                         overrides=overrides, seed=seed, small=bool(params.get("small", False)))
            metrics = run_metrics(r)
    except Exception as exc:      # a point's failure is data: recorded, retried on the next run
        error = f"{type(exc).__name__}: {exc}"
    return _plain({"schema": RECORD_SCHEMA, "id": pid, "params": params, "seed": seed, "metrics": metrics,
                   "error": error, "elapsed_s": round(time.perf_counter() - t0, 6)})


# ---- the results file: append-only JSON lines --------------------------------------------
def _parse_lines(data: bytes, path: Path) -> tuple[list[dict], int]:
    """Complete records and the byte length they span (a torn last line is left out)."""
    records, good_end, pos = [], 0, 0
    lines = data.split(b"\n")
    complete = lines[:-1]                      # the piece after the last newline is torn (or empty)
    for i, line in enumerate(complete):
        end = pos + len(line) + 1
        try:
            rec = json.loads(line) if line.strip() else None
            ok = rec is None or (isinstance(rec, dict) and isinstance(rec.get("id"), str))
        except ValueError:
            ok = False
        if not ok:
            if i == len(complete) - 1 and not lines[-1]:
                break                          # a damaged last line: treated as torn
            raise InputError(f"{path}: line {i + 1} is not a sweep record; expected one JSON object per line "
                             f"(schema {RECORD_SCHEMA})")
        if rec is not None:
            records.append(rec)
        pos = good_end = end
    return records, good_end


def read_records(path: str | Path, *, latest: bool = True) -> list[dict]:
    """The records of a results file (with ``latest``: the last record of each id, in file order)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file; expected sweep results (JSON lines)")
    records, _ = _parse_lines(path.read_bytes(), path)
    if not latest:
        return records
    last = {r["id"]: r for r in records}
    return [r for r in records if last[r["id"]] is r]


class ResultsFile:
    """The results file, open for appending, locked against a second writer."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.fh = None
        self.created = False
        self.appended = 0

    def open(self) -> dict[str, dict]:
        """Open (creating it), cut a torn last line, return the finished records by id."""
        if self.path.is_dir():
            raise InputError(f"--out {self.path}: is a folder; expected a results file (JSON lines)")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.created = not self.path.exists()
            self.fh = open(self.path, "a+b")
        except OSError as exc:
            raise InputError(f"--out {self.path}: cannot open for writing ({exc.strerror})") from None
        try:
            import fcntl  # noqa: PLC0415 - POSIX only: Windows has no fcntl
            fcntl.flock(self.fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:
            pass
        except OSError:
            self.created = False
            self.close()
            raise InputError(f"--out {self.path}: another sweep is writing this file; expected one writer") from None
        self.fh.seek(0)
        data = self.fh.read()
        records, good_end = _parse_lines(data, self.path)
        if good_end < len(data):
            self.fh.truncate(good_end)
            os.fsync(self.fh.fileno())
        return {r["id"]: r for r in records if r.get("error") is None and r.get("metrics") is not None}

    def append(self, record: dict) -> None:
        line = json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=False) + "\n"
        self.fh.write(line.encode())
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.appended += 1

    def close(self) -> None:
        """Close; a file this run created and never wrote to is removed (nothing half-made is left)."""
        if self.fh is not None:
            self.fh.close()
            self.fh = None
            if self.created and not self.appended:
                try:
                    self.path.unlink()
                except OSError:
                    pass


# ---- progress bar --------------------------------------------------------------------------
class ProgressBar:
    """A one-line progress bar on stderr: done/total, rate, time left. Redrawn at most 10 times a second."""

    def __init__(self, total: int, done: int = 0, *, label: str = "sweep", stream=None, width: int = 28):
        self.total, self.done, self.start_done = total, done, done
        self.label, self.width = label, width
        self.stream = stream or sys.stderr
        self.t0 = time.perf_counter()
        self._last = 0.0
        self._shown = None
        self.note = ""
        enc = (getattr(self.stream, "encoding", None) or "ascii").lower()
        self.fill, self.empty = ("\u2588", "\u00b7") if "utf" in enc else ("#", "-")
        self._draw(force=True)

    def update(self, n: int = 1, note: str = "") -> None:
        self.done += n
        self.note = note
        self._draw()

    def _draw(self, force: bool = False) -> None:
        now = time.perf_counter()
        if (not force and now - self._last < 0.1 and self.done < self.total) or self._shown == self.done:
            return
        self._last, self._shown = now, self.done
        note = self.note
        frac = self.done / self.total if self.total else 1.0
        filled = int(round(frac * self.width))
        elapsed = now - self.t0
        ran = self.done - self.start_done
        rate = ran / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else None
        eta = f"{int(left // 60)}:{int(left % 60):02d}" if left is not None else "-:--"
        text = (f"\r{self.label} |{self.fill * filled}{self.empty * (self.width - filled)}| "
                f"{self.done}/{self.total} {frac:4.0%}  {rate:6.1f} points/s  left {eta}"
                + (f"  {note}" if note else ""))
        self.stream.write(text.ljust(90))
        self.stream.flush()

    def close(self) -> None:
        self._draw(force=True)
        self.stream.write("\n")
        self.stream.flush()


# ---- running -------------------------------------------------------------------------------
@dataclass
class SweepSummary:
    out: Path
    points: int                  # distinct points in the grid
    already_done: int            # found finished in the results file
    ran: int                     # run now
    errors: list[str] = field(default_factory=list)     # "id: message" of points that failed now
    elapsed_s: float = 0.0
    executor: str = ""

    @property
    def points_per_s(self) -> float:
        return self.ran / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def describe(self) -> str:
        text = (f"{self.points} points: {self.already_done} already in {self.out}, {self.ran} run now "
                f"in {self.elapsed_s:.1f} s ({self.points_per_s:.1f} points/s, {self.executor})")
        if self.errors:
            text += f"; {len(self.errors)} failed (recorded with their error, retried on the next run): " \
                    + "; ".join(self.errors[:3]) + (" ..." if len(self.errors) > 3 else "")
        return text


def _worker_init(results_fd: int | None = None, results_id: tuple | None = None) -> None:
    """Set up a local worker: it ignores Ctrl-C and dies with the sweep (Linux), so a killed
    sweep leaves no orphans running, and it drops its inherited copy of the results file (a forked child
    would otherwise keep the file's lock alive after the sweep itself is gone; a spawned
    child has no such copy, hence the check that the descriptor is that file)."""
    if results_fd is not None:
        try:
            st = os.fstat(results_fd)
            if (st.st_dev, st.st_ino) == tuple(results_id):
                os.close(results_fd)
        except OSError:
            pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # Ctrl-C is the sweep's to handle, not each worker's
    if sys.platform.startswith("linux"):
        try:
            import ctypes  # noqa: PLC0415 - Linux only (prctl)
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def _results_fd_args(results: "ResultsFile") -> tuple:
    st = os.fstat(results.fh.fileno())
    return results.fh.fileno(), (st.st_dev, st.st_ino)


def _run_chunk(chunk: list[dict]) -> list[dict]:
    return [run_point(p) for p in chunk]


def _dask_executor(address: str, timeout_s: float):
    """A client of the running scheduler at ``address``, its executor, and its worker threads."""
    try:
        from distributed import Client  # noqa: PLC0415 - optional extra: dask
    except ImportError:
        raise InputError(f"--dask {address}: dask.distributed is not installed; expected "
                         f"pip install 'mlperf-inference-sim[dask]'") from None
    try:
        client = Client(address, timeout=f"{timeout_s}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else ""
        raise InputError(f"--dask {address}: cannot reach a Dask scheduler within {timeout_s:g} s "
                         f"({type(exc).__name__}: {detail}); expected the address of a running scheduler, "
                         f"e.g. tcp://host:8786") from None
    threads = sum(client.nthreads().values())
    return client, client.get_executor(pure=False), max(1, threads)


def run_sweep(grid: Grid | str | Path, out: str | Path, *, workers: int | None = None, dask: str | None = None,
              dask_timeout_s: float = 10.0, progress: bool | None = None, chunk: int = 1,
              executor: Executor | None = None) -> SweepSummary:
    """Run the grid's points not yet in ``out``; append one record per point as it finishes.

    ``workers``: local processes (default: the CPU count; 1 runs in this process).
    ``dask``: a Dask scheduler address instead (``dask_timeout_s`` to connect).
    ``progress``: the bar on stderr (default: only when stderr is a terminal).
    ``chunk``: points per task (more amortises the per-task cost of tiny points; a kill
    then loses at most the chunks in flight, never a written record).
    ``executor``: any ``concurrent.futures.Executor`` to run on instead.
    Raises ``InputError`` before writing anything when the grid, the results file or the
    scheduler is unusable.
    """
    if not isinstance(grid, Grid):
        grid = load_grid(grid)
    if workers is not None and workers < 1:
        raise InputError(f"--workers {workers}: expected an integer >= 1")
    if chunk < 1:
        raise InputError(f"chunk {chunk}: expected an integer >= 1")
    client = None
    n_workers = workers or os.cpu_count() or 1
    if dask:
        client, executor, n_workers = _dask_executor(dask, dask_timeout_s)
        kind = f"Dask {dask}, {n_workers} workers"
    elif executor is not None:
        kind = type(executor).__name__
    else:
        kind = f"{n_workers} local process{'es' if n_workers > 1 else ''}"
    results = ResultsFile(out)
    own_executor = False
    bar = None
    ok = False
    try:
        finished = results.open()
        pending = [p for p, pid in zip(grid.points, grid.ids) if pid not in finished]
        summary = SweepSummary(Path(out), len(grid.points), len(grid.points) - len(pending), 0, executor=kind)
        if progress is None:
            progress = sys.stderr.isatty()
        t0 = time.perf_counter()
        _measure_profiles_first(pending, grid.source)
        if progress:
            bar = ProgressBar(len(grid.points), summary.already_done, label=grid.name)

        def record(rec: dict) -> None:
            results.append(rec)
            summary.ran += 1
            if rec["error"] is not None:
                summary.errors.append(f"{rec['id']} ({describe_point(rec['params'])}): {rec['error']}")
            if bar:
                bar.update(1, note=f"{len(summary.errors)} failed" if summary.errors else "")

        chunks = [pending[i:i + chunk] for i in range(0, len(pending), chunk)]
        if executor is None and n_workers == 1:
            for c in chunks:
                for rec in _run_chunk(c):
                    record(rec)
        elif chunks:
            if executor is None:
                executor = ProcessPoolExecutor(max_workers=min(n_workers, len(chunks)), initializer=_worker_init,
                                               initargs=_results_fd_args(results))
                own_executor = True
            _drive(executor, chunks, record, in_flight=max(4, 4 * n_workers))
        summary.elapsed_s = time.perf_counter() - t0
        ok = True
        return summary
    finally:
        if bar:
            bar.close()
        results.close()
        if own_executor:
            executor.shutdown(wait=ok, cancel_futures=not ok)
        if client is not None:
            client.close()


def _measure_profiles_first(points: list[dict], source: str) -> None:
    """Measure each CPU profile the points need once, here, before workers start (they load it)."""

    seen = set()
    if any(isinstance(p.get("device"), str) for p in points):
        whatif.default_calibration()   # fitted (or loaded) once here: workers load the cached fit
    for p in points:
        if isinstance(p.get("device"), str):
            continue
        system, _ = system_and_cost(p, build_cost=False)
        if system.cost is None or system.cost["kind"] == "cpu_profile":
            key = json.dumps([system.cost, p.get("workload"), p.get("small"), system.batching.max_batch],
                             sort_keys=True)
            if key not in seen:
                seen.add(key)
                try:
                    system_and_cost(p)
                except InputError as exc:
                    raise InputError(f"{source}: the CPU profile of point {point_id(p)} ({describe_point(p)}): "
                                     f"{exc}") from None


def _drive(executor: Executor, chunks: list[list[dict]], record, in_flight: int) -> None:
    """Keep ``in_flight`` tasks submitted; write each finished task's records at once."""
    it = iter(chunks)
    futures: dict = {}

    def fill() -> None:
        while len(futures) < in_flight:
            c = next(it, None)
            if c is None:
                return
            futures[executor.submit(_run_chunk, c)] = c

    try:
        fill()
        while futures:
            done, _ = wait(list(futures), return_when=FIRST_COMPLETED)
            for f in done:
                c = futures.pop(f)
                try:
                    recs = f.result()
                except Exception as exc:
                    raise InputError(f"the executor could not run point {point_id(c[0])} ({describe_point(c[0])}): "
                                     f"{type(exc).__name__}: {exc}; expected workers that can import this "
                                     f"package (sim)") from None
                for rec in recs:
                    record(rec)
            fill()
    finally:
        for f in futures:
            f.cancel()


def flatten(record: dict) -> dict:
    """One flat row of a record: ``id``, ``error``, parameters and metrics as dotted keys
    (``batching.policy``, ``metrics.latency_ns.p99``), for a table; lists (a peak search's
    trials) are left out."""
    row = {"id": record["id"], "error": record.get("error")}

    def walk(prefix: str, x) -> None:
        if isinstance(x, dict):
            for k, v in x.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        elif not isinstance(x, list):
            row[prefix] = x

    walk("", {k: v for k, v in record["params"].items()})
    walk("metrics", record.get("metrics") or {})
    return row
