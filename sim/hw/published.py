"""Predicting published MLPerf Inference results: ``python -m sim predict-published``.

``predict_rows(rows, calibration)`` takes rows that describe systems and tests (the
columns of ``sim.hw.rows.INPUT_COLUMNS``; any other column is ignored, result columns
included) and returns, for each row in order, the predicted metric in the row's units and
a status: ``ok`` or ``unsupported: <reason>`` (a device, model, scenario or metric no
profile covers; never a guess). A row with a bad value (a count of ``1e400`` devices, a
negative latency bound, a system too large to simulate) is ``unsupported: row <n>: <the
column or the problem>: expected ...`` and the other rows are still predicted; rows are
numbered from 1, the header not counted. A Server prediction never exceeds the same system's
Offline prediction (``predict_case``).

The calibration comes from published results (``calibration_from``): the shared results
file by default, plus the measurements shipped as calibration data in
``hw_profiles/measured/*.csv`` (``read_measurements`` format, e.g. this machine's
onnxruntime latencies for the ``local-cpu`` profile; units fitted on them feed no other
unit's prior). Fitting it takes under a minute; the result is cached under
``sim.workload.catalog.cache_dir()/hw`` keyed by the files' content, the profiles and the code.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import pickle
from dataclasses import replace
from pathlib import Path

from sim.errors import InputError
from sim.hw import calibrate as cal
from sim.hw import profiles
from sim.hw import system_model as sm
from sim.hw.rows import INPUT_COLUMNS, REQUIRED_COLUMNS, Case, read_case, unit_of
from sim.paths import SHARED_DATA
from sim.util import atomic
from sim.util.textfile import read_bytes, read_csv
from sim.workload import catalog as workloads

MODEL_VERSION = "hw-model/7"      # bump when the model or its fitting changes: invalidates caches
DEFAULT_RESULTS = SHARED_DATA / "mlperf_results" / "results.csv"


def measured_files() -> list[Path]:
    """Measurements shipped as calibration data (``<profiles dir>/measured/*.csv``)."""
    return sorted((profiles.profiles_dir() / "measured").glob("*.csv"))


def _fingerprint(path: Path) -> str:
    h = hashlib.sha256()
    h.update(MODEL_VERSION.encode())
    h.update(read_bytes(path, "a results CSV"))          # size-limited: a user may name any file
    # the profiles and the model's code: a change to either refits
    for p in (sorted(profiles.profiles_dir().glob("*.yaml")) + measured_files()
              + sorted(Path(__file__).parent.glob("*.py"))):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def calibration_from(results: str | Path | None = None, use_cache: bool = True) -> cal.Calibration:
    """The calibration fitted on a results CSV (all its supported rows), cached on disk."""

    path = Path(results) if results else DEFAULT_RESULTS
    if not path.is_file():
        raise InputError(f"{path}: no such file; expected a results CSV to calibrate on (--results)")
    cache = workloads.cache_dir() / "hw" / f"calibration-{_fingerprint(path)}.pkl"
    if use_cache and cache.is_file():
        try:
            return pickle.loads(cache.read_bytes())
        except Exception:   # a damaged cache entry is refitted
            pass
    cases, values, measured = calibration_data(path)
    calib = cal.fit_all(cases, values, own_data_only=measured)
    if use_cache:
        atomic.write_bytes(cache, pickle.dumps(calib))
    return calib


def calibration_data(results: Path) -> tuple[list[Case], dict[int, float], frozenset]:
    """The cases and values a calibration is fitted on: the results file's rows, then every
    measured file's (indices after them), and the units the measurements alone make."""
    rows = cal.read_results(results)
    cases = [read_case(r, i) for i, r in enumerate(rows)]
    values = {i: v for i, r in enumerate(rows) if (v := cal.observed(r)) is not None}
    measured_units = set()
    for path in measured_files():
        extra, vals = cal.read_measurements(path)
        base = len(cases)
        for c in extra:
            cases.append(replace(c, index=base + c.index, system_key=f"measured/{path.name}/{c.system_key}"))
            values[base + c.index] = vals[c.index]
            measured_units.add(unit_of(cases[-1]))
    published_units = {unit_of(c) for c in cases[:len(rows)] if c.ok}
    return cases, values, frozenset(measured_units - published_units)


def _corrected(case: Case, calib: cal.Calibration) -> float:
    params, _ = calib.params_for(case)
    corr, _ = calib.correction(case)
    return sm.simulate_case(case, params) * math.exp(-corr)


def offline_twin(case: Case) -> Case:
    """The same system's Offline test (a Server row's throughput ceiling)."""
    return replace(case, scenario="Offline", target="offline", units="samples/s", latency_bound_ns=None)


def predict_capped(case: Case, calib: cal.Calibration) -> tuple[float, float | None]:
    """(the simulated metric of a supported row with its product's residual correction, the
    value before the Offline cap or None). A Server prediction is capped at the same
    system's Offline prediction (``system_model.server_within_offline``): the two corrections
    come from different rows and can disagree, but a Server run does not sustain more than
    the Offline throughput of its system."""
    value = _corrected(case, calib)
    if case.target == "server" and value > 0:
        offline = _corrected(offline_twin(case), calib)
        if offline > 0:
            capped_value, capped = sm.server_within_offline(value, offline)
            if capped:
                return capped_value, value
    return value, None


def predict_case(case: Case, calib: cal.Calibration) -> float:
    """The prediction of a supported row (``predict_capped``)."""
    return predict_capped(case, calib)[0]


def predict_rows(rows: list[dict], calib: cal.Calibration,
                 uncapped: dict | None = None) -> list[tuple[float | None, str]]:
    """(predicted value or None, status) for each row, in order (see the module docstring).
    ``uncapped``, if given, receives {row index: Server prediction before the Offline cap}
    for the rows ``predict_capped`` capped."""
    cases = [read_case({k: row.get(k, "") for k in INPUT_COLUMNS}, i) for i, row in enumerate(rows)]
    return predict_cases(cases, calib, uncapped)


def predict_cases(cases: list[Case], calib: cal.Calibration,
                  uncapped: dict | None = None) -> list[tuple[float | None, str]]:
    """``predict_rows`` for cases already read (a what-if builds its own: ``sim.hw.whatif``);
    ``uncapped`` is keyed by position in ``cases``."""
    out = []
    for i, case in enumerate(cases):
        if not case.ok:
            out.append((None, f"unsupported: {case.unsupported}"))
            continue
        try:
            value, before = predict_capped(case, calib)
        except InputError as exc:       # a value the simulation refuses (a run too large, say)
            out.append((None, f"unsupported: row {i + 1}: {exc}"))
            continue
        if before is not None and uncapped is not None:
            uncapped[i] = before
        if not value > 0:
            out.append((None, "unsupported: the model finds no setting that meets the row's latency bound"))
            continue
        out.append((value, "ok"))
    return out


def explain_row(row: dict, calib: cal.Calibration) -> dict:
    """What a prediction assumed: precision and why, the parameters' source, the correction."""
    return explain_case(read_case({k: row.get(k, "") for k in INPUT_COLUMNS}, 0), calib)


def explain_case(case: Case, calib: cal.Calibration) -> dict:
    """``explain_row`` of a case already read; ``network`` names the network predicted."""
    if not case.ok:
        return {"status": f"unsupported: {case.unsupported}"}
    _, src = calib.params_for(case)
    _, corr = calib.correction(case)
    return {"precision": case.precision, "precision_reason": case.precision_reason, "parameters": src,
            "correction": corr, "devices": case.devices, "target": case.target, "network": case.workload}


def read_rows(path: str | Path) -> tuple[list[str], list[dict]]:
    """(header, rows) of a CSV of systems to predict (UTF-8, a byte-order mark accepted, size-limited)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file; expected a CSV of published systems (columns "
                         f"{', '.join(INPUT_COLUMNS)})")
    header, rows = read_csv(path, "a CSV of published systems")
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise InputError(f"{path}: column '{missing[0]}' is missing; expected at least {list(REQUIRED_COLUMNS)}")
    return header, rows


def write_predictions(path: str | Path, header: list[str], rows: list[dict],
                      predictions: list[tuple[float | None, str]], extra: list[dict] | None = None) -> Path:
    """The input rows in order, plus ``predicted_value`` and ``status`` (and ``extra`` columns)."""
    # an unsupported row's explanation repeats its status, which has its own column
    extra_cols = sorted({k for e in (extra or []) for k in e} - {"status", "predicted_value"}) if extra else []
    cols = header + [c for c in ("predicted_value", "status") + tuple(extra_cols) if c not in header]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for k, (row, (value, status)) in enumerate(zip(rows, predictions)):
        out = dict(row)
        out["predicted_value"] = "" if value is None else f"{value:.6g}"
        out["status"] = status
        if extra:
            out.update({c: extra[k].get(c, "") for c in extra_cols})
        w.writerow(out)
    return atomic.write_text(path, buf.getvalue())
