"""The real SUT driven by the real MLPerf LoadGen: one scenario per process.

LoadGen reads its embedded mlperf.conf once per process, so each run is a process of its
own: ``sim.validate.process.run_in_subprocess`` starts ``python -m sim.validate.harness
<spec.json>`` (``main``), and ``run_loadgen`` runs the one LoadGen test the spec describes
(performance mode only) against the real SUT (``sim.validate.sut``, configured by
``sim.validate.config.HarnessConfig``): the spec's LoadGen settings (``LOADGEN_FIELDS``),
a warm-up, a speed probe just before the run, then the test while ``CpuMonitor``
(``sim.validate.machine``) samples the CPU other processes use.

The child writes LoadGen's own logs (``mlperf_log_summary.txt``, ``mlperf_log_detail.txt``)
and ``harness.json`` (LoadGen's verdict, what the SUT did, how busy the rest of the machine
was) plus ``samples.npz`` (per sample, in issue order: when the issue callback saw it and
when its batch finished; per batch: first sample, size, worker, start and end) into the
run's folder. Times are ``time.perf_counter_ns``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from sim.errors import InputError
from sim.validate import require_loadgen
from sim.validate.config import HarnessConfig
from sim.validate.machine import CpuMonitor, _current_niceness
from sim.validate.process import jsonable
from sim.validate.sut import WorkerSUT, make_executors
from sim.validate.thread_cpu import ThreadCensus

#: sim override field -> (LoadGen TestSettings attribute, conversion)
LOADGEN_FIELDS = {
    "min_duration_ns": ("min_duration_ms", lambda v: int(v) // 1_000_000),
    "max_duration_ns": ("max_duration_ms", lambda v: int(v) // 1_000_000),
    "min_query_count": ("min_query_count", int),
    "max_query_count": ("max_query_count", int),
    "server_target_qps": ("server_target_qps", float),
    "server_target_latency_ns": ("server_target_latency_ns", int),
    "server_target_latency_percentile": ("server_target_latency_percentile", float),
    "server_max_async_queries": ("server_max_async_queries", int),
    "single_stream_expected_latency_ns": ("single_stream_expected_latency_ns", int),
    "single_stream_target_latency_percentile": ("single_stream_target_latency_percentile", float),
    "multi_stream_expected_latency_ns": ("multi_stream_expected_latency_ns", int),
    "multi_stream_target_latency_percentile": ("multi_stream_target_latency_percentile", float),
    "multi_stream_samples_per_query": ("multi_stream_samples_per_query", int),
    "offline_expected_qps": ("offline_expected_qps", float),
    "performance_sample_count_override": ("performance_sample_count_override", int),
    "qsl_rng_seed": ("qsl_rng_seed", int),
    "sample_index_rng_seed": ("sample_index_rng_seed", int),
    "schedule_rng_seed": ("schedule_rng_seed", int),
}


def read_detail(path: Path) -> dict:
    """First value of each key in LoadGen's ``mlperf_log_detail.txt``."""
    values: dict = {}
    for line in Path(path).read_text(errors="replace").splitlines():
        if line.startswith(":::MLLOG "):
            try:
                entry = json.loads(line[len(":::MLLOG "):])
            except ValueError:
                continue
            values.setdefault(entry.get("key"), entry.get("value"))
    return values


def run_test(lg, sut, sut_handle, settings, out: Path, total: int, perf: int, trace: bool = False
             ) -> tuple[float, dict, dict]:
    """One LoadGen test of ``sut`` (an object with ``start``/``stop`` around the test) with a
    QSL of ``total`` samples (``perf`` loaded), logs into ``out``, the host's CPU use watched:
    (wall seconds of the test, the CPU monitor's figures with the CPU time of the process's
    threads over the test under ``threads_cpu`` (``sim.validate.thread_cpu``), the detail
    log's records)."""
    qsl = lg.ConstructQSL(total, perf, lambda idx: None, lambda idx: None)
    log = lg.LogSettings()
    log.log_output.outdir = str(out)
    log.log_output.copy_summary_to_stdout = False
    log.enable_trace = trace
    monitor = CpuMonitor()
    sut.start()
    monitor.start()
    census = ThreadCensus().start()
    t_run = time.perf_counter()
    lg.StartTestWithLogSettings(sut_handle, qsl, settings, log, "no-audit.config")
    wall_s = time.perf_counter() - t_run
    threads_cpu = census.stop(getattr(sut, "native_ids", ()))
    machine = {**monitor.stop(), "threads_cpu": threads_cpu}
    sut.stop()
    lg.DestroyQSL(qsl)
    lg.DestroySUT(sut_handle)
    return wall_s, machine, read_detail(out / "mlperf_log_detail.txt")


def run_loadgen(spec: dict) -> dict:
    """One LoadGen test against the real SUT; writes the run's folder (module docstring)."""
    lg = require_loadgen()
    cfg = HarnessConfig.from_dict(spec["config"])
    scenario = spec["scenario"]
    out = Path(spec["outdir"]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.chdir(out)                                    # no stray audit.config applies
    conf = out / "user.conf"
    conf.write_text("# all settings are set explicitly by the harness after FromConfig\n")
    settings = lg.TestSettings()
    rc = settings.FromConfig(str(conf), spec["mlperf_model"], scenario)
    if rc != 0:
        raise InputError(f"LoadGen's FromConfig({conf}, {spec['mlperf_model']!r}, {scenario}) failed with code {rc}")
    settings.scenario = getattr(lg.TestScenario, scenario)
    settings.mode = lg.TestMode.PerformanceOnly
    for key, value in spec.get("overrides", {}).items():
        if key not in LOADGEN_FIELDS:
            raise InputError(f"harness: setting {key!r} cannot be passed to LoadGen; expected one of "
                             f"{sorted(LOADGEN_FIELDS)}")
        attr, conv = LOADGEN_FIELDS[key]
        setattr(settings, attr, conv(value))

    t0 = time.perf_counter()
    executors = make_executors(cfg, null=bool(spec.get("null_model")), seed=int(spec.get("seed", 0)),
                               null_sleep_ns=spec.get("null_sleep_ns"))
    for ex in executors:
        ex.warm_up()
    # how fast the machine is just before the run (compared with the same probe in the calibration)
    probe = executors[0].probe(float(spec.get("probe_s", 0.0)))
    probe_max = executors[0].probe_largest(float(spec.get("probe_s", 0.0)))
    setup_s = time.perf_counter() - t0

    sut = WorkerSUT(cfg, executors, scenario, lg.QuerySamplesComplete,
                    lambda i: lg.QuerySampleResponse(i, 0, 0))
    sut_handle = lg.ConstructSUT(sut.issue_queries, sut.flush_queries)
    total = int(spec["total_sample_count"])
    perf = int(spec.get("performance_sample_count", total))
    wall_s, machine, detail = run_test(lg, sut, sut_handle, settings, out, total, perf,
                                       trace=bool(spec.get("trace", False)))
    arrays = sut.arrays()
    np.savez_compressed(out / "samples.npz", **arrays)
    counts = arrays["batch_count"]
    result = {
        "schema": "sim.harness_run/1",
        "scenario": scenario, "mlperf_model": spec["mlperf_model"], "config": cfg.to_dict(), "outdir": str(out),
        "overrides": spec.get("overrides", {}), "null_model": bool(spec.get("null_model")),
        "valid": detail.get("result_validity") == "VALID",
        "result_validity": detail.get("result_validity"),
        "loadgen": {k: v for k, v in detail.items() if k.startswith(("result_", "early_stopping", "generated_",
                                                                     "effective_"))
                    and k != "effective_test_mode"},
        "samples_issued": int(sut.issued), "batches": int(len(counts)),
        "mean_batch_size": float(counts.mean()) if len(counts) else 0.0,
        "setup_s": setup_s, "wall_s": wall_s, "machine": {**machine, "niceness": _current_niceness()},
        "probe": {"runs": len(probe), "median_ns": float(np.median(probe)) if probe else None},
        "probe_max": {"batch": cfg.max_batch, "runs": len(probe_max),
                      "median_ns": float(np.median(probe_max)) if probe_max else None},
        "errors": sut.errors + ([f"LoadGen logged {detail.get('num_errors')} errors"]
                                if detail.get("num_errors") else []),
    }
    (out / "harness.json").write_text(json.dumps(result, indent=1, default=jsonable) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m sim.validate.harness SPEC.json", file=sys.stderr)
        return 2
    try:
        spec = json.loads(Path(argv[0]).read_text())
        run_loadgen(spec)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
