"""Gaussian priors on the fitted parameters (``sim.hw.calibrate``), in vector space
(``sim.hw.param_vector``).

- stage 1: ``default_prior``, weak data-free defaults per device kind;
- stage 2: ``learned_prior``, the median and spread of other units' stage-1 estimates over
  the units of the same family / software stack / vendor / kind (``groups_of``), counting
  only units whose data determine that parameter; a small group's median is shrunk toward
  the next broader group's (``PRIOR_SHRINK_UNITS``);
- variants: ``kernel_us_held``, ``latency_eff_held`` and ``measurement_prior`` (a unit
  fitted on one machine's measurements alone).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sim.hw import profiles
from sim.hw.param_vector import LOG, NAMES, NETS, from_vector, to_vector
from sim.hw.rows import Case
from sim.hw.system_model import Params

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
               "post_us": (100.0, 1.5),
               **{f"net_{w}": (1.0, 0.3) for w in NETS}}
_SD_FLOOR = {"conv": 0.25, "gconv": 0.4, "matmul": 0.25, "bmm": 0.4, "mem": 0.2, "kernel_us": 0.4,
             "batch_us": 0.6, "latency_eff": 0.2, "trend": 0.04, "maxq": 0.08, "power": 0.1, "multi": 0.015,
             "server_util": 0.05, "triton_util": 0.1, "triton_ms_us": 0.3, "post_us": 0.4,
             **{f"net_{w}": 0.08 for w in NETS}, **{f"batch_us_{w}": 0.5 for w in NETS}}
PRIOR_SHRINK_UNITS = 2.0    # a learned prior's group median weighs its units against this many of the kind's


@dataclass(frozen=True)
class Prior:
    mean: np.ndarray            # in vector space
    sd: np.ndarray
    source: str = "defaults"
    groups: dict = field(default_factory=dict)    # parameter -> "group(units)" it was learned from

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


def groups_of(unit: str, kind: str, family: str, vendor: str) -> list[str]:
    """Groups a unit borrows its stage-2 prior from, most specific first."""
    if kind == "cpu":
        stack = unit.split("/", 1)[1] if "/" in unit else ""
        return [f"cpu-stack:{stack}:{family}", f"cpu-stack:{stack}", f"family:{family}", f"kind:{kind}"]
    return [f"family:{family}", f"vendor:{vendor}:{kind}", f"kind:{kind}"]


def unit_meta_of(case: Case) -> tuple:
    prof = profiles.get(case.profile)
    return prof.kind, prof.family, prof.vendor


def learned_prior(unit: str, kind: str, family: str, vendor: str,
                  estimates: list[tuple[str, Params, np.ndarray, tuple]]) -> Prior:
    """Stage-2 prior for ``unit``: medians of other units' informed stage-1 estimates.

    ``estimates``: per other unit whose stage-1 fit may inform it, ``(unit, its fitted
    parameters, which of them its data determine, its (kind, family, vendor))``."""
    base = default_prior(kind)
    mean, sd = base.mean.copy(), base.sd.copy()
    used, learned = [], {}
    groups = groups_of(unit, kind, family, vendor)
    others = [(to_vector(params), informed, set(groups_of(u, *meta))) for u, params, informed, meta in estimates]
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
                learned[name] = f"{group} ({len(xs)} units)"
                break
    src = "prior learned from other devices: " + (", ".join(used) if used else "none; data-free defaults")
    return Prior(mean, sd, src, learned)


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
    return Prior(mean, sd, p.source + ", fixed cost per kernel held (one network)", p.groups)


def latency_eff_held(p: Prior) -> Prior:
    """``p`` with ``latency_eff`` held at 1: for measurements of one program (onnxruntime
    runs the same kernels at every batch size and in every scenario), where every point is
    a latency point and a free ``latency_eff`` would only trade against the kernel-class
    efficiencies (left free on this machine's profile it ran to its bound, 1.5)."""
    mean, sd = p.mean.copy(), p.sd.copy()
    j = NAMES.index("latency_eff")
    mean[j], sd[j] = 0.0, 1e-3
    return Prior(mean, sd, p.source + ", latency efficiency held at 1", p.groups)


def measurement_prior(kind: str) -> Prior:
    """The prior of a unit fitted on one machine's measurements alone (the user's, or those
    shipped as calibration data): data-free defaults of its kind, ``latency_eff`` held at 1."""
    return latency_eff_held(default_prior(kind))
