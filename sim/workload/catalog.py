"""Workloads: the built-in MLPerf models by name, or any ``.onnx`` file a user gives.

The catalog lives in ``workloads/*.yaml`` at the top of the repository, one file per
workload: the builder that makes the ONNX graph in code, its default parameters, the
parameters of its small variant (for fast tests), and the MLPerf model name whose
LoadGen settings apply. A built model is cached as ``<cache>/models/<name>-<hash>.onnx``
so a profile and a layer table refer to the same bytes; the key covers the builder's
parameters, seed and source code. A cached file that no longer loads (cut short by a full
disk, say) is built again and replaced. The file is written and read a protobuf record at a time
(its bytes are exactly ``SerializeToString(deterministic=True)``, hashed as they pass), so a
model's bytes never sit in memory whole beside the model: building or loading BERT-large (1.3 GB
of weights) peaks near 1.6 GB instead of 4 GB.

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
    loaded = _load_cached(path) if path.exists() else None
    if loaded is None:        # not built yet, or a damaged cache entry: build it and (re)write it atomically
        try:
            model = builder(seed=seed, **merged)
        except TypeError as exc:
            raise InputError(f"workload {name!r}: bad parameters {params}: {exc}") from None
        sha = _write_model(path, model)
    else:
        model, sha = loaded
    return Workload(name=label, mlperf_model=spec.mlperf_model, model=model, path=path, sha256=sha, params=merged)


# ---- the cache file, written and read piece by piece --------------------------------
# A model's bytes (``SerializeToString(deterministic=True)``) in one piece cost about three times
# their size at the peak (protobuf's growing buffer, then the bytes object): 4 GB for BERT-large.
# The file is the same bytes, written and read a field at a time: a protobuf message is its fields
# in field-number order, each a key (field number, wire type) and, for a message or bytes, the
# length then the content; parsing a concatenation of such records merges them, so reading the
# file record by record gives the same model as parsing it whole.
_GRAPH_FIELD = 7          # ModelProto.graph
_INITIALIZER_FIELD = 5    # GraphProto.initializer
_RAW_DATA_FIELD = 9       # TensorProto.raw_data
_MERGE_BYTES = 1 << 24    # records merged into the model at a time when reading


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _key(number: int) -> bytes:
    return _varint(number << 3 | 2)      # wire type 2: length-delimited


def _repeated(fd) -> bool:
    flag = getattr(fd, "is_repeated", None)     # protobuf >= 5.28; ``label`` before
    return flag if flag is not None else fd.label == fd.LABEL_REPEATED


def _fields_bytes(msg, numbers) -> bytes:
    """The bytes of ``msg``'s set fields whose numbers pass ``numbers`` (in field-number order)."""
    part = type(msg)()
    for fd, value in msg.ListFields():
        if not numbers(fd.number):
            continue
        if _repeated(fd):
            getattr(part, fd.name).extend(value)
        elif fd.message_type is not None:
            getattr(part, fd.name).CopyFrom(value)
        else:
            setattr(part, fd.name, value)
    return part.SerializeToString(deterministic=True)


def _tensor_plan(t) -> tuple[int, bytes | None, bytes | None]:
    """An initializer's size in bytes, and for one whose ``raw_data`` is large, its fields before
    and after ``raw_data`` (written around the raw bytes, so the tensor is never serialized whole)."""
    if not t.HasField("raw_data") or len(t.raw_data) <= _MERGE_BYTES:
        return t.ByteSize(), None, None
    raw = len(t.raw_data)
    head = _fields_bytes(t, lambda n: n < _RAW_DATA_FIELD) + _key(_RAW_DATA_FIELD) + _varint(raw)
    tail = _fields_bytes(t, lambda n: n > _RAW_DATA_FIELD)
    return len(head) + raw + len(tail), head, tail


def _model_pieces(model: onnx.ModelProto):
    """``model.SerializeToString(deterministic=True)`` as a sequence of pieces, the largest one
    initializer's raw data: the fields before the graph, the graph's key and length, its fields
    before the initializers, each initializer as a record, the graph's other fields, the model's
    other fields."""
    graph = model.graph
    plans = [_tensor_plan(t) for t in graph.initializer]
    head = _fields_bytes(graph, lambda n: n < _INITIALIZER_FIELD)
    tail = _fields_bytes(graph, lambda n: n > _INITIALIZER_FIELD)
    key = _key(_INITIALIZER_FIELD)
    length = len(head) + len(tail) + sum(len(key) + len(_varint(n)) + n for n, _, _ in plans)
    yield _fields_bytes(model, lambda n: n < _GRAPH_FIELD)
    if model.HasField("graph"):
        yield _key(_GRAPH_FIELD) + _varint(length) + head
        for t, (n, t_head, t_tail) in zip(graph.initializer, plans):
            yield key + _varint(n)
            if t_head is None:
                data = t.SerializeToString(deterministic=True)
                size = len(data)
                yield data
            else:
                yield t_head
                data = t.raw_data
                size = len(t_head) + len(data) + len(t_tail)
                yield data
                yield t_tail
            del data
            if size != n:
                raise RuntimeError(f"initializer '{t.name}': {size} bytes written, {n} planned")
        yield tail
    yield _fields_bytes(model, lambda n: n > _GRAPH_FIELD)


def _write_model(path: Path, model: onnx.ModelProto) -> str:
    """Write ``model``'s bytes to ``path`` atomically, piece by piece; their SHA-256."""
    h = hashlib.sha256()

    def pieces():
        for piece in _model_pieces(model):
            h.update(piece)
            yield piece
    atomic.write_chunks(path, pieces())
    return h.hexdigest()


def _read_varint(fh) -> int | None:
    """The varint at ``fh``'s position; None at the end of the file (EOFError inside one)."""
    n = shift = 0
    while True:
        b = fh.read(1)
        if not b:
            if shift:
                raise EOFError("file ends inside a varint")
            return None
        n |= (b[0] & 0x7F) << shift
        if b[0] < 0x80:
            return n
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def _read_exact(fh, n: int) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise EOFError(f"file ends {n - len(data)} bytes short")
    return data


def _read_record(fh, key: int) -> bytes:
    """The rest of the record whose ``key`` was just read, with that key in front."""
    wire = key & 7
    if wire == 0:
        value = _read_varint(fh)
        if value is None:
            raise EOFError("file ends inside a record")
        return _varint(key) + _varint(value)
    if wire in (1, 5):
        return _varint(key) + _read_exact(fh, 8 if wire == 1 else 4)
    if wire == 2:
        n = _read_varint(fh)
        if n is None:
            raise EOFError("file ends inside a record")
        return _varint(key) + _varint(n) + _read_exact(fh, n)
    raise ValueError(f"wire type {wire} is not written in a model file")


def _read_model(path: Path):
    """The model in ``path`` and the SHA-256 of its bytes, read a record at a time (the graph's
    records one by one): at most one initializer's bytes besides the model."""
    import onnx  # noqa: PLC0415 - loaded only where a model is: listing the catalog needs no onnx

    model, h = onnx.ModelProto(), hashlib.sha256()
    pending: list[bytes] = []

    def merge(records: list[bytes]) -> None:
        data = b"".join(records)
        records.clear()
        h.update(data)
        model.MergeFromString(data)

    graph_key = _GRAPH_FIELD << 3 | 2
    with open(path, "rb") as fh:
        while (key := _read_varint(fh)) is not None:
            if key != graph_key:
                pending.append(_read_record(fh, key))
                continue
            merge(pending)
            length = _read_varint(fh)
            if length is None:
                raise EOFError("file ends inside a record")
            h.update(_varint(key) + _varint(length))
            end = fh.tell() + length
            size = 0
            while fh.tell() < end:        # each graph record merged as a graph of its own
                sub = _read_varint(fh)
                if sub is None:
                    raise EOFError("file ends inside the graph")
                if sub & 7 == 2:
                    n = _read_varint(fh)
                    if n is None:
                        raise EOFError("file ends inside a record")
                    if n > _MERGE_BYTES:
                        _merge_graph(model, pending, h)
                        size = 0
                        _merge_big_graph_record(model, fh, _varint(sub) + _varint(n), n, h)
                        continue
                    record = _varint(sub) + _varint(n) + _read_exact(fh, n)
                else:
                    record = _read_record(fh, sub)
                if size + len(record) > _MERGE_BYTES and size:
                    _merge_graph(model, pending, h)
                    size = 0
                pending.append(record)
                size += len(record)
            if fh.tell() != end:
                raise ValueError("a graph record runs past the graph's length")
            _merge_graph(model, pending, h)
        merge(pending)
    return model, h.hexdigest()


def _merge_graph(model, records: list[bytes], h) -> None:
    """Merge graph ``records`` into ``model.graph`` (hashing them as they sit in the file)."""
    if not records:
        return
    data = b"".join(records)
    records.clear()
    h.update(data)
    model.MergeFromString(_key(_GRAPH_FIELD) + _varint(len(data)) + data)


def _merge_big_graph_record(model, fh, head: bytes, n: int, h) -> None:
    """Merge one large graph record (``head``, then ``n`` bytes in ``fh``) into ``model.graph``: its
    bytes are read into the one buffer protobuf parses (which it does not copy)."""
    outer = _key(_GRAPH_FIELD) + _varint(len(head) + n)
    buf = bytearray(len(outer) + len(head) + n)
    start = len(outer) + len(head)
    buf[:start] = outer + head
    view = memoryview(buf)
    try:
        if fh.readinto(view[start:]) != n:
            raise EOFError("file ends inside a record")
        h.update(view[len(outer):])
        model.MergeFromString(view)
    finally:
        view.release()


def _load_cached(path: Path):
    """A cached built model and its SHA-256, or None when the file does not load as a whole model
    (it is rebuilt)."""
    try:
        model, sha = _read_model(path)
    except Exception:   # protobuf's DecodeError, a record cut short, and the like: a file cut or overwritten
        return None
    # a file cut at a field boundary can still parse: the graph (or the opset list written after it) is missing
    if not model.graph.node or not model.graph.output or not model.opset_import:
        return None
    return model, sha


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
