"""The layer table: per ONNX node, what it computes and what it moves.

From the graph and shape inference at a concrete batch size, each node gets its op type,
input and output shapes, element type, multiply-accumulates (MACs), floating-point
operations (FLOPs), the bytes of weights it holds, the weight bytes it touches (an
embedding lookup touches only the rows it gathers), and the activation bytes it reads
and writes.

What is counted (1 MAC = 2 FLOPs):
- Conv, ConvTranspose, Gemm, MatMul (including activation-by-activation MatMuls such as
  attention scores) and Einsum-free batched products: MACs from the shapes; FLOPs = 2 x
  MACs, plus one FLOP per output element for a fused bias.
- Elementwise arithmetic and activations (Add, Mul, Relu, Clip, Erf, Sigmoid, ...) and
  Resize: one FLOP per output element; no MACs.
- Normalisations (BatchNormalization 2, LayerNormalization and InstanceNormalization 8
  FLOPs per element), Softmax (5 per element), pooling (one per window element),
  reductions (one per input element).
- Data-movement ops (Reshape, Transpose, Concat, Gather, Slice, ...): zero FLOPs by
  definition, with their bytes counted.
Ops with no formula here are marked ``counted=False`` and listed in ``uncounted_ops``;
they are never silently zero.

An op that ONNX does not define at the model's opset (a misspelt or custom op in the standard
domain) is refused up front (``check_ops``), naming the op and the node.

Parameters are the elements of floating-point initializers, except BatchNormalization's
running mean and variance (buffers, not trained parameters) and tensors that only carry
operator settings (Clip bounds, Resize scales, Pad values), which is how published
parameter counts are made.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field

import numpy as np
import onnx
from onnx import shape_inference

from sim.errors import InputError
from sim.workload.inputs import graph_inputs

ELEMENTWISE = {
    "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Exp", "Log", "Neg", "Abs", "Reciprocal",
    "Relu", "LeakyRelu", "PRelu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh",
    "Erf", "Gelu", "Elu", "Selu", "Softplus", "Min", "Max", "Sum", "Mean", "Where",
    "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Not", "And", "Or",
    "Floor", "Ceil", "Round", "Sign", "Cos", "Sin", "Mod", "BitShift", "Dropout",
    "Resize", "Upsample",
}
DATA_MOVEMENT = {
    "Reshape", "Transpose", "Concat", "Gather", "GatherElements", "GatherND", "Slice",
    "Flatten", "Squeeze", "Unsqueeze", "Shape", "Constant", "Identity", "Cast", "Split",
    "Expand", "Pad", "Tile", "ConstantOfShape", "Range", "Size", "ScatterND",
    "ScatterElements", "DepthToSpace", "SpaceToDepth", "NonZero", "CastLike", "Trilu",
}
REDUCTIONS = {"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd",
              "ReduceL2", "ReduceL1", "ReduceSumSquare", "ReduceLogSumExp", "ArgMax", "ArgMin"}
FLOPS_PER_ELEMENT = {"BatchNormalization": 2, "LayerNormalization": 8, "InstanceNormalization": 8,
                     "GroupNormalization": 8, "Softmax": 5, "LogSoftmax": 5}
MAC_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul"}
POOLS = {"MaxPool", "AveragePool", "LpPool"}
GLOBAL_POOLS = {"GlobalAveragePool", "GlobalMaxPool"}

_DTYPE_BYTES = {onnx.TensorProto.FLOAT: 4, onnx.TensorProto.FLOAT16: 2, onnx.TensorProto.BFLOAT16: 2,
                onnx.TensorProto.DOUBLE: 8, onnx.TensorProto.INT64: 8, onnx.TensorProto.INT32: 4,
                onnx.TensorProto.INT16: 2, onnx.TensorProto.INT8: 1, onnx.TensorProto.UINT8: 1,
                onnx.TensorProto.BOOL: 1}
_FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16,
                onnx.TensorProto.DOUBLE}


#: The operator domains whose ops ONNX itself defines (``onnx.defs``); ops of other domains
#: (onnxruntime's ``com.microsoft``, say) are left to onnxruntime.
STANDARD_DOMAINS = ("", "ai.onnx", "ai.onnx.ml", "ai.onnx.preview.training")


def _all_nodes(nodes, where: str = ""):
    """(node, where it sits) for ``nodes`` and every node of their subgraphs, at any depth."""
    for i, node in enumerate(nodes):
        yield node, f"{where}node '{node.name or i}'"
        for a in node.attribute:
            inner = f"{where}node '{node.name or i}' ({node.op_type}) attribute '{a.name}': "
            graphs = ([a.g] if a.HasField("g") else []) + list(a.graphs)
            for g in graphs:
                yield from _all_nodes(g.node, inner)


def check_ops(model: onnx.ModelProto, source: str) -> None:
    """Refuse a node (subgraphs and local functions included) whose op ONNX does not define at
    the model's opset, naming the op and the node; ops of other domains are not checked here."""
    versions = {("ai.onnx" if o.domain == "" else o.domain): o.version for o in model.opset_import}
    functions = {(f.domain, f.name) for f in model.functions}
    nodes = list(_all_nodes(model.graph.node))
    for f in model.functions:
        nodes += list(_all_nodes(f.node, f"function '{f.name}': "))
    for node, where in nodes:
        domain = node.domain or ""
        if domain not in STANDARD_DOMAINS or (domain, node.op_type) in functions:
            continue
        version = versions.get(domain or "ai.onnx", versions.get("ai.onnx", onnx.defs.onnx_opset_version()))
        if not onnx.defs.has(node.op_type, version, "" if domain == "ai.onnx" else domain):
            op = f"{domain}:{node.op_type}" if domain else node.op_type
            known = onnx.defs.has(node.op_type, "" if domain == "ai.onnx" else domain)
            why = (f"which ONNX defines only in a later opset than {version}" if known
                   else f"which ONNX (opset {version}) does not define")
            raise InputError(f"{source}: {where} uses op {op[:80]!r}, {why}; expected an ONNX operator "
                             f"(or a function the model defines)")


def op_class(op_type: str) -> str:
    """Coarse class used by cost models and reports."""
    if op_type in ("Conv", "ConvTranspose"):
        return "conv"
    if op_type in ("Gemm", "MatMul"):
        return "matmul"
    if op_type in ELEMENTWISE:
        return "elementwise"
    if op_type in FLOPS_PER_ELEMENT:
        return "normalization"
    if op_type in POOLS or op_type in GLOBAL_POOLS or op_type in REDUCTIONS:
        return "reduction"
    if op_type in DATA_MOVEMENT:
        return "data_movement"
    return "other"


@dataclass
class LayerRow:
    name: str
    op_type: str
    op_class: str
    input_shapes: list
    output_shapes: list
    dtype: str
    macs: int
    flops: int
    weight_params: int
    weight_bytes: int
    weight_bytes_read: int
    act_bytes_read: int
    act_bytes_written: int
    counted: bool


@dataclass
class LayerTable:
    model_name: str
    batch: int
    rows: list[LayerRow] = field(default_factory=list)
    total_params: int = 0

    @property
    def total_macs(self) -> int:
        return sum(r.macs for r in self.rows)

    @property
    def total_flops(self) -> int:
        return sum(r.flops for r in self.rows)

    @property
    def uncounted_ops(self) -> list[str]:
        return sorted({r.op_type for r in self.rows if not r.counted})

    def by_class(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for r in self.rows:
            c = out.setdefault(r.op_class, {"nodes": 0, "macs": 0, "flops": 0, "bytes": 0})
            c["nodes"] += 1
            c["macs"] += r.macs
            c["flops"] += r.flops
            c["bytes"] += r.weight_bytes_read + r.act_bytes_read + r.act_bytes_written
        return out

    def to_dict(self) -> dict:
        return {"model": self.model_name, "batch": self.batch, "total_params": self.total_params,
                "total_macs": self.total_macs, "total_flops": self.total_flops,
                "total_weight_bytes": sum(r.weight_bytes for r in self.rows),
                "uncounted_ops": self.uncounted_ops, "by_class": self.by_class(),
                "rows": [asdict(r) for r in self.rows]}


# Inputs that carry operator settings or buffers, not trained weights.
_NON_PARAMETER_INPUTS = {"BatchNormalization": slice(3, 5), "Clip": slice(1, 3), "Resize": slice(1, 4),
                         "Upsample": slice(1, 2), "Pad": slice(1, 4)}


def non_parameter_initializers(model: onnx.ModelProto) -> set[str]:
    """BatchNormalization running mean/variance, Clip bounds, Resize and Pad settings."""
    skip = set()
    for node in model.graph.node:
        if node.op_type in _NON_PARAMETER_INPUTS:
            skip.update(node.input[_NON_PARAMETER_INPUTS[node.op_type]])
    return skip


def _is_parameter(t: onnx.TensorProto, skip: set[str]) -> bool:
    return t.name not in skip and t.data_type in _FLOAT_TYPES and len(t.dims) > 0


def count_params(model: onnx.ModelProto) -> int:
    """Trainable parameters, counted as papers and checkpoints' ``parameters()`` do.

    The elements of floating-point initializers of rank >= 1, except those in
    ``non_parameter_initializers`` (buffers and operator settings). A weight shared by
    several nodes is one initializer and is counted once.
    """
    skip = non_parameter_initializers(model)
    return sum(int(np.prod(t.dims, dtype=np.int64)) for t in model.graph.initializer if _is_parameter(t, skip))


def _shape_probe(model: onnx.ModelProto, batch: int) -> onnx.ModelProto:
    """A light copy for shape inference: the batch fixed, large weights reduced to their types.

    Shape inference needs only the shapes of weights (and the values of small integer
    tensors such as Reshape targets), so weights are passed as typed graph inputs instead
    of copying their data.
    """
    small, as_inputs = [], []
    for t in model.graph.initializer:
        if t.data_type in _FLOAT_TYPES and _numel(list(t.dims)) > 64:
            as_inputs.append(onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
        else:
            small.append(t)
    inits = {t.name for t in model.graph.initializer}
    inputs = []
    for v in model.graph.input:
        if v.name in inits:
            continue
        v = copy.deepcopy(v)
        dims = v.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].Clear()
            dims[0].dim_value = batch
        for d in dims[1:]:
            if not d.HasField("dim_value"):
                d.Clear()
                d.dim_value = 1
        inputs.append(v)
    graph = onnx.helper.make_graph(model.graph.node, model.graph.name, inputs + as_inputs,
                                   model.graph.output, small, value_info=model.graph.value_info)
    probe = onnx.helper.make_model(graph, opset_imports=model.opset_import)
    probe.ir_version = model.ir_version
    return probe


def _shapes(model: onnx.ModelProto, source: str) -> dict[str, tuple[list[int], int]]:
    try:
        inferred = shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as exc:
        raise InputError(f"{source}: shape inference failed ({str(exc).splitlines()[0][:200]}); "
                         "expected a graph whose shapes ONNX can infer") from None
    out = {}
    for v in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output):
        t = v.type.tensor_type
        if t.HasField("shape") and all(d.HasField("dim_value") for d in t.shape.dim):
            out[v.name] = ([int(d.dim_value) for d in t.shape.dim], t.elem_type)
    for t in model.graph.initializer:
        out[t.name] = ([int(d) for d in t.dims], t.data_type)
    return out


def _numel(shape: list[int]) -> int:
    return int(np.prod(shape, dtype=np.int64)) if shape else 1


def _attr(node: onnx.NodeProto, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _macs(node: onnx.NodeProto, ins: list, outs: list) -> int:
    op = node.op_type
    if op == "Conv":
        w, y = ins[1], outs[0]
        return _numel(y) * _numel(w[1:])            # N*Cout*spatial_out * (Cin/g)*prod(k)
    if op == "ConvTranspose":
        x, w = ins[0], ins[1]
        return _numel(x) * _numel(w[1:])            # N*Cin*spatial_in * (Cout/g)*prod(k)
    if op == "Gemm":
        a = ins[0]
        k = a[0] if _attr(node, "transA", 0) else a[1]
        return _numel(outs[0]) * k
    if op == "MatMul":
        a = ins[0]
        k = a[-1]
        return _numel(outs[0]) * k
    return 0


def _flops(node: onnx.NodeProto, ins: list, outs: list, macs: int) -> tuple[int, bool]:
    op = node.op_type
    out_elems = _numel(outs[0]) if outs else 0
    if op in MAC_OPS:
        has_bias = (op in ("Conv", "ConvTranspose", "Gemm") and len(node.input) > 2 and node.input[2])
        return 2 * macs + (out_elems if has_bias else 0), True
    if op in ELEMENTWISE:
        return out_elems, True
    if op in FLOPS_PER_ELEMENT:
        return FLOPS_PER_ELEMENT[op] * out_elems, True
    if op in POOLS:
        return out_elems * _numel(list(_attr(node, "kernel_shape", [1]))), True
    if op in GLOBAL_POOLS or op in REDUCTIONS:
        return _numel(ins[0]) if ins else 0, True
    if op in DATA_MOVEMENT:
        return 0, True
    return 0, False


def layer_table(model: onnx.ModelProto, batch: int = 1, name: str = "model",
                source: str | None = None) -> LayerTable:
    """The per-node table of ``model`` at ``batch`` (the first dimension of each input)."""
    source = source or name
    if not isinstance(batch, (int, np.integer)) or batch <= 0:
        raise InputError(f"{source}: batch size {batch!r}: expected an integer >= 1")
    if not graph_inputs(model):
        raise InputError(f"{source}: the graph has no inputs; expected an ONNX model with inputs")
    check_ops(model, source)
    shapes = _shapes(_shape_probe(model, int(batch)), source)
    inits = {t.name: t for t in model.graph.initializer}
    skip = non_parameter_initializers(model)
    table = LayerTable(model_name=name, batch=int(batch), total_params=count_params(model))
    for i, node in enumerate(model.graph.node):
        missing = [o for o in node.output if o and o not in shapes]
        if missing and node.op_type != "Constant":
            op = node.op_type if (node.domain or "") in STANDARD_DOMAINS else f"{node.domain}:{node.op_type}"
            raise InputError(f"{source}: node '{node.name or i}' ({op}) output '{missing[0]}' has no "
                             "inferable shape; expected static shapes once the batch size is fixed")
        ins = [shapes.get(x, ([], 0))[0] for x in node.input if x]
        outs = [shapes.get(x, ([], 0))[0] for x in node.output if x]
        elem = shapes.get(node.output[0], ([], 0))[1] if node.output else 0
        size = _DTYPE_BYTES.get(elem, 4)
        w_params = w_bytes = a_read = 0
        for x in node.input:
            if not x:
                continue
            shp, dt = shapes.get(x, ([], elem))
            nbytes = _numel(shp) * _DTYPE_BYTES.get(dt, 4)
            if x in inits:
                w_bytes += nbytes
                if _is_parameter(inits[x], skip):
                    w_params += _numel(shp)
            else:
                a_read += nbytes
        w_read = w_bytes
        if node.op_type == "Gather" and node.input[0] in inits:
            w_read = _numel(outs[0]) * size if outs else 0   # only the gathered rows are touched
        a_written = sum(_numel(o) for o in outs) * size
        macs = _macs(node, ins, outs)
        flops, counted = _flops(node, ins, outs, macs)
        table.rows.append(LayerRow(
            name=node.name or f"{node.op_type}_{i}", op_type=node.op_type, op_class=op_class(node.op_type),
            input_shapes=ins, output_shapes=outs, dtype=onnx.TensorProto.DataType.Name(elem) if elem else "",
            macs=int(macs), flops=int(flops), weight_params=int(w_params), weight_bytes=int(w_bytes),
            weight_bytes_read=int(w_read), act_bytes_read=int(a_read), act_bytes_written=int(a_written),
            counted=counted))
    return table


def format_table(table: LayerTable, max_rows: int | None = None) -> str:
    """A readable text table: one line per node, then totals by class."""
    lines = [f"{'node':<34} {'op':<20} {'output shape':<22} {'MMACs':>10} {'MFLOPs':>10} "
             f"{'weights KiB':>12} {'act KiB r/w':>16}"]
    rows = table.rows if max_rows is None else table.rows[:max_rows]
    for r in rows:
        shape = "x".join(map(str, r.output_shapes[0])) if r.output_shapes else "-"
        flops = f"{r.flops / 1e6:10.2f}" if r.counted else f"{'n/a':>10}"
        lines.append(f"{r.name[:34]:<34} {r.op_type[:20]:<20} {shape[:22]:<22} {r.macs / 1e6:10.2f} {flops} "
                     f"{r.weight_bytes / 1024:12.1f} {r.act_bytes_read / 1024:7.0f}/{r.act_bytes_written / 1024:<8.0f}")
    if max_rows is not None and len(table.rows) > max_rows:
        lines.append(f"... {len(table.rows) - max_rows} more nodes (use --json for all)")
    lines.append("")
    lines.append(f"{'class':<16} {'nodes':>6} {'GMACs':>10} {'GFLOPs':>10} {'MiB moved':>10}")
    for cls, c in sorted(table.by_class().items()):
        lines.append(f"{cls:<16} {c['nodes']:6d} {c['macs'] / 1e9:10.3f} {c['flops'] / 1e9:10.3f} "
                     f"{c['bytes'] / 2**20:10.1f}")
    lines.append("")
    lines.append(f"{table.model_name} at batch {table.batch}: {table.total_params / 1e6:.2f} M parameters, "
                 f"{table.total_macs / 1e9:.3f} GMACs, {table.total_flops / 1e9:.3f} GFLOPs "
                 f"({2 * table.total_macs / table.batch / 1e9:.3f} GOPs per sample as 2 x MACs)")
    if table.uncounted_ops:
        lines.append(f"ops without a cost formula (not counted): {', '.join(table.uncounted_ops)}")
    return "\n".join(lines)
