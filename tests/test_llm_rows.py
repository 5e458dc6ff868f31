"""Published LLM rows read as prediction tasks: which workload, device, count, precision,
stack and official metric; never the results (``sim.hw.llm_rows``)."""

import csv

import pytest

from sim.errors import InputError
from sim.hw import llm_rows, names
from sim.paths import SHARED_DATA

CSV = SHARED_DATA / "mlperf_llm_results" / "results.csv"
pytestmark = pytest.mark.skipif(not CSV.is_file(), reason="shared LLM results file not present")


@pytest.fixture(scope="module")
def rows():
    with open(CSV, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def tasks(rows):
    return llm_rows.read_tasks(rows)


def _row(rows, **match):
    return next(r for r in rows if all(r[k] == v for k, v in match.items()))


def test_every_accelerator_string_maps_to_a_profile_or_a_stated_reason(rows, tasks):
    unmapped = set()
    for r, t in zip(rows, tasks):
        if t.ok:
            assert t.profile and t.devices >= 1 and t.workload and t.metric and t.precision and t.stack
        else:
            assert t.unsupported.strip()
        if names.normalise(r["accelerator"], r["accelerator_kind"]) is None:
            unmapped.add(r["accelerator"])
            if r["benchmark"] in llm_rows.BENCHMARKS:
                assert not t.ok and ("CPU-only" in t.unsupported or "mixed accelerators" in t.unsupported)
    # the only names without a profile: CPU-only systems and the two mixed MI300X/MI325X systems
    assert unmapped == {"N/A", "AMD Instinct MI300X 192GB HBM3 (x32), AMD Instinct MI325X 256GB HBM3e (x16)",
                        "AMD Instinct MI325X 256GB HBM3E (x16), AMD Instinct MI300X 192GB HBM3 (x8)"}


def test_non_llm_benchmarks_are_unsupported_with_their_reason(rows, tasks):
    for r, t in zip(rows, tasks):
        if r["benchmark"] in llm_rows.NOT_LLM:
            assert not t.ok and r["benchmark"] in t.unsupported
            assert any(w in t.unsupported for w in ("diffusion", "speech", "multimodal"))
        else:
            assert r["benchmark"] in llm_rows.BENCHMARKS


def test_changing_forbidden_and_result_columns_leaves_every_task_unchanged(rows, tasks):
    """Results, latency statistics, target_qps, query counts, samples_per_query and the accuracy
    line are replaced by nonsense (and every other column outside the input allow-list too)."""
    for i, (r, t) in enumerate(zip(rows, tasks)):
        changed = {k: ("1e9" if j % 2 else "garbage") if k not in llm_rows.INPUT_COLUMNS else v
                   for j, (k, v) in enumerate(r.items())}
        for col in llm_rows.FORBIDDEN_COLUMNS:
            assert col not in llm_rows.INPUT_COLUMNS
            changed[col] = "12345"
        assert llm_rows.read_task(changed, i) == t


def test_an_input_column_does_change_the_task(rows):
    """The check above can fail: an allowed column (the accelerator count) moves the task."""
    r = _row(rows, benchmark="llama2-70b-99", scenario="Offline", accelerator="NVIDIA H200-SXM-141GB",
             accelerators_per_node="8", number_of_nodes="1")
    a = llm_rows.read_task(r)
    b = llm_rows.read_task({**r, "accelerators_per_node": "4"})
    assert a.devices == 8 and b.devices == 4 and a != b


def test_the_metric_rule_agrees_with_the_checker_column_on_every_row(rows):
    for r in rows:
        m = llm_rows.official_metric(r["version"], r["benchmark"], r["scenario"])
        assert m is not None, (r["version"], r["benchmark"], r["scenario"])
        assert (m.column, m.units) == (r["official_metric_column"], r["official_metric_units"]), \
            (r["version"], r["benchmark"], r["scenario"])


def test_measured_value_is_the_official_value(rows):
    for i, r in enumerate(rows):
        value, units = llm_rows.measured_value(r, i)
        assert value == pytest.approx(float(r["official_metric_value"]), rel=1e-12)
        assert units == r["official_metric_units"]
    assert llm_rows.observed(rows[0]) == float(rows[0]["official_metric_value"])
    assert llm_rows.observed({"version": "v5.1", "benchmark": "llama2-70b-99", "scenario": "Offline"}) is None
    with pytest.raises(InputError, match=r"row 3: column 'tokens_per_second' = 'n/a': expected a positive"):
        llm_rows.measured_value({"version": "v5.1", "benchmark": "llama2-70b-99", "scenario": "Offline",
                                 "tokens_per_second": "n/a"}, 2)


def test_benchmarks_map_to_llm_workload_configs(tasks):
    from sim.workload import llm
    catalog = llm.llm_catalog()
    for b in llm_rows.BENCHMARKS.values():
        assert b.workload in catalog
    seen = {(t.benchmark, t.workload) for t in tasks if t.workload}
    assert ("llama2-70b-99.9", "llama2-70b") in seen and ("gptj-99", "gpt-j-6b") in seen
    assert ("llama3.1-8b-edge", "llama3.1-8b") in seen and ("deepseek-r1", "deepseek-r1") in seen


def test_counts_boards_nodes_and_scale_up_domains(rows):
    dual = llm_rows.read_task(_row(rows, system="1-node-4x-BMG-Pro-B60-Dual", benchmark="llama3.1-8b",
                                   scenario="Offline", version="v6.0"))
    assert (dual.profile, dual.devices_per_node, dual.devices) == ("arc-pro-b60", 8, 8)
    rack = llm_rows.read_task(_row(rows, submitter="NVIDIA", system="GB200-NVL72_GB200-186GB_aarch64x72_TRT",
                                   benchmark="llama3.1-405b", scenario="Offline", version="v6.0"))
    assert (rack.profile, rack.nodes, rack.devices, rack.scale_up_devices) == ("gb200", 18, 72, 72)
    cluster = llm_rows.read_task(_row(rows, system="DGX-H100_H100-SXM-80GBx32_TRT", benchmark="llama2-70b-99",
                                      scenario="Offline"))
    assert (cluster.devices, cluster.scale_up_devices, cluster.nodes) == (32, 8, 4)
    assert any("data-parallel replicas" in n for n in cluster.notes)


def test_model_larger_than_its_memory_is_refused_with_the_numbers(rows):
    r = _row(rows, accelerator="NVIDIA GH200 Grace Hopper Superchip 96GB", benchmark="llama2-70b-99.9",
             scenario="Offline")
    t = llm_rows.read_task(r)
    assert not t.ok and "138 GB" in t.unsupported and "96 GB" in t.unsupported
    # the same model spread over more nodes than one scale-up domain holds is refused too
    t = llm_rows.read_task({**r, "number_of_nodes": "2"})
    assert not t.ok and "one scale-up domain" in t.unsupported


def test_latency_limits_come_from_the_row(rows):
    t = llm_rows.read_task(_row(rows, benchmark="llama2-70b-99", scenario="Interactive", version="v5.1"))
    assert (t.ttft_limit_ns, t.tpot_limit_ns) == (450e6, 40e6)          # README caveat 5
    t = llm_rows.read_task(_row(rows, benchmark="llama2-70b-99", scenario="Server", version="v5.1"))
    assert (t.ttft_limit_ns, t.tpot_limit_ns) == (2e9, 200e6)
    assert t.metric.column == "completed_tokens_per_second"


@pytest.mark.parametrize("text, vendor, expected", [
    ("fp4", "nvidia", "fp4"), ("fp4", "amd", "mxfp4"), ("UINT4", "intel", "int4"), ("INT8", "intel", "int8"),
    ("bfloat16", "google", "bf16"), ("fp8,fp16,int8", "nvidia", "fp8"), ("BF16/F32/F8_E4M3/U8", "nvidia", "fp8"),
    ("fp16", "nvidia", "fp16"),
])
def test_precision_from_weight_data_types(text, vendor, expected):
    assert llm_rows.precision_of(text, vendor, "bf16")[0] == expected


def test_empty_precision_defaults_to_the_checkpoint_and_says_so():
    prec, why = llm_rows.precision_of("", "nvidia", "bf16")
    assert prec == "bf16" and "empty" in why and "checkpoint" in why


@pytest.mark.parametrize("framework, system, expected", [
    ("TensorRT 10.2.0, CUDA 12.4", "", "tensorrt-llm"),
    ("vLLM 0.6.5.dev964+mlperf50, Pytorch 2.7.0a0+git3a58512, ROCm 6.3.1", "", "vllm"),
    ("Mango LLMBoost AI Enterprise Platform, ROCm 6.12.12", "", "llmboost"),
    ("PyTorch vLLM", "", "vllm"), ("flax", "", "jax"), ("shark-ai 3.3.0", "", "shark-ai"),
    ("PyTorch", "x_SGLang", "sglang"), ("", "", "other"),
])
def test_software_stack_normalised(framework, system, expected):
    assert llm_rows.stack_of(framework, system) == expected


def test_bad_rows_get_one_line_reasons(rows):
    r = _row(rows, benchmark="llama2-70b-99", scenario="Offline", accelerator="NVIDIA H200-SXM-141GB")
    with pytest.raises(InputError, match=r"row 5: column 'benchmark' is missing"):
        llm_rows.read_task({k: v for k, v in r.items() if k != "benchmark"}, 4)
    t = llm_rows.read_task({**r, "accelerators_per_node": "eight"}, 6)
    assert t.unsupported == ("row 7: column 'accelerators_per_node' = 'eight': expected a whole number >= 1")
    t = llm_rows.read_task({**r, "accelerator": "Acme TensorBlaster 9000"}, 0)
    assert "matches no hardware profile" in t.unsupported and "Acme TensorBlaster 9000" in t.unsupported
    t = llm_rows.read_task({**r, "scenario": "MultiStream"})
    assert "not an MLPerf test of llama2-70b-99" in t.unsupported
    t = llm_rows.read_task({**r, "version": "v9.9"})
    assert "round 'v9.9'" in t.unsupported


def test_supported_rows_cover_every_scenario_and_carry_their_limits(tasks):
    ok = [t for t in tasks if t.ok]
    assert {t.scenario for t in ok} == {"Offline", "Server", "Interactive", "SingleStream"}
    # every supported Server / Interactive token-metric row carries both latency limits
    for t in ok:
        if t.scenario in ("Server", "Interactive") and t.metric.units == "tokens/s" and t.workload != "gpt-j-6b":
            assert t.ttft_limit_ns and t.tpot_limit_ns


def test_v5_0_interactive_benchmark_names_fold_into_the_interactive_scenario(rows):
    r = _row(rows, benchmark="llama2-70b-99", scenario="Interactive", version="v5.1")
    t = llm_rows.read_task(r)
    old = llm_rows.read_task({**r, "version": "v5.0", "benchmark": "llama2-70b-interactive-99", "scenario": "Server"})
    assert (old.benchmark, old.scenario, old.workload, old.quality) == ("llama2-70b-99", "Interactive", "llama2-70b",
                                                                       0.99)
    assert old.metric == t.metric and old.ok
    assert llm_rows.canonical("llama3.1-405b-interactive", "Server") == ("llama3.1-405b", "Interactive")
    assert llm_rows.canonical("llama2-70b-99", "Server") == ("llama2-70b-99", "Server")


@pytest.mark.parametrize("text, kind", [
    ("18x 4th Gen NVLink, 900GB/s", "nvlink"), ("PCIe Gen5 x16, NVLink 600GB/s", "nvlink"), ("XGMI", "xgmi"),
    ("AMD Infinity Fabric (XGMI)", "xgmi"), ("ICI 1600 Gbps", "ici"), ("PCIe 4.0 x16", "pcie"), ("N/A", ""),
    ("TBD", ""),
])
def test_interconnect_kind(text, kind):
    assert llm_rows.interconnect_kind(text) == kind
