"""DLRM click-through-rate model in the MLPerf style (``dlrm-v2`` sizes of MLPs and embeddings).

Inputs
    ``dense``  float ``[batch, num_dense]``: the 13 Criteo integer features (already
               log-transformed by preprocessing).
    ``sparse`` int64, one index per table: ``[batch, T]`` (one-hot), ``[batch, T, k]``
               when ``multi_hot`` is an int ``k`` (every table pools ``k`` rows), or
               ``[batch, sum(multi_hot)]`` when ``multi_hot`` is a list of T pooling
               factors (table ``i``'s indices are the ``multi_hot[i]`` columns after
               table ``i-1``'s), T = ``len(table_sizes)``.

All tables live in one concatenated embedding matrix (as fused embedding-bag kernels
store them). Each index is first reduced modulo its table's size (the hashing step
Criteo preprocessing applies), then offset to its table's first row, so any
non-negative index is valid; the model metadata declares ``high`` = the largest table,
so random feeds from ``sim.workload.inputs.make_feeds`` reach every row of every table. Multi-hot
lookups are sum-pooled.

Graph: bottom MLP (``Gemm`` + ``Relu`` on every layer) on ``dense``; one ``Gather`` for
all lookups; then the interaction:

* ``interaction="dot"`` (DLRM's original, the brief's default): stack the bottom-MLP
  output and the T embeddings to ``[batch, T+1, dim]``, ``MatMul`` with its transpose,
  keep the strictly lower triangle with a ``Gather`` on the flattened ``[batch, (T+1)^2]``
  scores, and concatenate with the bottom-MLP output: ``dim + (T+1)T/2`` features
  (128 + 351 = 479 for 26 tables);
* ``interaction="dcn"`` (what MLPerf Inference's ``dlrm-v2`` reference actually runs:
  TorchRec's DLRM-DCNv2): concatenate the bottom-MLP output and the T embeddings to
  ``[batch, (T+1)*dim]`` and apply ``dcn_layers`` low-rank cross layers
  ``x_{l+1} = x_0 * (W_l (V_l x_l) + b_l) + x_l`` of rank ``dcn_rank``;

then the top MLP (``Gemm`` + ``Relu``, the last layer without) and ``Sigmoid``:
output ``prediction`` float ``[batch, top_mlp[-1]]``.

User-item pairs per sample: in MLPerf Inference a DLRM sample is one user's query, the
candidate items to rank for that user: the reference harness aggregates 100 to 700
user-item pairs into each LoadGen sample (``--samples-to-aggregate-quantile-file``).
``pairs_per_sample=P`` (default 1: a sample is one pair) builds that: ``dense`` is
``[batch, P, num_dense]``, ``sparse`` has a ``P`` axis after the batch, both are reshaped
to ``batch * P`` rows at the graph's entry, and ``prediction`` is ``[batch, P *
top_mlp[-1]]``. Weights, parameters and the per-pair graph are the same as with ``P = 1``.

Table sizes: MLPerf's Criteo 1TB tables (``CRITEO_1TB_TABLE_SIZES``, 204 M rows,
~104 GB of fp32) exceed ONNX's 2 GB protobuf limit, so the default
(``DEFAULT_TABLE_SIZES``) caps each of those 26 tables at 100,000 rows: 921,198 rows,
117.9 M embedding parameters, ~472 MB. Pass ``table_sizes`` to choose others; models
whose embeddings exceed ~1.9 GB are refused.

Parameters (the initializers) are exactly the embedding rows and the MLP / cross-layer
weights and biases; index constants are ``Constant`` nodes.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from sim.errors import InputError
from sim.workload.graphs.builder import BATCH, GraphBuilder

CRITEO_1TB_TABLE_SIZES = (
    40000000, 39060, 17295, 7424, 20265, 3, 7122, 1543, 63, 40000000, 3067956, 405282, 10,
    2209, 11938, 155, 4, 976, 14, 40000000, 40000000, 40000000, 590152, 12973, 108, 36,
)
# MLPerf dlrm-v2's multi-hot pooling factors (synthetic multi-hot Criteo 1TB).
MLPERF_MULTI_HOT = (3, 2, 1, 2, 6, 1, 1, 1, 1, 7, 3, 8, 1, 6, 9, 5, 1, 1, 1, 12, 100, 27, 10, 3, 1, 1)
TABLE_CAP = 100_000
DEFAULT_TABLE_SIZES = tuple(min(s, TABLE_CAP) for s in CRITEO_1TB_TABLE_SIZES)
MAX_EMBEDDING_BYTES = 1_900_000_000


def _constant(b: GraphBuilder, array, prefix: str = "c") -> str:
    """A non-parameter constant as a ``Constant`` node (not an initializer)."""
    name = b.fresh(prefix)
    b.nodes.append(helper.make_node("Constant", [], [name], name=f"{name}_node",
                                    value=numpy_helper.from_array(np.asarray(array), name)))
    return name


def _ints(value, what: str) -> tuple[int, ...]:
    try:
        out = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise InputError(f"DLRM {what}={value!r}: expected a list of positive integers") from None
    if not out or any(v < 1 for v in out):
        raise InputError(f"DLRM {what}={value!r}: expected a non-empty list of positive integers")
    return out


def _config(table_sizes, embedding_dim, num_dense, bottom_mlp, top_mlp, multi_hot, interaction):
    tables = DEFAULT_TABLE_SIZES if table_sizes is None else _ints(table_sizes, "table_sizes")
    bottom, top = _ints(bottom_mlp, "bottom_mlp"), _ints(top_mlp, "top_mlp")
    dim, num_dense = int(embedding_dim), int(num_dense)
    if dim < 1 or num_dense < 1:
        raise InputError(f"DLRM embedding_dim={dim} num_dense={num_dense}: expected positive integers")
    if bottom[-1] != dim:
        raise InputError(f"DLRM bottom_mlp={list(bottom)}: expected its last size to equal "
                         f"embedding_dim ({dim})")
    if interaction not in ("dot", "dcn"):
        raise InputError(f"DLRM interaction={interaction!r}: expected 'dot' or 'dcn'")
    if multi_hot is not None and not isinstance(multi_hot, int):
        multi_hot = _ints(multi_hot, "multi_hot")
        if len(multi_hot) != len(tables):
            raise InputError(f"DLRM multi_hot has {len(multi_hot)} entries: expected one per table "
                             f"({len(tables)})")
    elif isinstance(multi_hot, int) and multi_hot < 1:
        raise InputError(f"DLRM multi_hot={multi_hot}: expected a positive integer or a list")
    if sum(tables) * dim * 4 > MAX_EMBEDDING_BYTES:
        raise InputError(f"DLRM table_sizes: {sum(tables):,} rows x {dim} x 4 bytes exceed ONNX's 2 GB "
                         f"protobuf limit; expected at most {MAX_EMBEDDING_BYTES // (4 * dim):,} rows "
                         f"(e.g. the default, Criteo 1TB sizes capped at {TABLE_CAP:,})")
    return tables, dim, num_dense, bottom, top, multi_hot


def _mlp_params(d_in: int, sizes) -> int:
    total = 0
    for d_out in sizes:
        total += d_in * d_out + d_out
        d_in = d_out
    return total


def _mlp_macs(d_in: int, sizes) -> int:
    total = 0
    for d_out in sizes:
        total += d_in * d_out
        d_in = d_out
    return total


def _interaction_width(n_tables: int, dim: int, interaction: str) -> int:
    n = n_tables + 1
    return dim + n * (n - 1) // 2 if interaction == "dot" else n * dim


def dlrm_parameter_count(table_sizes=None, embedding_dim=128, num_dense=13, bottom_mlp=(512, 256, 128),
                         top_mlp=(1024, 1024, 512, 256, 1), interaction="dot", dcn_layers=3,
                         dcn_rank=512) -> int:
    """Closed form: sum(table_size) * dim + MLP (and cross-layer) weights and biases."""
    tables = DEFAULT_TABLE_SIZES if table_sizes is None else tuple(table_sizes)
    d = _interaction_width(len(tables), embedding_dim, interaction)
    total = sum(tables) * embedding_dim + _mlp_params(num_dense, bottom_mlp) + _mlp_params(d, top_mlp)
    if interaction == "dcn":
        total += dcn_layers * (2 * d * dcn_rank + d)
    return total


def dlrm_macs(n_tables=26, embedding_dim=128, num_dense=13, bottom_mlp=(512, 256, 128),
              top_mlp=(1024, 1024, 512, 256, 1), interaction="dot", dcn_layers=3, dcn_rank=512) -> int:
    """MatMul/Gemm multiply-accumulates per sample (embedding pooling is adds, not counted)."""
    d = _interaction_width(n_tables, embedding_dim, interaction)
    n = n_tables + 1
    inter = n * n * embedding_dim if interaction == "dot" else dcn_layers * 2 * d * dcn_rank
    return _mlp_macs(num_dense, bottom_mlp) + inter + _mlp_macs(d, top_mlp)


def _pairs(value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"DLRM pairs_per_sample={value!r}: expected an integer >= 1 (user-item pairs per "
                         f"LoadGen sample; MLPerf's harness aggregates 100 to 700)")
    return int(value)


def _rows(b: GraphBuilder, x: str, tail: list[int]) -> str:
    """``[batch, P, *tail]`` to ``[batch * P, *tail]``."""
    return b.op("Reshape", [x, _constant(b, np.array([-1] + tail, np.int64), "shape")])


def build_dlrm(seed: int = 0, table_sizes=None, embedding_dim: int = 128, num_dense: int = 13,
               bottom_mlp=(512, 256, 128), top_mlp=(1024, 1024, 512, 256, 1), multi_hot=None,
               interaction: str = "dot", dcn_layers: int = 3, dcn_rank: int = 512, pairs_per_sample: int = 1):
    """MLPerf-style DLRM; see the module docstring for inputs, defaults, the interaction choice
    and ``pairs_per_sample``."""
    tables, dim, num_dense, bottom, top, multi_hot = _config(
        table_sizes, embedding_dim, num_dense, bottom_mlp, top_mlp, multi_hot, interaction)
    pairs = _pairs(pairs_per_sample)
    n_tables = len(tables)
    b = GraphBuilder("dlrm", seed=seed)
    if pairs == 1:
        dense = b.input("dense", [BATCH, num_dense])
    else:
        dense = _rows(b, b.input("dense", [BATCH, pairs, num_dense]), [num_dense])

    # Per-lookup table ids, in the order the sparse input holds them.
    if isinstance(multi_hot, tuple):
        table_of = np.repeat(np.arange(n_tables), multi_hot)
        sparse_shape = [BATCH, int(table_of.size)]
    elif isinstance(multi_hot, int):
        table_of = np.repeat(np.arange(n_tables), multi_hot).reshape(n_tables, multi_hot)
        sparse_shape = [BATCH, n_tables, multi_hot]
    else:
        table_of = np.arange(n_tables)
        sparse_shape = [BATCH, n_tables]
    if pairs == 1:
        sparse = b.input("sparse", sparse_shape, TensorProto.INT64, high=max(tables))
    else:
        per_pair = sparse_shape[1:]
        sparse = _rows(b, b.input("sparse", [BATCH, pairs] + per_pair, TensorProto.INT64, high=max(tables)),
                       per_pair)

    # Bottom MLP.
    x = dense
    d_in = num_dense
    for d_out in bottom:
        x = b.relu(b.gemm(x, d_in, d_out))
        d_in = d_out
    bottom_out = x                                                      # [B, dim]

    # Embedding lookups in one concatenated table.
    sizes = np.array(tables, np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    # Row scale dim^-1/4 keeps the dot products O(1); pooled tables are scaled by 1/sqrt(k).
    table = b.rng.standard_normal((int(sizes.sum()), dim), dtype=np.float32)
    hot = np.broadcast_to(np.asarray(1 if multi_hot is None else multi_hot), (n_tables,))
    for i in range(n_tables):
        table[offsets[i]:offsets[i] + sizes[i]] *= np.float32(dim ** -0.25 / np.sqrt(hot[i]))
    emb = b.const(table, "embeddings")
    idx = b.op("Mod", [sparse, _constant(b, sizes[table_of], "table_sizes")])
    idx = b.op("Add", [idx, _constant(b, offsets[table_of], "table_offsets")])
    rows = b.op("Gather", [emb, idx], axis=0)
    if isinstance(multi_hot, tuple):                                   # [B, sum(k), dim]
        parts = b.op("Split", [rows, _constant(b, np.array(multi_hot, np.int64), "split")],
                     n_out=n_tables, axis=1) if n_tables > 1 else [rows]
        pooled = [b.op("ReduceSum", [p, _constant(b, np.array([1], np.int64), "axes")], keepdims=1)
                  for p in parts]
        sparse_out = b.concat(pooled, axis=1) if n_tables > 1 else pooled[0]
    elif isinstance(multi_hot, int):                                   # [B, T, k, dim]
        sparse_out = b.op("ReduceSum", [rows, _constant(b, np.array([2], np.int64), "axes")], keepdims=0)
    else:
        sparse_out = rows                                               # [B, T, dim]

    # Interaction.
    n = n_tables + 1
    if interaction == "dot":
        feats = b.concat([b.op("Unsqueeze", [bottom_out, _constant(b, np.array([1], np.int64), "axes")]),
                          sparse_out], axis=1)                          # [B, T+1, dim]
        z = b.op("MatMul", [feats, b.transpose(feats, [0, 2, 1])])      # [B, T+1, T+1]
        z = b.op("Reshape", [z, _constant(b, np.array([0, n * n], np.int64), "shape")])
        lower = np.array([i * n + j for i in range(n) for j in range(i)], np.int64)
        z = b.op("Gather", [z, _constant(b, lower, "tril_idx")], axis=1)  # [B, n(n-1)/2]
        x = b.concat([bottom_out, z], axis=1)
    else:
        flat = b.op("Reshape", [sparse_out, _constant(b, np.array([0, n_tables * dim], np.int64), "shape")])
        x0 = b.concat([bottom_out, flat], axis=1)                       # [B, (T+1) dim]
        d = n * dim
        x = x0
        for _ in range(int(dcn_layers)):
            v = b.weight((int(dcn_rank), d), fan_in=d, prefix="dcn_v", scale=0.5)
            w = b.weight((d, int(dcn_rank)), fan_in=int(dcn_rank), prefix="dcn_w", scale=0.5)
            low = b.op("Gemm", [x, v], transB=1)
            cross = b.op("Gemm", [low, w, b.bias(d, "dcn_b")], transB=1)
            x = b.add(b.op("Mul", [x0, cross]), x)
    d_in = _interaction_width(n_tables, dim, interaction)

    # Top MLP.
    for i, d_out in enumerate(top):
        x = b.gemm(x, d_in, d_out)
        if i < len(top) - 1:
            x = b.relu(x)
        d_in = d_out
    if pairs == 1:
        b.nodes.append(helper.make_node("Sigmoid", [x], ["prediction"], name="sigmoid_out"))
    else:
        y = b.op("Sigmoid", [x])
        b.nodes.append(helper.make_node("Reshape", [y, _constant(b, np.array([-1, pairs * top[-1]], np.int64),
                                                                 "shape")], ["prediction"], name="per_sample"))
    b.output("prediction", [BATCH, pairs * top[-1]])
    hot = "one-hot" if multi_hot is None else f"multi-hot {multi_hot}"
    per = "" if pairs == 1 else f"; {pairs} user-item pairs per sample"
    return b.build(doc=f"DLRM ({interaction} interaction, {hot}): {n_tables} tables, {sum(tables):,} rows x "
                       f"{dim}; bottom {list(bottom)}, top {list(top)}{per}; seeded random weights")
