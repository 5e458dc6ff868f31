"""LLM workloads: a decoder-only transformer described by a few numbers, and the token lengths of
its benchmark's dataset.

An LLM workload is a YAML file in ``workloads/llm/`` (or any path a user gives) with two parts:

- ``model``: the shape of the network as its public ``config.json`` gives it: layers, hidden size,
  attention heads, KV heads, head size, FFN size, vocabulary, the experts of a mixture of experts
  (MoE: experts, experts per token, their FFN size, shared experts, leading dense layers), the
  sizes of multi-head latent attention (MLA) where used, the default precision of the weights and
  of the KV cache, and the longest context. From these the module computes what a serving model
  needs: the parameter count (total, and active per token for MoE), the bytes of weights, and the
  bytes of KV cache each token of context holds.
- ``dataset``: the benchmark's input (prompt) and output (generated) token lengths, as a
  distribution: ``fixed`` (every sample the same), ``lognormal`` (a lognormal whose location is
  solved so that its mean equals the published mean once bounded by the published maximum: values
  above the maximum are set to it (``clip``, as generation stops at the output cap) or drawn again
  (``truncate``)), or ``csv`` (a user's file with ``input_tokens,output_tokens`` per sample).
  Where only a mean and a maximum are published, the spread (``sigma``) is an assumption and the
  file says so. Where not even the mean is published, it may be estimated from published results
  (``sim.hw.llm_lengths``); ``prior_mean`` then keeps the data-free assumption it replaced, for the
  folds that hold those results out.

Lengths are drawn once per sample index of the loaded set with a seed (``sample_lengths``), so a
sample issued twice (LoadGen's equal-issue passes) has the same lengths in every pass.

Every field is checked: a missing or impossible one is a one-line ``InputError`` naming the file
and the field.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sim.errors import InputError
from sim.paths import REPO_ROOT
from sim.util.checks import number, refuse
from sim.util.textfile import read_csv
from sim.util.yamlfile import read_yaml

LLM_WORKLOADS_DIR = Path(os.environ.get("SIM_LLM_WORKLOADS_DIR", REPO_ROOT / "workloads" / "llm"))

#: Bytes per value of each precision a weight or KV entry may be stored in. ``mxfp4``: 4-bit
#: values with one 8-bit scale per block of 32 (OCP Microscaling Formats v1.0), 4.25 bits.
PRECISION_BYTES: dict[str, float] = {
    "fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "fp4": 0.5, "int4": 0.5,
    "mxfp4": 4.25 / 8,
}

#: Longest sequence a workload may declare (tokens); past it numbers stop meaning anything here.
MAX_CONTEXT = 10_000_000


@dataclass(frozen=True)
class MoE:
    """A mixture of experts replacing the FFN of every layer after ``dense_layers``."""
    experts: int                    # routed experts per MoE layer
    experts_per_token: int          # routed experts each token is sent to
    expert_ffn_size: int            # intermediate size of one expert
    shared_experts: int = 0         # experts every token passes through as well
    dense_layers: int = 0           # leading layers with a dense FFN (ffn_size) instead
    expert_bias: bool = False       # experts' projections carry biases
    router_bias: bool = False


@dataclass(frozen=True)
class MLA:
    """Multi-head latent attention (DeepSeek-V2/V3): queries and keys/values through low-rank
    projections; the KV cache holds the compressed latent and the rotary key per token."""
    q_lora_rank: int                # 0: queries projected directly
    kv_lora_rank: int
    qk_nope_head_size: int
    qk_rope_head_size: int
    v_head_size: int


@dataclass(frozen=True)
class ParamCounts:
    total: float                    # every parameter
    active: float                   # parameters one token passes through (MoE: k experts + shared)
    embedding: float                # the input embedding table (looked up, not multiplied)
    lm_head: float                  # the output projection (0 when tied to the embedding)
    per_layer_attention: float
    expert: float                   # one routed expert of one layer (0 without MoE)


@dataclass(frozen=True)
class LLMConfig:
    name: str
    layers: int
    hidden_size: int
    heads: int
    kv_heads: int
    head_size: int
    ffn_size: int
    vocab_size: int
    max_context: int
    precision: str = "bf16"         # weights
    kv_precision: str = "bf16"      # KV cache entries
    expert_precision: str = ""      # MoE experts' weights, when stored apart ("" = precision)
    ffn_gated: bool = True          # SwiGLU (three matrices) rather than two
    tied_embeddings: bool = False
    attention_bias: bool = False
    mlp_bias: bool = False
    norm: str = "rmsnorm"           # rmsnorm (a weight) or layernorm (a weight and a bias)
    parallel_block: bool = False    # one norm per layer (GPT-J's attention and FFN side by side)
    lm_head_bias: bool = False
    moe: MoE | None = None
    mla: MLA | None = None

    # -- parameters --------------------------------------------------------------------------
    def _attention_params(self) -> float:
        h = self.hidden_size
        if self.mla is not None:
            m = self.mla
            qk = m.qk_nope_head_size + m.qk_rope_head_size
            q = (h * m.q_lora_rank + m.q_lora_rank + m.q_lora_rank * self.heads * qk) if m.q_lora_rank \
                else h * self.heads * qk
            kv = h * (m.kv_lora_rank + m.qk_rope_head_size) + m.kv_lora_rank \
                + m.kv_lora_rank * self.heads * (m.qk_nope_head_size + m.v_head_size)
            return q + kv + self.heads * m.v_head_size * h
        q = h * self.heads * self.head_size
        kv = 2 * h * self.kv_heads * self.head_size
        o = self.heads * self.head_size * h
        bias = (self.heads + 2 * self.kv_heads) * self.head_size + h if self.attention_bias else 0
        return q + kv + o + bias

    def _ffn_params(self, size: int, bias: bool) -> float:
        mats = 3 if self.ffn_gated else 2
        b = ((2 if self.ffn_gated else 1) * size + self.hidden_size) if bias else 0
        return mats * self.hidden_size * size + b

    def _norm_params(self) -> float:
        per = self.hidden_size * (2 if self.norm == "layernorm" else 1)
        return per * (1 if self.parallel_block else 2)

    def params(self) -> ParamCounts:
        """Parameter counts from the shape (the module docstring); biases and norms included."""
        h = self.hidden_size
        attn = self._attention_params()
        norms = self._norm_params()
        dense_ffn = self._ffn_params(self.ffn_size, self.mlp_bias)
        emb = float(self.vocab_size * h)
        head = 0.0 if self.tied_embeddings else float(self.vocab_size * h)
        head += self.vocab_size if self.lm_head_bias else 0
        final_norm = h * (2 if self.norm == "layernorm" else 1)
        if self.moe is None:
            per_layer = attn + norms + dense_ffn
            total = self.layers * per_layer + emb + head + final_norm
            return ParamCounts(total, total, emb, head, attn, 0.0)
        m = self.moe
        expert = self._ffn_params(m.expert_ffn_size, m.expert_bias)
        router = h * m.experts + (m.experts if m.router_bias else 0)
        moe_layers = self.layers - m.dense_layers
        fixed = self.layers * (attn + norms) + m.dense_layers * dense_ffn \
            + moe_layers * (router + m.shared_experts * expert) + emb + head + final_norm
        total = fixed + moe_layers * m.experts * expert
        active = fixed + moe_layers * m.experts_per_token * expert
        return ParamCounts(total, active, emb, head, attn, expert)

    # -- bytes ---------------------------------------------------------------------------------
    def weight_bytes(self) -> float:
        """Bytes of all weights at their precisions."""
        return self.dense_weight_bytes() + self.routed_expert_bytes_per_layer() * self.moe_layers

    @property
    def moe_layers(self) -> int:
        return 0 if self.moe is None else self.layers - self.moe.dense_layers

    def routed_expert_bytes(self) -> float:
        """Bytes of one routed expert of one layer (0 without MoE)."""
        if self.moe is None:
            return 0.0
        return self.params().expert * PRECISION_BYTES[self.expert_precision or self.precision]

    def routed_expert_bytes_per_layer(self) -> float:
        return 0.0 if self.moe is None else self.routed_expert_bytes() * self.moe.experts

    def dense_weight_bytes(self) -> float:
        """Bytes of every weight except the routed experts (attention, dense FFNs, shared experts,
        routers, norms, embeddings)."""
        p = self.params()
        routed = 0.0 if self.moe is None else p.expert * self.moe.experts * self.moe_layers
        return (p.total - routed) * PRECISION_BYTES[self.precision]

    def kv_bytes_per_token(self) -> float:
        """KV-cache bytes one token of context holds, all layers: keys and values of every KV
        head, or for MLA the compressed latent and the rotary key."""
        per_layer = (self.mla.kv_lora_rank + self.mla.qk_rope_head_size) if self.mla is not None \
            else 2 * self.kv_heads * self.head_size
        return self.layers * per_layer * PRECISION_BYTES[self.kv_precision]

    def attention_dims(self, decode: bool) -> tuple[int, int]:
        """(score width, value width) per head of the attention product: ``head_size`` twice for
        standard attention; for MLA, prefill attends over the decompressed keys (nope + rope) and
        values, decode over the latent directly (the absorbed form: kv_lora_rank + rope, and
        kv_lora_rank)."""
        if self.mla is None:
            return self.head_size, self.head_size
        m = self.mla
        if decode:
            return m.kv_lora_rank + m.qk_rope_head_size, m.kv_lora_rank
        return m.qk_nope_head_size + m.qk_rope_head_size, m.v_head_size

    def describe(self) -> str:
        p = self.params()
        moe = f", {self.moe.experts} experts ({self.moe.experts_per_token} per token)" if self.moe else ""
        return (f"{self.name}: {p.total / 1e9:.2f}B parameters ({p.active / 1e9:.2f}B active){moe}, "
                f"{self.layers} layers, {self.precision} weights, KV {self.kv_bytes_per_token() / 1024:.1f} KiB/token")


# -- token lengths --------------------------------------------------------------------------------

def _phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


@dataclass(frozen=True)
class LengthDist:
    """A distribution of token counts per sample (the module docstring)."""
    kind: str                       # fixed | lognormal | csv
    mean: float = 0.0
    maximum: int = 0
    minimum: int = 1
    sigma: float = 0.0
    mode: str = "clip"              # lognormal: clip | truncate at the maximum
    values: tuple = ()              # csv: the lengths in file order
    note: str = ""                  # how the numbers were sourced or assumed
    #: the data-free assumption ``mean`` replaced when ``mean`` was estimated from published
    #: results (``sim.hw.llm_lengths``); 0 when ``mean`` is published or itself the assumption
    prior_mean: float = 0.0

    def mu(self) -> float:
        """The lognormal's location, solved so the bounded distribution's mean is ``mean``."""
        s, c = self.sigma, math.log(self.maximum)

        def bounded_mean(mu: float) -> float:
            full = math.exp(mu + s * s / 2)
            below = _phi((c - mu - s * s) / s)
            if self.mode == "clip":
                return full * below + self.maximum * (1 - _phi((c - mu) / s))
            return full * below / max(_phi((c - mu) / s), 1e-300)

        lo, hi = math.log(self.minimum) - 6 * s, c + 4 * s
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            if bounded_mean(mid) < self.mean:
                lo = mid
            else:
                hi = mid
        mu = 0.5 * (lo + hi)
        if abs(bounded_mean(mu) - self.mean) > 1e-3 * self.mean:
            raise InputError(f"a lognormal of sigma {s:g} bounded by {self.maximum:,} cannot have mean {self.mean:g}; "
                             f"expected a smaller mean or a larger sigma")
        return mu

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` token counts (int64)."""
        if self.kind == "fixed":
            return np.full(n, int(self.maximum), dtype=np.int64)
        if self.kind == "csv":
            return np.resize(np.asarray(self.values, dtype=np.int64), n)
        mu = self.mu()
        x = rng.lognormal(mu, self.sigma, n)
        if self.mode == "truncate":
            bad = x > self.maximum
            while bad.any():
                x[bad] = rng.lognormal(mu, self.sigma, int(bad.sum()))
                bad = x > self.maximum
        x = np.rint(x)
        return np.clip(x, self.minimum, self.maximum).astype(np.int64)

    def describe(self) -> str:
        if self.kind == "fixed":
            return f"fixed {self.maximum}"
        if self.kind == "csv":
            v = np.asarray(self.values)
            return f"from CSV (mean {v.mean():.1f}, max {v.max()})"
        return f"lognormal (mean {self.mean:g}, max {self.maximum}, sigma {self.sigma:g}, {self.mode})"


@dataclass(frozen=True)
class Dataset:
    name: str
    samples: int                    # the benchmark's sample count (LoadGen's QSL)
    input: LengthDist
    output: LengthDist
    source: str = ""

    def max_total(self) -> int:
        return self.input.maximum + self.output.maximum


@dataclass(frozen=True)
class LLMWorkload:
    name: str
    mlperf_model: str
    description: str
    source: str
    path: str
    model: LLMConfig
    dataset: Dataset | None         # None: the lengths must come from a CSV
    published: dict = field(default_factory=dict)

    def sample_lengths(self, n: int, seed: int, lengths_csv: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(input, output) token counts of sample indices ``0 .. n-1``, drawn once with ``seed``
        (a CSV's rows are used in order, repeated when the run has more samples than rows)."""
        ds = load_lengths_csv(lengths_csv, self) if lengths_csv else self.dataset
        if ds is None:
            raise InputError(f"{self.path}: workload {self.name!r} has no published length distribution; "
                             f"expected --lengths FILE.csv with columns input_tokens,output_tokens")
        if not lengths_csv:             # a CSV's rows were checked one by one as it was read
            check_lengths_fit(ds, self.model, self.path)
        rng = np.random.default_rng([int(seed), 0x4C4C4D])
        inp = ds.input.sample(n, rng)
        out = ds.output.sample(n, rng)
        return inp, out


def check_lengths_fit(ds: Dataset, model: LLMConfig, source: str) -> None:
    """Refuse lengths a model cannot run: zero tokens, or input + output past its context."""
    if ds.max_total() > model.max_context:
        raise InputError(f"{source}: input up to {ds.input.maximum:,} + output up to {ds.output.maximum:,} tokens = "
                         f"{ds.max_total():,}, beyond the model's context of {model.max_context:,} tokens; "
                         f"expected sequences that fit max_context")


# -- reading ---------------------------------------------------------------------------------------

_MODEL_FIELDS = {"layers", "hidden_size", "heads", "kv_heads", "head_size", "ffn_size", "vocab_size",
                 "max_context", "precision", "kv_precision", "expert_precision", "ffn_gated", "tied_embeddings",
                 "attention_bias", "mlp_bias", "norm", "parallel_block", "lm_head_bias", "moe", "mla"}
_REQUIRED_MODEL = ("layers", "hidden_size", "heads", "kv_heads", "head_size", "ffn_size", "vocab_size",
                   "max_context", "precision")
_MOE_FIELDS = {"experts", "experts_per_token", "expert_ffn_size", "shared_experts", "dense_layers",
               "expert_bias", "router_bias"}
_MLA_FIELDS = {"q_lora_rank", "kv_lora_rank", "qk_nope_head_size", "qk_rope_head_size", "v_head_size"}
_DIST_FIELDS = {"kind", "mean", "max", "min", "sigma", "mode", "note", "prior_mean"}
_BIG = 10 ** 7


def _mapping(data, src: str, fld: str, allowed: set, required: tuple = ()) -> dict:
    if not isinstance(data, dict):
        raise refuse(src, fld, data, "a mapping")
    prefix = f"{fld}." if fld else ""
    for key in data:
        if key not in allowed:
            raise InputError(f"{src}: unknown field '{prefix}{key}'; expected one of {sorted(allowed)}")
    for key in required:
        if key not in data:
            raise InputError(f"{src}: field '{prefix}{key}' is missing; expected it in every LLM workload")
    return data


def _int(d: dict, key: str, src: str, fld: str, minimum: int = 1, maximum: int = _BIG, default=None) -> int:
    if key not in d:
        if default is None:
            raise InputError(f"{src}: field '{fld}.{key}' is missing")
        return default
    return number(d[key], src, f"{fld}.{key}", minimum=minimum, maximum=maximum, integer=True)


def _bool(d: dict, key: str, src: str, fld: str, default: bool) -> bool:
    v = d.get(key, default)
    if not isinstance(v, bool):
        raise refuse(src, f"{fld}.{key}", v, "true or false")
    return v


def _precision(d: dict, key: str, src: str, fld: str, default: str) -> str:
    v = d.get(key, default)
    if v == "" and key == "expert_precision":
        return v
    if v not in PRECISION_BYTES:
        raise refuse(src, f"{fld}.{key}", v, f"one of {sorted(PRECISION_BYTES)}")
    return v


def parse_model(d, src: str, name: str) -> LLMConfig:
    d = _mapping(d, src, "model", _MODEL_FIELDS, _REQUIRED_MODEL)
    f = "model"
    heads = _int(d, "heads", src, f)
    kv_heads = _int(d, "kv_heads", src, f)
    if kv_heads > heads or heads % kv_heads:
        raise refuse(src, "model.kv_heads", kv_heads, f"a divisor of heads ({heads})")
    norm = d.get("norm", "rmsnorm")
    if norm not in ("rmsnorm", "layernorm"):
        raise refuse(src, "model.norm", norm, "rmsnorm or layernorm")
    layers = _int(d, "layers", src, f, maximum=100_000)
    moe = None
    if d.get("moe") is not None:
        m = _mapping(d["moe"], src, "model.moe", _MOE_FIELDS, ("experts", "experts_per_token", "expert_ffn_size"))
        experts = _int(m, "experts", src, "model.moe", maximum=1_000_000)
        k = _int(m, "experts_per_token", src, "model.moe")
        if k > experts:
            raise refuse(src, "model.moe.experts_per_token", k, f"at most experts ({experts})")
        dense = _int(m, "dense_layers", src, "model.moe", minimum=0, default=0)
        if dense >= layers:
            raise refuse(src, "model.moe.dense_layers", dense, f"fewer than layers ({layers})")
        moe = MoE(experts, k, _int(m, "expert_ffn_size", src, "model.moe"),
                  _int(m, "shared_experts", src, "model.moe", minimum=0, default=0), dense,
                  _bool(m, "expert_bias", src, "model.moe", False), _bool(m, "router_bias", src, "model.moe", False))
    mla = None
    if d.get("mla") is not None:
        m = _mapping(d["mla"], src, "model.mla", _MLA_FIELDS, tuple(sorted(_MLA_FIELDS)))
        mla = MLA(_int(m, "q_lora_rank", src, "model.mla", minimum=0), _int(m, "kv_lora_rank", src, "model.mla"),
                  _int(m, "qk_nope_head_size", src, "model.mla"), _int(m, "qk_rope_head_size", src, "model.mla"),
                  _int(m, "v_head_size", src, "model.mla"))
    return LLMConfig(
        name=name, layers=layers, hidden_size=_int(d, "hidden_size", src, f), heads=heads, kv_heads=kv_heads,
        head_size=_int(d, "head_size", src, f), ffn_size=_int(d, "ffn_size", src, f),
        vocab_size=_int(d, "vocab_size", src, f), max_context=_int(d, "max_context", src, f, maximum=MAX_CONTEXT),
        precision=_precision(d, "precision", src, f, "bf16"),
        kv_precision=_precision(d, "kv_precision", src, f, "bf16"),
        expert_precision=_precision(d, "expert_precision", src, f, ""),
        ffn_gated=_bool(d, "ffn_gated", src, f, True), tied_embeddings=_bool(d, "tied_embeddings", src, f, False),
        attention_bias=_bool(d, "attention_bias", src, f, False), mlp_bias=_bool(d, "mlp_bias", src, f, False),
        norm=norm, parallel_block=_bool(d, "parallel_block", src, f, False),
        lm_head_bias=_bool(d, "lm_head_bias", src, f, False), moe=moe, mla=mla)


def parse_dist(d, src: str, fld: str) -> LengthDist:
    d = _mapping(d, src, fld, _DIST_FIELDS, ("kind", "max"))
    kind = d["kind"]
    note = d.get("note", "")
    if not isinstance(note, str):
        raise refuse(src, f"{fld}.note", note, "text")
    maximum = number(d["max"], src, f"{fld}.max", minimum=1, maximum=MAX_CONTEXT, integer=True)
    if kind == "fixed":
        if "prior_mean" in d:
            raise refuse(src, f"{fld}.prior_mean", d["prior_mean"], "no prior mean for a fixed length")
        return LengthDist("fixed", mean=float(maximum), maximum=maximum, minimum=maximum, note=note)
    if kind != "lognormal":
        raise refuse(src, f"{fld}.kind", kind, "fixed or lognormal")
    for key in ("mean", "sigma"):
        if key not in d:
            raise InputError(f"{src}: field '{fld}.{key}' is missing; expected it for a lognormal distribution")
    minimum = number(d.get("min", 1), src, f"{fld}.min", minimum=1, maximum=maximum, integer=True)
    mean = number(d["mean"], src, f"{fld}.mean", above=minimum, below=maximum)
    sigma = number(d["sigma"], src, f"{fld}.sigma", above=0.0, maximum=5.0)
    mode = d.get("mode", "clip")
    if mode not in ("clip", "truncate"):
        raise refuse(src, f"{fld}.mode", mode, "clip or truncate")
    prior = number(d["prior_mean"], src, f"{fld}.prior_mean", above=minimum, below=maximum) \
        if "prior_mean" in d else 0.0
    return LengthDist("lognormal", mean=mean, maximum=maximum, minimum=minimum, sigma=sigma, mode=mode, note=note,
                      prior_mean=prior)


def load_llm_workload(path: str | Path) -> LLMWorkload:
    """An LLM workload file, checked (the module docstring)."""
    src = str(path)
    data = read_yaml(path, "an LLM workload (name, model, dataset)")
    data = _mapping(data, src, "", {"name", "mlperf_model", "description", "source", "model", "dataset",
                                    "published"}, ("name", "mlperf_model", "model", "source"))
    name = data["name"]
    if not isinstance(name, str) or not name:
        raise refuse(src, "name", name, "a non-empty name")
    for key in ("mlperf_model", "source", "description"):
        if not isinstance(data.get(key, ""), str):
            raise refuse(src, key, data.get(key), "text")
    model = parse_model(data["model"], src, name)
    ds = None
    if data.get("dataset") is not None:
        d = _mapping(data["dataset"], src, "dataset", {"name", "samples", "input", "output", "source"},
                     ("name", "samples", "input", "output", "source"))
        ds = Dataset(str(d["name"]),
                     number(d["samples"], src, "dataset.samples", minimum=1, maximum=_BIG, integer=True),
                     parse_dist(d["input"], src, "dataset.input"), parse_dist(d["output"], src, "dataset.output"),
                     str(d["source"]))
        check_lengths_fit(ds, model, src)
    published = data.get("published") or {}
    if not isinstance(published, dict):
        raise refuse(src, "published", published, "a mapping")
    return LLMWorkload(name=name, mlperf_model=data["mlperf_model"], description=data.get("description", ""),
                       source=data["source"], path=src, model=model, dataset=ds, published=published)


def load_lengths_csv(path: str | Path, workload: LLMWorkload | None = None) -> Dataset:
    """A user's lengths: a CSV with columns ``input_tokens,output_tokens``, one row per sample."""
    header, rows = read_csv(path, "token lengths (input_tokens,output_tokens per sample)")
    for col in ("input_tokens", "output_tokens"):
        if col not in header:
            raise InputError(f"{path}: column '{col}' is missing; expected a header input_tokens,output_tokens")
    if not rows:
        raise InputError(f"{path}: no rows; expected one row of input_tokens,output_tokens per sample")
    cols = {}
    for col in ("input_tokens", "output_tokens"):
        vals = []
        for i, row in enumerate(rows, start=2):
            text = (row.get(col) or "").strip()
            try:
                v = int(text)
            except ValueError:
                raise InputError(f"{path}: line {i}: field '{col}' = {text!r}: expected an integer >= 1") from None
            if v < 1:
                raise InputError(f"{path}: line {i}: field '{col}' = {v}: expected an integer >= 1 "
                                 f"(a sample of zero tokens cannot be served)")
            if workload is not None and v > workload.model.max_context:
                raise InputError(f"{path}: line {i}: field '{col}' = {v:,}: expected at most the model's context "
                                 f"of {workload.model.max_context:,} tokens")
            vals.append(v)
        cols[col] = tuple(vals)
    inp = LengthDist("csv", maximum=max(cols["input_tokens"]), values=cols["input_tokens"], note=str(path))
    out = LengthDist("csv", maximum=max(cols["output_tokens"]), values=cols["output_tokens"], note=str(path))
    if workload is not None:
        totals = np.asarray(cols["input_tokens"]) + np.asarray(cols["output_tokens"])
        worst = int(np.argmax(totals))
        if totals[worst] > workload.model.max_context:
            raise InputError(f"{path}: line {worst + 2}: input + output = {int(totals[worst]):,} tokens: expected at "
                             f"most the model's context of {workload.model.max_context:,} tokens")
    return Dataset(f"csv:{Path(path).name}", len(rows), inp, out, str(path))


def llm_catalog() -> dict[str, Path]:
    """Built-in LLM workloads by name: ``workloads/llm/*.yaml``."""
    return {p.stem: p for p in sorted(LLM_WORKLOADS_DIR.glob("*.yaml"))}


def is_llm_workload(name: str | None) -> bool:
    """Whether ``name`` is a built-in LLM workload or an LLM workload file."""
    if not name:
        return False
    if name in llm_catalog():
        return True
    p = Path(name)
    if p.suffix in (".yaml", ".yml") and p.is_file():
        try:
            data = read_yaml(p, "an LLM workload")
        except InputError:
            return False
        return isinstance(data, dict) and "model" in data and "mlperf_model" in data
    return False


def load(name: str) -> LLMWorkload:
    """A built-in LLM workload by name, or an LLM workload file by path."""
    cat = llm_catalog()
    if name in cat:
        return load_llm_workload(cat[name])
    if Path(name).is_file():
        return load_llm_workload(name)
    raise InputError(f"unknown LLM workload {name!r}: expected a YAML file or one of {sorted(cat)}")
