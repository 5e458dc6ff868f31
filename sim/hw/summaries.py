"""Per-layer summaries of a workload: what an accelerator cost model needs, and no more.

Any network has one: a catalog workload (``workloads/*.yaml``), a build variant of one
that an MLPerf round ran (``sim.hw.benchmarks.VARIANTS``, e.g. DLRM-DCNv2), or a user's
``.onnx`` file. A summary is made from the workload's layer table (``sim.workload.layers``)
at batch 1 and 2 the first time it is asked for, and cached: the summaries in
``sim/hw/data/*.json`` ship with the package (BERT-large's layer table takes about 25 s);
any other is written under ``sim.workload.catalog.cache_dir()/hw_summaries/``, a catalog
workload's as ``<name>.json`` with the build key it was made from (its parameters and the
builder's code: a changed builder is summarised again), a user's model as
``onnx-<stem>-<content hash>[-<input shapes hash>].json``. ``resolve(name_or_path)`` gives
the summary key the cost model (``sim.hw.analytic.workload``) takes.

A user's model must have static shapes once its batch is fixed: an input dimension other
than the first that has no value needs ``input_shapes`` (``--input-shape
name=1x3x224x224``), else an ``InputError`` names the input and the dimension; a graph
whose shapes ONNX cannot infer, or whose work does not grow linearly with its first input
dimension, is refused the same way. Ops the layer table has no formula for are counted in
the summary's ``uncounted`` field (op type -> nodes) and cost nothing in the model: a
prediction says so on its row.

One entry per node of the ONNX graph that becomes a kernel on an inference engine, with
the quantities per *sample* (the table at batch 1; ``summarise`` checks the work is linear
in the batch against the table at batch 2):

- ``kclass``: the kernel class the cost model has efficiencies for:
  ``conv`` (dense convolution, groups = 1), ``gconv`` (grouped or depthwise convolution),
  ``matmul`` (Gemm/MatMul against a weight), ``bmm`` (activation-by-activation MatMul:
  attention scores and context), ``vector`` (kernels with no MACs that engines still run
  on their own: pooling, Softmax, LayerNormalization, Resize, Concat, embedding Gather).
  Elementwise ops, BatchNormalization and reshapes are ``fused`` into the producing kernel
  (Conv+BN+ReLU+Add, GEMM+bias+GELU), as TensorRT, OpenVINO and the ASIC compilers do;
  they are kept (with their bytes) only for the per-class comparison with a measured CPU
  profile, which does not fuse everything.
- ``flops``: FLOPs (2 per MAC, plus the layer's own elementwise work);
- ``weights``: weight elements (the bytes follow from the precision);
- ``act_in``, ``act_out``: activation elements read and written;
- ``m``, ``n``, ``k``: the GEMM view of a MAC layer (conv: m = output pixels, n = output
  channels per group, k = input channels per group x kernel area), used for tile
  (wave) quantisation at small batch; 0 for other kernels.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sim.errors import InputError
from sim.util import atomic

SCHEMA = "sim.hw.layer_summary/1"
DATA_DIR = Path(__file__).resolve().parent / "data"
KCLASSES = ("conv", "gconv", "matmul", "bmm", "vector", "fused")
MAC_KCLASSES = ("conv", "gconv", "matmul", "bmm")
VECTOR_OPS = {"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Softmax", "LogSoftmax",
              "LayerNormalization", "InstanceNormalization", "GroupNormalization", "Resize", "Upsample",
              "Concat", "ReduceMean", "ReduceSum", "ReduceMax", "TopK", "NonMaxSuppression"}
COLUMNS = ("op_type", "op_class", "kclass", "flops", "weights", "act_in", "act_out", "m", "n", "k")

# results.csv model name -> built-in workload: ``sim.hw.benchmarks`` (by round)
MLPERF_WORKLOADS = {
    "resnet50": "resnet50",
    "ssd-mobilenet": "ssd_mobilenet_v1",
    "ssd-resnet34": "ssd_resnet34",
    "retinanet": "retinanet",
    "bert-99": "bert_large",
    "bert-99.9": "bert_large",
}


def _numel(shape) -> int:
    return int(np.prod(shape, dtype=np.int64)) if shape else 1


def _kclass(row, weight_inputs: bool) -> tuple[str, int, int, int]:
    op = row.op_type
    if op in ("Conv", "ConvTranspose") and len(row.input_shapes) >= 2:
        x, w = row.input_shapes[0], row.input_shapes[1]
        y = row.output_shapes[0]
        groups = max(1, x[1] // w[1]) if op == "Conv" and w[1] else 1
        m = _numel(y[2:])
        n = w[0] // groups if op == "Conv" else w[1]
        k = w[1] * _numel(w[2:]) if op == "Conv" else w[0] * _numel(w[2:])
        return ("gconv" if groups > 1 else "conv"), int(m), int(n), int(k)
    if op in ("Gemm", "MatMul") and row.output_shapes:
        y = row.output_shapes[0]
        k = row.macs // max(1, _numel(y)) if row.macs else 0
        if weight_inputs:
            return "matmul", int(_numel(y[1:-1]) if len(y) > 2 else 1), int(y[-1]), int(k)
        # batched product of activations: heads x rows per sample
        return "bmm", int(_numel(y[1:-1])), int(y[-1]), int(k)
    if op in VECTOR_OPS or (op == "Gather" and row.weight_params > 0):
        return "vector", 0, 0, 0
    return "fused", 0, 0, 0


def summarise(model, name: str, mlperf_model: str = "", sha256: str = "", source: str = "") -> dict:
    """The summary dict of an ONNX model (per sample; checked linear in the batch)."""
    from sim.workload import layers  # noqa: PLC0415 - loads onnx: only to summarise a model that is not shipped

    t1 = layers.layer_table(model, 1, name)
    t2 = layers.layer_table(model, 2, name)
    cols: dict[str, list] = {c: [] for c in COLUMNS}
    uncounted: dict[str, int] = {}
    for r in t1.rows:
        if not r.counted:
            uncounted[r.op_type] = uncounted.get(r.op_type, 0) + 1
    for r1, r2 in zip(t1.rows, t2.rows):
        if r1.op_type in ("Constant", "Shape"):
            continue
        # per-sample work is the increment from batch 1 to 2 (exact for work affine in the
        # batch; a batch-independent node such as a position-embedding lookup has none)
        flops = r2.flops - r1.flops
        a_in, a_out = r2.act_bytes_read - r1.act_bytes_read, r2.act_bytes_written - r1.act_bytes_written
        if flops < 0 or a_in < 0 or a_out < 0 or flops > r1.flops or a_out > r1.act_bytes_written:
            raise InputError(f"{name}: node '{r1.name}' ({r1.op_type}) does not grow linearly with the batch "
                             "size (the first dimension of the inputs); expected a model whose per-sample work "
                             "does not depend on the batch")
        kclass, m, n, k = _kclass(r1, r1.weight_params > 0)
        elem = 4 if r1.dtype in ("FLOAT", "INT32", "") else (8 if r1.dtype == "INT64" else 2)
        cols["op_type"].append(r1.op_type)
        cols["op_class"].append(r1.op_class)
        cols["kclass"].append(kclass)
        cols["flops"].append(int(flops))
        cols["weights"].append(int(r1.weight_params))
        cols["act_in"].append(int(a_in // 4))
        cols["act_out"].append(int(a_out // elem))
        cols["m"].append(m)
        cols["n"].append(n)
        cols["k"].append(k)
    if t1.total_flops > 0 and sum(cols["flops"]) == 0:
        raise InputError(f"{name}: the model's work does not grow with the batch (an input whose first "
                         "dimension is fixed, e.g. exported at batch 1?); expected a free batch dimension, or "
                         "--input-shape NAME=Nx... marking it")
    return {"schema": SCHEMA, "workload": name, "uncounted": uncounted, "mlperf_model": mlperf_model,
            "model_sha256": sha256,
            "source": source or "sim.layers.layer_table at batch 1 and 2", "total_flops": int(t1.total_flops),
            "total_params": int(t1.total_params), "input_elems": _io_elems(model.graph.input, model),
            "output_elems": _io_elems(model.graph.output, model), "layers": cols}


def _io_elems(values, model) -> int:
    """Elements per sample of graph inputs (or outputs): the product of all but the batch dimension."""
    inits = {t.name for t in model.graph.initializer}
    total = 0
    for v in values:
        if v.name in inits or not v.type.tensor_type.HasField("shape"):
            continue
        dims = [d.dim_value if d.HasField("dim_value") else 1 for d in v.type.tensor_type.shape.dim]
        total += _numel(dims[1:])
    return int(total)


def _validate(data, src: str) -> dict:
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        got = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise InputError(f"{src}: field 'schema' = {got!r}: expected {SCHEMA!r}")
    cols = data.get("layers")
    if not isinstance(cols, dict) or set(cols) != set(COLUMNS):
        raise InputError(f"{src}: field 'layers' = {sorted(cols) if isinstance(cols, dict) else cols!r}: "
                         f"expected columns {list(COLUMNS)}")
    n = {len(v) for v in cols.values()}
    if len(n) != 1:
        raise InputError(f"{src}: field 'layers': columns of different lengths {sorted(n)}; expected equal")
    return data


_CACHE: dict[str, dict] = {}
CACHE_SUBDIR = "hw_summaries"


def cache_path(key: str) -> Path:
    from sim.workload import catalog as workloads  # noqa: PLC0415 - loads onnx types: only off the shipped path

    return workloads.cache_dir() / CACHE_SUBDIR / f"{key}.json"


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not readable as JSON ({exc}); expected a layer summary") from None
    return _validate(data, str(path))


def _build_key(name: str, params: dict) -> str:
    """What a catalog build depends on: its parameters and its builder's code."""
    import hashlib  # noqa: PLC0415 - only to key a summary that is not shipped
    import importlib  # noqa: PLC0415 - as above

    from sim.workload import catalog as workloads  # noqa: PLC0415 - as above

    spec = workloads.catalog()[name]
    h = hashlib.sha256(json.dumps({"p": {**spec.params, **params}, "b": spec.builder}, sort_keys=True,
                                  default=str).encode())
    for mod in ("sim.workload.graphs.builder", spec.builder.partition(":")[0], "sim.workload.layers", __name__):
        h.update(Path(importlib.import_module(mod).__file__).read_bytes())
    return h.hexdigest()[:16]


def _variant(key: str) -> tuple[str, dict] | None:
    """(catalog workload, build parameters) of a summary key that names a catalog build."""
    from sim.hw import benchmarks  # noqa: PLC0415 - the variants table, only off the shipped path
    from sim.workload import catalog as workloads  # noqa: PLC0415 - as above

    if key in benchmarks.VARIANTS:
        name, params = benchmarks.VARIANTS[key]
        params = dict(params)
        if params.get("multi_hot") == "mlperf":
            from sim.workload.graphs.dlrm import MLPERF_MULTI_HOT  # noqa: PLC0415 - the table of one builder

            params["multi_hot"] = list(MLPERF_MULTI_HOT)
        return name, params
    if key in workloads.catalog():
        return key, {}
    return None


def load(workload: str) -> dict:
    """The summary of ``workload``: a summary key (``resolve``): shipped, cached, or built now
    from the catalog (a catalog workload or a build variant)."""
    if workload in _CACHE:
        return _CACHE[workload]
    path = DATA_DIR / f"{workload}.json"
    if path.is_file():
        _CACHE[workload] = _read(path)
        return _CACHE[workload]
    cached = cache_path(workload)
    variant = None if workload.startswith("onnx-") else _variant(workload)
    if variant is not None:
        build_key = _build_key(*variant)
        if cached.is_file():
            data = _read(cached)
            if data.get("build_key") == build_key:
                _CACHE[workload] = data
                return data
        from sim.workload import catalog as workloads  # noqa: PLC0415 - builds a model: only when not cached

        name, params = variant
        w = workloads.build(name, **params)
        data = summarise(w.model, workload, w.mlperf_model, w.sha256, source=f"{name} {params}" if params else "")
        data["build_key"] = build_key
        atomic.write_json(cached, data)
        _CACHE[workload] = _validate(data, workload)
        return data
    if cached.is_file():
        _CACHE[workload] = _read(cached)
        return _CACHE[workload]
    raise InputError(f"workload {workload!r}: no layer summary; expected a catalog workload, a .onnx file or one "
                     f"of {sorted(p.stem for p in DATA_DIR.glob('*.json'))}")


def is_path(name: str) -> bool:
    """Whether a ``--workload`` value names a file (``.onnx``, or a path) rather than a catalog entry."""
    from sim.workload.catalog import is_file  # noqa: PLC0415 - the catalog's rule, loaded when asked

    return is_file(name)


def resolve(name_or_path: str, input_shapes: dict | None = None) -> str:
    """The summary key of a catalog workload, a build variant, or a user's ``.onnx`` file
    (summarised now if it is not cached); an ``InputError`` for anything else."""
    if is_path(name_or_path):
        return for_onnx(name_or_path, input_shapes or None)
    if input_shapes:
        raise InputError(f"--input-shape: given for catalog workload {name_or_path!r}, whose input shapes are "
                         "fixed; expected it only with a .onnx file")
    if name_or_path in _CACHE or (DATA_DIR / f"{name_or_path}.json").is_file() or _variant(name_or_path):
        return name_or_path
    from sim.workload import catalog as workloads  # noqa: PLC0415 - the catalog's names, for the message

    raise InputError(f"--workload {name_or_path!r}: unknown; expected a .onnx file or one of "
                     f"{sorted(workloads.catalog())}")


def for_onnx(path: str, input_shapes: dict | None = None) -> str:
    """The summary key of a user's ``.onnx`` file, summarised and cached (by content hash and
    input shapes) the first time. ``input_shapes`` (``sim.workload.inputs.parse_input_shapes``;
    default: the process's ``--input-shape``) size its free input dimensions; one left without
    a size is an ``InputError`` naming the input, the dimension and the flag that fixes it."""
    import hashlib  # noqa: PLC0415 - only for a user's model

    from sim.workload import catalog as workloads  # noqa: PLC0415 - loads onnx: only for a user's model
    from sim.workload.inputs import input_shapes as concrete  # noqa: PLC0415 - as above

    w = workloads.load_file(path, input_shapes)
    concrete(w.model, 1, source=str(path))          # every input dimension but the batch has a size
    stem = "".join(ch if ch.isalnum() or ch in "_." else "_" for ch in Path(path).stem)[:40]
    key = f"onnx-{stem}-{w.sha256[:16]}"
    if w.input_shapes:
        text = json.dumps({k: list(v) for k, v in sorted(w.input_shapes.items())})
        key += "-" + hashlib.sha256(text.encode()).hexdigest()[:8]
    if key in _CACHE:
        return key
    cached = cache_path(key)
    if cached.is_file():
        try:
            _CACHE[key] = _read(cached)
            return key
        except InputError:           # a damaged cache entry is summarised again
            pass
    data = summarise(w.model, key, "", w.sha256, source=f"{path} (layer table at batch 1 and 2)")
    data["file"] = str(path)
    atomic.write_json(cached, data)
    _CACHE[key] = _validate(data, str(path))
    return key


def uncounted(workload: str) -> dict[str, int]:
    """Ops of ``workload`` the layer table has no cost formula for: op type -> nodes (empty: none)."""
    return dict(load(workload).get("uncounted") or {})


def arrays(workload: str) -> dict[str, np.ndarray]:
    """Columns as numpy arrays (float64 for numbers)."""
    cols = load(workload)["layers"]
    out = {c: np.asarray(cols[c], dtype=object if c in ("op_type", "op_class", "kclass") else np.float64)
           for c in COLUMNS}
    return out


def write_shipped(names: list[str]) -> list[Path]:
    """Rebuild the shipped summaries (``python -m sim.hw.summaries resnet50 ...``)."""
    from sim.workload import catalog as workloads  # noqa: PLC0415 - loads onnx: only to summarise a model that is not shipped

    out = []
    for name in names:
        variant = _variant(name)
        if variant is None:
            raise InputError(f"{name!r}: expected a catalog workload or one of the build variants")
        w = workloads.build(variant[0], **variant[1])
        source = f"{variant[0]} {variant[1]}" if variant[1] else ""
        out.append(atomic.write_json(DATA_DIR / f"{name}.json",
                                     summarise(w.model, name, w.mlperf_model, w.sha256, source=source)))
    return out


if __name__ == "__main__":
    import sys
    for p in write_shipped(sys.argv[1:] or sorted(set(MLPERF_WORKLOADS.values()))):
        print(p)
