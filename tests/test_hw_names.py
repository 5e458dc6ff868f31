"""Accelerator names as written in results.csv map to profile names."""

import pytest

from sim.hw.names import normalise

CASES = [
    ("NVIDIA A100-SXM-80GB", "gpu", "a100-sxm", 0, 0),
    ("NVIDIA A100-SXM4-80GB CTS", "gpu", "a100-sxm", 0, 0),
    ("NVIDIA A100-SXM4", "gpu", "a100-sxm-40gb", 0, 0),
    ("NVIDIA A100-SXM-40GB", "gpu", "a100-sxm-40gb", 0, 0),
    ("A100-PCIE-40GB", "gpu", "a100-pcie", 0, 0),
    ("NVIDIA A100-PCIe", "gpu", "a100-pcie", 0, 0),
    ("NVIDIA A100_PCIe_80GB", "gpu", "a100-pcie-80gb", 0, 0),
    ("NVIDIA A100-SXM-80GB (7x1g.10gb MIG)", "gpu", "a100-sxm", 1, 7),
    ("NVIDIA A100-PCIe-80GB (1x1g.10gb MIG)", "gpu", "a100-pcie-80gb", 1, 1),
    ("Nvidia Tesla T4", "gpu", "t4", 0, 0),
    ("NVIDIA GRID T4-16Q", "gpu", "t4", 0, 0),
    ("NVIDIA A10-24Q", "gpu", "a10", 0, 0),
    ("NVIDIA H100-SXM-80GB", "gpu", "h100-sxm", 0, 0),
    ("NVIDIA H100-PCIe-80GB", "gpu", "h100-pcie", 0, 0),
    ("NVIDIA H100-NVL-94GB", "gpu", "h100-nvl", 0, 0),
    ("NVIDIA L4-PCIe-24GB", "gpu", "l4", 0, 0),
    ("NVIDIA L40", "gpu", "l40", 0, 0),
    ("NVIDIA Jetson AGX Orin", "gpu", "agx-orin", 0, 0),
    ("NVIDIA Xavier NX", "gpu", "xavier-nx", 0, 0),
    ("QUALCOMM Cloud AI 100 PCIe/HHHL Pro", "asic", "cloud-ai-100-pro", 0, 0),
    ("QUALCOMM Cloud AI 100 PCIe HHHL", "asic", "cloud-ai-100-standard", 0, 0),
    ("QUALCOMM Cloud AI 100 DM.2e", "asic", "cloud-ai-100-dm2e", 0, 0),
    ("QUALCOMM Cloud AI 100 Ultra", "asic", "cloud-ai-100-ultra", 0, 0),
    ("Goya", "asic", "goya", 0, 0),
    ("Xilinx VCK5000", "fpga", "vck5000", 0, 0),
    ("xilinx_vck5000_v4e", "fpga", "vck5000", 0, 0),
    ("Xilinx Alveo U250", "fpga", "u250", 0, 0),
    ("INTEL(R) XEON(R) PLATINUM 8592+", "cpu", "xeon-8592", 0, 0),
    ("Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz", "cpu", "xeon-8380", 0, 0),
    ("Intel(R) Xeon(R) Platinum 8380H CPU @ 2.90GHz", "cpu", "xeon-8380h", 0, 0),
    ("Intel(R) Xeon(R) (code named Sapphire Rapids)", "cpu", "xeon-8480", 0, 0),
    ("Qualcomm Hexagon(TM) NPU [Qualcomm Snapdragon X Elite Platform]", "dsp", "hexagon-x-elite", 0, 0),
]


@pytest.mark.parametrize("name, kind, profile, slices, instances", CASES)
def test_real_names(name, kind, profile, slices, instances):
    got = normalise(name, kind)
    assert got is not None and got.profile == profile
    assert (got.mig_slices, got.mig_instances) == (slices, instances)


@pytest.mark.parametrize("name, kind", [("QUALCOMM Cloud AI 100 PCIe/HHHL Lite", "asic"), ("Arm Mali-G52 MP6 GPU", "gpu"),
                                        ("FuriosaAI Warboy", "asic"), ("", "gpu"),
                                        ("NVIDIA Drive-A100-PCIe", "gpu")])
def test_unknown_parts_give_none(name, kind):
    assert normalise(name, kind) is None


def test_every_name_in_the_shared_file_maps_or_is_none():
    import csv
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "shared" / "data" / "mlperf_results" / "results.csv"
    if not path.is_file():
        pytest.skip("shared results file not present")
    rows = list(csv.DictReader(path.open()))
    mapped = sum(normalise(r["accelerator"], r["accelerator_kind"]) is not None for r in rows)
    assert mapped / len(rows) > 0.85
