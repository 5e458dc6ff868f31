"""The result of a calibration (``sim.hw.calibrate.fit_all``): per unit its fit (``UnitFit``),
and ``Calibration``, what a prediction asks of them.

- ``Calibration.params_for``: the parameters that predict a case, its unit's fit, or for a
  unit with no fit (too few rows, or no published results) the prior learned from the other
  units' stage-1 fits (``Calibration.learned_prior``, ``sim.hw.priors.learned_prior``);
- ``Calibration.correction``: the shrunk, round-weighted median residual of the unit's own
  rows of the same product, network and scenario (a scenario efficiency of that network on
  that product, fitted on other systems' rows). A Server correction is the Offline one plus
  the Server-minus-Offline difference of systems that published both: the product's own,
  else, for a product with no Server row of that network, its chip's other products' (same
  network and MIG configuration).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from sim.hw import param_vector, profiles
from sim.hw.priors import Prior, learned_prior
from sim.hw.rows import Case, unit_of
from sim.hw.system_model import Params

MIN_ROWS = 3            # fewer rows than this: a unit is not fitted (refused by the CLI)


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


def without_network(p: Params, workload: str, seen: frozenset | set = frozenset()) -> Params:
    """``p`` for a network the calibration has no rows of: no factor of its own on its kernels
    and no fixed cost per batch of its own; the device's fixed cost per batch is the
    geometric mean over the networks in ``seen`` (those the fit had rows of), so a parameter
    no row determined does not enter it."""
    net = {w: v for w, v in p.net.items() if w != workload}
    nb = {w: v for w, v in p.net_batch_us.items() if w != workload}
    own = [v for w, v in nb.items() if w in seen] or list(nb.values())
    eff = p.eff if not own else replace(p.eff, batch_us=math.exp(sum(math.log(v) for v in own) / len(own)))
    return replace(p, eff=eff, net=net, net_batch_us=nb)


def residual_key(c: Case) -> tuple:
    return (c.profile, c.mig_slices, c.mig_instances, c.workload, c.target, c.power_capped, c.year, c.system_key)


# where a target borrows its residual correction from, in order
CORRECTION_SOURCES = {"offline": ("offline",), "server": ("server", "offline"), "singlestream": ("singlestream",),
                      "multistream": ("multistream", "singlestream"), "ms_streams": ("ms_streams", "offline")}
# a target measured on the same systems as its base: corrected as its base plus the paired difference
PAIRED_BASE = {"server": "offline"}
SHRINK_ROWS = 0.3       # a correction from n rows is shrunk by n / (n + SHRINK_ROWS)
ROUND_SCALE_YEARS = 0.5  # residuals of a round this far away weigh 1/e of the same round's


def _weighted_median(x: np.ndarray, w: np.ndarray) -> float:
    order = np.argsort(x)
    cw = np.cumsum(w[order])
    return float(x[order][np.searchsorted(cw, 0.5 * cw[-1])])


@dataclass
class Calibration:
    units: dict[str, UnitFit]
    stage1: dict[str, UnitFit]
    unit_meta: dict[str, tuple]                # unit -> (kind, family, vendor)
    own_data_only: frozenset = frozenset()     # units fitted on measurements: no other unit's prior uses them
    networks: frozenset = frozenset()          # workloads with rows in the fit (a network factor may exist)

    def learned_prior(self, unit: str, kind: str, family: str, vendor: str, exclude: set[str] = frozenset()) -> Prior:
        """Stage-2 prior for ``unit`` (``sim.hw.priors.learned_prior``) from the other units'
        stage-1 fits, leaving out ``exclude`` and the units fitted on measurements alone."""
        estimates = [(u, f.params, f.informed, self.unit_meta[u]) for u, f in self.stage1.items()
                     if u != unit and u not in exclude and u not in self.own_data_only and f.fitted]
        return learned_prior(unit, kind, family, vendor, estimates)

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
        if case.workload not in self.networks:
            p = without_network(p, case.workload, self.networks)
            src += (f"; {case.workload} has no rows in the calibration: predicted from its layer table "
                    "(no network factor)")
        return p, src

    def provenance(self, case: Case) -> dict:
        """Where each parameter of ``case``'s prediction (a device and a workload) comes from.

        Returns a dict: ``unit`` (the calibration unit), ``unit_rows`` (its rows in the fit, 0
        when it has none or too few to be fitted), ``own_fit`` (the parameters its own rows
        determine), ``learned_prior`` ({parameter: the group of other units it was learned
        from, e.g. "family:ampere (3 units)"}), ``defaults`` (parameters at data-free
        defaults: neither its rows nor other units determine them), ``network`` (the
        workload), ``network_rows`` (rows of that workload in the whole calibration),
        ``network_factor`` ("none: no rows of this network in the calibration", "none: the
        calibration fits no factor for this network", or, where ``param_vector.NETWORK_FACTORS``
        is on, "fitted on the unit's rows", "learned prior", "data-free default"),
        ``physics_only`` (True when the network has no rows in the calibration: its time
        comes from its layer table and the device's shared parameters alone, with no factor
        and no residual correction of its own) and ``correction`` (``correction``'s
        description: the residual of the product's rows of that network and scenario)."""
        unit = unit_of(case)
        fit = self.units.get(unit)
        fitted = bool(fit is not None and fit.fitted)
        if fitted:
            prior, informed, rows = fit.prior, fit.informed, len(fit.rows)
        else:
            prof = profiles.get(case.profile)
            prior, informed, rows = self.learned_prior(unit, prof.kind, prof.family, prof.vendor), None, 0
        w = case.workload
        net_names = {f"net_{w}", f"batch_us_{w}"}
        own, learned, defaults = [], {}, []
        for j, name in enumerate(param_vector.NAMES):
            if (name.startswith("net_") or name.startswith("batch_us_")) and name not in net_names:
                continue            # another network's own parameters: not used by this prediction
            if informed is not None and informed[j]:
                own.append(name)
            elif name in prior.groups:
                learned[name] = prior.groups[name]
            else:
                defaults.append(name)
        network_rows = sum(1 for f in self.units.values() for k in f.row_keys if k[3] == w)
        if w not in self.networks:
            factor = "none: no rows of this network in the calibration"
        elif not any(n in param_vector.NAMES for n in net_names):
            factor = "none: the calibration fits no factor for this network"
        elif any(n in own for n in net_names):
            factor = "fitted on the unit's rows"
        elif any(n in learned for n in net_names):
            factor = "learned prior"
        else:
            factor = "data-free default"
        _, corr = self.correction(case)
        return {"unit": unit, "unit_rows": rows, "own_fit": own, "learned_prior": learned, "defaults": defaults,
                "network": w, "network_rows": network_rows, "network_factor": factor,
                "physics_only": w not in self.networks, "correction": corr}

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
