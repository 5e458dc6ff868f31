"""Figures: each kind rendered once to PNG and SVG; the numbers behind them checked directly."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from sim.apps import plots
from sim.apps.peak import peak_server_qps
from sim.cost.resolve import synthetic as cost_from_spec
from sim.errors import InputError
from sim.run import simulate
from sim.sut.system import parse_system

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SETTINGS = {"min_query_count": 1000, "min_duration_ns": 100_000_000}
SYSTEM = parse_system({"name": "2x affine, dynamic batching",
                       "batching": {"policy": "dynamic", "max_batch": 8, "max_queue_delay_us": 500},
                       "accelerators": {"count": 2, "cost": {"kind": "affine", "a_us": 500, "b_us_per_sample": 50}}})
RANDOM = parse_system({"name": "1x exponential", "accelerators": {"cost": {"kind": "exponential", "mean_us": 700}}})


def run(scenario, system=SYSTEM, **extra):
    over = {**SETTINGS, **extra}
    if scenario == "Server":
        over.setdefault("server_target_qps", 1000.0)
    return simulate(scenario, workload=None, system=system, overrides=over)


def check_png(path, min_bytes=20_000):
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > min_bytes, (path, len(data))


def check_svg(path, min_bytes=10_000):
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg") and path.stat().st_size > min_bytes


def test_latency_cdf_png_and_svg(tmp_path):
    runs = [run(s, system) for system in (SYSTEM, RANDOM) for s in ("SingleStream", "MultiStream", "Server", "Offline")]
    fig = plots.latency_cdf(runs, tmp_path / "cdf")          # no suffix: both formats
    check_png(tmp_path / "cdf.png", 80_000)
    check_svg(tmp_path / "cdf.svg")
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 4
    assert not list(tmp_path.glob(".*tmp"))                   # atomic writes leave no temporary files


def test_server_p99_against_qps(tmp_path):
    peaks = {s.name: peak_server_qps(None, s, cost_from_spec(s.cost), "resnet50", None, SETTINGS, repeats=2,
                                     rel_tol=0.05) for s in (SYSTEM, RANDOM)}
    assert all(p.peak_qps > 0 for p in peaks.values())
    plots.server_p99_vs_qps(peaks, tmp_path / "p99.png", bound_ns=15_000_000)
    check_png(tmp_path / "p99.png")


def test_batch_size_sweep(tmp_path):
    series = {}
    for label, a_us, b_us in (("0.5 ms + 50 us/sample", 500, 50), ("2 ms + 20 us/sample", 2000, 20)):
        rows = []
        for batch in (1, 2, 4, 8, 16):
            system = parse_system({"batching": {"policy": "fixed", "max_batch": batch} if batch > 1 else {},
                                   "accelerators": {"cost": {"kind": "affine", "a_us": a_us,
                                                             "b_us_per_sample": b_us}}})
            r = run("Offline", system)
            rows.append((batch, r.metrics.headline_value, r.metrics.sample_latency.percentiles_ns["99.00"]))
        series[label] = rows
    plots.batch_size_sweep(series, tmp_path / "batch.svg")
    check_svg(tmp_path / "batch.svg")
    plots.batch_size_sweep(series, tmp_path / "batch.png")
    check_png(tmp_path / "batch.png")


def test_cost_against_capacity_and_its_pareto_front(tmp_path):
    entries = [("1x A", 10_000, 2_000), ("2x A", 20_000, 4_000), ("4x A", 40_000, 7_800), ("1x B", 15_000, 5_000),
               ("2x B", 30_000, 9_800), ("1x C", 8_000, 900), ("4x B", 60_000, 19_000), ("8x A", 80_000, 15_000),
               ("same as 1x B", 15_000, 5_000)]
    front = plots.pareto_front(entries)
    brute = [e for e in entries
             if not any(o[1] <= e[1] and o[2] >= e[2] and (o[1] < e[1] or o[2] > e[2]) for o in entries)]
    assert sorted(front) == sorted(brute)
    assert [e[0] for e in front] == ["1x C", "1x A", "1x B", "same as 1x B", "2x B", "4x B"]
    rng = np.random.default_rng(1)
    for _ in range(20):                                       # against brute force, with many ties
        many = [(str(i), int(c), int(q)) for i, (c, q) in enumerate(rng.integers(1, 8, size=(40, 2)))]
        brute = [e for e in many
                 if not any(o[1] <= e[1] and o[2] >= e[2] and (o[1] < e[1] or o[2] > e[2]) for o in many)]
        assert sorted(plots.pareto_front(many)) == sorted(brute)
    plots.cost_vs_capacity(entries, tmp_path / "cost.png")
    check_png(tmp_path / "cost.png")


def test_device_comparison(tmp_path):
    entries = [("gpu-a", "gpu", 40_000.0, 36_000.0, 0.45), ("asic-b", "asic", 28_000.0, 25_000.0, 0.9),
               ("cpu-c", "cpu", 60.0, None, 22.0)]                     # a missing Server value: no bar
    fig = plots.device_comparison(entries, tmp_path / "devices")
    check_png(tmp_path / "devices.png")
    check_svg(tmp_path / "devices.svg")
    ax_t, ax_l = fig.axes
    assert [t.get_text() for t in ax_t.get_yticklabels()] == ["gpu-a", "asic-b", "cpu-c"]
    widths = sorted(round(p.get_width(), 6) for p in ax_t.patches)
    assert widths == [60.0, 25_000.0, 28_000.0, 36_000.0, 40_000.0]   # five bars: the missing one is absent
    assert sorted(round(p.get_width(), 6) for p in ax_l.patches) == [0.45, 0.9, 22.0]
    with pytest.raises(InputError, match="no entries"):
        plots.device_comparison([])


def test_utilisation_over_time(tmp_path):
    r = run("Server", parse_system({"name": "4x affine", "batching": {"policy": "dynamic", "max_batch": 16,
                                                                      "max_queue_delay_us": 1000},
                                    "accelerators": {"count": 4, "instances": 2,
                                                     "cost": {"kind": "affine", "a_us": 1000,
                                                              "b_us_per_sample": 50}}}),
            server_target_qps=20_000.0, min_query_count=20_000)
    plots.utilisation(r, tmp_path / "util.png")
    check_png(tmp_path / "util.png")
    # the per-slice shares integrate to the busy time in the batch log
    b = r.engine.batches
    edges, busy = plots.busy_share(b, 4, 2, bins=50)
    width = edges[1] - edges[0]
    for d in range(4):
        sel = b["device"] == d
        assert busy[d].sum() * width * 2 == pytest.approx(float((b["end_ns"][sel] - b["start_ns"][sel]).sum()),
                                                          rel=1e-9)
    assert busy.max() <= 1 + 1e-12 and busy.min() >= 0


def test_bad_inputs_are_clear_errors(tmp_path):
    with pytest.raises(InputError, match="expected .png or .svg"):
        plots.save_figure(plots.cost_vs_capacity([("a", 1, 1)]), tmp_path / "x.jpg")
    with pytest.raises(InputError, match="no runs"):
        plots.latency_cdf([])
    with pytest.raises(InputError, match="no entries"):
        plots.cost_vs_capacity([])


def _text_boxes_inside(fig, ax) -> bool:
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    box = ax.get_window_extent(r)
    return all(box.x0 - 1 <= t.get_window_extent(r).x0 and t.get_window_extent(r).x1 <= box.x1 + 1
               and box.y0 - 1 <= t.get_window_extent(r).y0 and t.get_window_extent(r).y1 <= box.y1 + 1
               for t in ax.texts)


def test_cost_against_capacity_keeps_labels_inside_and_unfitted_apart(tmp_path):
    # a point at the origin corner and one at the far corner: their labels would leave the axes
    entries = [("tiny dsp", 5.0, 250.0), ("gpu", 70.0, 6_000.0), ("big gpu", 700.0, 94_000.0),
               ("cpu", 350.0, 9_000.0), ("card", 75.0, 27_000.0)]
    for log in (False, True):
        fig = plots.cost_vs_capacity(entries, tmp_path / f"c{log}.png", unfitted=["tiny dsp", "cpu"],
                                     unfitted_note="no fitted data", log=log)
        ax = fig.axes[0]
        assert _text_boxes_inside(fig, ax)
        legend = [t.get_text() for t in fig.legends[0].get_texts()]
        assert "no fitted data (not on the front): tiny dsp, cpu" in legend
        # the front is over the fitted options only: "tiny dsp" (5 W) would otherwise start it
        front = [c for c in ax.collections if c.get_label() == "Pareto front"][0]
        assert sorted(map(tuple, front.get_offsets().tolist())) == [(70.0, 6000.0), (75.0, 27000.0),
                                                                     (700.0, 94000.0)]
        check_png(tmp_path / f"c{log}.png")


def test_server_p99_explains_invalid_points_under_the_bound(tmp_path):
    why = "above the sustained capacity"
    series = {"dev": [(100.0, 2e6, True), (200.0, 3e6, True), (300.0, 9e6, False, 0, why), (400.0, 90e6, False)]}
    fig = plots.server_p99_vs_qps(series, tmp_path / "p.png", bound_ns=15_000_000)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert f"INVALID: {why}" in legend and "INVALID: p99 above 60 ms (drawn at the top)" in legend
    assert "VALID" in legend and "latency bound 15 ms" in legend
    ax = fig.axes[0]
    bound = [line for line in ax.lines if line.get_linestyle() == "--"][0]
    assert all(c.get_zorder() > bound.get_zorder() for c in ax.collections)      # markers over the bound line
    check_png(tmp_path / "p.png")


def test_device_comparison_legend_covers_no_bar(tmp_path):
    entries = [("a", "gpu", 40_000.0, 36_000.0, 0.45), ("b", "cpu", 30.0, None, 38.0)]   # a long latency bar last
    fig = plots.device_comparison(entries, tmp_path / "d.png")
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    legend = fig.legends[0].get_window_extent(r)
    for ax in fig.axes:
        for bar in ax.patches:
            assert not legend.overlaps(bar.get_window_extent(r))
