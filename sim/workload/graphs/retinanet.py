"""RetinaNet as MLPerf Inference runs it (Lin et al. 2017, arXiv:1708.02002).

MLPerf's reference (``retinanet_resnext50_32x4d_fpn``, 800x800, the 264-class
OpenImages subset) is torchvision's RetinaNet with:

* a ResNeXt-50 32x4d backbone (bottlenecks with 32-group 3x3 convolutions, stride on
  the 3x3), each convolution followed by a BatchNormalization node (frozen BN in the
  reference; onnxruntime folds it);
* an FPN on C3, C4, C5 (1x1 lateral convs and 3x3 output convs, 256 channels, with
  bias; top-down path by 2x nearest-neighbour upsampling and addition), plus P6 (3x3/2
  conv on P5) and P7 (3x3/2 conv on ReLU(P6)): levels P3..P7 at strides 8..128;
* a classification head and a box-regression head, each four 3x3 convs of 256
  channels with ReLU and a final 3x3 conv (9 anchors x classes, 9 x 4), with the SAME
  weights applied to every level (shared initializers, as in the checkpoint).

Outputs are the raw head outputs over all levels and anchors (torchvision's order:
level, y, x, anchor): ``cls_logits`` [batch, A, num_classes] and ``bbox_regression``
[batch, A, 4]; A = 120087 at 800x800. Box decoding, top-k and NMS are not in the graph.
``resolution`` must be a multiple of 32 (so each FPN level is exactly twice the next).

Full size: 37,128,876 trainable parameters (conv weights and biases, BN gamma/beta;
heads counted once) and 201.2 G multiply-accumulates per 800x800 image, 73 G of them in
the 264-class classification output conv.
"""

from __future__ import annotations

import numpy as np
import onnx

from sim.workload.graphs.builder import BATCH, GraphBuilder
from sim.workload.graphs.resnet import rename, resnet50_features, scale_channels

NUM_ANCHORS = 9          # 3 scales x 3 aspect ratios per location
HEAD_CONVS = 4


def _shared_conv(g: GraphBuilder, c_in: int, c_out: int, k: int = 3):
    """One conv's weight and bias, to be applied at several places (shared across levels)."""
    return (g.weight((c_out, c_in, k, k), prefix="head_w"), g.bias(c_out, "head_b"), k)


def _apply(g: GraphBuilder, x: str, conv) -> str:
    w, b, k = conv
    p = (k - 1) // 2
    return g.op("Conv", [x, w, b], kernel_shape=[k, k], strides=[1, 1], pads=[p] * 4)


def _upsample2x(g: GraphBuilder, x: str) -> str:
    scales = g.const(np.array([1.0, 1.0, 2.0, 2.0], np.float32), "scales")
    return g.op("Resize", [x, "", scales], mode="nearest", coordinate_transformation_mode="asymmetric",
                nearest_mode="floor")


def _nhwc_flat(g: GraphBuilder, x: str, last: int) -> str:
    """[N, A*last, H, W] -> [N, H*W*A, last]."""
    return g.reshape(g.transpose(x, [0, 2, 3, 1]), [0, -1, last])


def build_retinanet(seed: int = 0, resolution: int = 800, width: float = 1.0,
                    num_classes: int = 264) -> onnx.ModelProto:
    """RetinaNet ResNeXt-50 32x4d FPN: input ``input`` [batch, 3, R, R]; outputs
    ``cls_logits`` [batch, A, num_classes] and ``bbox_regression`` [batch, A, 4].

    ``width`` scales the backbone (ResNeXt keeps 32 groups; each group narrows) and the
    FPN/head depth of 256.
    """
    if resolution % 32:
        raise ValueError(f"retinanet: resolution {resolution} is not a multiple of 32")
    g = GraphBuilder("retinanet_resnext50_32x4d_fpn", seed)
    x = g.input("input", [BATCH, 3, resolution, resolution])
    feats = resnet50_features(g, x, 3, width, groups=32, base_width=4)[1:]   # C3, C4, C5
    d = scale_channels(256, width)

    # FPN: laterals, top-down, 3x3 outputs
    laterals = [g.conv(c, ch, d, 1) for c, ch in feats]
    top = laterals[-1]
    merged = [top]
    for lat in reversed(laterals[:-1]):
        top = g.add(lat, _upsample2x(g, top))
        merged.insert(0, top)
    pyramid = [g.conv(m, d, d, 3) for m in merged]                # P3, P4, P5
    p6 = g.conv(pyramid[-1], d, d, 3, stride=2)
    p7 = g.conv(g.relu(p6), d, d, 3, stride=2)
    pyramid += [p6, p7]

    # heads, shared across levels
    cls_tower = [_shared_conv(g, d, d) for _ in range(HEAD_CONVS)]
    cls_out = _shared_conv(g, d, NUM_ANCHORS * num_classes)
    box_tower = [_shared_conv(g, d, d) for _ in range(HEAD_CONVS)]
    box_out = _shared_conv(g, d, NUM_ANCHORS * 4)
    logits, boxes = [], []
    for p in pyramid:
        y = p
        for conv in cls_tower:
            y = g.relu(_apply(g, y, conv))
        logits.append(_nhwc_flat(g, _apply(g, y, cls_out), num_classes))
        y = p
        for conv in box_tower:
            y = g.relu(_apply(g, y, conv))
        boxes.append(_nhwc_flat(g, _apply(g, y, box_out), 4))
    # declared shapes: Resize's shape inference loses the symbolic batch name
    a = num_anchors_retinanet(resolution)
    g.output(rename(g, g.concat(logits, axis=1), "cls_logits"), [BATCH, a, num_classes])
    g.output(rename(g, g.concat(boxes, axis=1), "bbox_regression"), [BATCH, a, 4])
    return g.build(doc=__doc__)


def num_anchors_retinanet(resolution: int = 800) -> int:
    """Anchors over P3..P7 at a square input size (120087 at 800)."""
    s = resolution // 8
    total = 0
    for _ in range(5):
        total += s * s * NUM_ANCHORS
        s = (s + 1) // 2
    return total
