"""Evaluation of a candidate: the simulated MLPerf run of a system of ``count`` devices
against the target, shared by every device kind (``_Simulated``)."""

from __future__ import annotations

import numpy as np

from sim.apps.plan.results import Candidate
from sim.apps.plan.target import Target
from sim.loadgen.scenarios import percentile_label
from sim.run import simulate
from sim.sut.system import SystemSpec

MS_SAMPLES = 8


def _busy_share(run, servers: int) -> float | None:
    b = run.engine.batches
    if not b or not len(b.get("start_ns", ())):
        return None
    busy = float(np.sum(b["end_ns"] - b["start_ns"]))
    span = float(np.max(b["end_ns"]) - np.min(run.engine.query_scheduled_ns))
    return busy / (servers * span) if span > 0 else None


def _p(run, pct: str) -> float:
    return run.metrics.sample_latency.percentiles_ns[pct] / 1e6


class _Simulated:
    """What every device kind shares: simulated runs of a system built for a count."""

    name = ""
    kind = ""
    mlperf_model = ""
    price_usd = usd_per_hour = tdp_w = None
    precision = source = ""
    seed = 0

    # subclasses: system(count, variant) -> (SystemSpec, cost, note) or None; capacity(count); feasible()
    def variants(self) -> tuple:
        return (0,)

    def evaluate(self, count: int, target: Target, load: float = 1.0) -> Candidate:
        """The first batching variant whose run meets the target; else the default's failure."""
        first = None
        for v in self.variants():
            built = self.system(count, v, target)
            if built is None:
                continue
            c = self._run(count, built, target, load)
            if c.ok:
                return c
            first = first or c
        return first

    def _run(self, count: int, built, target: Target, load: float) -> Candidate:

        system, cost, extra = built
        sc = target.scenario
        over = target.duration_overrides()
        common = dict(workload=None, mlperf_model=self.mlperf_model, system=system, cost=cost, seed=self.seed)
        label = _batching_label(system)
        if sc == "Server":
            qps = target.required_qps(load)
            cap = extra.get("capacity_qps")
            if cap is not None and qps > cap:
                return Candidate(count, False, label, qps=qps, reason="throughput",
                                 detail=f"{qps:,.0f} QPS is above its sustained capacity {cap:,.0f} QPS "
                                        f"({extra.get('capacity_note', '')})")
            issue = extra.get("issue_limit_qps")
            if issue is not None and qps > issue:
                return Candidate(count, False, label, qps=qps, reason="host issue",
                                 detail=f"{qps:,.0f} QPS is above the host's issue rate {issue:,.0f} QPS")
            bound_ns = int(round(float(target.latency_ms) * 1e6))
            r = simulate("Server", **common, overrides={"server_target_qps": qps, "server_target_latency_ns": bound_ns,
                                                        **over})
            m = r.metrics
            p99 = _p(r, "99.00")
            util = _busy_share(r, system.servers)
            if m.valid:
                busy = f", devices {util:.0%} busy" if util is not None else ""
                return Candidate(count, True, label, p99, util, valid=True, qps=qps,
                                 detail=f"VALID at {qps:,.0f} QPS: p99 {p99:.3g} ms of {target.latency_ms:g} ms{busy}")
            why = "queueing" if p99 > target.latency_ms else _invalid_reason(m)
            return Candidate(count, False, label, p99, util, why, valid=False, qps=qps,
                             detail=f"INVALID at {qps:,.0f} QPS: p99 {p99:.3g} ms against {target.latency_ms:g} ms"
                                    + (f", devices {util:.0%} busy" if util is not None else ""))
        if sc == "Offline":
            need = target.required_qps(load)
            expected = max(need, extra.get("expected_qps", need))
            r = simulate("Offline", **common, overrides={"offline_expected_qps": expected, **over})
            got = float(r.metrics.headline_value)
            util = _busy_share(r, system.servers)
            ok = got >= need and r.metrics.valid
            return Candidate(count, ok, label, got, util, "" if ok else ("throughput" if got < need
                                                                         else _invalid_reason(r.metrics)),
                             valid=r.metrics.valid, qps=need,
                             detail=f"{got:,.0f} samples/s against {need:,.0f} needed")
        limit_ms = target.latency_limit_ns() / 1e6
        if sc == "SingleStream":
            r = simulate("SingleStream", **common, overrides={**extra.get("hints", {}), **over})
            got = _p(r, "90.00")
        else:
            r = simulate("MultiStream", **common,
                         overrides={"multi_stream_samples_per_query": MS_SAMPLES, **extra.get("hints", {}), **over})
            got = r.metrics.query_latency.percentiles_ns["99.00"] / 1e6
        ok = got <= limit_ms and r.metrics.valid
        pct = percentile_label(sc)
        return Candidate(count, ok, label, got, _busy_share(r, system.servers),
                         "" if ok else ("latency" if got > limit_ms else _invalid_reason(r.metrics)),
                         valid=r.metrics.valid,
                         detail=f"{pct} {got:.3g} ms against {limit_ms:.3g} ms (the limit less the headroom)")


def _invalid_reason(m) -> str:
    if not m.min_duration_met:
        return "run length (min duration)"
    if not m.min_queries_met:
        return "run length (min queries)"
    if not m.early_stopping_met:
        return "early stopping"
    return "latency"


def _batching_label(system: SystemSpec) -> str:
    b = system.batching
    if b.policy == "none":
        return "no batching"
    if b.policy == "fixed":
        return f"batch {b.max_batch}"
    return f"dynamic max {b.max_batch}, {b.max_queue_delay_ns / 1e3:.0f} us"

