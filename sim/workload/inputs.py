"""Model inputs: their shapes at a given batch size, shape overrides, and seeded feeds.

The batch dimension of an input is its first dimension when that dimension has no fixed
size (a symbolic ``batch`` or none at all); an override may mark another dimension with
``N`` (a sequence-first RNN's ``[seq, batch, features]`` input: ``x=50xNx64``), which is
kept in the model's metadata as ``sim.batch_axis.<name>``. A first dimension fixed in the
model is kept as it is (it is not the batch) unless an override marks it ``N``, which is
allowed where the model fixes it at 1 (a model exported at batch 1).

Every other dimension must have a size: fixed in the model, named in ``dims`` (symbolic
name -> size), or given by an override. A dimension without one is refused with the input,
the dimension and the fix, rather than guessed.

Overrides are written ``NAME=DIMS`` with the sizes joined by ``x`` (``input=1x3x224x224``),
several separated by commas or given one per ``--input-shape`` flag. The batch position
holds ``N`` or 1: the simulator sets the batch itself.

Float inputs get seeded standard-normal values. Integer inputs get seeded values in
[0, high), where ``high`` comes from the model's metadata ``sim.input_high.<name>``
(written by the built-in workloads) and is 1 otherwise, which is valid for any index
input.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from sim.errors import InputError

if TYPE_CHECKING:
    import onnx

#: How an override writes the batch dimension.
BATCH_MARK = "N"
#: The flag of the command line that sets overrides (named in messages).
FLAG = "--input-shape"
_BATCH_AXIS_KEY = "sim.batch_axis."
_NAME_DIMS = re.compile(r"^([^=\s][^=]*)=([0-9Nn]+(?:x[0-9Nn]+)*)$")
_MAX_DIM = 1 << 31

# onnx.TensorProto element types -> numpy (the numbers are ONNX's, stable across versions)
_NP_DTYPES = {1: np.float32, 10: np.float16, 11: np.float64, 7: np.int64, 6: np.int32, 3: np.int8,
              2: np.uint8, 9: np.bool_}


def graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """The real inputs: graph inputs that are not initializers."""
    inits = {t.name for t in model.graph.initializer}
    return [v for v in model.graph.input if v.name not in inits]


def input_highs(model: onnx.ModelProto) -> dict[str, int]:
    prefix = "sim.input_high."
    return {p.key[len(prefix):]: int(p.value) for p in model.metadata_props if p.key.startswith(prefix)}


def parse_input_shapes(specs: str | Iterable[str] | None, flag: str = FLAG) -> dict[str, tuple]:
    """``["x=1x3x224x224", "a=Nx8,b=Nx8"]`` -> {"x": (1, 3, 224, 224), "a": (None, 8), ...}.

    ``None`` marks the batch dimension (written ``N``). A bad item is one line naming it.
    """
    if specs is None:
        return {}
    items = [specs] if isinstance(specs, str) else list(specs)
    out: dict[str, tuple] = {}
    for text in items:
        for item in str(text).split(","):
            item = item.strip()
            if not item:
                continue
            m = _NAME_DIMS.match(item.replace(" ", ""))
            if not m:
                raise InputError(f"{flag} {item[:200]!r}: expected NAME=DIMS with the sizes joined by x, "
                                 f"N for the batch, e.g. input=Nx3x224x224")
            name, dims = m.group(1), m.group(2).split("x")
            shape = tuple(None if d.upper() == BATCH_MARK else int(d) for d in dims)
            if any(d is not None and not 1 <= d < _MAX_DIM for d in shape):
                raise InputError(f"{flag} {item[:200]!r}: sizes must be integers from 1 to {_MAX_DIM - 1}")
            if sum(d is None for d in shape) > 1:
                raise InputError(f"{flag} {item[:200]!r}: N (the batch) may appear once")
            if name in out and out[name] != shape:
                raise InputError(f"{flag} {item[:200]!r}: input {name!r} is given two different shapes")
            out[name] = shape
    return out


def format_shape(shape: Iterable) -> str:
    """(None, 3, 224) -> 'Nx3x224' (the override syntax)."""
    return "x".join(BATCH_MARK if d is None else str(d) for d in shape)


def _dims(value: onnx.ValueInfoProto):
    t = value.type.tensor_type
    return list(t.shape.dim) if t.HasField("shape") else None


def _fixed(d) -> bool:
    return d.HasField("dim_value") and d.dim_value > 0


def batch_axis(model: onnx.ModelProto, value: onnx.ValueInfoProto) -> int | None:
    """The batch dimension of input ``value`` (module docstring), or None where it has none."""
    key = _BATCH_AXIS_KEY + value.name
    for p in model.metadata_props:
        if p.key == key:
            return int(p.value)
    dims = _dims(value)
    return 0 if dims and not _fixed(dims[0]) else None


def _example(value: onnx.ValueInfoProto, axis: int | None) -> str:
    parts = []
    for i, d in enumerate(_dims(value) or []):
        if i == axis:
            parts.append(BATCH_MARK)
        elif _fixed(d):
            parts.append(str(d.dim_value))
        else:
            parts.append(f"<{d.dim_param or f'dim{i}'}>")
    return f"{value.name}={'x'.join(parts)}"


def input_shape(value: onnx.ValueInfoProto, batch: int, dims: dict[str, int] | None = None,
                source: str = "model", axis: int | None | str = "first") -> list[int]:
    """The concrete shape of ``value`` at ``batch``; ``axis`` is its batch dimension ("first": the
    first one when it has no fixed size, as ``batch_axis`` without metadata)."""
    dims = dims or {}
    shape = []
    found = _dims(value)
    if found is None:
        raise InputError(f"{source}: input '{value.name}' has no shape; expected a tensor input with a known "
                         f"rank (give it with {FLAG} NAME=DIMS)")
    if axis == "first":
        axis = 0 if found and not _fixed(found[0]) else None
    for i, d in enumerate(found):
        if i == axis:
            shape.append(int(batch))
        elif _fixed(d):
            shape.append(int(d.dim_value))
        elif d.dim_param and d.dim_param in dims:
            shape.append(int(dims[d.dim_param]))
        else:
            what = f" ({d.dim_param!r})" if d.dim_param else ""
            raise InputError(f"{source}: input '{value.name}' dimension {i}{what} has no size; expected one: "
                             f"give {FLAG} {_example(value, axis)} with the sizes filled in (N marks the batch)")
    return shape


def input_shapes(model: onnx.ModelProto, batch: int, dims: dict[str, int] | None = None,
                 source: str = "model") -> dict[str, list[int]]:
    """Every real input's concrete shape at ``batch`` (one line naming the input and dimension
    that has no size)."""
    return {v.name: input_shape(v, batch, dims, source, batch_axis(model, v)) for v in graph_inputs(model)}


def elems_per_sample(model: onnx.ModelProto) -> int:
    """Elements of all real inputs per sample: each input's shape at batch 1 (its batch dimension
    is not counted; an input without one counts whole)."""
    return int(sum(np.prod(s, dtype=np.int64) for s in input_shapes(model, 1).values()))


def apply_input_shapes(model: onnx.ModelProto, shapes: dict[str, tuple], source: str = "model") -> None:
    """Fix ``model``'s input dimensions from overrides (``parse_input_shapes``), in place.

    Each override must name an input, have its rank, and agree with the sizes the model fixes;
    the batch dimension (``N``, or the first dimension when the model leaves it free) stays free.
    """
    if not shapes:
        return
    inputs = {v.name: v for v in graph_inputs(model)}
    for name, shape in shapes.items():
        given = f"{FLAG} {name}={format_shape(shape)}"
        if name not in inputs:
            raise InputError(f"{source}: {given}: the model has no input {name!r}; expected one of "
                             f"{sorted(inputs)[:20]}")
        v = inputs[name]
        dims = _dims(v)
        if dims is None:
            t = v.type.tensor_type
            t.shape.SetInParent()
            for _ in shape:
                t.shape.dim.add()
            dims = list(t.shape.dim)
        if len(dims) != len(shape):
            raise InputError(f"{source}: {given}: input {name!r} has {len(dims)} dimensions; expected "
                             f"{len(dims)} sizes, e.g. {_example(v, batch_axis(model, v))}")
        axis = shape.index(None) if None in shape else (0 if not _fixed(dims[0]) else None)
        for i, (d, s) in enumerate(zip(dims, shape)):
            if i == axis:
                if _fixed(d) and d.dim_value != 1:
                    raise InputError(f"{source}: {given}: input {name!r} fixes dimension {i} at {d.dim_value}; "
                                     "expected N only on a free dimension or one fixed at 1")
                if s not in (None, 1):
                    raise InputError(f"{source}: {given}: dimension {i} of {name!r} is the batch (set by the "
                                     f"scenario); expected N or 1 there, or N on the batch dimension if it is "
                                     f"another one")
                if _fixed(d):
                    d.Clear()
                    d.dim_param = BATCH_MARK
                continue
            if _fixed(d):
                if d.dim_value != s:
                    raise InputError(f"{source}: {given}: input {name!r} fixes dimension {i} at {d.dim_value}; "
                                     f"expected {d.dim_value} there")
                continue
            d.Clear()
            d.dim_value = int(s)
        key = _BATCH_AXIS_KEY + name
        kept = [p for p in model.metadata_props if p.key != key]
        if len(kept) != len(model.metadata_props):
            del model.metadata_props[:]
            model.metadata_props.extend(kept)
        if axis not in (0, None):
            p = model.metadata_props.add()
            p.key, p.value = key, str(axis)


def make_feeds(model: onnx.ModelProto, batch: int, seed: int = 0, dims: dict[str, int] | None = None,
               source: str = "model") -> dict[str, np.ndarray]:
    import onnx  # noqa: PLC0415 - loaded only where a model is: the command line parses flags without it

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
        shape = input_shape(v, batch, dims, source, batch_axis(model, v))
        dtype = _NP_DTYPES[elem]
        if np.issubdtype(dtype, np.floating):
            feeds[v.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype is np.bool_:
            feeds[v.name] = np.ones(shape, dtype=np.bool_)
        else:
            feeds[v.name] = rng.integers(0, max(1, highs.get(v.name, 1)), size=shape).astype(dtype)
    return feeds
