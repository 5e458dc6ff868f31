"""The LLM validation's parts: the ONNX model's KV cache, the real harness under the real LoadGen, the step-cost fit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sim.errors import InputError
from sim.validate import llm_calibration as lc
from sim.workload import llm


@pytest.fixture(scope="module")
def tiny():
    return llm.load("tiny-llm")


def test_config_matches_the_built_model(tiny):
    pytest.importorskip("onnx")
    from sim.validate.llm_model import build_model, weight_count

    model = build_model(tiny.model, seed=0)
    # the simulator's parameter count of the YAML is the count of the network actually built
    assert weight_count(model) == tiny.model.params().total
    again = build_model(tiny.model, seed=0)
    assert again.SerializeToString() == model.SerializeToString()          # seeded: bit for bit


def test_builder_refuses_a_shape_it_does_not_make(tiny):
    pytest.importorskip("onnx")
    from dataclasses import replace

    from sim.validate.llm_model import build_model

    with pytest.raises(InputError, match="ffn_gated"):
        build_model(replace(tiny.model, ffn_gated=True))


def test_kv_cache_decode_equals_full_recompute(tiny):
    pytest.importorskip("onnxruntime")
    from sim.validate.llm_sut import StepRunner, prompt_tokens

    cfg = tiny.model
    seq = prompt_tokens(7, 45, cfg.vocab_size)
    full = StepRunner(cfg, 4)
    # logits of every position by one full prefill (each its own call: the last token's logits)
    want = {t: full.forward([0], [seq[:t + 1]], [0])[0][0] for t in (29, 36, 40, 44)}
    cached = StepRunner(cfg, 4)
    other = prompt_tokens(8, 80, cfg.vocab_size)
    # a padded batch: a chunk of 20 beside a longer neighbour, then a chunk of 10 after a cached prefix,
    # then one-token decodes next to a neighbour with a longer context (right padding of the past)
    cached.forward([2, 0], [seq[:20], other[:33]], [0, 0])
    got = {29: cached.forward([0, 2], [other[33:50], seq[20:30]], [33, 20])[0][1]}
    for t in range(30, 45):
        logits, _ = cached.forward([2, 0, 3], [seq[t:t + 1], other[t + 20:t + 21], other[:1]], [t, t + 20, 0])
        got[t] = logits[0]
    for t, w in want.items():
        np.testing.assert_allclose(got[t], w, atol=1e-4, rtol=0)
    assert np.abs(want[44]).max() > 1e-2                                   # not a trivially zero output


def test_harness_reports_drawn_tokens_under_real_loadgen(tiny, tmp_path):
    pytest.importorskip("mlperf_loadgen")
    pytest.importorskip("onnxruntime")
    from sim.validate.process import run_in_subprocess

    spec = {"workload": "tiny-llm", "scenario": "Server", "mlperf_model": "llama2-70b", "total": 64, "seed": 3,
            "overrides": {"performance_sample_count_override": 64, "min_query_count": 12, "min_duration_ns": 0,
                          "server_target_qps": 40.0, "sample_concatenate_permutation": False,
                          "server_ttft_latency_ns": 10**10, "server_tpot_latency_ns": 10**9},
            "engine": {"max_seqs": 4, "max_step_tokens": 48, "threads": 1}, "outdir": str(tmp_path)}
    # a process of its own, as in the validation: LoadGen reads its mlperf.conf once per process
    res = run_in_subprocess("sim.validate.llm_harness", spec, tmp_path, timeout_s=300)
    assert res["errors"] == []
    run = np.load(tmp_path / "llm_run.npz")
    inp, out = tiny.sample_lengths(64, 3)
    idx = run["sample_index"]
    n = res["samples_issued"]
    assert n == res["loadgen"]["generated_query_count"] >= 12
    # every sample got its first token, then completed later, with exactly its drawn output length
    assert (run["first_ns"] > 0).all() and (run["complete_ns"] > run["first_ns"]).all()
    assert res["tokens_generated"] == int(out[idx].sum())
    # LoadGen's own log: its token count and first-token statistics come from our calls
    detail = [json.loads(line[9:]) for line in (tmp_path / "mlperf_log_detail.txt").read_text().splitlines()
              if line.startswith(":::MLLOG")]
    errors = [d for d in detail if d.get("key") == "error_runtime"]
    assert errors == []
    lg = res["loadgen"]
    ttft = (run["first_ns"] - run["issue_ns"]) / 1e6
    assert lg["result_first_token_max_latency_ns"] / 1e6 >= ttft.max() - 1.0      # from scheduled, <= issue
    tokens_s = lg["result_completed_tokens_per_second"]
    span_s = (run["complete_ns"].max() - run["issue_ns"].min()) / 1e9
    assert tokens_s == pytest.approx(out[idx].sum() / span_s, rel=0.1)
    # the steps obeyed the limits: at most max_seqs decoding, at most the token budget computed
    steps = run["step_prefill_tokens"] + run["step_decode_seqs"]
    assert steps.max() <= 48 and run["step_decode_seqs"].max() <= 4
    # prefill tokens computed = prompt tokens issued (chunks add up), one decode per token after the first
    assert run["step_prefill_tokens"].sum() == inp[idx].sum()
    assert run["step_decode_seqs"].sum() == (out[idx] - 1).sum()


def test_fit_recovers_a_known_affine_step_cost():
    truth = (150e3, 900e3, 80e3, 3.0, 700e3, 250e3, 900.0)
    rng = np.random.default_rng(1)
    rows = []
    for _ in range(60):
        pf = int(rng.choice([0, 0, 16, 48, 96]))
        attn = pf * (pf + 1) / 2 + pf * int(rng.integers(0, 64))
        ds = int(rng.integers(0 if pf else 1, 9))
        kv = int(ds * rng.integers(20, 180)) if ds else 0
        t = lc.MeasuredStepCost(truth).step_ns(pf, attn, ds, kv) * (1 + rng.normal(0, 0.005))
        rows.append((pf, attn, ds, kv, t))
    coef, quality = lc.fit(np.array(rows))
    np.testing.assert_allclose(coef, truth, rtol=0.08, atol=2e3)
    assert quality["median_abs_rel_error"] < 0.01
    cost = lc.MeasuredStepCost(coef)
    a = np.array(rows)
    np.testing.assert_allclose(cost.step_ns_array(a[:, 0], a[:, 1], a[:, 2], a[:, 3]),
                               [cost.step_ns(*r[:4]) for r in rows], rtol=1e-12)


def test_stored_calibration_is_checked(tmp_path):
    p = tmp_path / "cal.json"
    p.write_text(json.dumps({"schema": lc.SCHEMA, "coef_ns": [1, 2, -3, 0, 0, 0, 0], "workload": "x", "threads": 1}))
    with pytest.raises(InputError, match="coef_ns"):
        lc.load(p)
    with pytest.raises(InputError, match="no such file"):
        lc.load(tmp_path / "missing.json")
    rec = {"schema": lc.SCHEMA, "coef_ns": [1.0] * 7, "workload": "x", "threads": 1}
    lc.save(p, rec)
    assert lc.load(p)["coef_ns"] == [1.0] * 7


def test_twin_is_the_same_loadgen_run(tiny):
    """The simulated twin issues LoadGen's queries: same count as the wheel generates (seen in the
    harness test's log) and every sample completes with its drawn tokens."""
    from sim.validate import llm_experiment as le

    plan = le.Plan(server_queries=64, offline_samples=64)
    cost = lc.MeasuredStepCost((1e5, 1e6, 2e5, 1.0, 1e6, 3e5, 1e3))
    lim = le.limits(cost, tiny, plan)
    assert lim["Interactive"]["tpot_ns"] <= lim["Server"]["tpot_ns"]
    o = le.overrides_for("Server", plan, lim, 5.0)
    m = le.simulate_twin(tiny, "Server", o, plan, cost)
    assert m["queries"] == 64 and m["ttft_p99_ms"] >= m["ttft_mean_ms"] > 0
    off = le.simulate_twin(tiny, "Offline", le.overrides_for("Offline", plan, lim), plan, cost)
    assert off["queries"] == 1 and off["tokens_per_s"] > 0


def test_report_section_replaces_itself(tmp_path):
    from sim.validate import llm_experiment as le

    doc = tmp_path / "validation.md"
    doc.write_text("# Validation\n\nother workloads\n")
    le.write_section(doc, f"{le.SECTION_START}\nfirst\n{le.SECTION_END}\n")
    le.write_section(doc, f"{le.SECTION_START}\nsecond\n{le.SECTION_END}\n")
    text = doc.read_text()
    assert text.startswith("# Validation\n\nother workloads\n") and "second" in text and "first" not in text
    assert text.count(le.SECTION_START) == 1


def test_bisection_finds_the_boundary_within_its_resolution():
    from sim.validate import llm_experiment as le

    peak, trials = le.bisect_peak(1.0, 9.0, 4, lambda q: q <= 6.3)
    assert 6.3 - 0.5 <= peak <= 6.3 and all(ok == (q <= 6.3) for q, ok in trials)
    assert le.bisect_peak(1.0, 9.0, 4, lambda q: True)[0] == 9.0
    assert le.bisect_peak(1.0, 9.0, 4, lambda q: False)[0] == 1.0


def test_report_regeneration_keeps_the_llm_section(tmp_path):
    from sim.validate import report
    from sim.validate.llm_experiment import SECTION_END, SECTION_START
    doc = tmp_path / "validation.md"
    doc.write_text(f"# old report\n\nold text\n\n{SECTION_START}\n## LLM\n| a | b |\n{SECTION_END}\n", encoding="utf-8")
    report.write_markdown(doc, [], {}, "cmd", [])
    text = doc.read_text(encoding="utf-8")
    assert "old text" not in text
    assert text.count(SECTION_START) == 1 and text.count(SECTION_END) == 1
    assert text.index(SECTION_START) < text.index("| a | b |") < text.index(SECTION_END)
