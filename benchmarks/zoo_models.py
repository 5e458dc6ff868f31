"""A zoo of foreign ONNX models: small to large graphs the simulator's catalog never built.

The validation of the simulator (``python -m sim validate``) must hold for a model a user brings,
not only for the catalog's own graphs. These builders make such models from scratch with
``onnx.helper`` and numpy alone; nothing here imports from ``sim``, so no convention of the
catalog's graph builders (names, layouts, metadata beyond the documented input keys) leaks in.

Each model uses opset 17, a first input dimension named ``N`` (the batch), float32 weights drawn
from ``np.random.default_rng(seed)`` (so a seed fixes the bytes), and integer index inputs carry
the metadata key ``sim.input_high.<input>`` with their vocabulary size, which is how any model
tells the simulator the valid range of an index input. The models span about 50 us to 200 ms
per sample on a 2-core CPU with onnxruntime's default session options:

==================  =============================================================================
``mlp``             Gemm + Relu, 256 -> 512 -> 512 -> 10
``dw_cnn160``       depthwise-separable CNN at 3x160x160 (Conv + BatchNormalization + Clip)
``wide_cnn_hr``     plain 3x3 CNN, 64 to 128 channels, at 3x512x512
``transformer_enc`` 3 encoder layers, d_model 256, 4 heads, sequence 128 (MatMul, Softmax,
                    LayerNormalization, Gelu written with Erf)
``lstm``            two stacked LSTM layers (hidden 256) over 50 steps, batch-first by Transpose
``gru``             one GRU layer (hidden 128) over 100 steps
``einsum_attn``     single-head attention block written with Einsum, sequence 64, dim 128
``embedding_bag``   DLRM-like: a 400,000 x 64 table (about 100 MB) gathered by 26 indices,
                    summed in two bags, concatenated with 13 dense features, MLP head
``multi_input``     an image, a float vector and token ids through three branches, concatenated
``conv1d_audio``    strided 1-D convolutions over 16,000 audio samples
==================  =============================================================================

``python benchmarks/zoo_models.py OUTDIR [NAME ...]`` writes ``OUTDIR/<name>.onnx`` and prints
each model's parameters, input shapes and measured batch-1 time (median of 30 runs).
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

OPSET = 17
#: IR 8 is the version that introduced opset 17; every onnxruntime since 1.13 reads it.
IR_VERSION = 8
BATCH = "N"
PRODUCER = "zoo_models"


class _Builder:
    """Accumulates nodes, initializers and metadata of one graph, drawing weights from one rng."""

    def __init__(self, name: str, seed: int):
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.nodes: list = []
        self.inits: list = []
        self.inputs: list = []
        self.outputs: list = []
        self.meta: dict[str, str] = {}
        self._count = 0

    def _fresh(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def input(self, name: str, dims: list, elem: int | None = None) -> str:
        from onnx import TensorProto, helper  # noqa: PLC0415 - onnx is optional for the project

        self.inputs.append(helper.make_tensor_value_info(name, elem or TensorProto.FLOAT, [BATCH, *dims]))
        return name

    def output(self, name: str, dims: list) -> None:
        from onnx import TensorProto, helper  # noqa: PLC0415 - onnx is optional for the project

        self.outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [BATCH, *dims]))

    def const(self, array: np.ndarray, stem: str = "c") -> str:
        from onnx import numpy_helper  # noqa: PLC0415 - onnx is optional for the project

        name = self._fresh(stem)
        self.inits.append(numpy_helper.from_array(np.array(array, order="C"), name))
        return name

    def weight(self, shape: tuple, fan_in: int, stem: str = "w") -> str:
        """He-scaled normal weights (keeps activations of order one through deep stacks)."""
        w = self.rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in))
        return self.const(w.astype(np.float32), stem)

    def bias(self, n: int, stem: str = "b") -> str:
        return self.const((self.rng.standard_normal(n, dtype=np.float32) * np.float32(0.01)), stem)

    def node(self, op: str, inputs: list, n_out: int = 1, out: str | None = None, **attrs) -> str | list[str]:
        from onnx import helper  # noqa: PLC0415 - onnx is optional for the project

        outs = [out] if out and n_out == 1 else [self._fresh(op.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=self._fresh(f"{op}_node"), **attrs))
        return outs[0] if n_out == 1 else outs

    # layers -------------------------------------------------------------------------------------
    def gemm(self, x: str, n_in: int, n_out: int, relu: bool = False, out: str | None = None) -> str:
        y = self.node("Gemm", [x, self.weight((n_in, n_out), n_in), self.bias(n_out)],
                      out=None if relu else out)
        return self.node("Relu", [y], out=out) if relu else y

    def conv(self, x: str, c_in: int, c_out: int, k: int | tuple, stride: int = 1, group: int = 1,
             act: str = "relu", bn: bool = False) -> str:
        ks = (k, k) if isinstance(k, int) else tuple(k)     # an int is a square 2-D kernel
        spatial = len(ks)
        w = self.weight((c_out, c_in // group, *ks), (c_in // group) * int(np.prod(ks)))
        pads = [kk // 2 for kk in ks] * 2
        inputs = [x, w] if bn else [x, w, self.bias(c_out)]
        y = self.node("Conv", inputs, kernel_shape=list(ks), strides=[stride] * spatial, pads=pads, group=group)
        if bn:
            scale = self.const((1.0 + 0.1 * self.rng.standard_normal(c_out)).astype(np.float32), "bn_scale")
            shift = self.const((0.01 * self.rng.standard_normal(c_out)).astype(np.float32), "bn_bias")
            mean = self.const((0.01 * self.rng.standard_normal(c_out)).astype(np.float32), "bn_mean")
            var = self.const((1.0 + 0.1 * self.rng.random(c_out)).astype(np.float32), "bn_var")
            y = self.node("BatchNormalization", [y, scale, shift, mean, var], epsilon=1e-5)
        if act == "relu":
            return self.node("Relu", [y])
        if act == "relu6":
            return self.node("Clip", [y, self.const(np.array(0.0, np.float32), "lo"),
                                      self.const(np.array(6.0, np.float32), "hi")])
        return y

    def int64(self, values: Iterable[int], stem: str = "i") -> str:
        return self.const(np.array(list(values), dtype=np.int64), stem)

    def model(self):
        from onnx import helper  # noqa: PLC0415 - onnx is optional for the project

        graph = helper.make_graph(self.nodes, self.name, self.inputs, self.outputs, initializer=self.inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name=PRODUCER, ir_version=IR_VERSION)
        m.doc_string = f"zoo model {self.name}: built in code from seeded random weights"
        for key, value in sorted(self.meta.items()):
            p = m.metadata_props.add()
            p.key, p.value = key, value
        return m


# the models ---------------------------------------------------------------------------------------

def mlp(seed: int = 0):
    """Gemm + Relu stack 256 -> 512 -> 512 -> 10 (about 50 us per sample)."""
    b = _Builder("mlp", seed)
    x = b.input("x", [256])
    sizes = MLP_SIZES
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = i == len(sizes) - 2
        x = b.gemm(x, n_in, n_out, relu=not last, out="y" if last else None)
    b.output("y", [sizes[-1]])
    return b.model()


#: The MLP's layer widths, input first (its parameters: sum of in*out + out over the layers).
MLP_SIZES = (256, 512, 512, 10)


def dw_cnn160(seed: int = 0):
    """Depthwise-separable CNN at 3x160x160: a stride-2 stem, seven depthwise (group = channels)
    + pointwise blocks with BatchNormalization and Clip(0, 6), global pooling, a Gemm head."""
    b = _Builder("dw_cnn160", seed)
    x = b.input("image", [3, 160, 160])
    x = b.conv(x, 3, 32, 3, stride=2, act="relu6", bn=True)        # 80x80
    c = 32
    for c_out, stride in ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1)):
        x = b.conv(x, c, c, 3, stride=stride, group=c, act="relu6", bn=True)
        x = b.conv(x, c, c_out, 1, act="relu6", bn=True)
        c = c_out
    x = b.node("GlobalAveragePool", [x])
    x = b.node("Flatten", [x], axis=1)
    b.gemm(x, c, 100, out="logits")
    b.output("logits", [100])
    return b.model()


def wide_cnn_hr(seed: int = 0):
    """A wide plain CNN at 3x512x512: 3x3 convolutions of 48 to 128 channels, four of stride 2."""
    b = _Builder("wide_cnn_hr", seed)
    x = b.input("image", [3, 512, 512])
    x = b.conv(x, 3, 48, 3, stride=2)            # 256x256
    x = b.conv(x, 48, 48, 3)
    x = b.conv(x, 48, 96, 3, stride=2)           # 128x128
    x = b.conv(x, 96, 96, 3)
    x = b.conv(x, 96, 128, 3, stride=2)          # 64x64
    x = b.conv(x, 128, 128, 3)
    x = b.conv(x, 128, 128, 3, stride=2)         # 32x32
    x = b.node("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])    # 16x16
    x = b.node("GlobalAveragePool", [x])
    x = b.node("Flatten", [x], axis=1)
    b.gemm(x, 128, 20, out="logits")
    b.output("logits", [20])
    return b.model()


def _layer_norm(b: _Builder, x: str, d: int) -> str:
    return b.node("LayerNormalization", [x, b.const(np.ones(d, np.float32), "ln_g"),
                                         b.const(np.zeros(d, np.float32), "ln_b")], axis=-1, epsilon=1e-5)


def _gelu_erf(b: _Builder, x: str) -> str:
    """0.5 x (1 + erf(x / sqrt 2)), written out."""
    s = b.node("Div", [x, b.const(np.array(np.sqrt(2.0), np.float32), "sqrt2")])
    e = b.node("Erf", [s])
    e1 = b.node("Add", [e, b.const(np.array(1.0, np.float32), "one")])
    xe = b.node("Mul", [x, e1])
    return b.node("Mul", [xe, b.const(np.array(0.5, np.float32), "half")])


def _linear(b: _Builder, x: str, d_in: int, d_out: int) -> str:
    """x[..., d_in] @ W + b as MatMul + Add (a 3-D activation)."""
    y = b.node("MatMul", [x, b.weight((d_in, d_out), d_in)])
    return b.node("Add", [y, b.bias(d_out)])


def transformer_enc(seed: int = 0, layers: int = 3, seq: int = 128, d: int = 256, heads: int = 4,
                    ffn: int = 1024):
    """Post-norm transformer encoder layers built from MatMul, Reshape, Transpose, Softmax,
    LayerNormalization and an Erf GELU; input float [N, 128, 256]."""
    b = _Builder("transformer_enc", seed)
    x = b.input("x", [seq, d])
    dh = d // heads
    split = b.int64([0, seq, heads, dh], "heads_shape")     # 0 copies the batch dimension
    merge = b.int64([0, seq, d], "merge_shape")
    scale = b.const(np.array(1.0 / np.sqrt(dh), np.float32), "scale")
    for _ in range(layers):
        q, k, v = (b.node("Reshape", [_linear(b, x, d, d), split]) for _ in range(3))
        q = b.node("Transpose", [q], perm=[0, 2, 1, 3])              # N, h, s, dh
        k = b.node("Transpose", [k], perm=[0, 2, 3, 1])              # N, h, dh, s
        v = b.node("Transpose", [v], perm=[0, 2, 1, 3])
        scores = b.node("Mul", [b.node("MatMul", [q, k]), scale])
        p = b.node("Softmax", [scores], axis=-1)
        ctx = b.node("Transpose", [b.node("MatMul", [p, v])], perm=[0, 2, 1, 3])
        ctx = b.node("Reshape", [ctx, merge])
        x = _layer_norm(b, b.node("Add", [x, _linear(b, ctx, d, d)]), d)
        h = _gelu_erf(b, _linear(b, x, d, ffn))
        x = _layer_norm(b, b.node("Add", [x, _linear(b, h, ffn, d)]), d)
    b.node("Identity", [x], out="y")
    b.output("y", [seq, d])
    return b.model()


def _recurrent(name: str, op: str, seed: int, seq: int, n_in: int, hidden: int, layers: int,
               classes: int):
    gates = {"LSTM": 4, "GRU": 3}[op]
    b = _Builder(name, seed)
    x = b.input("x", [seq, n_in])
    x = b.node("Transpose", [x], perm=[1, 0, 2])                       # seq, N, features
    size = n_in
    for layer in range(layers):
        w = b.weight((1, gates * hidden, size), size)
        r = b.weight((1, gates * hidden, hidden), hidden)
        bias = b.const((0.01 * b.rng.standard_normal((1, 2 * gates * hidden))).astype(np.float32), "rb")
        y, y_h = b.node(op, [x, w, r, bias], n_out=2, hidden_size=hidden)
        if layer < layers - 1:
            x = b.node("Squeeze", [y, b.int64([1], "axis1")])          # seq, N, hidden
        else:
            x = b.node("Squeeze", [y_h, b.int64([0], "axis0")])        # N, hidden (last step)
        size = hidden
    b.gemm(x, hidden, classes, out="logits")
    b.output("logits", [classes])
    return b.model()


def lstm(seed: int = 0):
    """Two stacked LSTM layers, hidden 256, over [N, 50, 64] (batch-first by Transpose), a Gemm
    head on the last step."""
    return _recurrent("lstm", "LSTM", seed, seq=50, n_in=64, hidden=256, layers=2, classes=12)


def gru(seed: int = 0):
    """One GRU layer, hidden 128, over [N, 100, 40], a Gemm head on the last step."""
    return _recurrent("gru", "GRU", seed, seq=100, n_in=40, hidden=128, layers=1, classes=30)


def einsum_attn(seed: int = 0, seq: int = 64, d: int = 128):
    """Single-head attention with a residual and an Einsum feed-forward, every product an Einsum."""
    b = _Builder("einsum_attn", seed)
    x = b.input("x", [seq, d])
    q, k, v = (b.node("Einsum", [x, b.weight((d, d), d)], equation="bsd,dh->bsh") for _ in range(3))
    scores = b.node("Einsum", [q, k], equation="bqh,bkh->bqk")
    scores = b.node("Mul", [scores, b.const(np.array(1.0 / np.sqrt(d), np.float32), "scale")])
    p = b.node("Softmax", [scores], axis=-1)
    ctx = b.node("Einsum", [p, v], equation="bqk,bkh->bqh")
    att = b.node("Einsum", [ctx, b.weight((d, d), d)], equation="bsh,hd->bsd")
    x = b.node("Add", [x, att])
    h = b.node("Relu", [b.node("Einsum", [x, b.weight((d, 2 * d), d)], equation="bsd,df->bsf")])
    f = b.node("Einsum", [h, b.weight((2 * d, d), 2 * d)], equation="bsf,fd->bsd")
    b.node("Add", [x, f], out="y")
    b.output("y", [seq, d])
    return b.model()


#: The embedding model's table rows and lookups per sample.
EMBED_ROWS = 400_000
EMBED_DIM = 64
EMBED_LOOKUPS = 26


def embedding_bag(seed: int = 0):
    """DLRM-like: 26 int64 indices per sample gathered from one 400,000 x 64 table (about 100 MB),
    summed in two bags of 13, concatenated with 13 dense features through a Gemm, then an MLP."""
    b = _Builder("embedding_bag", seed)
    dense = b.input("dense", [13])
    idx = b.input("indices", [EMBED_LOOKUPS], elem=7)                 # TensorProto.INT64
    b.meta["sim.input_high.indices"] = str(EMBED_ROWS)
    table = b.const(b.rng.standard_normal((EMBED_ROWS, EMBED_DIM), dtype=np.float32) * np.float32(0.05), "table")
    rows = b.node("Gather", [table, idx], axis=0)                      # N, 26, 64
    bags = b.node("Reshape", [rows, b.int64([0, 2, EMBED_LOOKUPS // 2, EMBED_DIM], "bag_shape")])
    pooled = b.node("ReduceSum", [bags, b.int64([2], "bag_axis")], keepdims=0)    # N, 2, 64
    pooled = b.node("Flatten", [pooled], axis=1)                       # N, 128
    d = b.gemm(dense, 13, 64, relu=True)
    x = b.node("Concat", [pooled, d], axis=1)                          # N, 192
    x = b.gemm(x, 2 * EMBED_DIM + 64, 256, relu=True)
    x = b.gemm(x, 256, 128, relu=True)
    b.node("Sigmoid", [b.gemm(x, 128, 1)], out="p")
    b.output("p", [1])
    return b.model()


def multi_input(seed: int = 0, vocab: int = 1000):
    """Three inputs: an image [N,3,64,64] through a small CNN, a vector [N,32] through a Gemm, and
    token ids [N,16] averaged from a 1000 x 32 table; concatenated into an MLP head."""
    b = _Builder("multi_input", seed)
    img = b.input("image", [3, 64, 64])
    vec = b.input("features", [32])
    tok = b.input("tokens", [16], elem=7)
    b.meta["sim.input_high.tokens"] = str(vocab)
    x = b.conv(img, 3, 16, 3, stride=2)
    x = b.conv(x, 16, 32, 3, stride=2)
    x = b.conv(x, 32, 32, 3, stride=1)
    x = b.node("Flatten", [b.node("GlobalAveragePool", [x])], axis=1)  # N, 32
    f = b.gemm(vec, 32, 32, relu=True)
    table = b.const(b.rng.standard_normal((vocab, 32), dtype=np.float32) * np.float32(0.1), "tok_table")
    t = b.node("ReduceMean", [b.node("Gather", [table, tok], axis=0)], axes=[1], keepdims=0)   # N, 32
    h = b.node("Concat", [x, f, t], axis=1)
    h = b.gemm(h, 96, 64, relu=True)
    b.gemm(h, 64, 5, out="logits")
    b.output("logits", [5])
    return b.model()


def conv1d_audio(seed: int = 0):
    """Strided 1-D convolutions over raw audio [N, 1, 16000], global pooling, a Gemm head."""
    b = _Builder("conv1d_audio", seed)
    x = b.input("audio", [1, 16000])
    x = b.conv(x, 1, 32, (79,), stride=4)         # 4000
    x = b.node("MaxPool", [x], kernel_shape=[4], strides=[4])          # 1000
    x = b.conv(x, 32, 64, (3,), stride=1)
    x = b.node("MaxPool", [x], kernel_shape=[4], strides=[4])          # 250
    x = b.conv(x, 64, 128, (3,), stride=1)
    x = b.conv(x, 128, 128, (3,), stride=2)        # 125
    x = b.node("Flatten", [b.node("GlobalAveragePool", [x])], axis=1)
    b.gemm(x, 128, 35, out="logits")
    b.output("logits", [35])
    return b.model()


#: name -> builder(seed) -> onnx.ModelProto, roughly from the fastest to the slowest.
ZOO: OrderedDict[str, Callable] = OrderedDict([
    ("embedding_bag", embedding_bag),
    ("mlp", mlp),
    ("multi_input", multi_input),
    ("einsum_attn", einsum_attn),
    ("gru", gru),
    ("conv1d_audio", conv1d_audio),
    ("lstm", lstm),
    ("dw_cnn160", dw_cnn160),
    ("transformer_enc", transformer_enc),
    ("wide_cnn_hr", wide_cnn_hr),
])


def build(name: str, seed: int = 0):
    """The zoo model ``name`` built with weights from ``seed``."""
    if name not in ZOO:
        raise ValueError(f"zoo model {name!r}: unknown; expected one of {list(ZOO)}")
    return ZOO[name](seed)


def _write_atomic(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` through a temporary file in the same folder and os.replace;
    False (nothing written) where the file already holds these bytes."""
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return False
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def write_zoo(folder: str | Path, names: Iterable[str] | None = None, seed: int = 0) -> dict[str, Path]:
    """Build the zoo (or ``names``) and write ``<folder>/<name>.onnx``; name -> path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for name in list(names) if names is not None else list(ZOO):
        path = folder / f"{name}.onnx"
        _write_atomic(path, build(name, seed).SerializeToString())
        out[name] = path
    return out


def param_count(model) -> int:
    """Trained parameters: elements of the float initializers, less BatchNormalization's running
    mean and variance, Clip's bounds and scalars (settings, not weights), as published counts are
    made."""
    settings = set()
    for node in model.graph.node:
        if node.op_type == "BatchNormalization":
            settings.update(node.input[3:5])
        elif node.op_type == "Clip":
            settings.update(node.input[1:3])
    return int(sum(int(np.prod(t.dims, dtype=np.int64)) for t in model.graph.initializer
                   if t.data_type == 1 and len(t.dims) > 0 and t.name not in settings))


def input_shapes(model) -> dict[str, list]:
    return {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in model.graph.input}


def feeds(model, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded inputs at ``batch``: floats standard normal, int64 indices below their vocabulary."""
    rng = np.random.default_rng(seed)
    highs = {p.key.rsplit(".", 1)[1]: int(p.value) for p in model.metadata_props
             if p.key.startswith("sim.input_high.")}
    out = {}
    for v in model.graph.input:
        shape = [batch] + [d.dim_value for d in v.type.tensor_type.shape.dim[1:]]
        if v.type.tensor_type.elem_type == 7:
            out[v.name] = rng.integers(0, highs.get(v.name, 1), size=shape, dtype=np.int64)
        else:
            out[v.name] = rng.standard_normal(shape, dtype=np.float32)
    return out


def time_batch1_ms(path: str | Path, runs: int = 30, warmup: int = 5) -> float:
    """Median of ``runs`` back-to-back batch-1 ``session.run`` calls after ``warmup``, in ms,
    with onnxruntime's default session options."""
    import time  # noqa: PLC0415 - only the timing needs it

    import onnx  # noqa: PLC0415 - onnx is optional for the project
    import onnxruntime as ort  # noqa: PLC0415 - onnxruntime is optional for the project

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    f = feeds(onnx.load(str(path)), 1)
    for _ in range(warmup):
        sess.run(None, f)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, f)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print("usage: python benchmarks/zoo_models.py OUTDIR [NAME ...]\n"
              f"models: {', '.join(ZOO)}")
        return 0 if args else 2
    outdir, names = args[0], args[1:] or None
    unknown = [n for n in names or [] if n not in ZOO]
    if unknown:
        print(f"unknown zoo model(s) {unknown}; expected some of {list(ZOO)}", file=sys.stderr)
        return 2
    import onnx  # noqa: PLC0415 - onnx is optional for the project

    print(f"{'model':<16} {'params':>12} {'batch-1 ms':>11}  inputs")
    for name, path in write_zoo(outdir, names).items():
        model = onnx.load(str(path))
        shapes = ", ".join(f"{k}=" + "x".join(map(str, v)) for k, v in input_shapes(model).items())
        ms = time_batch1_ms(path)
        print(f"{name:<16} {param_count(model):>12,} {ms:>11.3f}  {shapes}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
