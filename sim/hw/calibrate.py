"""Calibration: fitting the analytical model's parameters to measured results.

What is fitted, per *calibration unit* (a chip such as ``ga100``, shared by every product
built on it; on CPUs a chip and its software stack, ``icx/openvino``), in log space:

- compute efficiency per kernel class: dense conv, grouped/depthwise conv, matmul,
  attention matmul (share of the datasheet peak at the assumed precision);
- memory efficiency (share of the datasheet bandwidth);
- fixed cost per kernel and per batch (microseconds);
- software trend: log-throughput gained per year of software age on the device;
- power cap: the throughput factor of power-measured (MaxQ) runs;
- multi-device loss: per-device throughput falls as ``devices ** -multi`` in one node;
- Triton's MultiStream latency: what serving a MultiStream query through Triton adds
  (``sm.triton_ms_s``);
- per network (except the reference networks): its efficiency relative to its kernel
  classes, and its fixed cost per batch. ResNet-50 and BERT-large (``REFERENCE_NETS``) have
  no factor of their own: BERT-large is the only network whose time is in matmuls, so its
  factor could only trade against the matmul efficiency, and ResNet-50 anchors the conv
  networks'. With those factors free the optimiser stopped anywhere along the trade
  (an A2's conv efficiency 0.45 to 0.66 from four nearby starts, against 0.727 to 0.736
  without them), and every learned prior took medians of those arbitrary splits.

The fit is ``scipy.optimize.least_squares`` on log(predicted / measured), with a robust
(soft-L1) loss and Gaussian priors on the parameters in two stages:

1. every unit is fitted alone with weak, data-free priors (physically plausible defaults
   per device kind);
2. every unit is refitted with priors learned from the *other* units' stage-1 estimates
   (median and spread over units of the same family / software stack / vendor / kind,
   counting only units whose data determine that parameter; a small group's median is
   shrunk toward the next broader group's, ``PRIOR_SHRINK_UNITS``). A unit with fewer than
   ``MIN_ROWS`` rows is not fitted: it takes those learned priors as its parameters,
   which is also how a device with no published results is predicted.

Because a unit's stage-1 fit sees only its own rows, and its stage-2 prior only other
units' stage-1 fits, leaving a system out needs only its own unit refitted (exact
leave-one-system-out; ``sim.hw.evaluate``).

Two more per unit: ``server_util``, the share of the batched capacity a Server run sustains
(``sim.hw.system_model.server_capacity``: a target QPS above it is INVALID; below it the
simulator decides), and ``triton_util``, its factor when the harness serves through Triton.

The fit evaluates every row in closed form (``sim.hw.system_model.closed_form``): exact for
the scenarios without queueing (Offline, SingleStream, MultiStream), and the sustainable
capacity for Server, which the simulated search confirms or lowers where queueing breaks
the latency bound. Predictions go through the simulator.

After the fit, ``Calibration.correction`` adds one more level: the shrunk, round-weighted
median residual of the unit's own rows of the same product, network and scenario (a
scenario efficiency of that network on that product, fitted on other systems' rows). A
Server correction is the Offline one plus the Server-minus-Offline difference of systems
that published both: the product's own, else, for a product with no Server row of that
network, its chip's other products' (same network and MIG configuration).

User measurements (``read_measurements``): a CSV with columns ``device`` (a profile
name), ``model`` (``resnet50``, ``ssd-mobilenet``, ``ssd-resnet34``, ``retinanet``,
``bert-99``), ``batch`` (samples per batch), and ``latency_ms`` (time of one batch) or
``throughput`` (samples/s at that batch, one device); optional ``devices`` (default 1),
``precision`` and ``framework`` (on a CPU, the software stack: its calibration unit is the
chip and that stack, else ``<chip>/user``); other columns (a ``source``, say) are
ignored. Each row becomes an Offline-like (throughput) or SingleStream-like (latency) case at
that batch.
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
from sim.hw import precision as precision_rules
from sim.hw import system_model as sm
from sim.hw.analytic import Efficiency
from sim.hw.rows import Case, read_case, stack_of, unit_of
from sim.hw.system_model import Params

MIN_ROWS = 3            # fewer rows than this: a unit is not fitted (refused by the CLI)
NOISE = 0.05            # relative spread of repeated published results (log scale)
FIT_TARGETS = ("offline", "singlestream", "multistream", "ms_streams", "server")

NETS = ("resnet50", "ssd_mobilenet_v1", "ssd_resnet34", "retinanet", "bert_large")
# Networks whose factor is 1 by definition: the efficiency of their kernel class is theirs
# (ResNet-50 is the reference of the conv networks; BERT-large is the only network whose
# time is in matmuls, so a factor of its own would only trade against the matmul efficiency
# and leave the split to the optimiser's path).
REFERENCE_NETS = ("resnet50", "bert_large")
FREE_NETS = tuple(w for w in NETS if w not in REFERENCE_NETS)
NAMES = ("conv", "gconv", "matmul", "bmm", "mem", "kernel_us", "latency_eff", "trend", "maxq", "power", "multi",
         "server_util", "triton_util", "triton_ms_us") + \
    tuple(f"net_{w}" for w in FREE_NETS) + tuple(f"batch_us_{w}" for w in NETS)
LOG = {"conv", "gconv", "matmul", "bmm", "mem", "kernel_us", "latency_eff", "maxq", "server_util", "triton_util",
       "triton_ms_us"} | \
    {f"net_{w}" for w in NETS} | {f"batch_us_{w}" for w in NETS}
# efficiencies may exceed 1 where the engine does less work than the graph says (BERT
# engines skip padded tokens; caches cut DRAM traffic below the count)
LOWER = {"conv": 1e-4, "gconv": 1e-5, "matmul": 1e-4, "bmm": 1e-5, "mem": 0.02, "kernel_us": 0.01,
         "latency_eff": 0.02, "trend": -0.3, "maxq": 0.2, "power": 0.0, "multi": -0.1, "server_util": 0.2,
         "triton_util": 0.1, "triton_ms_us": 1.0,
         **{f"net_{w}": 0.2 for w in NETS}, **{f"batch_us_{w}": 0.1 for w in NETS}}
UPPER = {"conv": 1.5, "gconv": 1.5, "matmul": 3.0, "bmm": 3.0, "mem": 2.0, "kernel_us": 1e4, "batch_us": 1e6,
         "latency_eff": 1.5, "trend": 0.6, "maxq": 1.2, "power": 1.5, "multi": 0.3, "server_util": 1.2,
         "triton_util": 1.2, "triton_ms_us": 1e4, **{f"net_{w}": 5.0 for w in NETS},
         **{f"batch_us_{w}": 1e6 for w in NETS}}
# stage-1 priors: (mean, sd); sd in log units for LOG parameters
_KIND_PRIOR = {
    "gpu": {"kernel_us": 3.0, "batch_us": 30.0, "conv": 0.5, "matmul": 0.5, "latency_eff": 0.8},
    "asic": {"kernel_us": 10.0, "batch_us": 100.0, "conv": 0.5, "matmul": 0.5, "latency_eff": 0.3},
    "fpga": {"kernel_us": 10.0, "batch_us": 100.0, "conv": 0.3, "matmul": 0.3, "latency_eff": 0.5},
    "dsp": {"kernel_us": 20.0, "batch_us": 200.0, "conv": 0.3, "matmul": 0.3, "latency_eff": 0.5},
    "cpu": {"kernel_us": 20.0, "batch_us": 100.0, "conv": 0.3, "matmul": 0.3, "latency_eff": 0.5},
}
_BASE_PRIOR = {"conv": (0.5, 1.0), "gconv": (0.05, 1.5), "matmul": (0.5, 1.0), "bmm": (0.3, 1.0),
               "mem": (0.7, 0.3), "kernel_us": (5.0, 1.5), "batch_us": (50.0, 2.0), "latency_eff": (0.7, 0.7),
               "trend": (0.05, 0.1), "maxq": (0.85, 0.2), "power": (0.3, 0.3), "multi": (0.01, 0.03),
               "server_util": (0.9, 0.15), "triton_util": (0.8, 0.3), "triton_ms_us": (100.0, 1.0),
               **{f"net_{w}": (1.0, 0.3) for w in NETS}}
_SD_FLOOR = {"conv": 0.25, "gconv": 0.4, "matmul": 0.25, "bmm": 0.4, "mem": 0.2, "kernel_us": 0.4,
             "batch_us": 0.6, "latency_eff": 0.2, "trend": 0.04, "maxq": 0.08, "power": 0.1, "multi": 0.015,
             "server_util": 0.05, "triton_util": 0.1, "triton_ms_us": 0.3,
             **{f"net_{w}": 0.08 for w in NETS}, **{f"batch_us_{w}": 0.5 for w in NETS}}


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
    d = {**{f"net_{w}": 1.0 for w in NETS}, **{f"batch_us_{w}": p.eff.batch_us for w in NETS}, **p.as_dict()}
    # a log parameter at 0 (no Triton cost in hand-made parameters) starts at its lower bound
    return np.array([math.log(max(d[n], LOWER[n])) if n in LOG else d[n] for n in NAMES])


def from_vector(x: np.ndarray, base: Params | None = None) -> Params:
    d = {n: (math.exp(v) if n in LOG else float(v)) for n, v in zip(NAMES, x)}
    base = base or Params()
    nb = {w: d[f"batch_us_{w}"] for w in NETS}
    eff = Efficiency(**{k: d[k] for k in Efficiency().as_dict() if k in d},
                     batch_us=float(np.exp(np.mean(np.log(list(nb.values()))))))
    return Params(eff=eff, trend=d["trend"], maxq=d["maxq"], power=d["power"], multi=d["multi"],
                  server_util=d["server_util"], triton_util=d["triton_util"], issue_us=base.issue_us,
                  triton_us=base.triton_us, triton_ms_us=d["triton_ms_us"], net={w: d[f"net_{w}"] for w in FREE_NETS},
                  net_batch_us=nb)


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
        key = "batch_us" if n.startswith("batch_us_") else n
        m, s = _BASE_PRIOR[key]
        m = _KIND_PRIOR.get(kind, {}).get(key, m)
        mean.append(math.log(m) if n in LOG else m)
        sd.append(s)
    return Prior(np.array(mean), np.array(sd), f"data-free defaults for a {kind}")


# ---------------------------------------------------------------------------
# the model evaluated for many cases at once
# ---------------------------------------------------------------------------

class UnitModel:
    """Closed-form predictions for a list of cases of one unit, vectorised per network.

    Every case needs the batch time of one (device, precision, batch, mode) point; points
    of one network are evaluated together (``analytic.batch_times_many``). A v0.5-v1.0
    MultiStream case (largest batch within a latency bound) evaluates its device at the
    powers of two and interpolates linearly between them.
    """

    STREAM_BATCHES = np.array([2 ** k for k in range(0, 17)], dtype=float)

    def __init__(self, cases: list[Case]):
        self.cases = cases
        self.setups = [sm.setup(c) for c in cases]
        self.kind = self.setups[0].profile.kind if cases else "gpu"
        self.age = np.array([s.age_years for s in self.setups])
        self.headroom = np.array([s.headroom for s in self.setups])
        self.capped = np.array([c.power_capped for c in cases])
        self.servers = np.array([s.servers for s in self.setups], dtype=float)
        self.physical = np.array([s.physical for s in self.setups], dtype=float)
        self.offline = np.array([c.target == "offline" for c in cases])
        # cases evaluated over a block of powers of two (their batch depends on the parameters)
        self.streams = np.array([c.target in ("ms_streams", "server") or (c.target == "offline" and not s.batch_given)
                                 for c, s in zip(cases, self.setups)])
        self.offline_cap = np.array([s.offline_batch for s in self.setups], dtype=float)
        self.server = np.array([c.target == "server" for c in cases])
        self.triton = np.array([c.triton for c in cases])
        # MultiStream rows served through Triton (sm.triton_ms_s)
        self.triton_ms = np.array([c.triton and c.target in sm.MS_TARGETS for c in cases])
        self.bound = np.array([(c.latency_bound_ns or 0.0) * 1e-9 for c in cases])
        # points: one per non-stream case, len(STREAM_BATCHES) per stream case
        self.groups: dict[str, dict] = {}
        self.stream_points: dict[int, np.ndarray] = {}
        for i, (c, s) in enumerate(zip(cases, self.setups)):
            g = self.groups.setdefault(c.workload, {"w": s.workload, "rows": [], "seen": {}})
            d = s.device
            point = (d.peak_ops[c.precision], d.bandwidth_bps, d.onchip_bytes, d.units, analytic.BYTES[c.precision])
            mode = (c.target in sm.LATENCY_TARGETS, d.link_bps or 0.0, c.target in ("offline", "server"))
            if self.streams[i]:
                block = ("block",) + point + mode
                if block not in g["seen"]:      # one block of powers of two per device and mode
                    g["seen"][block] = len(g["rows"])
                    g["rows"].extend(point + (b,) + mode for b in self.STREAM_BATCHES)
                first = g["seen"][block]
            else:
                row = point + (sm.batch_of(c, s),) + mode
                if row not in g["seen"]:        # identical points are evaluated once
                    g["seen"][row] = len(g["rows"])
                    g["rows"].append(row)
                first = g["seen"][row]
            idx = (c.workload, first)
            if self.streams[i]:
                self.stream_points[i] = idx
            else:
                self.stream_points.setdefault(-1 - i, idx)
        for g in self.groups.values():
            a = np.array(g["rows"], dtype=float)
            g["cols"] = {k: a[:, j] for j, k in enumerate(("peak", "bw", "onchip", "units", "nbytes", "batch",
                                                             "latency", "link", "overlap"))}

    def _index(self):
        """Flat positions of every case's point in the concatenated per-network times."""
        offset, base = 0, {}
        for wname, g in self.groups.items():
            base[wname] = offset
            offset += len(g["rows"])
        flat = np.zeros(len(self.cases), dtype=np.int64)
        for i in range(len(self.cases)):
            wname, first = self.stream_points[i] if self.streams[i] else self.stream_points[-1 - i]
            flat[i] = base[wname] + first
        self._flat = flat
        self._batch = np.array([sm.batch_of(c, s) if not self.streams[i] else 1
                                for i, (c, s) in enumerate(zip(self.cases, self.setups))], dtype=float)
        self._server_idx = np.nonzero(self.server)[0]
        self._offline_idx = np.nonzero(self.streams & self.offline)[0]
        self._ms_idx = np.nonzero(self.streams & ~self.server & ~self.offline)[0]

    def predict(self, p: Params) -> np.ndarray:
        if not hasattr(self, "_flat"):
            self._index()
        parts = []
        for wname, g in self.groups.items():
            c = g["cols"]
            t = analytic.batch_times_many(g["w"], self.kind, p.eff, c["peak"], c["bw"], c["onchip"], c["units"],
                                          c["nbytes"], c["batch"], c["latency"].astype(bool),
                                          net=p.net.get(wname, 1.0), batch_us=p.net_batch_us.get(wname))
            link = analytic.link_times_many(g["w"], c["link"], c["nbytes"], c["batch"])
            parts.append(np.where(c["overlap"].astype(bool), np.maximum(t, link), t + link))
        times = np.concatenate(parts)
        scale = np.exp(-p.trend * self.age) / np.where(self.capped, p.maxq, 1.0) / self.headroom ** p.power
        keep = np.where(self.physical > 1, self.physical ** (-p.multi), 1.0)
        t = times[self._flat] * scale
        extra = np.where(self.triton_ms, p.triton_ms_us * 1e-6, 0.0)
        out = np.where(self.offline, self.servers * self._batch / t * keep, (t + extra) * 1e9)
        n = len(self.STREAM_BATCHES)
        off = self._offline_idx
        if len(off):
            # the Offline batch of the best throughput up to the memory cap (system_model.best_batch)
            ts = times[self._flat[off][:, None] + np.arange(n)[None, :]] * scale[off][:, None]
            allowed = self.STREAM_BATCHES[None, :] <= self.offline_cap[off][:, None]
            best = self._chosen(ts, allowed)
            rate = self.STREAM_BATCHES[best] / ts[np.arange(len(off)), best]
            out[off] = self.servers[off] * rate * keep[off]
        srv = self._server_idx
        if len(srv):
            # the simulator's sustainable capacity at its Server batch (system_model.server_batch):
            # the best throughput among the powers of two up to MAX_BATCH whose time is within
            # SERVER_BATCH_SHARE of the bound (batch 1 always counts)
            ts = times[self._flat[srv][:, None] + np.arange(n)[None, :]] * (scale[srv] / keep[srv])[:, None]
            kmax = int(np.log2(sm.MAX_BATCH[self.kind]))
            ts = ts[:, :kmax + 1]
            fits = ts <= (self.bound[srv] * sm.SERVER_BATCH_SHARE)[:, None]
            fits[:, 0] = True
            # batches past the first one over the limit do not count (server_batch stops there)
            fits &= np.cumprod(fits, axis=1).astype(bool)
            best = self._chosen(ts, fits)
            util = p.server_util * np.where(self.triton[srv], p.triton_util, 1.0)
            out[srv] = util * self.servers[srv] * self.STREAM_BATCHES[best] / ts[np.arange(len(srv)), best]
        for i in self._ms_idx:
            ts = times[self._flat[i]:self._flat[i] + n] * scale[i]
            within = _largest_batch_within(ts + extra[i], self.STREAM_BATCHES, self.bound[i])
            out[i] = max(0.5, within * self.servers[i])
        return out

    def _chosen(self, ts: np.ndarray, allowed: np.ndarray) -> np.ndarray:
        """Per row of batch times at the powers of two, the index of the batch run
        (system_model.best_batch): of the ``allowed`` ones (a prefix), the highest throughput
        on ``TUNED_BATCH_KINDS`` (the larger on a tie), else the largest."""
        if self.kind not in sm.TUNED_BATCH_KINDS:
            return allowed.sum(axis=1) - 1
        rate = np.where(allowed, self.STREAM_BATCHES[None, :ts.shape[1]] / ts, 0.0)
        return ts.shape[1] - 1 - np.argmax(rate[:, ::-1], axis=1)


def _largest_batch_within(t: np.ndarray, batches: np.ndarray, bound: float) -> float:
    """Largest batch with time within ``bound``, from times at powers of two (linear in between)."""
    ok = np.nonzero(t <= bound)[0]
    if len(ok) == 0:
        return 0.0
    k = ok[-1]
    if k + 1 >= len(t):
        return float(batches[k])
    b0, b1, t0, t1 = batches[k], batches[k + 1], t[k], t[k + 1]
    return float(np.floor(b0 + (bound - t0) / max(t1 - t0, 1e-30) * (b1 - b0)))


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
    row_keys: list = field(default_factory=list)   # residual_key per row

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

    # tr_solver="lsmr": dense SVDs of small Jacobians are slow under a multi-threaded BLAS
    if warm is not None:
        max_nfev = min(max_nfev, 40)     # a refit from a nearby optimum (leave-one-out) needs few steps
    res = least_squares(resid, x0, bounds=(lo, hi), loss="soft_l1", f_scale=2.0, x_scale=1.0, max_nfev=max_nfev,
                        diff_step=1e-3, tr_solver="lsmr", ftol=1e-6 if warm is None else 1e-4)
    params = from_vector(res.x)
    err = np.log(model.predict(params)) - logv
    informed = _informed(res.jac[: len(cases)], prior.sd)
    return UnitFit(unit, kind, params, True, idx, prior, informed, err,
                   f"fitted on {len(cases)} rows ({', '.join(sorted({c.target for c in cases}))})",
                   [residual_key(c) for c in cases])


def residual_key(c: Case) -> tuple:
    return (c.profile, c.mig_slices, c.mig_instances, c.workload, c.target, c.power_capped, c.year, c.system_key)


# where a target borrows its residual correction from, in order
CORRECTION_SOURCES = {"offline": ("offline",), "server": ("server", "offline"), "singlestream": ("singlestream",),
                      "multistream": ("multistream", "singlestream"), "ms_streams": ("ms_streams", "offline")}
# a target measured on the same systems as its base: corrected as its base plus the paired difference
PAIRED_BASE = {"server": "offline"}
PRIOR_SHRINK_UNITS = 2.0    # a learned prior's group median weighs its units against this many of the kind's
SHRINK_ROWS = 0.3       # a correction from n rows is shrunk by n / (n + SHRINK_ROWS)
ROUND_SCALE_YEARS = 0.5  # residuals of a round this far away weigh 1/e of the same round's


def _weighted_median(x: np.ndarray, w: np.ndarray) -> float:
    order = np.argsort(x)
    cw = np.cumsum(w[order])
    return float(x[order][np.searchsorted(cw, 0.5 * cw[-1])])


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
    own_data_only: frozenset = frozenset()     # units fitted on measurements: no other unit's prior uses them

    def learned_prior(self, unit: str, kind: str, family: str, vendor: str, exclude: set[str] = frozenset()) -> Prior:
        """Stage-2 prior for ``unit``: medians of other units' informed stage-1 estimates."""
        base = default_prior(kind)
        mean, sd = base.mean.copy(), base.sd.copy()
        used = []
        groups = groups_of(unit, kind, family, vendor)
        others = [(to_vector(f.params), f.informed, set(groups_of(u, *self.unit_meta[u])))
                  for u, f in self.stage1.items()
                  if u != unit and u not in exclude and u not in self.own_data_only and f.fitted]
        for j, name in enumerate(NAMES):
            def informed_values(group):
                return np.array([x[j] for x, informed, member in others if informed[j] and group in member])
            for g, group in enumerate(groups):
                xs = informed_values(group)
                if len(xs) >= 2 or (len(xs) == 1 and group.startswith("cpu-stack")):
                    mean[j] = float(np.median(xs))
                    spread = 1.4826 * float(np.median(np.abs(xs - mean[j]))) if len(xs) > 2 else 0.0
                    sd[j] = max(spread, _SD_FLOOR[name], 0.5 * base.sd[j] if len(xs) < 3 else 0.0)
                    # a small group's median is shrunk toward the next broader group's that has
                    # more units (empirical Bayes): two units' median is a noisy centre
                    for wider in groups[g + 1:]:
                        broad = informed_values(wider)
                        if len(broad) > len(xs):
                            mean[j] = (len(xs) * mean[j] + PRIOR_SHRINK_UNITS * float(np.median(broad))) / \
                                (len(xs) + PRIOR_SHRINK_UNITS)
                            break
                    used.append(f"{name}<-{group}({len(xs)})")
                    break
        src = "prior learned from other devices: " + (", ".join(used) if used else "none; data-free defaults")
        return Prior(mean, sd, src)

    def params_for(self, case: Case) -> tuple[Params, str]:
        """The parameters that predict ``case`` and where they come from."""
        unit = unit_of(case)
        if unit in self.units and self.units[unit].fitted:
            f = self.units[unit]
            p = f.params
            src = f"{unit} {f.source}"
        else:
            prof = profiles.get(case.profile)
            prior = self.learned_prior(unit, prof.kind, prof.family, prof.vendor)
            p = prior.params()
            src = f"{unit}: {prior.source}"
        return p, src


    def correction(self, case: Case) -> tuple[float, str]:
        """Residual correction of ``case``: the shrunk median log(pred/measured) of the fitted
        rows of the same product, network and scenario (a scenario efficiency of the network
        on that product); 0 when there are none. Subtract it from log(prediction).

        Server is published by most systems next to their Offline result; where the product
        has such pairs, the Server correction is the Offline one plus the median paired
        difference (``PAIRED_BASE``). Rows of different rounds then cannot pull the two
        apart: a Server correction from older rows and an Offline one from this year's had
        predicted an L4 Server above its Offline. A product with no Server row of its own
        for the network takes the difference of its chip's other products (``_paired_difference``,
        scope "chip")."""
        f = self.units.get(unit_of(case))
        if f is None or not f.fitted or not f.row_keys:
            return 0.0, "no residual correction (unit not fitted)"
        base = PAIRED_BASE.get(case.target)
        if base:
            b = _shrunk_residual(f, case, base)
            if b is not None:
                # a product's own unpaired Server rows outrank its siblings' pairs
                own = _shrunk_residual(f, case, case.target) is not None
                for scope in ("product",) if own else ("product", "chip"):
                    d = _paired_difference(f, case, case.target, base, scope)
                    if d is not None:
                        corr = b[0] + d[0]
                        where = case.profile if scope == "product" else f"other products of {f.unit}"
                        return corr, (f"residual correction {-corr:+.3f} (log): {-b[0]:+.3f} from {b[1]} {base} rows "
                                      f"of {case.profile}, {-d[0]:+.3f} {case.target} against {base} on {d[1]} "
                                      f"systems with both ({where})")
        for target in CORRECTION_SOURCES.get(case.target, ()):
            got = _shrunk_residual(f, case, target)
            if got is not None:
                return got[0], f"residual correction {-got[0]:+.3f} (log) from {got[1]} {target} rows of {case.profile}"
        return 0.0, "no residual correction (no rows of this product, network and scenario)"


def _product_key(case: Case) -> tuple:
    return (case.profile, case.mig_slices, case.mig_instances, case.workload)


def _round_weights(years: np.ndarray, year: float) -> np.ndarray:
    # rows of nearby rounds weigh more: they ran the same generation of software
    return np.exp(-np.abs(years - year) / ROUND_SCALE_YEARS)


def _shrunk_residual(f: "UnitFit", case: Case, target: str) -> tuple[float, int] | None:
    """The round-weighted median residual of the unit's rows of ``case``'s product, network
    and ``target`` (same power mode first), shrunk by n / (n + SHRINK_ROWS); None if none."""
    key = _product_key(case) + (target,)
    same = [(k[5] == case.power_capped, k[6], e) for k, e in zip(f.row_keys, f.in_sample_log_err) if k[:5] == key]
    rows = [(y, e) for match, y, e in same if match] or [(y, e) for _, y, e in same]
    return _shrunk_median(rows, case.year)


def _shrunk_median(rows: list[tuple[float, float]], year: float) -> tuple[float, int] | None:
    """Round-weighted median of the values of ``(year, value)`` rows, shrunk by
    n / (n + SHRINK_ROWS) with n their effective count, and how many; None if none."""
    if not rows:
        return None
    years, values = np.array([y for y, _ in rows]), np.array([v for _, v in rows])
    w = _round_weights(years, year)
    n = float(w.sum() ** 2 / (w ** 2).sum())
    return _weighted_median(values, w) * n / (n + SHRINK_ROWS), len(values)


def _paired_difference(f: "UnitFit", case: Case, target: str, base: str,
                       scope: str = "product") -> tuple[float, int] | None:
    """Median of residual(target) - residual(base) over the systems (one submission: system,
    round, power mode) that published both, round-weighted and shrunk like
    ``_shrunk_residual``; None without such a system. ``scope``: "product", the systems of
    ``case``'s product and network; "chip", those of the unit's *other* products with the
    same network and MIG configuration: how a network's Server run compares with its
    Offline run is the harness's batching on that chip, which its sibling products share
    (an H100 PCIe from H100 SXM systems)."""
    prod = _product_key(case)

    def match(k: tuple) -> bool:
        if scope == "product":
            return k[:4] == prod
        return k[0] != prod[0] and k[1:4] == prod[1:]

    by: dict = {}
    for k, e in zip(f.row_keys, f.in_sample_log_err):
        if match(k) and k[4] in (target, base):
            by.setdefault((k[7], k[6], k[5]), {}).setdefault(k[4], []).append(e)
    pairs = [(y, float(np.mean(v[target])) - float(np.mean(v[base])), pc == case.power_capped)
             for (_, y, pc), v in by.items() if target in v and base in v]
    pairs = [(y, d) for y, d, match in pairs if match] or [(y, d) for y, d, _ in pairs]
    return _shrunk_median(pairs, case.year)


def kernel_us_held(p: Prior) -> Prior:
    """``p`` with the fixed cost per kernel held at its prior mean, for a unit whose rows are
    all one network, where that cost and the kernel efficiencies explain the rows equally
    (a Xeon 6980P fitted on RetinaNet alone puts it at 126 us, other Xeon stacks at 9 to
    30 us, and predicts ResNet-50 at a sixth of its published rate). Measured
    (``benchmarks/hw_accuracy.py`` section 7, docs/hardware.md) and not adopted: fitted on
    one network, a unit predicts its others better with it held on ASICs (median |error|
    46.6 against 69.1%) but worse on GPUs and CPUs (21.1 against 19.1%, 28.3 against
    26.7%), and the one-network units are mostly CPUs: in the calibration it moved
    leave-one-system-out cpu from 8.7% to 9.3% and cross-scenario per product from 6.3%
    to 6.5%."""
    mean, sd = p.mean.copy(), p.sd.copy()
    sd[NAMES.index("kernel_us")] = 1e-3
    return Prior(mean, sd, p.source + ", fixed cost per kernel held (one network)")


def latency_eff_held(p: Prior) -> Prior:
    """``p`` with ``latency_eff`` held at 1: for measurements of one program (onnxruntime
    runs the same kernels at every batch size and in every scenario), where every point is
    a latency point and a free ``latency_eff`` would only trade against the kernel-class
    efficiencies (left free on this machine's profile it ran to its bound, 1.5)."""
    mean, sd = p.mean.copy(), p.sd.copy()
    j = NAMES.index("latency_eff")
    mean[j], sd[j] = 0.0, 1e-3
    return Prior(mean, sd, p.source + ", latency efficiency held at 1")


def measurement_prior(kind: str) -> Prior:
    """The prior of a unit fitted on one machine's measurements alone (the user's, or those
    shipped as calibration data): data-free defaults of its kind, ``latency_eff`` held at 1."""
    return latency_eff_held(default_prior(kind))


def unit_meta_of(case: Case) -> tuple:
    prof = profiles.get(case.profile)
    return prof.kind, prof.family, prof.vendor


def fit_all(cases: list[Case], values: dict[int, float], stage1: dict[str, UnitFit] | None = None,
            only_units: set[str] | None = None, warm: dict[str, UnitFit] | None = None,
            own_data_only: frozenset = frozenset()) -> Calibration:
    """Fit every unit with enough rows (see the module docstring).

    ``stage1``: reuse stage-1 fits (leave-one-out: only the units in ``only_units`` are
    refitted at stage 1 and stage 2). ``warm``: previous fits to start from.
    ``own_data_only``: units (measurements of one machine) whose fits no other unit's
    learned prior uses, so predictions of published results stay fitted on published
    results; they are fitted with data-free priors and ``latency_eff`` held at 1, as
    ``python -m sim calibrate --measurements`` fits them.
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
        # given stage-1 fits are kept: a unit's stage-1 fit only feeds *other* units' priors,
        # so leaving rows of ``only_units`` out changes nothing their predictions depend on
        if stage1 is not None and u in s1:
            continue
        vals = np.array([values[c.index] for c in cs])
        w = (warm or {}).get(u)
        s1[u] = fit_unit(u, cs, vals, default_prior(meta[u][0]), warm=w.params if w and w.fitted else None)
    for u in list(s1):
        if u not in by_unit:
            del s1[u]
    cal = Calibration(units={}, stage1=s1, unit_meta=meta, own_data_only=frozenset(own_data_only))
    for u, cs in by_unit.items():
        if only_units is not None and u not in only_units and warm and u in warm:
            cal.units[u] = warm[u]
            continue
        prior = measurement_prior(meta[u][0]) if u in own_data_only else cal.learned_prior(u, *meta[u])
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
            raise InputError(f"{path}:{line}: field 'devices' = {r.get('devices')!r}: "
                             "expected an integer >= 1") from None
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
        chosen, why = (prec, "given in the measurements") if prec else precision_rules.choose(prof, model)
        framework = (r.get("framework") or "").strip()
        stack = (stack_of(prof.kind, "", framework) if framework else "user") if prof.kind == "cpu" else case.stack
        case = replace(case, profile=prof.name, unsupported=None, precision=chosen, precision_reason=why,
                       devices=devices, year=prof.release_year, system_key=f"user/{prof.name}/{line}",
                       batch=batch, stack=stack)
        cases.append(case)
        values[i] = value * 1e6 if lat else value
    return cases, values
