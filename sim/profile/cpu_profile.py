"""The measured CPU profile: per-kernel and end-to-end times of a model in onnxruntime.

``measure`` runs a workload on this machine with onnxruntime's CPUExecutionProvider at
graph optimisation level ORT_ENABLE_ALL, once per requested batch size, and records
what the simulator's CPU cost model needs. ``load_or_measure`` keeps the result in a
cache so a model is measured once per machine. ``CpuProfileCost`` turns a profile into
the ``service_time_ns(batch, idle)`` answer the simulator asks for.

How it is measured
------------------
Two sessions are made from the same model bytes and the same options; only one of them
profiles, because onnxruntime's profiler costs time on every kernel.

- The *clean* session (no profiling) gives end-to-end times: ``time.perf_counter_ns``
  around ``session.run``. ``clean_busy_ns`` are back-to-back runs (the service time of
  a busy server); ``clean_idle_ns`` are runs that each follow ``cold_idle_ms`` of
  sleep (a server that was idle: its thread pool stopped spinning and parked, its
  caches were cooled by other work).
- The *profiled* session (``SessionOptions.enable_profiling``) writes onnxruntime's
  Chrome-trace JSON. Its ``model_run`` events give the end-to-end time seen by the
  profiler, its ``Node`` events (``<node>_kernel_time``, with ``op_name``,
  ``provider`` and the thread pool's scheduling statistics) give each kernel's time.
  The profiler's clock counts whole microseconds.

For each batch size: one first run (``first_run_ns``), warm-up runs in both sessions,
then rounds of ``sleep(cold_idle_ms)``, one idle run, ``runs_per_block`` busy runs (all
clean), one discarded profiled run (while the clean session's threads settle) and
``runs_per_block`` profiled runs. ``runs_per_block`` is ``ceil(repeat_runs /
cold_runs)``. Interleaving matters on a shared machine: its speed drifts over seconds
(several-fold on the 2-core VM this was written on), and clean and profiled times are
only comparable when taken at the same time. Repeats are adaptive: rounds go on until
``repeat_runs`` busy and ``cold_runs`` idle runs were made, or until ``max_seconds``
have passed for this batch size and at least ``min_runs`` busy runs were made.

Kernels and the original graph
------------------------------
onnxruntime rewrites the graph before it runs it: Conv+BatchNormalization+Relu(+Add)
become one Conv (in the NCHWc layout on x86, with ``ReorderInput``/``ReorderOutput``
nodes it inserts), MatMul+Add(+Relu) become FusedGemm, MatMul+scale FusedMatMul,
a transformer's bias+residual Add+LayerNormalization become SkipLayerNormalization and
its erf Gelu BiasGelu (attention subgraphs become Attention where they match
onnxruntime's patterns), constant subgraphs are folded into initializers, Identity
nodes vanish into their neighbours.
The profile records kernels as they really run and, for each, which nodes of the
*original* ONNX graph it covers. The optimised graph is saved with
``optimized_model_filepath`` and mapped back by ``map_kernels``:

- For each original tensor, its ancestor set: the original nodes it depends on.
- A tensor of the optimised graph with an original (non-initializer) name stands for
  that original tensor. A tensor onnxruntime invented is tied to an original one by
  the name of the node that makes it: the NCHWc transformer names its nodes
  ``<original tensor>_nchwc``, and a node that keeps an original node's name makes
  that node's outputs. Such a tie is moved forward along single-consumer nodes while
  it contradicts the data flow (the fused node's inputs must all be read between its
  inputs and the tied tensor, as often as it has input slots: a residual Add fused
  after the name was given), and over the node's fused ``activation``; a tie that
  cannot be repaired in three steps is dropped. Last, an inserted layout node
  (ReorderInput, ReorderOutput, Transpose not named like an original node) ties its
  invented side to the original tensor on its other side, since it only moves data.
- An optimised node covers the original nodes on the paths between its inputs and its
  outputs: ``ancestors(outputs) - ancestors(inputs)``, counting only nodes that depend
  on a graph input. Constants (initializers, including ones onnxruntime folded) have
  no ancestors, so a Shape->Gather->Concat chain of a graph input, folded into a
  Reshape's shape, is covered by that Reshape. A node whose outputs are all invented
  and untied covers nothing; its consumers' coverage absorbs the original nodes.
- Each original node is given to exactly one kernel: the covering kernel with the same
  node name if there is one (fused nodes usually keep one original node's name), else
  the first covering kernel in the optimised graph's topological order. An uncovered original node whose name
  an optimised node carries goes to that node.
- Original nodes left over are listed under ``graph.uncovered``: ``constant_folded``
  (they depend on no graph input, or their output became an initializer, or they feed
  only such nodes), ``removed`` (no path to a graph output), ``unaccounted`` (the rest;
  empty for the models tried so far).

Nodes without names (or with duplicate names) are named ``<op_type>_<index>`` before
the model is given to onnxruntime, so that trace events can be told apart;
``graph.renamed_nodes`` says when that happened. Subgraph bodies (If/Loop) are not
mapped: their kernels appear with ``in_optimized_graph: false``.

The JSON file (``"schema": "sim.cpu_profile/1"``)
-------------------------------------------------
Times are integer nanoseconds. A *stats* object summarises repeated samples:
``{n, median, mean, min, max, p10, p90, q25, q75, iqr, mad}`` (``mad``: median absolute
deviation from the median; percentiles with linear interpolation).

- ``schema``, ``doc``: this format's name and a pointer to this docstring.
- ``workload``: ``{name, mlperf_model, sha256}``; ``sha256`` is the model's content hash.
- ``fingerprint``, ``fingerprint_hash``: the machine and thread settings
  (``sim.util.fingerprint``) and their 12-digit hash.
- ``created_utc``, ``updated_utc``: ISO-8601 times of the first and last measurement.
- ``graph``: ``original_nodes``, ``optimized_nodes``, ``optimized_op_types``
  (``{op_type: count}``), ``renamed_nodes`` (bool), ``heuristic`` (one line),
  ``kernels`` (``{optimized node name: {op_type, domain, kind, covers}}`` where
  ``kind`` is ``fused`` (covers > 1 node), ``single`` or ``inserted`` (covers none) and
  ``covers`` lists original node names), ``uncovered``
  (``{constant_folded, removed, unaccounted}``: lists of original node names).
- ``batches``: ``{"<batch size>": entry}``, each entry with
  - ``measured_utc`` and ``settings`` (``warmup_runs, repeat_runs, min_runs,
    max_seconds, cold_runs, cold_idle_ms, seed, runs_per_block``);
  - ``end_to_end``: ``clean_busy_ns`` and ``clean_idle_ns`` (stats, no profiler),
    ``first_run_ns`` (the first run at this batch size, before warm-up, no profiler),
    ``profiled_model_run_ns`` (stats of the profiler's model_run events) and
    ``profiled_wall_ns`` (stats of perf_counter around the profiled runs);
  - ``kernel_sum_ns``: stats of the sum of all kernel times in one profiled run;
  - ``gap``: ``model_run_minus_kernel_sum_ns`` (stats, per profiled run) and
    ``model_run_minus_kernel_sum_pct`` (median gap in % of the median model_run),
    ``clean_minus_kernel_sum_ns`` and ``clean_minus_kernel_sum_pct`` (median clean
    busy time minus median kernel sum, in ns and in % of the clean time; negative when
    the profiler inflates kernels more than the framework costs);
  - ``profiler_overhead``: ``{ns, pct}``: median profiled wall time minus median clean
    busy time, and that in % of the clean time;
  - ``idle_penalty``: ``{ns, pct}``: median idle time minus median busy time;
  - ``intra_op_pool_threads``: the most threads the profiler saw one kernel use;
  - ``load_average_1min``: the machine's load average when this batch size started
    (other work on the machine shows up here and in the spread of the times);
  - ``kernels``: in execution order, each ``{name, op_type, domain, provider, kind
    (as in ``graph.kernels``, or ``unmapped`` for a kernel of a subgraph body), covers,
    in_optimized_graph, calls_per_run, dur_ns (stats of the kernel's total
    time in one run), share_pct (median time in % of the median kernel sum),
    pool_threads, parallel_sections_per_call}``.

The file lives at ``<cache>/profiles/<workload>-<sha256[:12]>-<fingerprint hash>.json``
and is written atomically.
"""

from __future__ import annotations

import bisect
import datetime as _dt
import json
import os
import tempfile
import time
from collections import Counter, defaultdict
from fractions import Fraction
from pathlib import Path

import numpy as np
import onnx

from sim.util import atomic
from sim.errors import InputError
from sim.util.fingerprint import fingerprint, fingerprint_hash
from sim.workload.inputs import graph_inputs, make_feeds

SCHEMA = "sim.cpu_profile/1"
DOC = "Measured onnxruntime CPU profile; fields are documented in the docstring of sim/profile/cpu_profile.py."
EXECUTION_MODE = "ORT_SEQUENTIAL"
OPT_LEVEL = "ORT_ENABLE_ALL"
HEURISTIC = ("kernel covers ancestors(outputs) - ancestors(inputs) among input-dependent original nodes; "
             "invented tensors tied to original ones by node name (<tensor>_nchwc, kept node names, moved "
             "forward over fused residual Add / activation) and through inserted layout nodes; each original "
             "node to one kernel (same-name kernel first, else first in topological order)")

# Inserted nodes that only change a tensor's layout: their input and output stand for
# the same original tensor.
LAYOUT_OPS = {"ReorderInput", "ReorderOutput", "Transpose"}
NCHWC_SUFFIX = "_nchwc"

NOISY_SPREAD = 1.25     # summarise() flags a batch size whose busy p90/p10 exceeds this
DEFAULTS = dict(warmup_runs=3, repeat_runs=30, min_runs=5, max_seconds=8.0, cold_runs=10, cold_idle_ms=50.0)


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------

def _utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def stats(values) -> dict:
    """Summary of repeated samples as integer ns: n, median, mean, min, max, p10, p90, q25, q75, iqr, mad."""
    arr = np.asarray(list(values), dtype=np.float64)
    if arr.size == 0:
        return {"n": 0}
    q = np.percentile(arr, [10, 25, 50, 75, 90])
    med = float(q[2])
    out = {"n": int(arr.size), "median": med, "mean": float(arr.mean()), "min": float(arr.min()),
           "max": float(arr.max()), "p10": float(q[0]), "p90": float(q[4]), "q25": float(q[1]),
           "q75": float(q[3]), "iqr": float(q[3] - q[1]), "mad": float(np.median(np.abs(arr - med)))}
    return {k: (v if k == "n" else int(round(v))) for k, v in out.items()}


def _pct(part: float, whole: float) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


def _check_batches(batch_sizes, source: str) -> list[int]:
    if isinstance(batch_sizes, (int, np.integer)) and not isinstance(batch_sizes, bool):
        batch_sizes = [batch_sizes]
    try:
        items = list(batch_sizes)
    except TypeError:
        raise InputError(f"{source}: batch sizes {batch_sizes!r}: expected a list of integers >= 1") from None
    if not items:
        raise InputError(f"{source}: no batch sizes given; expected at least one integer >= 1")
    out = []
    for b in items:
        if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b <= 0:
            raise InputError(f"{source}: batch size {b!r}: expected an integer >= 1")
        out.append(int(b))
    return sorted(set(out))


def _check_threads(threads, source: str) -> int | None:
    if threads is None or threads == 0:
        return None
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 0:
        raise InputError(f"{source}: intra-op threads {threads!r}: expected an integer >= 1 (or None for "
                         f"onnxruntime's default)")
    return int(threads)


def _check_batch_dim(model: onnx.ModelProto, batch: int, source: str) -> None:
    for v in graph_inputs(model):
        dims = v.type.tensor_type.shape.dim if v.type.tensor_type.HasField("shape") else []
        if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0 and dims[0].dim_value != batch:
            raise InputError(f"{source}: input '{v.name}' has a fixed first dimension {dims[0].dim_value}, so "
                             f"batch size {batch} cannot be run; expected batch size {dims[0].dim_value} or a "
                             f"model with a symbolic batch dimension")


def _named_model(model: onnx.ModelProto) -> tuple[onnx.ModelProto, bool]:
    """The model with every top-level node uniquely named (a copy only when needed)."""
    names = [n.name for n in model.graph.node]
    if all(names) and len(set(names)) == len(names):
        return model, False
    model = onnx.ModelProto.FromString(model.SerializeToString())
    seen = set()
    for i, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_{i}"
            while node.name in seen:
                node.name += "_"
        seen.add(node.name)
    return model, True


# ---------------------------------------------------------------------------
# mapping optimised kernels back to the original graph
# ---------------------------------------------------------------------------

def _topo_order(nodes) -> list[int]:
    produced = {o: i for i, n in enumerate(nodes) for o in n.output if o}
    indeg = [0] * len(nodes)
    users = defaultdict(list)
    for i, n in enumerate(nodes):
        deps = {produced[t] for t in n.input if t in produced and produced[t] != i}
        indeg[i] = len(deps)
        for d in deps:
            users[d].append(i)
    ready = [i for i in range(len(nodes)) if indeg[i] == 0]
    order = []
    while ready:
        i = ready.pop(0)
        order.append(i)
        for u in users[i]:
            indeg[u] -= 1
            if indeg[u] == 0:
                ready.append(u)
    # a cycle cannot happen in a valid ONNX graph; keep any leftovers in file order
    done = set(order)
    order += [i for i in range(len(nodes)) if i not in done]
    return order


def _extend_tie(target: str, in_mask: int, in_tensors: list[str], activation: str, anc, onodes, producer,
                consumers) -> str | None:
    """Move a name tie forward to the tensor the fused node really computes.

    A node named after tensor T may have absorbed nodes after T: a residual Add (its
    sum input is then not read between the inputs and T) and an activation (its
    ``activation`` attribute). Walk T's single-consumer chain until the region
    ``ancestors(t) - ancestors(inputs)`` reads every input, as often as the node has
    input slots, then over the activation; None when that takes more than three steps.
    """
    wanted = set(in_tensors)

    def region_reads_inputs(t: str) -> bool:
        if in_mask & ~anc.get(t, 0):
            return False
        region = anc.get(t, 0) & ~in_mask
        if not all(any((region >> c) & 1 for c in consumers.get(r, [])) for r in wanted):
            return False
        # as many reads of the inputs inside the region as the fused node has input slots
        # (a residual Add of the conv's own input reads that tensor twice)
        readers = {c for r in wanted for c in consumers.get(r, []) if (region >> c) & 1}
        reads = sum(sum(1 for x in onodes[c].input if x in wanted) for c in readers)
        return reads >= len(in_tensors)

    t = target
    for _ in range(4):
        if region_reads_inputs(t):
            break
        users = consumers.get(t, [])
        if len(users) != 1 or len(onodes[users[0]].output) != 1:
            return None
        t = onodes[users[0]].output[0]
    else:
        return None
    if activation and t in producer and onodes[producer[t]].op_type.lower() != activation.lower():
        users = consumers.get(t, [])
        if len(users) == 1 and onodes[users[0]].op_type.lower() == activation.lower() \
                and len(onodes[users[0]].output) == 1:
            t = onodes[users[0]].output[0]
    return t


def map_kernels(original: onnx.ModelProto, optimized: onnx.ModelProto) -> dict:
    """Which original nodes each optimised node covers (see the module docstring).

    Returns ``{"kernels": {opt name: {op_type, domain, kind, covers}}, "order": [opt names
    in topological order], "covered_by": {orig name: opt name}, "uncovered": {constant_folded,
    removed, unaccounted}}``.
    """
    onodes = list(original.graph.node)
    onames = [n.name for n in onodes]
    oinit = {t.name for t in original.graph.initializer}
    ginputs = {v.name for v in original.graph.input} - oinit
    # ancestors as int bitmasks over original node indices
    anc: dict[str, int] = {}
    live: dict[str, bool] = {name: True for name in ginputs}   # depends on a graph input
    node_live = [False] * len(onodes)
    for i in _topo_order(onodes):
        n = onodes[i]
        mask = 1 << i
        is_live = False
        for t in n.input:
            if t:
                mask |= anc.get(t, 0)
                is_live = is_live or live.get(t, False)
        node_live[i] = is_live
        for t in n.output:
            if t:
                anc[t] = mask
                live[t] = is_live
    orig_tensors = set(anc) | ginputs
    producer = {t: i for i, n in enumerate(onodes) for t in n.output if t}
    consumers = defaultdict(list)
    for i, n in enumerate(onodes):
        for t in set(n.input):
            if t:
                consumers[t].append(i)
    live_mask = sum(1 << i for i, v in enumerate(node_live) if v)
    for t in ginputs:
        anc[t] = 0

    pnodes = list(optimized.graph.node)
    pinit = {t.name for t in optimized.graph.initializer}
    orig_name_set = set(onames)

    def original_of(t: str, equiv: dict) -> str | None:
        if t in pinit:
            return None
        if t in orig_tensors:
            return t
        return equiv.get(t)

    equiv: dict[str, str] = {}
    # name ties: the NCHWc transformer names a node after the original tensor it computes
    # ("<tensor>_nchwc"); a node that keeps an original node's name computes its outputs
    onode_by_name = {n.name: n for n in onodes}
    name_tied: set[str] = set()
    for n in pnodes:
        invented = [k for k, t in enumerate(n.output) if t and t not in pinit and t not in orig_tensors]
        if not invented:
            continue
        base = n.name[: -len(NCHWC_SUFFIX)] if n.name.endswith(NCHWC_SUFFIX) else None
        ties = {}
        if base in orig_tensors and len(invented) == 1:
            ties[n.output[invented[0]]] = base
        elif n.name in onode_by_name and len(onode_by_name[n.name].output) == len(n.output):
            ties = {n.output[k]: onode_by_name[n.name].output[k] for k in invented
                    if onode_by_name[n.name].output[k] in orig_tensors}
        for t, target in ties.items():
            equiv[t] = target
            name_tied.add(t)

    layout = [n for n in pnodes if n.op_type in LAYOUT_OPS and n.name not in orig_name_set
              and n.input and n.output]
    changed = True
    while changed:
        changed = False
        for n in layout:
            i_t, o_t = n.input[0], n.output[0]
            ri, ro = original_of(i_t, equiv), original_of(o_t, equiv)
            if ro is not None and ri is None and i_t not in pinit and i_t not in equiv:
                equiv[i_t] = ro
                changed = True
            elif ri is not None and ro is None and o_t not in equiv:
                equiv[o_t] = ri
                changed = True

    kernels: dict[str, dict] = {}
    order: list[str] = []
    candidates: dict[int, list[str]] = defaultdict(list)
    pmask: dict[str, int] = {}
    for j in _topo_order(pnodes):
        n = pnodes[j]
        in_mask = 0
        in_tensors = []
        for t in n.input:
            if not t:
                continue
            r = original_of(t, equiv)
            in_mask |= anc.get(r, 0) if r is not None else pmask.get(t, 0)
            if r is not None:
                in_tensors.append(r)
        activation = next((a.s.decode() for a in n.attribute if a.name == "activation" and a.s), "")
        for t in n.output:
            if t in name_tied:
                target = _extend_tie(equiv[t], in_mask, in_tensors, activation, anc, onodes, producer, consumers)
                if target is None:
                    del equiv[t]
                    name_tied.discard(t)
                else:
                    equiv[t] = target
        out_mask = 0
        for t in n.output:
            r = original_of(t, equiv) if t else None
            if r is not None:
                out_mask |= anc.get(r, 0)
        cover = out_mask & ~in_mask & live_mask
        for t in n.output:
            if t and original_of(t, equiv) is None:
                pmask[t] = in_mask | cover
        order.append(n.name)
        kernels[n.name] = {"op_type": n.op_type, "domain": n.domain or "ai.onnx", "cover_mask": cover}
        i = 0
        while cover:
            if cover & 1:
                candidates[i].append(n.name)
            cover >>= 1
            i += 1

    covered_by: dict[str, str] = {}
    for i, cands in candidates.items():
        covered_by[onames[i]] = onames[i] if onames[i] in cands else cands[0]
    for i, name in enumerate(onames):
        if name not in covered_by and name in kernels and node_live[i]:
            covered_by[name] = name
    covers = defaultdict(list)
    for name in onames:                      # original order
        if name in covered_by:
            covers[covered_by[name]].append(name)
    for name, k in kernels.items():
        del k["cover_mask"]
        k["covers"] = covers.get(name, [])
        k["kind"] = "fused" if len(k["covers"]) > 1 else ("single" if k["covers"] else "inserted")

    # classify the leftovers
    outputs_mask = 0
    for v in original.graph.output:
        outputs_mask |= anc.get(v.name, 0)
    folded = {i for i, n in enumerate(onodes) if onames[i] not in covered_by
              and (not node_live[i] or any(o in pinit for o in n.output))}
    changed = True
    while changed:  # an uncovered node feeding only folded nodes was folded too
        changed = False
        for i, n in enumerate(onodes):
            if i in folded or onames[i] in covered_by:
                continue
            users = set().union(*(set(consumers[o]) for o in n.output if o)) if n.output else set()
            if users and users <= folded:
                folded.add(i)
                changed = True
    uncovered = {"constant_folded": [], "removed": [], "unaccounted": []}
    for i, name in enumerate(onames):
        if name in covered_by:
            continue
        if i in folded:
            uncovered["constant_folded"].append(name)
        elif not (outputs_mask >> i) & 1:
            uncovered["removed"].append(name)
        else:
            uncovered["unaccounted"].append(name)
    return {"kernels": kernels, "order": order, "covered_by": covered_by, "uncovered": uncovered}


# ---------------------------------------------------------------------------
# running onnxruntime
# ---------------------------------------------------------------------------

def _session(model_bytes: bytes, threads: int | None, profile_prefix: str | None = None,
             optimized_path: str | None = None):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = int(threads or 0)
    so.inter_op_num_threads = 0
    so.log_severity_level = 3  # the NCHWc "hardware specific" warning when saving is expected
    if profile_prefix:
        so.enable_profiling = True
        so.profile_file_prefix = profile_prefix
    if optimized_path:
        so.optimized_model_filepath = optimized_path
        so.add_session_config_entry("session.optimized_model_external_initializers_file_name",
                                    Path(optimized_path).name + ".data")
        so.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _timed(session, feeds) -> int:
    start = time.perf_counter_ns()
    session.run(None, feeds)
    return time.perf_counter_ns() - start


def _measure_batch(plain, profiled, feeds, batch: int, labels: list, warmup_runs: int, repeat_runs: int,
                   min_runs: int, max_seconds: float, cold_runs: int, cold_idle_ms: float) -> dict:
    """Interleaved rounds of clean and profiled runs at one batch size (see the module docstring)."""
    load = _load_average()
    first = _timed(plain, feeds)
    for _ in range(warmup_runs):
        plain.run(None, feeds)
    for _ in range(warmup_runs):
        profiled.run(None, feeds)
        labels.append(None)
    per_block = max(1, -(-repeat_runs // cold_runs))
    busy, idle, walls = [], [], []
    t0 = time.perf_counter()
    while True:
        time.sleep(cold_idle_ms / 1000.0)
        idle.append(_timed(plain, feeds))
        busy += [_timed(plain, feeds) for _ in range(per_block)]
        profiled.run(None, feeds)          # the switch run: the other session's threads settle
        labels.append(None)
        for _ in range(per_block):
            walls.append(_timed(profiled, feeds))
            labels.append(batch)
        if len(busy) >= repeat_runs and len(idle) >= cold_runs:
            break
        if len(busy) >= min_runs and time.perf_counter() - t0 >= max_seconds:
            break
    return {"first": first, "busy": busy, "idle": idle, "walls": walls, "utc": _utc_now(), "load": load,
            "per_block": per_block}


def _parse_trace(events: list, labels: list) -> dict:
    """Per measured run: model_run duration and kernel events, grouped by batch label."""
    runs = sorted((e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
                  key=lambda e: e["ts"])
    if len(runs) != len(labels):
        raise RuntimeError(f"onnxruntime trace holds {len(runs)} model_run events; expected {len(labels)}")
    starts = [r["ts"] for r in runs]
    per_run = [[] for _ in runs]
    for e in events:
        if e.get("cat") != "Node" or not str(e.get("name", "")).endswith("_kernel_time"):
            continue
        k = bisect.bisect_right(starts, e["ts"]) - 1
        if k >= 0 and e["ts"] <= runs[k]["ts"] + runs[k]["dur"]:
            per_run[k].append(e)
    out: dict[int, list] = defaultdict(list)
    for run, label, kernels in zip(runs, labels, per_run):
        if label is not None:
            out[label].append((run["dur"] * 1000, sorted(kernels, key=lambda e: e["ts"])))
    return out


def _kernel_table(runs: list, mapping: dict) -> tuple[list[dict], list[int], int]:
    """Per-kernel stats over runs; also the kernel sum of each run and the largest pool seen."""
    order: list[tuple[str, str]] = []
    info: dict[tuple[str, str], dict] = {}
    per_run_dur: dict[tuple[str, str], list[int]] = defaultdict(list)
    per_run_calls: dict[tuple[str, str], list[int]] = defaultdict(list)
    sums = []
    max_pool = 1
    for _, events in runs:
        durs: dict = defaultdict(int)
        calls: dict = defaultdict(int)
        for e in events:
            args = e.get("args", {})
            name = e["name"][: -len("_kernel_time")]
            key = (name, args.get("op_name", ""))
            if key not in info:
                order.append(key)
                info[key] = {"provider": args.get("provider", ""), "pool": [], "sections": []}
            tss = args.get("thread_scheduling_stats") or {}
            pool = 1 + len(tss.get("sub_threads") or {}) if tss else 1
            info[key]["pool"].append(pool)
            info[key]["sections"].append(len((tss.get("main_thread") or {}).get("block_size") or []))
            max_pool = max(max_pool, pool)
            durs[key] += int(e["dur"]) * 1000
            calls[key] += 1
        sums.append(sum(durs.values()))
        for key in info:
            per_run_dur[key].append(durs.get(key, 0))
            per_run_calls[key].append(calls.get(key, 0))
    median_sum = float(np.median(sums)) if sums else 0.0
    table = []
    for key in order:
        name, op = key
        m = mapping["kernels"].get(name)
        dur = stats(per_run_dur[key])
        table.append({
            "name": name, "op_type": op or (m["op_type"] if m else ""),
            "domain": m["domain"] if m else "", "provider": info[key]["provider"],
            "kind": m["kind"] if m else "unmapped", "covers": list(m["covers"]) if m else [],
            "in_optimized_graph": m is not None,
            "calls_per_run": int(np.median(per_run_calls[key])),
            "dur_ns": dur, "share_pct": _pct(dur["median"], median_sum),
            "pool_threads": int(max(info[key]["pool"])),
            "parallel_sections_per_call": float(np.median(info[key]["sections"])),
        })
    return table, sums, max_pool


def measure(workload, batch_sizes=(1,), intra_op_threads: int | None = None,
            warmup_runs: int = DEFAULTS["warmup_runs"], repeat_runs: int = DEFAULTS["repeat_runs"],
            seed: int = 0, *, min_runs: int = DEFAULTS["min_runs"], max_seconds: float = DEFAULTS["max_seconds"],
            cold_runs: int = DEFAULTS["cold_runs"], cold_idle_ms: float = DEFAULTS["cold_idle_ms"]) -> dict:
    """Measure ``workload`` at each batch size on this machine; the profile dict (not saved)."""
    source = f"workload {workload.name}"
    batches = _check_batches(batch_sizes, source)
    threads = _check_threads(intra_op_threads, source)
    for label, value, low in (("warmup_runs", warmup_runs, 0), ("repeat_runs", repeat_runs, 1),
                              ("min_runs", min_runs, 1), ("cold_runs", cold_runs, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise InputError(f"{source}: {label} = {value!r}: expected an integer >= {low}")
    if not (max_seconds > 0 and cold_idle_ms >= 0):
        raise InputError(f"{source}: max_seconds = {max_seconds!r}, cold_idle_ms = {cold_idle_ms!r}: expected "
                         f"max_seconds > 0 and cold_idle_ms >= 0")
    min_runs = min(min_runs, repeat_runs)
    model, renamed = _named_model(workload.model)
    for b in batches:
        _check_batch_dim(model, b, source)
    feeds = {b: make_feeds(model, b, seed=seed, source=source) for b in batches}
    model_bytes = model.SerializeToString()
    settings = {"warmup_runs": int(warmup_runs), "repeat_runs": int(repeat_runs), "min_runs": int(min_runs),
                "max_seconds": float(max_seconds), "cold_runs": int(cold_runs),
                "cold_idle_ms": float(cold_idle_ms), "seed": int(seed)}

    # two sessions from the same bytes, measured in interleaved rounds (module docstring)
    clean: dict[int, dict] = {}
    labels: list = []        # batch size of each profiled run, None for warm-up runs
    with tempfile.TemporaryDirectory(prefix="sim-cpu-profile-") as tmp:
        opt_path = os.path.join(tmp, "optimized.onnx")
        plain = _session(model_bytes, threads)
        profiled = _session(model_bytes, threads, profile_prefix=os.path.join(tmp, "trace"),
                            optimized_path=opt_path)
        for b in batches:
            clean[b] = _measure_batch(plain, profiled, feeds[b], b, labels, warmup_runs, repeat_runs, min_runs,
                                      max_seconds, cold_runs, cold_idle_ms)
        del plain
        trace_path = profiled.end_profiling()
        with open(trace_path, encoding="utf-8") as fh:
            events = json.load(fh)
        optimized = onnx.load(opt_path, load_external_data=False)
        del profiled
    mapping = map_kernels(model, optimized)
    traced = _parse_trace(events, labels)

    entries = {}
    for b in batches:
        runs = traced[b]
        model_run = [d for d, _ in runs]
        kernels, sums, max_pool = _kernel_table(runs, mapping)
        busy, idle = stats(clean[b]["busy"]), stats(clean[b]["idle"])
        prof_wall = stats(clean[b]["walls"])
        mr, ks = stats(model_run), stats(sums)
        entries[str(b)] = {
            "measured_utc": clean[b]["utc"],
            "settings": {**settings, "runs_per_block": clean[b]["per_block"]},
            "end_to_end": {"clean_busy_ns": busy, "clean_idle_ns": idle, "first_run_ns": int(clean[b]["first"]),
                           "profiled_model_run_ns": mr, "profiled_wall_ns": prof_wall},
            "kernel_sum_ns": ks,
            "gap": {"model_run_minus_kernel_sum_ns": stats(m - s for m, s in zip(model_run, sums)),
                    "model_run_minus_kernel_sum_pct": _pct(mr["median"] - ks["median"], mr["median"]),
                    "clean_minus_kernel_sum_ns": busy["median"] - ks["median"],
                    "clean_minus_kernel_sum_pct": _pct(busy["median"] - ks["median"], busy["median"])},
            "profiler_overhead": {"ns": prof_wall["median"] - busy["median"],
                                  "pct": _pct(prof_wall["median"] - busy["median"], busy["median"])},
            "idle_penalty": {"ns": idle["median"] - busy["median"],
                             "pct": _pct(idle["median"] - busy["median"], busy["median"])},
            "intra_op_pool_threads": int(max_pool),
            "load_average_1min": clean[b]["load"],
            "kernels": kernels,
        }

    fp = fingerprint(intra_op_threads=threads, inter_op_threads=0, execution_mode=EXECUTION_MODE,
                     graph_optimization_level=OPT_LEVEL)
    now = _utc_now()
    return {
        "schema": SCHEMA,
        "doc": DOC,
        "workload": {"name": workload.name, "mlperf_model": workload.mlperf_model, "sha256": workload.sha256},
        "fingerprint": fp,
        "fingerprint_hash": fingerprint_hash(fp),
        "created_utc": now,
        "updated_utc": now,
        "graph": {
            "original_nodes": len(model.graph.node),
            "optimized_nodes": len(optimized.graph.node),
            "optimized_op_types": dict(sorted(Counter(n.op_type for n in optimized.graph.node).items())),
            "renamed_nodes": bool(renamed),
            "heuristic": HEURISTIC,
            "kernels": {name: mapping["kernels"][name] for name in mapping["order"]},
            "uncovered": mapping["uncovered"],
        },
        "batches": entries,
    }


# ---------------------------------------------------------------------------
# the cache
# ---------------------------------------------------------------------------

def profile_path(workload, threads: int | None = None, cache_dir=None) -> Path:
    """``<cache>/profiles/<workload>-<sha256[:12]>-<fingerprint hash>.json`` for this machine."""
    from sim.workload import catalog as workloads

    threads = _check_threads(threads, f"workload {workload.name}")
    fp = fingerprint(intra_op_threads=threads, inter_op_threads=0, execution_mode=EXECUTION_MODE,
                     graph_optimization_level=OPT_LEVEL)
    base = Path(cache_dir) if cache_dir is not None else workloads.cache_dir()
    return base / "profiles" / f"{workload.name}-{workload.sha256[:12]}-{fingerprint_hash(fp)}.json"


def _ensure_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InputError(f"{folder}: profile cache folder is not writable ({exc.strerror or exc}); expected a "
                         f"writable folder (pass cache_dir / --cache-dir or set SIM_CACHE_DIR)") from None


def load_profile(path) -> dict:
    """Read a profile JSON file, checking its schema."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; expected a CPU profile JSON file") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not readable as JSON ({exc}); expected a CPU profile JSON file") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        got = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise InputError(f"{path}: field 'schema' = {got!r}: expected {SCHEMA!r}")
    return data


def load_or_measure(workload, batch_sizes=(1,), threads: int | None = None, cache_dir=None,
                    remeasure: bool = False, **measure_options) -> dict:
    """The cached profile for this workload and machine, measuring batch sizes it lacks.

    ``remeasure=True`` measures every requested batch size again (other cached batch
    sizes are kept). ``measure_options`` go to ``measure`` (warmup_runs, repeat_runs, ...).
    """
    source = f"workload {workload.name}"
    batches = _check_batches(batch_sizes, source)
    threads = _check_threads(threads, source)
    path = profile_path(workload, threads, cache_dir)
    _ensure_writable(path.parent)
    cached = None
    if path.exists():
        try:
            cached = load_profile(path)
        except InputError:
            cached = None   # a damaged cache entry is measured again and replaced
        if cached is not None and (cached.get("workload", {}).get("sha256") != workload.sha256
                                   or not isinstance(cached.get("batches"), dict)):
            cached = None
    have = set(cached["batches"]) if cached is not None else set()
    missing = batches if remeasure else [b for b in batches if str(b) not in have]
    if not missing:
        return cached
    fresh = measure(workload, missing, intra_op_threads=threads, **measure_options)
    if cached is not None:
        merged = dict(cached)
        merged["batches"] = {**cached["batches"], **fresh["batches"]}
        for key in ("fingerprint", "fingerprint_hash", "graph", "workload", "schema", "doc"):
            merged[key] = fresh[key]
        merged["updated_utc"] = fresh["updated_utc"]
        fresh = merged
    fresh["batches"] = dict(sorted(fresh["batches"].items(), key=lambda kv: int(kv[0])))
    atomic.write_json(path, fresh)
    return fresh


# ---------------------------------------------------------------------------
# the cost model
# ---------------------------------------------------------------------------

class CpuProfileCost:
    """Service time from a measured profile: linear in batch between measured batch sizes.

    ``service_time_ns(batch)`` uses the median clean back-to-back time (``clean_busy_ns``),
    ``service_time_ns(batch, idle=True)`` the median time after idling (``clean_idle_ns``).
    A batch outside the measured range is an error: there is no calibration data for it.
    """

    random = False

    def __init__(self, profile: dict, source: str | None = None):
        if not isinstance(profile, dict) or profile.get("schema") != SCHEMA:
            got = profile.get("schema") if isinstance(profile, dict) else type(profile).__name__
            raise InputError(f"{source or 'cpu profile'}: field 'schema' = {got!r}: expected {SCHEMA!r}")
        name = (profile.get("workload") or {}).get("name", "?")
        self.source = source or f"cpu profile of {name}"
        points = []
        for key, entry in (profile.get("batches") or {}).items():
            try:
                e2e = entry["end_to_end"]
                points.append((int(key), int(e2e["clean_busy_ns"]["median"]), int(e2e["clean_idle_ns"]["median"])))
            except (KeyError, TypeError, ValueError):
                raise InputError(f"{self.source}: field 'batches.{key}.end_to_end' = {entry!r:.80}: expected "
                                 f"clean_busy_ns and clean_idle_ns medians") from None
        if not points:
            raise InputError(f"{self.source}: field 'batches' is empty: expected at least one measured batch size")
        points.sort()
        self.batch_sizes = tuple(p[0] for p in points)
        self._busy = [p[1] for p in points]
        self._idle = [p[2] for p in points]

    def service_time_ns(self, batch: int, idle: bool = False, rng=None) -> int:
        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch <= 0:
            raise InputError(f"{self.source}: batch size {batch!r}: expected an integer >= 1")
        batch = int(batch)
        lo, hi = self.batch_sizes[0], self.batch_sizes[-1]
        if batch < lo or batch > hi:
            wanted = ",".join(str(b) for b in sorted(set(self.batch_sizes) | {batch}))
            raise InputError(f"{self.source}: batch {batch} outside measured range [{lo}, {hi}]; re-profile "
                             f"with --batch-sizes {wanted}")
        values = self._idle if idle else self._busy
        k = bisect.bisect_left(self.batch_sizes, batch)
        if self.batch_sizes[k] == batch:
            return values[k]
        b0, b1 = self.batch_sizes[k - 1], self.batch_sizes[k]
        v0, v1 = values[k - 1], values[k]
        return round(Fraction(v0 * (b1 - batch) + v1 * (batch - b0), b1 - b0))

    def describe(self) -> str:
        sizes = ",".join(str(b) for b in self.batch_sizes)
        return f"measured CPU profile ({self.source}), batch sizes {sizes}, linear between them"


# ---------------------------------------------------------------------------
# text summary
# ---------------------------------------------------------------------------

def _ms(ns) -> str:
    return f"{ns / 1e6:.3f}"


def summarise(profile: dict, top_kernels: int = 12) -> str:
    """A readable text report: machine, graph fusions, end-to-end table, top kernels."""
    w, fp, g = profile["workload"], profile["fingerprint"], profile["graph"]
    threads = fp["intra_op_threads"] or "default"
    lines = [
        f"CPU profile of {w['name']} (model sha256 {w['sha256'][:12]}), schema {profile['schema']}",
        f"machine: {fp['cpu_model']}, {fp['logical_cores']} logical / {fp['physical_cores']} physical cores "
        f"({fp['usable_cores']} usable); onnxruntime {fp['onnxruntime']}, {fp['graph_optimization_level']}, "
        f"{fp['execution_mode']}, intra-op threads {threads}; fingerprint {profile['fingerprint_hash']}",
    ]
    kinds = Counter(k["kind"] for k in g["kernels"].values())
    ops = ", ".join(f"{op} x{n}" for op, n in sorted(g["optimized_op_types"].items(), key=lambda kv: -kv[1]))
    lines.append(f"graph: {g['original_nodes']} original nodes -> {g['optimized_nodes']} kernels "
                 f"({kinds.get('fused', 0)} fused, {kinds.get('single', 0)} single, "
                 f"{kinds.get('inserted', 0)} inserted): {ops}")
    unc = g["uncovered"]
    lines.append("uncovered original nodes: " + (", ".join(f"{k} {len(v)}" for k, v in unc.items() if v) or "none"))
    lines.append("")
    header = (f"{'batch':>5} {'busy ms':>9} {'p10-p90':>17} {'idle ms':>9} {'prof run ms':>11} {'kernels ms':>10} "
              f"{'gap ms':>8} {'gap %':>6} {'clean gap %':>11} {'prof ovh %':>10} {'runs':>5}")
    lines += ["end to end (busy/idle: no profiler; prof run: profiler's model_run; gap: model_run - kernel sum)",
              header, "-" * len(header)]
    for key, e in profile["batches"].items():
        ee = e["end_to_end"]
        busy = ee["clean_busy_ns"]
        lines.append(
            f"{key:>5} {_ms(busy['median']):>9} {_ms(busy['p10']) + '-' + _ms(busy['p90']):>17} "
            f"{_ms(ee['clean_idle_ns']['median']):>9} {_ms(ee['profiled_model_run_ns']['median']):>11} "
            f"{_ms(e['kernel_sum_ns']['median']):>10} {_ms(e['gap']['model_run_minus_kernel_sum_ns']['median']):>8} "
            f"{e['gap']['model_run_minus_kernel_sum_pct']:>6.1f} {e['gap']['clean_minus_kernel_sum_pct']:>11.1f} "
            f"{e['profiler_overhead']['pct']:>10.1f} {busy['n']:>5}")
    noisy = []
    for key, e in profile["batches"].items():
        busy = e["end_to_end"]["clean_busy_ns"]
        if busy["p10"] > 0 and busy["p90"] / busy["p10"] > NOISY_SPREAD:
            noisy.append(f"{key} (p90/p10 {busy['p90'] / busy['p10']:.2f}, load {e.get('load_average_1min')})")
    if noisy:
        lines.append(f"note: wide spread at batch {', '.join(noisy)}; other work on the machine? "
                     f"consider --remeasure on a quiet machine")
    if profile["batches"] and top_kernels:
        key = next(iter(profile["batches"]))
        ks = sorted(profile["batches"][key]["kernels"], key=lambda k: -k["dur_ns"]["median"])[:top_kernels]
        lines += ["", f"top kernels at batch {key} (median us per run, p10-p90, share of kernel sum)"]
        for k in ks:
            d = k["dur_ns"]
            covers = ",".join(k["covers"]) if len(k["covers"]) <= 4 else \
                ",".join(k["covers"][:3]) + f",...(+{len(k['covers']) - 3})"
            lines.append(f"  {k['name'][:34]:<34} {k['op_type'][:18]:<18} {d['median'] / 1e3:>9.1f} "
                         f"{d['p10'] / 1e3:>8.1f}-{d['p90'] / 1e3:<8.1f} {k['share_pct']:>5.1f}%  "
                         f"[{covers or 'inserted'}]")
    return "\n".join(lines)
