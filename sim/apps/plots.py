"""Figures of simulated runs and sweeps (matplotlib, no display needed).

Each function takes plain results (``RunResult`` objects, a Server peak search, lists of
tuples), draws one figure and returns it; with ``path`` it also writes the figure
(atomically), as PNG or SVG by the path's suffix, or both when the path has none.
Figures are built with ``matplotlib.figure.Figure`` on the Agg canvas, so they never
touch pyplot's global state or need a display; in a notebook the returned figure shows
itself.

- ``latency_cdf``: the latency distribution of several runs, one panel per scenario, the
  scenario's target percentile (and Server's latency bound) marked.
- ``server_p99_vs_qps``: Server p99 latency against target QPS (VALID and INVALID trials),
  with the latency bound and the peak VALID QPS marked.
- ``batch_size_sweep``: throughput and latency against batch size.
- ``cost_vs_capacity``: cost against capacity of several options, with their Pareto front
  (the options no other option beats on both cost and capacity).
- ``utilisation``: the share of time each device was busy, over simulated time, from a
  run's batch log.
- ``device_comparison``: devices side by side: Offline and Server throughput, SingleStream
  p90 latency.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, PercentFormatter

from sim.errors import InputError
from sim.loadgen.scenarios import METRIC_PERCENTILE, SCENARIOS
from sim.util import atomic

STYLE = {
    "font.size": 11, "axes.titlesize": 12.5, "axes.titleweight": "bold", "axes.labelsize": 11,
    "legend.fontsize": 9.5, "legend.framealpha": 0.9, "xtick.labelsize": 10, "ytick.labelsize": 10,
    "figure.titlesize": 14, "figure.titleweight": "bold", "axes.grid": True, "grid.alpha": 0.3,
    "axes.spines.top": False, "axes.spines.right": False, "lines.linewidth": 1.8, "figure.dpi": 100,
    "savefig.dpi": 150, "svg.fonttype": "none",
}
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f",
           "#bcbd22"]
SCENARIO_ORDER = SCENARIOS
TARGET_PERCENTILE = METRIC_PERCENTILE


def _figure(width_in: float, height_in: float) -> Figure:
    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | Path) -> list[Path]:
    """Write ``fig`` atomically: ``.png`` or ``.svg`` by suffix, both when there is no suffix."""
    path = Path(path)
    if path.suffix.lower() in (".png", ".svg"):
        targets = [path]
    elif path.suffix == "":
        targets = [path.with_suffix(".png"), path.with_suffix(".svg")]
    else:
        raise InputError(f"{path}: unknown figure format {path.suffix!r}; expected .png or .svg (or no suffix "
                         f"for both)")
    written = []
    with rc_context(STYLE):
        for target in targets:
            buf = io.BytesIO()
            fig.savefig(buf, format=target.suffix[1:].lower(), dpi=STYLE["savefig.dpi"])
            written.append(atomic.write_bytes(target, buf.getvalue()))
    return written


def _finish(fig: Figure, path) -> Figure:
    if path is not None:
        save_figure(fig, path)
    return fig


def _ms(ax_axis) -> None:
    ax_axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


# ---- latency CDF -------------------------------------------------------------------------
@dataclass
class LatencySeries:
    """Latencies of one run for ``latency_cdf``: per sample, or per query for MultiStream."""
    label: str
    scenario: str
    latency_ns: np.ndarray
    bound_ns: int | None = None          # Server's latency bound


def latencies_ns(run) -> np.ndarray:
    """The latencies a scenario is judged on: MultiStream per query, the others per sample."""
    eng = run.engine
    if run.scenario == "MultiStream":
        return eng.query_complete_ns - eng.query_scheduled_ns
    if run.scenario == "Offline":
        return eng.sample_complete_ns.copy()
    return eng.sample_complete_ns - np.repeat(eng.query_scheduled_ns, eng.samples_per_query)


def _as_series(item, k: int) -> LatencySeries:
    if isinstance(item, LatencySeries):
        return item
    if isinstance(item, tuple) and len(item) == 2:          # (label, RunResult)
        label, run = item
    else:
        label, run = None, item
    if not hasattr(run, "engine") or not hasattr(run, "scenario"):
        raise InputError(f"latency_cdf: item {k} = {type(item).__name__}: expected a RunResult, "
                         f"(label, RunResult) or LatencySeries")
    label = label or f"{run.system.name} ({run.cost_description})"
    bound = int(run.settings.target_latency_ns) if run.scenario == "Server" else None
    return LatencySeries(label, run.scenario, latencies_ns(run), bound)


def latency_cdf(runs, path=None, *, title: str = "Latency distribution by scenario") -> Figure:
    """Empirical CDFs of latency, one panel per scenario, several runs overlaid.

    ``runs``: ``RunResult`` objects, ``(label, RunResult)`` pairs or ``LatencySeries``.
    The x axis is logarithmic when latencies span more than a factor of 20.
    """
    series = [_as_series(x, k) for k, x in enumerate(runs)]
    if not series:
        raise InputError("latency_cdf: no runs; expected at least one")
    scenarios = [s for s in SCENARIO_ORDER if any(x.scenario == s for x in series)]
    cols = min(2, len(scenarios))
    rows = (len(scenarios) + cols - 1) // cols
    with rc_context(STYLE):
        fig = _figure(6.0 * cols, 4.2 * rows)
        axes = fig.subplots(rows, cols, squeeze=False).ravel()
        labels = list(dict.fromkeys(s.label for s in series))
        colour = {lab: COLOURS[i % len(COLOURS)] for i, lab in enumerate(labels)}
        for ax, scenario in zip(axes, scenarios):
            mine = [s for s in series if s.scenario == scenario]
            lo, hi = np.inf, 0.0
            for s in mine:
                lat_ms = np.sort(np.asarray(s.latency_ns, dtype=np.float64)) / 1e6
                if not len(lat_ms):
                    continue
                y = np.arange(1, len(lat_ms) + 1) / len(lat_ms)
                ax.step(lat_ms, y, where="post", color=colour[s.label], label=s.label)
                lo = min(lo, max(float(np.quantile(lat_ms, 0.01)), 1e-6))
                hi = max(hi, float(lat_ms[-1]))
            for b in sorted({s.bound_ns for s in mine if s.bound_ns}):
                ax.axvline(b / 1e6, color="black", ls="--", lw=1.3)
                ax.annotate(f"bound {b / 1e6:g} ms", xy=(b / 1e6, 0.5), xycoords=("data", "axes fraction"),
                            xytext=(-4, 0), textcoords="offset points", rotation=90, ha="right", va="center",
                            fontsize=9.5)
                hi = max(hi, b / 1e6)
            if hi > 20 * lo:
                ax.set_xscale("log")
                ax.set_xlim(left=lo / 2, right=hi * 1.5)
                _ms(ax.xaxis)
            pct = TARGET_PERCENTILE.get(scenario)
            if pct is not None:
                ax.axhline(pct, color="0.35", ls=":", lw=1.2)
                ax.annotate(f"p{pct * 100:g}", xy=(1.0, pct), xycoords=("axes fraction", "data"), xytext=(-4, -4),
                            textcoords="offset points", ha="right", va="top", fontsize=9.5, color="0.3",
                            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85})
            what = "query" if scenario == "MultiStream" else "sample"
            ax.set_title(f"{scenario}")
            ax.set_xlabel(f"{what} latency (ms)" + (", log scale" if ax.get_xscale() == "log" else ""))
            ax.set_ylabel("share of queries at or below" if what == "query" else "share of samples at or below")
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
            ax.set_ylim(0, 1.02)
        for ax in axes[len(scenarios):]:
            ax.set_visible(False)
        handles = [Line2D([], [], color=colour[lab], lw=2.2) for lab in labels]
        fig.legend(handles, labels, loc="outside lower center", ncols=1 if len(labels) < 3 else 2, frameon=False)
        fig.suptitle(title)
    return _finish(fig, path)


# ---- Server p99 against QPS ---------------------------------------------------------------
def _trials_of(x):
    """(qps, p99_ns, valid, seed_index) rows and the peak of a PeakResult or a list of tuples."""
    if hasattr(x, "trials"):            # sim.loadgen.peak_search.PeakResult
        return [(t.qps, t.p99_ns, t.valid, t.seed_index, "") for t in x.trials], (x.peak_qps or None)
    return [tuple(t)[:4] + (0,) * (4 - len(t[:4])) + (tuple(t)[4] if len(t) > 4 else "",) for t in x], None


def server_p99_vs_qps(series, path=None, *, bound_ns: int, peak_qps=None,
                      title: str = "Server: p99 latency against target QPS") -> Figure:
    """p99 sample latency of Server runs against their target QPS, bound and peak marked.

    ``series``: a ``PeakResult`` (its trials), or ``{label: PeakResult or [(qps, p99_ns,
    valid[, seed_index]), ...]}``; one panel per label. ``peak_qps``: a number or
    ``{label: number}``, taken from each ``PeakResult`` when not given. VALID runs are
    filled markers, INVALID ones hollow; the line joins the runs with the base schedule
    seed (seed index 0); runs above 4x the bound sit on the top edge as triangles. A run
    tuple may carry a fifth element, why it is INVALID although its p99 is under the bound
    (e.g. "above the sustained capacity"): such runs get a marker (a cross) and a legend
    entry of their own, so no INVALID point under the bound goes unexplained; the bound
    line is drawn under every marker.
    """
    if not isinstance(series, dict):
        series = {"Server runs": series}
    series = {k: v for k, v in series.items() if _trials_of(v)[0]}
    if not series:
        raise InputError("server_p99_vs_qps: no trials; expected a PeakResult or {label: [(qps, p99_ns, valid)]}")
    bound_ms = bound_ns / 1e6
    cols = min(3, len(series))
    rows = (len(series) + cols - 1) // cols
    with rc_context(STYLE):
        fig = _figure(7.5 if cols == 1 else 5.2 * cols, 4.8 * rows if cols == 1 else 4.4 * rows)
        axes = fig.subplots(rows, cols, squeeze=False, sharey=True).ravel()
        all_p99 = np.concatenate([np.array([t[1] for t in _trials_of(v)[0]], dtype=float) / 1e6
                                  for v in series.values()])
        top = min(max(bound_ms, float(np.nanmax(all_p99))) * 1.1, 4 * bound_ms)
        kinds_seen: set = set()
        reasons_seen: list = []
        for i, (ax, (label, data)) in enumerate(zip(axes, series.items())):
            trials, own_peak = _trials_of(data)
            c = COLOURS[i % len(COLOURS)]
            trials.sort(key=lambda t: (t[0], t[3]))
            q = np.array([t[0] for t in trials], dtype=float)
            p99 = np.array([t[1] for t in trials], dtype=float) / 1e6
            ok = np.array([bool(t[2]) for t in trials])
            base = np.array([t[3] == 0 for t in trials])
            why = np.array([str(t[4]) if not t[2] else "" for t in trials], dtype=object)
            clipped = p99 > top
            shown = np.minimum(p99, top)
            ax.plot(q[base], shown[base], color=c, lw=1.0, alpha=0.45, zorder=2)
            ax.axhline(bound_ms, color="black", ls="--", lw=1.3, zorder=1)
            other = ~ok & (why != "")
            plain = ~ok & ~other
            for sel, face, key in ((ok, c, "valid"), (plain, "white", "invalid")):
                for clip, marker in ((False, "o"), (True, "^")):
                    m = sel & (clipped == clip)
                    if m.any():
                        ax.scatter(q[m], shown[m], marker=marker, facecolors=face, edgecolors=c, s=38, lw=1.5,
                                   zorder=3, clip_on=False)
                        kinds_seen.add((key, clip))
            for reason in sorted(set(why[other])):
                m = other & (why == reason)
                ax.scatter(q[m], shown[m], marker="X", color=c, edgecolors="black", s=70, lw=0.8, zorder=4,
                           clip_on=False)
                if reason not in reasons_seen:
                    reasons_seen.append(reason)
            peak = peak_qps.get(label) if isinstance(peak_qps, dict) else (peak_qps or own_peak)
            if peak:
                ax.axvline(peak, color=c, ls="-.", lw=1.4, label=f"peak VALID {peak:,.0f} QPS")
                ax.legend(loc="upper left")
            ax.set_ylim(0, top)
            ax.set_xlim(0, max(q.max(), peak or 0) * 1.06)
            ax.set_xlabel("target QPS (queries/s)")
            if i % cols == 0:
                ax.set_ylabel("p99 sample latency (ms)")
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
            ax.set_title(label if len(series) > 1 else title)
        for ax in axes[len(series):]:
            ax.set_visible(False)
        if len(series) > 1:
            fig.suptitle(title)
        # what the markers mean, once for every panel, under them (over no point)
        grey = "0.35"
        handles = [Line2D([], [], color="black", ls="--", lw=1.3, label=f"latency bound {bound_ms:g} ms")]
        names = {("valid", False): ("o", grey, "VALID"),
                 ("invalid", False): ("o", "white", f"INVALID: p99 over the {bound_ms:g} ms bound"),
                 ("valid", True): ("^", grey, f"VALID, p99 above {top:g} ms (drawn at the top)"),
                 ("invalid", True): ("^", "white", f"INVALID: p99 above {top:g} ms (drawn at the top)")}
        for key in (("valid", False), ("invalid", False), ("valid", True), ("invalid", True)):
            if key in kinds_seen:
                marker, face, text = names[key]
                handles.append(Line2D([], [], ls="", marker=marker, markerfacecolor=face, markeredgecolor=grey,
                                      markersize=7, markeredgewidth=1.5, label=text))
        for reason in reasons_seen:
            handles.append(Line2D([], [], ls="", marker="X", markerfacecolor=grey, markeredgecolor="black",
                                  markersize=9, label=f"INVALID: {reason}"))
        fig.legend(handles=handles, loc="outside lower center", ncol=2 if len(handles) > 2 else len(handles),
                   frameon=False)
    return _finish(fig, path)


# ---- batch size ---------------------------------------------------------------------------
def batch_size_sweep(series, path=None, *, latency_name: str = "p99 latency",
                     title: str = "Throughput and latency against batch size") -> Figure:
    """Two panels against batch size: throughput (samples/s) and latency (ms).

    ``series``: ``{label: [(batch_size, throughput_per_s, latency_ns), ...]}``.
    """
    if not series:
        raise InputError("batch_size_sweep: no series; expected {label: [(batch, samples/s, latency_ns), ...]}")
    with rc_context(STYLE):
        fig = _figure(11.0, 4.5)
        ax_t, ax_l = fig.subplots(1, 2, sharex=True)
        sizes = set()
        for i, (label, rows) in enumerate(series.items()):
            rows = sorted(rows)
            b = np.array([r[0] for r in rows], dtype=float)
            sizes.update(int(x) for x in b)
            c = COLOURS[i % len(COLOURS)]
            ax_t.plot(b, [r[1] for r in rows], marker="o", color=c, label=label)
            ax_l.plot(b, np.array([r[2] for r in rows], dtype=float) / 1e6, marker="o", color=c, label=label)
        for ax in (ax_t, ax_l):
            ax.set_xscale("log", base=2)
            ax.set_xticks(sorted(sizes))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
            ax.set_xlabel("batch size (samples)")
        ax_t.set_ylabel("throughput (samples/s)")
        ax_t.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax_t.set_ylim(bottom=0)
        ax_t.set_title("Throughput")
        ax_l.set_ylabel(f"{latency_name} (ms)")
        ax_l.set_ylim(bottom=0)
        ax_l.set_title("Latency")
        ax_t.legend(loc="best")
        fig.suptitle(title)
    return _finish(fig, path)


# ---- cost against capacity ------------------------------------------------------------------
def pareto_front(entries) -> list[tuple]:
    """The entries no other entry beats: none costs less or the same and has at least the
    capacity, with one of the two strictly better (ties are all kept). Sorted by cost."""
    items = sorted(entries, key=lambda e: (e[1], -e[2]))
    front, best_cheaper = [], -np.inf
    i = 0
    while i < len(items):
        j = i
        while j < len(items) and items[j][1] == items[i][1]:
            j += 1
        group_best = items[i][2]                  # the group (same cost) is sorted by capacity, highest first
        front += [e for e in items[i:j] if e[2] == group_best and e[2] > best_cheaper]
        best_cheaper = max(best_cheaper, group_best)
        i = j
    return front


def _keep_inside(fig: Figure, ax, texts) -> None:
    """Move annotations (offset in points) that stick out of the axes back inside them."""
    fig.canvas.draw()                     # runs the layout: the axes are where they will be saved
    renderer = fig.canvas.get_renderer()
    box = ax.get_window_extent(renderer)
    to_pt = 72.0 / fig.dpi
    for t in texts:
        bb = t.get_window_extent(renderer)
        dx = max(0.0, box.x0 + 2 - bb.x0) + min(0.0, box.x1 - 2 - bb.x1)
        dy = max(0.0, box.y0 + 2 - bb.y0) + min(0.0, box.y1 - 2 - bb.y1)
        if dx or dy:
            x, y = t.xyann
            t.xyann = (x + dx * to_pt, y + dy * to_pt)


#: where a point's label may go, tried in order: (x, y) offset in points and its alignment
_LABEL_SPOTS = [((5, 4), "left", "bottom"), ((5, -4), "left", "top"), ((-5, 4), "right", "bottom"),
                ((-5, -4), "right", "top"), ((5, 14), "left", "bottom"), ((5, -14), "left", "top"),
                ((-5, 14), "right", "bottom"), ((-5, -14), "right", "top")]


def _place_labels(fig: Figure, ax, texts) -> None:
    """Each label at the first spot next to its point (``_LABEL_SPOTS``) inside the axes and
    clear of the labels placed before it; the first spot inside the axes when none is clear."""
    fig.canvas.draw()                     # runs the layout: the axes are where they will be saved
    renderer = fig.canvas.get_renderer()
    box = ax.get_window_extent(renderer)
    taken = []
    for t in texts:
        first_inside = None
        for offset, ha, va in _LABEL_SPOTS:
            t.xyann = offset
            t.set_ha(ha)
            t.set_va(va)
            bb = t.get_window_extent(renderer)
            inside = bb.x0 >= box.x0 and bb.x1 <= box.x1 and bb.y0 >= box.y0 and bb.y1 <= box.y1
            if not inside:
                continue
            first_inside = first_inside or (offset, ha, va)
            if not any(bb.overlaps(o) for o in taken):
                break
        else:
            offset, ha, va = first_inside or _LABEL_SPOTS[0]
            t.xyann = offset
            t.set_ha(ha)
            t.set_va(va)
        taken.append(t.get_window_extent(renderer))
    _keep_inside(fig, ax, texts)


def cost_vs_capacity(entries, path=None, *, cost_unit: str = "USD", capacity_unit: str = "samples/s",
                     title: str = "Cost against capacity", unfitted=(),
                     unfitted_note: str = "no fitted data", log: bool = False) -> Figure:
    """Options as points (cost, capacity), labelled, the Pareto front drawn as a step line.

    ``entries``: ``[(label, cost, capacity), ...]``. ``unfitted``: labels whose figures rest on
    no data of their own (a hardware model's priors only): drawn apart (hollow diamonds), named
    in the legend as ``unfitted_note``, and left out of the Pareto front, which is drawn over the
    others. ``log``: both axes on log scales (options spanning orders of magnitude). Every label
    is kept inside the axes; the legend sits under them, over no point.
    """
    entries = [(str(label), float(c), float(q)) for label, c, q in entries]
    if not entries:
        raise InputError("cost_vs_capacity: no entries; expected [(label, cost, capacity), ...]")
    apart = {str(u) for u in unfitted}
    fitted = [e for e in entries if e[0] not in apart]
    loose = [e for e in entries if e[0] in apart]
    front = pareto_front(fitted) if fitted else []
    on_front = {id(e) for e in front}
    with rc_context(STYLE):
        fig = _figure(8.0, 5.5)
        ax = fig.subplots()
        others = [e for e in fitted if id(e) not in on_front]
        if others:
            ax.scatter([e[1] for e in others], [e[2] for e in others], s=40, color="0.6", zorder=3,
                       label="dominated option")
        if front:
            ax.scatter([e[1] for e in front], [e[2] for e in front], s=60, color=COLOURS[1], zorder=4,
                       label="Pareto front")
        if len(front) > 1:
            ax.step([e[1] for e in front], [e[2] for e in front], where="post", color=COLOURS[1], lw=1.5,
                    alpha=0.8, zorder=2)
        if loose:
            ax.scatter([e[1] for e in loose], [e[2] for e in loose], s=55, marker="D", facecolors="white",
                       edgecolors=COLOURS[3], lw=1.5, zorder=4,
                       label=f"{unfitted_note} (not on the front): " + ", ".join(e[0] for e in loose))
        xs, ys = [e[1] for e in entries], [e[2] for e in entries]
        if log:
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlim(min(xs) / 1.6, max(xs) * 1.6)
            ax.set_ylim(min(ys) / 1.6, max(ys) * 1.6)
        else:
            ax.set_xlim(left=0, right=max(xs) * 1.15)
            ax.set_ylim(bottom=0, top=max(ys) * 1.12)
        labels: dict[tuple, list] = {}
        for e in entries:                          # options at the same point share one label
            labels.setdefault((e[1], e[2]), []).append(e)
        texts = []
        for (c, q), same in sorted(labels.items(), key=lambda kv: (-kv[0][1], kv[0][0])):
            colour = COLOURS[3] if same[0][0] in apart else ("black" if id(same[0]) in on_front else "0.4")
            texts.append(ax.annotate(" / ".join(e[0] for e in same), (c, q), xytext=(5, 4),
                                     textcoords="offset points", fontsize=9, color=colour))
        scale = " (log scale)" if log else ""
        ax.set_xlabel(f"cost ({cost_unit}){scale}")
        ax.set_ylabel(f"capacity ({capacity_unit}){scale}")
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if abs(v) >= 10 else f"{v:g}"))
        ax.set_title(title)
        fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=1 if loose else 2,
                   frameon=False)
        for t in texts:
            t.set_in_layout(False)         # the labels do not move the axes; they are moved into them
        _place_labels(fig, ax, texts)
    return _finish(fig, path)


# ---- device utilisation ------------------------------------------------------------------
def busy_share(batches: dict, accelerators: int, instances: int, bins: int = 100, end_ns: float | None = None):
    """Per device, the share of its instances' time spent busy (compute start to instance free)
    in each of ``bins`` equal slices of simulated time. Returns (bin edges ns, array devices x bins)."""
    start = np.asarray(batches["start_ns"], dtype=np.float64)
    end = np.asarray(batches["end_ns"], dtype=np.float64)
    dev = np.asarray(batches["device"], dtype=np.int64)
    t_end = float(end_ns if end_ns is not None else (end.max() if len(end) else 1.0))
    edges = np.linspace(0.0, t_end, bins + 1)
    busy = np.zeros((accelerators, bins))
    width = edges[1] - edges[0]
    for d in range(accelerators):
        s, e = start[dev == d], end[dev == d]
        if not len(s):
            continue
        # integrate the number of busy instances: it steps +1 at each start, -1 at each end
        t = np.concatenate([s, e])
        step = np.concatenate([np.ones(len(s)), -np.ones(len(e))])
        o = np.argsort(t, kind="stable")
        t, level = t[o], np.cumsum(step[o])
        area = np.concatenate([[0.0], np.cumsum(level[:-1] * np.diff(t))])      # busy time up to t[i]
        busy[d] = np.diff(np.interp(edges, t, area)) / (width * instances)
    return edges, busy


def utilisation(run, path=None, *, bins: int = 100, accelerators: int | None = None, instances: int | None = None,
                title: str | None = None) -> Figure:
    """Busy share of each device over simulated time, from the batch log of a run.

    ``run``: a ``RunResult`` (or an ``EngineResult`` / batch dict with ``accelerators``
    and ``instances`` given). Top: one row per device, coloured by busy share in each
    slice of time; bottom: the mean over all devices.
    """
    eng = getattr(run, "engine", run)
    batches = getattr(eng, "batches", eng)
    system = getattr(run, "system", None)
    if not len(batches.get("start_ns", [])):
        raise InputError("utilisation: the run has no batches; expected a run with completed work")
    accelerators = accelerators or (system.accelerators if system else int(np.max(batches["device"])) + 1)
    instances = instances or (system.instances if system else int(np.max(batches["instance"])) + 1)
    edges, busy = busy_share(batches, accelerators, instances, bins)
    unit, scale = ("s", 1e9) if edges[-1] >= 2e9 else ("ms", 1e6)
    t_end = edges[-1] / scale
    mean = busy.mean(axis=0)
    overall = float(busy.mean())
    with rc_context(STYLE):
        heat_in = min(4.0, max(1.1, 0.32 * accelerators))
        fig = _figure(9.5, heat_in + 3.0)
        ax_h, ax_m = fig.subplots(2, 1, sharex=True, height_ratios=[heat_in, 2.6])
        im = ax_h.imshow(busy, aspect="auto", origin="lower", interpolation="nearest", cmap="viridis",
                         vmin=0.0, vmax=1.0, extent=(0.0, t_end, -0.5, accelerators - 0.5))
        ax_h.grid(False)
        ax_h.set_ylabel("device")
        step = max(1, accelerators // 8)
        ax_h.set_yticks(range(0, accelerators, step))
        cb = fig.colorbar(im, ax=ax_h, pad=0.01, fraction=0.04)
        cb.set_label("busy share")
        cb.ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        cb.set_ticks([0, 0.5, 1.0])
        t_edges = edges / scale
        ax_m.fill_between(t_edges, 0, np.append(mean, mean[-1]), step="post", color=COLOURS[0], alpha=0.25, lw=0)
        ax_m.step(t_edges, np.append(mean, mean[-1]), where="post", color=COLOURS[0], lw=1.6)
        ax_m.axhline(overall, color="black", ls="--", lw=1.2)
        ax_m.annotate(f"mean over the run {overall:.0%}", xy=(1.0, overall), xycoords=("axes fraction", "data"),
                      xytext=(-4, 5), textcoords="offset points", ha="right", va="bottom", fontsize=10,
                      bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.85})
        ax_m.set_ylim(0, 1.05)
        ax_m.set_xlim(0, t_end)
        ax_m.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax_m.set_ylabel("mean busy share")
        ax_m.set_xlabel(f"simulated time ({unit}); {bins} slices of {t_end / bins:.3g} {unit}")
        scenario = getattr(run, "scenario", "")
        name = system.name if system else f"{accelerators} devices"
        per = f"{instances} instances each, " if instances > 1 else ""
        fig.suptitle(title or f"Device utilisation{' - ' + scenario if scenario else ''}: {name}")
        ax_h.set_title(f"busy = from compute start to instance free, as a share of instance time ({per}"
                       f"{accelerators} device{'s' if accelerators > 1 else ''})", fontsize=9.5, fontweight="normal",
                       color="0.3", loc="left")
    return _finish(fig, path)


# ---- devices side by side -------------------------------------------------------------------
def device_comparison(entries, path=None, *, title: str = "Devices side by side") -> Figure:
    """Two panels, one bar group per device: throughput (Offline and Server samples/s, log
    scale) and SingleStream p90 latency (ms, log scale), coloured by device kind.

    ``entries``: ``[(label, kind, offline_per_s, server_per_s, singlestream_p90_ms), ...]``;
    a missing value is ``None`` (no bar).
    """
    entries = list(entries)
    if not entries:
        raise InputError("device_comparison: no entries; expected [(label, kind, offline, server, p90_ms), ...]")
    kinds = sorted({e[1] for e in entries})
    colour = {k: COLOURS[i % len(COLOURS)] for i, k in enumerate(kinds)}
    y = np.arange(len(entries))[::-1]
    with rc_context(STYLE):
        fig = _figure(12.0, 1.2 + 0.36 * len(entries))
        ax_t, ax_l = fig.subplots(1, 2, sharey=True, gridspec_kw={"width_ratios": [1.6, 1.0]})
        h = 0.38
        for yi, (label, kind, off, srv, p90) in zip(y, entries):
            c = colour[kind]
            if off:
                ax_t.barh(yi + h / 2, off, height=h, color=c)
            if srv:
                ax_t.barh(yi - h / 2, srv, height=h, color=c, alpha=0.45, hatch="//", edgecolor="white")
            if p90:
                ax_l.barh(yi, p90, height=0.6, color=c)
        ax_t.set_yticks(y, [e[0] for e in entries])
        ax_t.set_xscale("log")
        ax_t.set_xlabel("samples/s (log scale)")
        ax_t.set_title("Throughput: Offline (solid), Server (hatched)")
        ax_t.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax_l.set_xscale("log")
        ax_l.set_xlabel("ms (log scale)")
        ax_l.set_title("SingleStream p90 latency")
        ax_l.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        # the legend in a row of its own under the axes, over no bar
        fig.legend(handles=[Patch(color=colour[k], label=k) for k in kinds], loc="outside lower center",
                   ncol=len(kinds), frameon=False, title="device kind")
        fig.suptitle(title)
    return _finish(fig, path)
