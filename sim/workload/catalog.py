"""Workloads: the built-in MLPerf models by name, or any ``.onnx`` file a user gives.

The catalog lives in ``workloads/*.yaml`` at the top of the repository, one file per
workload: the builder that makes the ONNX graph in code, its default parameters, the
parameters of its small variant (for fast tests), and the MLPerf model name whose
LoadGen settings apply. A built model is cached as ``<cache>/models/<name>-<hash>.onnx``
so a profile and a layer table refer to the same bytes; the key covers the builder's
parameters, seed and source code.

A user's ``.onnx`` file is checked before use: it must exist, parse as ONNX, and keep
any external-data files inside its own folder.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from sim.errors import InputError, field_error
from sim.paths import REPO_ROOT
from sim.util import atomic

if TYPE_CHECKING:
    import onnx

WORKLOADS_DIR = Path(os.environ.get("SIM_WORKLOADS_DIR", REPO_ROOT / "workloads"))


def cache_dir() -> Path:
    """Where built models and measured profiles are kept (``SIM_CACHE_DIR`` overrides)."""
    env = os.environ.get("SIM_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mlperf-sim"


@dataclass(frozen=True)
class WorkloadSpec:
    name: str
    builder: str                    # "module:function"
    mlperf_model: str               # key into LoadGen settings (resnet50, bert, ...)
    description: str
    params: dict = field(default_factory=dict)
    small: dict = field(default_factory=dict)
    source: str = ""


@dataclass(frozen=True)
class Workload:
    """A concrete model: its name, ONNX proto, the file it lives in and its content hash."""
    name: str
    mlperf_model: str
    model: onnx.ModelProto
    path: Path
    sha256: str
    params: dict


_REQUIRED = {"name": str, "builder": str, "mlperf_model": str, "description": str}


def _load_spec(path: Path) -> WorkloadSpec:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML ({exc}); expected a workload description") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping of workload fields")
    for key, typ in _REQUIRED.items():
        if not isinstance(data.get(key), typ):
            raise field_error(str(path), key, data.get(key), f"a {typ.__name__}")
    for key in ("params", "small"):
        if not isinstance(data.get(key, {}), dict):
            raise field_error(str(path), key, data.get(key), "a mapping of builder parameters")
    known = set(_REQUIRED) | {"params", "small", "source"}
    extra = set(data) - known
    if extra:
        raise field_error(str(path), sorted(extra)[0], data[sorted(extra)[0]], f"one of {sorted(known)}")
    return WorkloadSpec(name=data["name"], builder=data["builder"], mlperf_model=data["mlperf_model"],
                        description=data["description"], params=data.get("params") or {},
                        small=data.get("small") or {}, source=data.get("source", ""))


def catalog() -> dict[str, WorkloadSpec]:
    """All built-in workloads, by name."""
    specs = {}
    for path in sorted(WORKLOADS_DIR.glob("*.yaml")):
        spec = _load_spec(path)
        specs[spec.name] = spec
    return specs


def _builder(spec: WorkloadSpec):
    module, _, func = spec.builder.partition(":")
    return getattr(importlib.import_module(module), func)


def model_sha256(model: onnx.ModelProto) -> str:
    return hashlib.sha256(model.SerializeToString(deterministic=True)).hexdigest()


def build(name: str, small: bool = False, seed: int = 0, **params) -> Workload:
    """Build a catalog workload (``small`` picks its fast variant); cached on disk."""
    import onnx  # noqa: PLC0415 - loaded only where a model is: listing the catalog needs no onnx
    specs = catalog()
    if name not in specs:
        raise InputError(f"unknown workload {name!r}: expected a .onnx file or one of {sorted(specs)}")
    spec = specs[name]
    merged = {**spec.params, **(spec.small if small else {}), **params}
    builder = _builder(spec)
    code = hashlib.sha256()
    for mod in ("sim.workload.graphs.builder", builder.__module__):   # a changed builder makes a new file
        code.update(Path(importlib.import_module(mod).__file__).read_bytes())
    key = hashlib.sha256(json.dumps({"b": spec.builder, "p": merged, "s": seed, "code": code.hexdigest()},
                                    sort_keys=True, default=str).encode()).hexdigest()[:16]
    label = f"{name}-small" if small else name
    path = cache_dir() / "models" / f"{label}-{key}.onnx"
    if path.exists():
        model = onnx.load(str(path))
    else:
        try:
            model = builder(seed=seed, **merged)
        except TypeError as exc:
            raise InputError(f"workload {name!r}: bad parameters {params}: {exc}") from None
        atomic.write_bytes(path, model.SerializeToString(deterministic=True))
    return Workload(name=label, mlperf_model=spec.mlperf_model, model=model, path=path,
                    sha256=model_sha256(model), params=merged)


def _check_external_data(model: onnx.ModelProto, path: Path) -> None:
    import onnx  # noqa: PLC0415 - loaded only where a model is: listing the catalog needs no onnx

    folder = path.parent.resolve()
    for tensor in model.graph.initializer:
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        loc = {e.key: e.value for e in tensor.external_data}.get("location", "")
        target = (folder / loc).resolve()
        if os.path.isabs(loc) or folder not in target.parents:
            raise InputError(f"{path}: tensor '{tensor.name}' keeps its data at {loc!r}, outside the model's "
                             f"folder; expected external data inside {folder}")
        if not target.is_file():
            raise InputError(f"{path}: tensor '{tensor.name}' external data file {loc!r} is missing")


def load_file(path: str | os.PathLike) -> Workload:
    """Load a user's ONNX file, refusing external data outside its folder."""
    import onnx  # noqa: PLC0415 - loaded only where a model is: listing the catalog needs no onnx
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file; expected an ONNX model file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises its own DecodeError types
        raise InputError(f"{path}: not an ONNX model ({type(exc).__name__}); expected an ONNX protobuf file") from None
    if not model.graph.node:
        raise InputError(f"{path}: the graph has no nodes; expected an ONNX model")
    _check_external_data(model, path)
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        onnx.load_external_data_for_model(model, str(path.parent))
    return Workload(name=path.stem, mlperf_model=path.stem, model=model, path=path,
                    sha256=model_sha256(model), params={})


def resolve(name_or_path: str, small: bool = False, seed: int = 0, **params) -> Workload:
    """A catalog name or a path to a ``.onnx`` file."""
    if name_or_path.endswith(".onnx") or os.sep in name_or_path:
        return load_file(name_or_path)
    return build(name_or_path, small=small, seed=seed, **params)
