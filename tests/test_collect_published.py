"""benchmarks/collect_published.py: rows from a results repository's summaries, the held-out filter."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

from sim.hw.rows import read_case

_SPEC = importlib.util.spec_from_file_location(
    "collect_published", Path(__file__).resolve().parent.parent / "benchmarks" / "collect_published.py")
collect_published = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(collect_published)

SERVER_SUMMARY = """================================================
MLPerf Results Summary
================================================
SUT name : LWIS_Server
Scenario : Server
Mode     : PerformanceOnly
Completed samples per second    : 12000.50
Result is : VALID
  Performance constraints satisfied : Yes

================================================
Additional Stats
================================================
Scheduled samples per second : 12001.25
Mean latency (ns)               : 4000000
99.00 percentile latency (ns)   : 12000000

================================================
Test Parameters Used
================================================
samples_per_query : 1
target_qps : 12000
target_latency (ns): 15000000
min_duration (ms): 600000
min_query_count : 100
"""

EDGE_STANDIN = """MLPerf Results Summary
Scenario : SingleStream
90th percentile latency (ns) : 700000
Result is : VALID
* Early stopping 90th percentile estimate : 710000
Test Parameters Used
target_latency (ns): 0
"""


def _repo(tmp_path: Path) -> Path:
    root = tmp_path / "inference_results_v4.1"
    res = root / "closed" / "Acme" / "results"
    (res / "box_L4x1" / "resnet50" / "Server" / "performance" / "run_1").mkdir(parents=True)
    (res / "box_L4x1" / "resnet50" / "Server" / "performance" / "run_1" / "mlperf_log_summary.txt").write_text(SERVER_SUMMARY)
    (res / "box_L4x1" / "resnet50" / "Offline" / "performance" / "run_1").mkdir(parents=True)
    (res / "box_L4x1" / "resnet50" / "Offline" / "performance" / "run_1" / "mlperf_log_summary.txt").write_text(EDGE_STANDIN)
    (res / "box_L4x1" / "gptj-99" / "Offline" / "performance" / "run_1").mkdir(parents=True)   # not one of the five
    (res / "box_L4x1" / "gptj-99" / "Offline" / "performance" / "run_1" / "mlperf_log_summary.txt").write_text(SERVER_SUMMARY)
    (root / "closed" / "Acme" / "systems").mkdir(parents=True)
    (root / "closed" / "Acme" / "systems" / "box_L4x1.json").write_text(json.dumps(
        {"accelerator_model_name": "NVIDIA L4", "accelerators_per_node": 1, "host_processor_model_name": "AMD EPYC 9374F",
         "framework": "TensorRT 10.2", "system_type": "datacenter,edge", "status": "Available", "number_of_nodes": 1,
         "host_processors_per_node": 1, "host_processor_core_count": 32}))
    return root


def test_summaries_become_rows_the_hardware_model_reads(tmp_path):
    out = tmp_path / "rows.csv"
    assert collect_published.main([str(_repo(tmp_path)), "--out", str(out)]) == 0
    rows = {r["scenario"]: r for r in csv.DictReader(out.open())}
    assert set(rows) == {"Server", "Offline"}                       # gptj is not one of the five models
    srv = rows["Server"]
    # v4.1 moved the scheduled rate into Additional Stats; the Server metric is still that rate
    assert (srv["version"], srv["metric"], srv["value"], srv["units"]) == \
        ("v4.1", "Scheduled samples per second", "12001.25", "samples/s")
    assert srv["completed_samples_per_sec"] == "12000.50" and srv["target_latency_ns"] == "15000000"
    assert (srv["accelerator"], srv["accelerator_kind"], srv["accelerators_per_node"]) == ("NVIDIA L4", "gpu", "1")
    case = read_case(srv)
    assert case.ok and case.profile == "l4" and case.target == "server" and case.latency_bound_ns == 15_000_000
    # an edge submitter's SingleStream run standing in for Offline is marked, not taken as Offline
    off = rows["Offline"]
    assert (off["run_scenario"], off["inferred"], off["metric"]) == ("SingleStream", "yes", "90th percentile latency (ns)")
    assert off["early_stopping_estimate_ns"] == "710000"


def test_heldout_keeps_valid_rows_the_results_file_does_not_hold(tmp_path):
    repo = _repo(tmp_path)
    results = tmp_path / "results.csv"
    out = tmp_path / "held.csv"
    with results.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["version", "submitter", "system", "model", "scenario"])
        w.writeheader()
    assert collect_published.main([str(repo), "--out", str(out), "--heldout-of", str(results)]) == 0
    assert [r["scenario"] for r in csv.DictReader(out.open())] == ["Server"]     # the stand-in is dropped
    with results.open("a", newline="") as fh:
        csv.writer(fh).writerow(["v4.1", "Acme", "box_L4x1", "resnet50", "Server"])
    assert collect_published.main([str(repo), "--out", str(out), "--heldout-of", str(results)]) == 0
    assert list(csv.DictReader(out.open())) == []


def test_a_path_without_a_round_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "somewhere" / "closed").mkdir(parents=True)
    assert collect_published.main([str(tmp_path / "somewhere"), "--out", str(tmp_path / "x.csv")]) == 2
    assert "cannot tell the round" in capsys.readouterr().err
