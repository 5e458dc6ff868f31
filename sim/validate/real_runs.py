"""The validation's real runs as kept in their folders, and what their files say.

A real run (``sim.validate.harness``) leaves ``harness.json`` and ``samples.npz`` in its
folder. While other processes disturb it, the run is made again in
``<folder>.attempt<n>``; the least disturbed attempt is kept, and the first undisturbed
one ends the retries (``keep_least_disturbed``). ``kept_run`` reads that choice back for a
replay (``Plan.replay``: the simulated side again, no real run).

From a kept run: LoadGen's values (``loadgen_value``), why LoadGen marked it INVALID
(``invalid_reasons``), how fast its batches ran against the calibration (``batch_speed``)
and its per-sample latencies from the SUT's clock (``real_latencies``, for the plots).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sim.errors import InputError


def loadgen_value(real: dict, key: str) -> float:
    """LoadGen's value ``key`` of a real run (from its detail log), nan where it has none."""
    v = real["loadgen"].get(key)
    return float(v) if v is not None else float("nan")


def invalid_reasons(real: dict) -> list[str]:
    lg = real["loadgen"]
    out = []
    for key, text in (("result_min_duration_met", "min duration"), ("result_min_queries_met", "min queries"),
                      ("result_perf_constraints_met", "latency bound"), ("early_stopping_met", "early stopping")):
        if lg.get(key) is False:
            out.append(text)
    return out


# ---------------------------------------------------------------------------------------
# the attempts of a run


def attempt_folder(folder: Path, attempt: int) -> Path:
    """Where attempt ``attempt`` (from 0) of the run in ``folder`` is kept."""
    return folder if attempt == 0 else folder.parent / f"{folder.name}.attempt{attempt + 1}"


def foreign_cores(result: dict) -> float:
    """The CPU cores other processes used on average during a run (0 where unknown)."""
    return result["machine"].get("foreign_cores_mean") or 0.0


def keep_least_disturbed(best: dict | None, result: dict, disturbed_cores: float) -> tuple[dict, bool]:
    """(the attempt to keep so far, whether to stop): the least disturbed attempt, and the
    first undisturbed one ends the retries."""
    if best is None or foreign_cores(result) < foreign_cores(best):
        best = result
    return best, foreign_cores(result) <= disturbed_cores


def kept_run(folder: Path, overrides: dict, retries: int, disturbed_cores: float) -> dict:
    """Replay: the attempt the real run kept, read back from its folder."""
    spec = folder / "spec.json"
    if spec.is_file() and json.loads(spec.read_text()).get("overrides") != json.loads(json.dumps(overrides)):
        raise InputError(f"{spec}: the kept run had other LoadGen settings than this replay asks for; "
                         f"replay with the options the validation ran with")
    best = None
    for attempt in range(1 + max(0, retries)):
        path = attempt_folder(folder, attempt) / "harness.json"
        if not path.is_file():
            break
        result = json.loads(path.read_text())
        result.setdefault("attempt", attempt + 1)
        best, done = keep_least_disturbed(best, result, disturbed_cores)
        if done:
            break
    if best is None:
        raise InputError(f"{folder}: no kept real run (harness.json) to replay; run the validation first")
    return best


# ---------------------------------------------------------------------------------------
# a run's own logs


def batch_speed(folder: Path, cost) -> float | None:
    """How long a real run's batches took against the calibration: the median over its
    batches of (inference time) / (calibrated busy median of that batch size), from the
    harness's batch log (``samples.npz``). A diagnostic, never an input of a prediction: 1.10
    says the machine ran 10% slower during that run than while it was calibrated."""
    path = Path(folder) / "samples.npz"
    if not path.is_file():
        return None
    with np.load(path) as z:
        took = z["batch_end_ns"] - z["batch_start_ns"]
        count = z["batch_count"]
    known = [(t, int(c)) for t, c in zip(took, count) if int(c) in cost.batch_sizes and t > 0]
    return float(np.median([t / cost.median_ns(c) for t, c in known])) if known else None


def real_latencies(real: dict, traffic) -> np.ndarray | None:
    """A real run's per-sample latencies (per query for MultiStream), from the SUT's clock.

    The SUT sees when its issue callback ran and when results were ready; LoadGen's own
    stamps differ by an offset (LoadGen's issue and completion overhead; for Server the
    run's start is unknown to the SUT). One shift per run makes the mean equal LoadGen's
    mean latency, so the curve's shape is the SUT's and its position LoadGen's. For plots.
    """
    folder = Path(real.get("outdir") or "")
    try:
        own = np.load(folder / "samples.npz")
    except OSError:
        return None
    cb, done = own["cb_ns"].astype(np.int64), own["done_ns"].astype(np.int64)
    scenario = real["scenario"]
    lg = real["loadgen"]
    if scenario == "MultiStream":
        spq = traffic.samples_per_query
        n = len(cb) // spq
        lat = done[:n * spq].reshape(n, spq).max(axis=1) - cb[:n * spq:spq]
        target = lg.get("result_mean_query_latency_ns")
    elif scenario == "Server":
        n = min(len(cb), len(traffic.scheduled_ns))
        lat = done[:n] - traffic.scheduled_ns[:n]           # minus an unknown start time, fixed below
        target = lg.get("result_mean_latency_ns")
    elif scenario == "Offline":
        lat = done - cb.min()
        target = lg.get("result_mean_latency_ns")
    else:
        lat = done - cb
        target = lg.get("result_mean_latency_ns")
    if target is None or len(lat) == 0:
        return None
    return lat + (int(target) - int(lat.mean()))
