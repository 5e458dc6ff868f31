"""The CNN workload graphs: ResNet-50, MobileNet-v1, SSD-MobileNet-v1, SSD-ResNet34,
RetinaNet and 3D U-Net.

Full-size graphs are built once (a few seconds each) and only counted: trainable
parameters against published figures, and multiply-accumulates against the MLPerf
Inference paper's ops per input (arXiv:1911.02549, Table 1; 1 MAC = 2 ops). Only
full ResNet-50 is also run. The small variants from the catalog are checked end to
end: ``check_model(full_check=True)``, onnxruntime at batch 1 and 2, finite outputs of
the documented shapes.

Parameters are counted by ``sim.workload.layers.count_params``: trainable weights, so
BatchNormalization gamma/beta count and its running mean/variance (buffers) do not,
which is how the published figures (and ``sum(p.numel() for p in model.parameters())``)
count them.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from sim.workload import catalog as workloads
from sim.workload.graphs.builder import BATCH, OPSET, GraphBuilder
from sim.workload.graphs.mobilenet import build_mobilenet_v1
from sim.workload.graphs.resnet import build_resnet50
from sim.workload.graphs.retinanet import build_retinanet, num_anchors_retinanet
from sim.workload.graphs.ssd import (
    build_ssd_mobilenet_v1,
    build_ssd_resnet34,
    num_anchors_ssd_mobilenet,
    num_anchors_ssd_resnet34,
)
from sim.workload.graphs.unet3d import build_unet3d
from sim.workload.inputs import make_feeds
from sim.workload.layers import count_params as param_count

FULL = {
    "resnet50": build_resnet50,
    "mobilenet_v1": build_mobilenet_v1,
    "ssd_mobilenet_v1": build_ssd_mobilenet_v1,
    "ssd_resnet34": build_ssd_resnet34,
    "retinanet": build_retinanet,
    "3d_unet": build_unet3d,
}

_cache: dict[str, onnx.ModelProto] = {}


def full(name: str) -> onnx.ModelProto:
    if name not in _cache:
        _cache[name] = FULL[name](seed=0)
    return _cache[name]


def macs(model: onnx.ModelProto) -> int:
    """Multiply-accumulates of Conv, ConvTranspose and Gemm nodes for one input (batch 1).

    Shapes come from ONNX shape inference on a weightless copy (weights become typed
    graph inputs; small constants such as Resize scales stay), so counting a 150 MB
    model costs little. A node whose shape stays unknown would count 0, so the callers
    check totals against independent figures.
    """
    g = model.graph
    inputs = []
    for v in g.input:
        v2 = onnx.ValueInfoProto()
        v2.CopyFrom(v)
        d0 = v2.type.tensor_type.shape.dim[0]
        if d0.dim_param:
            d0.Clear()
            d0.dim_value = 1
        inputs.append(v2)
    small = [t for t in g.initializer if np.prod(t.dims) <= 16]     # shapes, scales: values matter
    inputs += [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
               for t in g.initializer if np.prod(t.dims) > 16]
    light = helper.make_model(helper.make_graph(list(g.node), "light", inputs, [], small),
                              opset_imports=list(model.opset_import))
    light.ir_version = model.ir_version
    light = onnx.shape_inference.infer_shapes(light)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(light.graph.value_info) + list(light.graph.input)}
    total = 0
    for n in light.graph.node:
        if n.op_type == "Conv":
            total += int(np.prod(shapes[n.output[0]])) * int(np.prod(shapes[n.input[1]][1:]))
        elif n.op_type == "ConvTranspose":
            total += int(np.prod(shapes[n.input[0]])) * int(np.prod(shapes[n.input[1]][1:]))
        elif n.op_type == "Gemm":
            total += int(np.prod(shapes[n.input[1]]))
    return total


def dims(v: onnx.ValueInfoProto) -> list:
    return [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]


# ---- parameter counts ----------------------------------------------------------------
# (workload, published count, relative tolerance, where the figure comes from)
PUBLISHED_PARAMS = [
    ("resnet50", 25.6e6, 0.03, "MLPerf Inference paper Table 1"),
    ("mobilenet_v1", 4.2e6, 0.03, "MLPerf Inference paper Table 1"),
    ("ssd_mobilenet_v1", 6.91e6, 0.03, "MLPerf Inference paper Table 1"),
    # The paper lists 36.3 M for SSD-ResNet34, but MLPerf's reference network (ssd_r34.py:
    # ResNet-34 to conv4_x, 5 extra blocks, 3x3 heads with 4/6 boxes) has 19.97 M; the
    # ONNX export MLPerf distributes is 20.058 M by OpenVINO's model card for
    # ssd-resnet34-1200-onnx. No faithful graph reaches 36.3 M (even an untruncated
    # ResNet-34 under these heads is 33.6 M), so the test holds the reference count.
    ("ssd_resnet34", 20.058e6, 0.03, "OpenVINO model card ssd-resnet34-1200-onnx (paper: 36.3 M)"),
]


@pytest.mark.parametrize("name,published,tol,source", PUBLISHED_PARAMS, ids=[p[0] for p in PUBLISHED_PARAMS])
def test_param_count_matches_published(name, published, tol, source):
    n = param_count(full(name))
    assert abs(n - published) <= tol * published, f"{name}: {n:,} parameters vs {published:,.0f} ({source})"


def test_param_counts_exact():
    """Exact counts derived by hand from the reference architectures."""
    assert param_count(full("resnet50")) == 25_557_032          # torchvision resnet50
    assert param_count(full("mobilenet_v1")) == 4_231_976 + 1025  # Keras 1000-class figure + 1 class
    # torchvision resnext50_32x4d (25,028,904) minus its fc (2,049,000), plus FPN
    # (laterals 918,272; 3x3 outputs 1,770,240; P6, P7 1,180,160) and heads shared over
    # levels (towers 2 x 2,360,320; cls 256*9*9*264 + 2376; box 256*9*36 + 36)
    fpn = 918_272 + 1_770_240 + 1_180_160
    heads = 2 * 2_360_320 + (256 * 9 * 2376 + 2376) + (256 * 9 * 36 + 36)
    assert param_count(full("retinanet")) == 25_028_904 - 2_049_000 + fpn + heads


def test_unet3d_param_count_from_architecture():
    f = [32, 64, 128, 256, 320, 320]
    block = lambda ci, co: ci * co * 27 + 2 * co          # conv (no bias) + InstanceNorm scale/bias
    n = block(1, 32) + block(32, 32)
    for ci, co in zip(f[:-1], f[1:]):
        n += block(ci, co) + block(co, co)
    c = f[-1]
    for skip in reversed(f[:-1]):
        n += c * skip * 8 + skip                          # ConvTranspose 2x2x2 with bias
        n += block(2 * skip, skip) + block(skip, skip)
        c = skip
    n += 32 * 3 + 3
    assert param_count(full("3d_unet")) == n


def test_param_count_skips_bn_running_stats_and_settings():
    g = GraphBuilder("t")
    x = g.input("x", [BATCH, 4, 8, 8])
    y = g.relu6(g.batchnorm(g.conv(x, 4, 8, 3, bias=False), 8))
    g.output(g.reshape(y, [0, -1]))
    m = g.build()
    assert param_count(m) == 8 * 4 * 9 + 2 * 8          # weight + gamma/beta; no mean/var, bounds, shape


# ---- compute --------------------------------------------------------------------------
# (workload, paper GOPs per input, tolerance); 1 MAC = 2 ops
PAPER_OPS = [
    ("resnet50", 7.8e9, 0.08),          # v1.5 is ~5% above v1's 7.8 (stride on the 3x3)
    ("mobilenet_v1", 1.138e9, 0.08),
    ("ssd_mobilenet_v1", 2.47e9, 0.08),
    ("ssd_resnet34", 433e9, 0.08),
]


@pytest.mark.parametrize("name,ops,tol", PAPER_OPS, ids=[p[0] for p in PAPER_OPS])
def test_macs_match_paper(name, ops, tol):
    got = 2 * macs(full(name))
    assert abs(got - ops) <= tol * ops, f"{name}: {got / 1e9:.3f} GOPs vs paper {ops / 1e9:.3f}"


def test_macs_other_models():
    assert 2.0e11 < macs(full("retinanet")) < 2.03e11       # 201.2 G MACs at 800x800
    assert 4.7e11 < macs(full("3d_unet")) < 4.8e11           # 477.3 G MACs per 128^3 patch


# ---- full-size structure ----------------------------------------------------------------
FULL_OUTPUTS = {
    "resnet50": {"logits": [BATCH, 1000]},
    "mobilenet_v1": {"logits": [BATCH, 1001]},
    "ssd_mobilenet_v1": {"boxes": [BATCH, 1917, 4], "class_logits": [BATCH, 1917, 91]},
    "ssd_resnet34": {"bboxes": [BATCH, 4, 15130], "class_logits": [BATCH, 81, 15130]},
    "retinanet": {"cls_logits": [BATCH, 120087, 264], "bbox_regression": [BATCH, 120087, 4]},
    "3d_unet": {"logits": [BATCH, 3, 128, 128, 128]},
}


@pytest.mark.parametrize("name", list(FULL))
def test_full_graph_interface(name):
    m = full(name)
    assert [o.version for o in m.opset_import] == [OPSET]
    (inp,) = m.graph.input
    assert dims(inp)[0] == BATCH
    assert {o.name: dims(o) for o in m.graph.output} == FULL_OUTPUTS[name]
    assert all(t.data_type in (TensorProto.FLOAT, TensorProto.INT64) for t in m.graph.initializer)
    ops = {n.op_type for n in m.graph.node}
    if name != "3d_unet":
        assert "BatchNormalization" in ops
    if name in ("resnet50", "ssd_resnet34", "retinanet"):
        assert "MaxPool" in ops
    if name == "3d_unet":
        assert {"InstanceNormalization", "ConvTranspose"} <= ops


def test_anchor_helpers():
    assert num_anchors_ssd_mobilenet(300) == 1917
    assert num_anchors_ssd_resnet34(1200) == 15130
    assert num_anchors_retinanet(800) == 120087


def test_resnet50_v15_stride_on_3x3():
    """v1.5: a downsampling bottleneck puts its stride on the 3x3 conv (and the projection)."""
    m = full("resnet50")
    inits = {t.name: list(t.dims) for t in m.graph.initializer}
    s2 = [inits[n.input[1]] for n in m.graph.node if n.op_type == "Conv"
          and next(list(a.ints) for a in n.attribute if a.name == "strides") == [2, 2]]
    # the 7x7 stem, then per downsampling stage one 3x3 and one 1x1 projection shortcut
    assert sorted(tuple(w[2:]) for w in s2) == [(1, 1)] * 3 + [(3, 3)] * 3 + [(7, 7)]


def test_full_resnet50_runs():
    m = full("resnet50")
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    (out,) = s.run(None, make_feeds(m, 1))
    assert out.shape == (1, 1000) and np.isfinite(out).all()


# ---- small variants, end to end ---------------------------------------------------------
SMALL = {
    "resnet50": {"logits": lambda b: (b, 1000)},
    "mobilenet_v1": {"logits": lambda b: (b, 1001)},
    "ssd_mobilenet_v1": {"boxes": lambda b: (b, num_anchors_ssd_mobilenet(160), 4),
                         "class_logits": lambda b: (b, num_anchors_ssd_mobilenet(160), 91)},
    "ssd_resnet34": {"bboxes": lambda b: (b, 4, num_anchors_ssd_resnet34(400)),
                     "class_logits": lambda b: (b, 81, num_anchors_ssd_resnet34(400))},
    "retinanet": {"cls_logits": lambda b: (b, num_anchors_retinanet(128), 264),
                  "bbox_regression": lambda b: (b, num_anchors_retinanet(128), 4)},
    "3d_unet": {"logits": lambda b: (b, 3, 32, 32, 32)},
}


@pytest.mark.parametrize("name", list(SMALL))
def test_small_variant_runs(name, tmp_path, monkeypatch):
    monkeypatch.setenv("SIM_CACHE_DIR", str(tmp_path))
    spec = workloads.catalog()[name]
    params = {**spec.params, **spec.small}
    m = workloads._builder(spec)(seed=0, **params)
    onnx.checker.check_model(m, full_check=True)
    assert dims(m.graph.input[0])[0] == BATCH
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    s = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in s.get_outputs()]
    assert names == list(SMALL[name])
    for batch in (1, 2):
        outs = s.run(None, make_feeds(m, batch, seed=batch))
        for oname, out in zip(names, outs):
            assert out.shape == SMALL[name][oname](batch), (name, oname, out.shape)
            assert out.dtype == np.float32
            assert np.isfinite(out).all(), (name, oname)


@pytest.mark.parametrize("name", list(SMALL))
def test_catalog_entry(name, tmp_path, monkeypatch):
    monkeypatch.setenv("SIM_CACHE_DIR", str(tmp_path))
    spec = workloads.catalog()[name]
    assert spec.builder.split(":")[1] == FULL[name].__name__
    w = workloads.build(name, small=True)
    assert w.path.exists() and w.name == f"{name}-small"
    assert w.mlperf_model == {"resnet50": "resnet50", "mobilenet_v1": "mobilenet",
                              "ssd_mobilenet_v1": "ssd-mobilenet", "ssd_resnet34": "ssd-resnet34",
                              "retinanet": "retinanet", "3d_unet": "3d-unet"}[name]


def test_seeded_and_deterministic():
    a = build_ssd_mobilenet_v1(seed=3, resolution=128, width=0.25)
    b = build_ssd_mobilenet_v1(seed=3, resolution=128, width=0.25)
    c = build_ssd_mobilenet_v1(seed=4, resolution=128, width=0.25)
    ser = lambda m: m.SerializeToString(deterministic=True)
    assert ser(a) == ser(b) and ser(a) != ser(c)


@pytest.mark.parametrize("builder,kw", [(build_retinanet, {"resolution": 100}),
                                        (build_unet3d, {"size": 48}),
                                        (build_ssd_resnet34, {"resolution": 200})])
def test_bad_sizes_rejected(builder, kw):
    with pytest.raises(ValueError):
        builder(**kw)
