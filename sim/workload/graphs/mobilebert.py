"""MobileBERT for SQuAD, the language benchmark of MLPerf Mobile (``mobilebert``, 384 tokens).

Sun et al. 2020 (arXiv:2004.02984), the configuration of ``google/mobilebert-uncased``:
24 layers, hidden size 512, intra-block (bottleneck) size 128, 4 attention heads, 4
stacked feed-forward networks of width 512 per layer, embedding size 128 with the
trigram input (the embeddings of tokens i-1, i, i+1 concatenated, 384 wide, projected to
512), ``NoNorm`` (an elementwise ``x * gamma + beta``) in place of LayerNorm, ReLU in
place of GELU. Per layer: a 1x1 "input bottleneck" 512 -> 128 and a shared "attention
bottleneck" 512 -> 128 (queries and keys read it; values read the 512-wide layer
input), 4-head attention over 128 features, an output projection 128 -> 128 with a
residual to the input bottleneck, four FFNs (128 -> 512 -> 128, each with a residual and
NoNorm), and the output projection 128 -> 512 with a residual to the layer input. The
SQuAD head maps 512 to start/end logits. MLPerf Mobile feeds 384 tokens
(``mobilebert_int8_384_nnapi.tflite`` / ``mobilebert_float_384_gpu.tflite``, mlcommons/
mobile_app_open ``tflite_settings_android.pbtxt``) and runs int8 on NPUs and DSPs.

Published: 25.3 M parameters and 5.7 G FLOPs at 128 tokens (the MobileBERT paper,
Table 3; FLOPs there are 2 x multiply-accumulates, as BERT-base's 22.5 G at 128 tokens
shows). This graph: 24,582,914 parameters (the released uncased checkpoint's count; the
QA head included, -2.8%) and 2.69 G MACs at 128 tokens (5.43 G FLOPs with the elementwise
ops, -4.8%); at 384 tokens 8.68 G MACs.

Inputs ``input_ids``, ``input_mask``, ``segment_ids`` int64 [batch, seq_len] as the BERT
graph here; outputs ``start_logits`` and ``end_logits``.
"""

from __future__ import annotations

import math

import numpy as np
from onnx import TensorProto, helper

from sim.errors import InputError
from sim.workload.graphs.bert import MASK_VALUE, _axes, _constant, _param, _reshape
from sim.workload.graphs.builder import BATCH, GraphBuilder

CONFIG = {"num_layers": 24, "hidden": 512, "bottleneck": 128, "heads": 4, "intermediate": 512,
          "num_ffn": 4, "embedding": 128, "vocab": 30522, "max_positions": 512, "type_vocab": 2}


# Weight scale of the projections that end a residual branch. NoNorm does not renormalise, so
# with undamped random weights the residual stream grows at every add (start/end logits reach
# ~1e11 after 24 layers); damping those projections keeps outputs O(1) and changes no shape or cost.
RESIDUAL_GAIN = 0.1


def _linear(b: GraphBuilder, x: str, d_in: int, d_out: int, prefix: str, gain: float = 1.0) -> str:
    w = _param(b, (d_in, d_out), f"{prefix}_w", std=gain / math.sqrt(d_in))
    return b.op("Add", [b.op("MatMul", [x, w]), _param(b, (d_out,), f"{prefix}_b", std=0.01)])


def _no_norm(b: GraphBuilder, x: str, d: int, prefix: str) -> str:
    """MobileBERT's NoNorm: x * gamma + beta, elementwise."""
    gamma = b.const(np.ones(d, np.float32), f"{prefix}_gamma")
    beta = b.const(np.zeros(d, np.float32), f"{prefix}_beta")
    return b.op("Add", [b.op("Mul", [x, gamma]), beta])


def mobilebert_parameter_count(num_layers=24, hidden=512, bottleneck=128, intermediate=512, num_ffn=4,
                               embedding=128, vocab=30522, max_positions=512, type_vocab=2) -> int:
    """Closed-form parameter count of the graph this module builds."""
    h, r, f = hidden, bottleneck, intermediate
    emb = vocab * embedding + (3 * embedding) * h + h + (max_positions + type_vocab) * h + 2 * h
    layer = (2 * (h * r + r + 2 * r)          # input and attention bottlenecks with NoNorm
             + 2 * (r * r + r) + (h * r + r)  # query, key (from the 128-wide bottleneck), value (from 512)
             + (r * r + r) + 2 * r            # attention output + NoNorm
             + num_ffn * ((r * f + f) + (f * r + r) + 2 * r)
             + (r * h + h) + 2 * h)           # output bottleneck + NoNorm
    return emb + num_layers * layer + (h * 2 + 2)


def build_mobilebert(seed: int = 0, seq_len: int = 384, num_layers: int = 24, vocab: int = 30522):
    """MobileBERT for SQuAD: int64 ``input_ids``/``input_mask``/``segment_ids`` -> start/end logits."""
    seq_len, num_layers, vocab = int(seq_len), int(num_layers), int(vocab)
    c = dict(CONFIG, num_layers=num_layers, vocab=vocab)
    if not 2 <= seq_len <= c["max_positions"] or num_layers < 1 or vocab < 2:
        raise InputError(f"MobileBERT seq_len={seq_len} num_layers={num_layers} vocab={vocab}: expected "
                         f"2 <= seq_len <= {c['max_positions']}, num_layers >= 1, vocab >= 2")
    h, r, f, e, heads = c["hidden"], c["bottleneck"], c["intermediate"], c["embedding"], c["heads"]
    hd = r // heads
    b = GraphBuilder("mobilebert", seed)
    ids = b.input("input_ids", [BATCH, seq_len], TensorProto.INT64, high=vocab)
    mask = b.input("input_mask", [BATCH, seq_len], TensorProto.INT64, high=2)
    seg = b.input("segment_ids", [BATCH, seq_len], TensorProto.INT64, high=c["type_vocab"])

    word = _param(b, (vocab, e), "word_embeddings")
    x = b.op("Gather", [word, ids], axis=0)                                  # [B, S, 128]
    # trigram input: tokens shifted left and right by one (zero padded), concatenated
    zeros = b.op("Mul", [b.op("Slice", [x, _constant(b, np.array([0], np.int64), "s"),
                                         _constant(b, np.array([1], np.int64), "e"), _axes(b, [1])]),
                         _constant(b, np.array(0.0, np.float32), "zero")])
    nxt = b.op("Concat", [b.op("Slice", [x, _constant(b, np.array([1], np.int64), "s"),
                                          _constant(b, np.array([seq_len], np.int64), "e"), _axes(b, [1])]),
                          zeros], axis=1)
    prv = b.op("Concat", [zeros, b.op("Slice", [x, _constant(b, np.array([0], np.int64), "s"),
                                                 _constant(b, np.array([seq_len - 1], np.int64), "e"),
                                                 _axes(b, [1])])], axis=1)
    x = _linear(b, b.op("Concat", [nxt, x, prv], axis=2), 3 * e, h, "emb_transform")
    pos = _param(b, (c["max_positions"], h), "position_embeddings")
    pos_ids = _constant(b, np.arange(seq_len, dtype=np.int64)[None, :], "position_ids")
    x = b.op("Add", [x, b.op("Gather", [pos, pos_ids], axis=0)])
    x = b.op("Add", [x, b.op("Gather", [_param(b, (c["type_vocab"], h), "token_type_embeddings"), seg], axis=0)])
    x = _no_norm(b, x, h, "emb_norm")

    m = b.op("Unsqueeze", [b.op("Unsqueeze", [mask, _axes(b, [1])]), _axes(b, [2])])
    m = b.op("Sub", [_constant(b, np.array(1.0, np.float32), "one"), b.op("Cast", [m], to=TensorProto.FLOAT)])
    ext_mask = b.op("Mul", [m, _constant(b, np.array(MASK_VALUE, np.float32), "mask_value")])
    scale = _constant(b, np.array(math.sqrt(hd), np.float32), "sqrt_head")

    for i in range(num_layers):
        p = f"l{i}"
        layer_in = _no_norm(b, _linear(b, x, h, r, f"{p}_bn_in"), r, f"{p}_bn_in_norm")
        shared = _no_norm(b, _linear(b, x, h, r, f"{p}_bn_att"), r, f"{p}_bn_att_norm")
        q = b.op("Transpose", [_reshape(b, _linear(b, shared, r, r, f"{p}_q"), [0, 0, heads, hd])], perm=[0, 2, 1, 3])
        k = b.op("Transpose", [_reshape(b, _linear(b, shared, r, r, f"{p}_k"), [0, 0, heads, hd])], perm=[0, 2, 3, 1])
        v = b.op("Transpose", [_reshape(b, _linear(b, x, h, r, f"{p}_v"), [0, 0, heads, hd])], perm=[0, 2, 1, 3])
        scores = b.op("Add", [b.op("Div", [b.op("MatMul", [q, k]), scale]), ext_mask])
        ctx = b.op("MatMul", [b.op("Softmax", [scores], axis=-1), v])
        ctx = _reshape(b, b.op("Transpose", [ctx], perm=[0, 2, 1, 3]), [0, 0, r])
        att = _linear(b, ctx, r, r, f"{p}_att_out", RESIDUAL_GAIN)
        y = _no_norm(b, b.op("Add", [att, layer_in]), r, f"{p}_att_norm")
        for j in range(c["num_ffn"]):
            t = b.op("Relu", [_linear(b, y, r, f, f"{p}_ffn{j}_in")])
            t = _linear(b, t, f, r, f"{p}_ffn{j}_out", RESIDUAL_GAIN)
            y = _no_norm(b, b.op("Add", [t, y]), r, f"{p}_ffn{j}_norm")
        x = _no_norm(b, b.op("Add", [_linear(b, y, r, h, f"{p}_bn_out", RESIDUAL_GAIN), x]), h, f"{p}_out_norm")

    logits = _linear(b, x, h, 2, "qa")
    start, end = b.op("Split", [logits, _constant(b, np.array([1, 1], np.int64), "split")], n_out=2, axis=-1)
    b.nodes.append(helper.make_node("Squeeze", [start, _axes(b, [-1])], ["start_logits"], name="squeeze_start"))
    b.nodes.append(helper.make_node("Squeeze", [end, _axes(b, [-1])], ["end_logits"], name="squeeze_end"))
    b.output("start_logits", [BATCH, seq_len])
    b.output("end_logits", [BATCH, seq_len])
    return b.build(doc=f"MobileBERT for SQuAD: layers={num_layers} seq_len={seq_len} vocab={vocab}; "
                       "seeded random weights")
