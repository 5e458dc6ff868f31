"""Sweeps: a grid of what-if questions, run in parallel, written point by point.

A *grid* (a YAML file, format below) names the questions: which devices or cost models,
how many of them, which batching settings, which Server QPS, which workloads, which
scenarios. Every combination is a *point*: a plain mapping of parameters. A point's *id*
is a hash of its parameters (``point_id``), so the same question always has the same
id, and its seed (for random service times) is derived from that id: a point gives the
same metrics whichever worker runs it, in whichever order, on whichever day.

Points run on local processes (``concurrent.futures.ProcessPoolExecutor``) by default,
or on an existing Dask cluster given its scheduler address (``dask.distributed``; the
workers need this package installed). The launching process writes one JSON line per
finished point to the results file, flushed and fsynced before the next one, so a sweep
killed at any moment loses no point it had written, and a rerun with the same results
file skips every id it finds there (a torn last line, from a kill in the middle of a
write, is cut off and ignored). Points that failed are recorded with their error and
are tried again on the next run.

Grid format (YAML)::

    name: batching what-ifs          # optional
    base:                            # fields shared by every point (optional)
      workload: resnet50             # needed by cpu_profile costs; names LoadGen's model
      settings: {min_query_count: 2000, min_duration_ns: 200000000}
    axes:                            # every combination of these lists (optional)
      scenario: [Server, Offline]
      device:
        - {label: fast, kind: affine, a_us: 500, b_us_per_sample: 20}
        - {label: cpu, kind: cpu_profile, small: true}
      accelerators: [1, 2, 4]
      batching:
        - {policy: none}
        - {policy: dynamic, max_batch: 16, max_queue_delay_us: 1000}
      qps: [500, 1000, peak]         # Server only; dropped for other scenarios
    points:                          # extra points, each merged over base (optional)
      - {scenario: SingleStream, device: {kind: fixed, time_us: 800}}

Point fields:

- ``scenario`` (required): SingleStream, MultiStream, Server or Offline.
- ``workload``: a built-in workload or .onnx path (its CPU profile is the cost when no
  device is given; its MLPerf model picks LoadGen's settings); ``small``: its small variant.
- ``mlperf_model``: LoadGen's model name for the settings (default: the workload's, or resnet50).
- ``system``: a system description (mapping, or a path to a system YAML file relative
  to the grid file; see ``sim.sut.system``). The file's content, not its path, goes into the
  point, so editing the file makes new points.
- ``device``: the accelerator's cost: a mapping as a system file's ``accelerators.cost``
  (``kind: fixed | exponential | affine | cpu_profile`` and its fields) plus an optional
  ``label``; or a device profile name of ``hw_profiles/`` (``device: a100-sxm``): the
  calibrated cost of one of its engines for the point's workload (one the hardware model
  covers) and scenario (``sim.hw.whatif``), ``accelerators`` then counting devices.
- ``accelerators``, ``instances``: device count and instances per device.
- ``batching``: a system file's ``batching`` mapping (policy, max_batch, max_queue_delay_us,
  preferred_batch_sizes).
- ``system.<path>``: any other system field, e.g. ``system.host.issue_overhead_us: [1, 5]``.
- ``qps``: the Server target QPS, or ``peak`` to search for the highest VALID QPS
  (``sim.apps.peak.peak_server_qps``; ``search: {rel_tol: 0.01, repeats: 5}`` tunes
  it). Ignored, and dropped from the point, in the other scenarios (so crossing scenarios
  with QPS values does not repeat their points).
- ``settings``: LoadGen test settings by ``TestSettings`` field name in SI units
  (``min_query_count``, ``min_duration_ns``, ``server_target_latency_ns``, ...).
- ``replica``: an integer that only changes the id, hence the seed (repeats of a point
  with random service times).

A record (one JSON line)::

    {"schema": "sim.sweep.record/1", "id": "9f2c...", "params": {...}, "seed": 11488...,
     "metrics": {"metric": "...", "value": ..., "valid": true, "latency_ns": {"p99": ...}, ...},
     "error": null, "elapsed_s": 0.012}

``python -m sim sweep GRID.yaml --out RESULTS.jsonl [--workers N] [--dask tcp://host:8786]``
runs a grid; ``run_sweep`` is the same call from Python, ``read_records`` reads results.

Modules: ``grid`` (reading, checking, expanding a grid), ``fields`` (point fields and their
checks), ``point`` (id, seed, description), ``system`` (a point -> system and cost),
``metrics`` (one point run -> its record), ``records`` (the results file), ``executors``
(local processes, Dask, the task loop), ``progress`` (progress bar, summary), ``run``
(``run_sweep``).
"""

from sim.apps.sweep.fields import POINT_FIELDS, SYSTEM_PREFIX
from sim.apps.sweep.grid import GRID_KEYS, Grid, expand, load_grid
from sim.apps.sweep.metrics import peak_metrics, run_metrics, run_point
from sim.apps.sweep.point import describe_point, point_id, seed_of
from sim.apps.sweep.progress import ProgressBar, SweepSummary
from sim.apps.sweep.records import RECORD_SCHEMA, ResultsFile, flatten, read_records
from sim.apps.sweep.run import run_sweep
from sim.apps.sweep.system import system_and_cost, system_mapping

__all__ = [
    "GRID_KEYS", "POINT_FIELDS", "RECORD_SCHEMA", "SYSTEM_PREFIX",
    "Grid", "ProgressBar", "ResultsFile", "SweepSummary",
    "describe_point", "expand", "flatten", "load_grid", "peak_metrics", "point_id", "read_records",
    "run_metrics", "run_point", "run_sweep", "seed_of", "system_and_cost", "system_mapping",
]
