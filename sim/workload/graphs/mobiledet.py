"""SSDLite-MobileDet-EdgeTPU, the object detector of MLPerf Mobile v1.0 onwards (``ssd-mobiledet``).

MLPerf Mobile runs ``ssdlite_mobiledet_edgetpu_320x320_coco_2020_05_19`` from the TF
object-detection model zoo, 320x320 COCO (mlcommons/mobile_models
``v1_0/mobiledet/README.md``; ``mobiledet_qat.tflite``, uint8 quantisation-aware trained;
its ``pipeline.config`` is in mlcommons/mobile_open ``vision/mobiledet``: 90 classes with
``encode_background_as_zeros``, so 90 class scores per anchor and no background slot,
depthwise feature maps and box predictor, BN and ReLU6 in the predictor). The backbone
is ``mobiledet_edgetpu_backbone`` of the TF object-detection API
(research/object_detection/models/ssd_mobiledet_feature_extractor.py; Xiong et al. 2021,
arXiv:2004.14525), ReLU6 throughout:

* a 3x3/2 stem to 32 channels; a Tucker block to 16 (1x1 to the input rank, 3x3 to the
  output rank, 1x1 linear projection; ranks ``_scale_filters`` of 0.25 x input and
  0.75 x output channels, rounded half up to a multiple of 8);
* fused blocks (k x k expansion convolution, 1x1 projection) (expansion, channels, stride,
  kernel) (8,16,2,3), (4,16), (8,16), (4,16); (8,40,2,5), (4,40)x3;
* inverted bottlenecks and fused blocks (ibn 8,72,2), (ibn 8,72), (fused 4,72)x2,
  (ibn 8,96, k5, no residual), (ibn 8,96, k5), (ibn 8,96)x2 -> C4 (stride 16);
  (ibn 8,120,2, k5), (ibn 8,120), (ibn 4,120, k5), (ibn 8,120), (ibn 8,384, k5) -> C5.

SSD feature maps (``multi_resolution_feature_maps`` with depthwise convolutions): C4, C5,
then four extra maps of depth 512, 256, 256, 128, each a 1x1 convolution to half depth and
a 3x3/2 depthwise plus 1x1 convolution; spatial sizes 20, 10, 5, 3, 2, 1 at 320x320.
The SSDLite box predictor puts, on each map, a 3x3 depthwise convolution (BN, ReLU6) and
a 1x1 convolution with bias for the boxes (anchors x 4) and again for the classes
(anchors x 90); 3 anchors on the first map (``reduce_boxes_in_lowest_layer``) and 6 (five
aspect ratios and one extra scale) on the others: 2034 anchors. Outputs ``boxes``
[batch, 2034, 4] and ``class_logits`` [batch, 2034, 90], raw (no box decoding,
no NMS, as the other SSD graphs here).

This graph: 4,135,854 parameters and 1.533 G multiply-accumulates at 320x320. No
published parameter or multiply-accumulate count for this model was found in the sources
searched (the MobileDets paper's tables could not be retrieved); the tests check the anchor
count and the output shapes only.
"""

from __future__ import annotations

import onnx

from sim.workload.graphs.builder import BATCH, GraphBuilder
from sim.workload.graphs.mobile_blocks import conv_bn_act, depthwise_bn_act, fused_bottleneck, inverted_bottleneck
from sim.workload.graphs.resnet import rename

# (kind, channels, expansion, stride, kernel, residual)
MOBILEDET_EDGETPU_BLOCKS = [
    ("fused", 16, 8, 2, 3, False), ("fused", 16, 4, 1, 3, True), ("fused", 16, 8, 1, 3, True),
    ("fused", 16, 4, 1, 3, True),
    ("fused", 40, 8, 2, 5, False), ("fused", 40, 4, 1, 3, True), ("fused", 40, 4, 1, 3, True),
    ("fused", 40, 4, 1, 3, True),
    ("ibn", 72, 8, 2, 3, False), ("ibn", 72, 8, 1, 3, True), ("fused", 72, 4, 1, 3, True),
    ("fused", 72, 4, 1, 3, True),
    ("ibn", 96, 8, 1, 5, False), ("ibn", 96, 8, 1, 5, True), ("ibn", 96, 8, 1, 3, True),
    ("ibn", 96, 8, 1, 3, True),                                          # C4
    ("ibn", 120, 8, 2, 5, False), ("ibn", 120, 8, 1, 3, True), ("ibn", 120, 4, 1, 5, True),
    ("ibn", 120, 8, 1, 3, True), ("ibn", 384, 8, 1, 5, False),          # C5
]
C4_INDEX = 15
EXTRA_DEPTHS = [512, 256, 256, 128]
ANCHORS = [3, 6, 6, 6, 6, 6]


def scale_filters(filters: float, multiplier: float = 1.0, base: int = 8) -> int:
    """The TF object-detection API's ``_scale_filters``: round half up to a multiple of ``base``."""
    return max(int(int(filters * multiplier / base + 0.5) * base), base)


def feature_sizes(resolution: int) -> list[int]:
    """Spatial sizes of the six SSD maps (C4 at stride 16, C5 at 32, then 'same' 3x3/2 convs)."""
    sizes = [-(-resolution // 16), -(-resolution // 32)]
    for _ in EXTRA_DEPTHS:
        sizes.append(-(-sizes[-1] // 2))
    return sizes


def num_anchors_mobiledet(resolution: int = 320) -> int:
    return sum(a * s * s for a, s in zip(ANCHORS, feature_sizes(resolution)))


def _tucker(g: GraphBuilder, x: str, c_in: int, c_out: int, in_ratio: float, out_ratio: float) -> str:
    r_in, r_out = scale_filters(c_in * in_ratio), scale_filters(c_out * out_ratio)
    y = conv_bn_act(g, x, c_in, r_in, 1, activation="relu6")
    y = conv_bn_act(g, y, r_in, r_out, 3, activation="relu6")
    return conv_bn_act(g, y, r_out, c_out, 1, activation=None)


def _head(g: GraphBuilder, x: str, c: int, outputs: int) -> str:
    y = depthwise_bn_act(g, x, c, 3, activation="relu6")
    w = g.weight((outputs, c, 1, 1), prefix="head_w", scale=0.1)
    return g.op("Conv", [y, w, g.bias(outputs, "head_b")], kernel_shape=[1, 1])


def build_ssd_mobiledet(seed: int = 0, resolution: int = 320, num_classes: int = 90) -> onnx.ModelProto:
    """SSDLite-MobileDet-EdgeTPU (no NMS): ``input`` [batch, 3, R, R] -> ``boxes``, ``class_logits``."""
    resolution = int(resolution)
    if resolution < 64 or resolution % 32:
        raise ValueError(f"resolution {resolution}: expected a multiple of 32, at least 64")
    g = GraphBuilder("ssd_mobiledet", seed)
    x = g.input("input", [BATCH, 3, resolution, resolution])
    y = conv_bn_act(g, x, 3, 32, 3, stride=2, activation="relu6")
    y = _tucker(g, y, 32, 16, 0.25, 0.75)
    c, maps = 16, []
    for i, (kind, c_out, e, s, k, res) in enumerate(MOBILEDET_EDGETPU_BLOCKS):
        if kind == "fused":
            y = fused_bottleneck(g, y, c, c_out, k, s, e, "relu6", res)
        else:
            y, _ = inverted_bottleneck(g, y, c, c_out, k, s, e, "relu6", res)
        c = c_out
        if i == C4_INDEX:
            maps.append((y, c))
    maps.append((y, c))
    for depth in EXTRA_DEPTHS:
        y = conv_bn_act(g, y, c, depth // 2, 1, activation="relu6")
        y = g.conv(y, depth // 2, depth // 2, 3, stride=2, group=depth // 2, bias=False)
        y = conv_bn_act(g, y, depth // 2, depth, 1, activation="relu6")
        c = depth
        maps.append((y, c))
    boxes, classes = [], []
    for (fm, ch), a in zip(maps, ANCHORS):
        b = _head(g, fm, ch, a * 4)
        boxes.append(g.reshape(g.transpose(b, [0, 2, 3, 1]), [0, -1, 4]))
        cl = _head(g, fm, ch, a * num_classes)
        classes.append(g.reshape(g.transpose(cl, [0, 2, 3, 1]), [0, -1, num_classes]))
    n = num_anchors_mobiledet(resolution)
    g.output(rename(g, g.concat(boxes, axis=1), "boxes"), [BATCH, n, 4])
    g.output(rename(g, g.concat(classes, axis=1), "class_logits"), [BATCH, n, num_classes])
    return g.build(doc=build_ssd_mobiledet.__doc__)
