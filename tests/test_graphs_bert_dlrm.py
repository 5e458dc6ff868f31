"""BERT (SQuAD) and DLRM graphs: sizes against published figures, validity, runtime behaviour.

Parameter count = sum of initializer elements. Both builders keep every non-parameter
constant (shapes, scalars, index tables) in ``Constant`` nodes, so the initializers are
exactly the weights: for BERT the embeddings (word, position, token type), every
LayerNorm, every projection and the QA head, without the pooler (not part of the SQuAD
model); for DLRM the embedding rows and the MLP weights and biases.
"""

from __future__ import annotations

import hashlib

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from sim.workload import catalog as workloads
from sim.workload.graphs.bert import SIZES, bert_macs, bert_parameter_count, build_bert
from sim.workload.graphs.dlrm import (
    CRITEO_1TB_TABLE_SIZES,
    DEFAULT_TABLE_SIZES,
    MLPERF_MULTI_HOT,
    build_dlrm,
    dlrm_macs,
    dlrm_parameter_count,
)
from sim.workload.inputs import make_feeds

SMALL_BERT = dict(num_layers=2, hidden=128, heads=2, intermediate=512, seq_len=64, vocab=1000)
SMALL_TABLES = [1000] * 26


def n_params(model: onnx.ModelProto) -> int:
    return sum(int(np.prod(t.dims)) for t in model.graph.initializer)


def session(model: onnx.ModelProto) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def matmul_macs(model: onnx.ModelProto) -> int:
    """MatMul/Gemm multiply-accumulates for one sample, from inferred shapes (batch = 1)."""
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    shapes = {}
    for v in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output):
        shapes[v.name] = [d.dim_value if d.HasField("dim_value") else 1 for d in v.type.tensor_type.shape.dim]
    for t in model.graph.initializer:
        shapes[t.name] = list(t.dims)
    total = 0
    for node in inferred.graph.node:
        if node.op_type == "MatMul":
            total += int(np.prod(shapes[node.output[0]])) * shapes[node.input[0]][-1]
        elif node.op_type == "Gemm":
            a = shapes[node.input[0]]
            k = a[0] if any(at.name == "transA" and at.i for at in node.attribute) else a[1]
            total += int(np.prod(shapes[node.output[0]])) * k
    return total


# ---- BERT ------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("size, published", [("base", 110e6), ("large", 335e6)])
def test_bert_parameter_count_matches_published(size, published):
    # Published: BERT-base 110 M, BERT-large 335 M (Hugging Face count; the paper rounds to 340 M),
    # both including the pooler (0.59 M / 1.05 M) that the SQuAD model does not have.
    model = build_bert(size=size)
    layers, hidden, _, inter = SIZES[size]
    count = n_params(model)
    assert count == bert_parameter_count(layers, hidden, inter)
    assert count == {"base": 108_893_186, "large": 334_094_338}[size]
    assert abs(count - published) / published < 0.03
    qa_head = [t for t in model.graph.initializer if t.name.startswith("qa_")]
    assert sum(int(np.prod(t.dims)) for t in qa_head) == hidden * 2 + 2
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim][1] == 384
    del model


def test_bert_macs_closed_form():
    assert bert_macs(24, 1024, 4096, 384) == 123_212_660_736
    assert bert_macs(12, 768, 3072, 384) == 35_333_406_720
    model = build_bert(**SMALL_BERT)
    assert matmul_macs(model) == bert_macs(2, 128, 512, 64)


@pytest.mark.parametrize("name", ["bert_large", "bert_base"])
def test_bert_small_variant_is_valid_and_runs(name, tmp_path, monkeypatch):
    monkeypatch.setenv("SIM_CACHE_DIR", str(tmp_path))
    w = workloads.build(name, small=True)
    assert w.mlperf_model == "bert"
    onnx.checker.check_model(w.model, full_check=True)
    assert w.model.opset_import[0].version == 17
    names = [v.name for v in w.model.graph.input]
    assert names == ["input_ids", "input_mask", "segment_ids"]
    for v in w.model.graph.input:
        assert v.type.tensor_type.elem_type == onnx.TensorProto.INT64
        assert v.type.tensor_type.shape.dim[0].dim_param == "batch"
    assert all(t.data_type == onnx.TensorProto.FLOAT for t in w.model.graph.initializer)
    sess = session(w.model)
    for batch in (1, 2):
        start, end = sess.run(["start_logits", "end_logits"], make_feeds(w.model, batch, seed=batch))
        assert start.shape == end.shape == (batch, 64)
        assert np.isfinite(start).all() and np.isfinite(end).all()


@pytest.mark.parametrize("piece_bytes", [None, 4096])
def test_cached_file_is_the_models_bytes(piece_bytes, tmp_path, monkeypatch):
    # the cache file is written and read a record at a time (BERT-large's 1.3 GB never sits in
    # memory twice): its bytes and hash must be protobuf's own deterministic serialization, and
    # reading it back must give the model onnx.load gives; 4096 takes the large-tensor path
    # (raw data written and read on its own) for every weight of the small model
    monkeypatch.setenv("SIM_CACHE_DIR", str(tmp_path))
    if piece_bytes:
        monkeypatch.setattr(workloads, "_MERGE_BYTES", piece_bytes)
    cold = workloads.build("bert_base", small=True)
    whole = cold.model.SerializeToString(deterministic=True)
    assert cold.path.read_bytes() == whole
    assert cold.sha256 == hashlib.sha256(whole).hexdigest() == workloads.model_sha256(cold.model)
    warm = workloads.build("bert_base", small=True)
    assert warm.sha256 == cold.sha256 and warm.model == cold.model == onnx.load(str(cold.path))


def test_bert_op_pattern_is_exporter_style():
    ops = {n.op_type for n in build_bert(**SMALL_BERT).graph.node}
    assert {"Gather", "LayerNormalization", "MatMul", "Softmax", "Erf", "Split", "Squeeze"} <= ops
    assert not ops & {"Gemm", "Attention"}


def test_bert_onnxruntime_fuses_layernorm_and_gelu(tmp_path):
    # The exporter-style graph lets onnxruntime's own (C++) fusions apply: residual Add +
    # LayerNormalization -> SkipLayerNormalization, bias Add + Erf-GELU -> BiasGelu.
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    ort.InferenceSession(build_bert(**SMALL_BERT).SerializeToString(), so, providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node]
    assert ops.count("SkipLayerNormalization") == 4 and ops.count("BiasGelu") == 2
    assert "Erf" not in ops


@pytest.mark.parametrize("seq_len", [16, 48])
def test_bert_seq_len_is_honoured(seq_len):
    model = build_bert(**{**SMALL_BERT, "seq_len": seq_len})
    for v in list(model.graph.input) + list(model.graph.output):
        assert [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] == ["batch", seq_len]
    start, end = session(model).run(None, make_feeds(model, 2))
    assert start.shape == end.shape == (2, seq_len)


def test_bert_mask_hides_padded_tokens():
    model = build_bert(**{**SMALL_BERT, "seq_len": 32})
    sess = session(model)
    feeds = make_feeds(model, 1)
    feeds["input_mask"][:] = 1
    feeds["input_mask"][:, 20:] = 0
    a = sess.run(None, feeds)[0]
    feeds["input_ids"][:, 20:] = (feeds["input_ids"][:, 20:] + 7) % 1000
    b = sess.run(None, feeds)[0]
    np.testing.assert_allclose(a[:, :20], b[:, :20], rtol=1e-5, atol=1e-5)
    assert not np.allclose(a[:, 20:], b[:, 20:])


def test_bert_same_seed_same_bytes():
    a = build_bert(seed=3, **SMALL_BERT).SerializeToString(deterministic=True)
    b = build_bert(seed=3, **SMALL_BERT).SerializeToString(deterministic=True)
    c = build_bert(seed=4, **SMALL_BERT).SerializeToString(deterministic=True)
    assert a == b and a != c


def test_bert_input_highs_in_metadata():
    model = build_bert(**{**SMALL_BERT, "vocab": 777})
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["sim.input_high.input_ids"] == "777"
    assert meta["sim.input_high.input_mask"] == "2"
    assert meta["sim.input_high.segment_ids"] == "2"


# ---- DLRM ------------------------------------------------------------------------

def test_dlrm_default_sizes_closed_form():
    # Criteo 1TB tables capped at 100,000 rows: 921,198 rows x 128.
    assert sum(DEFAULT_TABLE_SIZES) == 921_198 and len(DEFAULT_TABLE_SIZES) == 26
    bottom = (13 * 512 + 512) + (512 * 256 + 256) + (256 * 128 + 128)
    top = (479 * 1024 + 1024) + (1024 * 1024 + 1024) + (1024 * 512 + 512) + (512 * 256 + 256) + (256 + 1)
    assert dlrm_parameter_count() == 921_198 * 128 + bottom + top == 120_282_241
    assert dlrm_macs() == (13 * 512 + 512 * 256 + 256 * 128) + 27 * 27 * 128 + (
        479 * 1024 + 1024 * 1024 + 1024 * 512 + 512 * 256 + 256) == 2_458_496
    assert sum(CRITEO_1TB_TABLE_SIZES) == 204_184_588


@pytest.mark.parametrize("kwargs", [{}, {"multi_hot": 3}, {"multi_hot": list(MLPERF_MULTI_HOT)},
                                    {"interaction": "dcn", "dcn_rank": 64}])
def test_dlrm_parameter_count_equals_closed_form(kwargs):
    # Full MLPerf MLP sizes and embedding dim, small tables of varied sizes.
    tables = [500 + 37 * i for i in range(26)]
    model = build_dlrm(table_sizes=tables, **kwargs)
    expected = sum(tables) * 128 + (13 * 512 + 512) + (512 * 256 + 256) + (256 * 128 + 128)
    width = 479 if kwargs.get("interaction", "dot") == "dot" else 27 * 128
    expected += (width * 1024 + 1024) + (1024 * 1024 + 1024) + (1024 * 512 + 512) + (512 * 256 + 256) + 257
    if kwargs.get("interaction") == "dcn":
        expected += 3 * (2 * width * 64 + width)
    assert n_params(model) == expected == dlrm_parameter_count(
        tables, interaction=kwargs.get("interaction", "dot"), dcn_rank=kwargs.get("dcn_rank", 512))
    top_w = [t for t in model.graph.initializer if list(t.dims) == [1024, width]]
    assert len(top_w) == 1
    assert matmul_macs(model) == dlrm_macs(interaction=kwargs.get("interaction", "dot"),
                                           dcn_rank=kwargs.get("dcn_rank", 512))


def test_dlrm_small_variant_is_valid_and_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("SIM_CACHE_DIR", str(tmp_path))
    w = workloads.build("dlrm", small=True)
    assert w.mlperf_model == "dlrm-v2"
    onnx.checker.check_model(w.model, full_check=True)
    assert w.model.opset_import[0].version == 17
    assert all(t.data_type == onnx.TensorProto.FLOAT for t in w.model.graph.initializer)
    meta = {p.key: p.value for p in w.model.metadata_props}
    assert meta["sim.input_high.sparse"] == "1000"
    sess = session(w.model)
    for batch in (1, 2):
        feeds = make_feeds(w.model, batch, seed=batch)
        assert feeds["dense"].shape == (batch, 13) and feeds["sparse"].shape == (batch, 26)
        (pred,) = sess.run(None, feeds)
        assert pred.shape == (batch, 1)
        assert np.isfinite(pred).all() and ((pred >= 0) & (pred <= 1)).all()


@pytest.mark.parametrize("multi_hot, shape", [(4, (2, 26, 4)), (list(MLPERF_MULTI_HOT), (2, 214))])
def test_dlrm_multi_hot_runs(multi_hot, shape):
    model = build_dlrm(table_sizes=SMALL_TABLES, embedding_dim=16, bottom_mlp=(32, 16), top_mlp=(32, 1),
                       multi_hot=multi_hot)
    onnx.checker.check_model(model, full_check=True)
    feeds = make_feeds(model, 2)
    assert feeds["sparse"].shape == shape
    (pred,) = session(model).run(None, feeds)
    assert pred.shape == (2, 1) and np.isfinite(pred).all()


@pytest.mark.parametrize("multi_hot", [None, 3])
def test_dlrm_pairs_per_sample_is_the_same_model_over_more_rows(multi_hot):
    # an MLPerf DLRM sample is one user's candidate items: P pairs per sample must give, per
    # pair, exactly what the one-pair model gives, with the same weights and P times the MACs
    kw = dict(table_sizes=SMALL_TABLES, embedding_dim=16, bottom_mlp=(32, 16), top_mlp=(32, 1), multi_hot=multi_hot)
    one, five = build_dlrm(seed=3, **kw), build_dlrm(seed=3, pairs_per_sample=5, **kw)
    onnx.checker.check_model(five, full_check=True)
    assert n_params(five) == n_params(one)
    from sim.workload.layers import layer_table
    assert layer_table(five, batch=2).total_macs == 5 * layer_table(one, batch=2).total_macs > 0
    feeds = make_feeds(five, 2, seed=4)
    assert feeds["dense"].shape == (2, 5, 13)
    assert feeds["sparse"].shape == ((2, 5, 26) if multi_hot is None else (2, 5, 26, 3))
    (got,) = session(five).run(None, feeds)
    assert got.shape == (2, 5)
    flat = {k: v.reshape((10,) + v.shape[2:]) for k, v in feeds.items()}
    (want,) = session(one).run(None, flat)
    np.testing.assert_allclose(got.reshape(10, 1), want, rtol=1e-5, atol=1e-6)


def test_dlrm_indices_wrap_per_table():
    tables = [10 + i for i in range(26)]
    model = build_dlrm(table_sizes=tables, embedding_dim=8, bottom_mlp=(16, 8), top_mlp=(16, 1))
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["sim.input_high.sparse"] == str(max(tables))
    sess = session(model)
    feeds = make_feeds(model, 2)
    a = sess.run(None, feeds)[0]
    feeds["sparse"] = feeds["sparse"] + np.array(tables, np.int64)     # one full turn of every table
    np.testing.assert_allclose(sess.run(None, feeds)[0], a, rtol=1e-6)
    feeds["sparse"][:, 5] += 1
    assert not np.allclose(sess.run(None, feeds)[0], a)


def test_dlrm_same_seed_same_bytes():
    kw = dict(table_sizes=SMALL_TABLES, embedding_dim=16, bottom_mlp=(32, 16), top_mlp=(32, 1))
    a = build_dlrm(seed=1, **kw).SerializeToString(deterministic=True)
    assert a == build_dlrm(seed=1, **kw).SerializeToString(deterministic=True)
    assert a != build_dlrm(seed=2, **kw).SerializeToString(deterministic=True)


def test_dlrm_rejects_bad_configs():
    from sim.errors import InputError
    with pytest.raises(InputError, match="2 GB"):
        build_dlrm(table_sizes=CRITEO_1TB_TABLE_SIZES)
    with pytest.raises(InputError, match="embedding_dim"):
        build_dlrm(table_sizes=SMALL_TABLES, bottom_mlp=(64, 32))
    with pytest.raises(InputError, match="one per table"):
        build_dlrm(table_sizes=SMALL_TABLES, multi_hot=[1, 2])
    for bad in (0, 2.5, "100"):
        with pytest.raises(InputError, match=r"pairs_per_sample=.*expected an integer >= 1"):
            build_dlrm(table_sizes=SMALL_TABLES, pairs_per_sample=bad)
