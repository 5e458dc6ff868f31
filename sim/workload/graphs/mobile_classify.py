"""MLPerf Mobile's image classifiers: MobileNetEdgeTPU (224x224) and MobileNetV4-Conv-L (384x384).

**MobileNetEdgeTPU** (``build_mobilenet_edgetpu``), the classifier of MLPerf Mobile v0.7
to v3.1 (``mobilenet_edgetpu_224_1.0``, 1001 classes with TF's background class). The
layer list is TF-Slim's ``V3_EDGETPU`` (tensorflow/models, research/slim/nets/mobilenet/
mobilenet_v3.py): a 3x3/2 stem to 32 channels; fused blocks (a k x k convolution that
expands, then a 1x1 projection) of (expansion, channels, stride) (1,16,1), (8,32,2),
(4,32,1)x3, (8,48,2), (4,48,1)x3; inverted bottlenecks (1x1 expansion, depthwise, 1x1
projection) (8,96,2), (4,96,1)x3, (8,96,1, no residual), (4,96,1)x3, then 5x5 ones
(8,160,2), (4,160,1)x3, and a 3x3 (8,192,1); a 1x1 convolution to 1280, global average
pooling and the classifier. ReLU throughout, no squeeze-excite. Published: 990 M MACs and 4.0 M
parameters (research/slim/nets/mobilenet/README.md, "Edge TPU checkpoints" table).
At expansion 1 the first block has no expansion convolution (TF-Slim builds none), so it is
a 1x1 projection 32 -> 16. This graph: 4,092,713 parameters (+2.3%; the published figure
is rounded to 0.1 M) and 990.7 M MACs (+0.1%).

**MobileNetV4-Conv-L** (``build_mobilenet_v4``), the classifier of MLPerf Mobile v4.0
(``MobileNetV4-Conv-Large-int8-ptq.tflite``, 384x384, 1000 classes; mlcommons/
mobile_app_open ``tflite_settings_android.pbtxt`` and ``tasks.pbtxt``). Architecture of
Qin et al. 2024 (arXiv:2404.10518) as timm's ``mobilenetv4_conv_large`` lists it: a 3x3/2
stem to 24 channels; a fused block (3x3/2, expansion 4) to 48; universal inverted
bottlenecks (UIB: optional depthwise "start" conv, 1x1 expansion x4, optional depthwise
"middle" conv, 1x1 projection) with (start k, middle k, stride, channels)
(3,5,2,96), (3,3,1,96); (3,5,2,192), (3,3,1,192)x3, (3,5,1,192), (5,3,1,192)x5,
(3,-,1,192); (5,5,2,512), (5,5,1,512)x3, (5,-,1,512), (5,3,1,512), (5,-,1,512)x2, (5,3,1,512),
(5,5,1,512), (5,-,1,512)x3; a 1x1 convolution to 960; global pooling; a 1x1 convolution
to 1280 with BN (no bias); the classifier. ReLU throughout. Published: 32.6 M parameters,
6.4 GMACs at 384 (timm's model card for ``mobilenetv4_conv_large.e600_r384_in1k``, as
quoted on the Hugging Face card ``byoussef/MobileNetV4_Conv_Large_TFLite_384``).
This graph: 32,590,864 parameters (-0.03%) and 6.376 G MACs (-0.4%).

Both graphs take ``input`` [batch, 3, R, R] float32 and return ``logits``. MLPerf Mobile
runs them quantised (uint8 MobileNetEdgeTPU, int8 PTQ MobileNetV4) on NPUs and DSPs; the
graph is float and the precision is the catalog's. ``width`` (MobileNetEdgeTPU only)
scales every channel count, rounded to a multiple of 8, for small test variants.
"""

from __future__ import annotations

import onnx

from sim.workload.graphs.builder import BATCH, GraphBuilder
from sim.workload.graphs.mobile_blocks import (
    classifier_head,
    conv_bn_act,
    depthwise_bn_act,
    fused_bottleneck,
    inverted_bottleneck,
)
from sim.workload.graphs.resnet import rename

# (kind, kernel, stride, expansion, channels, residual allowed)
EDGETPU_BLOCKS = (
    [("fused", 3, 1, 1, 16, True), ("fused", 3, 2, 8, 32, True)] + [("fused", 3, 1, 4, 32, True)] * 3
    + [("fused", 3, 2, 8, 48, True)] + [("fused", 3, 1, 4, 48, True)] * 3
    + [("ibn", 3, 2, 8, 96, True)] + [("ibn", 3, 1, 4, 96, True)] * 3
    + [("ibn", 3, 1, 8, 96, False)] + [("ibn", 3, 1, 4, 96, True)] * 3
    + [("ibn", 5, 2, 8, 160, True)] + [("ibn", 5, 1, 4, 160, True)] * 3
    + [("ibn", 3, 1, 8, 192, True)])

# MobileNetV4-Conv-L universal inverted bottlenecks: (start dw k or 0, middle dw k or 0, stride, channels)
MNV4_CONV_L_UIB = (
    [(3, 5, 2, 96), (3, 3, 1, 96)]
    + [(3, 5, 2, 192)] + [(3, 3, 1, 192)] * 3 + [(3, 5, 1, 192)] + [(5, 3, 1, 192)] * 5 + [(3, 0, 1, 192)]
    + [(5, 5, 2, 512)] + [(5, 5, 1, 512)] * 3 + [(5, 0, 1, 512), (5, 3, 1, 512)] + [(5, 0, 1, 512)] * 2
    + [(5, 3, 1, 512), (5, 5, 1, 512)] + [(5, 0, 1, 512)] * 3)


def _check_resolution(resolution: int, multiple: int) -> int:
    resolution = int(resolution)
    if resolution < multiple or resolution % multiple:
        raise ValueError(f"resolution {resolution}: expected a positive multiple of {multiple}")
    return resolution


def build_mobilenet_edgetpu(seed: int = 0, resolution: int = 224, num_classes: int = 1001,
                            width: float = 1.0) -> onnx.ModelProto:
    """MobileNetEdgeTPU: ``input`` [batch, 3, R, R] -> ``logits`` [batch, num_classes]."""
    resolution = _check_resolution(resolution, 32)

    def ch(c: int) -> int:
        return max(8, int(round(c * width / 8)) * 8) if width != 1.0 else c

    g = GraphBuilder("mobilenet_edgetpu", seed)
    x = g.input("input", [BATCH, 3, resolution, resolution])
    c = ch(32)
    y = conv_bn_act(g, x, 3, c, 3, stride=2, activation="relu")
    for kind, k, s, e, c_out, res in EDGETPU_BLOCKS:
        c_out = ch(c_out)
        if kind == "fused":
            y = fused_bottleneck(g, y, c, c_out, k, s, e, "relu", res)
        else:
            y, _ = inverted_bottleneck(g, y, c, c_out, k, s, e, "relu", res)
        c = c_out
    y = conv_bn_act(g, y, c, 1280, 1, activation="relu")
    g.output(rename(g, classifier_head(g, y, 1280, num_classes), "logits"), [BATCH, num_classes])
    return g.build(doc=build_mobilenet_edgetpu.__doc__)


def _uib(g: GraphBuilder, x: str, c_in: int, c_out: int, k_start: int, k_mid: int, stride: int,
         expansion: float = 4) -> str:
    """Universal inverted bottleneck (MobileNetV4): [dw start] -> 1x1 expand -> [dw mid] -> 1x1 project."""
    y = x
    if k_start:
        y = depthwise_bn_act(g, y, c_in, k_start, stride if not k_mid else 1, activation=None)
    mid = int(c_in * expansion)
    y = conv_bn_act(g, y, c_in, mid, 1, activation="relu")
    if k_mid:
        y = depthwise_bn_act(g, y, mid, k_mid, stride, activation="relu")
    y = conv_bn_act(g, y, mid, c_out, 1, activation=None, gain=0.5)
    if stride == 1 and c_in == c_out:
        y = g.add(y, x)
    return y


def build_mobilenet_v4(seed: int = 0, resolution: int = 384, num_classes: int = 1000) -> onnx.ModelProto:
    """MobileNetV4-Conv-L: ``input`` [batch, 3, R, R] -> ``logits`` [batch, num_classes]."""
    resolution = _check_resolution(resolution, 32)
    g = GraphBuilder("mobilenet_v4", seed)
    x = g.input("input", [BATCH, 3, resolution, resolution])
    y = conv_bn_act(g, x, 3, 24, 3, stride=2, activation="relu")
    y = fused_bottleneck(g, y, 24, 48, 3, 2, 4, "relu")
    c = 48
    for k_start, k_mid, s, c_out in MNV4_CONV_L_UIB:
        y = _uib(g, y, c, c_out, k_start, k_mid, s)
        c = c_out
    y = conv_bn_act(g, y, c, 960, 1, activation="relu")
    y = conv_bn_act(g, g.global_avgpool(y), 960, 1280, 1, activation="relu")
    logits = g.gemm(g.flatten(y), 1280, num_classes)
    g.output(rename(g, logits, "logits"), [BATCH, num_classes])
    return g.build(doc=build_mobilenet_v4.__doc__)
