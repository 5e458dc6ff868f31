"""The system-under-test model: batching, stages, devices, closed loops, outputs.

The fast engine handles whole batches per event; ``sim.sut.naive`` is the same system
written with one SimPy process per query. They must agree to the nanosecond.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from sim.cost.synthetic import AffineCost, ExponentialCost, FixedCost
from sim.errors import InputError
from sim.run import simulate
from sim.sut.engine import simulate_closed, simulate_open
from sim.sut.naive import simulate_open_naive
from sim.sut.system import SystemSpec, load_system, parse_system


def poisson_ns(rate_per_s: float, n: int, seed: int) -> np.ndarray:
    gaps = np.floor(np.random.default_rng(seed).exponential(1e9 / rate_per_s, n))
    t = np.cumsum(gaps).astype(np.int64)
    return t - t[0]


CONFIGS = [
    ({"batching": {"policy": "dynamic", "max_batch": 16, "max_queue_delay_us": 300},
      "accelerators": {"count": 3, "instances": 2}}, AffineCost(300e3, 40e3), 9000),
    ({"batching": {"policy": "dynamic", "max_batch": 32, "max_queue_delay_us": 1000, "preferred_batch_sizes": [8, 16]},
      "accelerators": {"count": 2}, "host": {"issue_overhead_us": 3, "preprocess": {"workers": 3, "time_us_per_sample": 150},
                                              "postprocess": {"workers": 2, "time_us_per_batch": 20, "time_us_per_sample": 2}},
      "link": {"bandwidth_gbps": 8, "latency_us": 4, "input_bytes_per_sample": 600000, "output_bytes_per_sample": 4000}},
     AffineCost(500e3, 60e3, wake_ns=200e3), 12000),
    ({"batching": {"policy": "fixed", "max_batch": 4}, "accelerators": {"count": 2}}, ExponentialCost(800e3), 5000),
    ({"accelerators": {"count": 4, "idle_after_us": 100}}, FixedCost(700e3, wake_ns=150e3), 3000),
]


@pytest.mark.parametrize("cfg, cost, qps", CONFIGS)
def test_fast_engine_equals_one_process_per_query(cfg, cost, qps):
    system = parse_system(cfg)
    sched = poisson_ns(qps, 20_000, seed=7)
    fast = simulate_open(system, cost, sched, seed=3)
    naive = simulate_open_naive(system, cost, sched, seed=3)
    assert np.array_equal(fast.sample_complete_ns, naive.sample_complete_ns)


def test_offline_query_equals_naive_and_batches_partition_samples():
    system = parse_system({"batching": {"policy": "dynamic", "max_batch": 64, "max_queue_delay_us": 100},
                           "accelerators": {"count": 4}})
    fast = simulate_open(system, AffineCost(1e6, 50e3), np.zeros(1, np.int64), 10_000)
    naive = simulate_open_naive(system, AffineCost(1e6, 50e3), np.zeros(1, np.int64), 10_000)
    assert np.array_equal(fast.sample_complete_ns, naive.sample_complete_ns)
    b = fast.batches
    order = np.argsort(b["first"])
    starts, counts = b["first"][order], b["count"][order]
    assert starts[0] == 0 and np.all(starts[1:] == starts[:-1] + counts[:-1])   # every sample exactly once
    assert starts[-1] + counts[-1] == 10_000
    assert np.all(counts == 64) or counts.max() == 64


def test_dynamic_batcher_waits_for_the_deadline_then_sends_what_is_queued():
    system = parse_system({"batching": {"policy": "dynamic", "max_batch": 8, "max_queue_delay_us": 1000}})
    sched = np.array([0, 100_000, 200_000, 5_000_000], np.int64)       # three close, one late
    r = simulate_open(system, FixedCost(500e3), sched)
    b = r.batches
    assert list(b["count"]) == [3, 1]
    assert list(b["dispatch_ns"]) == [1_000_000, 6_000_000]            # oldest + max_queue_delay
    assert list(r.sample_complete_ns) == [1_500_000] * 3 + [6_500_000]


def test_preferred_batch_size_is_sent_as_soon_as_it_fills():
    system = parse_system({"batching": {"policy": "dynamic", "max_batch": 8, "max_queue_delay_us": 10_000,
                                        "preferred_batch_sizes": [4]}})
    sched = np.arange(6, dtype=np.int64) * 10_000
    r = simulate_open(system, FixedCost(100e3), sched)
    assert list(r.batches["count"]) == [4, 2]
    assert r.batches["dispatch_ns"][0] == 30_000                       # the 4th arrival


def test_idle_instance_pays_wake_cost_only_after_idling():
    system = parse_system({"accelerators": {"idle_after_us": 1000}})
    cost = FixedCost(1e6, wake_ns=300e3)
    sched = np.array([0, 500_000, 10_000_000], np.int64)               # 2nd arrives while busy
    r = simulate_open(system, cost, sched)
    assert list(r.sample_complete_ns) == [1_300_000, 2_300_000, 11_300_000]


def test_closed_loop_issues_next_query_at_completion():
    system = SystemSpec()
    r = simulate_closed(system, FixedCost(2e6), 1, 1000, lambda issued, last: issued >= 10)
    assert len(r.query_scheduled_ns) == 10
    assert np.all(r.query_scheduled_ns[1:] == r.query_complete_ns[:-1])
    assert np.all(r.query_latency_ns == 2_000_000)


def test_multistream_query_latency_is_last_sample():
    system = parse_system({"accelerators": {"count": 2}})
    r = simulate("MultiStream", workload=None, system=system, cost=FixedCost(1e6),
                 overrides={"min_duration_ns": 10**8, "min_query_count": 700})
    assert np.all(r.engine.query_latency_ns == 4_000_000)             # 8 samples on 2 devices
    assert r.metrics.headline_value == 4_000_000
    assert r.metrics.valid


def test_same_seed_same_bytes(tmp_path):
    kw = dict(workload=None, cost=ExponentialCost(1e6), overrides={"server_target_qps": 600.0,
                                                                     "min_duration_ns": 10**9})
    simulate("Server", seed=5, **kw).write(tmp_path / "a")
    simulate("Server", seed=5, **kw).write(tmp_path / "b")
    simulate("Server", seed=6, **kw).write(tmp_path / "c")
    for f in ("mlperf_log_summary.txt", "mlperf_log_detail.txt", "result.json"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
    assert (tmp_path / "a" / "result.json").read_bytes() != (tmp_path / "c" / "result.json").read_bytes()


def test_server_every_issued_sample_completes_once_and_after_its_schedule():
    system = parse_system({"batching": {"policy": "dynamic", "max_batch": 16, "max_queue_delay_us": 200},
                           "accelerators": {"count": 2}})
    r = simulate("Server", workload=None, system=system, cost=AffineCost(500e3, 50e3),
                 overrides={"server_target_qps": 20000.0, "min_duration_ns": 10**9})
    e = r.engine
    assert len(e.sample_complete_ns) == r.traffic.query_count == r.metrics.query_count
    assert np.all(e.sample_complete_ns > e.query_scheduled_ns)
    assert e.batches["count"].sum() == r.traffic.query_count


@pytest.mark.parametrize("doc, fragment", [
    ({"batching": {"policy": "greedy"}}, "batching.policy"),
    ({"batching": {"policy": "dynamic", "max_batch": 0}}, "batching.max_batch"),
    ({"accelerators": {"count": "two"}}, "accelerators.count"),
    ({"accelerators": {"cost": {"kind": "affine", "a_us": 1}}}, "accelerators.cost.b_us_per_sample"),
    ({"link": {"bandwidth_gbps": 0}}, "link.bandwidth_gbps"),
    ({"batching": {"policy": "dynamic", "max_batch": 4, "preferred_batch_sizes": [8]}}, "preferred_batch_sizes"),
    ({"acelerators": {}}, "acelerators"),
])
def test_bad_system_fields_are_named(tmp_path, doc, fragment):
    import yaml
    path = tmp_path / "sys.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(InputError) as exc:
        load_system(path)
    assert str(path) in str(exc.value) and fragment in str(exc.value) and "expected" in str(exc.value)


def test_cli_run_writes_loadgen_files(tmp_path):
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "sim", "run", "--scenario", "Server", "--service-time-ms", "exp:1",
                        "--qps", "500", "--min-duration-ms", "2000", "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "Result is : VALID" in r.stdout
    summary = (out / "mlperf_log_summary.txt").read_text()
    assert summary.splitlines()[4] == "Scenario : Server"
    result = json.loads((out / "result.json").read_text())
    assert result["result"]["valid"] is True and result["queries"] > 900
    assert all(line.startswith(":::MLLOG {") for line in (out / "mlperf_log_detail.txt").read_text().splitlines())
    bad = subprocess.run([sys.executable, "-m", "sim", "run", "--scenario", "Server", "--service-time-ms", "abc"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error: --service-time-ms: value 'abc'")
