"""BERT for SQuAD question answering, as MLPerf Inference runs it (``bert-99``).

The graph follows what ``torch.onnx.export`` writes for Hugging Face's
``BertForQuestionAnswering`` at opset 17, so onnxruntime's transformer fusions
(attention, embed-layer-norm, skip-layer-norm, GELU) see familiar patterns:

* inputs ``input_ids``, ``input_mask``, ``segment_ids``: int64 ``[batch, seq_len]``;
* embeddings: ``Gather`` of word, token-type and position tables, two ``Add`` and a
  ``LayerNormalization``; position ids are ``Slice`` of a constant ``[1, max_positions]``
  up to ``Shape(input_ids)[1]``, as torch exports BERT's ``position_ids`` buffer;
* attention mask: ``Unsqueeze`` (axis 1, then 2), ``Cast`` to float, ``1 - mask``,
  ``* -10000`` (the additive mask of the BERT reference code);
* per layer: Q/K/V ``MatMul`` + ``Add``; ``Reshape`` to ``[0, 0, heads, head_size]``;
  ``Transpose`` (``[0, 2, 1, 3]`` for Q and V, ``[0, 2, 3, 1]`` for K); ``MatMul``;
  ``Div`` by sqrt(head_size); ``Add`` mask; ``Softmax``; ``MatMul`` with V;
  ``Transpose`` back and ``Reshape`` to ``[0, 0, hidden]``; output projection; residual
  ``Add`` and ``LayerNormalization``; FFN ``MatMul`` + ``Add``, GELU written with
  ``Erf`` (``x * 0.5 * (1 + erf(x / sqrt 2))``), ``MatMul`` + ``Add``; residual and
  ``LayerNormalization``;
* QA head: ``MatMul`` + ``Add`` to 2 logits, ``Split`` and ``Squeeze`` into
  ``start_logits`` and ``end_logits``, float ``[batch, seq_len]``.

Parameters (the model's initializers) are exactly the trained model's weights: the
three embedding tables, every LayerNorm gamma/beta, every projection weight and bias,
and the QA head. BERT's pooler is not part of the SQuAD model and is not built.
Non-parameter constants (shapes, scalars, position ids) are ``Constant`` nodes, so the
sum of initializer elements is the parameter count: 334,094,338 for ``large`` and
108,893,186 for ``base`` (the published 335 M / 110 M include the 1.05 M / 0.59 M
pooler).

Weights are seeded normals with BERT's initializer range (std 0.02); LayerNorm gammas
are 1 and betas 0, so activations stay finite at any depth.
"""

from __future__ import annotations

import math

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from sim.errors import InputError
from sim.workload.graphs.builder import BATCH, GraphBuilder

SIZES = {
    # name: (num_layers, hidden, heads, intermediate)
    "base": (12, 768, 12, 3072),
    "large": (24, 1024, 16, 4096),
}

INIT_STD = 0.02
LN_EPS = 1e-12
MASK_VALUE = -10000.0


# ---- helpers (kept here rather than in builder.py) ---------------------------------

def _constant(b: GraphBuilder, array, prefix: str = "c") -> str:
    """A non-parameter constant as a ``Constant`` node (not an initializer)."""
    name = b.fresh(prefix)
    b.nodes.append(helper.make_node("Constant", [], [name], name=f"{name}_node",
                                    value=numpy_helper.from_array(np.asarray(array), name)))
    return name


def _param(b: GraphBuilder, shape, prefix: str, std: float = INIT_STD) -> str:
    """A float32 parameter drawn from N(0, std^2) (drawn directly in float32: fast)."""
    arr = b.rng.standard_normal(shape, dtype=np.float32)
    arr *= np.float32(std)
    return b.const(arr, prefix)


def _linear(b: GraphBuilder, x: str, d_in: int, d_out: int, prefix: str) -> str:
    """``x @ W + b`` as ``MatMul`` then ``Add`` (W stored [d_in, d_out], as torch exports it)."""
    w = _param(b, (d_in, d_out), f"{prefix}_w")
    bias = _param(b, (d_out,), f"{prefix}_b")
    return b.op("Add", [b.op("MatMul", [x, w]), bias])


def _layernorm(b: GraphBuilder, x: str, hidden: int, prefix: str) -> str:
    gamma = b.const(np.ones(hidden, np.float32), f"{prefix}_gamma")
    beta = b.const(np.zeros(hidden, np.float32), f"{prefix}_beta")
    return b.op("LayerNormalization", [x, gamma, beta], axis=-1, epsilon=LN_EPS)


def _gelu(b: GraphBuilder, x: str) -> str:
    """Exact GELU as exporters write it: Div, Erf, Add, Mul, Mul."""
    t = b.op("Div", [x, _constant(b, np.array(math.sqrt(2.0), np.float32), "sqrt2")])
    t = b.op("Erf", [t])
    t = b.op("Add", [t, _constant(b, np.array(1.0, np.float32), "one")])
    t = b.op("Mul", [x, t])
    return b.op("Mul", [t, _constant(b, np.array(0.5, np.float32), "half")])


def _reshape(b: GraphBuilder, x: str, shape: list[int]) -> str:
    return b.op("Reshape", [x, _constant(b, np.array(shape, np.int64), "shape")])


def _axes(b: GraphBuilder, axes: list[int]) -> str:
    return _constant(b, np.array(axes, np.int64), "axes")


def resolve_size(size: str, num_layers=None, hidden=None, heads=None, intermediate=None):
    if size not in SIZES:
        raise InputError(f"BERT size {size!r}: expected one of {sorted(SIZES)}")
    layers, h, n, f = SIZES[size]
    layers = layers if num_layers is None else int(num_layers)
    h = h if hidden is None else int(hidden)
    n = n if heads is None else int(heads)
    f = f if intermediate is None else int(intermediate)
    if layers < 1 or h < 1 or n < 1 or f < 1:
        raise InputError(f"BERT dimensions layers={layers} hidden={h} heads={n} intermediate={f}: "
                         f"expected positive integers")
    if h % n:
        raise InputError(f"BERT hidden={h} with heads={n}: expected hidden divisible by heads")
    return layers, h, n, f


def bert_parameter_count(num_layers: int, hidden: int, intermediate: int, vocab: int = 30522,
                         max_positions: int = 512, type_vocab: int = 2) -> int:
    """Closed-form parameter count of the SQuAD model this module builds (no pooler)."""
    h, f = hidden, intermediate
    embeddings = (vocab + max_positions + type_vocab) * h + 2 * h
    layer = 4 * (h * h + h) + (h * f + f) + (f * h + h) + 2 * 2 * h
    return embeddings + num_layers * layer + (h * 2 + 2)


def bert_macs(num_layers: int, hidden: int, intermediate: int, seq_len: int) -> int:
    """MatMul multiply-accumulates per sample (one sequence of ``seq_len`` tokens)."""
    s, h, f = seq_len, hidden, intermediate
    per_layer = 4 * s * h * h + 2 * s * h * f + 2 * s * s * h
    return num_layers * per_layer + s * h * 2


# ---- the model --------------------------------------------------------------------

def build_bert(seed: int = 0, size: str = "large", seq_len: int = 384, num_layers: int | None = None,
               hidden: int | None = None, heads: int | None = None, intermediate: int | None = None,
               vocab: int = 30522, max_positions: int = 512, type_vocab: int = 2):
    """BERT for SQuAD (MLPerf ``bert``): ``size`` "base" or "large"; explicit dimensions override it."""
    layers, h, n_heads, f = resolve_size(size, num_layers, hidden, heads, intermediate)
    seq_len, vocab, max_positions, type_vocab = int(seq_len), int(vocab), int(max_positions), int(type_vocab)
    if not 1 <= seq_len <= max_positions:
        raise InputError(f"BERT seq_len={seq_len}: expected 1 <= seq_len <= max_positions ({max_positions})")
    if vocab < 1 or type_vocab < 1:
        raise InputError(f"BERT vocab={vocab} type_vocab={type_vocab}: expected positive integers")
    head_size = h // n_heads

    b = GraphBuilder(f"bert_{size}" if (layers, h, n_heads, f) == SIZES.get(size) else "bert", seed=seed)
    ids = b.input("input_ids", [BATCH, seq_len], TensorProto.INT64, high=vocab)
    mask = b.input("input_mask", [BATCH, seq_len], TensorProto.INT64, high=2)
    seg = b.input("segment_ids", [BATCH, seq_len], TensorProto.INT64, high=type_vocab)

    # Embeddings.
    word_emb = _param(b, (vocab, h), "word_embeddings")
    pos_emb = _param(b, (max_positions, h), "position_embeddings")
    type_emb = _param(b, (type_vocab, h), "token_type_embeddings")
    x = b.op("Gather", [word_emb, ids], axis=0)
    x = b.op("Add", [x, b.op("Gather", [type_emb, seg], axis=0)])
    # position_ids[:, :seq] as torch exports the slice of BERT's [1, max_positions] buffer.
    seq = b.op("Gather", [b.op("Shape", [ids]), _constant(b, np.array(1, np.int64), "idx")], axis=0)
    position_ids = b.op("Slice", [_constant(b, np.arange(max_positions, dtype=np.int64)[None, :], "position_ids"),
                                  _constant(b, np.array([0], np.int64), "starts"),
                                  b.op("Unsqueeze", [seq, _axes(b, [0])]),
                                  _axes(b, [1]), _constant(b, np.array([1], np.int64), "steps")])
    x = b.op("Add", [x, b.op("Gather", [pos_emb, position_ids], axis=0)])
    x = _layernorm(b, x, h, "emb_ln")

    # Additive attention mask [batch, 1, 1, seq_len].
    m = b.op("Unsqueeze", [mask, _axes(b, [1])])
    m = b.op("Unsqueeze", [m, _axes(b, [2])])
    m = b.op("Cast", [m], to=TensorProto.FLOAT)
    m = b.op("Sub", [_constant(b, np.array(1.0, np.float32), "one"), m])
    ext_mask = b.op("Mul", [m, _constant(b, np.array(MASK_VALUE, np.float32), "mask_value")])

    scale = np.array(math.sqrt(head_size), np.float32)
    for i in range(layers):
        p = f"l{i}"
        q = _linear(b, x, h, h, f"{p}_q")
        k = _linear(b, x, h, h, f"{p}_k")
        v = _linear(b, x, h, h, f"{p}_v")
        q = b.op("Transpose", [_reshape(b, q, [0, 0, n_heads, head_size])], perm=[0, 2, 1, 3])
        k = b.op("Transpose", [_reshape(b, k, [0, 0, n_heads, head_size])], perm=[0, 2, 3, 1])
        v = b.op("Transpose", [_reshape(b, v, [0, 0, n_heads, head_size])], perm=[0, 2, 1, 3])
        scores = b.op("MatMul", [q, k])                              # [B, heads, S, S]
        scores = b.op("Div", [scores, _constant(b, scale, "sqrt_head")])
        scores = b.op("Add", [scores, ext_mask])
        probs = b.op("Softmax", [scores], axis=-1)
        ctx = b.op("MatMul", [probs, v])                             # [B, heads, S, head_size]
        ctx = _reshape(b, b.op("Transpose", [ctx], perm=[0, 2, 1, 3]), [0, 0, h])
        attn = _linear(b, ctx, h, h, f"{p}_attn_out")
        x = _layernorm(b, b.op("Add", [attn, x]), h, f"{p}_attn_ln")

        ff = _gelu(b, _linear(b, x, h, f, f"{p}_ffn_in"))
        ff = _linear(b, ff, f, h, f"{p}_ffn_out")
        x = _layernorm(b, b.op("Add", [ff, x]), h, f"{p}_ffn_ln")

    # SQuAD head.
    logits = _linear(b, x, h, 2, "qa")                               # [B, S, 2]
    start, end = b.op("Split", [logits, _constant(b, np.array([1, 1], np.int64), "split")],
                      n_out=2, axis=-1)
    b.nodes.append(helper.make_node("Squeeze", [start, _axes(b, [-1])], ["start_logits"], name="squeeze_start"))
    b.nodes.append(helper.make_node("Squeeze", [end, _axes(b, [-1])], ["end_logits"], name="squeeze_end"))
    b.output("start_logits", [BATCH, seq_len])
    b.output("end_logits", [BATCH, seq_len])
    model = b.build(doc=f"BERT {size} for SQuAD: layers={layers} hidden={h} heads={n_heads} "
                        f"intermediate={f} seq_len={seq_len} vocab={vocab}; seeded random weights")
    # Record the sliced position ids' shape, as torch does for its intermediates: without it
    # onnxruntime's own shape inference (which does not propagate Shape values) loses the
    # sequence dimension of the hidden state and skips its SkipLayerNormalization fusion.
    model.graph.value_info.append(helper.make_tensor_value_info(position_ids, TensorProto.INT64, [1, seq_len]))
    return model
