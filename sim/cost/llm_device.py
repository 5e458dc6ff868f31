"""Accelerators as an LLM step cost sees them: peak FLOPS per precision, memory bandwidth and
capacity, and the link between devices of one node.

Each figure is the vendor's datasheet value (dense, without sparsity), named with its source
below. Nothing here is measured or fitted: the efficiencies that turn peaks into step times are
in ``sim.cost.llm_roofline.RooflineParams`` (calibration on published results is a later step).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sim.errors import InputError


@dataclass(frozen=True)
class LLMDevice:
    name: str
    peak_flops: dict                # precision -> FLOP/s (dense tensor-core peak)
    memory_bandwidth_Bps: float     # HBM bytes/s
    memory_bytes: float
    link_bandwidth_Bps: float       # device-to-device (NVLink) bytes/s, one direction
    source: str = ""
    fallback: dict = field(default_factory=lambda: dict(FALLBACK))

    def flops_for(self, precision: str) -> tuple[float, str]:
        """(peak FLOP/s, the precision the math runs in) for values stored in ``precision``:
        the device's own peak for it, else the next wider precision it has (weights of 4 bits
        are multiplied in FP8 on a device without FP4 units, FP8 in BF16 on one without FP8)."""
        p = precision
        while p not in self.peak_flops:
            if p not in self.fallback:
                raise InputError(f"device {self.name}: no peak FLOPS for precision {precision!r}; "
                                 f"expected one of {sorted(self.peak_flops)}")
            p = self.fallback[p]
        return self.peak_flops[p], p


#: The precision a device without units for a format computes it in (next wider one).
FALLBACK = {"mxfp4": "fp4", "fp4": "fp8", "int4": "int8", "int8": "fp8", "fp8": "bf16", "fp16": "bf16",
            "bf16": "fp32"}

_T = 1e12
DEVICES: dict[str, LLMDevice] = {
    "h100-sxm": LLMDevice(
        "h100-sxm", {"bf16": 989 * _T, "fp8": 1979 * _T, "int8": 1979 * _T, "fp32": 67 * _T}, 3.35e12, 80e9, 450e9,
        source="NVIDIA H100 Tensor Core GPU datasheet (2023), SXM column: 989 TFLOPS BF16 and 1,979 FP8 dense, "
               "3.35 TB/s HBM3, 80 GB; NVLink 900 GB/s total = 450 GB/s per direction"),
    "h200-sxm": LLMDevice(
        "h200-sxm", {"bf16": 989 * _T, "fp8": 1979 * _T, "int8": 1979 * _T, "fp32": 67 * _T}, 4.8e12, 141e9, 450e9,
        source="NVIDIA H200 Tensor Core GPU datasheet (2024), SXM column: 989 TFLOPS BF16 and 1,979 FP8 dense, "
               "4.8 TB/s HBM3e, 141 GB; NVLink 900 GB/s total = 450 GB/s per direction"),
    "a100-sxm": LLMDevice(
        "a100-sxm", {"bf16": 312 * _T, "int8": 624 * _T, "fp32": 19.5 * _T}, 2.039e12, 80e9, 300e9,
        fallback={**FALLBACK, "fp8": "bf16", "int8": "int8"},
        source="NVIDIA A100 Tensor Core GPU datasheet (2021), 80GB SXM column: 312 TFLOPS BF16 dense, "
               "624 TOPS INT8, 2,039 GB/s, 80 GB; NVLink 600 GB/s total = 300 GB/s per direction"),
    "b200": LLMDevice(
        "b200", {"bf16": 2250 * _T, "fp8": 4500 * _T, "int8": 4500 * _T, "fp4": 9000 * _T, "fp32": 75 * _T},
        7.7e12, 180e9, 900e9,
        source="NVIDIA DGX B200 / HGX B200 datasheet (2024), per GPU: about 2.25 PFLOPS BF16, 4.5 FP8, 9 FP4 dense, "
               "7.7 TB/s, 180 GB; NVLink 5 1.8 TB/s total = 900 GB/s per direction"),
}


def device(name: str, source: str = "LLM system") -> LLMDevice:
    if name not in DEVICES:
        raise InputError(f"{source}: field 'device' = {name!r}: expected one of {sorted(DEVICES)}")
    return DEVICES[name]
