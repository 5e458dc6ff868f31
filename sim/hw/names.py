"""Accelerator names as published -> hardware profile names.

Published results name one part many ways ("A100-PCIE-40GB", "NVIDIA A100-PCIe",
"NVIDIA A100_PCIe_80GB"); ``normalise`` maps such a name (with the row's accelerator kind)
to the short profile name of ``hw_profiles/`` (``a100-pcie``), and says whether the part
was partitioned with MIG (``(7x1g.10gb MIG)``: seven instances of one seventh of a GPU).

Rules are tried in order; the first that matches wins. A name no rule matches gives
``None``: the caller reports the row as unsupported, never a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sim.hw import profiles


@dataclass(frozen=True)
class DeviceName:
    profile: str                 # hw_profiles/<profile>.yaml
    mig_slices: int = 0          # compute slices per MIG instance, of the profile's mig_slices (0 = whole GPU)
    mig_instances: int = 0       # MIG instances per GPU used by the system (0 = whole GPU)


def _clean(name: str) -> str:
    s = name.lower().replace("®", "").replace("™", "").replace("(tm)", "").replace("(r)", "")
    s = s.replace("_", "-")
    return re.sub(r"\s+", " ", s).strip()


# (pattern on the cleaned name, profile) -- order matters: specific before general
_GPU_RULES = [
    # NVIDIA DRIVE A100 (automotive): not an A100 PCIe card (ResNet-50 SingleStream 0.77 ms
    # against 0.42-0.54 ms for A100 PCIe cards) and no datasheet in the catalog
    (r"\bdrive\b", None),
    # LLM-era parts (MLPerf Inference v4.1-v6.0 LLM results); a system listing two kinds of
    # accelerator ("MI300X ... (x32), MI325X ... (x16)") is mixed: no single profile
    (r"mi300x.*mi325x|mi325x.*mi300x", None),
    (r"gh200.*144 ?gb", "gh200-144gb"),
    (r"gh200.*96 ?gb", "gh200-96gb"),
    (r"gh200", None),                                   # GH200 without its memory size: 96 or 144 GB
    (r"\bgb200\b", "gb200"),
    (r"\bgb300\b", "gb300"),
    (r"\bb300\b", "b300"),
    (r"\bb200\b", "b200"),
    (r"rtx pro 6000 blackwell server", "rtx-pro-6000-server"),
    (r"rtx pro 4500 blackwell", "rtx-pro-4500"),
    (r"rtx[- ]2000e[- ]ada", "rtx-2000e-ada"),
    (r"\bmi355x\b", "mi355x"),
    (r"\bmi350x\b", "mi350x"),
    (r"\bmi325x\b", "mi325x"),
    (r"\bmi300x\b", "mi300x"),
    (r"arc pro b50\b", "arc-pro-b50"),
    (r"arc pro b60\b", "arc-pro-b60"),                  # the B60 Dual card: two of these GPUs
    (r"arc pro b70\b", "arc-pro-b70"),
    (r"jetson agx thor|\bagx thor\b|jetson t5000", "agx-thor"),
    (r"gaudi ?3\b|\bhl-32[58]", "gaudi3"),                # results may file Gaudi as gpu or asic
    (r"gaudi ?2\b|\bhl-225", "gaudi2"),
    (r"h200", "h200-sxm"),
    (r"h100.*nvl", "h100-nvl"),
    (r"h100.*pcie", "h100-pcie"),
    (r"h100", "h100-sxm"),
    (r"l40s", "l40s"),
    (r"\bl40\b", "l40"),
    (r"\bl4\b", "l4"),
    (r"a100.*sxm.*40gb|a100-sxm4-40gb|a100-sxm4($| \()|1g\.5gb", "a100-sxm-40gb"),
    (r"a100.*sxm", "a100-sxm"),
    (r"a100.*pcie.*80gb", "a100-pcie-80gb"),
    (r"a100.*pcie", "a100-pcie"),
    (r"\ba30\b", "a30"),
    (r"\ba40\b", "a40"),
    (r"\ba10\b", "a10"),
    (r"\ba2\b", "a2"),
    (r"\bt4\b", "t4"),
    (r"rtx 4090", "rtx-4090"),
    (r"quadro rtx 8000", "quadro-rtx-8000"),
    (r"quadro rtx 6000", "quadro-rtx-6000"),
    (r"titan rtx", "titan-rtx"),
    (r"v100s", "v100s"),
    (r"xavier nx", "xavier-nx"),
    (r"xavier", "agx-xavier"),
    (r"orin nx", "orin-nx"),
    (r"orin", "agx-orin"),
]
_ASIC_RULES = [
    (r"cloud ai 100.*ultra", "cloud-ai-100-ultra"),
    (r"cloud ai 100.*dm\.2e", "cloud-ai-100-dm2e"),
    (r"cloud ai 100.*dm\.2", "cloud-ai-100-dm2"),
    (r"cloud ai 100.*pro", "cloud-ai-100-pro"),
    (r"^(?!.*lite).*cloud ai 100.*(pcie|hhhl|standard)", "cloud-ai-100-standard"),   # Lite: no public specs
    (r"\bgoya\b", "goya"),
    (r"\btpu[- ]v5e\b", "tpu-v5e"),
    (r"\btpu[- ]v6e?\b|trillium", "tpu-v6e"),
]
_FPGA_RULES = [
    (r"vck5000", "vck5000"),
    (r"alveo u250|\bu250\b", "u250"),
]
_DSP_RULES = [
    (r"hexagon.*snapdragon 855|snapdragon 855.*hexagon|hexagon 690", "hexagon-855-hvx"),
    (r"hexagon.*snapdragon x elite", "hexagon-x-elite"),
]
_CPU_RULES = [
    (r"8592\+", "xeon-8592"),
    (r"8480\+?", "xeon-8480"),
    (r"sapphire rapids", "xeon-8480"),
    (r"platinum 8380h|gold 8380h", "xeon-8380h"),
    (r"platinum 8380\b", "xeon-8380"),
    (r"platinum 8352m", "xeon-8352m"),
    (r"gold 6330\b", "xeon-6330"),
    (r"gold 6338\b", "xeon-6338"),
    (r"platinum 8280m?\b", "xeon-8280"),
    (r"platinum 8276\b", "xeon-8276"),
    (r"gold 6258r", "xeon-6258r"),
    (r"gold 6248r", "xeon-6248r"),
    (r"xeon.* 6980p", "xeon-6980p"),
    (r"xeon.* 6787p", "xeon-6787p"),
    (r"nvidia carmel", "carmel"),
    (r"cortex-a78ae", "cortex-a78ae"),
    (r"rk3588", "rk3588"),
    (r"a311d2|s922x|cortex-a73 mp4 \(big\)", "cortex-a73"),
    (r"cortex-a72 mp4|bcm2835", "cortex-a72"),
    (r"cortex-a72 mp2", "rk3399"),
    (r"ryzen 9 7950x", "ryzen-7950x"),
    (r"i9-13900k", "core-i9-13900k"),
    (r"^local$", "local-cpu"),
]
RULES = {"gpu": _GPU_RULES, "asic": _ASIC_RULES, "fpga": _FPGA_RULES, "dsp": _DSP_RULES, "cpu": _CPU_RULES}

_MIG = re.compile(r"(\d+)\s*x\s*(\d+)g\.\d+gb")


def normalise(accelerator: str, kind: str | None = None) -> DeviceName | None:
    """The profile behind a published accelerator name, or None when no profile covers it.

    ``kind`` (gpu, asic, fpga, dsp, cpu) narrows the rules; without it every kind is tried.
    """
    if not accelerator:
        return None
    if accelerator in profiles.names():        # a profile's own name (what-if systems)
        return DeviceName(accelerator)
    s = _clean(accelerator)
    kinds = [kind] if kind in RULES else list(RULES)
    for k in kinds:
        for pattern, profile in RULES[k]:
            if re.search(pattern, s):
                if profile is None:                 # a known part without a profile
                    return None
                m = _MIG.search(s) if k == "gpu" else None
                if m:
                    return DeviceName(profile, mig_slices=int(m.group(2)), mig_instances=int(m.group(1)))
                return DeviceName(profile)
    return None


def is_grid_vgpu(accelerator: str) -> bool:
    """A virtual GPU share (``GRID T4-16Q``, ``A10-24Q``): the whole GPU's profile applies."""
    return bool(re.search(r"-\d+q\b", _clean(accelerator)))
