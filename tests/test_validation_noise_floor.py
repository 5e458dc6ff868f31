"""What the machine's own repeatability allows: a perfect model against the median of n real
repeats (checked against the closed form of the median of three draws), and one kept set's
measured values as the prediction of another's."""

import math

import numpy as np
import pytest

from sim.validate import history, noise_floor

LENGTHS = {"single_stream_s": 15.0, "server_s": 20.0}
SHORT = {"single_stream_s": 1.5, "server_s": 2.0}


def _rec(workload, scenario, metric, runs, predicted=None):
    measured = float(np.median(runs))
    predicted = measured if predicted is None else predicted
    return {"workload": workload, "system": "S", "scenario": scenario, "metric": metric, "measured": measured,
            "measured_runs": list(runs), "predicted": predicted,
            "error_pct": (predicted - measured) / measured * 100.0}


def _entry(period, records, lengths=LENGTHS, basis="peak"):
    names = sorted({r["workload"] for r in records})
    return {"key": [period], "period_utc": period, "method": "M", "summary": {}, "records": records,
            "workloads": [{"workload": w, "run_lengths": lengths, "load_basis": basis} for w in names]}


def test_median_of_three_draws_matches_its_closed_form():
    # runs e^-b, 1, e^b: deviations -b, 0, b from the log mean, scaled by sqrt(3/2) -> a pool {-a, 0, a}
    b = 0.1
    a = b * math.sqrt(1.5)
    e = _entry("p1", [_rec("w", "Offline", "samples/s", [math.exp(-b), 1.0, math.exp(b)])])
    devs = noise_floor.repeat_deviations([e], LENGTHS, "peak")
    (pool,) = devs.values()
    assert sorted(pool) == pytest.approx([-a, 0.0, a])
    draws = 40_000
    err = noise_floor.oracle_errors(devs, repeats=3, draws=draws, seed=7)[:, 0]
    # the median of three draws from {-a, 0, a} is 0 unless two or more draws land on one side:
    # P = 1 - 2 * (3 * (1/3)^2 * (2/3) + (1/3)^3) = 13/27
    p = 13 / 27
    assert np.mean(err == 0.0) == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / draws))
    assert set(np.round(err[err > 0], 9)) == {round(math.expm1(a) * 100, 9), round(-math.expm1(-a) * 100, 9)}
    one = noise_floor.oracle_errors(devs, repeats=1, draws=draws, seed=7)[:, 0]
    assert np.mean(one == 0.0) == pytest.approx(1 / 3, abs=4 * math.sqrt(2 / 9 / draws))


def test_repeats_that_agree_leave_no_error_and_more_repeats_shrink_it():
    same = _entry("p1", [_rec("w", "Offline", "samples/s", [50.0, 50.0, 50.0])])
    s = noise_floor.oracle_summary(noise_floor.oracle_errors(noise_floor.repeat_deviations([same], LENGTHS, "peak"),
                                                             3, draws=500))
    assert s["worst_abs_error_pct"] == 0.0 and s["share_worst_within"] == 1.0 and s["metrics"] == 1
    rng = np.random.default_rng(3)
    noisy = [_entry(f"p{i}", [_rec("w", "Offline", "samples/s", np.exp(rng.normal(0, 0.1, 3)) * 50)])
             for i in range(20)]
    devs = noise_floor.repeat_deviations(noisy, LENGTHS, "peak")
    med = [np.median(noise_floor.oracle_errors(devs, n, draws=4000, seed=1)) for n in (1, 3, 9, 25)]
    assert med == sorted(med, reverse=True) and med[-1] < med[0] / 3


def test_summary_of_known_errors():
    errors = np.array([[1.0, 2.0, 12.0], [3.0, 4.0, 5.0], [0.5, 6.0, 9.0], [2.0, 8.0, 30.0]])
    s = noise_floor.oracle_summary(errors, median_target_pct=5.0, worst_target_pct=10.0)
    # per report: medians 2, 4, 6, 8; worsts 12, 5, 9, 30
    assert s["median_abs_error_pct"] == pytest.approx(5.0)
    assert s["worst_abs_error_pct"] == pytest.approx(10.5)
    assert s["share_median_within"] == 0.5 and s["share_worst_within"] == 0.5
    assert s["within_worst_target"] == pytest.approx(2.5)   # 2, 3, 3, 2 metrics within 10%
    with pytest.raises(ValueError, match="repeats 0"):
        noise_floor.oracle_errors({("w",): np.zeros(3)}, 0)


def test_pools_keep_run_lengths_and_load_basis_apart():
    server = lambda runs: _rec("w", "Server", "p99 latency at 60% load (ms)", runs)  # noqa: E731
    peak = _rec("w", "Server", "peak VALID QPS", [40.0, 42.0, 41.0])
    entries = [_entry("p1", [server([10.0, 11.0, 12.0]), peak], basis="peak"),
               _entry("p2", [server([10.0, 20.0, 30.0]), dict(peak)], basis="offline"),
               _entry("p3", [server([1.0, 2.0, 3.0]), dict(peak)], lengths=SHORT, basis="peak")]
    devs = noise_floor.repeat_deviations(entries, LENGTHS, "peak")
    lat = devs[("w", "S", "Server", "p99 latency at 60% load (ms)")]
    assert lat.size == 3                               # p1's only: p2's loads were of the Offline capacity, p3 short
    assert lat == pytest.approx((np.log([10, 11, 12]) - np.log([10, 11, 12]).mean()) * math.sqrt(1.5))
    assert devs[("w", "S", "Server", "peak VALID QPS")].size == 6    # the same setting whatever the load basis
    assert noise_floor.repeat_deviations(entries, LENGTHS, "offline")[
        ("w", "S", "Server", "p99 latency at 60% load (ms)")].size == 3


def test_one_set_as_the_prediction_of_another():
    a = _entry("p1", [_rec("w", "Offline", "samples/s", [100.0] * 3, predicted=95.0),
                      _rec("w", "MultiStream", "p99 latency (ms)", [50.0] * 3, predicted=52.0),
                      _rec("w", "Server", "p99 latency at 30% load (ms)", [10.0] * 3)])
    b = _entry("p2", [_rec("w", "Offline", "samples/s", [80.0] * 3, predicted=84.0),
                      _rec("w", "MultiStream", "p99 latency (ms)", [55.0] * 3, predicted=55.0),
                      _rec("w", "Server", "p99 latency at 30% load (ms)", [30.0] * 3)])
    c = _entry("p3", [_rec("w", "Offline", "samples/s", [1.0] * 3)], lengths=SHORT)
    rows = {(r["predictor"], r["measured"]): r for r in noise_floor.machine_as_predictor([a, b, c], LENGTHS)}
    assert set(rows) == {("p1", "p2"), ("p2", "p1")}     # the short set pairs with none; Server loads left out
    ab = rows[("p1", "p2")]
    assert ab["count"] == 2
    assert ab["worst_abs_error_pct"] == pytest.approx(25.0) and ab["worst"] == "w Offline samples/s"
    assert ab["median_abs_error_pct"] == pytest.approx((25.0 + 100 * 5 / 55) / 2)
    assert ab["model_worst_abs_error_pct"] == pytest.approx(5.0) and ab["model_median_abs_error_pct"] == 2.5
    assert rows[("p2", "p1")]["worst_abs_error_pct"] == pytest.approx(20.0)
    lines = noise_floor.markdown_lines([a, b, c], LENGTHS, "peak", repeats=(3,), draws=200)
    assert lines[0].startswith("## ") and any(ln.startswith("| 3 | ") for ln in lines)
    assert any(ln.startswith("| p2 | 2 | 2.5 / 5.0 | ") for ln in lines)
    assert noise_floor.markdown_lines([a, c], LENGTHS, "peak") == []   # one set at these run lengths: nothing to say


def test_history_entries_keep_each_metric_and_the_run_lengths():
    res = {"workload": "w", "system": "1x1", "finished_utc": "2026-11-25T10:00:00Z", "seconds": 60.0,
           "run_lengths": LENGTHS, "load_basis": "peak",
           "records": [dict(_rec("w", "Offline", "samples/s", [1.0, 2.0, 3.0]), measured_spread_pct=100.0,
                            batch_speed=[1.0, 1.1, 0.9])]}
    e = history.entry([res], "M", "c", "cmd")
    assert e["workloads"][0]["run_lengths"] == LENGTHS and e["workloads"][0]["load_basis"] == "peak"
    (r,) = e["records"]
    assert set(r) <= set(history.RECORD_FIELDS) and r["measured_runs"] == [1.0, 2.0, 3.0]
    assert "batch_speed" not in r
