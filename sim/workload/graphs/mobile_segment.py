"""MLPerf Mobile's segmenters: DeepLabV3 with MobileNetV2 (v0.7 to v2.0) and MOSAIC (v2.0 on).

Both take a 512x512 ADE20K image (``input`` [batch, 3, 512, 512]) and return per-pixel
``logits`` [batch, num_classes, 512, 512] for the 31 ADE20K classes MLPerf Mobile keeps
plus background (32; mlcommons/mobile_app_open ``tasks.pbtxt``; the quantised DeepLab
TFLite file outputs 512x512x32). MLPerf's TFLite files end in an ArgMax over classes; the
graphs here stop at the logits. Both run uint8-quantised on NPUs and DSPs.

**DeepLabV3-MobileNetV2** (``build_deeplabv3_mobilenetv2``; MLPerf's
``deeplabv3_mnv2_ade20k``, trained with TF DeepLab, mlcommons/mobile_open
``vision/deeplab``): MobileNetV2 (Sandler et al. 2018, arXiv:1801.04381) without its last
1x1 convolution, at output stride 16 (the last stride-2 stage runs at stride 1 with
dilation 2), and the reduced "Mobile DeepLabv3" head of that paper: an image-pooling
branch (global average pool, 1x1 conv to 256, BN, ReLU, upsampled) and a 1x1 conv branch
(256, BN, ReLU), concatenated and projected to 256 (BN, ReLU), a 1x1 logits conv with
bias and a bilinear x16 upsampling. Published: 2.11 M parameters and 2.75 G MAdds for
this head on MobileNetV2 at output stride 16 (MobileNetV2 paper, Table 7, "MNet V2*, OS 16,
no ASPP", 21 PASCAL classes), and 2.7 G MAdds for the MLPerf v1.0 segmenter
(mlcommons/mobile_open ``vision/mosaic/README.md``). This graph: 2,116,384 parameters and
2.607 G MACs at 512x512 with 32 classes; 2,113,557 and 2.741 G at the paper's 513x513 with
21 classes (+0.2%, -0.3%). Any input size works (the upsampling reads the input's shape).

**MOSAIC** (``build_mosaic``; Wang et al. 2021, arXiv:2112.11623; MLPerf's
``mobile_segmenter_r4``): the TF model garden's ``official/projects/mosaic`` with the
``MobileNetMultiAVGSeg`` backbone at output stride 16 (official/vision/modeling/backbones/
mobilenet.py; inverted bottlenecks of (kernel, stride, channels, expansion) (3,2,32,3),
(3,1,32,2); (5,2,64,5), (3,1,64,3), (3,1,64,2), (3,1,64,3); (5,2,128,6), (3,1,128,3)x3,
(3,1,160,6), (3,1,160,4); (3,2->1 dilated,192,6), (5,1,96,2), (5,1,96,4)x2; ReLU); the
MOSAIC encoder on the last map (96 channels at stride 16): the map itself, three
spatial-pyramid branches (average pools to 4x4, 8x8, 16x16 bins, a shared multi-kernel
group convolution: the channels split in two groups, a 3x3 and a 5x5 depthwise conv,
each with BN and ReLU and a 1x1 conv to 64 with BN and ReLU, concatenated to 128, then
upsampled) and a global-pool branch (1x1 conv to 64, BN, ReLU), concatenated (544) and
projected to 128 (BN, ReLU); the decoder: a concat-merge with the depthwise output of the
last stride-8 block (192 channels; 1x1 to 64, 3x3 depthwise, 1x1 to num_classes, each
with BN and ReLU) and a sum-merge with the depthwise output of the last stride-4 block
(64 channels, 1x1 to num_classes with BN and ReLU), then a bilinear x4 upsampling to the
input size. Published: 2.98 G MAdds at 512x512 (mlcommons/mobile_open
``vision/mosaic/README.md``); no parameter count was found. This graph: 1,699,520
parameters and 2.602 G MACs (-12.7%): the public model-garden configuration (Cityscapes
``mosaic_mnv35``) with 32 classes; the head settings of MLPerf's ADE20K export are not
published, and the gap is not explained. The input size must be a multiple of 256 (the
pyramid bins divide the stride-16 map evenly).
"""

from __future__ import annotations

import numpy as np
import onnx

from sim.workload.graphs.builder import BATCH, GraphBuilder
from sim.workload.graphs.mobile_blocks import (
    conv_bn_act,
    depthwise_bn_act,
    inverted_bottleneck,
    resize_like,
    upsample,
)
from sim.workload.graphs.resnet import rename

# MobileNetV2: (expansion, channels, repeats, stride)
MOBILENET_V2_STAGES = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                       (6, 160, 3, 2), (6, 320, 1, 1)]

# MobileNetMultiAVGSeg inverted bottlenecks: (kernel, stride, channels, expansion, tapped by the decoder)
MULTIAVG_SEG_BLOCKS = [
    (3, 2, 32, 3, False), (3, 1, 32, 2, True),
    (5, 2, 64, 5, False), (3, 1, 64, 3, False), (3, 1, 64, 2, False), (3, 1, 64, 3, True),
    (5, 2, 128, 6, False), (3, 1, 128, 3, False), (3, 1, 128, 3, False), (3, 1, 128, 3, False),
    (3, 1, 160, 6, False), (3, 1, 160, 4, False),
    (3, 2, 192, 6, False), (5, 1, 96, 2, False), (5, 1, 96, 4, False), (5, 1, 96, 4, False),
]


def _check(resolution: int, num_classes: int, multiple: int = 64) -> tuple[int, int]:
    resolution, num_classes = int(resolution), int(num_classes)
    if resolution < max(multiple, 64) or resolution % multiple:
        raise ValueError(f"resolution {resolution}: expected a multiple of {multiple}, at least {max(multiple, 64)}")
    if num_classes < 2:
        raise ValueError(f"num_classes {num_classes}: expected at least 2")
    return resolution, num_classes


def _logits(g: GraphBuilder, x: str, c_in: int, num_classes: int) -> str:
    w = g.weight((num_classes, c_in, 1, 1), prefix="logits_w", scale=0.5)
    return g.op("Conv", [x, w, g.bias(num_classes, "logits_b")], kernel_shape=[1, 1])


def build_deeplabv3_mobilenetv2(seed: int = 0, resolution: int = 512, num_classes: int = 32,
                                width: float = 1.0) -> onnx.ModelProto:
    """DeepLabV3 (MobileNetV2, output stride 16): ``input`` -> ``logits`` [batch, C, R, R]."""
    resolution, num_classes = _check(resolution, num_classes, multiple=1)

    def ch(c: int) -> int:
        return max(8, int(round(c * width / 8)) * 8) if width != 1.0 else c

    g = GraphBuilder("deeplabv3_mobilenetv2", seed)
    x = g.input("input", [BATCH, 3, resolution, resolution])
    c = ch(32)
    y = conv_bn_act(g, x, 3, c, 3, stride=2, activation="relu6")
    stride, rate = 2, 1
    for e, c_out, n, s in MOBILENET_V2_STAGES:
        for i in range(n):
            block_stride, dilation = (s if i == 0 else 1), rate
            if block_stride == 2 and stride == 16:     # output stride 16 reached: dilate instead
                block_stride, rate = 1, rate * 2
            elif block_stride == 2:
                stride *= 2
            y, _ = inverted_bottleneck(g, y, c, ch(c_out), 3, block_stride, e, "relu6", dilation=dilation)
            c = ch(c_out)
    pooled = conv_bn_act(g, g.global_avgpool(y), c, 256, 1, activation="relu")
    branch = conv_bn_act(g, y, c, 256, 1, activation="relu")
    pooled = resize_like(g, pooled, branch)
    y = conv_bn_act(g, g.concat([pooled, branch], axis=1), 512, 256, 1, activation="relu")
    y = resize_like(g, _logits(g, y, 256, num_classes), x)
    g.output(rename(g, y, "logits"), [BATCH, num_classes, resolution, resolution])
    return g.build(doc=build_deeplabv3_mobilenetv2.__doc__)


def _group_conv(g: GraphBuilder, x: str, c: int, weights: dict) -> str:
    """MOSAIC multi-kernel group conv: split channels in two, 3x3 / 5x5 depthwise + 1x1 to 64, concat."""
    halves = g.op("Split", [x, g.const(np.array([c // 2, c // 2], np.int64), "split")], n_out=2, axis=1)
    outs = []
    for half, k in zip(halves, (3, 5)):
        wd, wp = weights[k]
        y = g.op("Conv", [half, wd], kernel_shape=[k, k], pads=[k // 2] * 4, group=c // 2)
        y = g.relu(g.op("BatchNormalization", [y] + weights[("bn_dw", k)], epsilon=1e-3))
        y = g.op("Conv", [y, wp], kernel_shape=[1, 1])
        outs.append(g.relu(g.op("BatchNormalization", [y] + weights[("bn_pw", k)], epsilon=1e-3)))
    return g.concat(outs, axis=1)


def _bn_params(g: GraphBuilder, c: int) -> list[str]:
    """The four BatchNormalization inputs, as ``GraphBuilder.batchnorm`` draws them (for reuse)."""
    return [g.const((1.0 + 0.05 * g.rng.standard_normal(c)).astype(np.float32), "bn_scale"),
            g.const((0.01 * g.rng.standard_normal(c)).astype(np.float32), "bn_b"),
            g.const((0.01 * g.rng.standard_normal(c)).astype(np.float32), "bn_mean"),
            g.const((1.0 + 0.05 * np.abs(g.rng.standard_normal(c))).astype(np.float32), "bn_var")]


def build_mosaic(seed: int = 0, resolution: int = 512, num_classes: int = 32) -> onnx.ModelProto:
    """MOSAIC (MobileNetMultiAVGSeg, output stride 16): ``input`` -> ``logits`` [batch, C, R, R]."""
    resolution, num_classes = _check(resolution, num_classes, multiple=256)
    g = GraphBuilder("mosaic", seed)
    x = g.input("input", [BATCH, 3, resolution, resolution])
    y = conv_bn_act(g, x, 3, 32, 3, stride=2, activation="relu")
    c, stride, rate, taps = 32, 2, 1, []
    for k, s, c_out, e, tap in MULTIAVG_SEG_BLOCKS:
        block_stride, dilation = s, 1
        if s == 2 and stride == 16:
            block_stride, rate = 1, rate * 2
        elif s == 2:
            stride *= 2
        if block_stride == 1 and rate > 1 and s == 1:
            dilation = rate
        y, dw = inverted_bottleneck(g, y, c, c_out, k, block_stride, e, "relu", dilation=dilation)
        if tap:
            taps.append((dw, c * e))
        c = c_out
    # encoder: the map, three pyramid bins through one shared group conv, the global branch
    side = resolution // 16
    shared = {k: (g.weight((c // 2, 1, k, k), prefix="mk_dw"), g.weight((64, c // 2, 1, 1), prefix="mk_pw"))
              for k in (3, 5)}
    for k in (3, 5):
        shared[("bn_dw", k)] = _bn_params(g, c // 2)
        shared[("bn_pw", k)] = _bn_params(g, 64)
    branches = [y]
    for bins in (4, 8, 16):
        pooled = g.avgpool(y, side // bins)
        branches.append(upsample(g, _group_conv(g, pooled, c, shared), side // bins))
    glob = conv_bn_act(g, g.global_avgpool(y), c, 64, 1, activation="relu")
    branches.append(upsample(g, glob, side))
    enc = conv_bn_act(g, g.concat(branches, axis=1), c + 3 * 128 + 64, 128, 1, activation="relu")
    # decoder stage 1: concat-merge with the stride-8 tap
    (tap4, c4), (tap8, c8) = taps
    y = g.concat([upsample(g, enc, 2), tap8], axis=1)
    y = conv_bn_act(g, y, 128 + c8, 64, 1, activation="relu")
    y = depthwise_bn_act(g, y, 64, 3, activation="relu")
    y = conv_bn_act(g, y, 64, num_classes, 1, activation="relu")
    # decoder stage 2: sum-merge with the stride-4 tap
    high = conv_bn_act(g, tap4, c4, num_classes, 1, activation="relu")
    y = g.add(upsample(g, y, 2), high)
    y = upsample(g, y, 4)
    g.output(rename(g, y, "logits"), [BATCH, num_classes, resolution, resolution])
    return g.build(doc=build_mosaic.__doc__)
