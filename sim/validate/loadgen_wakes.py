"""Batches woken by LoadGen's Server traffic (``measure_loadgen_wakes``, LoadGen with the
model), for the CPU calibration (``sim.validate.calibrate_cpu``).

The real harness and model in one short LoadGen Server run at ``WAKE_LOAD`` of the
batch-1 busy capacity (not a load the validation compares). Each batch is timed against
the busy median of its size, apart for batches whose first query waited for the previous
batch (their cycle) and batches that woke the worker (their inference time): under
LoadGen's threads the medians hold but the tails do not (dlrm, 100 pairs a sample, at 78
QPS: batch-1 times p90 7.5 to 8.2 ms against 5.7 to 6.6 ms in the calibration's busy and
idle segments), and a queue's waiting time follows the tail. ``MachineCalibration.cost_for(...,
loadgen_ratios=True)`` draws Server's batches from these ratios; predictions do not by
default (dlrm: closer than without them at 78 QPS, p99 17.7% too high at 110 QPS).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from sim.cost.empirical import EmpiricalCost
from sim.validate.config import HarnessConfig
from sim.validate.loadgen_overhead import harness_run

WAKE_LOAD = 0.4                    # the wake-up ratios' LoadGen Server run: this share of batch 1's capacity
WAKE_S = 12.0                      # ... for this long (quick: a sixth)


def wake_ratios(arrays: dict, cost: EmpiricalCost) -> dict[str, np.ndarray]:
    """A real Server run's batches (``WorkerSUT.arrays``) against ``cost``'s busy medians, two
    kinds of sorted ratios. ``queued``: batches whose first query arrived before the worker's
    previous batch was done (back to back in the simulator), their completion-to-completion
    cycle (what the busy times are, ``back_to_back_cycles``). ``woken``: every other batch
    (each worker's first among them), its inference time. Batch sizes ``cost`` did not measure
    are left out."""
    out = {"queued": [], "woken": []}
    for k in np.unique(arrays["batch_worker"]):
        mine = arrays["batch_worker"] == k
        order = np.argsort(arrays["batch_start_ns"][mine])
        start = arrays["batch_start_ns"][mine][order].astype(np.float64)
        end = arrays["batch_end_ns"][mine][order].astype(np.float64)
        done = arrays["batch_done_ns"][mine][order].astype(np.float64)
        count = arrays["batch_count"][mine][order]
        arrived = arrays["cb_ns"][arrays["batch_first"][mine][order]].astype(np.float64)
        for i, (b, s, e) in enumerate(zip(count, start, end)):
            if not cost.batch_sizes[0] <= int(b) <= cost.batch_sizes[-1] or e <= s:
                continue
            if i and arrived[i] < done[i - 1]:
                out["queued"].append((done[i] - done[i - 1]) / cost.median_ns(int(b)))
            else:
                out["woken"].append((e - s) / cost.median_ns(int(b)))
    return {name: np.sort(np.asarray(v, dtype=np.float64)) for name, v in out.items()}


def measure_loadgen_wakes(cfg: HarnessConfig, cost: EmpiricalCost, outdir: Path, mlperf_model: str,
                          seconds: float = WAKE_S, timeout_s: float = 300.0, disturbed_cores: float = math.inf,
                          quiet_wait_s: float = 0.0, retries: int = 0, nice: int = 0) -> dict:
    """One LoadGen Server run of the real model at ``WAKE_LOAD`` of batch 1's busy capacity;
    its queued and woken batches' times over the busy medians (``wake_ratios``)."""
    folder = Path(outdir) / "loadgen_wakes"
    qps = WAKE_LOAD * 1e9 / cost.median_ns(1)
    spec = {"config": cfg.to_dict(), "scenario": "Server", "mlperf_model": mlperf_model,
            "overrides": {"server_target_qps": qps, "min_query_count": 50, "server_target_latency_ns": int(1e9),
                          "min_duration_ns": int(seconds * 1000) * 1_000_000},
            "outdir": str(folder), "total_sample_count": 1024}
    run = harness_run(spec, folder, timeout_s, disturbed_cores, quiet_wait_s, retries, nice)
    with np.load(folder / "samples.npz") as z:
        ratios = wake_ratios({name: z[name] for name in z.files}, cost)
    return {"rate_qps": qps, "seconds": seconds, "ratios": [round(float(x), 5) for x in ratios["woken"]],
            "queued_ratios": [round(float(x), 5) for x in ratios["queued"]], "machine": run["machine"]}
