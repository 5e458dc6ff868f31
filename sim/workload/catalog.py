"""Workloads: the built-in MLPerf models by name, or any ``.onnx`` file a user gives.

The catalog lives in ``workloads/*.yaml`` at the top of the repository, one file per
workload: the builder that makes the ONNX graph in code, its default parameters, the
parameters of its small variant (for fast tests), and the MLPerf model name whose
LoadGen settings apply. A built model is cached as ``<cache>/models/<name>-<hash>.onnx``
so a profile and a layer table refer to the same bytes; the key covers the builder's
parameters, seed and source code. A cached file that no longer loads (cut short by a full
disk, say) is built again and replaced.

A user's ``.onnx`` file is checked before use: it must exist, parse as ONNX, and keep
any external-data files inside its own folder. Every tensor the model holds is checked
(``model_tensors``): graph initializers (dense and sparse), tensors in node attributes
(``Constant``'s ``value`` and ``sparse_value``, any tensor attribute), and the same inside
subgraphs (``If``, ``Loop``, ``Scan`` bodies) and model-local functions, at any depth. The
external data is then read into the model, so onnxruntime never opens a file itself.

Input shape overrides (``--input-shape x=Nx3x224x224``, ``sim.workload.inputs``) give sizes to
a user's model whose inputs leave dimensions free: ``load_file`` writes them into the loaded
model's inputs (the batch dimension stays free), so its layer table, feeds and hash all follow
them. The command line sets them for the whole process (``set_input_shapes``, kept in the
environment variable ``SIM_INPUT_SHAPES`` so worker processes see them too); they apply to
``.onnx`` files only, never to catalog workloads, which take builder parameters instead.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sim.errors import InputError, field_error
from sim.paths import REPO_ROOT
from sim.util import atomic
from sim.util.yamlfile import read_yaml
from sim.workload.inputs import apply_input_shapes, format_shape, parse_input_shapes
from sim.workload.inputs import input_shapes as concrete_shapes

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
    precision: str = ""             # numerics the MLPerf submissions run (MLPerf Mobile: int8 / uint8)


@dataclass(frozen=True)
class Workload:
    """A concrete model: its name, ONNX proto, the file it lives in and its content hash."""
    name: str
    mlperf_model: str
    model: onnx.ModelProto
    path: Path
    sha256: str
    params: dict
    input_shapes: dict = field(default_factory=dict)   # overrides applied to a user's file (None: the batch)


_REQUIRED = {"name": str, "builder": str, "mlperf_model": str, "description": str}


def _load_spec(path: Path) -> WorkloadSpec:
    data = read_yaml(path, "a workload description")
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping of workload fields")
    for key, typ in _REQUIRED.items():
        if not isinstance(data.get(key), typ):
            raise field_error(str(path), key, data.get(key), f"a {typ.__name__}")
    for key in ("params", "small"):
        if not isinstance(data.get(key, {}), dict):
            raise field_error(str(path), key, data.get(key), "a mapping of builder parameters")
    known = set(_REQUIRED) | {"params", "small", "source", "precision"}
    extra = set(data) - known
    if extra:
        raise field_error(str(path), sorted(extra)[0], data[sorted(extra)[0]], f"one of {sorted(known)}")
    return WorkloadSpec(name=data["name"], builder=data["builder"], mlperf_model=data["mlperf_model"],
                        description=data["description"], params=data.get("params") or {},
                        small=data.get("small") or {}, source=data.get("source", ""),
                        precision=str(data.get("precision", "")))


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
    model = _load_cached(path) if path.exists() else None
    if model is None:         # not built yet, or a damaged cache entry: build it and (re)write it atomically
        try:
            model = builder(seed=seed, **merged)
        except TypeError as exc:
            raise InputError(f"workload {name!r}: bad parameters {params}: {exc}") from None
        atomic.write_bytes(path, model.SerializeToString(deterministic=True))
    return Workload(name=label, mlperf_model=spec.mlperf_model, model=model, path=path,
                    sha256=model_sha256(model), params=merged)


def _load_cached(path: Path):
    """A cached built model, or None when the file does not load as a whole model (it is rebuilt)."""
    import onnx  # noqa: PLC0415 - loaded only where a model is: listing the catalog needs no onnx
    try:
        model = onnx.load(str(path))
    except Exception:   # protobuf's DecodeError and the like: a file cut short or overwritten
        return None
    # a file cut at a field boundary can still parse: the graph (or the opset list written after it) is missing
    if not model.graph.node or not model.graph.output or not model.opset_import:
        return None
    return model


def _graph_tensors(graph, where: str):
    """(tensor, where it sits) for every tensor of ``graph`` and its subgraphs (``model_tensors``)."""
    yield from ((t, f"{where}initializer '{t.name}'") for t in graph.initializer)
    for sparse in graph.sparse_initializer:
        name = sparse.values.name
        yield from ((t, f"{where}sparse initializer '{name}'") for t in (sparse.values, sparse.indices))
    yield from _node_tensors(graph.node, where)


def _node_tensors(nodes, where: str):
    for i, node in enumerate(nodes):
        label = f"{where}node '{node.name or i}' ({node.op_type})"
        for a in node.attribute:
            at = f"{label} attribute '{a.name}'"
            if a.HasField("t"):
                yield a.t, at
            yield from ((t, at) for t in a.tensors)
            if a.HasField("sparse_tensor"):
                yield from ((t, at) for t in (a.sparse_tensor.values, a.sparse_tensor.indices))
            for s in a.sparse_tensors:
                yield from ((t, at) for t in (s.values, s.indices))
            if a.HasField("g"):
                yield from _graph_tensors(a.g, f"{at}: ")
            for g in a.graphs:
                yield from _graph_tensors(g, f"{at}: ")


def model_tensors(model: onnx.ModelProto):
    """(tensor, where it sits) for every tensor ``model`` holds: initializers, attribute tensors,
    subgraphs and local functions, at any depth (the module docstring)."""
    yield from _graph_tensors(model.graph, "")
    for f in model.functions:
        yield from _node_tensors(f.node, f"function '{f.name}': ")
    for k, info in enumerate(model.training_info):
        for graph in (info.initialization, info.algorithm):
            yield from _graph_tensors(graph, f"training_info[{k}]: ")


def _check_external_data(model: onnx.ModelProto, path: Path) -> list:
    """The tensors keeping their data in external files, each checked to be inside the model's folder."""
    import onnx  # noqa: PLC0415 - loaded only where a model is: listing the catalog needs no onnx

    folder = path.parent.resolve()
    external = []
    for tensor, where in model_tensors(model):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        loc = {e.key: e.value for e in tensor.external_data}.get("location", "")
        target = (folder / loc).resolve()
        if not loc or os.path.isabs(loc) or folder not in target.parents:
            raise InputError(f"{path}: {where} keeps its data at {loc[:200]!r}, outside the model's "
                             f"folder; expected external data inside {folder}")
        if not target.is_file():
            raise InputError(f"{path}: {where} external data file {loc[:200]!r} is missing; expected it "
                             f"inside {folder}")
        external.append((tensor, where))
    return external


def _load_external_data(external: list, path: Path) -> None:
    """Read each checked external tensor's data into the model (onnxruntime then opens no file)."""
    import onnx  # noqa: PLC0415 - loaded only where a model is: listing the catalog needs no onnx
    from onnx.external_data_helper import load_external_data_for_tensor  # noqa: PLC0415 - as above

    for tensor, where in external:
        try:
            load_external_data_for_tensor(tensor, str(path.parent))
        except Exception as exc:  # onnx raises ValueError, OSError and its own checker errors
            reason = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
            raise InputError(f"{path}: {where}: its external data cannot be read ({reason}); expected the "
                             f"offset and length inside the data file") from None
        tensor.data_location = onnx.TensorProto.DEFAULT
        del tensor.external_data[:]


#: The environment variable holding the process's input shape overrides (``set_input_shapes``).
INPUT_SHAPES_ENV = "SIM_INPUT_SHAPES"


def set_input_shapes(specs) -> dict[str, tuple]:
    """Parse ``--input-shape`` values and make them the overrides of every ``.onnx`` file this
    process (and the worker processes it starts) loads; None or empty clears them."""
    shapes = parse_input_shapes(specs)
    if shapes:
        os.environ[INPUT_SHAPES_ENV] = ",".join(f"{k}={format_shape(v)}" for k, v in shapes.items())
    else:
        os.environ.pop(INPUT_SHAPES_ENV, None)
    return shapes


def input_shapes_set() -> dict[str, tuple]:
    """The process's input shape overrides (``set_input_shapes``); {} when none."""
    return parse_input_shapes(os.environ.get(INPUT_SHAPES_ENV) or None, f"{INPUT_SHAPES_ENV} (--input-shape)")


def load_file(path: str | os.PathLike, input_shapes: dict | None = None) -> Workload:
    """Load a user's ONNX file, refusing external data outside its folder; ``input_shapes``
    (default: the process's, ``input_shapes_set``) fix its free input dimensions."""
    import onnx  # noqa: PLC0415 - loaded only where a model is: listing the catalog needs no onnx
    shapes = input_shapes_set() if input_shapes is None else dict(input_shapes)
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file; expected an ONNX model file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises its own DecodeError types
        raise InputError(f"{path}: not an ONNX model ({type(exc).__name__}); expected an ONNX protobuf file") from None
    if not model.graph.node:
        raise InputError(f"{path}: the graph has no nodes; expected an ONNX model")
    _load_external_data(_check_external_data(model, path), path)
    apply_input_shapes(model, shapes, str(path))
    concrete_shapes(model, 1, source=str(path))      # every dimension but the batch has a size, or one line
    return Workload(name=path.stem, mlperf_model=path.stem, model=model, path=path,
                    sha256=model_sha256(model), params={}, input_shapes=shapes)


def is_file(name_or_path: str) -> bool:
    """Whether a workload argument names a ``.onnx`` file (else a catalog name)."""
    return name_or_path.endswith(".onnx") or os.sep in name_or_path


def resolve(name_or_path: str, small: bool = False, seed: int = 0, input_shapes: dict | None = None,
            **params) -> Workload:
    """A catalog name or a path to a ``.onnx`` file (``input_shapes``: ``load_file``)."""
    if is_file(name_or_path):
        return load_file(name_or_path, input_shapes)
    if input_shapes:
        raise InputError(f"workload {name_or_path!r}: --input-shape applies to .onnx files; expected builder "
                         f"parameters for a catalog workload")
    return build(name_or_path, small=small, seed=seed, **params)


def layer_table(workload: Workload, batch: int = 1):
    """The layer table (``sim.workload.layers``) of a resolved workload at ``batch``, with its
    input shape overrides applied and its file named in any message."""
    from sim.workload import layers  # noqa: PLC0415 - loads onnx: only where a table is built

    return layers.layer_table(workload.model, batch=batch, name=workload.name, source=str(workload.path))
