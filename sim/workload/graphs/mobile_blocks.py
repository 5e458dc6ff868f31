"""Building blocks shared by the MLPerf Mobile vision graphs.

Mobile networks are stacks of a few block kinds, each written here once as ONNX nodes
(every convolution without bias, followed by a BatchNormalization node, as an exported
model keeps them before a converter folds BN into the weights):

* ``conv_bn_act``: a k x k convolution, BN and an optional activation (ReLU or ReLU6);
* ``inverted_bottleneck`` (MobileNet-v2's block): 1x1 expansion to ``in * expansion``
  channels (skipped at expansion 1), k x k depthwise convolution, 1x1 linear projection,
  and a residual add when the stride is 1 and the channel count is unchanged;
* ``fused_bottleneck`` (the EdgeTPU "fused" block): one k x k convolution expands the
  channels in place of the 1x1 expansion and the depthwise convolution, then the 1x1
  linear projection and the residual add as above; at expansion 1 and stride 1 there is no
  expansion convolution (TF-Slim's ``expanded_conv`` builds none), only the projection.

Depthwise convolutions are ``Conv`` nodes with ``group`` equal to the channel count, so
the layer table counts them as grouped convolutions. Activations are ``Relu`` or ``Clip``
(ReLU6); both are elementwise ops the layer table counts.
"""

from __future__ import annotations

import numpy as np

from sim.workload.graphs.builder import GraphBuilder


def act(g: GraphBuilder, x: str, kind: str | None) -> str:
    """``relu``, ``relu6`` or None (a linear output)."""
    if kind is None:
        return x
    if kind == "relu":
        return g.relu(x)
    if kind == "relu6":
        return g.relu6(x)
    raise ValueError(f"unknown activation {kind!r}")


def weight(g: GraphBuilder, shape: tuple, gain: float = 1.0, prefix: str = "conv_w") -> str:
    """He-scaled float32 weight (fan-in = product of all but the first dimension), drawn in float32."""
    fan_in = max(1, int(np.prod(shape[1:])))
    arr = g.rng.standard_normal(shape, dtype=np.float32)
    arr *= np.float32(gain * np.sqrt(2.0 / fan_in))
    return g.const(arr, prefix)


def conv_bn_act(g: GraphBuilder, x: str, c_in: int, c_out: int, k: int, stride: int = 1,
                group: int = 1, dilation: int = 1, activation: str | None = "relu",
                gain: float = 1.0) -> str:
    """Conv (no bias, 'same' padding) -> BatchNormalization -> activation."""
    pad = (k - 1) * dilation // 2
    w = weight(g, (c_out, c_in // group, k, k), gain)
    y = g.op("Conv", [x, w], kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4,
             group=group, dilations=[dilation, dilation])
    return act(g, g.batchnorm(y, c_out), activation)


def depthwise_bn_act(g: GraphBuilder, x: str, c: int, k: int, stride: int = 1, dilation: int = 1,
                     activation: str | None = "relu") -> str:
    return conv_bn_act(g, x, c, c, k, stride, group=c, dilation=dilation, activation=activation)


def inverted_bottleneck(g: GraphBuilder, x: str, c_in: int, c_out: int, k: int = 3, stride: int = 1,
                        expansion: float = 6, activation: str = "relu6", residual: bool = True,
                        dilation: int = 1, mid: int | None = None) -> tuple[str, str]:
    """MobileNet-v2 block; returns (output, the depthwise output) for decoders that tap it."""
    mid = mid if mid is not None else int(round(c_in * expansion))
    y = x
    if mid != c_in or expansion != 1:
        y = conv_bn_act(g, y, c_in, mid, 1, activation=activation)
    dw = depthwise_bn_act(g, y, mid, k, stride, dilation, activation)
    y = conv_bn_act(g, dw, mid, c_out, 1, activation=None, gain=0.5)
    if residual and stride == 1 and c_in == c_out:
        y = g.add(y, x)
    return y, dw


def fused_bottleneck(g: GraphBuilder, x: str, c_in: int, c_out: int, k: int = 3, stride: int = 1,
                     expansion: float = 4, activation: str = "relu6", residual: bool = True) -> str:
    """EdgeTPU fused block: k x k conv to ``c_in * expansion``, 1x1 linear projection, residual."""
    mid = int(round(c_in * expansion))
    # at expansion 1 TF-Slim's expanded_conv builds no expansion layer: the block is the projection
    y = x if expansion == 1 and stride == 1 else conv_bn_act(g, x, c_in, mid, k, stride, activation=activation)
    y = conv_bn_act(g, y, mid, c_out, 1, activation=None, gain=0.5)
    if residual and stride == 1 and c_in == c_out:
        y = g.add(y, x)
    return y


def classifier_head(g: GraphBuilder, x: str, c: int, num_classes: int) -> str:
    """GlobalAveragePool, Flatten, Gemm (with bias) to ``num_classes`` logits."""
    return g.gemm(g.flatten(g.global_avgpool(x)), c, num_classes)


def upsample(g: GraphBuilder, x: str, factor: float) -> str:
    """Bilinear Resize of NCHW ``x`` by ``factor`` in both spatial dimensions (scales input)."""
    scales = g.const(np.array([1.0, 1.0, factor, factor], np.float32), "scales")
    roi = g.const(np.zeros(0, np.float32), "roi")
    return g.op("Resize", [x, roi, scales], mode="linear", coordinate_transformation_mode="half_pixel")


def resize_like(g: GraphBuilder, x: str, like: str) -> str:
    """Bilinear Resize of NCHW ``x`` to the height and width of ``like`` (sizes from its shape)."""
    n_c = g.op("Slice", [g.op("Shape", [x]), g.const(np.array([0], np.int64), "starts"),
                         g.const(np.array([2], np.int64), "ends")])
    h_w = g.op("Slice", [g.op("Shape", [like]), g.const(np.array([2], np.int64), "starts"),
                         g.const(np.array([4], np.int64), "ends")])
    sizes = g.op("Concat", [n_c, h_w], axis=0)
    roi = g.const(np.zeros(0, np.float32), "roi")
    scales = g.const(np.zeros(0, np.float32), "scales")
    return g.op("Resize", [x, roi, scales, sizes], mode="linear", coordinate_transformation_mode="half_pixel")
