"""LoadGen's overhead (``measure_loadgen_overhead``, LoadGen with no model), for the CPU
calibration (``sim.validate.calibrate_cpu``).

The real harness, with a model that only sleeps (for the measured service time, so
LoadGen's threads sleep and wake as they would), in short SingleStream, MultiStream and
Server runs with LoadGen's trace on. The trace gives each sample's latency and how late
its issue started (``issue_start_ns``: the Server scheduler's wake-up delay); the SUT's
own clock gives the time from the issue callback to the results. The difference is
LoadGen's share: ``issue_overhead_ns`` (issue stamp -> callback, plus completion call
-> completion stamp) and ``schedule_delay_ns`` (Server only).

The same runs, and one Offline run, also give what LoadGen's own threads cost the cores
(``sim.validate.thread_cpu``): ``loadgen_cpu_ns_per_sample`` and ``_per_query`` (the
thread that started the test and the threads LoadGen started, over the samples or queries
of the run) and ``worker_cpu_ns_per_sample`` (the SUT's host work in its worker threads,
the model only sleeping). Where the model's intra-op threads fill every core, LoadGen's
work takes its core from the model while it runs (``MachineCalibration.contention``).

The runs are made by the parent process: each is the harness in a process of its own
(``harness_run``, also the run of ``sim.validate.loadgen_wakes``).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from sim.cost.empirical import EmpiricalCost
from sim.validate.config import HarnessConfig
from sim.validate.machine import wait_quiet
from sim.validate.process import run_in_subprocess
from sim.validate.service_times import MS_BATCH

_TRACE_SAMPLE = re.compile(r'"sample_seq":(\d+),"query_seq":(\d+),"sample_idx":(\d+),'
                           r'"issue_start_ns":(-?\d+),"complete_ns":(-?\d+)')


def trace_samples(path: Path) -> np.ndarray:
    """``(sample_seq, issue_start_ns, latency_ns)`` rows of a LoadGen trace, in issue order."""
    rows = [(int(m.group(1)), int(m.group(4)), int(m.group(5)))
            for m in _TRACE_SAMPLE.finditer(Path(path).read_text(errors="replace"))]
    a = np.array(rows, dtype=np.int64).reshape(-1, 3)
    return a[np.argsort(a[:, 0], kind="stable")]


def host_cpu(run: dict) -> dict:
    """LoadGen's and the workers' CPU time per sample and per query of a null-model run
    (empty where the harness could not read its threads' times)."""
    cpu = (run.get("machine") or {}).get("threads_cpu")
    samples = int(run.get("samples_issued") or 0)
    per_query = int((run.get("loadgen") or {}).get("generated_samples_per_query") or 1)
    queries = samples // max(1, per_query) if run.get("scenario") != "Offline" else 1
    if not cpu or samples <= 0 or queries <= 0:
        return {}
    lg_ns = cpu["main_ns"] + cpu["loadgen_threads_ns"]
    return {"loadgen_cpu_ns_per_sample": lg_ns / samples, "loadgen_cpu_ns_per_query": lg_ns / queries,
            "worker_cpu_ns_per_sample": cpu["workers_ns"] / samples}


def _overhead_from_run(folder: Path) -> dict:
    trace = trace_samples(folder / "mlperf_log_trace.json")
    own = np.load(folder / "samples.npz")
    n = min(len(trace), len(own["cb_ns"]))
    if n == 0:
        raise RuntimeError(f"{folder}: no samples in LoadGen's trace")
    sut_ns = (own["done_ns"][:n] - own["cb_ns"][:n]).astype(np.float64)
    start = trace[:n, 1].astype(np.float64)
    lat = trace[:n, 2].astype(np.float64)
    inline = lat - start - sut_ns
    return {"samples": int(n), "issue_overhead_ns": float(np.mean(inline)),
            "issue_overhead_median_ns": float(np.median(inline)),
            "schedule_delay_ns": float(np.mean(start)), "schedule_delay_median_ns": float(np.median(start)),
            "schedule_delay_p90_ns": float(np.percentile(start, 90))}


def harness_run(spec: dict, folder: Path, timeout_s: float, disturbed_cores: float, quiet_wait_s: float,
                 retries: int, nice: int) -> dict:
    """One harness run (LoadGen, ``spec``), made again (up to ``retries`` times, each after
    waiting up to ``quiet_wait_s`` for quiet) while other processes used more than
    ``disturbed_cores`` during it; the last attempt's result."""
    for _ in range(1 + retries):
        if quiet_wait_s > 0:
            wait_quiet(min(disturbed_cores, 0.35), quiet_wait_s)
        run = run_in_subprocess("sim.validate.harness", spec, folder, timeout_s, nice=nice)
        if (run["machine"].get("foreign_cores_mean") or 0.0) <= disturbed_cores:
            break
    return run


def measure_loadgen_overhead(cfg: HarnessConfig, cost: EmpiricalCost, outdir: Path, mlperf_model: str,
                             seconds: float = 2.0, timeout_s: float = 300.0, disturbed_cores: float = math.inf,
                             quiet_wait_s: float = 0.0, retries: int = 0, nice: int = 0) -> dict:
    """Short null-model LoadGen runs per scenario; LoadGen's share of each sample's latency."""
    idle1 = cost.median_ns(1, idle=True)
    busy1 = cost.median_ns(1)
    ms_b = min(MS_BATCH, cfg.max_batch)
    plans = {
        "SingleStream": ({"single_stream_expected_latency_ns": int(idle1), "min_query_count": 50}, idle1),
        "MultiStream": ({"multi_stream_expected_latency_ns": int(cost.median_ns(ms_b, idle=True)),
                         "min_query_count": 50}, None),
        "Server": ({"server_target_qps": 0.5e9 / busy1, "min_query_count": 50,
                    "server_target_latency_ns": int(1e9)}, busy1),
        "Offline": ({"offline_expected_qps": 1e9 / busy1, "min_query_count": 1}, busy1),
    }
    out = {}
    for scenario, (overrides, _) in plans.items():
        folder = Path(outdir) / f"null_{scenario}"
        spec = {"config": cfg.to_dict(), "scenario": scenario, "mlperf_model": mlperf_model,
                "overrides": {**overrides, "min_duration_ns": int(seconds * 1000) * 1_000_000},
                "outdir": str(folder), "total_sample_count": 1024, "null_model": True, "trace": True,
                "null_sleep_ns": {str(b): cost.median_ns(b, idle=scenario not in ("Server", "Offline"))
                                  for b in range(1, cfg.max_batch + 1)}}
        run = harness_run(spec, folder, timeout_s, disturbed_cores, quiet_wait_s, retries, nice)
        out[scenario] = {**_overhead_from_run(folder), **host_cpu(run), "machine": run["machine"]}
    return out

