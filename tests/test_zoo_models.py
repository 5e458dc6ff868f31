"""benchmarks/zoo_models.py: foreign ONNX models, valid, runnable, counted, deterministic."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from sim.workload.inputs import input_highs, make_feeds
from sim.workload.layers import layer_table

_SPEC = importlib.util.spec_from_file_location(
    "zoo_models", Path(__file__).resolve().parent.parent / "benchmarks" / "zoo_models.py")
zoo_models = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(zoo_models)

NAMES = list(zoo_models.ZOO)
#: The kinds of model the zoo must hold (the validation plan's list).
REQUIRED = {"mlp", "dw_cnn160", "wide_cnn_hr", "transformer_enc", "lstm", "gru", "einsum_attn",
            "embedding_bag", "multi_input"}


@pytest.fixture(scope="module")
def zoo() -> dict[str, onnx.ModelProto]:
    """Every zoo model built once (seed 0) for the whole module: the embedding table is ~100 MB."""
    return {name: zoo_models.build(name, seed=0) for name in NAMES}


def test_zoo_holds_the_required_models():
    assert REQUIRED <= set(NAMES)
    assert len(NAMES) >= 9


def test_builder_module_does_not_import_sim():
    text = (Path(__file__).resolve().parent.parent / "benchmarks" / "zoo_models.py").read_text()
    lines = [ln.strip() for ln in text.splitlines()]
    assert not [ln for ln in lines if ln.startswith(("import sim", "from sim"))]


@pytest.mark.parametrize("name", NAMES)
def test_model_is_valid_and_runs_at_batch_1_and_3(zoo, name):
    model = zoo[name]
    onnx.checker.check_model(model, full_check=True)
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 17)]
    real = [v for v in model.graph.input if v.name not in {t.name for t in model.graph.initializer}]
    for v in real:
        assert v.type.tensor_type.shape.dim[0].dim_param == "N"
    highs = input_highs(model)
    for v in real:
        if v.type.tensor_type.elem_type == onnx.TensorProto.INT64:
            assert highs.get(v.name, 0) > 1, f"{name}: index input {v.name} without sim.input_high"
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for batch in (1, 3):
        feeds = make_feeds(model, batch, seed=batch)
        outs = sess.run(None, feeds)
        assert outs[0].shape[0] == batch
        assert np.isfinite(outs[0]).all()
        for v in real:
            if v.name in highs:
                assert feeds[v.name].max() < highs[v.name]


def test_index_inputs_cover_their_vocabulary(zoo):
    assert input_highs(zoo["embedding_bag"]) == {"indices": 400_000}
    assert input_highs(zoo["multi_input"]) == {"tokens": 1000}
    table = next(t for t in zoo["embedding_bag"].graph.initializer if t.name.startswith("table"))
    assert list(table.dims) == [400_000, 64]


def _mlp_layers(model):
    """(W, b) per Gemm of the mlp, from its initializers."""
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    return [(inits[n.input[1]], inits[n.input[2]]) for n in model.graph.node if n.op_type == "Gemm"]


def test_mlp_parameters_flops_and_output_match_closed_forms(zoo):
    model = zoo["mlp"]
    sizes = zoo_models.MLP_SIZES
    pairs = list(zip(sizes[:-1], sizes[1:]))
    assert zoo_models.param_count(model) == sum(i * o + o for i, o in pairs) == 399_370
    table = layer_table(model, batch=1, name="mlp")
    assert table.total_params == 399_370
    assert table.total_macs == sum(i * o for i, o in pairs)
    assert table.total_flops == pytest.approx(2 * sum(i * o for i, o in pairs), rel=0.01)
    # the graph computes relu(x W1 + b1) ... x W3 + b3, checked with numpy
    x = make_feeds(model, 2, seed=5)["x"]
    h = x.astype(np.float64)
    layers = _mlp_layers(model)
    assert [w.shape for w, _ in layers] == pairs
    for k, (w, b) in enumerate(layers):
        h = h @ w + b
        if k < len(layers) - 1:
            h = np.maximum(h, 0.0)
    got = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, h, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_layer_table_counts_every_node(zoo, name):
    table = layer_table(zoo[name], batch=2, name=name)
    assert table.uncounted == {}, table.uncounted_note()
    assert table.total_params == zoo_models.param_count(zoo[name])
    assert table.total_flops > 0


def test_span_of_work_per_sample(zoo):
    """From about a million FLOPs (the mlp) to about ten billion (the wide CNN at 512x512)."""
    flops = {n: layer_table(zoo[n], batch=1, name=n).total_flops for n in ("mlp", "wide_cnn_hr")}
    assert flops["mlp"] < 1e6 < 5e9 < flops["wide_cnn_hr"]


@pytest.mark.parametrize("name", [n for n in NAMES if n != "embedding_bag"])
def test_same_seed_same_bytes(zoo, name):
    assert zoo_models.build(name, seed=0).SerializeToString() == zoo[name].SerializeToString()


def test_other_seed_other_weights_same_graph(zoo):
    a, b = zoo["transformer_enc"], zoo_models.build("transformer_enc", seed=1)
    assert [n.op_type for n in a.graph.node] == [n.op_type for n in b.graph.node]
    wa = {t.name: numpy_helper.to_array(t) for t in a.graph.initializer}
    wb = {t.name: numpy_helper.to_array(t) for t in b.graph.initializer}
    assert wa.keys() == wb.keys()
    big = [k for k, v in wa.items() if v.ndim == 2]
    assert big and all(not np.array_equal(wa[k], wb[k]) for k in big)
    assert all(wa[k].dtype == np.float32 for k in big)


def test_unknown_name_is_refused():
    with pytest.raises(ValueError, match="unknown"):
        zoo_models.build("resnet9000")


def test_write_zoo_is_atomic_and_idempotent(zoo, tmp_path):
    names = ["mlp", "gru", "multi_input"]
    paths = zoo_models.write_zoo(tmp_path, names)
    assert list(paths) == names
    for name, path in paths.items():
        assert path == tmp_path / f"{name}.onnx"
        assert path.read_bytes() == zoo[name].SerializeToString()
        onnx.checker.check_model(onnx.load(str(path)))
    before = {n: p.stat().st_mtime_ns for n, p in paths.items()}
    inode = {n: p.stat().st_ino for n, p in paths.items()}
    os.utime(paths["mlp"], ns=(before["mlp"] - 10**9, before["mlp"] - 10**9))   # an old file
    before["mlp"] -= 10**9
    again = zoo_models.write_zoo(tmp_path, names)
    assert {n: p.stat().st_mtime_ns for n, p in again.items()} == before
    assert {n: p.stat().st_ino for n, p in again.items()} == inode
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.onnx" for n in names)   # no temporaries
    zoo_models.write_zoo(tmp_path, ["mlp"], seed=1)                  # other bytes: replaced
    assert paths["mlp"].read_bytes() == zoo_models.build("mlp", seed=1).SerializeToString()
    assert paths["mlp"].stat().st_ino != inode["mlp"]


def test_main_writes_and_reports(tmp_path, capsys):
    assert zoo_models.main([str(tmp_path), "mlp"]) == 0
    out = capsys.readouterr().out
    assert "mlp" in out and "399,370" in out and "x=Nx256" in out
    assert (tmp_path / "mlp.onnx").is_file()
    assert zoo_models.main([str(tmp_path), "nope"]) == 2
