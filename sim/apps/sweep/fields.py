"""The fields of a sweep point: their names and the check of each value as written in a grid
(returning its normal form; a system file named by path is read here, so its content goes into
the point). A grid may name any path as its system file: until the file is seen to be a system
description (a mapping of system fields), no error quotes what it holds."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

from sim.errors import InputError, field_error
from sim.hw import profiles
from sim.loadgen.scenarios import SCENARIOS
from sim.loadgen.settings import load_settings
from sim.sut.system import parse_system
from sim.util.yamlfile import read_yaml
from sim.workload.catalog import catalog

POINT_FIELDS = ("scenario", "workload", "small", "mlperf_model", "system", "device", "accelerators", "instances",
                "batching", "qps", "settings", "search", "replica")
SYSTEM_PREFIX = "system."
#: The top-level fields of a system description (``sim.sut.system``).
SYSTEM_KEYS = ("name", "host", "batching", "accelerators", "link")
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,39}\Z")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_value(name: str, value, src: str, where: str, base_dir: Path):
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
            return check_device_name(value, src, where)
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
                data = read_yaml(path, "a system description", quote=False) or {}
            except InputError as exc:
                raise InputError(f"{exc} (from {src}: {where})") from None
            _check_system_file(data, path, src, where)
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


def _check_system_file(data, path: Path, src: str, where: str) -> None:
    """Refuse a file that is not a mapping of system fields, quoting none of its content (the
    grid may name any readable file)."""
    named = f"(from {src}: {where})"
    if not isinstance(data, dict):
        raise InputError(f"{path}: the file holds a YAML {type(data).__name__}, not a mapping; expected a system "
                         f"description with fields {', '.join(SYSTEM_KEYS)} {named}")
    for key in data:
        if key not in SYSTEM_KEYS:
            shown = f"'{key}'" if isinstance(key, str) and _PLAIN_KEY.match(key) else "a key"
            raise InputError(f"{path}: {shown} is not a system field; expected a system description with fields "
                             f"{', '.join(SYSTEM_KEYS)} {named}")


def check_device_name(name: str, src: str, where: str):
    """A device profile name (``hw_profiles/<name>.yaml``), run through the calibrated hardware model."""
    known = profiles.names()
    if name not in known:
        raise field_error(src, where, name, f"a cost mapping {{kind: fixed|exponential|affine|cpu_profile, ...}} "
                                            f"or a device profile name, one of {sorted(known)}")
    return name


def field_name(key, src: str, where: str) -> str:
    if not isinstance(key, str) or (key not in POINT_FIELDS and not key.startswith(SYSTEM_PREFIX)):
        raise field_error(src, where, key, f"a point field: one of {list(POINT_FIELDS)} or system.<path>")
    return key
