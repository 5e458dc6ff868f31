"""Single-shot detectors used by MLPerf Inference: SSD-MobileNet-v1 and SSD-ResNet34.

Both graphs end at the raw head outputs: per-anchor box regressions and class logits,
concatenated over all feature maps. Box decoding against the anchors, score
thresholding and non-maximum suppression are NOT in the graph (MLPerf's reference
runs them as post-processing; their cost depends on the image content, not on the
network), so these graphs time the network only.

SSD-MobileNet-v1 (``build_ssd_mobilenet_v1``) is the TensorFlow object-detection
API model MLPerf used (``ssd_mobilenet_v1_coco``, 300x300, 90 COCO classes plus
background = 91): MobileNet-v1 feature maps ``Conv2d_11_pointwise`` (19x19x512) and
``Conv2d_13_pointwise`` (10x10x1024), four extra layers (1x1 conv to half depth, then
3x3/2 conv to 512, 256, 256, 128 channels; each conv with BN and ReLU6, as in the TF
feature extractor), and a 1x1 convolutional box predictor per map with 3 anchors on
the first map (``reduce_boxes_in_lowest_layer``) and 6 on the others: 1917 anchors at
300x300. Outputs: ``boxes`` [batch, A, 4] and ``class_logits`` [batch, A, num_classes].
Full size: 6,819,839 trainable parameters (the MLPerf Inference paper, arXiv:1911.02549
Table 1, lists 6.91 M, 1.3% more) and 1.237 G multiply-accumulates (2.474 GOPs at 2
ops/MAC; paper 2.47).

SSD-ResNet34 (``build_ssd_resnet34``) is MLPerf's 1200x1200 COCO detector (80 classes
plus background = 81), as in the reference ``ssd_r34.py``: ResNet-34 truncated after
conv4_x, with the conv4_x stride set to 1 (the backbone output is 256 channels at
stride 8, 150x150), five extra blocks (1x1 conv, ReLU, 3x3 conv, ReLU; with bias, no
BN; out channels 512, 512, 256, 256, 256; the last two 3x3 convs unpadded), and 3x3
location/confidence heads with stride 3 (the reference's ``strides=[3, 3, 2, 2, 2, 2]``)
and 4, 6, 6, 6, 4, 4 default boxes per location. At 1200x1200 the feature maps are
150, 75, 38, 19, 9 and 7 a side and the stride-3 heads output 50, 25, 13, 7, 3 and 3:
15130 boxes. Outputs follow the reference layout: ``bboxes``
[batch, 4, A] and ``class_logits`` [batch, num_classes, A] (each head output reshaped
to [N, 4 or C, -1] and concatenated on the last axis). Full size: 19,972,534 trainable
parameters and 216.4 G multiply-accumulates (432.8 GOPs; the paper lists 433). The
paper's 36.3 M parameters do not describe this network: the reference code gives
19.97 M, and OpenVINO's model card for MLPerf's ONNX export (``ssd-resnet34-1200-onnx``:
20.058 MParams, 433.411 GFLOPs) agrees within 0.5%; even the untruncated ResNet-34 with
these heads would be 33.6 M.
"""

from __future__ import annotations

import onnx

from sim.workload.graphs.builder import BATCH, GraphBuilder
from sim.workload.graphs.mobilenet import conv_bn_relu6, depth, mobilenet_v1_backbone
from sim.workload.graphs.resnet import rename, resnet34_backbone, scale_channels

# SSD-MobileNet-v1: (1x1 depth, 3x3/2 depth) of the four extra layers
SSD_MOBILENET_EXTRAS = [(256, 512), (128, 256), (128, 256), (64, 128)]
SSD_MOBILENET_ANCHORS = [3, 6, 6, 6, 6, 6]

# SSD-ResNet34: (1x1 depth, 3x3 depth, 3x3 stride, 3x3 pad) of the five extra blocks
SSD_R34_EXTRAS = [(256, 512, 2, 1), (256, 512, 2, 1), (128, 256, 2, 1), (128, 256, 2, 0),
                  (128, 256, 1, 0)]
SSD_R34_ANCHORS = [4, 6, 6, 6, 4, 4]
SSD_R34_HEAD_STRIDE = 3


def _nhwc_flat(g: GraphBuilder, x: str, last: int) -> str:
    """[N, A*last, H, W] -> [N, H*W*A, last] (TF / torchvision anchor order)."""
    return g.reshape(g.transpose(x, [0, 2, 3, 1]), [0, -1, last])


def build_ssd_mobilenet_v1(seed: int = 0, resolution: int = 300, width: float = 1.0,
                           num_classes: int = 91) -> onnx.ModelProto:
    """SSD-MobileNet-v1 (no NMS): input ``input`` [batch, 3, R, R]; outputs ``boxes``
    [batch, A, 4] and ``class_logits`` [batch, A, num_classes], A = 1917 at R = 300.

    ``num_classes`` includes the background class; ``width`` is MobileNet's depth
    multiplier, applied to the extra layers too.
    """
    g = GraphBuilder("ssd_mobilenet_v1", seed)
    x = g.input("input", [BATCH, 3, resolution, resolution])
    maps = mobilenet_v1_backbone(g, x, 3, width, return_layers=(11, 13))
    y, c = maps[-1]
    for mid, out in SSD_MOBILENET_EXTRAS:
        mid, out = depth(mid, width), depth(out, width)
        y = conv_bn_relu6(g, y, c, mid, 1)
        y = conv_bn_relu6(g, y, mid, out, 3, stride=2)
        c = out
        maps.append((y, c))
    boxes, logits = [], []
    for (fm, ch), a in zip(maps, SSD_MOBILENET_ANCHORS):
        boxes.append(_nhwc_flat(g, g.conv(fm, ch, a * 4, 1), 4))
        logits.append(_nhwc_flat(g, g.conv(fm, ch, a * num_classes, 1), num_classes))
    g.output(rename(g, g.concat(boxes, axis=1), "boxes"))
    g.output(rename(g, g.concat(logits, axis=1), "class_logits"))
    return g.build(doc=__doc__)


def build_ssd_resnet34(seed: int = 0, resolution: int = 1200, width: float = 1.0,
                       num_classes: int = 81) -> onnx.ModelProto:
    """SSD-ResNet34 (no NMS): input ``input`` [batch, 3, R, R]; outputs ``bboxes``
    [batch, 4, A] and ``class_logits`` [batch, num_classes, A], A = 15130 at R = 1200.

    ``num_classes`` includes the background class. The unpadded last extra blocks
    need R >= 392 or so (the fifth map must stay at least 1x1).
    """
    g = GraphBuilder("ssd_resnet34", seed)
    x = g.input("input", [BATCH, 3, resolution, resolution])
    y, c = resnet34_backbone(g, x, 3, width, conv4_stride=1)
    maps = [(y, c)]
    size = -(-resolution // 8)
    for mid, out, stride, pad in SSD_R34_EXTRAS:
        mid, out = scale_channels(mid, width), scale_channels(out, width)
        y = g.relu(g.conv(y, c, mid, 1))
        y = g.relu(g.conv(y, mid, out, 3, stride=stride, pad=pad))
        size = (size + 2 * pad - 3) // stride + 1
        if size < 1:
            raise ValueError(f"ssd_resnet34: resolution {resolution} is too small for the extra "
                             f"layers; expected at least 392")
        c = out
        maps.append((y, c))
    locs, confs = [], []
    for (fm, ch), a in zip(maps, SSD_R34_ANCHORS):
        loc = g.conv(fm, ch, a * 4, 3, stride=SSD_R34_HEAD_STRIDE, pad=1)
        conf = g.conv(fm, ch, a * num_classes, 3, stride=SSD_R34_HEAD_STRIDE, pad=1)
        locs.append(g.reshape(loc, [0, 4, -1]))
        confs.append(g.reshape(conf, [0, num_classes, -1]))
    g.output(rename(g, g.concat(locs, axis=2), "bboxes"))
    g.output(rename(g, g.concat(confs, axis=2), "class_logits"))
    return g.build(doc=__doc__)


def num_anchors_ssd_mobilenet(resolution: int = 300) -> int:
    """Anchors of SSD-MobileNet-v1 at a square input size (1917 at 300)."""
    s = resolution
    for _ in range(4):                         # conv0 and blocks 2, 4, 6 halve: 150, 75, 38, 19
        s = (s + 1) // 2
    maps = [s]                                 # Conv2d_11 (stride 16), then Conv2d_13 and extras
    for _ in range(5):
        s = (s + 1) // 2
        maps.append(s)
    return int(sum(m * m * a for m, a in zip(maps, SSD_MOBILENET_ANCHORS)))


def num_anchors_ssd_resnet34(resolution: int = 1200) -> int:
    """Default boxes of SSD-ResNet34 at a square input size (15130 at 1200)."""
    s = -(-resolution // 8)
    maps = [s]
    for _, _, stride, pad in SSD_R34_EXTRAS:
        s = (s + 2 * pad - 3) // stride + 1
        maps.append(s)
    heads = [(m + 2 - 3) // SSD_R34_HEAD_STRIDE + 1 for m in maps]
    return int(sum(h * h * a for h, a in zip(heads, SSD_R34_ANCHORS)))

