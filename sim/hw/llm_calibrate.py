"""The LLM step cost calibrated on published MLPerf LLM results: five parameters per device and
software stack, fitted with priors learned across devices.

The step cost is the roofline of ``sim.cost.llm_roofline`` with its assumptions made fittable
(``PARAMS``): the achieved share of HBM bandwidth and of peak FLOPS, a fixed time per step
(scheduling, sampling, launches), a fixed time per layer (the non-GEMM kernels) and the fixed
latency of one collective over the scale-up link. A *unit* is one device profile run by one
serving stack (``h200-sxm/tensorrt-llm``, ``mi325x/vllm``): the software decides how close to the
datasheet a device gets, so each pair has its own five numbers.

The system a row describes (``sim.hw.llm_rows.LLMTask``: the device profile, how many, the
precision of the weights) becomes a serving system (``layout_of``): data-parallel replicas of one
tensor-parallel engine, the TP degree the smallest power of two (at most the devices of one
scale-up domain) whose memory holds the weights and a KV cache for the batch, picked by the
highest predicted throughput under the default parameters; the batch limit
``BATCH_LIMIT`` and the step's token budget ``STEP_TOKENS``. The KV cache is stored in FP8 when
the weights are 8 bits or narrower (``kv_precision_for``), else in the model's own precision.

Fitting must be fast, so the fit does not run the simulator. It uses a closed-form steady state
of a continuous-batching engine (``Surrogate``): with ``B`` sequences running, each step decodes
one token of each and prefills the prompts of the sequences that replace the finished ones
(``B * mean_in / mean_out`` tokens), over a mean context of ``mean_in + mean_out / 2``. Then

- Offline: ``B`` is what the batch limit, the step's token budget and the KV cache allow, and
  tokens/s = replicas x ``B / step(B)``;
- Server / Interactive: the largest ``B`` whose step time, times ``1 + TPOT_P99_MARGIN`` (the 99th
  percentile of per-sample TPOT over the mean step), meets the TPOT limit, run at
  ``LOAD_SHARE`` of that rate (Poisson arrivals need headroom); a row whose mean prompt's prefill
  plus one step exceeds the TTFT limit, or whose one-sequence step exceeds the TPOT limit, cannot
  be met at any load and is refused with that message (the prefill of the mean prompt, in chunks of
  the step's token budget, is the lower bound on a typical sample's TTFT).

The final predictions (``sim.hw.llm_published``) run the simulator on the same system with the
fitted parameters; the surrogate only stands in for it inside the fit and the cross-validation.

The fit (``calibrate``), as ``sim.hw.priors`` does for the other benchmarks:

1. every unit is fitted alone on log(predicted / published) with weak data-free priors
   (``DEFAULT_PRIOR``: the roofline's documented defaults);
2. every unit is refitted with priors learned from the *other* units' stage-1 estimates: the
   median over the most specific group with data (``family:`` the architecture, then
   ``vendor:``, then ``kind:``), shrunk toward the broader group's median with
   ``PRIOR_SHRINK_UNITS`` units of weight. A unit with no rows takes the learned prior's mean.

Parameters are fitted in log space (efficiencies as logits, so they stay in (0, 1)).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field, replace

import numpy as np

from sim.cost.llm_device import FALLBACK, LLMDevice
from sim.cost.llm_roofline import RooflineParams, RooflineStepCost, ideal
from sim.errors import InputError
from sim.hw import llm_rows, profiles
from sim.workload import llm as llm_workloads

PARAMS = ("memory_efficiency", "compute_efficiency", "step_overhead_us", "layer_overhead_us",
          "allreduce_latency_us")
_LOGIT = ("memory_efficiency", "compute_efficiency")

#: Batch limit of one engine (sequences running at once). MLPerf submitters size the batch to the
#: device; TensorRT-LLM's ``trtllm-build`` default ``max_batch_size`` is 2048 and the KV cache or
#: the step's token budget binds before it in most rows.
BATCH_LIMIT = 2048
#: Tokens one step may carry (decodes + prefill chunks): TensorRT-LLM's default
#: ``max_num_tokens`` (8192), the same as vLLM's chunked-prefill budget.
STEP_TOKENS = 8192
#: The 99th percentile of per-sample TPOT over the mean step time in a loaded Server run (steps that
#: carry prefill chunks are slower than the mean): an assumption, and the value the fit of
#: ``LOAD_SHARE`` to the simulator picks from 0 to 0.4.
TPOT_P99_MARGIN = 0.10
#: The share of the TPOT-limited rate a Server or Interactive run can be loaded to with Poisson
#: arrivals (the running batch fluctuates around its mean, and prompts queue for the step's token
#: budget within the TTFT limit), per scenario: fitted to the simulator's own peak searches on 18
#: rows of gptj, llama2-70b, mixtral-8x7b and llama3.1-8b (``benchmarks/llm_server_constants.py``;
#: the surrogate then lies within 2.4% of the simulator at the median, 7.1% with 0.90 for both).
LOAD_SHARE = {"Server": 0.95, "Interactive": 0.89}
#: Spread of one row's log error in the fit (weighs data against the priors).
ROW_SD = 0.10
PRIOR_SHRINK_UNITS = 2.0
#: Batches the surrogate evaluates (geometric grid).
BATCH_GRID = np.unique(np.round(np.geomspace(1, BATCH_LIMIT, 96)).astype(int))
_TP_CHOICES = (1, 2, 4, 8, 16, 32, 64)
#: Beams per sample of a benchmark that generates by beam search: MLPerf's GPT-J runs beam search
#: with 4 beams, the only beam count an official submission may use (the reference backend's
#: ``num_beams``). Each beam decodes its own token every step and reads the prompt's KV; the
#: prompt is prefilled once and its KV blocks are shared by the beams.
BEAMS = {"gpt-j-6b": 4}


def beams_of(workload_name: str) -> int:
    return BEAMS.get(workload_name, 1)

_D = RooflineParams()
#: Stage-1 priors: (mean, sd in log or logit units); the means are the roofline's defaults.
DEFAULT_PRIOR = {"memory_efficiency": (_D.memory_efficiency, 1.0), "compute_efficiency": (_D.compute_efficiency, 1.0),
                 "step_overhead_us": (_D.step_overhead_ns / 1e3, 1.5),
                 "layer_overhead_us": (_D.layer_overhead_ns / 1e3, 1.0),
                 "allreduce_latency_us": (_D.allreduce_latency_ns / 1e3, 1.0)}
_SD_FLOOR = {"memory_efficiency": 0.3, "compute_efficiency": 0.3, "step_overhead_us": 0.5,
             "layer_overhead_us": 0.4, "allreduce_latency_us": 0.4}


# -- parameters ----------------------------------------------------------------------------------

def to_vector(p: dict) -> np.ndarray:
    out = []
    for n in PARAMS:
        v = float(p[n])
        out.append(math.log(v / (1 - v)) if n in _LOGIT else math.log(v))
    return np.array(out)


def from_vector(x) -> dict:
    out = {}
    for n, v in zip(PARAMS, x, strict=True):
        out[n] = 1.0 / (1.0 + math.exp(-v)) if n in _LOGIT else math.exp(v)
    return out


def roofline_params(p: dict) -> RooflineParams:
    """The fitted parameters as the roofline's ``RooflineParams``."""
    return RooflineParams(memory_efficiency=p["memory_efficiency"], compute_efficiency=p["compute_efficiency"],
                          step_overhead_ns=p["step_overhead_us"] * 1e3, layer_overhead_ns=p["layer_overhead_us"] * 1e3,
                          allreduce_latency_ns=p["allreduce_latency_us"] * 1e3).check("fitted LLM parameters")


def default_params() -> dict:
    return {n: m for n, (m, _) in DEFAULT_PRIOR.items()}


# -- the device ----------------------------------------------------------------------------------

_DEVICES: dict[str, LLMDevice] = {}


def device_of(profile_name: str) -> LLMDevice:
    """An ``LLMDevice`` from a hardware profile (``hw_profiles/<name>.yaml``): its dense peaks per
    precision, HBM bandwidth and capacity, and its scale-up link (the host PCIe link when it has
    none). An ``InputError`` when a figure the step cost needs is missing."""
    if profile_name in _DEVICES:
        return _DEVICES[profile_name]
    prof = profiles.get(profile_name)
    src = prof.path or profile_name
    peaks = {k: float(v) * 1e12 for k, v in (prof.peak_tops or {}).items() if v}
    if "bf16" not in peaks and "fp16" in peaks:
        peaks["bf16"] = peaks["fp16"]
    if not peaks:
        raise InputError(f"{src}: field 'peak_tops' is empty: expected the device's dense peaks per precision")
    if not prof.memory_bandwidth_gbps or not prof.memory_capacity_gb:
        raise InputError(f"{src}: field 'memory_bandwidth_gbps' / 'memory_capacity_gb' is missing: the LLM step "
                         f"cost needs both")
    link = prof.scale_up_link_gbps or prof.host_link_gbps
    if not link:
        raise InputError(f"{src}: no 'scale_up_link' or 'host_link' bandwidth: collectives cannot be costed")
    fb = dict(FALLBACK)
    if "fp8" not in peaks:               # no FP8 units: 8-bit weights run in INT8 or 16-bit math
        fb["fp8"] = "int8" if "int8" in peaks else "bf16"
        fb["int8"] = "bf16" if "int8" not in peaks else fb["int8"]
        fb["fp4"] = "int4" if "int4" in peaks else "fp8"
        fb["int4"] = "int8"
    dev = LLMDevice(profile_name, peaks, prof.memory_bandwidth_gbps * 1e9, prof.memory_capacity_gb * 1e9,
                    link * 1e9, source=f"hw_profiles/{profile_name}.yaml", fallback=fb)
    _DEVICES[profile_name] = dev
    return dev


#: How a row's weight precision is read: "row" (``weight_data_types`` as written, the model's own
#: precision when empty) or "fp8-tensorrt" (besides, 16-bit weights run by TensorRT-LLM on a device
#: with FP8 tensor units are taken as FP8, see ``effective_precision``).
PRECISION_RULE = "fp8-tensorrt"


def effective_precision(task: llm_rows.LLMTask, model: llm_workloads.LLMConfig) -> tuple[str, str]:
    """(precision the weights are stored and multiplied in, why)."""
    prec = task.precision or model.precision
    why = task.precision_reason or f"the model's own precision ({prec})"
    if PRECISION_RULE == "fp8-tensorrt" and task.stack == "tensorrt-llm" \
            and llm_workloads.PRECISION_BYTES[prec] >= 2 and "fp8" in device_of(task.profile).peak_flops:
        return "fp8", (f"{why}; taken as FP8: TensorRT-LLM's MLPerf builds quantise 16-bit checkpoints to FP8 on "
                       f"devices with FP8 tensor units")
    return prec, why


def kv_precision_for(weights: str, model: llm_workloads.LLMConfig) -> str:
    """The KV cache's precision: FP8 when the weights are 8 bits or narrower (the MLPerf closed
    submissions quantise the KV cache with the weights), else the model's own."""
    if llm_workloads.PRECISION_BYTES[weights] <= 1.0:
        return "fp8"
    return model.kv_precision


# -- a row as a modelled system --------------------------------------------------------------------

@dataclass
class Case:
    """One supported row as the surrogate sees it: the layout and the step's parts on a batch grid."""
    task: llm_rows.LLMTask
    unit: str                      # profile/stack
    model: llm_workloads.LLMConfig
    device: LLMDevice
    tp: int
    replicas: int
    kv_tokens: float               # KV cache of one replica, tokens
    mean_in: float
    mean_out: float
    max_in: float
    offline_batch: int
    # per batch of BATCH_GRID: compute and memory ns at 100% of peak, collective bandwidth ns
    compute_ns: np.ndarray = field(repr=False, default=None)
    memory_ns: np.ndarray = field(repr=False, default=None)
    coll_bw_ns: np.ndarray = field(repr=False, default=None)
    layers: int = 0
    collectives: int = 0           # collectives per step (fixed latency each)
    prefill_compute_ns: float = 0.0    # the mean prompt alone, at 100% of peak
    prefill_memory_ns: float = 0.0
    prefill_coll_bw_ns: float = 0.0
    prefill_chunks: int = 1        # steps the mean prompt's prefill takes
    measured: float | None = None
    notes: tuple = ()

    @property
    def batches(self) -> np.ndarray:
        return BATCH_GRID


_WORKLOADS: dict[str, llm_workloads.LLMWorkload] = {}


def workload(name: str) -> llm_workloads.LLMWorkload:
    if name not in _WORKLOADS:
        _WORKLOADS[name] = llm_workloads.load(name)
    return _WORKLOADS[name]


def _lengths(wl: llm_workloads.LLMWorkload, mean_in: float | None = None) -> tuple[float, float, float]:
    """(mean input, mean output, longest input) tokens; ``mean_in`` replaces the file's mean input."""
    ds = wl.dataset
    if ds is None or ds.input.kind == "csv":
        raise InputError(f"{wl.path}: the LLM calibration needs the dataset's length distribution (mean input "
                         f"and output tokens)")
    return float(ds.input.mean if mean_in is None else mean_in), float(ds.output.mean), float(ds.input.maximum)


def prior_input_mean(workload_name: str) -> float | None:
    """The data-free mean input of a benchmark whose file's mean was estimated from published rows
    (``sim.hw.llm_lengths``): what a fold that holds out those rows must use. None when the file's
    mean is published or a plain assumption."""
    inp = workload(workload_name).dataset.input
    return inp.prior_mean or None


def _kv_tokens(model, dev: LLMDevice, tp: int) -> float:
    """KV tokens one replica of ``tp`` devices holds after the weights and the activation reserve."""
    from sim.run_llm import DEFAULT_ACTIVATION_RESERVE_BYTES, DEFAULT_MEMORY_FRACTION  # noqa: PLC0415 - one set of defaults
    free = tp * (dev.memory_bytes * DEFAULT_MEMORY_FRACTION - DEFAULT_ACTIVATION_RESERVE_BYTES) - model.weight_bytes()
    per = model.kv_bytes_per_token() * (tp if model.mla is not None else tp / min(tp, model.kv_heads))
    return free / per if free > 0 else 0.0


def _steady(cost: RooflineStepCost, b, mean_in: float, mean_out: float, held_out: float, beams: int = 1) -> dict:
    """The roofline's parts for a steady-state step with ``b`` samples running (``beams`` each),
    each holding ``held_out`` generated tokens on average (``held_tokens``)."""
    b = np.asarray(b, dtype=np.float64)
    pre = b * mean_in / mean_out
    return cost.components(pre, pre * (mean_in + 1) / 2, beams * b, beams * b * (mean_in + held_out))


#: Whether the surrogate takes the generated tokens a running sample holds as their time-weighted
#: mean (``held_output_tokens``) or as half the mean output (the default: with the assumed output
#: spreads the time-weighted form fits the published rows worse, docs/hardware.md section 10).
TIME_WEIGHTED_KV = False


def held_output_tokens(wl: llm_workloads.LLMWorkload) -> float:
    """Generated tokens a running sample holds on average over time: a sample of ``n`` output tokens
    runs ``n`` steps holding ``n / 2`` on average, so the time-weighted mean is E[n^2] / (2 E[n])
    (the inspection paradox; E[n] / 2 only when every output has the same length). The moments come
    from 200,000 draws of the dataset's output distribution (seed 0)."""
    n = wl.dataset.output.sample(200_000, np.random.default_rng(0)).astype(np.float64)
    return float((n * n).mean() / (2.0 * n.mean()))


def kv_tokens_per_sample(mean_in: float, held_out: float, beams: int = 1) -> float:
    """Mean KV tokens a running sample holds: its prompt (shared by its beams) and ``held_out``
    generated tokens per beam (``held_output_tokens``)."""
    return mean_in + beams * held_out


_HELD: dict[tuple, float] = {}


def held_tokens(name: str) -> float:
    """Generated tokens a running sample of ``name`` holds, as ``TIME_WEIGHTED_KV`` says."""
    if not TIME_WEIGHTED_KV:
        return float(workload(name).dataset.output.mean) / 2
    if name not in _HELD:
        _HELD[name] = held_output_tokens(workload(name))
    return _HELD[name]


def build_case(task: llm_rows.LLMTask, tp: int | None = None, mean_in: float | None = None) -> Case:
    """The surrogate's view of a supported task; ``tp``: force a TP degree (else ``layout_of``);
    ``mean_in``: the dataset's mean input tokens in place of the workload file's."""
    if not task.ok:
        raise InputError(f"row {task.index + 1}: {task.unsupported}")
    wl = workload(task.workload)
    prec, _ = effective_precision(task, wl.model)
    model = replace(wl.model, precision=prec, kv_precision=kv_precision_for(prec, wl.model))
    dev = device_of(task.profile)
    mean_in, mean_out, max_in = _lengths(wl, mean_in)
    if tp is None:
        return layout_of(task, mean_in=mean_in)
    per_domain = task.scale_up_devices or task.devices_per_node
    replicas = task.devices // tp if per_domain >= tp else 0
    kv = _kv_tokens(model, dev, tp)
    longest = float(wl.dataset.max_total())
    if replicas < 1 or kv < longest:
        raise InputError(f"row {task.index + 1}: {model.name} in {prec} does not fit TP{tp} of {dev.name}")
    base = RooflineStepCost(model, dev, tp=tp, params=ideal())
    one_ar = RooflineStepCost(model, dev, tp=tp, params=replace(ideal(), allreduce_latency_ns=1.0))
    beams = beams_of(task.workload)
    held = held_tokens(task.workload)
    comp = _steady(base, BATCH_GRID, mean_in, mean_out, held, beams)
    step_cap = STEP_TOKENS / (beams + mean_in / mean_out)
    kv_cap = kv / kv_tokens_per_sample(mean_in, held, beams)
    offline_b = int(max(1, min(BATCH_LIMIT, step_cap, kv_cap)))
    # the mean prompt alone, in chunks of the step's token budget: a lower bound on the TTFT of a
    # typical sample at any load
    chunks = max(1, math.ceil(mean_in / STEP_TOKENS))
    pre = base.components(mean_in, mean_in * (mean_in + 1) / 2, 0, 0)
    return Case(task=task, unit=f"{task.profile}/{task.stack}", model=model, device=dev, tp=tp, replicas=replicas,
                kv_tokens=kv, mean_in=mean_in, mean_out=mean_out, max_in=max_in, offline_batch=offline_b,
                compute_ns=comp["compute_ns"], memory_ns=comp["memory_ns"], coll_bw_ns=comp["collective_ns"],
                layers=model.layers, collectives=int(round(one_ar.coll_fixed_ns)),
                prefill_compute_ns=float(pre["compute_ns"]), prefill_memory_ns=float(pre["memory_ns"]),
                prefill_coll_bw_ns=float(pre["collective_ns"]), prefill_chunks=chunks)


def layout_of(task: llm_rows.LLMTask, params: dict | None = None, mean_in: float | None = None) -> Case:
    """The row's system as replicas of TP-``tp`` engines: of the TP degrees (powers of two dividing
    the devices of one scale-up domain) whose memory holds the weights and the longest sequence, the
    one with the highest predicted value under ``params`` (default: the roofline's defaults)."""
    per_domain = task.scale_up_devices or task.devices_per_node
    best, why = None, []
    for tp in _TP_CHOICES:
        if tp > per_domain or per_domain % tp:
            continue
        try:
            c = build_case(task, tp, mean_in)
        except InputError as e:
            why.append(str(e))
            continue
        try:
            v = Surrogate(params or default_params()).predict(c)
        except InputError:
            v = 0.0
        if best is None or v > best[0]:
            best = (v, c)
    if best is None:
        raise InputError(f"row {task.index + 1}: {task.workload} in {task.precision} fits no tensor-parallel group "
                         f"of {per_domain} x {task.profile} (weights plus the longest sequence's KV)")
    return best[1]


# -- the surrogate -------------------------------------------------------------------------------

class Surrogate:
    """Closed-form Offline / Server / Interactive metric of a ``Case`` (module docstring)."""

    def __init__(self, params: dict):
        self.p = params

    def step_ns(self, c: Case) -> np.ndarray:
        p = self.p
        return (np.maximum(c.compute_ns / p["compute_efficiency"], c.memory_ns / p["memory_efficiency"])
                + 1e3 * (p["step_overhead_us"] + c.layers * p["layer_overhead_us"]
                         + c.collectives * p["allreduce_latency_us"]) + c.coll_bw_ns)

    def prefill_ns(self, c: Case) -> float:
        p = self.p
        return (max(c.prefill_compute_ns / p["compute_efficiency"], c.prefill_memory_ns / p["memory_efficiency"])
                + c.prefill_chunks * 1e3 * (p["step_overhead_us"] + c.layers * p["layer_overhead_us"]
                                            + c.collectives * p["allreduce_latency_us"]) + c.prefill_coll_bw_ns)

    def tokens_per_second(self, c: Case) -> float:
        t = c.task
        step = self.step_ns(c)
        b = BATCH_GRID.astype(np.float64)
        rate = c.replicas * b / step * 1e9
        offline = float(np.interp(c.offline_batch, b, rate))
        if t.scenario == llm_rows.OFFLINE:
            return offline
        tpot = t.tpot_limit_ns
        ttft = t.ttft_limit_ns
        if tpot is None:        # gptj Server: a latency limit on the whole sample
            lim = t.latency_limit_ns
            if lim is None:
                raise InputError(f"row {t.index + 1}: {t.scenario} row without a latency limit")
            tpot = lim / c.mean_out
            ttft = lim
        if ttft is not None and self.prefill_ns(c) + float(step[0]) > ttft:
            raise InputError(f"row {t.index + 1}: TTFT limit {ttft / 1e6:g} ms is below one prefill of the "
                             f"mean prompt ({c.mean_in:.0f} tokens) plus one decode step "
                             f"({(self.prefill_ns(c) + step[0]) / 1e6:.1f} ms on TP{c.tp} of {c.device.name}): "
                             f"no load meets it")
        p99 = step * (1 + TPOT_P99_MARGIN)
        if p99[0] > tpot:
            raise InputError(f"row {t.index + 1}: TPOT limit {tpot / 1e6:g} ms is below one step's time with one "
                             f"sequence ({p99[0] / 1e6:.1f} ms with the p99 margin, TP{c.tp} "
                             f"of {c.device.name}): no load meets it")
        # the batch whose p99 step meets the limit exactly (the step grows with the batch:
        # interpolated between grid points, so the figure moves smoothly with the parameters)
        k = int(np.searchsorted(p99, tpot, side="right"))
        load = LOAD_SHARE.get(t.scenario, LOAD_SHARE["Server"])
        if k >= len(b) or b[k] > c.offline_batch:      # the limit allows the whole Offline batch
            return load * offline
        lo, hi = k - 1, k
        f = (tpot - p99[lo]) / (p99[hi] - p99[lo])
        b_star = b[lo] + f * (b[hi] - b[lo])
        return load * c.replicas * b_star / (tpot / (1 + TPOT_P99_MARGIN)) * 1e9

    def predict(self, c: Case) -> float:
        """The row's official metric in its units (tokens/s, or samples/s)."""
        tps = self.tokens_per_second(c)
        return metric_from_tokens(c.task, tps, c.mean_out)


def metric_from_tokens(task: llm_rows.LLMTask, tokens_ps: float, mean_out: float) -> float:
    """The official metric from generated tokens/s: samples/s where that is the metric, gptj's
    inferred tokens (samples/s x its fixed tokens per sample, the dataset's mean output here)."""
    if task.metric is not None and task.metric.units == "samples/s":
        return tokens_ps / mean_out
    return tokens_ps


# -- the fit -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Prior:
    mean: np.ndarray
    sd: np.ndarray
    source: str


def default_prior() -> Prior:
    mean = to_vector(default_params())
    sd = np.array([DEFAULT_PRIOR[n][1] for n in PARAMS])
    return Prior(mean, sd, "data-free defaults (sim.cost.llm_roofline)")


def _residuals(x, cases, prior: Prior) -> np.ndarray:
    s = Surrogate(from_vector(x))
    out = []
    for c in cases:
        try:
            v = s.predict(c)
            r = math.log(v / c.measured) if v > 0 else 5.0
        except InputError:
            r = 5.0
        out.append(r / ROW_SD)
    return np.concatenate([np.array(out), (x - prior.mean) / prior.sd])


def fit_unit(cases: list[Case], prior: Prior) -> dict:
    """The unit's parameters: least squares on log(predicted / published) plus the prior."""
    if not cases:
        return from_vector(prior.mean)
    from scipy.optimize import least_squares  # noqa: PLC0415 - heavy, only when fitting

    # the roofline's max() has no slope on its inactive side: a start with the memory term low
    # can stay there, so the fit also starts from a low memory efficiency and keeps the better end
    low = prior.mean.copy()
    low[PARAMS.index("memory_efficiency")] = min(low[PARAMS.index("memory_efficiency")], math.log(0.5 / 0.5))
    best = None
    for x0 in (prior.mean, low):
        res = least_squares(_residuals, x0, args=(cases, prior), method="trf", loss="soft_l1", f_scale=3.0,
                            x_scale=1.0, max_nfev=300, ftol=1e-10, xtol=1e-10, gtol=1e-10)
        if best is None or res.cost < best.cost:
            best = res
    return from_vector(best.x)


def unit_meta(unit: str) -> tuple[str, str, str]:
    prof = profiles.get(unit.split("/", 1)[0])
    return prof.kind, prof.family, prof.vendor


def groups_of(unit: str) -> list[str]:
    kind, family, vendor = unit_meta(unit)
    return [f"family:{family}", f"vendor:{vendor}:{kind}", f"kind:{kind}"]


@dataclass
class Calibration:
    """Fitted parameters per unit and the learned priors for units without rows."""
    params: dict                      # unit -> parameter dict
    stage1: dict                      # unit -> vector (units with rows)
    rows: dict                        # unit -> rows it was fitted on
    sources: dict = field(default_factory=dict)     # unit -> "fitted on N rows" / "prior from ..."
    data_note: str = ""

    def learned_prior(self, unit: str, exclude: frozenset = frozenset()) -> Prior:
        """Median of other units' stage-1 estimates over the unit's groups, shrunk toward the broader."""
        others = {u: v for u, v in self.stage1.items() if u != unit and u not in exclude}
        if not others:
            return default_prior()
        memb = {u: set(groups_of(u)) for u in others}
        chain = groups_of(unit)
        mean = None
        used = []
        for g in reversed(chain):            # broadest first, then shrink toward it
            vs = [v for u, v in others.items() if g in memb[u]]
            if not vs:
                continue
            med = np.median(np.array(vs), axis=0)
            n = len(vs)
            mean = med if mean is None else (n * med + PRIOR_SHRINK_UNITS * mean) / (n + PRIOR_SHRINK_UNITS)
            used.append(f"{g}({n})")
        if mean is None:
            vs = np.array(list(others.values()))
            mean, used = np.median(vs, axis=0), [f"all({len(vs)})"]
        allv = np.array(list(others.values()))
        spread = 1.4826 * np.median(np.abs(allv - np.median(allv, axis=0)), axis=0)
        sd = np.maximum(spread, np.array([_SD_FLOOR[n] for n in PARAMS]))
        return Prior(mean, sd, "learned from " + " <- ".join(reversed(used)))

    def params_for(self, unit: str) -> tuple[dict, str]:
        if unit in self.params:
            return self.params[unit], self.sources.get(unit, "fitted")
        prior = self.learned_prior(unit)
        return from_vector(prior.mean), f"no rows for {unit}: the prior {prior.source}"


def calibrate(cases: list[Case], note: str = "") -> Calibration:
    """Two-stage fit over the cases' units (module docstring). Each case needs ``measured``."""
    by_unit: dict[str, list[Case]] = {}
    for c in cases:
        if c.measured is None:
            raise InputError(f"row {c.task.index + 1}: no measured value to fit on")
        by_unit.setdefault(c.unit, []).append(c)
    p0 = default_prior()
    stage1 = {u: to_vector(fit_unit(cs, p0)) for u, cs in sorted(by_unit.items())}
    cal = Calibration(params={}, stage1=stage1, rows={u: [c.task.index for c in cs] for u, cs in by_unit.items()},
                      data_note=note)
    for u, cs in sorted(by_unit.items()):
        prior = cal.learned_prior(u)
        cal.params[u] = fit_unit(cs, prior)
        cal.sources[u] = f"fitted on {len(cs)} rows{note}; prior {prior.source}"
    return cal


def predict_case(cal: Calibration, c: Case) -> float:
    p, _ = cal.params_for(c.unit)
    return Surrogate(p).predict(c)


# -- the shared file -----------------------------------------------------------------------------

def read_results(path=None) -> tuple[list[dict], str]:
    """(rows, the data's note: file name and hash) of an LLM results file (default: the shared one)."""
    from sim.paths import SHARED_DATA  # noqa: PLC0415 - only for the shared file
    from sim.util.textfile import read_bytes, read_csv  # noqa: PLC0415 - file reading only here

    path = path or SHARED_DATA / "mlperf_llm_results" / "results.csv"
    raw = read_bytes(path, "LLM results")
    _, rows = read_csv(path, "LLM results")
    return rows, f" of {getattr(path, 'name', path)} (sha256 {hashlib.sha256(raw).hexdigest()[:12]})"


def load_cases(path=None, rows=None, input_means: dict | None = None
               ) -> tuple[list[Case], list[tuple[llm_rows.LLMTask, str]], str]:
    """(cases with their measured values, (task, reason) of rows left out, the data's note);
    ``input_means``: workload name -> mean input tokens in place of its file's."""
    input_means = input_means or {}
    rows, note = read_results(path) if rows is None else (rows, "")
    cases, skipped = [], []
    for i, row in enumerate(rows):
        t = llm_rows.read_task(row, i)
        if not t.ok:
            skipped.append((t, t.unsupported))
            continue
        if t.scenario not in (llm_rows.OFFLINE, llm_rows.SERVER, llm_rows.INTERACTIVE):
            skipped.append((t, f"{t.scenario}: the LLM calibration predicts Offline, Server and Interactive"))
            continue
        try:
            c = layout_of(t, mean_in=input_means.get(t.workload))
            c.measured, _ = llm_rows.measured_value(row, i)
        except InputError as e:
            skipped.append((t, str(e)))
            continue
        cases.append(c)
    return cases, skipped, note
