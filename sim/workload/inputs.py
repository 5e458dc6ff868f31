"""Input feeds for any ONNX model at a given batch size.

Float inputs get seeded standard-normal values. Integer inputs get seeded values in
[0, high), where ``high`` comes from the model's metadata ``sim.input_high.<name>``
(written by the built-in workloads) and is 1 otherwise, which is valid for any index
input. Symbolic dimensions other than the first take the value 1 unless ``dims`` names
them; a fixed first dimension is kept as it is.
"""

from __future__ import annotations

import numpy as np
import onnx

from sim.errors import InputError

_NP_DTYPES = {
    onnx.TensorProto.FLOAT: np.float32,
    onnx.TensorProto.FLOAT16: np.float16,
    onnx.TensorProto.DOUBLE: np.float64,
    onnx.TensorProto.INT64: np.int64,
    onnx.TensorProto.INT32: np.int32,
    onnx.TensorProto.INT8: np.int8,
    onnx.TensorProto.UINT8: np.uint8,
    onnx.TensorProto.BOOL: np.bool_,
}


def graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """The real inputs: graph inputs that are not initializers."""
    inits = {t.name for t in model.graph.initializer}
    return [v for v in model.graph.input if v.name not in inits]


def input_highs(model: onnx.ModelProto) -> dict[str, int]:
    prefix = "sim.input_high."
    return {p.key[len(prefix):]: int(p.value) for p in model.metadata_props if p.key.startswith(prefix)}


def input_shape(value: onnx.ValueInfoProto, batch: int, dims: dict[str, int] | None = None,
                source: str = "model") -> list[int]:
    dims = dims or {}
    shape = []
    t = value.type.tensor_type
    if not t.HasField("shape"):
        raise InputError(f"{source}: input '{value.name}' has no shape; expected a tensor input with a known rank")
    for i, d in enumerate(t.shape.dim):
        if d.HasField("dim_value") and d.dim_value > 0:
            shape.append(int(d.dim_value))
        elif d.dim_param in dims:
            shape.append(int(dims[d.dim_param]))
        elif i == 0:
            shape.append(int(batch))
        else:
            shape.append(1)
    return shape


def make_feeds(model: onnx.ModelProto, batch: int, seed: int = 0, dims: dict[str, int] | None = None,
               source: str = "model") -> dict[str, np.ndarray]:
    if batch <= 0:
        raise InputError(f"{source}: batch size {batch}: expected an integer >= 1")
    rng = np.random.default_rng(seed)
    highs = input_highs(model)
    feeds = {}
    for v in graph_inputs(model):
        elem = v.type.tensor_type.elem_type
        if elem not in _NP_DTYPES:
            raise InputError(f"{source}: input '{v.name}' has element type "
                             f"{onnx.TensorProto.DataType.Name(elem)}; expected one of "
                             f"{sorted(onnx.TensorProto.DataType.Name(k) for k in _NP_DTYPES)}")
        shape = input_shape(v, batch, dims, source)
        dtype = _NP_DTYPES[elem]
        if np.issubdtype(dtype, np.floating):
            feeds[v.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype is np.bool_:
            feeds[v.name] = np.ones(shape, dtype=np.bool_)
        else:
            feeds[v.name] = rng.integers(0, max(1, highs.get(v.name, 1)), size=shape).astype(dtype)
    return feeds
