"""The measured CPU profile document: its schema name, its fields and the stats objects in it.

A profile is one JSON object per model and machine: ``sim.profile.measure`` makes it,
``sim.profile.store`` keeps it in the cache (and summarises it as text) and
``sim.cost.cpu_profile`` turns it into batch service times. ``stats`` and ``pct`` compute
the summary values it is made of.

The JSON file (``"schema": "sim.cpu_profile/1"``)
-------------------------------------------------
Times are integer nanoseconds. A *stats* object summarises repeated samples:
``{n, median, mean, min, max, p10, p90, q25, q75, iqr, mad}`` (``mad``: median absolute
deviation from the median; percentiles with linear interpolation).

- ``schema``, ``doc``: this format's name and a pointer to this docstring.
- ``workload``: ``{name, mlperf_model, sha256}``; ``sha256`` is the model's content hash.
- ``fingerprint``, ``fingerprint_hash``: the machine and thread settings
  (``sim.util.fingerprint``) and their 12-digit hash.
- ``created_utc``, ``updated_utc``: ISO-8601 times of the first and last measurement.
- ``graph``: ``original_nodes``, ``optimized_nodes``, ``optimized_op_types``
  (``{op_type: count}``), ``renamed_nodes`` (bool), ``heuristic`` (one line),
  ``kernels`` (``{optimized node name: {op_type, domain, kind, covers}}`` where
  ``kind`` is ``fused`` (covers > 1 node), ``single`` or ``inserted`` (covers none) and
  ``covers`` lists original node names), ``uncovered``
  (``{constant_folded, removed, unaccounted}``: lists of original node names).
- ``batches``: ``{"<batch size>": entry}``, each entry with
  - ``measured_utc`` and ``settings`` (``warmup_runs, repeat_runs, min_runs,
    max_seconds, cold_runs, cold_idle_ms, seed, runs_per_block``);
  - ``end_to_end``: ``clean_busy_ns`` and ``clean_idle_ns`` (stats, no profiler),
    ``first_run_ns`` (the first run at this batch size, before warm-up, no profiler),
    ``profiled_model_run_ns`` (stats of the profiler's model_run events) and
    ``profiled_wall_ns`` (stats of perf_counter around the profiled runs);
  - ``kernel_sum_ns``: stats of the sum of all kernel times in one profiled run;
  - ``gap``: ``model_run_minus_kernel_sum_ns`` (stats, per profiled run) and
    ``model_run_minus_kernel_sum_pct`` (median gap in % of the median model_run),
    ``clean_minus_kernel_sum_ns`` and ``clean_minus_kernel_sum_pct`` (median clean
    busy time minus median kernel sum, in ns and in % of the clean time; negative when
    the profiler inflates kernels more than the framework costs);
  - ``profiler_overhead``: ``{ns, pct}``: median profiled wall time minus median clean
    busy time, and that in % of the clean time;
  - ``idle_penalty``: ``{ns, pct}``: median idle time minus median busy time;
  - ``intra_op_pool_threads``: the most threads the profiler saw one kernel use;
  - ``load_average_1min``: the machine's load average when this batch size started
    (other work on the machine shows up here and in the spread of the times);
  - ``kernels``: in execution order, each ``{name, op_type, domain, provider, kind
    (as in ``graph.kernels``, or ``unmapped`` for a kernel of a subgraph body), covers,
    in_optimized_graph, calls_per_run, dur_ns (stats of the kernel's total
    time in one run), share_pct (median time in % of the median kernel sum),
    pool_threads, parallel_sections_per_call}``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

SCHEMA = "sim.cpu_profile/1"
DOC = "Measured onnxruntime CPU profile; fields are documented in the docstring of sim/profile/schema.py."


def stats(values: Iterable[float]) -> dict:
    """Summary of repeated samples as integer ns: n, median, mean, min, max, p10, p90, q25, q75, iqr, mad."""
    arr = np.asarray(list(values), dtype=np.float64)
    if arr.size == 0:
        return {"n": 0}
    q = np.percentile(arr, [10, 25, 50, 75, 90])
    med = float(q[2])
    out = {"n": int(arr.size), "median": med, "mean": float(arr.mean()), "min": float(arr.min()),
           "max": float(arr.max()), "p10": float(q[0]), "p90": float(q[4]), "q25": float(q[1]),
           "q75": float(q[3]), "iqr": float(q[3] - q[1]), "mad": float(np.median(np.abs(arr - med)))}
    return {k: (v if k == "n" else int(round(v))) for k, v in out.items()}


def pct(part: float, whole: float) -> float:
    """``part`` in % of ``whole``, to two decimals (0.0 when ``whole`` is 0)."""
    return round(100.0 * part / whole, 2) if whole else 0.0
