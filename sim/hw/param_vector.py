"""The parameters a calibration fits, as one vector (``sim.hw.calibrate``).

``NAMES`` orders the entries; the ``LOG`` ones are held as their logarithm, the others as
they are. ``to_vector`` and ``from_vector`` convert ``system_model.Params`` to and from that
vector, ``bounds`` gives the least-squares bounds (``LOWER``, ``UPPER``).
"""

from __future__ import annotations

import math

import numpy as np

from sim.hw.analytic import Efficiency
from sim.hw.system_model import Params

NETS = ("resnet50", "ssd_mobilenet_v1", "ssd_resnet34", "retinanet", "bert_large")
# Networks whose factor is 1 by definition: the efficiency of their kernel class is theirs
# (ResNet-50 is the reference of the conv networks; BERT-large is the only network whose
# time is in matmuls, so a factor of its own would only trade against the matmul efficiency
# and leave the split to the optimiser's path).
REFERENCE_NETS = ("resnet50", "bert_large")
FREE_NETS = tuple(w for w in NETS if w not in REFERENCE_NETS)
# Per-network parameters, only for the networks with rows (``NETS``): a factor on the
# kernels of each non-reference network and a fixed cost per batch of each network. A
# network without rows is predicted without them (``calibration.without_network``: the
# device's fixed cost per batch is then the geometric mean of the fitted networks'). False
# fits none at all: one fixed cost per batch and ``post_us`` per million raw output
# elements, shared by every network (the variant measured in docs/hardware.md, section 7).
NETWORK_FACTORS = True
CORE = ("conv", "gconv", "matmul", "bmm", "mem", "kernel_us", "latency_eff", "trend", "maxq", "power", "multi",
        "server_util", "triton_util", "triton_ms_us")
if NETWORK_FACTORS:
    NAMES = CORE + tuple(f"net_{w}" for w in FREE_NETS) + tuple(f"batch_us_{w}" for w in NETS)
else:
    NAMES = CORE + ("post_us", "batch_us")
LOG = {"conv", "gconv", "matmul", "bmm", "mem", "kernel_us", "latency_eff", "maxq", "server_util", "triton_util",
       "triton_ms_us", "batch_us", "post_us"} | {f"net_{w}" for w in NETS} | {f"batch_us_{w}" for w in NETS}
# efficiencies may exceed 1 where the engine does less work than the graph says (BERT
# engines skip padded tokens; caches cut DRAM traffic below the count)
LOWER = {"conv": 1e-4, "gconv": 1e-5, "matmul": 1e-4, "bmm": 1e-5, "mem": 0.02, "kernel_us": 0.01,
         "latency_eff": 0.02, "trend": -0.3, "maxq": 0.2, "power": 0.0, "multi": -0.1, "server_util": 0.2,
         "triton_util": 0.1, "triton_ms_us": 1.0, "batch_us": 0.1, "post_us": 0.01,
         **{f"net_{w}": 0.2 for w in NETS}, **{f"batch_us_{w}": 0.1 for w in NETS}}
UPPER = {"conv": 1.5, "gconv": 1.5, "matmul": 3.0, "bmm": 3.0, "mem": 2.0, "kernel_us": 1e4, "batch_us": 1e6,
         "latency_eff": 1.5, "trend": 0.6, "maxq": 1.2, "power": 1.5, "multi": 0.3, "server_util": 1.2,
         "triton_util": 1.2, "triton_ms_us": 1e4, "post_us": 1e5, **{f"net_{w}": 5.0 for w in NETS},
         **{f"batch_us_{w}": 1e6 for w in NETS}}


def to_vector(p: Params) -> np.ndarray:
    d = {**{f"net_{w}": 1.0 for w in NETS}, **{f"batch_us_{w}": p.eff.batch_us for w in NETS}, **p.as_dict()}
    # a log parameter at 0 (no Triton cost in hand-made parameters) starts at its lower bound
    return np.array([math.log(max(d[n], LOWER[n])) if n in LOG else d[n] for n in NAMES])


def from_vector(x: np.ndarray, base: Params | None = None) -> Params:
    d = {n: (math.exp(v) if n in LOG else float(v)) for n, v in zip(NAMES, x)}
    base = base or Params()
    common = dict(trend=d["trend"], maxq=d["maxq"], power=d["power"], multi=d["multi"],
                  server_util=d["server_util"], triton_util=d["triton_util"], issue_us=base.issue_us,
                  triton_us=base.triton_us, triton_ms_us=d["triton_ms_us"])
    if not NETWORK_FACTORS:
        return Params(eff=Efficiency(**{k: d[k] for k in Efficiency().as_dict() if k in d}), **common)
    nb = {w: d[f"batch_us_{w}"] for w in NETS}
    eff = Efficiency(**{k: d[k] for k in Efficiency().as_dict() if k in d},
                     batch_us=float(np.exp(np.mean(np.log(list(nb.values()))))))
    return Params(eff=eff, net={w: d[f"net_{w}"] for w in FREE_NETS}, net_batch_us=nb, **common)


def bounds() -> tuple[np.ndarray, np.ndarray]:
    lo = np.array([math.log(LOWER[n]) if n in LOG else LOWER[n] for n in NAMES])
    hi = np.array([math.log(UPPER[n]) if n in LOG else UPPER[n] for n in NAMES])
    return lo, hi
