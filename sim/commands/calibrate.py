"""``python -m sim calibrate``: fit the calibration unit of a device (its chip; on CPUs its chip
and software stack).

``python -m sim calibrate --device a100-sxm`` fits on the published results (``--results``,
default the shared results file) or on your own measurements (``--measurements``, a CSV
described in ``sim.hw.calibrate``). Prints the rows used, the parameters and where their
priors came from, the in-sample error and the leave-one-system-out error; ``--write``
records the fit in ``hw_profiles/fitted/<unit>.yaml``. Refuses (exit status 2) with fewer
than ``MIN_ROWS`` usable rows.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import yaml

from sim.errors import InputError
from sim.hw import calibrate as cal
from sim.hw import profiles, published
from sim.hw import system_model as sm
from sim.hw.rows import unit_of
from sim.paths import REPO_ROOT
from sim.util import atomic

NAME = "calibrate"
FITTED_DIR = REPO_ROOT / "hw_profiles" / "fitted"


def add_parser(subparsers):
    p = subparsers.add_parser(NAME, help="fit a device's efficiency parameters to published results or measurements")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--device", help="a profile name (hw_profiles/<name>.yaml), e.g. a100-sxm")
    who.add_argument("--all", action="store_true", help="every calibration unit with enough rows")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--results", default=None, help=f"published results CSV (default {published.DEFAULT_RESULTS})")
    src.add_argument("--measurements", default=None,
                     help="your own measurements: CSV with device, model, batch, latency_ms or throughput")
    p.add_argument("--write", action="store_true", help="record the fit in hw_profiles/fitted/<unit>.yaml")
    p.add_argument("--no-loo", action="store_true", help="skip the leave-one-system-out error")
    return p


def _load(args):
    """(cases, values, source, units of shipped measurements): the user's measurements, or
    the published results plus the measurements shipped as calibration data, as the main
    calibration has them (``published.calibration_data``)."""
    if args.measurements:
        cases, values = cal.read_measurements(args.measurements)
        return cases, values, args.measurements, frozenset()
    path = Path(args.results) if args.results else published.DEFAULT_RESULTS
    cases, values, measured = published.calibration_data(path)
    return cases, values, str(path), measured


def unit_loo(cases, values, prior: cal.Prior, fit: cal.UnitFit) -> dict[int, float]:
    """Leave-one-system-out within a unit: log(pred/measured) of each row from a refit without its system."""
    by_sys = defaultdict(list)
    for c in cases:
        by_sys[c.system_key].append(c)
    out = {}
    for key, held in by_sys.items():
        rest = [c for c in cases if c.system_key != key]
        if len(rest) < cal.MIN_ROWS:
            continue
        f = cal.fit_unit(fit.unit, rest, np.array([values[c.index] for c in rest]), prior, warm=fit.params)
        for c in held:
            out[c.index] = math.log(sm.closed_form(c, f.params) / values[c.index])
    return out


def _describe(unit: str, fit: cal.UnitFit, loo: dict | None, source: str, cases) -> str:
    lines = [f"calibration unit {unit} ({fit.kind}): {len(fit.rows)} rows of {source}"]
    if not fit.fitted:
        return "\n".join(lines)
    err = np.abs(np.expm1(fit.in_sample_log_err))
    lines.append(f"  in-sample median |error| {np.median(err):.1%} (p90 {np.percentile(err, 90):.1%})")
    if loo:
        e = np.abs(np.expm1(np.array(list(loo.values()))))
        lines.append(f"  leave-one-system-out median |error| {np.median(e):.1%} (p90 {np.percentile(e, 90):.1%}) "
                     f"over {len(loo)} rows")
    lines.append(f"  priors: {fit.prior.source}")
    lines.append("  parameters:")
    for k, v in fit.params.as_dict().items():
        if k in ("issue_us", "triton_us"):
            continue
        lines.append(f"    {k:28s} {v:.4g}")
    targets = defaultdict(int)
    for c in cases:
        targets[(c.profile, c.model, c.target)] += 1
    lines.append("  rows by product, model and scenario:")
    for (p, m, t), n in sorted(targets.items()):
        lines.append(f"    {p:22s} {m:14s} {t:13s} {n:4d}")
    return "\n".join(lines)


def _measured_source(cases) -> str:
    """The shipped measurement file of a unit's cases (system keys "measured/<file>/...")."""
    return str(profiles.profiles_dir() / "measured" / cases[0].system_key.split("/")[1])


def _fitted_yaml(unit: str, fit: cal.UnitFit, loo, source: str, rows, cases, measured: bool = False) -> dict:
    digest = hashlib.sha256(Path(source).read_bytes()).hexdigest()[:12]
    data = f"{len(fit.rows)} rows of {Path(source).name} (sha256 {digest}), listed under rows"
    err = np.abs(np.expm1(fit.in_sample_log_err))
    doc = {"unit": unit, "kind": fit.kind, "model_version": published.MODEL_VERSION,
           "fit": {"data": data,
                   "method": "sim.hw.calibrate.fit_unit: scipy.optimize.least_squares on log(predicted/published), "
                             "soft-L1 loss, Gaussian priors",
                   "prior": fit.prior.source,
                   "in_sample_median_abs_error": float(f"{np.median(err):.4f}")}}
    if loo:
        doc["fit"]["leave_one_system_out_median_abs_error"] = float(
            f"{np.median(np.abs(np.expm1(np.array(list(loo.values()))))):.4f}")
    doc["parameters"] = {}
    for k, v in fit.params.as_dict().items():
        if k in ("issue_us", "triton_us"):
            continue
        per_network = any(n.startswith("batch_us_") for n in fit.params.as_dict())
        src = ("derived: geometric mean of the per-network batch_us_* below" if k == "batch_us" and per_network
               else f"fitted on {data} (see fit)")
        doc["parameters"][k] = {"value": float(f"{v:.6g}"), "source": src}
    if measured:
        doc["rows"] = [f"{Path(source).name}:{c.system_key.rsplit('/', 1)[1]} {c.model} batch {c.batch} "
                       f"{'latency' if c.target == 'singlestream' else 'throughput'}" for c in cases]
    else:
        doc["rows"] = [f"{Path(source).name}:{c.index + 2} {c.version} {c.system_key} {c.model} {c.scenario}"
                       for c in cases]
    return doc


def _nothing():
    from contextlib import nullcontext  # noqa: PLC0415 - only when calibrating

    return nullcontext()


def run(args) -> int:
    from sim.util import progress  # noqa: PLC0415 - only when calibrating

    what = f"device {args.device}" if args.device else "every calibration unit"
    progress.say(f"calibrating {what} on {args.measurements or args.results or published.DEFAULT_RESULTS}: reading "
                 f"the rows, learning priors from the other devices, then fitting and the leave-one-system-out error")
    cases, values, source, measured = _load(args)
    usable = [c for c in cases if c.ok and c.target in cal.FIT_TARGETS and c.index in values]
    if args.device:
        prof = profiles.get(args.device)
        units = sorted({unit_of(c) for c in usable if profiles.get(c.profile).chip == prof.chip})
        if not units:
            raise InputError(f"{source}: no usable rows for device {args.device!r} (chip {prof.chip}); expected at "
                             f"least {cal.MIN_ROWS} rows of a supported model and scenario to fit on")
    else:
        units = sorted({unit_of(c) for c in usable})
    meta = {unit_of(c): cal.unit_meta_of(c) for c in usable}
    # priors from the published results (other units), unless fitting measurements alone
    if args.measurements:
        calib_prior = None
    else:
        with progress.stage("learning priors from the other devices (a fit of every unit)") if (
                len(units) > 1 or args.all) else _nothing():
            calib_prior = cal.fit_all(cases, values, own_data_only=measured) if len(units) > 1 or args.all else None
    written = []
    for unit in units:
        mine = [c for c in usable if unit_of(c) == unit]
        if len(mine) < cal.MIN_ROWS:
            msg = (f"{source}: calibration unit {unit} has {len(mine)} usable rows; expected at least "
                   f"{cal.MIN_ROWS} to fit (too little data: its parameters stay the learned priors)")
            if args.device:
                raise InputError(msg)
            print(msg)
            continue
        own = args.measurements or unit in measured
        if calib_prior is None and not own:
            with progress.stage("learning priors from the other devices (a fit of every unit)"):
                calib_prior = cal.fit_all(cases, values, own_data_only=measured)
        prior = cal.measurement_prior(meta[unit][0]) if own else calib_prior.learned_prior(unit, *meta[unit])
        vals = np.array([values[c.index] for c in mine])
        fit = cal.fit_unit(unit, mine, vals, prior)
        loo = None if args.no_loo else unit_loo(mine, values, prior, fit)
        src = _measured_source(mine) if unit in measured else source
        print(_describe(unit, fit, loo, src, mine))
        if args.write:
            path = FITTED_DIR / (unit.replace("/", "--") + ".yaml")
            doc = _fitted_yaml(unit, fit, loo, src, None, mine, unit in measured)
            atomic.write_text(path, "# written by: python -m sim calibrate; every value fitted (see source)\n"
                              + yaml.safe_dump(doc, sort_keys=False, width=200))
            written.append(path)
    for p in written:
        print(f"wrote {p}")
    return 0
