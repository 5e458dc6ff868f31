"""Figures of simulated LLM runs (matplotlib on the Agg canvas, no display needed).

- ``token_latency_cdf``: the distributions of TTFT and of per-sample TPOT of one or more runs,
  each limit marked;
- ``tokens_vs_load``: completed tokens/s and the p99 TTFT and TPOT against the Server target QPS
  (points of a peak search or of a sweep), VALID and INVALID marked, the limits drawn.

Each function returns the figure and, with ``path``, writes it (``sim.apps.plots.save_figure``:
PNG or SVG by suffix).
"""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from sim.apps.plots import save_figure


def _figure(w: float, h: float) -> Figure:
    fig = Figure(figsize=(w, h), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def token_samples_ns(run) -> tuple[np.ndarray, np.ndarray]:
    """(TTFT, TPOT) per sample of an ``LLMRunResult``, ns, by LoadGen's rule (TPOT of samples with
    more than one token)."""
    from sim.loadgen.tokens import tpot_ns  # noqa: PLC0415 - only figures need it

    sched = run.scheduled_ns
    first = run.engine.first_token_ns - sched
    lat = run.engine.complete_ns - sched
    many = run.engine.n_tokens > 1
    return first, tpot_ns(lat[many], first[many], run.engine.n_tokens[many])


def token_latency_cdf(runs, path=None, *, labels=None, title: str = "Token latencies") -> Figure:
    """CDFs of TTFT (left) and TPOT (right) of each run, the p99 limits as vertical lines."""
    runs = list(runs)
    fig = _figure(10, 4)
    ax_ttft, ax_tpot = fig.subplots(1, 2)
    for i, r in enumerate(runs):
        label = labels[i] if labels else f"{r.workload.name} {r.scenario} {r.settings.server_target_qps:g} QPS"
        ttft, tpot = token_samples_ns(r)
        for ax, v in ((ax_ttft, ttft), (ax_tpot, tpot)):
            v = np.sort(v) / 1e6
            ax.plot(v, np.arange(1, len(v) + 1) / max(len(v), 1), label=label)
    if runs:
        s = runs[0].settings
        ax_ttft.axvline(s.server_ttft_latency_ns / 1e6, color="k", ls="--", label="TTFT limit (p99)")
        ax_tpot.axvline(s.server_tpot_latency_ns / 1e6, color="k", ls="--", label="TPOT limit (p99)")
    for ax, name in ((ax_ttft, "time to first token (ms)"), (ax_tpot, "time per output token (ms)")):
        ax.axhline(0.99, color="grey", lw=0.5)
        ax.set_xlabel(name)
        ax.set_ylabel("share of samples")
        ax.legend(fontsize=7)
    fig.suptitle(title)
    if path:
        save_figure(fig, path)
    return fig


def tokens_vs_load(points, path=None, *, ttft_limit_ns: int | None = None, tpot_limit_ns: int | None = None,
                   title: str = "Tokens/s and token latencies against load") -> Figure:
    """``points``: (target QPS, tokens/s, TTFT p99 ns, TPOT p99 ns, valid) tuples."""
    pts = sorted(points)
    fig = _figure(10, 4)
    ax_t, ax_l = fig.subplots(1, 2)
    if pts:
        q, tok, ttft, tpot, ok = (np.array(c) for c in zip(*pts))
        ok = ok.astype(bool)
        ax_t.plot(q, tok, color="C0")
        ax_t.scatter(q[ok], tok[ok], color="C2", label="VALID", zorder=3)
        ax_t.scatter(q[~ok], tok[~ok], color="C3", marker="x", label="INVALID", zorder=3)
        ax_l.plot(q, ttft / 1e6, "o-", label="TTFT p99")
        ax_l.plot(q, tpot / 1e6, "s-", label="TPOT p99")
    if ttft_limit_ns:
        ax_l.axhline(ttft_limit_ns / 1e6, color="C0", ls="--", label="TTFT limit")
    if tpot_limit_ns:
        ax_l.axhline(tpot_limit_ns / 1e6, color="C1", ls="--", label="TPOT limit")
    ax_t.set_xlabel("target QPS")
    ax_t.set_ylabel("completed tokens/s")
    ax_l.set_xlabel("target QPS")
    ax_l.set_ylabel("ms")
    ax_l.set_yscale("log")
    for ax in (ax_t, ax_l):
        ax.legend(fontsize=7)
    fig.suptitle(title)
    if path:
        save_figure(fig, path)
    return fig
