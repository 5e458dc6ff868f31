"""The layer table: per ONNX node, what it computes and what it moves.

From the graph and shape inference at a concrete batch size, each node gets its op type,
input and output shapes, element type, multiply-accumulates (MACs), floating-point
operations (FLOPs), the bytes of weights it holds, the weight bytes it touches (an
embedding lookup touches only the rows it gathers), and the activation bytes it reads
and writes.

What is counted (1 MAC = 2 FLOPs; integer ops count their operations the same way):
- Conv, ConvTranspose (any number of spatial dimensions, groups), Gemm, MatMul (including
  activation-by-activation MatMuls such as attention scores), and their quantized forms
  (QLinearConv, ConvInteger, QLinearMatMul, MatMulInteger): MACs from the shapes; FLOPs =
  2 x MACs, plus one FLOP per output element for a fused bias. ConvTranspose counts every
  input element against every kernel tap (N x Cin x in-spatial x Cout/group x kernel area),
  outputs cropped by padding included.
- Recurrent layers (LSTM, GRU, RNN; every direction): per time step, direction and
  sample, MACs = gates x hidden x (input + hidden) (gates: LSTM 4, GRU 3, RNN 1), and
  elementwise FLOPs per hidden unit: LSTM 13 (4 sums of the two products, 5 activations,
  4 for the cell and hidden state) + 8 with the bias + 6 with peepholes; GRU 11 (3 sums,
  1 reset product, 3 activations, 4 for the new state) + 6 with the bias; RNN 2 (1 sum, 1
  activation) + 2 with the bias. Given ``sequence_lens``, every sequence is counted at the
  full length (an upper bound, said in the row's note).
- Einsum, any equation (ellipsis and broadcasting included): operands contracted left to
  right in pairs; a pair whose labels include a summed one costs the product of the sizes
  of all its labels in MACs, a pair without one that many multiplications (FLOPs); a single
  operand costs one FLOP per input element when it sums a label, none when it only
  transposes or takes a diagonal.
- Attention as one op (ONNX Attention, com.microsoft Attention, MultiHeadAttention,
  GroupQueryAttention): scores and context MACs = batch x query length x attended length x
  (query + value head size x heads), plus the input projections of com.microsoft Attention
  (its weight); per score 1 FLOP for the scale, 5 for Softmax and 1 for a mask, and bias and
  rotary-embedding work per element. The attended length is the key length plus any past
  (for GroupQueryAttention without a constant total length: the past buffer plus the new
  tokens, an upper bound, said in the note). The same attention written as MatMul, Softmax,
  MatMul is counted node by node with the same rules.
- Embeddings: a Gather from an initializer moves the rows it gathers (no FLOPs); a
  Gather + ReduceSum "embedding bag" adds one FLOP per gathered element; com.microsoft
  EmbedLayerNormalization gathers 2 or 3 rows per token, adds them (1 FLOP per element
  each) and normalises (8 per element).
- Resize and Upsample, per output element by mode: nearest 1 FLOP, linear 2^(d+1) - 1,
  cubic 2 x 4^d - 1, with d the number of resized axes (a weighted sum of 2^d or 4^d
  neighbours).
- Elementwise arithmetic and activations (Add, Mul, Relu, Clip, Erf, Sigmoid, ...): one
  FLOP per output element; Quantize/DequantizeLinear 2; no MACs.
- Normalisations (BatchNormalization 2, LayerNormalization, InstanceNormalization and
  GroupNormalization 8, RMSNormalization 4 FLOPs per element; com.microsoft
  SkipLayerNormalization 8 + 1 for the skip sum + 1 for a bias), Softmax (5 per element),
  pooling (one per window element, in 1-D, 2-D or 3-D), reductions (one per input element).
- Data-movement ops (Reshape, Transpose, Concat, Gather, Slice, ...): zero FLOPs by
  definition, with their bytes counted.

Ops with no formula here (control flow such as Loop and If, TopK, NonMaxSuppression, custom
ops) are marked ``counted=False`` and listed in ``LayerTable.uncounted`` (op -> node count);
``LayerTable.uncounted_note()`` is the one line every consumer prints. They are never
silently zero. A row whose count rests on an assumption carries it in ``note``.

The operators of onnxruntime's ``com.microsoft`` domain above have no ONNX shape inference;
their output shapes are worked out here from their inputs, and inference runs again past
them. Any other op whose outputs cannot be inferred is refused with the node and the op.

An op that ONNX does not define at the model's opset (a misspelt or custom op in the standard
domain) is refused up front (``check_ops``), naming the op and the node.

Parameters are the elements of floating-point initializers, except BatchNormalization's
running mean and variance (buffers, not trained parameters) and tensors that only carry
operator settings (Clip bounds, Resize scales, Pad values), which is how published
parameter counts are made.

For a hardware cost model each row carries ``kclass_hint`` and ``gemm_mnk`` for the ops whose
kernel class does not follow from the op type alone (``kernel_class``), and
``serial_steps`` (the time steps a recurrent layer runs one after another).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field

import numpy as np
import onnx
from onnx import shape_inference

from sim.errors import InputError
from sim.workload.inputs import FLAG, graph_inputs, input_shapes

ELEMENTWISE = {
    "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Exp", "Log", "Neg", "Abs", "Reciprocal",
    "Relu", "LeakyRelu", "PRelu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh",
    "Erf", "Gelu", "Elu", "Selu", "Softplus", "Min", "Max", "Sum", "Mean", "Where",
    "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Not", "And", "Or",
    "Floor", "Ceil", "Round", "Sign", "Cos", "Sin", "Mod", "BitShift", "Dropout",
    "Resize", "Upsample",
    "Celu", "Mish", "Softsign", "ThresholdedRelu", "Shrink", "Tan", "Atan", "Asin", "Acos", "Sinh",
    "Cosh", "Asinh", "Acosh", "Atanh", "IsNaN", "IsInf", "Xor", "BitwiseAnd", "BitwiseOr", "BitwiseXor",
    "BitwiseNot", "Swish",
}
#: Elementwise ops costing more than one FLOP per output element.
ELEMENTWISE_FLOPS = {"QuantizeLinear": 2, "DequantizeLinear": 2, "DynamicQuantizeLinear": 4,
                     "RotaryEmbedding": 3}
DATA_MOVEMENT = {
    "Reshape", "Transpose", "Concat", "Gather", "GatherElements", "GatherND", "Slice",
    "Flatten", "Squeeze", "Unsqueeze", "Shape", "Constant", "Identity", "Cast", "Split",
    "Expand", "Pad", "Tile", "ConstantOfShape", "Range", "Size", "ScatterND",
    "ScatterElements", "DepthToSpace", "SpaceToDepth", "NonZero", "CastLike", "Trilu",
    "OneHot", "ReverseSequence", "Compress",
}
REDUCTIONS = {"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd",
              "ReduceL2", "ReduceL1", "ReduceSumSquare", "ReduceLogSumExp", "ArgMax", "ArgMin", "CumSum"}
FLOPS_PER_ELEMENT = {"BatchNormalization": 2, "LayerNormalization": 8, "InstanceNormalization": 8,
                     "GroupNormalization": 8, "Softmax": 5, "LogSoftmax": 5, "RMSNormalization": 4,
                     "MeanVarianceNormalization": 8}
MAC_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul"}
QUANTIZED_MAC_OPS = {"QLinearConv", "ConvInteger", "QLinearMatMul", "MatMulInteger"}
RECURRENT = {"LSTM": 4, "GRU": 3, "RNN": 1}          # op -> gates
ATTENTION = {"Attention", "MultiHeadAttention", "GroupQueryAttention"}
POOLS = {"MaxPool", "AveragePool", "LpPool"}
GLOBAL_POOLS = {"GlobalAveragePool", "GlobalMaxPool"}
RESIZE = {"Resize", "Upsample"}

#: onnxruntime's domain of contrib ops; the ones counted here (with their output shapes worked
#: out in ``_contrib_shapes``): op -> FLOPs per element of the first output beyond its MACs
MS_DOMAIN = "com.microsoft"
MS_ELEMENTWISE = {"FastGelu": 1, "Gelu": 1, "QuickGelu": 1, "BiasGelu": 2, "BiasAdd": 2, "RotaryEmbedding": 3}
MS_NORMS = {"SkipLayerNormalization": 8, "SkipSimplifiedLayerNormalization": 4}
MS_COUNTED = set(MS_ELEMENTWISE) | set(MS_NORMS) | {"Attention", "MultiHeadAttention", "GroupQueryAttention",
                                                     "EmbedLayerNormalization"}

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


def _standard(domain: str) -> bool:
    return (domain or "") in STANDARD_DOMAINS


def qualified(op_type: str, domain: str = "") -> str:
    """``op_type``, prefixed with its domain outside ONNX's own (``com.microsoft:Attention``)."""
    return op_type if _standard(domain) else f"{domain}:{op_type}"


def op_class(op_type: str, domain: str = "") -> str:
    """Coarse class used by cost models and reports."""
    if not _standard(domain):
        if domain != MS_DOMAIN or op_type not in MS_COUNTED:
            return "other"
        if op_type in ATTENTION:
            return "attention"
        if op_type in MS_ELEMENTWISE:
            return "elementwise"
        return "normalization"      # SkipLayerNormalization, EmbedLayerNormalization
    if op_type in ("Conv", "ConvTranspose", "QLinearConv", "ConvInteger"):
        return "conv"
    if op_type in ("Gemm", "MatMul", "QLinearMatMul", "MatMulInteger", "Einsum"):
        return "matmul"
    if op_type in RECURRENT:
        return "recurrent"
    if op_type == "Attention":
        return "attention"
    if op_type in ELEMENTWISE or op_type in ELEMENTWISE_FLOPS:
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
    domain: str = ""            # "" for ONNX's own ops
    note: str = ""              # the assumption a count rests on, or why it is not counted
    kclass_hint: str = ""       # kernel class where the op type alone does not say it (``kernel_class``)
    gemm_mnk: list = field(default_factory=list)    # [m, n, k] of that kernel at this batch, m*n*k = MACs
    serial_steps: int = 1       # time steps run one after another (recurrent layers)


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
    def uncounted(self) -> dict[str, int]:
        """Ops without a cost formula -> their node count (domain-qualified outside ONNX's own)."""
        out: dict[str, int] = {}
        for r in self.rows:
            if not r.counted:
                key = qualified(r.op_type, r.domain)
                out[key] = out.get(key, 0) + 1
        return dict(sorted(out.items()))

    @property
    def uncounted_ops(self) -> list[str]:
        return list(self.uncounted)

    def uncounted_note(self) -> str:
        """``uncounted ops: TopK (2 nodes), Loop (1 node)``, or "" when every node is counted: the
        line a prediction built on this table shows (its totals leave these nodes out)."""
        if not self.uncounted:
            return ""
        return "uncounted ops: " + ", ".join(f"{op} ({n} node{'s' if n != 1 else ''})"
                                             for op, n in self.uncounted.items())

    @property
    def notes(self) -> dict[str, int]:
        """The assumptions rows rest on -> how many rows rest on each."""
        out: dict[str, int] = {}
        for r in self.rows:
            if r.note and r.counted:
                out[r.note] = out.get(r.note, 0) + 1
        return out

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
                "uncounted_ops": self.uncounted_ops, "uncounted": self.uncounted, "notes": self.notes,
                "by_class": self.by_class(), "rows": [asdict(r) for r in self.rows]}


def kernel_class(row: LayerRow) -> tuple[str, int, int, int] | None:
    """(kernel class, m, n, k) of a row whose op type alone does not say it, else None.

    The classes are those of ``sim.hw.summaries``: ``matmul`` (a product against a weight:
    recurrent layers, Einsum with a weight operand, quantized MatMul, com.microsoft Attention
    with its projection weight), ``bmm`` (activations by activations: attention ops without
    weights, Einsum of two activations), ``conv``/``gconv`` (quantized convolutions),
    ``vector`` (EmbedLayerNormalization, SkipLayerNormalization, RMSNormalization, CumSum) and
    ``fused`` (the com.microsoft elementwise ops, Quantize/DequantizeLinear). ``m x n x k`` is
    the row's MACs (per time step for a recurrent layer, ``serial_steps`` of them).
    """
    if not row.kclass_hint:
        return None
    m, n, k = (row.gemm_mnk + [0, 0, 0])[:3]
    return row.kclass_hint, int(m), int(n), int(k)


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


def _shape_probe(model: onnx.ModelProto, batch: int, source: str) -> onnx.ModelProto:
    """A light copy for shape inference: every input at its concrete shape, large weights reduced
    to their types.

    Shape inference needs only the shapes of weights (and the values of small integer
    tensors such as Reshape targets), so weights are passed as typed graph inputs instead
    of copying their data. An input dimension without a size is refused here
    (``sim.workload.inputs.input_shapes``), naming the input, the dimension and the fix.
    """
    small, as_inputs = [], []
    for t in model.graph.initializer:
        if t.data_type in _FLOAT_TYPES and _numel(list(t.dims)) > 64:
            as_inputs.append(onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
        else:
            small.append(t)
    concrete = input_shapes(model, batch, source=source)
    inputs, named = [], {}
    for v in graph_inputs(model):
        v = copy.deepcopy(v)
        dims = v.type.tensor_type.shape.dim
        for d, size in zip(dims, concrete[v.name]):
            if d.dim_param:
                named[d.dim_param] = size
            d.Clear()
            d.dim_value = size
        inputs.append(v)
    # shapes the model declares inside (value_info, outputs) in the inputs' symbolic sizes take their values
    declared = []
    for v in list(model.graph.value_info) + list(model.graph.output):
        v = copy.deepcopy(v)
        for d in v.type.tensor_type.shape.dim if v.type.tensor_type.HasField("shape") else []:
            if d.dim_param in named:
                size = named[d.dim_param]
                d.Clear()
                d.dim_value = size
        declared.append(v)
    n_info = len(model.graph.value_info)
    graph = onnx.helper.make_graph(model.graph.node, model.graph.name, inputs + as_inputs,
                                   declared[n_info:], small, value_info=declared[:n_info])
    probe = onnx.helper.make_model(graph, opset_imports=model.opset_import)
    probe.ir_version = model.ir_version
    return probe


_Shapes = dict[str, tuple[list[int], int]]


def _infer(model: onnx.ModelProto, source: str) -> onnx.ModelProto:
    try:
        return shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as exc:
        raise InputError(f"{source}: shape inference failed ({str(exc).splitlines()[0][:200]}); expected a "
                         f"graph whose shapes ONNX can infer (check the input sizes, {FLAG} NAME=DIMS)") from None


def _known(inferred: onnx.ModelProto) -> _Shapes:
    out = {}
    for v in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output):
        t = v.type.tensor_type
        if t.HasField("shape") and all(d.HasField("dim_value") for d in t.shape.dim):
            out[v.name] = ([int(d.dim_value) for d in t.shape.dim], t.elem_type)
    return out


def _shapes(model: onnx.ModelProto, source: str) -> _Shapes:
    """Every tensor's shape: ONNX's inference, run again past the com.microsoft ops counted here
    (``_contrib_shapes`` gives their outputs) until nothing more is learnt."""
    probe = model
    constants = {t.name: t for t in model.graph.initializer}
    for _ in range(len(model.graph.node) + 1):
        probe = _infer(probe, source)
        out = _known(probe)
        for t in probe.graph.initializer:
            out.setdefault(t.name, ([int(d) for d in t.dims], t.data_type))
        learnt = []
        for node in probe.graph.node:
            if node.domain != MS_DOMAIN or all(o in out for o in node.output if o):
                continue
            for name, shape, elem in _contrib_shapes(node, out, constants):
                if name and name not in out and shape is not None and all(d > 0 for d in shape):
                    learnt.append(onnx.helper.make_tensor_value_info(name, elem, shape))
                    out[name] = (shape, elem)
        if not learnt:
            break
        probe.graph.value_info.extend(learnt)
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


def _at(node: onnx.NodeProto, shapes: _Shapes, i: int) -> list[int] | None:
    """The shape of the node's ``i``-th input, None where it is absent or unknown."""
    if i >= len(node.input) or not node.input[i] or node.input[i] not in shapes:
        return None
    return shapes[node.input[i]][0]


def _elem(node: onnx.NodeProto, shapes: _Shapes, i: int = 0) -> int:
    return shapes[node.input[i]][1] if i < len(node.input) and node.input[i] in shapes else onnx.TensorProto.FLOAT


# ---- com.microsoft contrib ops: output shapes ---------------------------------------------------

def _mha_dims(node: onnx.NodeProto, shapes: _Shapes) -> dict | None:
    """Batch, query length, attended length, query and value widths (all heads) and heads of a
    com.microsoft MultiHeadAttention (plain, packed QKV, packed KV, or 4-D cached key/value)."""
    q, k, v = _at(node, shapes, 0), _at(node, shapes, 1), _at(node, shapes, 2)
    heads = int(_attr(node, "num_heads", 1))
    if q is None:
        return None
    if k is None and len(q) == 5:            # packed QKV [B, S, N, 3, H]
        b, s = q[0], q[1]
        dq = dv = q[2] * q[4]
        length, new_kv = s, True
    elif k is not None and len(k) == 5:      # packed KV [B, L, N, 2, H]
        b, s, dq = q[0], q[1], q[2]
        dv, length, new_kv = k[2] * k[4], k[1], True
    elif k is not None and v is not None and len(k) == 4:   # projected key/value [B, N, L, H]
        b, s, dq = q[0], q[1], q[2]
        dv, length, new_kv = v[1] * v[3], k[2], False
    elif k is not None and v is not None:
        b, s, dq, dv, length, new_kv = q[0], q[1], q[2], v[2], k[1], True
    else:
        return None
    past = _at(node, shapes, 6)
    cached = past[2] if new_kv and past is not None and len(past) == 4 else 0
    return {"b": b, "s": s, "l": length + cached, "new": length, "dq": dq, "dv": dv, "heads": heads}


def _gqa_dims(node: onnx.NodeProto, shapes: _Shapes, constants: dict) -> dict | None:
    q, k = _at(node, shapes, 0), _at(node, shapes, 1)
    heads, kv_heads = int(_attr(node, "num_heads", 1)), int(_attr(node, "kv_num_heads", 1))
    if q is None or len(q) != 3:
        return None
    head = q[2] // heads if k is not None else q[2] // (heads + 2 * kv_heads)
    past = _at(node, shapes, 3)
    total, note = q[1] + (past[2] if past is not None and len(past) == 4 else 0), ""
    name = node.input[6] if len(node.input) > 6 else ""
    if name in constants:
        total = int(onnx.numpy_helper.to_array(constants[name]).reshape(-1)[0])
    elif past is not None:
        note = ("GroupQueryAttention: attended length taken as the past buffer plus the new tokens "
                f"({total}), an upper bound")
    return {"b": q[0], "s": q[1], "l": total, "head": head, "heads": heads, "kv_heads": kv_heads,
            "buffer": max(total, past[2] if past is not None and len(past) == 4 else 0), "note": note}


def _contrib_shapes(node: onnx.NodeProto, shapes: _Shapes, constants: dict):
    """(output name, shape, element type) of a com.microsoft op counted here; shape None where
    it cannot be told yet."""
    op, x = node.op_type, _at(node, shapes, 0)
    elem = _elem(node, shapes)
    outs = list(node.output)
    if x is None:
        return
    if op in MS_ELEMENTWISE:
        yield outs[0], list(x), elem
    elif op in MS_NORMS:
        yield outs[0], list(x), elem
        stats = list(x[:-1]) + [1]
        for i, shape in ((1, stats), (2, stats), (3, list(x))):
            if i < len(outs):
                yield outs[i], shape, (elem if i == 3 else onnx.TensorProto.FLOAT)
    elif op == "EmbedLayerNormalization":
        word = _at(node, shapes, 2)
        if word is None or len(x) != 2:
            return
        yield outs[0], [x[0], x[1], word[1]], _elem(node, shapes, 2)
        if len(outs) > 1:
            yield outs[1], [x[0]], onnx.TensorProto.INT32
        if len(outs) > 2:
            yield outs[2], [x[0], x[1], word[1]], _elem(node, shapes, 2)
    elif op == "Attention":
        w = _at(node, shapes, 1)
        if w is None or len(x) != 3:
            return
        sizes = list(_attr(node, "qkv_hidden_sizes", []) or [w[1] // 3] * 3)
        heads = int(_attr(node, "num_heads", 1))
        yield outs[0], [x[0], x[1], sizes[2]], elem
        past = _at(node, shapes, 4)
        if len(outs) > 1:
            total = x[1] + (past[3] if past is not None else 0)
            yield outs[1], [2, x[0], heads, total, sizes[1] // heads], elem
    elif op == "MultiHeadAttention":
        d = _mha_dims(node, shapes)
        if d is None:
            return
        yield outs[0], [d["b"], d["s"], d["dv"]], elem
        n = d["heads"]
        for i, width in ((1, d["dq"]), (2, d["dv"])):
            if i < len(outs):
                yield outs[i], [d["b"], n, d["l"], width // n], elem
    elif op == "GroupQueryAttention":
        d = _gqa_dims(node, shapes, constants)
        if d is None:
            return
        yield outs[0], [d["b"], d["s"], d["heads"] * d["head"]], elem
        for i in (1, 2):
            if i < len(outs):
                yield outs[i], [d["b"], d["kv_heads"], d["buffer"], d["head"]], elem


# ---- costs ------------------------------------------------------------------------------------

@dataclass
class _Cost:
    macs: int = 0
    flops: int = 0
    counted: bool = True
    note: str = ""
    kclass: str = ""
    mnk: list = field(default_factory=list)
    steps: int = 1
    weight_read: int | None = None      # weight bytes touched, where not all the weights are


def _conv_view(kind_w: list[int], x: list[int], y: list[int], transpose: bool) -> tuple[str, list[int]]:
    if transpose:
        return "conv", [_numel(y[2:]) * y[0], kind_w[1], kind_w[0] * _numel(kind_w[2:])]
    groups = max(1, x[1] // kind_w[1]) if kind_w[1] else 1
    return ("gconv" if groups > 1 else "conv"), [_numel(y[2:]) * y[0], kind_w[0] // groups,
                                                  kind_w[1] * _numel(kind_w[2:])]


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


def _quantized(node: onnx.NodeProto, shapes: _Shapes, outs: list) -> _Cost:
    op, y = node.op_type, outs[0]
    x = _at(node, shapes, 0)
    w = _at(node, shapes, 3 if op in ("QLinearConv", "QLinearMatMul") else 1)
    if x is None or w is None:
        return _Cost(counted=False, note=f"{op}: input shapes unknown")
    if op in ("QLinearConv", "ConvInteger"):
        macs = _numel(y) * _numel(w[1:])
        kclass, mnk = _conv_view(w, x, y, False)
        bias = op == "QLinearConv" and _at(node, shapes, 8) is not None
        return _Cost(macs, 2 * macs + (_numel(y) if bias else 0), kclass=kclass, mnk=mnk)
    macs = _numel(y) * x[-1]
    return _Cost(macs, 2 * macs, kclass="matmul", mnk=[_numel(y[:-1]), y[-1], x[-1]])


def _recurrent(node: onnx.NodeProto, shapes: _Shapes) -> _Cost:
    """LSTM, GRU, RNN: the module docstring's formula."""
    op = node.op_type
    x, w, r = _at(node, shapes, 0), _at(node, shapes, 1), _at(node, shapes, 2)
    if x is None or w is None or r is None:
        return _Cost(counted=False, note=f"{op}: input shapes unknown")
    gates = RECURRENT[op]
    layout = int(_attr(node, "layout", 0))
    seq, batch = (x[1], x[0]) if layout else (x[0], x[1])
    dirs, hidden, feat = w[0], r[2], w[2]
    runs = dirs * seq * batch
    macs = runs * gates * hidden * (feat + hidden)
    bias = _at(node, shapes, 3) is not None
    if op == "LSTM":
        per = 13 + (8 if bias else 0) + (6 if _at(node, shapes, 7) is not None else 0)
    elif op == "GRU":
        per = 11 + (6 if bias else 0)
    else:
        per = 2 + (2 if bias else 0)
    note = ""
    if _at(node, shapes, 4) is not None:
        note = f"{op}: sequence_lens given; every sequence counted at the full length {seq} (an upper bound)"
    return _Cost(macs, 2 * macs + runs * per * hidden, note=note, kclass="matmul",
                 mnk=[dirs * batch, gates * hidden, feat + hidden], steps=seq)


def _einsum_labels(term: str, rank: int, ell: int) -> list:
    if "..." not in term:
        return list(term)
    pre, post = term.split("...")
    k = rank - len(pre) - len(post)
    return list(pre) + [("...", ell - k + j) for j in range(k)] + list(post)


def _einsum(node: onnx.NodeProto, shapes: _Shapes, inits: dict) -> _Cost:
    """Einsum: the module docstring's formula (pairs contracted left to right)."""
    eq = _attr(node, "equation", b"")
    eq = (eq.decode() if isinstance(eq, bytes) else str(eq)).replace(" ", "")
    operands = [_at(node, shapes, i) for i in range(len(node.input))]
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if any(o is None for o in operands) or len(terms) != len(operands):
        return _Cost(counted=False, note="Einsum: operand shapes unknown")
    ell = max([len(o) - len(t) + 3 for t, o in zip(terms, operands) if "..." in t] or [0])
    labels = [_einsum_labels(t, len(o), ell) for t, o in zip(terms, operands)]
    sizes: dict = {}
    for lab, shape in zip(labels, operands):
        for a, n in zip(lab, shape):
            sizes[a] = max(sizes.get(a, 1), int(n))
    if arrow:
        out = set(_einsum_labels(rhs, ell + len(rhs.replace("...", "")), ell)) if "..." in rhs else set(rhs)
    else:
        counts: dict = {}
        for lab in labels:
            for a in lab:
                counts[a] = counts.get(a, 0) + 1
        out = {a for a, c in counts.items() if c == 1 or isinstance(a, tuple)}

    def prod(ls) -> int:
        return int(np.prod([sizes[a] for a in ls], dtype=np.int64)) if ls else 1

    if len(labels) == 1:
        summed = set(labels[0]) - out
        return _Cost(0, _numel(operands[0]) if summed else 0)
    macs = mults = 0
    current = set(labels[0])
    mnk: list = []
    for i in range(1, len(labels)):
        other = set(labels[i])
        later = out.union(*[set(lab) for lab in labels[i + 1:]])
        involved = current | other
        keep = involved & later
        if involved - keep:
            macs += prod(involved)
        else:
            mults += prod(involved)
        if len(labels) == 2:
            batch = current & other & keep
            mnk = [prod(batch) * prod((current - other) & keep), prod((other - current) & keep),
                   prod(involved - keep)]
        current = keep
    weighted = any(x in inits for x in node.input)
    return _Cost(macs, 2 * macs + mults, kclass=("matmul" if weighted else "bmm") if macs else "",
                 mnk=mnk if macs and len(labels) == 2 else [])


def _scores(b: int, heads: int, s: int, length: int, masked: bool) -> int:
    """FLOPs per attention score beyond the MACs: 1 scale, 5 Softmax, 1 mask."""
    return b * heads * s * length * (6 + (1 if masked else 0))


def _attention(node: onnx.NodeProto, shapes: _Shapes, constants: dict, inits: dict) -> _Cost:
    """The attention ops: the module docstring's formula."""
    op, ms = node.op_type, node.domain == MS_DOMAIN
    x = _at(node, shapes, 0)
    if x is None:
        return _Cost(counted=False, note=f"{op}: input shapes unknown")
    if ms and op == "Attention":
        w = _at(node, shapes, 1)
        if w is None or len(x) != 3:
            return _Cost(counted=False, note="Attention: input shapes unknown")
        dq, dk, dv = list(_attr(node, "qkv_hidden_sizes", []) or [w[1] // 3] * 3)
        heads = int(_attr(node, "num_heads", 1))
        b, s = x[0], x[1]
        past = _at(node, shapes, 4)
        length = s + (past[3] if past is not None else 0)
        proj = b * s * x[2] * (dq + dk + dv)
        att = b * s * length * (dq + dv)
        masked = _at(node, shapes, 3) is not None or _at(node, shapes, 5) is not None
        flops = 2 * (proj + att) + (b * s * (dq + dk + dv) if _at(node, shapes, 2) is not None else 0) \
            + _scores(b, heads, s, length, masked)
        return _Cost(proj + att, flops, kclass="matmul" if node.input[1] in inits else "bmm",
                     mnk=[b * s, dq + dk + dv, x[2]])
    if ms and op == "MultiHeadAttention":
        d = _mha_dims(node, shapes)
        if d is None:
            return _Cost(counted=False, note="MultiHeadAttention: input shapes unknown")
        b, s, length, heads = d["b"], d["s"], d["l"], d["heads"]
        macs = b * s * length * (d["dq"] + d["dv"])
        bias = (b * s * d["dq"] + b * d["new"] * (d["dq"] + d["dv"])) if _at(node, shapes, 3) is not None else 0
        masked = _at(node, shapes, 4) is not None or _at(node, shapes, 5) is not None
        return _Cost(macs, 2 * macs + bias + _scores(b, heads, s, length, masked), kclass="bmm",
                     mnk=[b * heads * s, length, (d["dq"] + d["dv"]) // heads])
    if ms and op == "GroupQueryAttention":
        d = _gqa_dims(node, shapes, constants)
        if d is None:
            return _Cost(counted=False, note="GroupQueryAttention: input shapes unknown")
        b, s, length, heads, head = d["b"], d["s"], d["l"], d["heads"], d["head"]
        macs = 2 * b * heads * s * length * head
        rotary = 3 * b * s * (heads + d["kv_heads"]) * head if int(_attr(node, "do_rotary", 0)) else 0
        return _Cost(macs, 2 * macs + rotary + _scores(b, heads, s, length, False), note=d["note"], kclass="bmm",
                     mnk=[b * heads * s, length, 2 * head])
    # ONNX Attention (opset 23): Q, K, V in 4-D [B, heads, len, head] or 3-D [B, len, heads x head]
    k, v = _at(node, shapes, 1), _at(node, shapes, 2)
    if k is None or v is None:
        return _Cost(counted=False, note="Attention: input shapes unknown")
    if len(x) == 4:
        b, heads, s, head = x
        length, head_v = k[2], v[3]
    else:
        heads, kv_heads = int(_attr(node, "q_num_heads", 1)), int(_attr(node, "kv_num_heads", 1))
        b, s, head = x[0], x[1], x[2] // heads
        length, head_v = k[1], v[2] // kv_heads
    past = _at(node, shapes, 4)
    length += past[2] if past is not None else 0
    macs = b * heads * s * length * (head + head_v)
    extra = _scores(b, heads, s, length, _at(node, shapes, 3) is not None)
    if float(_attr(node, "softcap", 0.0) or 0.0) > 0:
        extra += 3 * b * heads * s * length         # divide, tanh, multiply per score
    return _Cost(macs, 2 * macs + extra, kclass="bmm", mnk=[b * heads * s, length, head + head_v])


def _resize(node: onnx.NodeProto, ins: list, outs: list) -> _Cost:
    y = outs[0]
    x = ins[0] if ins else y
    d = sum(1 for a, b in zip(x, y) if a != b)
    mode = _attr(node, "mode", b"nearest")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    per = {"nearest": 1, "linear": 2 ** (d + 1) - 1, "bilinear": 2 ** (d + 1) - 1, "cubic": 2 * 4 ** d - 1}.get(mode)
    if per is None:
        return _Cost(counted=False, note=f"{node.op_type}: mode {mode!r} has no formula")
    return _Cost(0, per * _numel(y))


def _ms_other(node: onnx.NodeProto, shapes: _Shapes, outs: list, size: int) -> _Cost:
    op = node.op_type
    y = _numel(outs[0]) if outs else 0
    if op in MS_ELEMENTWISE:
        extra = 1 if op in ("FastGelu", "Gelu", "QuickGelu") and _at(node, shapes, 1) is not None else 0
        return _Cost(0, (MS_ELEMENTWISE[op] + extra) * y, kclass="fused")
    if op in MS_NORMS:
        bias = _at(node, shapes, 4) is not None
        return _Cost(0, (MS_NORMS[op] + 1 + (1 if bias else 0)) * y, kclass="vector")
    # EmbedLayerNormalization: 2 or 3 rows gathered per token, summed, normalised
    ids = _at(node, shapes, 0)
    tables = sum(1 for i in (2, 3, 4) if _at(node, shapes, i) is not None)
    tokens, width = _numel(ids or []), (outs[0][-1] if outs else 0)
    mask = _numel(ids or []) if _at(node, shapes, 7) is not None else 0
    touched = (tables * tokens * width + 2 * width) * size
    return _Cost(0, (tables - 1 + 8) * tokens * width + mask, kclass="vector", weight_read=touched)


def _cost(node: onnx.NodeProto, ins: list, outs: list, shapes: _Shapes, inits: dict, constants: dict,
          size: int) -> _Cost:
    op = node.op_type
    out_elems = _numel(outs[0]) if outs else 0
    if not _standard(node.domain):
        if node.domain != MS_DOMAIN or op not in MS_COUNTED:
            return _Cost(counted=False, note=f"{qualified(op, node.domain)}: no cost formula")
        if op in ATTENTION:
            return _attention(node, shapes, constants, inits)
        return _ms_other(node, shapes, outs, size)
    if op in MAC_OPS:
        macs = _macs(node, ins, outs)
        has_bias = (op in ("Conv", "ConvTranspose", "Gemm") and len(node.input) > 2 and node.input[2])
        return _Cost(macs, 2 * macs + (out_elems if has_bias else 0))
    if op in QUANTIZED_MAC_OPS:
        return _quantized(node, shapes, outs)
    if op in RECURRENT:
        return _recurrent(node, shapes)
    if op == "Einsum":
        return _einsum(node, shapes, inits)
    if op == "Attention":
        return _attention(node, shapes, constants, inits)
    if op in RESIZE:
        return _resize(node, ins, outs)
    if op in ELEMENTWISE:
        return _Cost(0, out_elems)
    if op in ELEMENTWISE_FLOPS:
        return _Cost(0, ELEMENTWISE_FLOPS[op] * (_numel(ins[0]) if ins else out_elems), kclass="fused")
    if op in FLOPS_PER_ELEMENT:
        return _Cost(0, FLOPS_PER_ELEMENT[op] * out_elems,
                     kclass="vector" if op in ("RMSNormalization", "MeanVarianceNormalization") else "")
    if op in POOLS:
        return _Cost(0, out_elems * _numel(list(_attr(node, "kernel_shape", [1]))))
    if op in GLOBAL_POOLS or op in REDUCTIONS:
        return _Cost(0, _numel(ins[0]) if ins else 0, kclass="vector" if op == "CumSum" else "")
    if op in DATA_MOVEMENT:
        return _Cost(0, 0)
    return _Cost(counted=False, note=f"{op}: no cost formula")


def layer_table(model: onnx.ModelProto, batch: int = 1, name: str = "model",
                source: str | None = None) -> LayerTable:
    """The per-node table of ``model`` at ``batch`` (the batch dimension of each input:
    ``sim.workload.inputs``)."""
    source = source or name
    if not isinstance(batch, (int, np.integer)) or batch <= 0:
        raise InputError(f"{source}: batch size {batch!r}: expected an integer >= 1")
    if not graph_inputs(model):
        raise InputError(f"{source}: the graph has no inputs; expected an ONNX model with inputs")
    check_ops(model, source)
    shapes = _shapes(_shape_probe(model, int(batch), source), source)
    inits = {t.name: t for t in model.graph.initializer}
    constants = dict(inits)
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output and _attr(node, "value") is not None:
            constants[node.output[0]] = _attr(node, "value")
    skip = non_parameter_initializers(model)
    table = LayerTable(model_name=name, batch=int(batch), total_params=count_params(model))
    for i, node in enumerate(model.graph.node):
        missing = [o for o in node.output if o and o not in shapes]
        if missing and node.op_type != "Constant":
            op = qualified(node.op_type, node.domain)
            why = ("an op of another domain, whose shapes ONNX does not know" if not _standard(node.domain)
                   else "its inputs' shapes are not all known")
            raise InputError(f"{source}: node '{node.name or i}' ({op[:80]}) output '{missing[0]}' has no inferable "
                             f"shape ({why}); expected static shapes once the batch size is fixed (give input "
                             f"sizes with {FLAG} NAME=DIMS)")
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
        cost = _cost(node, ins, outs, shapes, inits, constants, size)
        w_read = w_bytes if cost.weight_read is None else min(w_bytes, cost.weight_read)
        if node.op_type == "Gather" and node.input[0] in inits:
            w_read = _numel(outs[0]) * size if outs else 0   # only the gathered rows are touched
        a_written = sum(_numel(o) for o in outs) * size
        table.rows.append(LayerRow(
            name=node.name or f"{node.op_type}_{i}", op_type=node.op_type,
            op_class=op_class(node.op_type, node.domain),
            input_shapes=ins, output_shapes=outs, dtype=onnx.TensorProto.DataType.Name(elem) if elem else "",
            macs=int(cost.macs), flops=int(cost.flops), weight_params=int(w_params), weight_bytes=int(w_bytes),
            weight_bytes_read=int(w_read), act_bytes_read=int(a_read), act_bytes_written=int(a_written),
            counted=cost.counted, domain=node.domain or "", note=cost.note, kclass_hint=cost.kclass,
            gemm_mnk=[int(v) for v in cost.mnk], serial_steps=int(cost.steps)))
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
    if table.uncounted:
        lines.append(f"{table.uncounted_note()} (no cost formula: left out of the totals)")
    for note, n in table.notes.items():
        lines.append(f"note ({n} node{'s' if n != 1 else ''}): {note}")
    return "\n".join(lines)
