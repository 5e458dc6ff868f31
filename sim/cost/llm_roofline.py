"""The time of one LLM serving step from the model's shape and the device's datasheet: a roofline.

A step (one iteration of a continuous-batching engine, ``sim.cost.protocol.StepCost``) runs the
whole model once over ``T = prefill_tokens + decode_seqs`` tokens. On each of the replica's
``tp`` tensor-parallel devices it must

- read its shard of the weights once: every weight except the input embedding (a lookup), divided
  by ``tp``. For a mixture of experts only the experts some token of the step is routed to are
  read: with ``T`` tokens each sent to ``k`` of ``E`` experts, uniformly and independently, a layer
  touches ``E * (1 - (1 - k/E)**T)`` distinct experts in expectation (one token: ``k``; many: all);
- read the KV cache of the decoding sequences (``decode_kv_tokens`` tokens of context) and write
  the KV of the step's new tokens; KV heads are split over ``tp`` (at most ``kv_heads`` ways; an
  MLA latent is replicated on every device);
- compute ``2 * active_params * T`` FLOPs in GEMMs (active: parameters a token passes through,
  without the embedding) and the attention products: per layer ``2 * heads * (score + value
  width)`` FLOPs per token pair, over ``prefill_attn_tokens2`` pairs for prefill and
  ``decode_kv_tokens`` for decode.

Its time is ``max(FLOPs / (peak * compute_efficiency), bytes / (bandwidth * memory_efficiency))``
plus fixed costs (per step: scheduling and launch; per layer: the non-GEMM kernels) and the
collectives of tensor parallelism: two all-reduces per layer of ``T * hidden`` activations, each
``allreduce_latency_ns + 2 (tp-1)/tp * bytes / link bandwidth`` (a ring). With expert parallelism
(``ep > 1``) the FFN's all-reduce of an MoE layer is replaced by two all-to-alls (dispatch and
combine) moving ``T * k * hidden`` activations, ``(ep-1)/ep`` of them off the device. With
pipeline parallelism (``pp``) the stages run one after the other, so the step is the same sum
plus ``pp - 1`` hops of the activations.

The efficiencies and fixed costs are named defaults (``RooflineParams``) taken from public
measurements and datasheets, not fitted here; each says where it comes from. What the model
leaves out: prefill attention reading the KV of earlier chunks, sliding-window attention
(counted as full), imbalance between experts, overlap of collectives with compute.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from sim.cost.llm_device import LLMDevice
from sim.errors import InputError
from sim.util.checks import number
from sim.workload.llm import PRECISION_BYTES, LLMConfig


@dataclass(frozen=True)
class RooflineParams:
    """Assumptions that turn datasheet peaks into step times (defaults: their sources)."""
    #: Share of peak HBM bandwidth a weight-streaming GEMM reaches: 85-89% on H100 at small batch
    #: (Vidur's Llama-2-70B TP1 layer profiles).
    memory_efficiency: float = 0.87
    #: Share of peak FLOPS a large-token layer reaches: about 69% on H100 at 4,096 tokens (derived
    #: from the same profiles).
    compute_efficiency: float = 0.69
    #: Fixed time per step (scheduling, sampling, launches): BLIS's fitted per-step term, ~126 us.
    step_overhead_ns: float = 126_000.0
    #: Fixed time per layer per step (norms, rotary, activation kernels): BLIS's fitted ~32 us
    #: (non-GEMM operators measure 17-37 us per layer).
    layer_overhead_ns: float = 32_000.0
    #: Latency of one small all-reduce among the replica's devices: ~35 us on 8xH100 (Vidur's
    #: network profiles), used for any degree > 1.
    allreduce_latency_ns: float = 35_000.0
    #: Bytes of one activation value moved by collectives (BF16).
    activation_bytes: float = 2.0

    def check(self, source: str = "roofline") -> RooflineParams:
        for name in ("memory_efficiency", "compute_efficiency"):
            number(getattr(self, name), source, name, above=0.0, maximum=1.0)
        for name in ("step_overhead_ns", "layer_overhead_ns", "allreduce_latency_ns"):
            number(getattr(self, name), source, name, minimum=0.0, maximum=3.6e12)
        number(self.activation_bytes, source, "activation_bytes", above=0.0, maximum=8.0)
        return self


def distinct_experts(experts: int, per_token: int, tokens):
    """Expected distinct experts ``tokens`` tokens touch when each picks ``per_token`` of
    ``experts`` uniformly: ``E * (1 - (1 - k/E)**T)``."""
    t = np.asarray(tokens, dtype=np.float64)
    return experts * (1.0 - (1.0 - per_token / experts) ** t)


class RooflineStepCost:
    """``sim.cost.protocol.StepCost`` (and ``step_ns_array``) for one replica (module docstring)."""

    def __init__(self, model: LLMConfig, dev: LLMDevice, tp: int = 1, pp: int = 1, ep: int = 1,
                 params: RooflineParams | None = None):
        self.model, self.device = model, dev
        self.tp = number(tp, "roofline", "tp", minimum=1, maximum=4096, integer=True)
        self.pp = number(pp, "roofline", "pp", minimum=1, maximum=4096, integer=True)
        self.ep = number(ep, "roofline", "ep", minimum=1, maximum=4096, integer=True)
        if ep > 1 and model.moe is None:
            raise InputError(f"roofline: field 'ep' = {ep}: expected 1 for {model.name}, which has no experts")
        self.params = (params or RooflineParams()).check()
        p = model.params()
        w_bytes = PRECISION_BYTES[model.precision]
        n = tp * pp                                  # devices holding one copy of the weights
        # bytes read every step, per device of a stage (stages run one after the other: the sum
        # over stages is the whole model over tp)
        self.fixed_weight_bytes = (model.dense_weight_bytes() - p.embedding * w_bytes) / tp
        self.expert_bytes = model.routed_expert_bytes() * model.moe_layers / tp     # one expert, every MoE layer
        self.gemm_flops_per_token = 2.0 * (p.active - p.embedding) / tp
        self.gemm_peak, self.gemm_precision = dev.flops_for(model.precision)
        self.attn_peak, _ = dev.flops_for(model.kv_precision)
        s_pre, v_pre = model.attention_dims(decode=False)
        s_dec, v_dec = model.attention_dims(decode=True)
        heads_per_dev = model.heads / tp
        self.prefill_attn_flops_per_pair = 2.0 * heads_per_dev * (s_pre + v_pre) * model.layers
        self.decode_attn_flops_per_pair = 2.0 * heads_per_dev * (s_dec + v_dec) * model.layers
        kv_split = 1 if model.mla is not None else min(tp, model.kv_heads)
        self.kv_bytes_per_token = model.kv_bytes_per_token() / kv_split
        self.devices = n
        pr = self.params
        link = dev.link_bandwidth_Bps
        act = model.hidden_size * pr.activation_bytes
        self.fixed_ns = pr.step_overhead_ns + model.layers * pr.layer_overhead_ns
        # collectives: (fixed ns per step, ns per token)
        ar_count = 0
        a2a_count = 0
        if tp > 1:
            ar_count = 2 * model.layers
            if ep > 1:
                ar_count -= model.moe_layers
        if ep > 1:
            a2a_count = 2 * model.moe_layers
        ring = 2.0 * (tp - 1) / tp if tp > 1 else 0.0
        self.coll_fixed_ns = (ar_count + a2a_count) * pr.allreduce_latency_ns + (pp - 1) * pr.allreduce_latency_ns
        k = model.moe.experts_per_token if model.moe is not None else 0
        self.coll_ns_per_token = (ar_count * ring * act / link * 1e9
                                  + a2a_count * k * act * (ep - 1) / ep / link * 1e9
                                  + (pp - 1) * act / link * 1e9)

    # -- the step -------------------------------------------------------------------------------
    def components(self, prefill_tokens, prefill_attn_tokens2, decode_seqs, decode_kv_tokens) -> dict:
        """The step's parts (arrays or scalars): FLOPs, bytes and times in ns."""
        t = np.asarray(prefill_tokens, dtype=np.float64) + np.asarray(decode_seqs, dtype=np.float64)
        m = self.model
        weight = self.fixed_weight_bytes + (
            self.expert_bytes * distinct_experts(m.moe.experts, m.moe.experts_per_token, t)
            if m.moe is not None else 0.0)
        kv = (np.asarray(decode_kv_tokens, dtype=np.float64) + t) * self.kv_bytes_per_token
        gemm = self.gemm_flops_per_token * t
        attn = (self.prefill_attn_flops_per_pair * np.asarray(prefill_attn_tokens2, dtype=np.float64)
                + self.decode_attn_flops_per_pair * np.asarray(decode_kv_tokens, dtype=np.float64))
        pr = self.params
        compute_ns = (gemm / self.gemm_peak + attn / self.attn_peak) / pr.compute_efficiency * 1e9
        memory_ns = (weight + kv) / (self.device.memory_bandwidth_Bps * pr.memory_efficiency) * 1e9
        coll_ns = self.coll_fixed_ns + self.coll_ns_per_token * t
        total = np.maximum(compute_ns, memory_ns) + self.fixed_ns + coll_ns
        return {"tokens": t, "weight_bytes": weight, "kv_bytes": kv, "gemm_flops": gemm, "attn_flops": attn,
                "compute_ns": compute_ns, "memory_ns": memory_ns, "collective_ns": coll_ns,
                "fixed_ns": self.fixed_ns, "step_ns": total}

    def step_ns(self, prefill_tokens: int, prefill_attn_tokens2: float, decode_seqs: int,
                decode_kv_tokens: int) -> float:
        # the same arithmetic as ``components`` on Python floats (numpy on scalars is ~10x slower)
        t = float(prefill_tokens) + float(decode_seqs)
        m = self.model
        weight = self.fixed_weight_bytes
        if m.moe is not None:
            e, k = m.moe.experts, m.moe.experts_per_token
            weight += self.expert_bytes * e * (1.0 - (1.0 - k / e) ** t)
        kv = (float(decode_kv_tokens) + t) * self.kv_bytes_per_token
        compute_ns = ((self.gemm_flops_per_token * t) / self.gemm_peak
                      + (self.prefill_attn_flops_per_pair * float(prefill_attn_tokens2)
                         + self.decode_attn_flops_per_pair * float(decode_kv_tokens)) / self.attn_peak) \
            / self.params.compute_efficiency * 1e9
        memory_ns = (weight + kv) / (self.device.memory_bandwidth_Bps * self.params.memory_efficiency) * 1e9
        return max(compute_ns, memory_ns) + self.fixed_ns + self.coll_fixed_ns + self.coll_ns_per_token * t

    def step_ns_array(self, prefill_tokens, prefill_attn_tokens2, decode_seqs, decode_kv_tokens) -> np.ndarray:
        return np.asarray(self.components(prefill_tokens, prefill_attn_tokens2, decode_seqs,
                                          decode_kv_tokens)["step_ns"], dtype=np.float64)

    def describe(self) -> str:
        pr = self.params
        par = f"TP{self.tp}" + (f" PP{self.pp}" if self.pp > 1 else "") + (f" EP{self.ep}" if self.ep > 1 else "")
        return (f"roofline of {self.model.name} on {self.device.name} {par} ({self.gemm_precision} GEMMs; "
                f"{pr.memory_efficiency:g} of HBM bandwidth, {pr.compute_efficiency:g} of peak FLOPS, "
                f"{pr.step_overhead_ns / 1e3:g} us/step + {pr.layer_overhead_ns / 1e3:g} us/layer, "
                f"all-reduce {pr.allreduce_latency_ns / 1e3:g} us: datasheet-based assumptions, not calibrated)")


def ideal(params: RooflineParams | None = None) -> RooflineParams:
    """The same model at 100% of peaks with no fixed costs (a bound, and the hand-checkable case)."""
    return replace(params or RooflineParams(), memory_efficiency=1.0, compute_efficiency=1.0, step_overhead_ns=0.0,
                   layer_overhead_ns=0.0, allreduce_latency_ns=0.0)
