"""EDSR F32B5, the x2 super-resolution network of MLPerf Mobile v3.0 onwards (``edsr``).

Lim et al. 2017 (EDSR, CVPR workshops) shrunk for phones by MLCommons: 32 feature
channels and 5 residual blocks, scale 2 (mlcommons/mobile_open ``vision/edsr``; the
Keras summary ``models_and_checkpoints/checkpoints/f32b5/model.txt``): a 3x3 convolution
3 -> 32; five residual blocks (3x3 conv, ReLU, 3x3 conv, add); a 3x3 convolution and a
global residual add to the first convolution's output; a 3x3 convolution 32 -> 12 and a
depth-to-space by 2 to 3 channels at twice the size, clipped to the pixel range. All
convolutions have a bias and no normalisation. Published: 106,092 parameters (that
summary); this graph has the same count. MLPerf Mobile feeds 960x540 low-resolution
images (``tasks.pbtxt``: ``image_width: 960``, ``image_height: 540``) and checks PSNR at
1920x1080; DSPs and NPUs run the int8 model (``edsr_f32b5_full_qint8.tflite``).

``input`` [batch, 3, H, W] float32 -> ``output`` [batch, 3, 2H, 2W].
"""

from __future__ import annotations

import numpy as np
import onnx

from sim.workload.graphs.builder import BATCH, GraphBuilder
from sim.workload.graphs.resnet import rename


def edsr_parameter_count(features: int = 32, blocks: int = 5, scale: int = 2) -> int:
    f = features
    conv = 9 * f * f + f
    return (9 * 3 * f + f) + blocks * 2 * conv + conv + (9 * f * 3 * scale * scale + 3 * scale * scale)


def edsr_macs(height: int, width: int, features: int = 32, blocks: int = 5, scale: int = 2) -> int:
    """Multiply-accumulates per image: every 3x3 convolution runs at the input resolution."""
    f = features
    per_pixel = 9 * 3 * f + (2 * blocks + 1) * 9 * f * f + 9 * f * 3 * scale * scale
    return per_pixel * height * width


def build_edsr(seed: int = 0, height: int = 540, width: int = 960, features: int = 32, blocks: int = 5,
               scale: int = 2) -> onnx.ModelProto:
    """EDSR (F32B5 x2 by default): ``input`` [batch, 3, H, W] -> ``output`` [batch, 3, sH, sW]."""
    height, width, features, blocks, scale = (int(v) for v in (height, width, features, blocks, scale))
    if min(height, width, features, blocks, scale) < 1:
        raise ValueError(f"EDSR height={height} width={width} features={features} blocks={blocks} "
                         f"scale={scale}: expected positive integers")
    g = GraphBuilder("edsr", seed)
    x = g.input("input", [BATCH, 3, height, width])
    head = g.conv(x, 3, features, 3)
    y = head
    for _ in range(blocks):
        t = g.relu(g.conv(y, features, features, 3))
        w = g.weight((features, features, 3, 3), prefix="conv_w", scale=0.1)
        t = g.op("Conv", [t, w, g.bias(features, "conv_b")], kernel_shape=[3, 3], pads=[1] * 4)
        y = g.add(y, t)
    y = g.add(head, g.conv(y, features, features, 3))
    y = g.conv(y, features, 3 * scale * scale, 3)
    y = g.op("DepthToSpace", [y], blocksize=scale, mode="DCR")
    y = g.op("Clip", [y, g.const(np.array(0.0, np.float32), "zero"), g.const(np.array(255.0, np.float32), "max")])
    g.output(rename(g, y, "output"), [BATCH, 3, height * scale, width * scale])
    return g.build(doc=build_edsr.__doc__)
