"""3D U-Net as MLPerf Inference runs it on KiTS19 (kidney tumour segmentation).

The reference (MLCommons ``image_segmentation/pytorch/model/unet3d.py``) takes a
one-channel 128x128x128 CT patch and predicts 3 classes per voxel:

* encoder levels of 32, 64, 128, 256, 320 channels and a 320-channel bottleneck, at
  128, 64, 32, 16, 8 and 4 voxels a side: the input block is two conv blocks; each
  lower level is a 3x3x3 stride-2 conv block (the downsampling) then a 3x3x3 conv block;
* a conv block is Conv3d (3x3x3, pad 1, no bias) + InstanceNormalization (affine) +
  ReLU;
* the decoder mirrors it: ConvTranspose3d (2x2x2, stride 2, with bias, no norm), concat
  with the encoder's skip tensor on the channel axis, then two conv blocks;
* a 1x1x1 conv (with bias) gives the 3 class logits.

Input ``input`` [batch, 1, S, S, S]; output ``logits`` [batch, 3, S, S, S]. ``size``
must be a multiple of 32 (five halvings). Sliding-window inference over a whole CT
volume (overlapping patches, Gaussian blending) is outside the graph: one graph run is
one patch.

Full size: 31,190,243 trainable parameters (conv and transposed-conv weights, their
biases, InstanceNorm scale/bias) and 477.3 G multiply-accumulates per 128^3 patch.
"""

from __future__ import annotations

import onnx

from sim.workload.graphs.builder import BATCH, GraphBuilder
from sim.workload.graphs.resnet import rename

FILTERS = [32, 64, 128, 256, 320, 320]   # input block, four downsample blocks, bottleneck
NUM_CLASSES = 3


def _channels(c: int, width: float) -> int:
    return c if width == 1.0 else max(4, int(round(c * width / 4)) * 4)


def conv_block(g: GraphBuilder, x: str, c_in: int, c_out: int, stride: int = 1) -> str:
    """Conv3d 3x3x3 (no bias) -> InstanceNormalization -> ReLU."""
    y = g.conv(x, c_in, c_out, 3, stride=stride, pad=1, bias=False, dims=3)
    return g.relu(g.instance_norm(y, c_out))


def build_unet3d(seed: int = 0, size: int = 128, width: float = 1.0,
                 num_classes: int = NUM_CLASSES) -> onnx.ModelProto:
    """3D U-Net (KiTS19): input ``input`` [batch, 1, S, S, S], output ``logits``
    [batch, num_classes, S, S, S]; ``width`` scales every channel count."""
    if size % 32:
        raise ValueError(f"unet3d: size {size} is not a multiple of 32")
    g = GraphBuilder("unet3d_kits19", seed)
    x = g.input("input", [BATCH, 1, size, size, size])
    ch = [_channels(c, width) for c in FILTERS]

    y = conv_block(g, conv_block(g, x, 1, ch[0]), ch[0], ch[0])
    skips = [(y, ch[0])]
    for c_in, c_out in zip(ch[:-1], ch[1:]):
        y = conv_block(g, conv_block(g, y, c_in, c_out, stride=2), c_out, c_out)
        skips.append((y, c_out))
    c = ch[-1]
    skips.pop()                                  # the bottleneck output is y itself
    for skip, c_skip in reversed(skips):
        y = g.conv_transpose(y, c, c_skip, 2, stride=2, bias=True, dims=3)
        y = g.concat([y, skip], axis=1)
        y = conv_block(g, conv_block(g, y, 2 * c_skip, c_skip), c_skip, c_skip)
        c = c_skip
    out = g.conv(y, c, num_classes, 1, bias=True, dims=3)
    g.output(rename(g, out, "logits"), [BATCH, num_classes, size, size, size])
    return g.build(doc=__doc__)
