"""MultiStream on multi-accelerator systems: split over the cards or not, as published results show."""

import csv
from dataclasses import replace
from pathlib import Path

import pytest

from sim.hw import system_model as sm
from sim.hw.analytic import Efficiency
from sim.hw.rows import read_case

RESULTS = Path(__file__).resolve().parents[2] / "shared" / "data" / "mlperf_results" / "results.csv"
pytestmark = pytest.mark.skipif(not RESULTS.is_file(), reason="shared results file not present")

# any physically sensible parameters: the test is about how a query's 8 samples are placed
PARAMS = sm.Params(eff=Efficiency(conv=0.4, gconv=0.1, matmul=0.5, bmm=0.3, mem=0.6, kernel_us=4.0, batch_us=50.0,
                                  latency_eff=0.5))


def _ms_rows(version: str, systems: tuple) -> list[dict]:
    with RESULTS.open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["version"] == version and r["model"] == "resnet50"
                and r["scenario"] == "MultiStream" and r["system"] in systems]
    assert len(rows) == len(systems), f"expected one row per system of {systems}"
    return sorted(rows, key=lambda r: int(r["accelerators_per_node"]))


def _ratio(rows: list[dict]) -> tuple[float, float]:
    """(published, predicted) p99 of the most cards over the fewest."""
    few, many = (read_case(r, i) for i, r in enumerate((rows[0], rows[-1])))
    assert few.ok and many.ok
    published = float(rows[-1]["value"]) / float(rows[0]["value"])
    predicted = sm.simulate_case(many, PARAMS) / sm.simulate_case(few, PARAMS)
    return published, predicted


def test_cloud_ai_100_splits_a_query_over_its_cards():
    # one server with 1 and 8 Cloud AI 100 cards: p99 falls to 0.41x
    published, predicted = _ratio(_ms_rows("v2.0", ("r282_z93_q1-qaic-v1.6.80-aic100",
                                                    "r282_z93_q8-qaic-v1.6.80-aic100")))
    assert published < 0.5
    assert predicted < 0.7


def test_nvidia_runs_a_query_on_one_gpu():
    # the same A2 server with 2 and 4 GPUs: the same p99 (ratio 1.000)
    published, predicted = _ratio(_ms_rows("v2.1", ("SYS-120GQ-TNRT_2_A2_TRT", "SYS-120GQ-TNRT_4_A2_TRT")))
    assert published == pytest.approx(1.0, abs=0.01)
    assert predicted == pytest.approx(1.0, abs=0.02)


def test_triton_adds_a_latency_to_a_multistream_query():
    # NVIDIA's v2.0 A2 server, the same engine with and without Triton: 3.378 against
    # 3.209 ms, a latency of 0.17 ms (their SingleStream results do not differ that way)
    rows = {r["system"]: r for r in _rows_of("v2.0", ("A2x1_TRT", "A2x1_TRT_Triton"))}
    plain, triton = read_case(rows["A2x1_TRT"], 0), read_case(rows["A2x1_TRT_Triton"], 1)
    assert triton.triton and not plain.triton
    published_ms = (float(rows["A2x1_TRT_Triton"]["value"]) - float(rows["A2x1_TRT"]["value"])) / 1e6
    assert 0.05 < published_ms < 0.4
    p = replace(PARAMS, triton_ms_us=150.0)
    for predict in (sm.closed_form, sm.simulate_case):
        added_ns = predict(triton, p) - predict(plain, p)
        assert added_ns == pytest.approx(150e3, abs=1e3)
        assert predict(plain, p) == pytest.approx(predict(plain, PARAMS), rel=1e-9)


def _rows_of(version: str, systems: tuple) -> list[dict]:
    with RESULTS.open(newline="") as fh:
        return [r for r in csv.DictReader(fh) if r["version"] == version and r["model"] == "resnet50"
                and r["scenario"] == "MultiStream" and r["system"] in systems]
