"""ResNet graphs: ResNet-50 v1.5 (MLPerf's image classifier) and reusable backbones.

``build_resnet50`` follows the MLPerf reference model (He et al. 2016, arXiv:1512.03385,
with the "v1.5" change: a bottleneck that downsamples puts its stride on the 3x3
convolution, not on the first 1x1). Convolutions have no bias and are each followed by
a BatchNormalization node, as in an exported model (onnxruntime folds them into the
convolutions when it optimises the graph). The head is GlobalAveragePool, Flatten and a
Gemm.

At full size (224x224, width 1.0, 1000 classes) the graph holds 25,557,032 trainable
parameters (``sim.workload.graphs.builder.param_count``: conv and fc weights, fc bias, BN gamma
and beta; BN running mean/var are buffers and not counted), matching the 25.6 M in the
MLPerf Inference paper (arXiv:1911.02549, Table 1). Convolutions plus the fc layer do
4.09 G multiply-accumulates per image (8.18 GOPs at 2 ops/MAC); the paper lists 7.8
GOPs, close to ResNet-50 v1's 3.9 G MACs; moving the stride onto the 3x3 conv (v1.5)
adds about 5%. The input is ``input`` [batch, 3, R, R], the output ``logits``.

The module also provides the pieces other graphs reuse: ``conv_bn``, ``bottleneck``,
``basic_block``, ``resnet_stem``, ``resnet50_features`` (ResNet-50 / ResNeXt-50 C2..C5,
used by RetinaNet) and ``resnet34_backbone`` (ResNet-34 truncated after conv4_x with
the conv4 stride set to 1, as MLPerf's SSD-ResNet34 uses it).
"""

from __future__ import annotations

import onnx

from sim.workload.graphs.builder import BATCH, GraphBuilder


def scale_channels(c: int, width: float, divisor: int = 8, min_value: int = 8) -> int:
    """``c * width`` rounded to a multiple of ``divisor`` (at least ``min_value``); exact at 1.0."""
    if width == 1.0:
        return int(c)
    return max(min_value, int(round(c * width / divisor)) * divisor)


# Weight scale of the last conv of each residual branch. With random weights and fixed
# BN statistics nothing renormalises activations, and an undamped branch doubles the
# variance at every block (ResNet-50's logits reach ~1e3). Scaling that conv by 0.5 (in
# the spirit of zero-init-residual) keeps outputs O(1..10); it changes no shape or cost.
RESIDUAL_GAIN = 0.5


def conv_bn(g: GraphBuilder, x: str, c_in: int, c_out: int, k: int, stride: int = 1,
            relu: bool = True, group: int = 1, gain: float = 1.0) -> str:
    """Conv (no bias, ``same`` padding) -> BatchNormalization [-> Relu].

    ``gain`` scales the He-initialised weight.
    """
    w = g.weight((c_out, c_in // group, k, k), prefix="conv_w", scale=gain)
    p = (k - 1) // 2
    y = g.op("Conv", [x, w], kernel_shape=[k, k], strides=[stride, stride], pads=[p] * 4,
             group=group, dilations=[1, 1])
    y = g.batchnorm(y, c_out)
    return g.relu(y) if relu else y


def resnet_stem(g: GraphBuilder, x: str, c_in: int, c_out: int) -> str:
    """7x7/2 conv, BN, ReLU, 3x3/2 max pool: spatial size / 4."""
    y = conv_bn(g, x, c_in, c_out, 7, stride=2)
    return g.maxpool(y, 3, stride=2, pad=1)


def bottleneck(g: GraphBuilder, x: str, c_in: int, planes: int, stride: int = 1, groups: int = 1,
               base_width: int = 64, width: float = 1.0) -> tuple[str, int]:
    """ResNet v1.5 / ResNeXt bottleneck: 1x1 -> 3x3 (stride, groups) -> 1x1 (x4), plus shortcut.

    ``planes`` is the unscaled torchvision value (64, 128, 256, 512). The inner width is
    ``planes * base_width / 64 * groups`` (torchvision's rule; ResNeXt-50 32x4d has
    groups=32, base_width=4). Returns the output name and its channel count.
    """
    if groups == 1:
        inner = scale_channels(planes * base_width // 64, width)
    else:
        inner = groups * max(1, int(round(planes * base_width / 64 * width)))
    c_out = scale_channels(planes * 4, width)
    y = conv_bn(g, x, c_in, inner, 1)
    y = conv_bn(g, y, inner, inner, 3, stride=stride, group=groups)
    y = conv_bn(g, y, inner, c_out, 1, relu=False, gain=RESIDUAL_GAIN)
    short = x
    if stride != 1 or c_in != c_out:
        short = conv_bn(g, x, c_in, c_out, 1, stride=stride, relu=False)
    return g.relu(g.add(y, short)), c_out


def basic_block(g: GraphBuilder, x: str, c_in: int, c_out: int, stride: int = 1) -> tuple[str, int]:
    """ResNet-18/34 basic block: 3x3 (stride) -> 3x3, plus shortcut (1x1 conv when shapes change)."""
    y = conv_bn(g, x, c_in, c_out, 3, stride=stride)
    y = conv_bn(g, y, c_out, c_out, 3, relu=False, gain=RESIDUAL_GAIN)
    short = x
    if stride != 1 or c_in != c_out:
        short = conv_bn(g, x, c_in, c_out, 1, stride=stride, relu=False)
    return g.relu(g.add(y, short)), c_out


def resnet50_features(g: GraphBuilder, x: str, c_in: int = 3, width: float = 1.0, groups: int = 1,
                      base_width: int = 64, blocks=(3, 4, 6, 3)) -> list[tuple[str, int]]:
    """Stem and four bottleneck stages; returns [(C2, ch), (C3, ch), (C4, ch), (C5, ch)].

    Strides 4, 8, 16, 32. ``groups=32, base_width=4`` gives ResNeXt-50 32x4d.
    """
    c = scale_channels(64, width)
    y = resnet_stem(g, x, c_in, c)
    outs = []
    for stage, (planes, n) in enumerate(zip((64, 128, 256, 512), blocks)):
        for i in range(n):
            stride = 2 if (i == 0 and stage > 0) else 1
            y, c = bottleneck(g, y, c, planes, stride, groups=groups, base_width=base_width, width=width)
        outs.append((y, c))
    return outs


def resnet34_backbone(g: GraphBuilder, x: str, c_in: int = 3, width: float = 1.0,
                      conv4_stride: int = 1) -> tuple[str, int]:
    """ResNet-34 through conv4_x (layer3), as MLPerf's SSD-ResNet34 uses it.

    conv1 7x7/2, max pool, conv2_x (3 blocks, 64), conv3_x (4 blocks, 128, stride 2),
    conv4_x (6 blocks, 256) whose first block has its stride set to ``conv4_stride``
    (1 in MLPerf's reference, ``_ModifyBlock(..., stride=(1, 1))``), so the output is at
    stride 8. conv5_x, the pool and the classifier are dropped. Returns (name, channels).
    """
    c = scale_channels(64, width)
    y = resnet_stem(g, x, c_in, c)
    for stage, (planes, n) in enumerate(zip((64, 128, 256), (3, 4, 6))):
        c_out = scale_channels(planes, width)
        for i in range(n):
            stride = 1
            if i == 0 and stage == 1:
                stride = 2
            elif i == 0 and stage == 2:
                stride = conv4_stride
            y, c = basic_block(g, y, c, c_out, stride)
    return y, c


def build_resnet50(seed: int = 0, resolution: int = 224, width: float = 1.0,
                   num_classes: int = 1000) -> onnx.ModelProto:
    """ResNet-50 v1.5: input ``input`` [batch, 3, R, R], output ``logits`` [batch, num_classes].

    ``resolution`` is the square input size (224 for MLPerf); ``width`` scales every
    channel count (1.0 is the real network); ``seed`` seeds the random weights.
    """
    g = GraphBuilder("resnet50_v1.5", seed)
    x = g.input("input", [BATCH, 3, resolution, resolution])
    feats = resnet50_features(g, x, 3, width)
    y, c = feats[-1]
    y = g.flatten(g.global_avgpool(y))
    g.output(rename(g, g.gemm(y, c, num_classes), "logits"), [BATCH, num_classes])
    return g.build(doc=build_resnet50.__doc__)


def rename(g: GraphBuilder, tensor: str, new: str) -> str:
    """Rename ``tensor`` (a node output) to ``new`` everywhere in the graph built so far."""
    for node in g.nodes:
        for field in (node.output, node.input):
            for i, name in enumerate(field):
                if name == tensor:
                    field[i] = new
    return new
