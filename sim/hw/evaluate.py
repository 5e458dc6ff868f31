"""Accuracy of the calibrated simulator on published results.

- ``leave_one_system_out``: every system (submitter + system name, all its rounds) is
  predicted from parameters fitted without any of its rows. Only the calibration units
  the system touches are refitted (a unit's stage-1 fit sees only its own rows and its
  stage-2 prior only other units' stage-1 fits, so this is the exact refit);
- ``cross_scenario``: Server and MultiStream rows predicted from fits without them: per
  unit (chip), per product (the chip's other products keep theirs), or strictly (none in
  any fit);
- ``leave_one_network_out``: every network (all its rows, on every device) predicted
  from the whole calibration refitted without it: from its layer table and the devices'
  shared parameters, with no factor of its own (the headline of docs/hardware.md);
- ``twin_lookup``: the baseline: the median per-device value of the same accelerator's
  other systems in the same model and scenario;
- ``summarise``: median absolute error overall and per accelerator kind, model and
  scenario, with coverage (share of rows predicted with status ok).

Predictions of every scenario go through the simulator (``system_model.simulate_case``).
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from sim.hw import calibrate as cal
from sim.hw import names, published
from sim.hw import system_model as sm
from sim.hw.rows import Case, read_case, unit_of

FIVE_MODELS = ("resnet50", "ssd-mobilenet", "ssd-resnet34", "retinanet", "bert-99")


@dataclass
class Data:
    rows: list[dict]
    cases: list[Case]
    values: dict[int, float]


def load(path) -> Data:
    rows = cal.read_results(path)
    cases = [read_case(r, i) for i, r in enumerate(rows)]
    values = {i: v for i, r in enumerate(rows) if (v := cal.observed(r)) is not None}
    return Data(rows, cases, values)


# ---------------------------------------------------------------------------
# leave one system out
# ---------------------------------------------------------------------------

_G: dict = {}


def _fold(key: str) -> list[tuple[int, float]]:
    data, full, by_system = _G["data"], _G["full"], _G["by_system"]
    idx = by_system[key]
    held = set(idx)
    values = {i: v for i, v in data.values.items() if i not in held}
    units = {unit_of(data.cases[i]) for i in idx if data.cases[i].ok}
    fold = cal.fit_all(data.cases, values, stage1=full.stage1, only_units=units, warm=full.units)
    out = []
    for i in idx:
        c = data.cases[i]
        if c.ok and _G["filter"](c):
            out.append((i, published.predict_case(c, fold)))
    return out


def _run_folds(keys, data: Data, full: cal.Calibration, by_system: dict, case_filter, workers: int) -> dict[int, float]:
    _G.update(data=data, full=full, by_system=by_system, filter=case_filter)
    preds: dict[int, float] = {}
    if workers > 1:
        ctx = mp.get_context("fork")
        with ctx.Pool(workers) as pool:
            for res in pool.imap_unordered(_fold, keys, chunksize=4):
                preds.update(res)
    else:
        for k in keys:
            preds.update(_fold(k))
    return preds


def leave_one_system_out(data: Data, workers: int = 0, case_filter=None) -> tuple[dict[int, float], cal.Calibration]:
    """Predictions of every supported row from fits without its system; and the full fit."""
    workers = workers or min(2, os.cpu_count() or 1)
    case_filter = case_filter or (lambda c: True)
    full = cal.fit_all(data.cases, data.values)
    by_system = defaultdict(list)
    for c in data.cases:
        if c.ok and case_filter(c):
            by_system[c.system_key].append(c.index)
    keys = sorted(by_system, key=lambda k: -len(by_system[k]))
    return _run_folds(keys, data, full, by_system, case_filter, workers), full


# ---------------------------------------------------------------------------
# cross-scenario: fit on Offline + SingleStream only
# ---------------------------------------------------------------------------

CROSS_TARGETS = ("server", "multistream", "ms_streams")


def _cross_fold(key: tuple[str, str]) -> list[tuple[int, float]]:
    """``key``: ("unit", a calibration unit) or ("product", a profile): its Server and
    MultiStream rows leave the fit of its unit (which keeps every other row) and are predicted."""
    data, full = _G["data"], _G["full"]
    level, name = key
    mine = [c.index for c in data.cases if c.ok and (unit_of(c) if level == "unit" else c.profile) == name]
    held = {i for i in mine if data.cases[i].target not in ("offline", "singlestream")}
    values = {i: v for i, v in data.values.items() if i not in held}
    units = {unit_of(data.cases[i]) for i in mine}
    fold = cal.fit_all(data.cases, values, stage1=full.stage1, only_units=units, warm=full.units)
    return [(i, published.predict_case(data.cases[i], fold)) for i in mine if data.cases[i].target in CROSS_TARGETS]


def cross_scenario(data: Data, full: cal.Calibration | None = None, workers: int = 0,
                   strict: bool = False, per: str = "unit") -> dict[int, float]:
    """Server and MultiStream rows predicted from Offline and SingleStream rows of the same device.

    Default (``per="unit"``): each calibration unit (chip) in turn is refitted on its own
    Offline and SingleStream rows only, with priors learned from the other units (which keep
    all their rows), as for a chip none of whose products has published Server or
    MultiStream results. ``per="product"``: each product in turn loses its Server and
    MultiStream rows, while the other products of its chip keep theirs (an H100 PCIe whose
    H100 SXM sibling published Server). ``strict``: no Server or MultiStream row in any fit
    (every unit and every prior from Offline and SingleStream alone).
    """
    if per not in ("unit", "product"):
        raise ValueError(f"per must be 'unit' or 'product', not {per!r}")
    if strict and per != "unit":
        raise ValueError("strict leaves every Server and MultiStream row out of every fit: per does not apply")
    workers = workers or min(2, os.cpu_count() or 1)
    if strict:
        values = {i: v for i, v in data.values.items() if data.cases[i].target in ("offline", "singlestream")}
        calib = cal.fit_all(data.cases, values)
        idx = [c.index for c in data.cases if c.ok and c.target in CROSS_TARGETS]
        _G.update(calib=calib, data=data)
        return dict(zip(idx, _map(_predict_one, idx, workers)))
    full = full or cal.fit_all(data.cases, data.values)
    _G.update(data=data, full=full)
    keys = sorted({(per, unit_of(c) if per == "unit" else c.profile) for c in data.cases
                   if c.ok and c.target in CROSS_TARGETS})
    out: dict[int, float] = {}
    for res in _map(_cross_fold, keys, workers):
        out.update(res)
    return out


def _predict_one(i: int) -> float:
    return published.predict_case(_G["data"].cases[i], _G["calib"])


def _map(fn, items, workers: int):
    if workers > 1 and len(items) > 1:
        with mp.get_context("fork").Pool(workers) as pool:
            return pool.map(fn, items, chunksize=1)
    return [fn(x) for x in items]


# ---------------------------------------------------------------------------
# unseen products: every row of one product left out
# ---------------------------------------------------------------------------

def _product_fold(profile: str) -> list[tuple[int, float]]:
    data, full = _G["data"], _G["full"]
    mine = [c.index for c in data.cases if c.ok and c.profile == profile]
    held = set(mine)
    values = {i: v for i, v in data.values.items() if i not in held}
    units = {unit_of(data.cases[i]) for i in mine}
    stage1 = {u: f for u, f in full.stage1.items() if u not in units}   # the product's rows leave every stage
    fold = cal.fit_all(data.cases, values, stage1=stage1, only_units=units, warm=full.units)
    return [(i, published.predict_case(data.cases[i], fold)) for i in mine]


def leave_one_product_out(data: Data, full: cal.Calibration | None = None, workers: int = 0) -> dict[int, float]:
    """Every product (hardware profile) predicted with none of its rows in any fit: from its
    datasheet, its chip's other products where there are some, else the family's priors."""
    workers = workers or min(2, os.cpu_count() or 1)
    full = full or cal.fit_all(data.cases, data.values)
    _G.update(data=data, full=full)
    products = sorted({c.profile for c in data.cases if c.ok})
    out: dict[int, float] = {}
    for res in _map(_product_fold, products, workers):
        out.update(res)
    return out


# ---------------------------------------------------------------------------
# the baseline
# ---------------------------------------------------------------------------

def _device_key(data: Data, i: int):
    r, c = data.rows[i], data.cases[i]
    dev = names.normalise(r.get("accelerator", ""), (r.get("accelerator_kind") or "").lower())
    if dev is None:
        return None
    return (dev.profile, dev.mig_slices, dev.mig_instances, c.model, c.target, c.power_capped)


def twin_lookup(data: Data) -> dict[int, float]:
    """Median per-device value of the same accelerator's other systems (same model, metric, MaxQ)."""
    groups = defaultdict(list)
    for i, c in enumerate(data.cases):
        if i in data.values and c.target and c.devices:
            k = _device_key(data, i)
            if k is not None:
                groups[k].append(i)
    out = {}
    for i, c in enumerate(data.cases):
        k = _device_key(data, i) if c.target and c.devices else None
        if k is None:
            continue
        others = [j for j in groups.get(k, []) if data.cases[j].system_key != c.system_key]
        if not others:
            continue
        throughput = c.target in ("offline", "server", "ms_streams")
        per = [data.values[j] / data.cases[j].devices if throughput else data.values[j] for j in others]
        out[i] = float(np.median(per)) * (c.devices if throughput else 1)
    return out


# ---------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------

def abs_errors(preds: dict[int, float], data: Data) -> dict[int, float]:
    return {i: abs(p / data.values[i] - 1.0) for i, p in preds.items() if i in data.values and p > 0}


def scenario_label(c: Case) -> str:
    return {"offline": "Offline", "server": "Server", "singlestream": "SingleStream", "multistream": "MultiStream",
            "ms_streams": "MultiStream (streams)"}.get(c.target, c.scenario)


def summarise(errors: dict[int, float], data: Data, rows_of: list[int]) -> dict:
    """Median |error| and coverage overall and per kind, model and scenario, over ``rows_of``."""
    out = {}

    def add(label: str, members: list[int]):
        errs = [errors[i] for i in members if i in errors]
        out[label] = {"rows": len(members), "ok": len(errs), "coverage": len(errs) / len(members) if members else 0.0,
                      "median_abs_error": float(np.median(errs)) if errs else math.nan,
                      "p90_abs_error": float(np.percentile(errs, 90)) if errs else math.nan}

    add("overall", rows_of)
    for attr, fn in (("kind", lambda c: c.kind), ("model", lambda c: c.model), ("scenario", scenario_label)):
        groups = defaultdict(list)
        for i in rows_of:
            groups[fn(data.cases[i])].append(i)
        for g, members in sorted(groups.items()):
            add(f"{attr}={g}", members)
    return out


# ---------------------------------------------------------------------------
# one network to the others
# ---------------------------------------------------------------------------

def one_network_to_others(data: Data, full: cal.Calibration, min_rows: int = 3) -> dict[str, list[float]]:
    """How a unit fitted on one network predicts its other networks: for every unit with
    rows of two or more networks and every network with at least ``min_rows`` non-Server
    rows, the unit is refitted on that network's rows alone (its stage-2 prior from the
    full calibration) and its other networks' non-Server rows are predicted in closed form,
    with the fixed cost per kernel held at the prior (``calibrate.kernel_us_held``, a variant
    the calibration does not use) and free. Returns {"held"|"free": |errors|, "<kind> held"|...}."""

    by: dict[str, list[Case]] = defaultdict(list)
    for c in data.cases:
        if c.ok and c.index in data.values and c.target in cal.FIT_TARGETS and c.target != "server":
            by[unit_of(c)].append(c)
    out: dict[str, list[float]] = defaultdict(list)
    for u, cs in sorted(by.items()):
        nets = defaultdict(list)
        for c in cs:
            nets[c.workload].append(c)
        if len(nets) < 2:
            continue
        prior = full.learned_prior(u, *full.unit_meta[u])
        kind = full.unit_meta[u][0]
        for net, train in sorted(nets.items()):
            if len(train) < min_rows:
                continue
            test = [c for c in cs if c.workload != net]
            vals = np.array([data.values[c.index] for c in train])
            for mode, p in (("held", cal.kernel_us_held(prior)), ("free", prior)):
                f = cal.fit_unit(u, train, vals, p)
                errs = [abs(sm.closed_form(c, f.params) / data.values[c.index] - 1.0) for c in test]
                out[mode] += errs
                out[f"{kind} {mode}"] += errs
    return dict(out)


# ---------------------------------------------------------------------------
# unseen networks: every row of one network left out of every fit
# ---------------------------------------------------------------------------

def _closed_form_corrected(c: Case, calib: cal.Calibration) -> float:
    params, _ = calib.params_for(c)
    corr, _ = calib.correction(c)
    return sm.closed_form(c, params) * math.exp(-corr)


def _network_fold(workload: str) -> list[tuple[int, float]]:
    data, simulate = _G["data"], _G["simulate"]
    values = {i: v for i, v in data.values.items() if data.cases[i].workload != workload}
    fold = cal.fit_all(data.cases, values)
    assert workload not in fold.networks
    mine = [c for c in data.cases if c.ok and c.workload == workload and c.index in data.values]
    predict = published.predict_case if simulate else _closed_form_corrected
    return [(c.index, predict(c, fold)) for c in mine]


def leave_one_network_out(data: Data, workers: int = 0, simulate: bool = True,
                          networks: list[str] | None = None) -> dict[int, float]:
    """Every network predicted with none of its rows in any fit (all devices refitted at
    once, both stages): the network is new to the calibration, as a user's model is, so it
    has no factor of its own and its rows are predicted from its layer table and the
    devices' parameters (``Calibration.params_for``). ``simulate``: through the simulator
    (``published.predict_case``), else in closed form (Server: the sustainable capacity,
    not capped at Offline), which is quicker for iterating on the model."""
    workers = workers or min(2, os.cpu_count() or 1)
    _G.update(data=data, simulate=simulate)
    nets = networks or sorted({c.workload for c in data.cases if c.ok and c.index in data.values})
    out: dict[int, float] = {}
    for res in _map(_network_fold, nets, workers):
        out.update(res)
    return out


def summarise_by(errors: dict[int, float], data: Data, rows_of: list[int], key) -> dict:
    """Median and 90th percentile |error| and coverage per group ``key(case)`` of ``rows_of``."""
    groups = defaultdict(list)
    for i in rows_of:
        groups[key(data.cases[i])].append(i)
    out = {}
    for g, members in sorted(groups.items()):
        errs = [errors[i] for i in members if i in errors]
        out[g] = {"rows": len(members), "ok": len(errs), "coverage": len(errs) / len(members) if members else 0.0,
                  "median_abs_error": float(np.median(errs)) if errs else math.nan,
                  "p90_abs_error": float(np.percentile(errs, 90)) if errs else math.nan}
    return out
