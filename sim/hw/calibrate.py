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
- per network with rows (``param_vector.NETWORK_FACTORS``): its efficiency relative to its
  kernel classes, and its fixed cost per batch; a network without rows is predicted
  without them (``Calibration.params_for``: factor 1, the fitted networks' mean fixed
  cost). With the switch off, one fixed cost per batch and ``post_us`` per million raw
  output elements replace them (a variant, measured in docs/hardware.md). ResNet-50 and
  BERT-large (``REFERENCE_NETS``) have no factor on their kernels: BERT-large is the only
  network whose time is in matmuls, so its
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

The fit evaluates every row in closed form (``sim.hw.system_model.closed_form``, for all
of a unit's rows at once ``sim.hw.unit_model.UnitModel``): exact for
the scenarios without queueing (Offline, SingleStream, MultiStream), and the sustainable
capacity for Server, which the simulated search confirms or lowers where queueing breaks
the latency bound. Predictions go through the simulator.

After the fit, ``Calibration.correction`` adds one more level: the shrunk, round-weighted
median residual of the unit's own rows of the same product, network and scenario (a
scenario efficiency of that network on that product, fitted on other systems' rows). A
Server correction is the Offline one plus the Server-minus-Offline difference of systems
that published both: the product's own, else, for a product with no Server row of that
network, its chip's other products' (same network and MIG configuration).

Where the parts live: the parameters as one vector, ``sim.hw.param_vector``; the priors,
``sim.hw.priors``; the fitted result (``UnitFit``, ``Calibration``: ``params_for``,
``correction``, ``learned_prior``), ``sim.hw.calibration``; the results CSV and the user's
measurements (``read_results``, ``observed``, ``read_measurements``), ``sim.hw.measurements``.
This module fits: one unit (``fit_unit``), every unit in two stages (``fit_all``).
"""

from __future__ import annotations

import numpy as np

from sim.hw import profiles
from sim.hw.calibration import MIN_ROWS, Calibration, UnitFit, residual_key
from sim.hw.measurements import observed, read_measurements, read_results
from sim.hw.param_vector import NAMES, REFERENCE_NETS, bounds, from_vector, to_vector
from sim.hw.priors import Prior, default_prior, kernel_us_held, measurement_prior, unit_meta_of
from sim.hw.rows import Case, unit_of
from sim.hw.system_model import Params
from sim.hw.unit_model import UnitModel

# importable from here too, as callers name them (``from sim.hw import calibrate as cal``)
__all__ = ["FIT_TARGETS", "MIN_ROWS", "NOISE", "REFERENCE_NETS", "Calibration", "Prior", "UnitFit", "UnitModel",
           "default_prior", "fit_all", "fit_unit", "kernel_us_held", "measurement_prior", "observed",
           "read_measurements", "read_results", "unit_meta_of", "unit_of"]

NOISE = 0.05            # relative spread of repeated published results (log scale)
FIT_TARGETS = ("offline", "singlestream", "multistream", "ms_streams", "server")


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

    from scipy.optimize import least_squares  # noqa: PLC0415 - heavy (~0.35 s): kept out of `python -m sim --help`

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


def _informed(jac_data: np.ndarray, prior_sd: np.ndarray) -> np.ndarray:
    """Parameters the data pin down: posterior sd below half the prior sd."""
    info = jac_data.T @ jac_data + np.diag(1.0 / prior_sd ** 2)
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        return np.zeros(len(prior_sd), bool)
    return np.sqrt(np.maximum(np.diag(cov), 0)) < 0.5 * prior_sd


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
    cal = Calibration(units={}, stage1=s1, unit_meta=meta, own_data_only=frozenset(own_data_only),
                      networks=frozenset(c.workload for cs in by_unit.values() for c in cs))
    for u, cs in by_unit.items():
        if only_units is not None and u not in only_units and warm and u in warm:
            cal.units[u] = warm[u]
            continue
        prior = measurement_prior(meta[u][0]) if u in own_data_only else cal.learned_prior(u, *meta[u])
        vals = np.array([values[c.index] for c in cs])
        w = (warm or {}).get(u) or s1.get(u)
        cal.units[u] = fit_unit(u, cs, vals, prior, warm=w.params if w and w.fitted else None)
    return cal
