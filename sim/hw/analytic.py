"""The analytical per-layer cost model: a roofline with a fixed cost per kernel.

For a workload's layer summary (``sim.hw.summaries``), a device profile
(``sim.hw.profiles``), a precision and a few efficiency parameters, the time of one
batch of ``b`` samples on one device is::

    T(b) = batch_s + post_s + sum over kernels l of  [ max(compute_l(b), memory_l(b)) + kernel_s ]

    compute_l(b) = flops_l * b / (peak[precision] * eff[kclass_l] * fill_l(b))
    memory_l(b)  = (weight bytes_l, unless the weights stay on chip
                    + activation bytes_l * b, unless they fit on chip) / (bandwidth * eff_mem)

- ``eff[kclass]``: the share of the datasheet peak a kernel class reaches when the device
  is full (dense conv, grouped/depthwise conv, matmul, attention batched matmul);
- ``fill_l(b)``: tile (wave) quantisation: a MAC layer of an ``m x n`` output per sample
  makes ``ceil(m*b/TM) * ceil(n/TN)`` tiles; ``U`` compute units run them in waves, so the
  busy share of the device is ``tiles / (U * waves)``. Small layers at batch 1 leave most
  of a big device idle: this is what makes throughput grow with the batch size.
- weights stay on chip when the model's weights fit in half the on-chip memory (SRAM of
  an ASIC, a CPU's L3); a layer's activations skip DRAM when they fit in half of it;
- ``kernel_s``: the fixed cost of one kernel (launch, pipeline fill, synchronisation);
- ``batch_s``: the fixed cost of one batch on the host and device (enqueue, copies'
  set-up, completion), paid once per batch;
- ``latency_eff``: compute efficiency of a latency-optimised run (SingleStream,
  MultiStream) relative to a batched one, for the kinds in ``LATENCY_EFF_KINDS``: an ASIC
  or CPU that runs a copy of the network per core for throughput must split one sample
  over all cores for latency, and does so less efficiently: its single-sample latency is
  several times its per-sample throughput time. A GPU runs the same kernels either way,
  so its latency runs differ from batched ones only by fill and fixed costs (fitting a
  GPU ``latency_eff`` to SingleStream rows alone put their fixed cost into compute and
  made MultiStream 30% slow on large-image detectors);
- ``post_s``: post-processing of the raw outputs once per batch (decoding and NMS read
  every anchor's box and class scores), ``post_us`` per million output elements of a
  sample; 0 unless fitted (``sim.hw.param_vector.NETWORK_FACTORS`` off);
- per network with published rows (``NETWORK_FACTORS`` on, the calibration): ``net``, a
  factor on its kernels (fusions only that network allows), and its own fixed cost per
  batch, which replaces ``batch_s + post_s``; a network without rows has neither.

Elementwise ops, normalisations and reshapes are fused into the kernels that produce their
inputs (``fused`` in the summary) and cost nothing here; pooling, softmax, layer norm,
resize and concat are memory-bound ``vector`` kernels.

``AnalyticCost`` wraps this as a simulator cost model (``service_time_ns(batch, idle,
rng)``), adding the host link: input and output bytes of the batch over the device's
host link, in series with compute when ``overlap_link`` is off (latency scenarios), or
overlapped with it (throughput scenarios: copies of one batch run while the previous
one computes, so the slower of the two sets the pace).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from sim.errors import InputError
from sim.hw import summaries
from sim.hw.profiles import Profile

BYTES = {"int4": 0.5, "int8": 1.0, "fp8": 1.0, "fp16": 2.0, "bf16": 2.0, "fp32": 4.0}
EFF_CLASSES = ("conv", "gconv", "matmul", "bmm")
# Output tile of one compute unit (rows x columns of the GEMM view); an assumption about
# how vendor libraries tile MAC layers, not a datasheet figure.
TILES = {"gpu": (32, 32), "asic": (32, 32), "fpga": (32, 32), "dsp": (32, 32), "cpu": (16, 32)}
# kinds whose latency-optimised runs use other (less efficient) programs than batched ones;
# a GPU runs the same kernels in both, so its latency runs differ only by fill and fixed costs
LATENCY_EFF_KINDS = ("asic", "fpga", "dsp", "cpu")
# kinds whose inference engines fuse attention (scores, softmax, context in one kernel: the
# score matrix never reaches DRAM): TensorRT's fused multi-head attention (since its 2019
# BERT release) and FlashAttention-style kernels on GPUs
FUSED_ATTENTION_KINDS = ("gpu",)
RESPONSE_ELEMS = 7000  # values returned per sample after post-processing (e.g. 1000 boxes x 7)
ONCHIP_SHARE = 0.5     # share of on-chip memory usable for resident weights or activations


@dataclass(frozen=True)
class Efficiency:
    """The fitted parameters of one device (or chip) at one precision."""
    conv: float = 0.5
    gconv: float = 0.1
    matmul: float = 0.5
    bmm: float = 0.3
    mem: float = 0.7
    kernel_us: float = 5.0
    batch_us: float = 50.0
    latency_eff: float = 1.0      # compute efficiency of latency-optimised runs relative to batched ones
    post_us: float = 0.0          # post-processing per batch, per million raw output elements per sample

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("conv", "gconv", "matmul", "bmm", "mem", "kernel_us", "batch_us",
                                              "latency_eff", "post_us")}

    def fixed_us(self, w: "AnalyticWorkload", batch_us: float | None = None) -> float:
        """Fixed cost of one batch: the device's ``batch_us`` plus the post-processing of the
        raw outputs (``post_us`` per million output elements per sample), or the network's
        own ``batch_us`` where one is given (it includes both)."""
        if batch_us is not None:
            return batch_us
        return self.batch_us + self.post_us * w.output_elems * 1e-6


@dataclass(frozen=True)
class Device:
    """What the model needs of a profile, possibly a MIG slice or one chip of a card."""
    name: str
    kind: str
    peak_ops: dict               # precision -> ops/s
    bandwidth_bps: float
    onchip_bytes: float
    units: int
    link_bps: float | None

    @classmethod
    def from_profile(cls, p: Profile, fraction: float = 1.0, cores: int | None = None) -> "Device":
        """One execution engine: ``fraction`` of a GPU (MIG), one chip of a multi-chip card,
        or a CPU socket with ``cores`` cores (scaled from the profile's core count)."""
        scale = fraction / p.chips_per_device
        if cores and p.kind == "cpu" and p.compute_units:
            scale *= cores / p.compute_units
        units = max(1, int(round((p.compute_units or 1) * scale)))
        return cls(name=p.name, kind=p.kind,
                   peak_ops={k: v * 1e12 * scale for k, v in p.peak_tops.items()},
                   bandwidth_bps=p.memory_bandwidth_gbps * 1e9 * (fraction / p.chips_per_device),
                   onchip_bytes=(p.onchip_memory_mb or 0.0) * 1e6 * (fraction / p.chips_per_device),
                   units=units, link_bps=(p.host_link_gbps * 1e9 if p.host_link_gbps else None))


@dataclass
class AnalyticWorkload:
    """A layer summary as arrays, split by what the cost model does with each kernel."""
    name: str
    mac_class: np.ndarray        # index into EFF_CLASSES per MAC kernel
    flops: np.ndarray            # per sample, MAC kernels
    m: np.ndarray
    n: np.ndarray
    w_elems: np.ndarray          # weights per MAC kernel
    a_elems: np.ndarray          # activation elements per sample, MAC kernels
    v_elems: np.ndarray          # activation elements per sample, vector kernels
    vw_elems: np.ndarray         # weights read by vector kernels (embedding rows are per sample)
    input_elems: float
    output_elems: float
    # activation elements per sample with attention fused (scores and softmax stay on chip);
    # the same as a_elems / v_elems for a network without attention
    a_elems_fused: np.ndarray | None = None
    v_elems_fused: np.ndarray | None = None
    kernels: int = field(init=False)

    def __post_init__(self):
        self.kernels = int(len(self.flops) + len(self.v_elems))
        if self.a_elems_fused is None:
            self.a_elems_fused = self.a_elems
        if self.v_elems_fused is None:
            self.v_elems_fused = self.v_elems

    def traffic(self, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """Activation elements per sample of the MAC and vector kernels on a device ``kind``."""
        if kind in FUSED_ATTENTION_KINDS:
            return self.a_elems_fused, self.v_elems_fused
        return self.a_elems, self.v_elems

    @property
    def total_weights(self) -> float:
        return float(self.w_elems.sum() + self.vw_elems.sum())


_WORKLOADS: dict[str, AnalyticWorkload] = {}


def workload(name: str) -> AnalyticWorkload:
    """The workload ``name`` prepared for the cost model (cached)."""
    if name in _WORKLOADS:
        return _WORKLOADS[name]
    a = summaries.arrays(name)
    kc = a["kclass"]
    mac = np.isin(kc, EFF_CLASSES)
    vec = kc == "vector"
    cls_idx = np.array([EFF_CLASSES.index(c) for c in kc[mac]], dtype=np.int64)
    summary = summaries.load(name)
    act_in, act_out = _fused_attention_traffic(kc, a["op_type"], a["act_in"], a["act_out"])
    # graph input/output elements per sample: the first layers' inputs are not known here,
    # so the summary's explicit fields are used when present
    w = AnalyticWorkload(name=name, mac_class=cls_idx, flops=a["flops"][mac], m=a["m"][mac], n=a["n"][mac],
                 w_elems=a["weights"][mac], a_elems=a["act_in"][mac] + a["act_out"][mac],
                 v_elems=a["act_in"][vec] + a["act_out"][vec], vw_elems=np.zeros(int(vec.sum())),
                 input_elems=float(summary.get("input_elems", 0.0)),
                 output_elems=float(summary.get("output_elems", 0.0)),
                 a_elems_fused=act_in[mac] + act_out[mac], v_elems_fused=act_in[vec] + act_out[vec])
    _WORKLOADS[name] = w
    return w


def _fused_attention_traffic(kclass: np.ndarray, op_type: np.ndarray, act_in: np.ndarray,
                             act_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Activation elements read and written per kernel when each attention block (a ``bmm``
    producing scores, a Softmax, a ``bmm`` applying them) runs as one fused kernel: the
    scores are neither written nor read back, the Softmax touches no DRAM; the queries,
    keys and values are read and the context written as before."""
    act_in, act_out = act_in.astype(float).copy(), act_out.astype(float).copy()
    kernels = [i for i, k in enumerate(kclass) if k != "fused"]
    for j in range(1, len(kernels) - 1):
        before, soft, after = kernels[j - 1], kernels[j], kernels[j + 1]
        if op_type[soft] == "Softmax" and kclass[before] == "bmm" and kclass[after] == "bmm":
            act_out[before] = 0.0
            act_in[after] = max(0.0, act_in[after] - act_out[soft])
            act_in[soft] = act_out[soft] = 0.0
    return act_in, act_out


def _fill(w: AnalyticWorkload, dev: Device, batch: int) -> np.ndarray:
    """Busy share of the compute units (``fill_many`` at one point)."""
    return fill_many(w, dev.kind, np.array([float(dev.units)]), np.array([float(batch)]))[0]


def fill_many(w: AnalyticWorkload, kind: str, units: np.ndarray, batch: np.ndarray) -> np.ndarray:
    """Busy share of the compute units per (point, MAC kernel): the output tiles of a layer
    run in waves over the units (tile quantisation)."""
    tm, tn = TILES.get(kind, (32, 32))
    b = batch.astype(float)[:, None]
    tiles = np.maximum(np.ceil(w.m[None, :] * b / tm) * np.ceil(w.n[None, :] / tn), 1.0)
    u = units.astype(float)[:, None]
    return tiles / (np.ceil(tiles / u) * u)


def layer_times_s(w: AnalyticWorkload, dev: Device, precision: str, eff: Efficiency, batch: int,
                  latency_mode: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per-kernel times (MAC kernels, vector kernels) of one batch, without ``batch_s``."""
    if precision not in dev.peak_ops:
        raise InputError(f"device {dev.name}: no {precision} peak in its profile; "
                         f"expected one of {sorted(dev.peak_ops)}")
    peak = dev.peak_ops[precision] * (eff.latency_eff if latency_mode and dev.kind in LATENCY_EFF_KINDS else 1.0)
    nbytes = BYTES[precision]
    effs = np.array([eff.conv, eff.gconv, eff.matmul, eff.bmm])[w.mac_class]
    compute = w.flops * batch / (peak * effs * _fill(w, dev, batch))
    limit = ONCHIP_SHARE * dev.onchip_bytes
    weights_resident = w.total_weights * nbytes <= limit
    w_bytes = np.zeros_like(w.w_elems) if weights_resident else w.w_elems * nbytes
    a_elems, v_elems = w.traffic(dev.kind)
    act = a_elems * batch * nbytes
    act = np.where(act <= limit, 0.0, act)
    bw = dev.bandwidth_bps * eff.mem
    mac_t = np.maximum(compute, (w_bytes + act) / bw) + eff.kernel_us * 1e-6
    vact = v_elems * batch * nbytes
    vact = np.where(vact <= limit, vact * 0.25, vact)      # on-chip traffic: assumed 4x DRAM bandwidth
    vec_t = vact / bw + eff.kernel_us * 1e-6
    return mac_t, vec_t


def batch_time_s(w: AnalyticWorkload, dev: Device, precision: str, eff: Efficiency, batch: int, net: float = 1.0,
                 batch_us: float | None = None, latency_mode: bool = False) -> float:
    """T(b): seconds for one batch of ``batch`` samples on one device (no host link).

    ``net`` scales the kernels' time: the network's own efficiency on the device relative
    to what its kernel classes predict (1 = as predicted); ``batch_us`` replaces the
    device's fixed cost per batch for this network (post-processing such as NMS);
    ``latency_mode``: a latency-optimised run (SingleStream, MultiStream), whose compute
    runs at ``eff.latency_eff`` of the batched efficiency.
    """
    mac_t, vec_t = layer_times_s(w, dev, precision, eff, batch, latency_mode)
    return float(net * (mac_t.sum() + vec_t.sum()) + eff.fixed_us(w, batch_us) * 1e-6)


def link_time_s(w: AnalyticWorkload, dev: Device, precision: str, batch: int) -> float:
    """Host link time of one batch: inputs in, outputs back (0 for a device without a link)."""
    if not dev.link_bps:
        return 0.0
    nbytes = BYTES[precision]
    # responses cross the link after post-processing (a detector returns its detections,
    # not its raw heads): at most RESPONSE_ELEMS values per sample
    return (w.input_elems * nbytes + min(w.output_elems, RESPONSE_ELEMS) * 4.0) * batch / dev.link_bps


@dataclass
class AnalyticCost:
    """A simulator cost model from the analytical model (deterministic, cached per batch).

    ``scale`` multiplies every service time (software maturity, power cap: see
    ``sim.hw.calibrate``); ``overlap_link`` chooses pipelined copies (throughput) or copies
    in series with compute (latency).
    """
    workload: AnalyticWorkload
    device: Device
    precision: str
    eff: Efficiency
    scale: float = 1.0
    overlap_link: bool = False
    net: float = 1.0
    batch_us: float | None = None
    latency_mode: bool = False
    random = False
    _cache: dict = field(default_factory=dict, repr=False)

    def batch_seconds(self, batch: int) -> float:
        if batch not in self._cache:
            t = batch_time_s(self.workload, self.device, self.precision, self.eff, batch, self.net, self.batch_us,
                             self.latency_mode)
            link = link_time_s(self.workload, self.device, self.precision, batch)
            t = max(t, link) if self.overlap_link else t + link
            self._cache[batch] = t * self.scale
        return self._cache[batch]

    def service_time_ns(self, batch: int, idle: bool = False, rng=None) -> float:
        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch <= 0:
            raise InputError(f"analytic cost of {self.device.name}: batch size {batch!r}: expected an integer >= 1")
        return float(np.ceil(self.batch_seconds(int(batch)) * 1e9))

    def describe(self) -> str:
        e = self.eff
        return (f"analytic roofline of {self.workload.name} on {self.device.name} at {self.precision}: "
                f"eff conv {e.conv:.2f} gconv {e.gconv:.2f} matmul {e.matmul:.2f} bmm {e.bmm:.2f} mem {e.mem:.2f}, "
                f"{e.kernel_us:.1f} us/kernel, "
                f"{e.batch_us if self.batch_us is None else self.batch_us:.0f} us/batch, "
                f"network factor {self.net:.3f}, "
                f"{'latency' if self.latency_mode else 'throughput'} mode (latency efficiency {e.latency_eff:.2f}), "
                f"scale {self.scale:.3f}")

    def with_scale(self, scale: float) -> "AnalyticCost":
        return replace(self, scale=scale, _cache={})


def batch_times_many(w: AnalyticWorkload, kind: str, eff: Efficiency, peak_ops: np.ndarray, bandwidth_bps: np.ndarray,
                     onchip_bytes: np.ndarray, units: np.ndarray, nbytes: np.ndarray, batch: np.ndarray,
                     latency_mode: np.ndarray, net: float = 1.0, batch_us: float | None = None) -> np.ndarray:
    """``batch_time_s`` for many (device, precision, batch, mode) points of one network at once.

    Every argument after ``eff`` is an array with one entry per point; the result is the
    same as calling ``batch_time_s`` point by point (``tests/test_hw_analytic.py``).
    """
    b = batch.astype(float)[:, None]
    lat = eff.latency_eff if kind in LATENCY_EFF_KINDS else 1.0
    peak = (peak_ops * np.where(latency_mode, lat, 1.0))[:, None]
    effs = np.array([eff.conv, eff.gconv, eff.matmul, eff.bmm])[w.mac_class][None, :]
    fill = fill_many(w, kind, units, batch)
    compute = w.flops[None, :] * b / (peak * effs * fill)
    limit = (ONCHIP_SHARE * onchip_bytes)[:, None]
    nb = nbytes[:, None]
    resident = (w.total_weights * nb <= limit)
    w_bytes = np.where(resident, 0.0, w.w_elems[None, :] * nb)
    a_elems, v_elems = w.traffic(kind)
    act = a_elems[None, :] * b * nb
    act = np.where(act <= limit, 0.0, act)
    bw = (bandwidth_bps * eff.mem)[:, None]
    k = eff.kernel_us * 1e-6
    mac_t = np.maximum(compute, (w_bytes + act) / bw) + k
    vact = v_elems[None, :] * b * nb
    vact = np.where(vact <= limit, vact * 0.25, vact)
    vec_t = vact / bw + k
    return net * (mac_t.sum(axis=1) + vec_t.sum(axis=1)) + eff.fixed_us(w, batch_us) * 1e-6


def link_times_many(w: AnalyticWorkload, link_bps: np.ndarray, nbytes: np.ndarray, batch: np.ndarray) -> np.ndarray:
    """``link_time_s`` for many points (0 where the device has no host link)."""
    per_sample = w.input_elems * nbytes + min(w.output_elems, RESPONSE_ELEMS) * 4.0
    with np.errstate(divide="ignore", invalid="ignore"):
        t = per_sample * batch / link_bps
    return np.where(link_bps > 0, t, 0.0)
