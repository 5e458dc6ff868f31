"""The simulator against queueing theory, through the public API (``sim.run.simulate``).

LoadGen's Server traffic is a Poisson process; with the default system (one device, one
instance, no batching, no overheads) and a synthetic cost, the run is an M/M/1 or M/D/1
queue, and with K devices an M/M/c queue. Long runs (10**6 queries) must land within 2% of
the closed forms.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.cost.synthetic import ExponentialCost, FixedCost
from sim.run import simulate
from sim.sut.system import parse_system

N = 1_000_000
MS = 1e6


def server_latencies_ms(cost, qps, system=None, n=N, seed=0):
    r = simulate("Server", workload=None, system=system, cost=cost, seed=seed,
                 overrides={"server_target_qps": float(qps), "min_query_count": n, "min_duration_ns": 0})
    return (r.engine.sample_complete_ns - r.engine.query_scheduled_ns) / MS, r


def erlang_c(c: int, a: float) -> float:
    """Probability that an arrival waits in M/M/c with offered load a = lambda/mu."""
    tail = a ** c / math.factorial(c) * c / (c - a)
    return tail / (sum(a ** k / math.factorial(k) for k in range(c)) + tail)


@pytest.mark.slow
def test_mm1_mean_and_p99_response_time():
    mu, lam = 1000.0, 500.0                        # per second; service mean 1 ms, rho = 0.5
    lat, _ = server_latencies_ms(ExponentialCost(1 * MS), lam)
    mean_ms = 1e3 / (mu - lam)                     # E[T] = 1 / (mu - lambda)
    p99_ms = 1e3 * math.log(100) / (mu - lam)      # T ~ Exp(mu - lambda)
    assert abs(lat.mean() / mean_ms - 1) < 0.02
    assert abs(np.percentile(lat, 99) / p99_ms - 1) < 0.02


@pytest.mark.slow
def test_md1_mean_wait_pollaczek_khinchine():
    s_ms, lam = 1.0, 600.0                         # rho = 0.6
    rho = lam * s_ms / 1e3
    lat, _ = server_latencies_ms(FixedCost(s_ms * MS), lam)
    wq_ms = rho * s_ms / (2 * (1 - rho))           # P-K with zero service variance
    assert abs((lat.mean() - s_ms) / wq_ms - 1) < 0.02


@pytest.mark.slow
def test_mmc_mean_wait_erlang_c():
    c, mu, lam = 4, 1000.0, 2400.0                 # rho = 0.6 per server
    system = parse_system({"accelerators": {"count": c}})
    lat, r = server_latencies_ms(ExponentialCost(1 * MS), lam, system)
    service_ms = (r.engine.batches["start_ns"] - r.engine.batches["end_ns"]).mean() * -1 / MS
    wq_ms = erlang_c(c, lam / mu) / (c * mu - lam) * 1e3
    assert abs((lat.mean() - service_ms) / wq_ms - 1) < 0.02


def test_littles_law_and_utilisation():
    # 4 devices, dynamic batching: L (time-average number in system, sampled at random
    # instants) = lambda * W, and busy-server time / T = lambda * E[service per sample].
    system = parse_system({"batching": {"policy": "dynamic", "max_batch": 8, "max_queue_delay_us": 500},
                           "accelerators": {"count": 4, "cost": {"kind": "affine", "a_us": 400, "b_us_per_sample": 100}}})
    from sim.cost.resolve import synthetic as cost_from_spec
    lat, r = server_latencies_ms(cost_from_spec(system.cost), 8000, system, n=200_000)
    arrive = r.engine.query_scheduled_ns.astype(np.float64)
    depart = r.engine.sample_complete_ns.astype(np.float64)
    horizon = depart.max()
    probe = np.random.default_rng(1).uniform(0, horizon, 200_000)
    in_system = np.searchsorted(np.sort(arrive), probe, "right") - np.searchsorted(np.sort(depart), probe, "right")
    lam = len(arrive) / horizon
    assert abs(in_system.mean() / (lam * (depart - arrive).mean()) - 1) < 0.02
    b = r.engine.batches
    busy = (b["end_ns"] - b["start_ns"]).sum()
    assert busy == pytest.approx(((400 + 100 * b["count"]) * 1000).sum(), rel=1e-12)
