"""The mean-input estimate of ``sim.hw.llm_lengths`` against a known truth: rows whose published
values are made by the surrogate itself with a known mean input and known parameters per unit; the
estimate must recover that mean from a start far from it."""

import math

import pytest

from sim.errors import InputError
from sim.hw import llm_calibrate as lc
from sim.hw import llm_lengths
from sim.paths import SHARED_DATA
from sim.util.textfile import read_csv
from sim.workload import llm as llm_workloads

RESULTS = SHARED_DATA / "mlperf_llm_results" / "results.csv"
UNITS = ("h200-sxm/tensorrt-llm", "h100-sxm/tensorrt-llm", "mi325x/vllm")


def _rows():
    _, rows = read_csv(RESULTS, "LLM results")
    keep = []
    for i, row in enumerate(rows):
        t = lc.llm_rows.read_task(row, i)
        if t.ok and t.scenario == lc.llm_rows.OFFLINE and f"{t.profile}/{t.stack}" in UNITS \
                and t.workload in ("llama2-70b", "mixtral-8x7b"):
            keep.append(row)
    return keep


@pytest.mark.skipif(not RESULTS.is_file(), reason="needs ../shared beside the checkout")
def test_estimate_recovers_a_known_mean_input():
    rows = _rows()
    truth = {"mixtral-8x7b": 300.0}
    # each unit its own known parameters: a compute-bound, physically plausible device
    known = {"h200-sxm/tensorrt-llm": 0.45, "h100-sxm/tensorrt-llm": 0.40, "mi325x/vllm": 0.30}
    true_cases, _, _ = lc.load_cases(rows=rows, input_means=truth)
    assert {c.task.workload for c in true_cases} == {"llama2-70b", "mixtral-8x7b"}
    synthetic = {}
    for c in true_cases:
        p = dict(lc.default_params(), compute_efficiency=known[c.unit])
        synthetic[c.task.index] = lc.Surrogate(p).predict(c)

    def score(means):
        cases, _, _ = lc.load_cases(rows=rows, input_means=means)
        for c in cases:
            c.measured = synthetic[c.task.index]
        cal = lc.calibrate(cases)
        return llm_lengths.fit_loss(cases, cal), llm_lengths.median_error(cases, cal)

    est, prof = llm_lengths.estimate({"mixtral-8x7b": (100.0, 1000.0)}, start={"mixtral-8x7b": 800.0},
                                     tol=0.05, rounds=1, say=lambda s: None, score=score)
    assert abs(math.log(est["mixtral-8x7b"] / 300.0)) < 0.08
    # the loss at the truth is below the loss at the file's assumption
    assert score({"mixtral-8x7b": 300.0})[0] < score({"mixtral-8x7b": 500.0})[0]
    lo, hi = prof["mixtral-8x7b"].within(0.05)
    assert lo <= est["mixtral-8x7b"] <= hi


def test_fit_loss_is_zero_for_exact_predictions_and_grows_with_error():
    rows = _rows()
    cases, _, _ = lc.load_cases(rows=rows)
    cal = lc.Calibration(params={u: lc.default_params() for u in UNITS}, stage1={}, rows={})
    for c in cases:
        c.measured = lc.predict_case(cal, c)
    assert llm_lengths.fit_loss(cases, cal) == pytest.approx(0.0, abs=1e-12)
    for c in cases:
        c.measured *= math.exp(0.1)           # every row off by one ROW_SD
    # soft-L1 with f = 3 at z = 1/3: 2 * 9 * (sqrt(1 + 1/9) - 1)
    assert llm_lengths.fit_loss(cases, cal) == pytest.approx(18 * (math.sqrt(1 + 1 / 9) - 1), rel=1e-6)


def test_prior_mean_is_read_and_checked(tmp_path):
    base = (tmp_path / "w.yaml")
    text = """name: w
mlperf_model: w
description: d
source: s
model: {layers: 2, hidden_size: 64, heads: 4, kv_heads: 4, head_size: 16, ffn_size: 128, vocab_size: 100,
        max_context: 4096, precision: bf16}
dataset:
  name: d
  samples: 10
  source: s
  input: {kind: lognormal, mean: 200, max: 1000, sigma: 0.5, mode: truncate, prior_mean: PRIOR}
  output: {kind: fixed, max: 64}
"""
    base.write_text(text.replace("PRIOR", "600"))
    wl = llm_workloads.load_llm_workload(base)
    assert wl.dataset.input.prior_mean == 600.0 and wl.dataset.input.mean == 200.0
    base.write_text(text.replace("PRIOR", "5000"))
    with pytest.raises(InputError, match=r"input\.prior_mean.*5000"):
        llm_workloads.load_llm_workload(base)
    base.write_text(text.replace(", prior_mean: PRIOR", "").replace("output: {kind: fixed, max: 64}",
                                                                    "output: {kind: fixed, max: 64, prior_mean: 9}"))
    with pytest.raises(InputError, match=r"output\.prior_mean"):
        llm_workloads.load_llm_workload(base)


def test_held_output_tokens_is_the_time_weighted_mean():
    """A running sample holds E[n^2] / (2 E[n]) generated tokens over time: outputs of 100 and 300
    tokens, equally often, run 100 and 300 steps holding 50 and 150 on average, so the time average
    is (100 * 50 + 300 * 150) / 400 = 125, not half the mean (100)."""
    from dataclasses import replace

    wl = lc.workload("llama2-70b")
    two = replace(wl, dataset=replace(wl.dataset, output=llm_workloads.LengthDist("csv", values=(100, 300))))
    assert lc.held_output_tokens(two) == pytest.approx(125.0)
    fixed = replace(wl, dataset=replace(wl.dataset, output=llm_workloads.LengthDist("fixed", mean=128.0,
                                                                                    maximum=128, minimum=128)))
    assert lc.held_output_tokens(fixed) == pytest.approx(64.0)
    # the spread of a lognormal makes it larger than half the mean
    assert lc.held_output_tokens(wl) > wl.dataset.output.mean / 2
