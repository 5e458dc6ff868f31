"""The small LLM the validation serves for real: a decoder-only transformer built in ONNX in code.

Its shape comes from an LLM workload file (``workloads/llm/tiny-llm.yaml``, read by
``sim.workload.llm``), so the simulator describes the same network the CPU runs: pre-LayerNorm
blocks of multi-head attention and a two-matrix GELU FFN (with biases), learned position
embeddings (``max_context`` of them), a final LayerNorm and an untied LM head. Weights are drawn
from a seeded generator (normal, standard deviation 0.02; norms at 1 and 0): nothing is
downloaded, and one seed gives one model, bit for bit.

One graph serves both phases of continuous batching, with the KV cache as inputs and outputs:

- ``input_ids`` and ``position_ids`` (int64, ``[batch, new]``): the step's new tokens of each
  sequence, right-padded to the longest;
- ``attention_bias`` (float32, ``[batch, 1, new, past + new]``): 0 where a new token may attend
  to a key, ``MASKED`` elsewhere (the padding of the past and of the new tokens, and the causal
  future within the new tokens); built by ``attention_bias``;
- ``past_key_<l>`` / ``past_value_<l>`` (float32, ``[batch, heads, past, head_size]``) per layer:
  each sequence's cache, right-padded to the longest (``past`` may be 0);
- outputs ``logits`` (``[batch, new, vocab]``) and ``present_key_<l>`` / ``present_value_<l>``
  (``[batch, heads, past + new, head_size]``): the past with the new tokens' keys and values
  appended at positions ``past .. past + new - 1``.

A prefill (or a chunk of one) is a call with ``new`` > 1; a batch of decodes is a call with
``new`` = 1. ``build_model`` returns the ``onnx.ModelProto``; ``model_bytes`` its serialised
bytes, cached per shape and seed in this process.
"""

from __future__ import annotations

import functools

import numpy as np

from sim.errors import InputError
from sim.workload.llm import LLMConfig

#: The bias of a masked key: exp(MASKED - max) underflows to exactly 0 in float32.
MASKED = -1e9
OPSET = 17


def check_buildable(cfg: LLMConfig, source: str) -> None:
    """Refuse a config this builder does not make (it builds the GPT-2-like block only)."""
    bad = [(f, v, want) for f, v, want in (
        ("kv_heads", cfg.kv_heads, cfg.heads), ("head_size", cfg.head_size, cfg.hidden_size // cfg.heads),
        ("ffn_gated", cfg.ffn_gated, False), ("norm", cfg.norm, "layernorm"), ("mlp_bias", cfg.mlp_bias, True),
        ("attention_bias", cfg.attention_bias, False), ("parallel_block", cfg.parallel_block, False),
        ("tied_embeddings", cfg.tied_embeddings, False), ("lm_head_bias", cfg.lm_head_bias, False),
        ("moe", cfg.moe, None), ("mla", cfg.mla, None)) if v != want]
    if bad:
        f, v, want = bad[0]
        raise InputError(f"{source}: field 'model.{f}' = {v!r}: the ONNX builder of the validation LLM makes "
                         f"{want!r} only (a GPT-2-like block)")
    if cfg.heads * cfg.head_size != cfg.hidden_size:
        raise InputError(f"{source}: heads x head_size = {cfg.heads * cfg.head_size}: expected hidden_size "
                         f"({cfg.hidden_size})")


def build_model(cfg: LLMConfig, seed: int = 0):
    """The ONNX model of ``cfg`` with weights drawn from ``seed`` (the module docstring)."""
    import onnx  # noqa: PLC0415 - heavy optional dependency
    from onnx import TensorProto, helper, numpy_helper  # noqa: PLC0415 - idem

    check_buildable(cfg, f"LLM config {cfg.name}")
    rng = np.random.default_rng([int(seed), 0x7417])
    C, H, D, F, V, L = cfg.hidden_size, cfg.heads, cfg.head_size, cfg.ffn_size, cfg.vocab_size, cfg.layers
    inits: list = []
    nodes: list = []

    def weight(name: str, shape, kind: str = "normal"):
        if kind == "ones":
            a = np.ones(shape, np.float32)
        elif kind == "zeros":
            a = np.zeros(shape, np.float32)
        else:
            a = (rng.standard_normal(shape) * 0.02).astype(np.float32)
        inits.append(numpy_helper.from_array(a, name))
        return name

    def const(name: str, values, dtype=np.int64):
        inits.append(numpy_helper.from_array(np.asarray(values, dtype=dtype), name))
        return name

    def node(op: str, inputs: list[str], name: str, **attrs) -> str:
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def layer_norm(x: str, prefix: str) -> str:
        return node("LayerNormalization", [x, weight(prefix + ".g", [C], "ones"), weight(prefix + ".b", [C], "zeros")],
                    prefix + ".out", axis=-1, epsilon=1e-5)

    const("shape_heads", [0, 0, H, D])
    const("shape_model", [0, 0, C])
    const("split_qkv", [C, C, C])
    inits.append(numpy_helper.from_array(np.array(1.0 / np.sqrt(D), np.float32), "scale"))
    inits.append(numpy_helper.from_array(np.array(0.5, np.float32), "half"))
    inits.append(numpy_helper.from_array(np.array(1.0, np.float32), "one"))
    inits.append(numpy_helper.from_array(np.array(1.0 / np.sqrt(2.0), np.float32), "inv_sqrt2"))

    tok = node("Gather", [weight("wte", [V, C]), "input_ids"], "tok_emb", axis=0)
    pos = node("Gather", [weight("wpe", [cfg.max_context, C]), "position_ids"], "pos_emb", axis=0)
    x = node("Add", [tok, pos], "x0")
    graph_inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "new"]),
                    helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["batch", "new"]),
                    helper.make_tensor_value_info("attention_bias", TensorProto.FLOAT,
                                                  ["batch", 1, "new", "total"])]
    graph_outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "new", V])]
    for layer in range(L):
        p = f"l{layer}"
        for kind in ("key", "value"):
            graph_inputs.append(helper.make_tensor_value_info(f"past_{kind}_{layer}", TensorProto.FLOAT,
                                                              ["batch", H, "past", D]))
            graph_outputs.append(helper.make_tensor_value_info(f"present_{kind}_{layer}", TensorProto.FLOAT,
                                                               ["batch", H, "total", D]))
        h = layer_norm(x, p + ".ln1")
        qkv = node("MatMul", [h, weight(p + ".wqkv", [C, 3 * C])], p + ".qkv")
        nodes.append(helper.make_node("Split", [qkv, "split_qkv"], [p + ".q", p + ".k", p + ".v"], axis=2,
                                      name=p + ".split"))
        heads = {}
        for part in ("q", "k", "v"):
            r = node("Reshape", [f"{p}.{part}", "shape_heads"], f"{p}.{part}_r")
            heads[part] = node("Transpose", [r], f"{p}.{part}_t", perm=[0, 2, 1, 3])       # [B, H, T, D]
        k_all = node("Concat", [f"past_key_{layer}", heads["k"]], f"present_key_{layer}", axis=2)
        v_all = node("Concat", [f"past_value_{layer}", heads["v"]], f"present_value_{layer}", axis=2)
        kt = node("Transpose", [k_all], p + ".kt", perm=[0, 1, 3, 2])
        s = node("MatMul", [heads["q"], kt], p + ".scores")
        s = node("Mul", [s, "scale"], p + ".scaled")
        s = node("Add", [s, "attention_bias"], p + ".masked")
        a = node("Softmax", [s], p + ".probs", axis=-1)
        o = node("MatMul", [a, v_all], p + ".ctx")
        o = node("Transpose", [o], p + ".ctx_t", perm=[0, 2, 1, 3])
        o = node("Reshape", [o, "shape_model"], p + ".ctx_r")
        o = node("MatMul", [o, weight(p + ".wo", [C, C])], p + ".attn_out")
        x = node("Add", [x, o], p + ".x1")
        h = layer_norm(x, p + ".ln2")
        f = node("MatMul", [h, weight(p + ".w1", [C, F])], p + ".ff1")
        f = node("Add", [f, weight(p + ".b1", [F], "zeros")], p + ".ff1b")
        g = node("Mul", [f, "inv_sqrt2"], p + ".gelu_s")
        g = node("Erf", [g], p + ".gelu_erf")
        g = node("Add", [g, "one"], p + ".gelu_1")
        g = node("Mul", [g, "half"], p + ".gelu_h")
        f = node("Mul", [f, g], p + ".gelu")
        f = node("MatMul", [f, weight(p + ".w2", [F, C])], p + ".ff2")
        f = node("Add", [f, weight(p + ".b2", [C], "zeros")], p + ".ff2b")
        x = node("Add", [x, f], p + ".x2")
    x = layer_norm(x, "lnf")
    node("MatMul", [x, weight("lm_head", [C, V])], "logits")
    graph = helper.make_graph(nodes, cfg.name.replace("-", "_"), graph_inputs, graph_outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="sim.validate.llm_model")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


@functools.lru_cache(maxsize=4)
def model_bytes(cfg: LLMConfig, seed: int = 0) -> bytes:
    """``build_model(cfg, seed)`` serialised (cached in this process)."""
    return build_model(cfg, seed).SerializeToString()


def weight_count(model, exclude: tuple[str, ...] = ("wpe",)) -> int:
    """Weights and biases in the model's initializers (graph constants and ``exclude`` left out)."""
    from onnx import numpy_helper  # noqa: PLC0415 - heavy optional dependency

    consts = {"shape_heads", "shape_model", "split_qkv", "scale", "half", "one", "inv_sqrt2"}
    return int(sum(numpy_helper.to_array(t).size for t in model.graph.initializer
                   if t.name not in consts and t.name not in exclude))


def attention_bias(past_lens: np.ndarray, new_lens: np.ndarray, past: int, new: int) -> np.ndarray:
    """``[batch, 1, new, past + new]`` float32: 0 where new token ``t`` of sequence ``i`` may see
    key ``j`` (a valid past key, ``j < past_lens[i]``, or a new key at or before itself,
    ``past <= j <= past + t`` with ``t < new_lens[i]``), ``MASKED`` elsewhere. Padded query rows
    see their own position only, so their softmax stays finite."""
    past_lens = np.asarray(past_lens, dtype=np.int64)
    new_lens = np.asarray(new_lens, dtype=np.int64)
    j = np.arange(past + new)[None, None, :]
    t = np.arange(new)[None, :, None]
    ok_past = j < past_lens[:, None, None]
    ok_new = (j >= past) & (j - past <= t) & ((j - past) < new_lens[:, None, None])
    ok = ok_past | ok_new
    ok |= (j - past) == t                       # padded rows: their own (ignored) position
    bias = np.where(ok, np.float32(0.0), np.float32(MASKED)).astype(np.float32)
    return bias[:, None, :, :]
