"""Sweeps: grid expansion, stable ids and seeds, parallel runs (processes, Dask), resume after kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from sim.apps import sweep
from sim.errors import InputError

SETTINGS = {"min_query_count": 300, "min_duration_ns": 50_000_000}
DEVICES = [{"label": "fast", "kind": "affine", "a_us": 300, "b_us_per_sample": 40},
           {"label": "random", "kind": "exponential", "mean_us": 700},
           {"kind": "fixed", "time_us": 500}]


def small_grid(**axes) -> dict:
    base_axes = {"scenario": ["Server", "SingleStream", "MultiStream", "Offline"], "device": DEVICES,
                 "accelerators": [1, 2],
                 "batching": [{"policy": "none"}, {"policy": "dynamic", "max_batch": 8, "max_queue_delay_us": 500}],
                 "qps": [500, 1500]}
    base_axes.update(axes)
    return {"name": "test grid", "base": {"mlperf_model": "resnet50", "settings": dict(SETTINGS)}, "axes": base_axes}


def id_metrics(path) -> set:
    return {(r["id"], json.dumps(r["metrics"], sort_keys=True)) for r in sweep.read_records(path)}


def write_grid(tmp_path: Path, data, name: str = "grid.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data, sort_keys=False) if not isinstance(data, str) else data)
    return p


# ---- grid ----------------------------------------------------------------------------------
def test_grid_expands_the_product_and_drops_qps_outside_server():
    g = sweep.expand(small_grid(), "g")
    # Server: 3 devices x 2 counts x 2 batching x 2 QPS; the others do not repeat per QPS
    assert len(g.points) == 24 + 3 * 12
    assert g.duplicates == 3 * 12
    assert all(("qps" in p) == (p["scenario"] == "Server") for p in g.points)
    assert len(set(g.ids)) == len(g.ids)
    again = sweep.expand(small_grid(), "g")
    assert again.ids == g.ids                            # stable ids
    p = dict(g.points[0])
    assert sweep.point_id(dict(reversed(list(p.items())))) == g.ids[0]     # key order does not matter
    assert sweep.seed_of(g.ids[0]) == int(g.ids[0], 16)


def test_system_file_content_goes_into_the_point(tmp_path):
    sysfile = tmp_path / "sys.yaml"
    sysfile.write_text("name: two\naccelerators: {count: 2, cost: {kind: fixed, time_us: 100}}\n")
    grid = write_grid(tmp_path, {"base": {"system": "sys.yaml", "settings": SETTINGS},
                                 "axes": {"scenario": ["Offline"], "system.host.issue_overhead_us": [0, 5]}})
    g = sweep.load_grid(grid)
    assert g.points[0]["system"]["accelerators"]["count"] == 2
    system, cost = sweep.system_and_cost(g.points[1])
    assert system.issue_overhead_ns == 5000 and system.accelerators == 2 and cost.time_ns == 100_000
    before = g.ids
    sysfile.write_text("name: two\naccelerators: {count: 3, cost: {kind: fixed, time_us: 100}}\n")
    assert sweep.load_grid(grid).ids != before           # editing the file makes new points


@pytest.mark.parametrize("text, expected", [
    ("", "empty grid"),
    ("name: nothing\n", "no points"),
    ("axes: {scenario: []}\n", "'axes.scenario' = []: expected a non-empty list"),
    ("axes: {scenario: [Server], colour: [red]}\n", "'axes.colour'"),
    ("base: {scenario: Server, device: {kind: fixed, time_us: 1}, speed: 3}\n", "'base.speed'"),
    ("axes: {scenario: [Server]}\nextra: 1\n", "field 'extra'"),
    ("axes: {scenario: [Server, Turbo]}\n", "'axes.scenario[1]' = 'Turbo'"),
    ("axes: {scenario: [Server], device: [a100-sxmm]}\n", "or a device profile name"),
    ("axes: {scenario: [Server], device: [a100-sxm]}\n", "needs a workload the hardware model covers"),
    ("axes: {scenario: [Server], device: [{kind: warp, time_us: 1}]}\n", "accelerators.cost.kind"),
    ("axes: {scenario: [Server], device: [{kind: fixed, time_us: 1}], settings: [{min_querys: 3}]}\n",
     "min_querys"),
    ("axes: {device: [{kind: fixed, time_us: 1}]}\n", "'point 0.scenario' = None"),
    ("axes: {scenario: [Server]}\n", "no cost model"),
    ("axes: {scenario: [Server], workload: [resnet5O]}\n", "'axes.workload[0]' = 'resnet5O'"),
])
def test_bad_grids_are_clear_input_errors_and_write_nothing(tmp_path, text, expected):
    grid = write_grid(tmp_path, text)
    out = tmp_path / "results.jsonl"
    with pytest.raises(InputError) as err:
        sweep.run_sweep(grid, out, workers=1, progress=False)
    assert expected in str(err.value)
    assert str(grid) in str(err.value)
    assert not out.exists()


def test_cli_reports_grid_errors_in_one_line(tmp_path):
    grid = write_grid(tmp_path, "axes: {scenario: [Server], colour: [red]}\n")
    r = subprocess.run([sys.executable, "-m", "sim", "sweep", str(grid), "--out", str(tmp_path / "r.jsonl")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.startswith("error: ") and "'axes.colour'" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "r.jsonl").exists()


def test_unreachable_dask_scheduler_is_an_input_error(tmp_path):
    pytest.importorskip("distributed", reason="dask.distributed is not installed (pip install '.[test]')")
    out = tmp_path / "r.jsonl"
    t0 = time.perf_counter()
    with pytest.raises(InputError) as err:
        sweep.run_sweep(sweep.expand(small_grid(), "g"), out, dask="tcp://127.0.0.1:1", dask_timeout_s=2)
    assert "tcp://127.0.0.1:1" in str(err.value) and "cannot reach a Dask scheduler" in str(err.value)
    assert time.perf_counter() - t0 < 20
    assert not out.exists()


# ---- running --------------------------------------------------------------------------------
def test_records_are_complete_and_identical_across_executors(tmp_path):
    g = sweep.expand(small_grid(), "g")
    inline = sweep.run_sweep(g, tmp_path / "inline.jsonl", workers=1, progress=False)
    pool = sweep.run_sweep(g, tmp_path / "pool.jsonl", workers=2, chunk=3, progress=False)
    assert inline.ran == pool.ran == len(g.points) and not inline.errors and not pool.errors
    assert id_metrics(tmp_path / "inline.jsonl") == id_metrics(tmp_path / "pool.jsonl")
    recs = sweep.read_records(tmp_path / "pool.jsonl")
    assert {r["id"] for r in recs} == set(g.ids)
    for r in recs:
        assert r["schema"] == sweep.RECORD_SCHEMA and r["id"] == sweep.point_id(r["params"])
        assert r["seed"] == sweep.seed_of(r["id"]) and r["error"] is None
        m = r["metrics"]
        assert {"metric", "value", "valid", "latency_ns", "utilisation", "mean_batch_size"} <= set(m)
        assert 0 <= m["utilisation"] <= 1
        if r["params"]["scenario"] == "Server":
            assert m["target_qps"] == r["params"]["qps"]
    again = sweep.run_sweep(g, tmp_path / "pool.jsonl", workers=2, progress=False)
    assert again.ran == 0 and again.already_done == len(g.points)


def test_peak_search_points_record_their_trials(tmp_path):
    # (Server early stopping needs about 700 queries with none over the bound to be VALID at p99)
    g = sweep.expand({"base": {"mlperf_model": "resnet50", "settings": {**SETTINGS, "min_query_count": 1000},
                               "search": {"rel_tol": 0.05, "repeats": 2}},
                      "axes": {"scenario": ["Server"], "device": DEVICES[:1], "qps": ["peak"]}}, "g")
    s = sweep.run_sweep(g, tmp_path / "r.jsonl", workers=1, progress=False)
    (r,) = sweep.read_records(tmp_path / "r.jsonl")
    m = r["metrics"]
    assert not s.errors and m["valid"] and m["value"] > 0 and m["invalid_qps"] > m["value"]
    assert m["target_latency_ns"] == 15_000_000 and len(m["trials"]) >= 3


def test_failed_points_are_recorded_and_retried(tmp_path, monkeypatch):
    import sim.run
    real = sim.run.simulate

    def flaky(scenario, **kw):
        if scenario == "Offline":
            raise RuntimeError("boom")
        return real(scenario, **kw)

    g = sweep.expand(small_grid(accelerators=[1], batching=[{"policy": "none"}], device=DEVICES[:1]), "g")
    out = tmp_path / "r.jsonl"
    monkeypatch.setattr(sim.run, "simulate", flaky)
    s = sweep.run_sweep(g, out, workers=1, progress=False)
    assert len(s.errors) == 1 and "RuntimeError: boom" in s.errors[0]
    bad = [r for r in sweep.read_records(out) if r["error"]]
    assert len(bad) == 1 and bad[0]["metrics"] is None
    monkeypatch.setattr(sim.run, "simulate", real)
    s = sweep.run_sweep(g, out, workers=1, progress=False)
    assert s.ran == 1 and not s.errors
    assert all(r["error"] is None for r in sweep.read_records(out))       # the latest record of each id


def test_a_second_writer_is_refused(tmp_path):
    out = tmp_path / "r.jsonl"
    first = sweep.ResultsFile(out)
    first.open()
    try:
        with pytest.raises(InputError, match="another sweep is writing"):
            sweep.run_sweep(sweep.expand(small_grid(), "g"), out, workers=1, progress=False)
    finally:
        first.close()


def test_damaged_line_in_the_middle_is_an_error_not_a_silent_skip(tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_text('{"id": "a"}\nnot json\n{"id": "b"}\n')
    with pytest.raises(InputError, match="line 2 is not a sweep record"):
        sweep.run_sweep(sweep.expand(small_grid(), "g"), out, workers=1, progress=False)
    assert out.read_text() == '{"id": "a"}\nnot json\n{"id": "b"}\n'


def test_progress_bar_draws_on_the_given_stream():
    import io
    buf = io.StringIO()
    bar = sweep.ProgressBar(10, 2, label="grid", stream=buf)
    for _ in range(8):
        bar.update()
    bar.close()
    text = buf.getvalue()
    # not a terminal: plain lines, no carriage returns (a log stays readable)
    assert "grid: 10/10 points (100%)" in text and "points/s" in text and text.endswith("\n")
    assert "\r" not in text


def test_kill_9_mid_sweep_then_resume_equals_an_uninterrupted_sweep(tmp_path):
    grid_data = small_grid(settings=[{"min_query_count": 1500, "min_duration_ns": 100_000_000}])
    grid = write_grid(tmp_path, grid_data)
    reference = tmp_path / "reference.jsonl"
    sweep.run_sweep(grid, reference, workers=1, progress=False)
    total = len(sweep.read_records(reference))

    out = tmp_path / "killed.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "sim", "sweep", str(grid), "--out", str(out), "--workers", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if out.exists() and out.read_bytes().count(b"\n") >= 8:
                break
            if proc.poll() is not None:
                pytest.fail(f"the sweep ended before it could be killed: {proc.stderr.read().decode()}")
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)            # the sweep itself; its workers die with it
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    written = out.read_bytes()
    done_before = written.count(b"\n")
    assert 8 <= done_before < total, "the kill should land in the middle of the sweep"
    with open(out, "ab") as fh:                      # as if killed in the middle of writing a line
        fh.write(b'{"id": "torn", "params": {"scen')
    resumed = sweep.run_sweep(grid, out, workers=2, progress=False)
    assert resumed.already_done == done_before and resumed.ran == total - done_before
    assert id_metrics(out) == id_metrics(reference)
    assert len(sweep.read_records(out, latest=False)) == total        # no point written twice, no torn line
    assert out.read_bytes().startswith(written)                        # finished records untouched


def test_sweep_on_a_local_dask_cluster(tmp_path):
    distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed "
                                                            "(pip install '.[test]')")
    g = sweep.expand(small_grid(), "g")
    assert len(g.points) >= 50
    reference = tmp_path / "local.jsonl"
    sweep.run_sweep(g, reference, workers=1, progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster:
        out = tmp_path / "dask.jsonl"
        s = sweep.run_sweep(g, out, dask=cluster.scheduler_address, progress=False)
    assert s.ran == len(g.points) and not s.errors and "Dask" in s.executor
    assert id_metrics(out) == id_metrics(reference)


def test_device_profiles_in_a_sweep(tmp_path):
    """``device: <profile>`` runs the calibrated hardware model: a sweep point equals the
    same system simulated directly with ``sim.hw.whatif``'s cost, and more devices carry more."""
    from sim.hw import whatif
    from sim.run import simulate
    from sim.sut.system import BatchingSpec, SystemSpec

    settings = {"min_duration_ns": 200_000_000, "min_query_count": 100}
    grid = write_grid(tmp_path, {"base": {"workload": "resnet50", "settings": settings,
                                          "batching": {"policy": "fixed", "max_batch": 64}},
                                 "axes": {"scenario": ["Offline"], "device": ["t4", "l4"], "accelerators": [1, 2]}})
    out = tmp_path / "r.jsonl"
    sweep.run_sweep(grid, out, workers=1, progress=False)
    recs = {(r["params"]["device"], r["params"]["accelerators"]): r for r in sweep.read_records(out)}
    assert len(recs) == 4 and all(r["error"] is None for r in recs.values())
    for d in ("t4", "l4"):
        assert recs[(d, 2)]["metrics"]["value"] > 1.6 * recs[(d, 1)]["metrics"]["value"]
    e = whatif.engine("l4", "resnet50", "Offline", 1)
    direct = simulate("Offline", workload="resnet50", cost=e.cost, overrides=settings,
                      system=SystemSpec(batching=BatchingSpec("fixed", 64, 0.0)), seed=recs[("l4", 1)]["seed"])
    assert recs[("l4", 1)]["metrics"]["value"] == pytest.approx(direct.metrics.headline_value, rel=1e-9)
