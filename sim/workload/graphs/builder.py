"""A small helper for writing ONNX graphs by hand.

``GraphBuilder`` keeps the node list, initializers and value names, and offers one
method per layer kind (convolution, matrix multiply, normalisation, activations).
Weights are drawn from a seeded numpy generator with fan-in scaling, so activations
stay finite through deep networks and the same seed gives the same bytes.

Integer inputs (token ids, embedding indices) declare their valid range in the model's
metadata as ``sim.input_high.<input name>`` = exclusive upper bound; ``sim.workload.inputs``
reads it to make valid feeds.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
BATCH = "batch"
#: the largest weight (bytes) the output-shape probe keeps with its data; larger ones are typed inputs
PROBE_WEIGHT_BYTES = 1 << 16
#: numpy types ``const`` writes straight into the model (``numpy_helper.from_array`` writes them as raw bytes)
_PLAIN = {np.dtype(t) for t in (np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64,
                                np.uint8, np.uint16, np.uint32, np.uint64, np.bool_)}
#: element types packed below one byte: their raw size is not elements x itemsize
_SUB_BYTE = {getattr(TensorProto, n) for n in ("INT4", "UINT4", "FLOAT4E2M1", "INT2", "UINT2")
             if hasattr(TensorProto, n)}


def _raw_bytes(t: onnx.TensorProto) -> int:
    """``len(t.raw_data)`` without copying the data out (reading ``raw_data`` makes a bytes copy)."""
    if not t.HasField("raw_data"):
        return 0
    if t.data_type in _SUB_BYTE:
        return len(t.raw_data)
    return int(np.prod(t.dims, dtype=np.int64)) * helper.tensor_dtype_to_np_dtype(t.data_type).itemsize


class GraphBuilder:
    def __init__(self, name: str, seed: int = 0):
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        # the initializers live in the model being built from the start: moving a tensor into a
        # model later copies it (twice its size at the peak); ``build`` returns this model
        self._model_proto = onnx.ModelProto()
        self.initializers = self._model_proto.graph.initializer
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self.metadata: dict[str, str] = {}
        self._counts: dict[str, int] = {}
        self._built = False

    # ---- names -------------------------------------------------------------
    def fresh(self, prefix: str) -> str:
        n = self._counts.get(prefix, 0)
        self._counts[prefix] = n + 1
        return f"{prefix}_{n}"

    # ---- graph interface ---------------------------------------------------
    def input(self, name: str, shape: list, dtype=TensorProto.FLOAT, high: int | None = None) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, dtype, shape))
        if high is not None:
            self.metadata[f"sim.input_high.{name}"] = str(int(high))
        return name

    def output(self, name: str, shape: list | None = None, dtype=TensorProto.FLOAT) -> str:
        """Mark ``name`` a graph output; without ``shape`` it is inferred at build time."""
        self.outputs.append((name, shape, dtype))
        return name

    def const(self, array: np.ndarray, prefix: str = "const") -> str:
        name = self.fresh(prefix)
        array = np.asarray(array)
        if array.dtype in _PLAIN and array.nbytes > PROBE_WEIGHT_BYTES:
            # written in place, as ``numpy_helper.from_array`` writes it (dims, name, type, raw
            # little-endian bytes), without a standalone tensor to copy in
            t = self.initializers.add()
            t.dims.extend(array.shape)
            t.name = name
            t.data_type = helper.np_dtype_to_tensor_dtype(array.dtype)
            t.raw_data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        else:
            self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def weight(self, shape: tuple, fan_in: int | None = None, prefix: str = "w", scale: float = 1.0) -> str:
        """A float32 weight with He-style scaling (std = scale * sqrt(2 / fan_in))."""
        if fan_in is None:
            fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else int(shape[0])
        std = scale * np.sqrt(2.0 / max(fan_in, 1))
        w = self.rng.standard_normal(shape)
        w *= std                        # in place: the same values as ``w * std``, one float64 copy fewer
        return self.const(w.astype(np.float32), prefix)

    def bias(self, n: int, prefix: str = "b") -> str:
        return self.const((self.rng.standard_normal(n) * 0.01).astype(np.float32), prefix)

    def op(self, op_type: str, inputs: list[str], n_out: int = 1, name: str | None = None, **attrs):
        name = name or self.fresh(op_type.lower())
        outs = [f"{name}_out{i}" if n_out > 1 else f"{name}_out" for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=name, **attrs))
        return outs if n_out > 1 else outs[0]

    # ---- layers ------------------------------------------------------------
    def conv(self, x: str, c_in: int, c_out: int, k, stride=1, pad=None, group: int = 1,
             dilation=1, bias: bool = True, dims: int = 2, name: str | None = None) -> str:
        ks = (k,) * dims if isinstance(k, int) else tuple(k)
        st = (stride,) * dims if isinstance(stride, int) else tuple(stride)
        dl = (dilation,) * dims if isinstance(dilation, int) else tuple(dilation)
        if pad is None:
            pad = [(kk - 1) * d // 2 for kk, d in zip(ks, dl)]
        elif isinstance(pad, int):
            pad = [pad] * dims
        w = self.weight((c_out, c_in // group) + ks, prefix="conv_w")
        ins = [x, w] + ([self.bias(c_out, "conv_b")] if bias else [])
        return self.op("Conv", ins, name=name, kernel_shape=list(ks), strides=list(st),
                       pads=list(pad) * 2, group=group, dilations=list(dl))

    def batchnorm(self, x: str, c: int) -> str:
        scale = self.const((1.0 + 0.05 * self.rng.standard_normal(c)).astype(np.float32), "bn_scale")
        b = self.const((0.01 * self.rng.standard_normal(c)).astype(np.float32), "bn_b")
        mean = self.const((0.01 * self.rng.standard_normal(c)).astype(np.float32), "bn_mean")
        var = self.const((1.0 + 0.05 * np.abs(self.rng.standard_normal(c))).astype(np.float32), "bn_var")
        return self.op("BatchNormalization", [x, scale, b, mean, var], epsilon=1e-5)

    def relu(self, x: str) -> str:
        return self.op("Relu", [x])

    def relu6(self, x: str) -> str:
        return self.op("Clip", [x, self.const(np.array(0.0, np.float32), "zero"),
                                self.const(np.array(6.0, np.float32), "six")])

    def add(self, a: str, b: str) -> str:
        return self.op("Add", [a, b])

    def linear(self, x: str, d_in: int, d_out: int, bias: bool = True) -> str:
        """x[..., d_in] @ W[d_in, d_out] (+ b): MatMul then Add, as exporters write it."""
        w = self.weight((d_in, d_out), fan_in=d_in, prefix="fc_w")
        y = self.op("MatMul", [x, w])
        return self.op("Add", [y, self.bias(d_out, "fc_b")]) if bias else y

    def gemm(self, x: str, d_in: int, d_out: int) -> str:
        """2-D fully connected layer as a single Gemm (x[N, d_in] -> [N, d_out])."""
        w = self.weight((d_out, d_in), fan_in=d_in, prefix="fc_w")
        return self.op("Gemm", [x, w, self.bias(d_out, "fc_b")], transB=1)

    def reshape(self, x: str, shape: list[int]) -> str:
        return self.op("Reshape", [x, self.const(np.array(shape, np.int64), "shape")])

    def transpose(self, x: str, perm: list[int]) -> str:
        return self.op("Transpose", [x], perm=perm)

    def concat(self, xs: list[str], axis: int) -> str:
        return self.op("Concat", xs, axis=axis)

    # ---- pooling, normalisation and upsampling (CNN layers) ------------------
    def maxpool(self, x: str, k, stride=None, pad=0, dims: int = 2) -> str:
        ks = [k] * dims if isinstance(k, int) else list(k)
        st = ks if stride is None else ([stride] * dims if isinstance(stride, int) else list(stride))
        pads = [pad] * dims if isinstance(pad, int) else list(pad)
        return self.op("MaxPool", [x], kernel_shape=ks, strides=st, pads=pads * 2)

    def avgpool(self, x: str, k, stride=None, pad=0, dims: int = 2) -> str:
        ks = [k] * dims if isinstance(k, int) else list(k)
        st = ks if stride is None else ([stride] * dims if isinstance(stride, int) else list(stride))
        pads = [pad] * dims if isinstance(pad, int) else list(pad)
        return self.op("AveragePool", [x], kernel_shape=ks, strides=st, pads=pads * 2,
                       count_include_pad=0)

    def global_avgpool(self, x: str) -> str:
        """[N, C, *spatial] -> [N, C, 1, ...]."""
        return self.op("GlobalAveragePool", [x])

    def flatten(self, x: str, axis: int = 1) -> str:
        return self.op("Flatten", [x], axis=axis)

    def sigmoid(self, x: str) -> str:
        return self.op("Sigmoid", [x])

    def instance_norm(self, x: str, c: int, epsilon: float = 1e-5) -> str:
        """InstanceNormalization with an affine scale and bias (both trainable)."""
        scale = self.const((1.0 + 0.05 * self.rng.standard_normal(c)).astype(np.float32), "in_scale")
        b = self.const((0.01 * self.rng.standard_normal(c)).astype(np.float32), "in_b")
        return self.op("InstanceNormalization", [x, scale, b], epsilon=epsilon)

    def conv_transpose(self, x: str, c_in: int, c_out: int, k, stride=1, pad=0, group: int = 1,
                       bias: bool = True, dims: int = 2, name: str | None = None) -> str:
        """ConvTranspose with ONNX weight layout [c_in, c_out / group, *k]."""
        ks = (k,) * dims if isinstance(k, int) else tuple(k)
        st = (stride,) * dims if isinstance(stride, int) else tuple(stride)
        pads = [pad] * dims if isinstance(pad, int) else list(pad)
        # fan-in of a transposed conv: each output sees c_in/group * prod(k) / prod(stride) inputs
        fan_in = max(1, (c_in // group) * int(np.prod(ks)) // int(np.prod(st)))
        w = self.weight((c_in, c_out // group) + ks, fan_in=fan_in, prefix="convt_w")
        ins = [x, w] + ([self.bias(c_out, "convt_b")] if bias else [])
        return self.op("ConvTranspose", ins, name=name, kernel_shape=list(ks), strides=list(st),
                       pads=pads * 2, group=group)

    # ---- finish ------------------------------------------------------------
    def _model(self, outputs: list, inputs: list | None = None, initializers: list | None = None) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, self.name, self.inputs + (inputs or []), outputs, initializers or [])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="mlperf-inference-sim")
        model.ir_version = 8
        return model

    def build(self, doc: str = "") -> onnx.ModelProto:
        """The model, checked by ``onnx.checker`` (its large weights as typed inputs); the weights were
        written into it by ``const`` (the builder is spent: build once). Memory: one copy of the
        weights (BERT-large's 1.3 GB: 1.5 GB resident at the end of its build), not two or four."""
        if self._built:
            raise RuntimeError(f"{self.name}: build() was already called; the weights are in that model")
        # weights above PROBE_WEIGHT_BYTES stand in as typed graph inputs (no data copied) in the
        # twin used for output shapes and for the checker: the weights themselves are numpy arrays
        # turned into tensors by onnx (``const``), and checking a 1.3 GB model would serialise it twice
        small = [t for t in self.initializers if _raw_bytes(t) <= PROBE_WEIGHT_BYTES]
        big = [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
               for t in self.initializers if _raw_bytes(t) > PROBE_WEIGHT_BYTES]
        inferred = {}
        if any(shape is None for _, shape, _ in self.outputs):
            probe = self._model([helper.make_tensor_value_info(n, d, None) for n, _, d in self.outputs], big, small)
            probe = onnx.shape_inference.infer_shapes(probe, data_prop=True)
            inferred = {v.name: v for v in probe.graph.value_info}
            inferred.update({v.name: v for v in probe.graph.output if v.type.tensor_type.HasField("shape")})
            del probe
        outs = []
        for name, shape, dtype in self.outputs:
            if shape is None:
                if name not in inferred:
                    raise ValueError(f"{self.name}: cannot infer the shape of output {name!r}")
                outs.append(inferred[name])
            else:
                outs.append(helper.make_tensor_value_info(name, dtype, shape))
        twin = self._model(outs, big, small)
        for k, v in sorted(self.metadata.items()):
            entry = twin.metadata_props.add()
            entry.key, entry.value = k, v
        onnx.checker.check_model(twin)
        del twin
        model = self._model_proto                    # holds the weights already: the rest merged in
        model.MergeFrom(self._model(outs))
        self._model_proto, self.initializers, self._built = None, [], True
        model.doc_string = doc
        for k, v in sorted(self.metadata.items()):
            entry = model.metadata_props.add()
            entry.key, entry.value = k, v
        return model
