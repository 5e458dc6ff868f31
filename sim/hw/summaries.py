"""Per-layer summaries of a workload: what an accelerator cost model needs, and no more.

A full layer table (``sim.workload.layers``) of BERT-large takes about 25 s to build, so the
summaries of the built-in workloads ship with the package (``sim/hw/data/*.json``) and
any other model is summarised once and cached under ``sim.workload.catalog.cache_dir()``.

One entry per node of the ONNX graph that becomes a kernel on an inference engine, with
the quantities per *sample* (the table at batch 1; every built-in model is linear in the
batch, which ``summarise`` checks against the table at batch 2):

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

# results.csv model name -> built-in workload (and its build parameters)
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
    for r1, r2 in zip(t1.rows, t2.rows):
        if r1.op_type in ("Constant", "Shape"):
            continue
        # per-sample work is the increment from batch 1 to 2 (exact for work affine in the
        # batch; a batch-independent node such as a position-embedding lookup has none)
        flops = r2.flops - r1.flops
        a_in, a_out = r2.act_bytes_read - r1.act_bytes_read, r2.act_bytes_written - r1.act_bytes_written
        if flops < 0 or a_in < 0 or a_out < 0 or flops > r1.flops or a_out > r1.act_bytes_written:
            raise InputError(f"{name}: node '{r1.name}' ({r1.op_type}) does not grow linearly with the batch "
                             "size; expected a model whose per-sample work does not depend on the batch")
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
    return {"schema": SCHEMA, "workload": name, "mlperf_model": mlperf_model, "model_sha256": sha256,
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


def load(workload: str) -> dict:
    """The summary of a built-in workload (shipped), or of a cached/user-built one."""
    if workload in _CACHE:
        return _CACHE[workload]
    path = DATA_DIR / f"{workload}.json"
    if not path.is_file():
        from sim.workload import catalog as workloads  # noqa: PLC0415 - loads onnx: only to summarise a model that is not shipped

        path = workloads.cache_dir() / "hw_summaries" / f"{workload}.json"
        if not path.is_file():
            if workload not in workloads.catalog():
                raise InputError(f"workload {workload!r}: no layer summary; expected one of "
                                 f"{sorted(p.stem for p in DATA_DIR.glob('*.json'))} or a catalog workload")
            w = workloads.build(workload)
            atomic.write_json(path, summarise(w.model, w.name, w.mlperf_model, w.sha256))
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not readable as JSON ({exc}); expected a layer summary") from None
    _CACHE[workload] = _validate(data, str(path))
    return _CACHE[workload]


def arrays(workload: str) -> dict[str, np.ndarray]:
    """Columns as numpy arrays (float64 for numbers)."""
    cols = load(workload)["layers"]
    out = {c: np.asarray(cols[c], dtype=object if c in ("op_type", "op_class", "kclass") else np.float64)
           for c in COLUMNS}
    return out


def workload_for(mlperf_model: str) -> str | None:
    """The built-in workload behind a results.csv model name (None when there is none)."""
    return MLPERF_WORKLOADS.get(mlperf_model)


def write_shipped(names: list[str]) -> list[Path]:
    """Rebuild the shipped summaries (``python -m sim.hw.summaries resnet50 ...``)."""
    from sim.workload import catalog as workloads  # noqa: PLC0415 - loads onnx: only to summarise a model that is not shipped

    out = []
    for name in names:
        w = workloads.build(name)
        out.append(atomic.write_json(DATA_DIR / f"{name}.json",
                                     summarise(w.model, w.name, w.mlperf_model, w.sha256)))
    return out


if __name__ == "__main__":
    import sys
    for p in write_shipped(sys.argv[1:] or sorted(set(MLPERF_WORKLOADS.values()))):
        print(p)
