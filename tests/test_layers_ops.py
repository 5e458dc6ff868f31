"""The layer table's formulas for recurrent layers, Einsum, attention ops, embeddings, Resize
and 3-D convolutions, each against a hand computation on a tiny model built here; the listing
of ops without a formula; input shape overrides and their errors.

Where an op's output shapes are worked out by the table (onnxruntime's com.microsoft ops,
which ONNX shape inference does not know), they are checked against onnxruntime running
the same model.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from sim.errors import InputError
from sim.workload import catalog as workloads
from sim.workload import inputs, layers

F = TensorProto.FLOAT


def model(nodes, ins, outs, inits=(), opset=17, ms=False, value_info=()):
    """A model of ``nodes``; ``ins``/``outs``: (name, shape[, type]); ``inits``: (name, array)."""
    def vi(spec):
        return helper.make_tensor_value_info(spec[0], spec[2] if len(spec) > 2 else F, spec[1])
    graph = helper.make_graph(nodes, "g", [vi(s) for s in ins], [vi(s) for s in outs],
                              [numpy_helper.from_array(np.asarray(a), n) for n, a in inits],
                              value_info=[vi(s) for s in value_info])
    ops = [helper.make_opsetid("", opset)] + ([helper.make_opsetid("com.microsoft", 1)] if ms else [])
    m = helper.make_model(graph, opset_imports=ops)
    m.ir_version = 8 if opset <= 17 else 10
    return m


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def row(m, op, batch=1):
    t = layers.layer_table(m, batch=batch, source="test.onnx")
    return next(r for r in t.rows if r.op_type == op), t


def ort_shapes(m, feeds):
    import onnxruntime as ort
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return [list(o.shape) for o in s.run(None, feeds)]


# ---- recurrent layers ---------------------------------------------------------------------------

def _rnn(op, gates, seq, batch, feat, hidden, direction="forward", bias=True, peep=False, layout=0, lens=False):
    dirs = 2 if direction == "bidirectional" else 1
    inits = [("W", rand(dirs, gates * hidden, feat)), ("R", rand(dirs, gates * hidden, hidden))]
    names = ["x", "W", "R", "", "", "", "", ""]        # X, W, R, B, sequence_lens, initial_h, initial_c, P
    extra_ins = []
    if bias:
        names[3] = "B"
        inits.append(("B", rand(dirs, 2 * gates * hidden)))
    if lens:
        names[4] = "lens"
        extra_ins.append(("lens", [batch], TensorProto.INT32))
    if peep:
        names[7] = "P"
        inits.append(("P", rand(dirs, 3 * hidden)))
    while names[-1] == "":
        names.pop()
    node = helper.make_node(op, names, ["y"], hidden_size=hidden, direction=direction, layout=layout)
    x = [batch, seq, feat] if layout else [seq, batch, feat]
    return model([node], [("x", x)] + extra_ins, [("y", None)], inits, opset=14)


@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_lstm_macs_and_flops_by_hand(direction):
    seq, batch, feat, hidden = 5, 3, 7, 4
    dirs = 2 if direction == "bidirectional" else 1
    r, t = row(_rnn("LSTM", 4, seq, batch, feat, hidden, direction), "LSTM")
    # 4 gates, each a product of [input; hidden] (7 + 4) with a 4-wide weight, per step, sample, direction
    assert r.macs == dirs * seq * batch * 4 * (feat + hidden) * hidden
    # per hidden unit and step: 4 sums + 8 bias adds + 3 sigmoids + 2 tanh + f*c, i*g, sum, o*tanh(c)
    assert r.flops == 2 * r.macs + dirs * seq * batch * hidden * (4 + 8 + 5 + 4)
    assert r.counted and r.op_class == "recurrent" and r.serial_steps == seq
    assert layers.kernel_class(r) == ("matmul", dirs * batch, 4 * hidden, feat + hidden)
    assert r.output_shapes[0] == [seq, dirs, batch, hidden]
    assert t.uncounted == {}


def test_lstm_peepholes_layout_and_sequence_lens():
    seq, batch, feat, hidden = 6, 2, 3, 5
    r, _ = row(_rnn("LSTM", 4, seq, batch, feat, hidden, bias=False, peep=True, layout=1), "LSTM")
    assert r.macs == seq * batch * 4 * (feat + hidden) * hidden                 # layout 1: x is [batch, seq, feat]
    assert r.flops == 2 * r.macs + seq * batch * hidden * (13 + 6)           # peepholes: 3 multiply-adds
    r, t = row(_rnn("LSTM", 4, seq, batch, feat, hidden, lens=True), "LSTM")
    assert "sequence_lens" in r.note and "upper bound" in r.note and t.notes == {r.note: 1}


def test_gru_and_rnn_by_hand():
    seq, batch, feat, hidden = 4, 2, 6, 3
    r, _ = row(_rnn("GRU", 3, seq, batch, feat, hidden, "bidirectional", bias=False), "GRU")
    assert r.macs == 2 * seq * batch * 3 * (feat + hidden) * hidden
    # per unit: 3 sums, r*h, 2 sigmoids + tanh, (1 - z)*h~ + z*h (4)
    assert r.flops == 2 * r.macs + 2 * seq * batch * hidden * (3 + 1 + 3 + 4)
    r, _ = row(_rnn("RNN", 1, seq, batch, feat, hidden, "reverse", bias=True), "RNN")
    assert r.macs == seq * batch * (feat + hidden) * hidden
    assert r.flops == 2 * r.macs + seq * batch * hidden * (1 + 2 + 1)        # sum, 2 bias adds, activation


# ---- Einsum ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("eq, shapes, macs, flops", [
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)], 2 * 3 * 4 * 5, 2 * 2 * 3 * 4 * 5),
    ("ij,jk", [(3, 4), (4, 5)], 3 * 4 * 5, 2 * 3 * 4 * 5),                                  # implicit output
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (1, 5, 4, 6)], 2 * 5 * 3 * 4 * 6, 2 * 2 * 5 * 3 * 4 * 6),   # broadcast
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)], 2 * 3 * 4 + 2 * 4 * 5, 2 * (2 * 3 * 4 + 2 * 4 * 5)),
    ("bi,bi->bi", [(3, 4), (3, 4)], 0, 3 * 4),                                              # products only
    ("ij->", [(3, 4)], 0, 12),                                                                # a sum
    ("ij->ji", [(3, 4)], 0, 0),                                                               # a transpose
])
def test_einsum_by_hand(eq, shapes, macs, flops):
    names = [f"x{i}" for i in range(len(shapes))]
    node = helper.make_node("Einsum", names, ["y"], equation=eq)
    r, t = row(model([node], list(zip(names, [list(s) for s in shapes])), [("y", None)]), "Einsum")
    assert (r.macs, r.flops) == (macs, flops)
    assert r.counted and t.uncounted == {}
    # the output shape ONNX infers agrees with numpy's einsum on the same operands
    want = np.einsum(eq, *[np.zeros(s) for s in shapes]).shape
    assert tuple(r.output_shapes[0]) == want


def test_einsum_gemm_view_and_weight_class():
    node = helper.make_node("Einsum", ["x", "w"], ["y"], equation="bsh,hf->bsf")
    r, _ = row(model([node], [("x", [2, 3, 8])], [("y", None)], [("w", rand(8, 6))]), "Einsum")
    assert layers.kernel_class(r) == ("matmul", 2 * 3, 6, 8) and r.macs == 2 * 3 * 6 * 8


# ---- attention ------------------------------------------------------------------------------------

def test_onnx_attention_op_matches_hand_and_matmul_pattern():
    b, hq, hkv, s, length, dk, dv = 2, 4, 2, 5, 7, 8, 6
    node = helper.make_node("Attention", ["q", "k", "v", "mask"], ["y"])
    m = model([node], [("q", [b, hq, s, dk]), ("k", [b, hkv, length, dk]), ("v", [b, hkv, length, dv]),
                       ("mask", [s, length])], [("y", None)], opset=23)
    r, _ = row(m, "Attention")
    assert r.macs == b * hq * s * length * (dk + dv)
    assert r.flops == 2 * r.macs + b * hq * s * length * (1 + 5 + 1)           # scale, Softmax, mask
    assert r.output_shapes[0] == [b, hq, s, dv] and r.op_class == "attention"
    # the same attention written as MatMul (scores), Mul (scale), Softmax, MatMul (context), one head group
    nodes = [helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
             helper.make_node("MatMul", ["q", "kt"], ["sc"]),
             helper.make_node("Mul", ["sc", "scale"], ["ss"]),
             helper.make_node("Softmax", ["ss"], ["p"], axis=-1),
             helper.make_node("MatMul", ["p", "v"], ["y"])]
    m2 = model(nodes, [("q", [b, hq, s, dk]), ("k", [b, hq, length, dk]), ("v", [b, hq, length, dv])],
               [("y", None)], [("scale", np.float32(0.3))])
    t2 = layers.layer_table(m2)
    assert t2.total_macs == r.macs
    assert t2.total_flops == r.flops - b * hq * s * length          # the same, less the mask


def test_ms_attention_by_hand_and_shapes_as_onnxruntime():
    b, s, d, heads = 2, 5, 16, 4
    node = helper.make_node("Attention", ["x", "w", "bias"], ["y"], domain="com.microsoft", num_heads=heads)
    nodes = [node, helper.make_node("Relu", ["y"], ["z"])]          # inference continues past it
    m = model(nodes, [("x", [b, s, d])], [("z", None)], [("w", rand(d, 3 * d)), ("bias", rand(3 * d))], ms=True)
    r, t = row(m, "Attention")
    proj, att = b * s * d * 3 * d, b * s * s * 2 * d
    assert r.macs == proj + att
    assert r.flops == 2 * r.macs + b * s * 3 * d + b * heads * s * s * 6
    assert layers.kernel_class(r) == ("matmul", b * s, 3 * d, d)
    assert t.rows[-1].output_shapes == ort_shapes(m, {"x": rand(b, s, d)})
    assert t.rows[-1].flops == b * s * d and t.uncounted == {}


def test_ms_multihead_and_groupquery_attention():
    b, s, length, d, heads = 2, 5, 7, 16, 4
    mha = helper.make_node("MultiHeadAttention", ["q", "k", "v"], ["y"], domain="com.microsoft", num_heads=heads)
    m = model([mha], [("q", [b, s, d]), ("k", [b, length, d]), ("v", [b, length, d])], [("y", None)], ms=True)
    r, _ = row(m, "MultiHeadAttention")
    assert r.macs == b * s * length * 2 * d
    assert r.flops == 2 * r.macs + b * heads * s * length * 6
    assert r.output_shapes == ort_shapes(m, {"q": rand(b, s, d), "k": rand(b, length, d), "v": rand(b, length, d)})

    b, s, heads, kv_heads, head = 1, 5, 4, 2, 8
    gqa = helper.make_node("GroupQueryAttention", ["q", "k", "v", "", "", "seqlens", "total"], ["y", "pk", "pv"],
                           domain="com.microsoft", num_heads=heads, kv_num_heads=kv_heads)
    m = model([gqa], [("q", [b, s, heads * head]), ("k", [b, s, kv_heads * head]), ("v", [b, s, kv_heads * head])],
              [("y", None)], [("seqlens", np.array([s - 1], np.int32)), ("total", np.array(s, np.int32))], ms=True)
    r, _ = row(m, "GroupQueryAttention")
    assert r.macs == 2 * b * heads * s * s * head and r.note == ""
    assert r.flops == 2 * r.macs + b * heads * s * s * 6
    got = ort_shapes(m, {"q": rand(b, s, heads * head), "k": rand(b, s, kv_heads * head),
                         "v": rand(b, s, kv_heads * head)})
    assert r.output_shapes[0] == got[0]


# ---- embeddings ---------------------------------------------------------------------------------

def test_embedding_bag_and_gather_rows():
    vocab, dim, bag = 1000, 8, 5
    nodes = [helper.make_node("Gather", ["table", "ids"], ["rows"], axis=0),
             helper.make_node("ReduceSum", ["rows", "axes"], ["pooled"], keepdims=0)]
    m = model(nodes, [("ids", ["batch", bag], TensorProto.INT64)], [("pooled", None)],
              [("table", rand(vocab, dim)), ("axes", np.array([1], np.int64))])
    t = layers.layer_table(m, batch=3)
    gather, reduce = t.rows
    assert gather.weight_bytes == vocab * dim * 4 and gather.weight_bytes_read == 3 * bag * dim * 4
    assert gather.flops == 0 and gather.counted
    assert reduce.flops == 3 * bag * dim and reduce.output_shapes[0] == [3, dim]


def test_embed_layer_normalization_by_hand_and_shapes_as_onnxruntime():
    b, s, vocab, hidden = 2, 6, 50, 16
    node = helper.make_node("EmbedLayerNormalization", ["ids", "seg", "word", "pos", "segemb", "gamma", "beta"],
                            ["out", "mask_index"], domain="com.microsoft", epsilon=1e-5)
    m = model([node], [("ids", [b, s], TensorProto.INT32), ("seg", [b, s], TensorProto.INT32)],
              [("out", None), ("mask_index", None, TensorProto.INT32)],
              [("word", rand(vocab, hidden)), ("pos", rand(10, hidden)), ("segemb", rand(2, hidden)),
               ("gamma", np.ones(hidden, np.float32)), ("beta", np.zeros(hidden, np.float32))], ms=True)
    r, _ = row(m, "EmbedLayerNormalization")
    assert r.flops == (2 + 8) * b * s * hidden                   # 2 sums of 3 embeddings, then normalisation
    assert r.weight_bytes_read == (3 * b * s * hidden + 2 * hidden) * 4
    ids = np.zeros((b, s), np.int32)
    assert r.output_shapes == ort_shapes(m, {"ids": ids, "seg": ids})


def test_skip_layer_normalization_by_hand():
    b, s, h = 2, 3, 8
    node = helper.make_node("SkipLayerNormalization", ["x", "skip", "g", "be", "bias"], ["y"], domain="com.microsoft")
    m = model([node], [("x", [b, s, h]), ("skip", [b, s, h])], [("y", None)],
              [("g", rand(h)), ("be", rand(h)), ("bias", rand(h))], ms=True)
    r, _ = row(m, "SkipLayerNormalization")
    assert r.flops == (8 + 1 + 1) * b * s * h
    assert r.output_shapes == ort_shapes(m, {"x": rand(b, s, h), "skip": rand(b, s, h)})


# ---- Resize, 3-D convolution and pooling, ConvTranspose -----------------------------------------

@pytest.mark.parametrize("mode, per", [("nearest", 1), ("linear", 2 ** 3 - 1), ("cubic", 2 * 4 ** 2 - 1)])
def test_resize_by_mode(mode, per):
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], mode=mode)
    m = model([node], [("x", [1, 3, 8, 8])], [("y", None)], [("scales", np.array([1, 1, 2, 2], np.float32))])
    r, _ = row(m, "Resize")
    assert r.output_shapes[0] == [1, 3, 16, 16]
    assert r.flops == per * 3 * 16 * 16          # weighted sum of 2^2 (linear) or 4^2 (cubic) neighbours


def test_conv3d_convtranspose3d_and_pool3d_by_hand():
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1] * 6, kernel_shape=[3, 3, 3]),
             helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[2, 2, 2], strides=[2, 2, 2]),
             helper.make_node("ConvTranspose", ["p", "wt"], ["u"], kernel_shape=[2, 2, 2], strides=[2, 2, 2],
                              group=2)]
    m = model(nodes, [("x", ["batch", 3, 6, 6, 6])], [("u", None)],
              [("w", rand(4, 3, 3, 3, 3)), ("b", rand(4)), ("wt", rand(4, 1, 2, 2, 2))])
    conv, pool, up = layers.layer_table(m, batch=2).rows
    assert conv.output_shapes[0] == [2, 4, 6, 6, 6]
    assert conv.macs == 2 * 4 * 6 ** 3 * 3 * 27 and conv.flops == 2 * conv.macs + 2 * 4 * 6 ** 3
    assert pool.output_shapes[0] == [2, 4, 3, 3, 3] and pool.flops == 2 * 4 * 27 * 8
    # stride = kernel, 2 groups of 2 -> 1 channel: each output element takes exactly 2 products
    assert up.output_shapes[0] == [2, 2, 6, 6, 6] and up.macs == 2 * 2 * 6 ** 3 * 2


def test_quantized_matmul_counts_operations():
    node = helper.make_node("MatMulInteger", ["a", "w"], ["y"])
    m = model([node], [("a", ["batch", 4, 8], TensorProto.UINT8)], [("y", None, TensorProto.INT32)],
              [("w", np.ones((8, 6), np.int8))])
    r, _ = row(m, "MatMulInteger", batch=3)
    assert r.macs == 3 * 4 * 6 * 8 and layers.kernel_class(r) == ("matmul", 12, 6, 8)


# ---- ops without a formula --------------------------------------------------------------------------

def test_uncounted_ops_are_listed_with_node_counts():
    nodes = [helper.make_node("TopK", ["x", "k"], ["v1", "i1"], axis=1),
             helper.make_node("TopK", ["v1", "k"], ["v2", "i2"], axis=1),
             helper.make_node("Custom", ["v2"], ["y"], domain="my.ops"),
             helper.make_node("Relu", ["y"], ["z"])]
    m = model(nodes, [("x", ["batch", 10])], [("z", None)], [("k", np.array([3], np.int64))],
              value_info=[("y", ["batch", 3])])
    m.opset_import.append(helper.make_opsetid("my.ops", 1))
    t = layers.layer_table(m, batch=2)
    assert t.uncounted == {"TopK": 2, "my.ops:Custom": 1}
    assert t.uncounted_note() == "uncounted ops: TopK (2 nodes), my.ops:Custom (1 node)"
    assert [r.counted for r in t.rows] == [False, False, False, True] and t.total_flops == 2 * 3
    assert t.to_dict()["uncounted"] == {"TopK": 2, "my.ops:Custom": 1}
    assert "uncounted ops: TopK (2 nodes)" in layers.format_table(t)
    assert layers.layer_table(model([helper.make_node("Relu", ["x"], ["y"])], [("x", ["b", 2])],
                                    [("y", None)])).uncounted_note() == ""


def test_unknown_op_without_shapes_is_one_line():
    m = model([helper.make_node("Custom", ["x"], ["y"], domain="my.ops"), helper.make_node("Relu", ["y"], ["z"])],
              [("x", ["batch", 4])], [("z", None)])
    m.opset_import.append(helper.make_opsetid("my.ops", 1))
    with pytest.raises(InputError, match=r"^m\.onnx: node '0' \(my\.ops:Custom\) output 'y' has no inferable shape.*"
                                         r"--input-shape") as e:
        layers.layer_table(m, source="m.onnx")
    assert "\n" not in str(e.value)


# ---- input shapes ---------------------------------------------------------------------------------

def _dynamic(path=None):
    node = helper.make_node("Conv", ["image", "w"], ["y"], kernel_shape=[3, 3])
    m = model([node], [("image", ["batch", 3, "height", "width"])], [("y", None)], [("w", rand(8, 3, 3, 3))])
    if path is not None:
        path.write_bytes(m.SerializeToString())
    return m


def test_parse_input_shapes():
    assert inputs.parse_input_shapes(["a=Nx3x224x224", "b=1x8,c=2x3"]) == {
        "a": (None, 3, 224, 224), "b": (1, 8), "c": (2, 3)}
    assert inputs.parse_input_shapes(None) == {}
    for bad, why in [("a", "expected NAME=DIMS"), ("a=3xx4", "expected NAME=DIMS"), ("a=0x3", "from 1 to"),
                     ("a=NxN", "N \\(the batch\\) may appear once"), ("a=1x2,a=1x3", "two different shapes")]:
        with pytest.raises(InputError, match=why):
            inputs.parse_input_shapes(bad)


def test_dynamic_dimension_without_value_names_file_input_dim_and_fix(tmp_path):
    path = tmp_path / "net.onnx"
    m = _dynamic(path)
    with pytest.raises(InputError) as e:
        workloads.load_file(path, {})            # refused on loading, naming the file
    assert str(e.value) == (f"{path}: input 'image' dimension 2 ('height') has no size; expected one: give "
                            "--input-shape image=Nx3x<height>x<width> with the sizes filled in (N marks the batch)")
    for call in (lambda: layers.layer_table(m, source=str(path)), lambda: inputs.make_feeds(m, 1, source=str(path))):
        with pytest.raises(InputError, match=f"^{path}: input 'image' dimension 2 \\('height'\\) has no size"):
            call()


def test_input_shape_override_fixes_sizes_and_keeps_the_batch(tmp_path, monkeypatch):
    path = tmp_path / "net.onnx"
    _dynamic(path)
    w = workloads.load_file(path, inputs.parse_input_shapes("image=Nx3x10x12"))
    one, four = workloads.layer_table(w, 1), workloads.layer_table(w, 4)
    assert one.rows[0].output_shapes[0] == [1, 8, 8, 10]
    assert one.total_macs == 8 * 8 * 10 * 27 and four.total_macs == 4 * one.total_macs
    assert inputs.make_feeds(w.model, 2)["image"].shape == (2, 3, 10, 12)
    assert w.sha256 != workloads.load_file(path, {"image": (None, 3, 10, 13)}).sha256
    # the process default (what --input-shape sets) reaches load_file and resolve
    monkeypatch.delenv(workloads.INPUT_SHAPES_ENV, raising=False)
    workloads.set_input_shapes(["image=1x3x10x12"])
    assert workloads.resolve(str(path)).model.SerializeToString() == w.model.SerializeToString()
    workloads.set_input_shapes(None)
    assert workloads.INPUT_SHAPES_ENV not in __import__("os").environ
    with pytest.raises(InputError, match="applies to .onnx files"):
        workloads.resolve("resnet50", input_shapes={"x": (1, 3)})


@pytest.mark.parametrize("spec, match", [
    ("img=Nx3x10x10", "the model has no input 'img'; expected one of \\['image'\\]"),
    ("image=Nx3x10", "has 4 dimensions; expected 4 sizes, e.g. image=Nx3x<height>x<width>"),
    ("image=Nx4x10x10", "fixes dimension 1 at 3; expected 3 there"),
    ("image=2x3x10x10", "dimension 0 of 'image' is the batch"),
    ("image=1xNx10x10", "fixes dimension 1 at 3; expected N only on a free dimension or one fixed at 1"),
])
def test_input_shape_override_errors(tmp_path, spec, match):
    path = tmp_path / "net.onnx"
    _dynamic(path)
    with pytest.raises(InputError, match=match) as e:
        workloads.load_file(path, inputs.parse_input_shapes(spec))
    assert str(e.value).startswith(f"{path}: --input-shape ")


def test_batch_marked_on_another_axis_for_a_sequence_first_lstm():
    m = _rnn("LSTM", 4, 5, 3, 7, 4)
    x = m.graph.input[0].type.tensor_type.shape.dim
    for d, p in zip(x, ("seq", "batch")):
        d.Clear()
        d.dim_param = p
    inputs.apply_input_shapes(m, inputs.parse_input_shapes("x=5xNx7"))
    one, three = layers.layer_table(m, 1), layers.layer_table(m, 3)
    assert one.rows[0].macs == 5 * 1 * 4 * (7 + 4) * 4 and three.rows[0].macs == 3 * one.rows[0].macs
    assert inputs.make_feeds(m, 2)["x"].shape == (5, 2, 7)
    assert inputs.elems_per_sample(m) == 5 * 7


def test_uninferable_graph_names_the_file_and_the_flag():
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"])]
    m = model(nodes, [("x", ["batch", 5])], [("y", None)], [("w", rand(4, 3))])
    with pytest.raises(InputError, match=r"^bad\.onnx: shape inference failed \(.*\); expected a graph whose "
                                         r"shapes ONNX can infer \(check the input sizes, --input-shape"):
        layers.layer_table(m, source="bad.onnx")


def test_cli_layers_with_input_shape(tmp_path):
    path = tmp_path / "net.onnx"
    _dynamic(path)
    run = [sys.executable, "-m", "sim", "layers", "--workload", str(path), "--json"]
    r = subprocess.run(run, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "input 'image' dimension 2 ('height') has no size" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = subprocess.run(run + ["--input-shape", "image=Nx3x10x12", "--batch", "2"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["total_macs"] == 2 * 8 * 8 * 10 * 27
    r = subprocess.run(run + ["--input-shape", "image=Nx3x10"], capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "--input-shape image=Nx3x10: input 'image' has 4 dimensions" in r.stderr


def test_onnx_round_trip_keeps_the_batch_axis(tmp_path):
    m = _rnn("LSTM", 4, 5, 3, 7, 4)
    for d, p in zip(m.graph.input[0].type.tensor_type.shape.dim, ("seq", "batch")):
        d.Clear()
        d.dim_param = p
    inputs.apply_input_shapes(m, inputs.parse_input_shapes("x=5xNx7"))
    path = tmp_path / "lstm.onnx"
    onnx.save(m, str(path))
    w = workloads.load_file(path, {})
    assert workloads.layer_table(w, 2).rows[0].input_shapes[0] == [5, 2, 7]


def test_batch_fixed_at_one_can_be_marked_the_batch(tmp_path):
    node = helper.make_node("MatMul", ["x", "w"], ["y"])
    path = tmp_path / "fixed.onnx"
    path.write_bytes(model([node], [("x", [1, 6])], [("y", None)], [("w", rand(6, 4))]).SerializeToString())
    plain = workloads.load_file(path, {})
    assert workloads.layer_table(plain, 3).total_macs == 6 * 4          # a fixed first dimension is kept
    marked = workloads.load_file(path, inputs.parse_input_shapes("x=Nx6"))
    assert workloads.layer_table(marked, 3).total_macs == 3 * 6 * 4


def test_groupquery_attention_with_a_past_buffer_is_an_upper_bound():
    b, s, heads, kv_heads, head, past = 1, 1, 4, 2, 8, 16
    gqa = helper.make_node("GroupQueryAttention", ["q", "k", "v", "pk", "pv", "seqlens", "total"], ["y"],
                           domain="com.microsoft", num_heads=heads, kv_num_heads=kv_heads)
    m = model([gqa], [("q", [b, s, heads * head]), ("k", [b, s, kv_heads * head]), ("v", [b, s, kv_heads * head]),
                      ("pk", [b, kv_heads, past, head]), ("pv", [b, kv_heads, past, head]),
                      ("seqlens", [b], TensorProto.INT32), ("total", [], TensorProto.INT32)], [("y", None)], ms=True)
    r, t = row(m, "GroupQueryAttention")
    assert r.macs == 2 * b * heads * s * (past + s) * head
    assert "upper bound" in r.note and t.notes == {r.note: 1}
    assert "note (1 node): GroupQueryAttention: attended length" in layers.format_table(t)
