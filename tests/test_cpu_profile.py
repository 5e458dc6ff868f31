"""The measured CPU profile: onnxruntime runs of a tiny model, the kernel-to-node mapping,
the cache, and the interpolating cost model.

Timing figures are reported, not asserted, except for relations that hold by
construction (a kernel runs inside its model_run, a measured time is positive).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from sim.cost.cpu_profile import CpuProfileCost
from sim.errors import InputError
from sim.profile import kernels, store
from sim.profile.measure import measure
from sim.profile.schema import SCHEMA
from sim.util.fingerprint import fingerprint, fingerprint_hash
from sim.workload.catalog import Workload, model_sha256
from sim.workload.graphs.builder import BATCH, GraphBuilder

FAST = dict(warmup_runs=1, repeat_runs=5, min_runs=3, max_seconds=0.2, cold_runs=3, cold_idle_ms=5.0)
BATCHES = (1, 2, 3)


def tiny_model() -> onnx.ModelProto:
    """Conv+BN+Relu, a residual Conv+BN+Add+Relu, pooling and a Gemm head."""
    g = GraphBuilder("tiny", seed=1)
    x = g.input("x", [BATCH, 3, 12, 12])
    y = g.relu(g.batchnorm(g.conv(x, 3, 8, 3), 8))
    z = g.relu(g.add(g.batchnorm(g.conv(y, 8, 8, 3), 8), y))
    f = g.op("Flatten", [g.op("GlobalAveragePool", [z])], axis=1)
    g.output(g.gemm(f, 8, 10))
    return g.build()


def as_workload(model: onnx.ModelProto, tmp: Path, name: str = "tiny") -> Workload:
    path = tmp / f"{name}.onnx"
    onnx.save(model, str(path))
    return Workload(name=name, mlperf_model=name, model=model, path=path, sha256=model_sha256(model), params={})


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cpu_profile")
    w = as_workload(tiny_model(), tmp)
    cache = tmp / "cache"
    profile = store.load_or_measure(w, BATCHES, threads=None, cache_dir=cache, **FAST)
    return w, cache, profile


def test_profile_has_schema_fields_and_every_batch(measured):
    w, cache, profile = measured
    path = store.profile_path(w, None, cache)
    assert path.name == f"tiny-{w.sha256[:12]}-{profile['fingerprint_hash']}.json"
    on_disk = json.loads(path.read_text())
    assert on_disk == profile
    assert on_disk["schema"] == SCHEMA == "sim.cpu_profile/1"
    for key in ("doc", "workload", "fingerprint", "fingerprint_hash", "graph", "batches", "created_utc"):
        assert key in on_disk
    assert on_disk["workload"]["sha256"] == w.sha256
    assert sorted(int(b) for b in on_disk["batches"]) == list(BATCHES)
    for entry in on_disk["batches"].values():
        e2e = entry["end_to_end"]
        for key in ("clean_busy_ns", "clean_idle_ns", "profiled_model_run_ns", "profiled_wall_ns"):
            assert e2e[key]["median"] > 0 and e2e[key]["n"] >= 3
            assert e2e[key]["p10"] <= e2e[key]["median"] <= e2e[key]["p90"]
        assert e2e["first_run_ns"] > 0
        assert {"ns", "pct"} <= set(entry["profiler_overhead"]) and {"ns", "pct"} <= set(entry["idle_penalty"])


def test_kernels_positive_and_inside_model_run(measured):
    _, _, profile = measured
    for batch, entry in profile["batches"].items():
        for k in entry["kernels"]:
            assert k["dur_ns"]["median"] > 0, (batch, k["name"])
            assert k["calls_per_run"] == 1 and k["provider"] == "CPUExecutionProvider"
        # kernels run inside model_run (sequential executor); the profiler's clock is in
        # whole microseconds, so allow 1 us of rounding
        assert entry["gap"]["model_run_minus_kernel_sum_ns"]["median"] >= -1000
        print(f"batch {batch}: clean {entry['end_to_end']['clean_busy_ns']['median']} ns, "
              f"idle {entry['end_to_end']['clean_idle_ns']['median']} ns, "
              f"model_run {entry['end_to_end']['profiled_model_run_ns']['median']} ns, "
              f"kernel sum {entry['kernel_sum_ns']['median']} ns, gap {entry['gap']}")


def test_every_original_node_covered_once(measured):
    w, _, profile = measured
    graph = profile["graph"]
    covered = [n for k in graph["kernels"].values() for n in k["covers"]]
    uncovered = [n for names in graph["uncovered"].values() for n in names]
    names = [n.name for n in w.model.graph.node]
    assert sorted(covered + uncovered) == sorted(names)
    assert len(set(covered + uncovered)) == len(names)
    # onnxruntime fuses Conv+BatchNormalization+Relu into one kernel
    by_node = {n: k for k, v in graph["kernels"].items() for n in v["covers"]}
    assert by_node["conv_0"] == by_node["batchnormalization_0"] == by_node["relu_0"]
    assert graph["kernels"][by_node["conv_0"]]["kind"] == "fused"
    # per-batch kernel entries carry the same mapping
    for entry in profile["batches"].values():
        assert {k["name"]: k["covers"] for k in entry["kernels"] if k["in_optimized_graph"]} == \
            {k: v["covers"] for k, v in graph["kernels"].items() if k in {e["name"] for e in entry["kernels"]}}


def test_cache_is_reused_and_missing_batches_merged(measured, monkeypatch):
    w, cache, profile = measured
    path = store.profile_path(w, None, cache)
    mtime = path.stat().st_mtime_ns
    original = store.measure

    def refuse(*args, **kwargs):
        raise AssertionError("measure() called although the cache holds every batch size")

    monkeypatch.setattr(store, "measure", refuse)
    again = store.load_or_measure(w, [1, 3], threads=None, cache_dir=cache, **FAST)
    assert again == profile
    assert path.stat().st_mtime_ns == mtime

    calls = []

    def spy(workload, batch_sizes, **kwargs):
        calls.append(list(batch_sizes))
        return original(workload, batch_sizes, **kwargs)

    monkeypatch.setattr(store, "measure", spy)
    merged = store.load_or_measure(w, [2, 4], threads=None, cache_dir=cache, **FAST)
    assert calls == [[4]]
    assert sorted(int(b) for b in merged["batches"]) == [1, 2, 3, 4]
    assert merged["batches"]["1"] == profile["batches"]["1"]


def test_remeasure_runs_again(measured, monkeypatch):
    w, cache, _ = measured
    calls = []
    original = store.measure

    def spy(workload, batch_sizes, **kwargs):
        calls.append(list(batch_sizes))
        return original(workload, batch_sizes, **kwargs)

    monkeypatch.setattr(store, "measure", spy)
    again = store.load_or_measure(w, [1], threads=None, cache_dir=cache, remeasure=True, **FAST)
    assert calls == [[1]]
    assert "1" in again["batches"] and "3" in again["batches"]  # other cached batch sizes are kept


def test_unwritable_cache_is_an_input_error(tmp_path):
    w = as_workload(tiny_model(), tmp_path)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    with pytest.raises(InputError, match="not-a-folder"):
        store.load_or_measure(w, [1], threads=None, cache_dir=blocker, **FAST)
    if os.geteuid() != 0:  # root ignores permission bits
        locked = tmp_path / "locked"
        (locked / "profiles").mkdir(parents=True)
        (locked / "profiles").chmod(0o500)
        try:
            with pytest.raises(InputError, match="profiles"):
                store.load_or_measure(w, [1], threads=None, cache_dir=locked, **FAST)
        finally:
            (locked / "profiles").chmod(0o700)


@pytest.mark.parametrize("bad", [0, -2, [1, 0], [], 1.5, True])
def test_bad_batch_sizes_are_input_errors(tmp_path, bad):
    w = as_workload(tiny_model(), tmp_path)
    with pytest.raises(InputError, match="batch size|batch sizes"):
        store.load_or_measure(w, bad, threads=None, cache_dir=tmp_path / "cache", **FAST)
    with pytest.raises(InputError):
        measure(w, bad, **FAST)


def test_fixed_batch_dimension_refuses_other_batch_sizes(tmp_path):
    g = GraphBuilder("fixed")
    g.output(g.relu(g.input("x", [1, 4])))
    w = as_workload(g.build(), tmp_path, "fixed")
    with pytest.raises(InputError, match="fixed first dimension 1"):
        measure(w, [2], **FAST)


def edge_model() -> onnx.ModelProto:
    """Unnamed nodes, an Identity, a constant subgraph and a dead branch."""
    X = helper.make_tensor_value_info("x", TensorProto.FLOAT, [BATCH, 4])
    Y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [BATCH, 4])
    w = onnx.numpy_helper.from_array(np.eye(4, dtype=np.float32), "w")
    nodes = [
        helper.make_node("Constant", [], ["c1"], value=onnx.numpy_helper.from_array(np.ones(4, np.float32))),
        helper.make_node("Mul", ["c1", "c1"], ["c2"]),                 # constant subgraph
        helper.make_node("MatMul", ["x", "w"], ["m"]),                  # unnamed
        helper.make_node("Add", ["m", "c2"], ["a"], name="bias"),
        helper.make_node("Identity", ["a"], ["i"], name="ident"),
        helper.make_node("Relu", ["i"], ["y"], name="act"),
        helper.make_node("Sigmoid", ["x"], ["dead"], name="unused"),    # feeds no output
    ]
    graph = helper.make_graph(nodes, "edge", [X], [Y], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_mapping_of_folded_removed_and_unnamed_nodes(tmp_path):
    w = as_workload(edge_model(), tmp_path, "edge")
    profile = measure(w, [2], **FAST)
    graph = profile["graph"]
    assert graph["renamed_nodes"] is True
    names = [n.name for n in kernels.named_model(w.model)[0].graph.node]
    covered = [n for k in graph["kernels"].values() for n in k["covers"]]
    uncovered = graph["uncovered"]
    assert sorted(covered + [n for v in uncovered.values() for n in v]) == sorted(names)
    assert set(uncovered["constant_folded"]) == {"Constant_0", "Mul_1"}
    assert uncovered["unaccounted"] == []
    # onnxruntime 1.32 keeps and runs a node whose output nothing reads
    assert "unused" in covered or uncovered["removed"] == ["unused"]
    by_node = {n: k for k, v in graph["kernels"].items() for n in v["covers"]}
    # Identity elimination and MatMul+Add(+Relu) fusion: one kernel for four nodes
    assert by_node["MatMul_2"] == by_node["bias"] == by_node["ident"] == by_node["act"]


def _node(op, ins, outs, name, domain="", **attrs):
    return helper.make_node(op, ins, outs, name=name, domain=domain or None, **attrs)


def test_map_kernels_on_a_hand_written_nchwc_graph():
    """An NCHWc rewrite as onnxruntime writes it, checked against the expected covers.

    Original: conv_0+bn_0+relu_0, then conv_1 whose residual Add reads relu_0's output
    (the conv's own input: two input slots, one tensor), relu_1, a constant-folded
    bias (Constant, Mul) added at the end, and a dead Sigmoid the optimiser dropped.
    """
    f = TensorProto.FLOAT
    inits = [onnx.numpy_helper.from_array(np.zeros(1, np.float32), n) for n in ("W0", "W1", "B0", "B1")]
    original = helper.make_graph([
        _node("Conv", ["x", "W0"], ["c0"], "conv_0"),
        _node("BatchNormalization", ["c0", "B0", "B0", "B0", "B0"], ["b0"], "bn_0"),
        _node("Relu", ["b0"], ["r0"], "relu_0"),
        _node("Conv", ["r0", "W1"], ["c1"], "conv_1"),
        _node("Add", ["c1", "r0"], ["a0"], "add_0"),
        _node("Relu", ["a0"], ["r1"], "relu_1"),
        _node("Constant", [], ["k0"], "const", value=onnx.numpy_helper.from_array(np.ones(1, np.float32))),
        _node("Mul", ["k0", "k0"], ["k1"], "kmul"),
        _node("Add", ["r1", "k1"], ["y"], "add_k"),
        _node("Sigmoid", ["x"], ["d"], "dead"),
    ], "orig", [helper.make_tensor_value_info("x", f, None)], [helper.make_tensor_value_info("y", f, None)], inits)
    optimized = helper.make_graph([
        _node("ReorderInput", ["x"], ["t0"], "ReorderInput", "com.microsoft.nchwc"),
        _node("Conv", ["t0", "W0", "B0"], ["t1"], "r0_nchwc", "com.microsoft.nchwc", activation="Relu"),
        _node("Conv", ["t1", "W1", "B1", "t1"], ["t2"], "c1_nchwc", "com.microsoft.nchwc", activation="Relu"),
        _node("ReorderOutput", ["t2"], ["r1"], "ReorderOutput", "com.microsoft.nchwc"),
        _node("Add", ["r1", "k1"], ["y"], "add_k"),
    ], "opt", [helper.make_tensor_value_info("x", f, None)], [helper.make_tensor_value_info("y", f, None)],
        inits + [onnx.numpy_helper.from_array(np.full(1, 2.0, np.float32), "k1")])
    m = kernels.map_kernels(helper.make_model(original), helper.make_model(optimized))
    covers = {k: v["covers"] for k, v in m["kernels"].items()}
    assert covers == {"ReorderInput": [], "r0_nchwc": ["conv_0", "bn_0", "relu_0"],
                      "c1_nchwc": ["conv_1", "add_0", "relu_1"], "ReorderOutput": [], "add_k": ["add_k"]}
    assert m["uncovered"] == {"constant_folded": ["const", "kmul"], "removed": ["dead"], "unaccounted": []}
    assert [m["kernels"][k]["kind"] for k in m["order"]] == ["inserted", "fused", "fused", "inserted", "single"]


def test_fingerprint_is_stable_and_sensitive_to_threads():
    fp = fingerprint()
    for key in ("cpu_model", "logical_cores", "physical_cores", "onnxruntime", "numpy", "python", "os",
                "intra_op_threads", "inter_op_threads", "execution_mode", "graph_optimization_level"):
        assert key in fp
    assert fingerprint_hash(fp) == fingerprint_hash(dict(reversed(list(fp.items()))))
    assert len(fingerprint_hash(fp)) == 12
    assert fingerprint_hash(fingerprint(intra_op_threads=1)) != fingerprint_hash(fingerprint(intra_op_threads=2))


def synthetic_profile(points: dict[int, tuple[int, int]]) -> dict:
    return {"schema": SCHEMA, "workload": {"name": "synthetic"},
            "batches": {str(b): {"end_to_end": {"clean_busy_ns": {"median": busy}, "clean_idle_ns": {"median": idle}}}
                        for b, (busy, idle) in points.items()}}


def test_cost_interpolates_linearly_between_measured_batches():
    cost = CpuProfileCost(synthetic_profile({1: (1000, 5000), 4: (2500, 8000), 8: (4500, 9000)}))
    assert cost.batch_sizes == (1, 4, 8)
    assert [cost.service_time_ns(b) for b in range(1, 9)] == [1000, 1500, 2000, 2500, 3000, 3500, 4000, 4500]
    assert [cost.service_time_ns(b, idle=True) for b in (1, 2, 3, 4, 6, 8)] == [5000, 6000, 7000, 8000, 8500, 9000]
    assert all(isinstance(cost.service_time_ns(b), int) for b in range(1, 9))
    # rounding of a non-integer point: 1000 + (1001 - 1000) * 1/2 = 1000.5 -> nearest even
    assert CpuProfileCost(synthetic_profile({1: (1000, 1), 3: (1001, 1)})).service_time_ns(2) == 1000


def test_cost_refuses_batches_outside_measured_range():
    cost = CpuProfileCost(synthetic_profile({2: (1000, 1000), 8: (4000, 4000)}))
    expected = r"batch 16 outside measured range \[2, 8\]; re-profile with --batch-sizes 2,8,16"
    with pytest.raises(InputError, match=expected):
        cost.service_time_ns(16)
    with pytest.raises(InputError, match=r"batch 1 outside measured range \[2, 8\]"):
        cost.service_time_ns(1, idle=True)
    with pytest.raises(InputError, match="batch size 0"):
        cost.service_time_ns(0)
    with pytest.raises(InputError, match="schema"):
        CpuProfileCost({"schema": "something/else"})
    with pytest.raises(InputError, match="batches"):
        CpuProfileCost({"schema": SCHEMA, "batches": {}})


def test_cost_and_summary_from_a_real_profile(measured):
    _, _, profile = measured
    cost = CpuProfileCost(profile)
    entry = profile["batches"]["2"]["end_to_end"]
    assert cost.service_time_ns(2) == entry["clean_busy_ns"]["median"]
    assert cost.service_time_ns(2, idle=True) == entry["clean_idle_ns"]["median"]
    text = store.summarise(profile)
    assert "tiny" in text and "fused" in text
    print(text)
