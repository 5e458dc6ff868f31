"""Measuring a model in onnxruntime on this machine: end-to-end times busy and idle, and kernel times.

``measure`` runs a workload on this machine with onnxruntime's CPUExecutionProvider at
graph optimisation level ORT_ENABLE_ALL, once per requested batch size, and returns the
profile (``sim.profile.schema``) that the simulator's CPU cost model needs; its kernels
are mapped to the original graph by ``sim.profile.kernels``.

How it is measured
------------------
Two sessions are made from the same model bytes and the same options; only one of them
profiles, because onnxruntime's profiler costs time on every kernel.

- The *clean* session (no profiling) gives end-to-end times: ``time.perf_counter_ns``
  around ``session.run``. ``clean_busy_ns`` are back-to-back runs (the service time of
  a busy server); ``clean_idle_ns`` are runs that each follow ``cold_idle_ms`` of
  sleep (a server that was idle: its thread pool stopped spinning and parked, its
  caches were cooled by other work).
- The *profiled* session (``SessionOptions.enable_profiling``) writes onnxruntime's
  Chrome-trace JSON. Its ``model_run`` events give the end-to-end time seen by the
  profiler, its ``Node`` events (``<node>_kernel_time``, with ``op_name``,
  ``provider`` and the thread pool's scheduling statistics) give each kernel's time.
  The profiler's clock counts whole microseconds.

For each batch size: one first run (``first_run_ns``), warm-up runs in both sessions,
then rounds of ``sleep(cold_idle_ms)``, one idle run, ``runs_per_block`` busy runs (all
clean), one discarded profiled run (while the clean session's threads settle) and
``runs_per_block`` profiled runs. ``runs_per_block`` is ``ceil(repeat_runs /
cold_runs)``. Interleaving matters on a shared machine: its speed drifts over seconds
(several-fold on the 2-core VM this was written on), and clean and profiled times are
only comparable when taken at the same time. Repeats are adaptive: rounds go on until
``repeat_runs`` busy and ``cold_runs`` idle runs were made, or until ``max_seconds``
have passed for this batch size and at least ``min_runs`` busy runs were made.

A model onnxruntime cannot load (an op it does not implement, a graph it finds invalid) is an
``InputError`` naming the model's file and onnxruntime's reason, before anything is measured; an
op ONNX itself does not define is named with its node first (``sim.workload.layers.check_ops``).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import onnx

from sim.errors import InputError
from sim.profile.kernels import HEURISTIC, kernel_table, map_kernels, named_model, parse_trace
from sim.profile.schema import DOC, SCHEMA, pct, stats
from sim.util.fingerprint import fingerprint, fingerprint_hash
from sim.workload.catalog import Workload
from sim.workload.inputs import graph_inputs, make_feeds
from sim.workload.layers import check_ops

EXECUTION_MODE = "ORT_SEQUENTIAL"
OPT_LEVEL = "ORT_ENABLE_ALL"
DEFAULTS = dict(warmup_runs=3, repeat_runs=30, min_runs=5, max_seconds=8.0, cold_runs=10, cold_idle_ms=50.0)


def _utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def check_batches(batch_sizes: int | Iterable[int], source: str) -> list[int]:
    """The distinct batch sizes, sorted; an ``InputError`` naming ``source`` unless all are integers >= 1."""
    if isinstance(batch_sizes, (int, np.integer)) and not isinstance(batch_sizes, bool):
        batch_sizes = [batch_sizes]
    try:
        items = list(batch_sizes)
    except TypeError:
        raise InputError(f"{source}: batch sizes {batch_sizes!r}: expected a list of integers >= 1") from None
    if not items:
        raise InputError(f"{source}: no batch sizes given; expected at least one integer >= 1")
    out = []
    for b in items:
        if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b <= 0:
            raise InputError(f"{source}: batch size {b!r}: expected an integer >= 1")
        out.append(int(b))
    return sorted(set(out))


def check_threads(threads: int | None, source: str) -> int | None:
    """Intra-op threads as given, None for onnxruntime's default (None or 0); an ``InputError`` if negative."""
    if threads is None or threads == 0:
        return None
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 0:
        raise InputError(f"{source}: intra-op threads {threads!r}: expected an integer >= 1 (or None for "
                         f"onnxruntime's default)")
    return int(threads)


def _check_batch_dim(model: onnx.ModelProto, batch: int, source: str) -> None:
    for v in graph_inputs(model):
        dims = v.type.tensor_type.shape.dim if v.type.tensor_type.HasField("shape") else []
        if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0 and dims[0].dim_value != batch:
            raise InputError(f"{source}: input '{v.name}' has a fixed first dimension {dims[0].dim_value}, so "
                             f"batch size {batch} cannot be run; expected batch size {dims[0].dim_value} or a "
                             f"model with a symbolic batch dimension")


def _ort_reason(exc: Exception) -> str:
    """onnxruntime's message, one short line: ``[ONNXRuntimeError] : 10 : INVALID_GRAPH : ...`` without the prefix."""
    text = " ".join(str(exc).split())
    parts = text.split(" : ", 3)
    if text.startswith("[ONNXRuntimeError]") and len(parts) == 4:
        text = f"{parts[2]}: {parts[3]}"
    return text if len(text) <= 300 else text[:300] + "..."


def _session(model_bytes: bytes, threads: int | None, profile_prefix: str | None = None,
             optimized_path: str | None = None, source: str = "model"):
    import onnxruntime as ort  # noqa: PLC0415 - heavy: loaded only to measure

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = int(threads or 0)
    so.inter_op_num_threads = 0
    so.log_severity_level = 3  # the NCHWc "hardware specific" warning when saving is expected
    if profile_prefix:
        so.enable_profiling = True
        so.profile_file_prefix = profile_prefix
    if optimized_path:
        so.optimized_model_filepath = optimized_path
        so.add_session_config_entry("session.optimized_model_external_initializers_file_name",
                                    Path(optimized_path).name + ".data")
        so.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
    try:
        return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])
    except Exception as exc:
        # onnxruntime's own errors (NOT_IMPLEMENTED, INVALID_GRAPH, FAIL, ...) come from its pybind module
        if not type(exc).__module__.startswith("onnxruntime"):
            raise
        raise InputError(f"{source}: onnxruntime cannot load the model ({_ort_reason(exc)}); expected a model "
                         f"whose ops onnxruntime's CPU provider implements") from None


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _timed(session, feeds) -> int:
    start = time.perf_counter_ns()
    session.run(None, feeds)
    return time.perf_counter_ns() - start


def _measure_batch(plain, profiled, feeds, batch: int, labels: list, warmup_runs: int, repeat_runs: int,
                   min_runs: int, max_seconds: float, cold_runs: int, cold_idle_ms: float) -> dict:
    """Interleaved rounds of clean and profiled runs at one batch size (see the module docstring)."""
    load = _load_average()
    first = _timed(plain, feeds)
    for _ in range(warmup_runs):
        plain.run(None, feeds)
    for _ in range(warmup_runs):
        profiled.run(None, feeds)
        labels.append(None)
    per_block = max(1, -(-repeat_runs // cold_runs))
    busy, idle, walls = [], [], []
    t0 = time.perf_counter()
    while True:
        time.sleep(cold_idle_ms / 1000.0)
        idle.append(_timed(plain, feeds))
        busy += [_timed(plain, feeds) for _ in range(per_block)]
        profiled.run(None, feeds)          # the switch run: the other session's threads settle
        labels.append(None)
        for _ in range(per_block):
            walls.append(_timed(profiled, feeds))
            labels.append(batch)
        if len(busy) >= repeat_runs and len(idle) >= cold_runs:
            break
        if len(busy) >= min_runs and time.perf_counter() - t0 >= max_seconds:
            break
    return {"first": first, "busy": busy, "idle": idle, "walls": walls, "utc": _utc_now(), "load": load,
            "per_block": per_block}


def measure(workload: Workload, batch_sizes: int | Iterable[int] = (1,), intra_op_threads: int | None = None,
            warmup_runs: int = DEFAULTS["warmup_runs"], repeat_runs: int = DEFAULTS["repeat_runs"],
            seed: int = 0, *, min_runs: int = DEFAULTS["min_runs"], max_seconds: float = DEFAULTS["max_seconds"],
            cold_runs: int = DEFAULTS["cold_runs"], cold_idle_ms: float = DEFAULTS["cold_idle_ms"]) -> dict:
    """Measure ``workload`` at each batch size on this machine; the profile dict (not saved)."""
    source = f"workload {workload.name}"
    batches = check_batches(batch_sizes, source)
    threads = check_threads(intra_op_threads, source)
    for label, value, low in (("warmup_runs", warmup_runs, 0), ("repeat_runs", repeat_runs, 1),
                              ("min_runs", min_runs, 1), ("cold_runs", cold_runs, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise InputError(f"{source}: {label} = {value!r}: expected an integer >= {low}")
    if not (max_seconds > 0 and cold_idle_ms >= 0):
        raise InputError(f"{source}: max_seconds = {max_seconds!r}, cold_idle_ms = {cold_idle_ms!r}: expected "
                         f"max_seconds > 0 and cold_idle_ms >= 0")
    min_runs = min(min_runs, repeat_runs)
    check_ops(workload.model, str(workload.path))
    model, renamed = named_model(workload.model)
    for b in batches:
        _check_batch_dim(model, b, source)
    feeds = {b: make_feeds(model, b, seed=seed, source=source) for b in batches}
    model_bytes = model.SerializeToString()
    settings = {"warmup_runs": int(warmup_runs), "repeat_runs": int(repeat_runs), "min_runs": int(min_runs),
                "max_seconds": float(max_seconds), "cold_runs": int(cold_runs),
                "cold_idle_ms": float(cold_idle_ms), "seed": int(seed)}

    # two sessions from the same bytes, measured in interleaved rounds (module docstring)
    clean: dict[int, dict] = {}
    labels: list = []        # batch size of each profiled run, None for warm-up runs
    with tempfile.TemporaryDirectory(prefix="sim-cpu-profile-") as tmp:
        opt_path = os.path.join(tmp, "optimized.onnx")
        plain = _session(model_bytes, threads, source=str(workload.path))
        profiled = _session(model_bytes, threads, profile_prefix=os.path.join(tmp, "trace"),
                            optimized_path=opt_path, source=str(workload.path))
        for b in batches:
            clean[b] = _measure_batch(plain, profiled, feeds[b], b, labels, warmup_runs, repeat_runs, min_runs,
                                      max_seconds, cold_runs, cold_idle_ms)
        del plain
        trace_path = profiled.end_profiling()
        with open(trace_path, encoding="utf-8") as fh:
            events = json.load(fh)
        optimized = onnx.load(opt_path, load_external_data=False)
        del profiled
    mapping = map_kernels(model, optimized)
    traced = parse_trace(events, labels)

    entries = {}
    for b in batches:
        runs = traced[b]
        model_run = [d for d, _ in runs]
        kernels, sums, max_pool = kernel_table(runs, mapping)
        busy, idle = stats(clean[b]["busy"]), stats(clean[b]["idle"])
        prof_wall = stats(clean[b]["walls"])
        mr, ks = stats(model_run), stats(sums)
        entries[str(b)] = {
            "measured_utc": clean[b]["utc"],
            "settings": {**settings, "runs_per_block": clean[b]["per_block"]},
            "end_to_end": {"clean_busy_ns": busy, "clean_idle_ns": idle, "first_run_ns": int(clean[b]["first"]),
                           "profiled_model_run_ns": mr, "profiled_wall_ns": prof_wall},
            "kernel_sum_ns": ks,
            "gap": {"model_run_minus_kernel_sum_ns": stats(m - s for m, s in zip(model_run, sums)),
                    "model_run_minus_kernel_sum_pct": pct(mr["median"] - ks["median"], mr["median"]),
                    "clean_minus_kernel_sum_ns": busy["median"] - ks["median"],
                    "clean_minus_kernel_sum_pct": pct(busy["median"] - ks["median"], busy["median"])},
            "profiler_overhead": {"ns": prof_wall["median"] - busy["median"],
                                  "pct": pct(prof_wall["median"] - busy["median"], busy["median"])},
            "idle_penalty": {"ns": idle["median"] - busy["median"],
                             "pct": pct(idle["median"] - busy["median"], busy["median"])},
            "intra_op_pool_threads": int(max_pool),
            "load_average_1min": clean[b]["load"],
            "kernels": kernels,
        }

    fp = fingerprint(intra_op_threads=threads, inter_op_threads=0, execution_mode=EXECUTION_MODE,
                     graph_optimization_level=OPT_LEVEL)
    now = _utc_now()
    return {
        "schema": SCHEMA,
        "doc": DOC,
        "workload": {"name": workload.name, "mlperf_model": workload.mlperf_model, "sha256": workload.sha256},
        "fingerprint": fp,
        "fingerprint_hash": fingerprint_hash(fp),
        "created_utc": now,
        "updated_utc": now,
        "graph": {
            "original_nodes": len(model.graph.node),
            "optimized_nodes": len(optimized.graph.node),
            "optimized_op_types": dict(sorted(Counter(n.op_type for n in optimized.graph.node).items())),
            "renamed_nodes": bool(renamed),
            "heuristic": HEURISTIC,
            "kernels": {name: mapping["kernels"][name] for name in mapping["order"]},
            "uncovered": mapping["uncovered"],
        },
        "batches": entries,
    }
