"""An LLM benchmark run end to end: settings -> equal-issue traffic -> lengths -> engine -> LoadGen's
token metrics; Little's law, determinism, the default system, the command line and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sim import cli
from sim.cost.llm_device import DEVICES
from sim.errors import InputError
from sim.paths import REPO_ROOT
from sim.run_llm import LLMSystem, capacity_estimate, default_llm_system, load_llm_system, simulate_llm_run
from sim.workload import llm

# a short run: a loaded set of 256 samples, 20 s simulated (equal issue pads to whole passes)
SHORT = {"performance_sample_count_override": 256, "min_query_count": 1, "min_duration_ns": 20_000_000_000}


@pytest.fixture(scope="module")
def server_run():
    return simulate_llm_run("Server", "llama2-70b", overrides={**SHORT, "server_target_qps": 15.0}, trace=True)


def test_server_run_is_valid_and_conserves_samples_and_tokens(server_run):
    r = server_run
    m, e = r.metrics, r.engine
    assert m.valid and r.verdict_reason() == ""
    n = len(r.scheduled_ns)
    assert n % 256 == 0 and n >= 15 * 20                     # whole passes over the loaded set
    assert m.sample_count == n and m.token_count == int(r.output_tokens.sum()) == int(e.n_tokens.sum())
    assert (e.first_token_ns >= r.scheduled_ns).all() and (e.complete_ns >= e.first_token_ns).all()
    assert int(e.trace.decode_seqs.sum()) + int((r.output_tokens > 0).sum()) >= int(r.output_tokens.sum())


def test_littles_law(server_run):
    r = server_run
    m, e = r.metrics, r.engine
    span_ns = float(e.complete_ns.max() - r.scheduled_ns.min())
    latency = (e.complete_ns - r.scheduled_ns).astype(float)
    lam_w = len(latency) / span_ns * latency.mean()                         # arrival rate x mean time in system
    tr = e.trace
    decoding = float((tr.decode_seqs * tr.duration_ns).sum()) / span_ns    # time-average decoding sequences (steps)
    decode_w = len(latency) / span_ns * float((e.complete_ns - e.first_token_ns).mean())
    assert e.preemptions == 0
    assert decoding == pytest.approx(decode_w, rel=0.01)                    # L = lambda W over the decode phase
    assert lam_w == pytest.approx(decoding, rel=0.05)                       # TTFT is a small part of the latency
    assert lam_w > 30                                                       # many sequences in flight
    # LoadGen's own figures obey it too (completed samples/s x mean latency = tokens/s x mean TPOT)
    assert m.samples_per_second * m.sample_latency.mean_ns == pytest.approx(m.tokens_per_second * m.tpot.mean_ns,
                                                                            rel=0.05)


def test_same_sample_index_same_lengths_and_runs_are_deterministic(server_run):
    r = server_run
    idx = r.traffic.sample_index
    first = {}
    for i, s in enumerate(idx):
        if s in first:
            j = first[s]
            assert r.input_tokens[i] == r.input_tokens[j] and r.output_tokens[i] == r.output_tokens[j]
        else:
            first[s] = i
    assert len(first) < len(idx)                                           # some samples were issued twice
    again = simulate_llm_run("Server", "llama2-70b", overrides={**SHORT, "server_target_qps": 15.0})
    assert (again.engine.complete_ns == r.engine.complete_ns).all()


def test_offline_tokens_per_second():
    r = simulate_llm_run("Offline", "llama3.1-8b", overrides={"performance_sample_count_override": 256,
                                                              "min_query_count": 512, "min_duration_ns": 0})
    m = r.metrics
    assert m.valid and len(r.scheduled_ns) == 512
    assert m.tokens_per_second == pytest.approx(512 * 128 / (r.engine.complete_ns.max() / 1e9), rel=1e-9)
    assert any("offline_expected_qps" in n for n in r.notes)


def test_interactive_uses_the_interactive_limits():
    r = simulate_llm_run("Interactive", "llama2-70b", overrides={**SHORT, "server_target_qps": 2.0})
    assert r.settings.model == "llama2-70b-interactive" and r.settings.scenario == "Server"
    assert r.settings.server_ttft_latency_ns == 450_000_000 and r.settings.server_tpot_latency_ns == 40_000_000


def test_unsustainable_target_is_invalid_with_its_reason():
    wl = llm.load("llama2-70b")
    system = default_llm_system(wl)
    cap = capacity_estimate(wl, system, system.cost(wl.model))["samples_per_second"]
    r = simulate_llm_run("Server", wl, overrides={**SHORT, "server_target_qps": 3 * cap})
    assert not r.metrics.valid
    reason = r.verdict_reason()
    assert reason.startswith("INVALID: TTFT p99") and "\n" not in reason
    assert any("above the system's estimated capacity" in n for n in r.notes)


def test_default_system_holds_the_model_and_says_so():
    s70 = default_llm_system(llm.load("llama2-70b"))
    assert s70.device.name == "h100-sxm" and s70.devices == 8 and "no --system given" in s70.default_note
    # DeepSeek-R1's 671 GB of FP8 weights exceed 8 x 80 GB: the default moves to H200
    sds = default_llm_system(llm.load("deepseek-r1"))
    assert sds.device.name == "h200-sxm" and sds.tp == 8


def test_kv_capacity_from_memory():
    wl = llm.load("llama2-70b")
    s = LLMSystem(name="x", device=DEVICES["h100-sxm"], tp=4, replicas=2, activation_reserve_bytes=4e9)
    free = 4 * 80e9 * 0.9 - 2 * 68_976_648_192 - 4 * 4e9
    assert s.kv_blocks_for(wl.model) == int(free // (327_680 * 16))


def test_kv_cache_too_small_for_one_sequence_is_refused(tmp_path):
    p = tmp_path / "tiny.yaml"
    p.write_text("kind: llm\ndevice: h100-sxm\ntp: 8\nkv_blocks: 127\n")     # 2,032 tokens < 1,023 + 1,024 - 1
    with pytest.raises(InputError, match="longest sequence.*could never run") as e:
        simulate_llm_run("Server", "llama2-70b", system=load_llm_system(p),
                         overrides={**SHORT, "server_target_qps": 1.0})
    assert "\n" not in str(e.value)


def test_weights_that_do_not_fit_are_refused(tmp_path):
    p = tmp_path / "one.yaml"
    p.write_text("kind: llm\ndevice: h100-sxm\ntp: 1\n")
    with pytest.raises(InputError, match="no room for a KV block"):
        load_llm_system(p).kv_blocks_for(llm.load("llama2-70b").model)


@pytest.mark.parametrize("text,match", [
    ("device: h900\n", "field 'device' = 'h900'"),
    ("device: h100-sxm\ntp: 0\n", "field 'tp' = 0"),
    ("device: h100-sxm\nbatch: 4\n", "unknown field 'batch'"),
    ("device: h100-sxm\nroofline: {memory_efficiency: 2}\n", "roofline.memory_efficiency"),
    ("device: h100-sxm\nprecision: fp3\n", "field 'precision' = 'fp3'"),
    ("tp: 2\n", "field 'device' is missing"),
])
def test_bad_llm_system_file(tmp_path, text, match):
    p = tmp_path / "s.yaml"
    p.write_text(text)
    with pytest.raises(InputError, match=match) as e:
        load_llm_system(p)
    assert str(p) in str(e.value)


def test_lengths_beyond_context_are_refused(tmp_path):
    p = tmp_path / "lens.csv"
    p.write_text("input_tokens,output_tokens\n4000,200\n")
    with pytest.raises(InputError, match="context of 4,096"):
        simulate_llm_run("Server", "llama2-70b", overrides={**SHORT, "server_target_qps": 1.0}, lengths_csv=str(p))


def test_server_needs_a_target():
    with pytest.raises(InputError, match="--qps"):
        simulate_llm_run("Server", "llama2-70b", overrides=SHORT)


def test_command_line_run_trace_and_outputs(tmp_path, capsys):
    trace = tmp_path / "t.json"
    rc = cli.main(["run", "--workload", "llama3.1-8b", "--scenario", "Server", "--qps", "20",
                   "--min-duration-ms", "30000", "--min-query-count", "1", "--out", str(tmp_path / "o"),
                   "--trace", str(trace), "--user-conf", _conf(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "no --system given" in out and "Completed tokens per second" in out and "verdict: VALID" in out
    result = json.loads((tmp_path / "o" / "result.json").read_text())
    assert result["result"]["valid"] and result["default_system"]
    events = json.loads(trace.read_text())["traceEvents"]
    steps = [e for e in events if e.get("cat") == "step"]
    assert len(steps) == result["steps"]


def _conf(tmp_path):
    p = tmp_path / "user.conf"
    p.write_text("llama3_1-8b.*.performance_sample_count_override = 128\n")
    return str(p)


def test_command_line_search_finds_a_peak(tmp_path, capsys):
    rc = cli.main(["search", "--workload", "llama3.1-8b", "--repeats", "1", "--rel-tol", "0.1",
                   "--min-duration-ms", "10000", "--min-query-count", "1", "--user-conf", _conf(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0 and "peak VALID Server QPS (TTFT and TPOT limits)" in out


def test_command_line_bad_input_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmlperf_model: llama2-70b\nsource: s\nmodel: {layers: 2}\ndataset: null\n")
    rc = cli.main(["run", "--workload", str(bad), "--scenario", "Offline"])
    err = capsys.readouterr().err
    assert rc == 2 and "field 'model.hidden_size' is missing" in err and err.count("\n") == 1


def test_plots_of_token_latencies_and_load(server_run, tmp_path):
    from sim.apps.llm_plots import token_latency_cdf, token_samples_ns, tokens_vs_load

    ttft, tpot = token_samples_ns(server_run)
    m = server_run.metrics
    assert int(np.sort(ttft)[int(len(ttft) * 0.99)]) == m.ttft_percentile_ns     # LoadGen's p99 rule
    assert int(np.sort(tpot)[int(len(tpot) * 0.99)]) == m.tpot_percentile_ns
    fig = token_latency_cdf([server_run], tmp_path / "cdf.png")
    assert len(fig.axes) == 2 and (tmp_path / "cdf.png").stat().st_size > 1000
    tokens_vs_load([(10.0, 3000.0, 1e8, 3e7, True), (20.0, 5000.0, 5e9, 9e7, False)], tmp_path / "load.svg",
                   ttft_limit_ns=2_000_000_000, tpot_limit_ns=200_000_000)
    assert (tmp_path / "load.svg").read_text().startswith("<?xml")


def test_example_system_file():
    s = load_llm_system(REPO_ROOT / "examples" / "llm-8xh100-fp8.yaml")
    m = s.model_for(llm.load("llama2-70b").model)
    assert (s.devices, s.tp, m.precision, m.kv_bytes_per_token()) == (8, 2, "fp8", 160 * 1024)
    # per replica: 2 x 80 GB x 0.9 - 69.0 GB of FP8 weights - 2 x 4 GB, over 16 tokens x 160 KiB
    assert s.kv_blocks_for(m) == int((2 * 80e9 * 0.9 - 68_976_648_192 - 8e9) // (16 * 163_840))
