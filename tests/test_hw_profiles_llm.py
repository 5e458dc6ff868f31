"""LLM device profiles: the figures an LLM step cost reads, checked against independent facts
(vendor datasheet values quoted here, ratios the architectures fix, and the memory each
published result states for its accelerator)."""

import csv
import re

import pytest
import yaml

from sim.errors import InputError
from sim.hw import llm_rows, names, profiles
from sim.paths import SHARED_DATA

LLM_PROFILES = ["h100-sxm", "h200-sxm", "h100-nvl", "h100-pcie", "a100-sxm", "b200", "b300", "gb200", "gh200-144gb",
                "gh200-96gb", "l40s", "l4", "rtx-4090", "rtx-pro-6000-server", "rtx-pro-4500", "rtx-2000e-ada",
                "agx-orin", "mi300x", "mi325x", "mi350x", "mi355x", "arc-pro-b50", "arc-pro-b60", "arc-pro-b70",
                "tpu-v5e", "tpu-v6e", "gb300", "agx-thor", "gaudi2", "gaudi3"]
CSV = SHARED_DATA / "mlperf_llm_results" / "results.csv"


@pytest.mark.parametrize("name", LLM_PROFILES)
def test_llm_profile_has_memory_a_16_bit_peak_and_sources(name):
    p = profiles.get(name)
    assert p.memory_capacity_gb and p.memory_bandwidth_gbps
    assert "bf16" in p.peak_tops or "fp16" in p.peak_tops
    keys = [f"peak_tops.{q}" for q in p.peak_tops] + ["memory_capacity_gb", "memory_bandwidth_gbps", "tdp_w"]
    keys += ["scale_up_link.bandwidth_gbps"] if p.scale_up_link_gbps else []
    for key in keys:                       # every figure, and a missing TDP, says where it comes from
        assert p.sources.get(key) and p.sources[key].strip(), key
    # dense peaks: a narrower type is never slower than a wider one
    order = [q for q in ("fp4", "fp8", "bf16", "fp32") if q in p.peak_tops]
    assert all(p.peak_tops[a] >= p.peak_tops[b] for a, b in zip(order, order[1:])), p.peak_tops


def test_independent_datasheet_figures():
    h100, h200, b200 = profiles.get("h100-sxm"), profiles.get("h200-sxm"), profiles.get("b200")
    # NVIDIA H100 / H200 datasheets: 989 TFLOPS BF16 dense, 3.35 TB/s and 80 GB; 4.8 TB/s and 141 GB
    assert (h100.peak_tops["bf16"], h100.memory_bandwidth_gbps, h100.memory_capacity_gb) == (989, 3350, 80)
    assert (h200.memory_bandwidth_gbps, h200.memory_capacity_gb) == (4800, 141)
    assert b200.memory_capacity_gb == 180                          # the results name it B200-SXM-180GB
    # AMD datasheets: MI300X 192 GB at 5.3 TB/s, 1,307.4 TFLOPS BF16; MI325X the same compute, 256 GB at 6 TB/s
    mi300x, mi325x = profiles.get("mi300x"), profiles.get("mi325x")
    assert (mi300x.memory_capacity_gb, mi300x.memory_bandwidth_gbps, mi300x.peak_tops["bf16"]) == (192, 5300, 1307.4)
    assert mi325x.peak_tops == mi300x.peak_tops and mi325x.memory_capacity_gb == 256
    # Google Cloud TPU docs: v5e 197 TFLOPS BF16, 16 GB; v6e 918 TFLOPS, 32 GB
    assert profiles.get("tpu-v5e").peak_tops["bf16"] == 197 and profiles.get("tpu-v6e").memory_capacity_gb == 32


@pytest.mark.parametrize("name", ["h100-sxm", "h200-sxm", "h100-nvl", "h100-pcie", "gh200-144gb", "gh200-96gb"])
def test_hopper_fp8_is_twice_bf16(name):
    p = profiles.get(name)
    assert p.peak_tops["fp8"] == pytest.approx(2 * p.peak_tops["bf16"], rel=2e-3)


@pytest.mark.parametrize("name", ["b200", "gb200", "rtx-pro-6000-server", "rtx-pro-4500", "mi350x", "mi355x"])
def test_blackwell_and_cdna4_fp4_is_twice_fp8_and_fp8_twice_bf16(name):
    p = profiles.get(name)
    assert p.peak_tops["fp4"] == pytest.approx(2 * p.peak_tops["fp8"], rel=2e-3)
    assert p.peak_tops["fp8"] == pytest.approx(2 * p.peak_tops["bf16"], rel=2e-3)


def test_scale_up_links_per_direction():
    # NVLink 4: 900 GB/s total per H100 SXM, NVLink 5: 1.8 TB/s per Blackwell GPU; halves per direction
    assert profiles.get("h100-sxm").scale_up_link_gbps == 450
    assert profiles.get("b200").scale_up_link_gbps == profiles.get("gb200").scale_up_link_gbps == 900
    assert profiles.get("mi300x").scale_up_link_gbps == 448           # 896 GB/s aggregate P2P / 2
    for name in ("l40s", "l4", "rtx-pro-6000-server", "arc-pro-b60", "gh200-96gb"):
        assert profiles.get(name).scale_up_link_gbps is None          # PCIe or network only


def test_kv_cache_room_follows_memory():
    """Llama-2-70B: FP16 weights (~138 GB) do not fit one 80 GB H100 but fit a 141 GB H200; at
    FP8 a B200 (180 GB) holds more than 1.5x the KV tokens of an H200 beside the weights."""
    from sim.workload import llm
    model = llm.load("llama2-70b").model
    w16 = llm_rows.weight_bytes("llama2-70b", "fp16")
    w8 = llm_rows.weight_bytes("llama2-70b", "fp8")
    assert 130e9 < w16 < 145e9 and w8 == pytest.approx(w16 / 2)
    assert w16 > profiles.get("h100-sxm").memory_capacity_gb * 1e9
    assert w16 < profiles.get("h200-sxm").memory_capacity_gb * 1e9

    def kv_tokens(name):
        return (profiles.get(name).memory_capacity_gb * 1e9 - w8) / model.kv_bytes_per_token()
    assert kv_tokens("b200") > 1.5 * kv_tokens("h200-sxm") > 1.5 * kv_tokens("h100-sxm") > 0


def _gb(text: str) -> float | None:
    m = re.match(r"\s*([0-9.]+)\s*(gb|gib|gi|mib)?", text.replace("\u2009", " ").lower())
    if not m:
        return None
    v, unit = float(m.group(1)), m.group(2) or "gb"
    return {"gb": v, "gib": v * 1.073741824, "gi": v * 1.073741824, "mib": v * 1.048576e-3}[unit]


@pytest.mark.skipif(not CSV.is_file(), reason="shared LLM results file not present")
def test_profile_memory_agrees_with_every_published_row():
    """Each row states its accelerator's memory; the profile the name maps to must agree (GPU
    memory as GB or GiB, within the marketing rounding: 80 GB H100 = 81,559 MiB)."""
    with open(CSV, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    checked = 0
    for r in rows:
        dev = names.normalise(r["accelerator"], r["accelerator_kind"])
        stated = _gb(r["accelerator_memory_capacity"])
        if dev is None or stated is None:
            continue
        per_board = next((k for pat, k in llm_rows.GPUS_PER_BOARD if pat.search(r["accelerator"])), 1)
        cap = profiles.get(dev.profile).memory_capacity_gb * per_board
        assert stated == pytest.approx(cap, rel=0.08), (r["accelerator"], r["accelerator_memory_capacity"], cap)
        checked += 1
    assert checked > 700


def test_bad_scale_up_link_names_file_and_field(tmp_path):
    data = yaml.safe_load((profiles.profiles_dir() / "h100-sxm.yaml").read_text())
    data["scale_up_link"]["bandwidth_gbps"] = {"value": -1, "source": "x"}
    path = tmp_path / "h100-sxm.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(InputError, match=r"'scale_up_link.bandwidth_gbps.value'.*a number >= "):
        profiles.load_profile(path)
    data["scale_up_link"] = "NVLink"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(InputError, match=r"'scale_up_link'.*a mapping"):
        profiles.load_profile(path)


@pytest.mark.parametrize("published, profile", [
    ("NVIDIA GB300", "gb300"), ("AMD Instinct MI355X 288GB HBM3e", "mi355x"), ("Intel Gaudi 3", "gaudi3"),
    ("Intel(R) Gaudi(R) 2 AI Accelerator", "gaudi2"), ("NVIDIA Jetson AGX Thor", "agx-thor"),
    ("NVIDIA GH200 Grace Hopper Superchip 144GB", "gh200-144gb"), ("NVIDIA B200-SXM-180GB", "b200"),
    ("NVIDIA GB200", "gb200"), ("TPU v6", "tpu-v6e"), ("[MAXSUN] MS-Intel Arc Pro B60 Dual 48G Turbo", "arc-pro-b60"),
])
def test_names_of_parts_a_buyer_compares(published, profile):
    dev = names.normalise(published)
    assert dev is not None and dev.profile == profile


def test_a_gh200_without_its_memory_size_is_no_guess():
    assert names.normalise("NVIDIA GH200 Grace Hopper Superchip", "gpu") is None
