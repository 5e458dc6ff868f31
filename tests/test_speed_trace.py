"""A machine whose speed changes over time (``sim.cost.speed_trace``).

Truth: when the speed changes slowly against the service time (phases of seconds, service
of a millisecond), each phase is an M/D/1 queue in steady state, so the mean response time
is the time average of the Pollaczek-Khinchine formula over the phases. That is higher than
the M/D/1 queue at the average speed, which is why slow phases matter near capacity.
"""

from __future__ import annotations

import numpy as np
import pytest

from sim.cost.speed_trace import SpeedTrace, TimeVaryingCost
from sim.cost.synthetic import FixedCost
from sim.errors import InputError
from sim.run import simulate

MS = 1e6


def md1_response_ms(s_ms: float, qps: float) -> float:
    rho = qps * s_ms / 1e3
    return s_ms + rho * s_ms / (2 * (1 - rho))


def test_two_speed_phases_follow_the_time_average_of_pollaczek_khinchine():
    factors = [0.75] * 5 + [1.25] * 5                 # median 1: phases of 10 s at 0.75 and 1.25 ms
    trace = SpeedTrace(factors, 2e9, "two phases")
    qps, n = 600.0, 300_000                           # 500 s: 25 whole periods of the trace
    r = simulate("Server", workload=None, cost=TimeVaryingCost(FixedCost(1 * MS), trace), seed=3,
                 overrides={"server_target_qps": qps, "min_query_count": n, "min_duration_ns": 0})
    lat_ms = (r.engine.sample_complete_ns - r.engine.query_scheduled_ns) / MS
    expected = 0.5 * md1_response_ms(0.75, qps) + 0.5 * md1_response_ms(1.25, qps)   # 2.09 ms
    assert abs(lat_ms.mean() / expected - 1) < 0.03
    assert lat_ms.mean() > 1.15 * md1_response_ms(1.0, qps)                          # 1.75 ms at the average speed
    served = (r.engine.batches["end_ns"] - r.engine.batches["start_ns"]) / MS
    assert set(np.round(served, 6)) == {0.75, 1.25}
    # the same seed gives the same run (the trace offset comes from the run's generator)
    r2 = simulate("Server", workload=None, cost=TimeVaryingCost(FixedCost(1 * MS), trace), seed=3,
                  overrides={"server_target_qps": qps, "min_query_count": 2000, "min_duration_ns": 0})
    r3 = simulate("Server", workload=None, cost=TimeVaryingCost(FixedCost(1 * MS), trace), seed=3,
                  overrides={"server_target_qps": qps, "min_query_count": 2000, "min_duration_ns": 0})
    assert np.array_equal(r2.engine.sample_complete_ns, r3.engine.sample_complete_ns)


def test_trace_from_batches_finds_a_slow_phase():
    rng = np.random.default_rng(0)
    start = np.arange(8000) * 500_000.0                # a batch every 0.5 ms for 4 s
    count = rng.integers(1, 9, len(start))
    run = (100_000.0 + 40_000.0 * count) * rng.normal(1.0, 0.03, len(start))
    slow = (start >= 1.0e9) & (start < 1.4e9)           # 400 ms at 1.3x
    run[slow] *= 1.3
    trace = SpeedTrace.from_batches(start, run, count, "synthetic")
    assert trace.bin_ns == pytest.approx(20e6)
    t = np.arange(len(trace.factors)) * trace.bin_ns
    inside = (t >= 1.0e9) & (t + trace.bin_ns <= 1.4e9)
    assert np.all(np.abs(trace.factors[inside] - 1.3) < 0.03)
    assert np.all(np.abs(trace.factors[(t + trace.bin_ns <= 1.0e9) | (t >= 1.4e9)] - 1.0) < 0.03)
    again = SpeedTrace.from_dict(trace.to_dict())
    assert np.allclose(again.factors, trace.factors, atol=1e-4) and again.bin_ns == trace.bin_ns
    assert SpeedTrace.from_batches(start[:40], run[:40], count[:40]) is None     # too short to carry time


def test_bad_traces_are_named():
    with pytest.raises(InputError, match="factors"):
        SpeedTrace([1.0, -1.0] * 10, 1e6, "t.json")
    with pytest.raises(InputError, match="bin_ns"):
        SpeedTrace([1.0] * 10, 0, "t.json")
    with pytest.raises(InputError, match="t.json: field 'schema'"):
        SpeedTrace.from_dict({"schema": "x"}, "t.json")
