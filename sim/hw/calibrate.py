"""Calibration: fitting the analytical model's parameters to measured results.

What is fitted, per *calibration unit* (a chip such as ``ga100``, shared by every product
built on it; on CPUs a chip and its software stack, ``icx/openvino``), in log space:

- compute efficiency per kernel class: dense conv, grouped/depthwise conv, matmul,
  attention matmul (share of the datasheet peak at the assumed precision);
- memory efficiency (share of the datasheet bandwidth);
- fixed cost per kernel and per batch (microseconds);
- software trend: log-throughput gained per year of software age on the device;
- power cap: the throughput factor of power-measured (MaxQ) runs;
- multi-device loss: per-device throughput falls as ``devices ** -multi`` in one node.

The fit is ``scipy.optimize.least_squares`` on log(predicted / measured), with a robust
(soft-L1) loss and Gaussian priors on the parameters in two stages:

1. every unit is fitted alone with weak, data-free priors (physically plausible defaults
   per device kind);
2. every unit is refitted with priors learned from the *other* units' stage-1 estimates
   (median and spread over units of the same family / software stack / vendor / kind,
   counting only units whose data determine that parameter). A unit with fewer than
   ``MIN_ROWS`` rows is not fitted: it takes those learned priors as its parameters,
   which is also how a device with no published results is predicted.

Because a unit's stage-1 fit sees only its own rows, and its stage-2 prior only other
units' stage-1 fits, leaving a system out needs only its own unit refitted (exact
leave-one-system-out; ``sim.hw.evaluate``).

The fit uses the scenarios without queueing (Offline, SingleStream, MultiStream), whose
values follow from the analytical model in closed form; Server is predicted by the
simulator from those parameters (``sim.hw.system_model.server_peak``).

User measurements (``read_measurements``): a CSV with columns ``device`` (a profile
name), ``model`` (``resnet50``, ``ssd-mobilenet``, ``ssd-resnet34``, ``retinanet``,
``bert-99``), ``batch`` (samples per batch), and ``latency_ms`` (time of one batch) or
``throughput`` (samples/s at that batch, one device); optional ``devices`` (default 1)
and ``precision``. Each row becomes an Offline-like (throughput) or SingleStream-like
(latency) case at that batch.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

from sim.errors import InputError
from sim.hw import analytic, profiles
from sim.hw import system_model as sm
from sim.hw.analytic import Efficiency
from sim.hw.rows import Case, read_case, unit_of
from sim.hw.system_model import Params

MIN_ROWS = 3            # fewer rows than this: a unit is not fitted (refused by the CLI)
NOISE = 0.05            # relative spread of repeated published results (log scale)
FIT_TARGETS = ("offline", "singlestream", "multistream", "ms_streams")

NAMES = ("conv", "gconv", "matmul", "bmm", "mem", "kernel_us", "batch_us", "trend", "maxq", "multi")
LOG = {"conv", "gconv", "matmul", "bmm", "mem", "kernel_us", "batch_us", "maxq"}
LOWER = {"conv": 1e-4, "gconv": 1e-5, "matmul": 1e-4, "bmm": 1e-5, "mem": 0.02, "kernel_us": 0.01,
         "batch_us": 0.1, "trend": -0.3, "maxq": 0.2, "multi": -0.1}
UPPER = {"conv": 1.5, "gconv": 1.5, "matmul": 1.5, "bmm": 1.5, "mem": 1.2, "kernel_us": 1e4, "batch_us": 1e6,
         "trend": 0.6, "maxq": 1.2, "multi": 0.3}
# stage-1 priors: (mean, sd); sd in log units for LOG parameters
_KIND_PRIOR = {
    "gpu": {"kernel_us": 3.0, "batch_us": 30.0, "conv": 0.5, "matmul": 0.5},
    "asic": {"kernel_us": 10.0, "batch_us": 100.0, "conv": 0.5, "matmul": 0.5},
    "fpga": {"kernel_us": 10.0, "batch_us": 100.0, "conv": 0.3, "matmul": 0.3},
    "dsp": {"kernel_us": 20.0, "batch_us": 200.0, "conv": 0.3, "matmul": 0.3},
    "cpu": {"kernel_us": 20.0, "batch_us": 100.0, "conv": 0.3, "matmul": 0.3},
}
_BASE_PRIOR = {"conv": (0.5, 1.0), "gconv": (0.05, 1.5), "matmul": (0.5, 1.0), "bmm": (0.3, 1.0),
               "mem": (0.7, 0.3), "kernel_us": (5.0, 1.5), "batch_us": (50.0, 2.0), "trend": (0.05, 0.1),
               "maxq": (0.85, 0.2), "multi": (0.01, 0.03)}
_SD_FLOOR = {"conv": 0.25, "gconv": 0.4, "matmul": 0.25, "bmm": 0.4, "mem": 0.2, "kernel_us": 0.4,
             "batch_us": 0.6, "trend": 0.04, "maxq": 0.08, "multi": 0.015}


def observed(row: dict) -> float | None:
    """The published value of a row (calibration and evaluation only; never a prediction input)."""
    try:
        v = float(row.get("value", ""))
    except (TypeError, ValueError):
        return None
    return v if v > 0 and math.isfinite(v) else None


# ---------------------------------------------------------------------------
# parameter vectors
# ---------------------------------------------------------------------------

def to_vector(p: Params) -> np.ndarray:
    d = p.as_dict()
    return np.array([math.log(d[n]) if n in LOG else d[n] for n in NAMES])


def from_vector(x: np.ndarray, base: Params | None = None) -> Params:
    d = {n: (math.exp(v) if n in LOG else float(v)) for n, v in zip(NAMES, x)}
    base = base or Params()
    return Params(eff=Efficiency(**{k: d[k] for k in Efficiency().as_dict()}), trend=d["trend"], maxq=d["maxq"],
                  multi=d["multi"], issue_us=base.issue_us, triton_us=base.triton_us)


def bounds() -> tuple[np.ndarray, np.ndarray]:
    lo = np.array([math.log(LOWER[n]) if n in LOG else LOWER[n] for n in NAMES])
    hi = np.array([math.log(UPPER[n]) if n in LOG else UPPER[n] for n in NAMES])
    return lo, hi


@dataclass(frozen=True)
class Prior:
    mean: np.ndarray            # in vector space
    sd: np.ndarray
    source: str = "defaults"

    def params(self, base: Params | None = None) -> Params:
        return from_vector(self.mean, base)


def default_prior(kind: str) -> Prior:
    mean, sd = [], []
    for n in NAMES:
        m, s = _BASE_PRIOR[n]
        m = _KIND_PRIOR.get(kind, {}).get(n, m)
        mean.append(math.log(m) if n in LOG else m)
        sd.append(s)
    return Prior(np.array(mean), np.array(sd), f"data-free defaults for a {kind}")


# ---------------------------------------------------------------------------
# the model evaluated for many cases at once
# ---------------------------------------------------------------------------

class UnitModel:
    """Closed-form predictions for a list of cases of one unit, sharing batch-time evaluations."""

    def __init__(self, cases: list[Case]):
        self.cases = cases
        self.setups = [sm.setup(c) for c in cases]
        keys, self.key_of = [], []
        index = {}
        for c, s in zip(cases, self.setups):
            dev = (c.profile, c.mig_slices, c.cores)
            if c.target in ("offline", "singlestream", "multistream"):
                k = (dev, c.workload, c.precision, sm.batch_of(c, s), c.target == "offline")
            else:
                k = None
            if k is not None and k not in index:
                index[k] = len(keys)
                keys.append((s, c))
            self.key_of.append(index.get(k, -1))
        self._keys = keys
        # devices are rebuilt per case by setup(); identical ones must share a key
        self.age = np.array([s.age_years for s in self.setups])
        self.capped = np.array([c.power_capped for c in cases])
        self.servers = np.array([s.servers for s in self.setups], dtype=float)
        self.physical = np.array([s.physical for s in self.setups], dtype=float)
        self.batch = np.array([sm.batch_of(c, s) if c.target != "ms_streams" else 1
                               for c, s in zip(cases, self.setups)], dtype=float)
        self.offline = np.array([c.target == "offline" for c in cases])
        self.latency = np.array([c.target in ("singlestream", "multistream") for c in cases])
        self.streams = [i for i, c in enumerate(cases) if c.target == "ms_streams"]

    def predict(self, p: Params) -> np.ndarray:
        times = np.empty(len(self._keys))
        for j, (s, c) in enumerate(self._keys):
            cost = analytic.AnalyticCost(s.workload, s.device, c.precision, p.eff, scale=1.0,
                                         overlap_link=(c.target == "offline"))
            times[j] = cost.batch_seconds(sm.batch_of(c, s))
        scale = np.exp(-p.trend * self.age) / np.where(self.capped, p.maxq, 1.0)
        t = np.where(np.array(self.key_of) >= 0, times[np.maximum(self.key_of, 0)], np.nan) * scale
        keep = np.where(self.physical > 1, self.physical ** (-p.multi), 1.0)
        out = np.where(self.offline, self.servers * self.batch / t * keep, t * 1e9)
        for i in self.streams:
            c, s = self.cases[i], self.setups[i]
            cost = analytic.AnalyticCost(s.workload, s.device, c.precision, p.eff, scale=float(scale[i]))
            out[i] = max(0.5, sm.ms_streams_batch(cost, c.latency_bound_ns * 1e-9) * s.servers)
        return out


# ---------------------------------------------------------------------------
# fitting one unit
# ---------------------------------------------------------------------------

@dataclass
class UnitFit:
    unit: str
    kind: str
    params: Params
    fitted: bool                    # False: the prior stands in (too few rows)
    rows: list[int]                 # row indices used
    prior: Prior
    informed: np.ndarray            # which parameters the data determine
    in_sample_log_err: np.ndarray   # log(pred/obs) per row
    source: str = ""

    def describe(self) -> str:
        if not self.fitted:
            return f"{self.unit}: not fitted ({len(self.rows)} rows < {MIN_ROWS}); {self.prior.source}"
        med = float(np.median(np.abs(np.expm1(self.in_sample_log_err)))) if len(self.rows) else float("nan")
        return f"{self.unit}: fitted on {len(self.rows)} rows, in-sample median |error| {med:.1%}"


def fit_unit(unit: str, cases: list[Case], values: np.ndarray, prior: Prior, warm: Params | None = None,
             max_nfev: int = 200) -> UnitFit:
    """Fit one unit's parameters to its cases (closed-form scenarios only)."""
    kind = profiles.get(cases[0].profile).kind if cases else "gpu"
    idx = [c.index for c in cases]
    if len(cases) < MIN_ROWS:
        return UnitFit(unit, kind, prior.params(), False, idx, prior, np.zeros(len(NAMES), bool), np.zeros(0),
                       prior.source)
    model = UnitModel(cases)
    logv = np.log(values)
    lo, hi = bounds()
    x0 = np.clip(to_vector(warm) if warm is not None else prior.mean, lo + 1e-9, hi - 1e-9)

    def resid(x):
        pred = model.predict(from_vector(x))
        r = (np.log(np.maximum(pred, 1e-30)) - logv) / NOISE
        return np.concatenate([r, (x - prior.mean) / prior.sd])

    res = least_squares(resid, x0, bounds=(lo, hi), loss="soft_l1", f_scale=2.0, x_scale=1.0, max_nfev=max_nfev,
                        diff_step=1e-3)
    params = from_vector(res.x)
    err = np.log(model.predict(params)) - logv
    informed = _informed(res.jac[: len(cases)], prior.sd)
    return UnitFit(unit, kind, params, True, idx, prior, informed, err,
                   f"fitted on {len(cases)} rows ({', '.join(sorted({c.target for c in cases}))})")


def _informed(jac_data: np.ndarray, prior_sd: np.ndarray) -> np.ndarray:
    """Parameters the data pin down: posterior sd below half the prior sd."""
    info = jac_data.T @ jac_data + np.diag(1.0 / prior_sd ** 2)
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        return np.zeros(len(prior_sd), bool)
    return np.sqrt(np.maximum(np.diag(cov), 0)) < 0.5 * prior_sd


# ---------------------------------------------------------------------------
# all units, two stages
# ---------------------------------------------------------------------------

def groups_of(unit: str, kind: str, family: str, vendor: str) -> list[str]:
    """Groups a unit borrows its stage-2 prior from, most specific first."""
    if kind == "cpu":
        stack = unit.split("/", 1)[1] if "/" in unit else ""
        return [f"cpu-stack:{stack}:{family}", f"cpu-stack:{stack}", f"family:{family}", f"kind:{kind}"]
    return [f"family:{family}", f"vendor:{vendor}:{kind}", f"kind:{kind}"]


@dataclass
class Calibration:
    units: dict[str, UnitFit]
    stage1: dict[str, UnitFit]
    unit_meta: dict[str, tuple]                # unit -> (kind, family, vendor)
    server: dict = field(default_factory=dict)  # kind -> {"issue_us", "triton_us"}

    def learned_prior(self, unit: str, kind: str, family: str, vendor: str, exclude: set[str] = frozenset()) -> Prior:
        """Stage-2 prior for ``unit``: medians of other units' informed stage-1 estimates."""
        base = default_prior(kind)
        mean, sd = base.mean.copy(), base.sd.copy()
        used = []
        for j, name in enumerate(NAMES):
            for group in groups_of(unit, kind, family, vendor):
                vals = [f.params for u, f in self.stage1.items()
                        if u != unit and u not in exclude and f.fitted and f.informed[j]
                        and group in groups_of(u, *self.unit_meta[u])]
                if len(vals) >= 2 or (len(vals) == 1 and group.startswith("cpu-stack")):
                    xs = np.array([to_vector(v)[j] for v in vals])
                    mean[j] = float(np.median(xs))
                    spread = 1.4826 * float(np.median(np.abs(xs - mean[j]))) if len(xs) > 2 else 0.0
                    sd[j] = max(spread, _SD_FLOOR[name], 0.5 * base.sd[j] if len(xs) < 3 else 0.0)
                    used.append(f"{name}<-{group}({len(vals)})")
                    break
        src = "prior learned from other devices: " + (", ".join(used) if used else "none; data-free defaults")
        return Prior(mean, sd, src)

    def params_for(self, case: Case) -> tuple[Params, str]:
        """The parameters that predict ``case`` and where they come from."""
        unit = unit_of(case)
        srv = self.server.get(profiles.get(case.profile).kind, {})
        if unit in self.units and self.units[unit].fitted:
            f = self.units[unit]
            p = f.params
            src = f"{unit} {f.source}"
        else:
            prof = profiles.get(case.profile)
            prior = self.learned_prior(unit, prof.kind, prof.family, prof.vendor)
            p = prior.params()
            src = f"{unit}: {prior.source}"
        p = replace(p, issue_us=srv.get("issue_us", p.issue_us), triton_us=srv.get("triton_us", p.triton_us))
        return p, src


def unit_meta_of(case: Case) -> tuple:
    prof = profiles.get(case.profile)
    return prof.kind, prof.family, prof.vendor


def fit_all(cases: list[Case], values: dict[int, float], stage1: dict[str, UnitFit] | None = None,
            only_units: set[str] | None = None, warm: dict[str, UnitFit] | None = None) -> Calibration:
    """Fit every unit with enough rows (see the module docstring).

    ``stage1``: reuse stage-1 fits (leave-one-out: only the units in ``only_units`` are
    refitted at stage 1 and stage 2). ``warm``: previous fits to start from.
    """
    by_unit: dict[str, list[Case]] = {}
    meta: dict[str, tuple] = {}
    for c in cases:
        if c.ok and c.target in FIT_TARGETS and c.index in values:
            u = unit_of(c)
            by_unit.setdefault(u, []).append(c)
            meta[u] = unit_meta_of(c)
    s1 = dict(stage1 or {})
    for u, cs in by_unit.items():
        if stage1 is not None and u in s1 and (only_units is None or u not in only_units):
            continue
        vals = np.array([values[c.index] for c in cs])
        w = (warm or {}).get(u)
        s1[u] = fit_unit(u, cs, vals, default_prior(meta[u][0]), warm=w.params if w and w.fitted else None)
    for u in list(s1):
        if u not in by_unit:
            del s1[u]
    cal = Calibration(units={}, stage1=s1, unit_meta=meta)
    for u, cs in by_unit.items():
        if only_units is not None and u not in only_units and warm and u in warm:
            cal.units[u] = warm[u]
            continue
        prior = cal.learned_prior(u, *meta[u])
        vals = np.array([values[c.index] for c in cs])
        w = (warm or {}).get(u) or s1.get(u)
        cal.units[u] = fit_unit(u, cs, vals, prior, warm=w.params if w and w.fitted else None)
    return cal


# ---------------------------------------------------------------------------
# the calibrate command: one device, published rows or the user's measurements
# ---------------------------------------------------------------------------

def read_results(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file; expected a results CSV")
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


MEASUREMENT_COLUMNS = ("device", "model", "batch")


def read_measurements(path: str | Path) -> tuple[list[Case], dict[int, float]]:
    """A user's measurements (module docstring) as cases and values (ns for latencies)."""
    rows = read_results(path)
    cases, values = [], {}
    for i, r in enumerate(rows):
        line = i + 2
        for col in MEASUREMENT_COLUMNS:
            if not (r.get(col) or "").strip():
                raise InputError(f"{path}:{line}: field '{col}' is empty; expected columns {list(MEASUREMENT_COLUMNS)} "
                                 f"and latency_ms or throughput")
        try:
            batch = int(r["batch"])
        except ValueError:
            raise InputError(f"{path}:{line}: field 'batch' = {r['batch']!r}: expected an integer >= 1") from None
        if batch < 1:
            raise InputError(f"{path}:{line}: field 'batch' = {batch}: expected an integer >= 1")
        lat, thr = (r.get("latency_ms") or "").strip(), (r.get("throughput") or "").strip()
        if bool(lat) == bool(thr):
            raise InputError(f"{path}:{line}: fields 'latency_ms' = {lat!r}, 'throughput' = {thr!r}: "
                             f"expected exactly one of them")
        try:
            value = float(lat or thr)
        except ValueError:
            raise InputError(f"{path}:{line}: value {lat or thr!r}: expected a number > 0") from None
        if not value > 0:
            raise InputError(f"{path}:{line}: value {value}: expected a number > 0")
        name = r["device"].strip()
        prof = profiles.get(name)
        try:
            devices = int(r.get("devices") or 1)
        except ValueError:
            raise InputError(f"{path}:{line}: field 'devices' = {r.get('devices')!r}: expected an integer >= 1") from None
        model = r["model"].strip()
        case = read_case({"version": "v5.1", "division": "closed", "submitter": "user", "system": f"measurement-{line}",
                          "accelerator": "", "accelerator_kind": prof.kind, "accelerators_per_node": str(devices),
                          "framework": r.get("framework", ""), "model": model,
                          "scenario": "Offline" if thr else "SingleStream",
                          "metric": "Samples per second" if thr else "90th percentile latency (ns)",
                          "units": "samples/s" if thr else "ns", "number_of_nodes": "1",
                          "host_processors_per_node": str(devices)}, i)
        if case.workload is None:
            raise InputError(f"{path}:{line}: field 'model' = {model!r}: expected one of "
                             f"resnet50, ssd-mobilenet, ssd-resnet34, retinanet, bert-99")
        prec = (r.get("precision") or "").strip()
        if prec and prec not in prof.peak_tops:
            raise InputError(f"{path}:{line}: field 'precision' = {prec!r}: expected one of {sorted(prof.peak_tops)}")
        from sim.hw import precision as precision_rules
        chosen, why = (prec, "given in the measurements") if prec else precision_rules.choose(prof, model)
        case = replace(case, profile=prof.name, unsupported=None, precision=chosen, precision_reason=why,
                       devices=devices, year=prof.release_year, system_key=f"user/{prof.name}/{line}",
                       batch=batch, stack="user" if prof.kind == "cpu" else case.stack)
        cases.append(case)
        values[i] = value * 1e6 if lat else value
    return cases, values
