"""Which numeric precision a prediction assumes, and why.

MLPerf Inference's closed division lets a submitter use any numerics that meet the
model's quality target (inference rules, "Model equivalence"): 99% of the FP32 reference
accuracy for ResNet-50, SSD-MobileNet, SSD-ResNet34, RetinaNet and BERT-99, 99.9% for
BERT-99.9, DLRM-99.9 and 3D-UNet-99.9. Published submissions meet 99% with INT8
post-training quantisation (and FP8 for BERT on GPUs with FP8 Tensor Cores), and 99.9%
with FP16. The rules here, in order:

1. A precision named in the system name or framework (``int8``, ``bf16``, ``fp16``,
   ``fp32``) that the device has a peak for: the submitter said what it ran.
2. A reference implementation (``reference`` in the system name, or a plain
   onnxruntime / TensorFlow / TFLite / ArmNN / TVM stack on a CPU): FP32, the reference
   models' precision.
3. Otherwise the fastest precision the quality target allows that the device has a peak
   for: for 99% targets FP8 for BERT where the device lists FP8, else INT8, else FP16 /
   BF16, else FP32; for 99.9% targets FP16, else BF16, else FP32.
"""

from __future__ import annotations

import re

from sim.hw.profiles import Profile

QUALITY = {"resnet50": 0.99, "ssd-mobilenet": 0.99, "ssd-resnet34": 0.99, "retinanet": 0.99,
           "bert-99": 0.99, "bert-99.9": 0.999, "dlrm-99": 0.99, "dlrm-99.9": 0.999, "3d-unet-99": 0.99,
           "3d-unet-99.9": 0.999, "dlrm": 0.99, "dlrm-v2-99": 0.99, "dlrm-v2-99.9": 0.999, "3d-unet": 0.99}
TRANSFORMERS = {"bert-99", "bert-99.9"}
CPU_REFERENCE_STACKS = ("onnxruntime", "tensorflow", "tf v2", "tf ", "tflite", "armnn", "tvm")


def choose(profile: Profile, model: str, system: str = "", framework: str = "") -> tuple[str, str]:
    """(precision, reason) for ``model`` on ``profile``."""
    text = f" {system} {framework} ".lower()
    peaks = profile.peak_tops
    for prec in ("int8", "bf16", "fp16", "fp32"):
        if re.search(rf"(^|[^a-z0-9]){prec}([^a-z0-9]|$)", text) and prec in peaks:
            return prec, f"named in the system or framework ({prec})"
    if "reference" in text or (profile.kind == "cpu" and any(s in text for s in CPU_REFERENCE_STACKS)
                               and "int8" not in text):
        if "fp32" in peaks:
            return "fp32", "reference implementation / generic framework: the FP32 reference model"
    target = QUALITY.get(model, 0.99)
    if target <= 0.99:
        order = (["fp8"] if model in TRANSFORMERS else []) + ["int8", "fp16", "bf16", "fp32"]
        why = "99% quality target: post-training INT8 (FP8 for BERT on FP8 Tensor Cores) meets it"
    else:
        order = ["fp16", "bf16", "fp32"]
        why = "99.9% quality target: FP16 meets it, INT8 does not reliably"
    for prec in order:
        if prec in peaks:
            return prec, f"{why}; fastest listed precision of the device"
    return sorted(peaks)[0], "only precision listed by the device"
