"""MobileNet-v1 (Howard et al. 2017, arXiv:1704.04861) and its backbone for SSD.

The classifier is TF-Slim's ``mobilenet_v1_1.0_224``: a 3x3/2 convolution, then 13
depthwise-separable blocks (3x3 depthwise conv, BN, ReLU6, 1x1 pointwise conv, BN,
ReLU6), global average pooling and a 1001-way classifier (ImageNet's 1000 classes plus
TF's background class). Convolutions have no bias; BatchNormalization nodes are kept.

At full size (224x224, width 1.0, 1001 classes) it holds 4,233,001 trainable
parameters (conv and fc weights, fc bias, BN gamma and beta; BN running statistics
are not parameters; 4,231,976 with 1000 classes), the 4.2 M of the MLPerf Inference
paper (arXiv:1911.02549, Table 1), and does 568.7 M multiply-accumulates (1.137 GOPs;
paper 1.138).

``width`` is the depth multiplier (channel counts ``int(c * width)``, at least 8, as
TF-Slim rounds them); ``resolution`` the square input size.
"""

from __future__ import annotations

import onnx

from sim.workload.graphs.builder import BATCH, GraphBuilder
from sim.workload.graphs.resnet import rename

# (output channels, stride) of the 13 depthwise-separable blocks, after conv0 (32, /2)
MOBILENET_V1_BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1),
                       (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]


def depth(c: int, width: float, min_depth: int = 8) -> int:
    """TF-Slim's channel rule for a depth multiplier: ``max(int(c * width), min_depth)``."""
    return max(int(c * width), min_depth)


def conv_bn_relu6(g: GraphBuilder, x: str, c_in: int, c_out: int, k: int, stride: int = 1,
                  group: int = 1) -> str:
    y = g.conv(x, c_in, c_out, k, stride=stride, group=group, bias=False)
    return g.relu6(g.batchnorm(y, c_out))


def separable(g: GraphBuilder, x: str, c_in: int, c_out: int, stride: int) -> str:
    """Depthwise 3x3 (stride) + BN + ReLU6, then pointwise 1x1 + BN + ReLU6."""
    y = conv_bn_relu6(g, x, c_in, c_in, 3, stride=stride, group=c_in)
    return conv_bn_relu6(g, y, c_in, c_out, 1)


def mobilenet_v1_backbone(g: GraphBuilder, x: str, c_in: int = 3, width: float = 1.0,
                          return_layers=(11, 13)) -> list[tuple[str, int]]:
    """conv0 and the 13 separable blocks; returns (name, channels) of the requested layers.

    Layer 0 is conv0 and layer i (1..13) the i-th separable block, so the default
    (11, 13) gives TF's ``Conv2d_11_pointwise`` (512 ch, stride 16) and
    ``Conv2d_13_pointwise`` (1024 ch, stride 32), the two maps SSD-MobileNet-v1 uses.
    """
    c = depth(32, width)
    y = conv_bn_relu6(g, x, c_in, c, 3, stride=2)
    outs = [(y, c)] if 0 in return_layers else []
    for i, (c_out, stride) in enumerate(MOBILENET_V1_BLOCKS, start=1):
        c_out = depth(c_out, width)
        y = separable(g, y, c, c_out, stride)
        c = c_out
        if i in return_layers:
            outs.append((y, c))
    return outs


def build_mobilenet_v1(seed: int = 0, resolution: int = 224, width: float = 1.0,
                       num_classes: int = 1001) -> onnx.ModelProto:
    """MobileNet-v1: input ``input`` [batch, 3, R, R], output ``logits`` [batch, num_classes]."""
    g = GraphBuilder("mobilenet_v1", seed)
    x = g.input("input", [BATCH, 3, resolution, resolution])
    (y, c), = mobilenet_v1_backbone(g, x, 3, width, return_layers=(13,))
    y = g.flatten(g.global_avgpool(y))
    g.output(rename(g, g.gemm(y, c, num_classes), "logits"), [BATCH, num_classes])
    return g.build(doc=build_mobilenet_v1.__doc__)
