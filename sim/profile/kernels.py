"""Which original ONNX nodes each onnxruntime kernel covers, and per-kernel times from its trace.

``named_model`` names every node before the model is given to onnxruntime, ``map_kernels``
maps the optimised graph onnxruntime saved back to the original graph, ``parse_trace``
splits the profiler's trace into measured runs and ``kernel_table`` aggregates each
kernel's time over those runs (``sim.profile.measure`` puts them together).

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
"""

from __future__ import annotations

import bisect
from collections import defaultdict

import numpy as np
import onnx

from sim.profile.schema import pct, stats

HEURISTIC = ("kernel covers ancestors(outputs) - ancestors(inputs) among input-dependent original nodes; "
             "invented tensors tied to original ones by node name (<tensor>_nchwc, kept node names, moved "
             "forward over fused residual Add / activation) and through inserted layout nodes; each original "
             "node to one kernel (same-name kernel first, else first in topological order)")

# Inserted nodes that only change a tensor's layout: their input and output stand for
# the same original tensor.
LAYOUT_OPS = {"ReorderInput", "ReorderOutput", "Transpose"}
NCHWC_SUFFIX = "_nchwc"


def named_model(model: onnx.ModelProto) -> tuple[onnx.ModelProto, bool]:
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


def parse_trace(events: list[dict], labels: list[int | None]) -> dict[int, list[tuple[int, list[dict]]]]:
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


def kernel_table(runs: list[tuple[int, list[dict]]], mapping: dict) -> tuple[list[dict], list[int], int]:
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
            "dur_ns": dur, "share_pct": pct(dur["median"], median_sum),
            "pool_threads": int(max(info[key]["pool"])),
            "parallel_sections_per_call": float(np.median(info[key]["sections"])),
        })
    return table, sums, max_pool
