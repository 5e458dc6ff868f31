"""Capacity planning for an LLM benchmark: the fewest devices of each kind that serve a target QPS
within TTFT and TPOT limits, VALID under simulated LoadGen Server runs.

For each device (``sim.apps.llm_compare.resolve``: datasheet figures, or fitted ones where a
calibration exists) the planner searches serving systems of ``replicas`` copies of one engine
on ``tp`` x ``pp`` devices (TP within one 8-device scale-up domain; pipeline stages only when
TP 8 cannot hold the model) with a batch limit of ``BATCH_LIMITS`` running sequences:

1. every layout that holds the weights and the dataset's longest sequence is a candidate; its
   replica count starts at what the steady-state capacity estimate (``sim.run_llm.
   capacity_estimate``) asks for, doubles until a *short trial* (``TRIAL_S`` simulated seconds
   over ``TRIAL_SAMPLES`` loaded samples) is VALID at ``qps x (1 + headroom)``, then bisects down
   to the fewest replicas VALID; layouts that cannot beat the best device count found are cut;
2. the answer is confirmed with runs of MLPerf length (LoadGen's settings for the benchmark,
   600 s): the planned system must be VALID and the same layout with one replica fewer INVALID;
   a confirmation that disagrees with the trials moves the count (up, or down) until both hold;
3. the **binding constraint** is read from the INVALID run of the next smaller system:
   *KV capacity* when it preempted sequences or filled its KV cache, *TPOT* when the p99 TPOT is
   over the limit, *compute* or *memory bandwidth* when its throughput fell behind the offered
   load (whichever side of the roofline its mean decode step is on), else *TTFT queueing* (the
   capacity is there, the first tokens wait too long). A plan of one replica is bound by *memory*
   (the smallest system that holds the model);
4. **+10% load**: the planned system at ``qps x (1 + headroom) x 1.1`` (MLPerf length), and when it
   is INVALID the replica count that keeps the headroom there (short trials);
5. cost (device count x price, where one is known) and power (count x TDP).

A target no system can meet is a per-device status, never a guess: the model does not fit any
layout's memory, or a TTFT/TPOT limit is below one step's time on the fastest layout.
Prefill/decode disaggregation (``sim.sut.llm.disagg``) is not searched.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from sim.apps import llm_compare
from sim.apps.llm_compare import Unsupported
from sim.errors import InputError
from sim.util import atomic
from sim.util.checks import RANGES, number
from sim.workload import llm as llm_workloads

TRIAL_S = 120.0
TRIAL_SAMPLES = 2048
BATCH_LIMITS = (1024, 512, 256, 128)     # largest first: it usually needs the fewest replicas, and prunes the rest
PP_DEGREES = (1, 2, 4)
MAX_CONFIRM_STEPS = 4
KV_FULL_SHARE = 0.95          # peak KV blocks at or above this share of the cache: KV capacity binds
BEHIND_SHARE = 0.97           # completed tokens/s below this share of the offered: throughput binds
BACKLOG_GROWTH = 2.0          # late arrivals' median TTFT over this multiple of the early ones' ...
BACKLOG_GROWTH_MS = 1000.0    # ... and this much longer: the backlog grows (throughput binds)


@dataclass(frozen=True)
class LLMTarget:
    qps: float
    ttft_ms: float | None = None        # None: the benchmark's limit
    tpot_ms: float | None = None
    headroom: float = 0.1
    scenario: str = "Server"            # or Interactive (its tighter limits)
    trial_s: float = TRIAL_S
    confirm: bool = True                # confirm with MLPerf-length runs
    confirm_duration_ms: float | None = None   # None: MLPerf's; else a shorter confirmation

    def required_qps(self, load: float = 1.0) -> float:
        return float(self.qps) * (1.0 + self.headroom) * load

    def check(self) -> LLMTarget:
        number(self.qps, "--qps", **RANGES["qps"])
        for name, v in (("--ttft-ms", self.ttft_ms), ("--tpot-ms", self.tpot_ms)):
            if v is not None:
                number(v, name, **RANGES["latency_ms"])
        number(self.headroom, "--headroom", minimum=0.0, below=10.0)
        if self.scenario not in ("Server", "Interactive"):
            raise InputError(f"--scenario {self.scenario!r}: an LLM plan is for Server or Interactive")
        return self

    def overrides(self) -> dict:
        out = {}
        if self.ttft_ms is not None:
            out["server_ttft_latency_ns"] = round(self.ttft_ms * 1e6)
        if self.tpot_ms is not None:
            out["server_tpot_latency_ns"] = round(self.tpot_ms * 1e6)
        return out


@dataclass
class Trial:
    replicas: int
    devices: int
    qps: float
    valid: bool
    full_length: bool
    length: str = ""                    # what kind of run it was, for the text
    ttft_p99_ms: float | None = None
    tpot_p99_ms: float | None = None
    tokens_per_s: float = 0.0           # LoadGen's completed tokens/s of the run (the official metric)
    served_tokens_per_s: float = 0.0    # tokens/s generated while LoadGen issued (``served_and_offered``)
    offered_tokens_per_s: float = 0.0
    preemptions: int = 0
    kv_peak_share: float = 0.0
    decode_side: str = ""               # "memory bandwidth" / "compute": the mean decode step's roofline side
    reason: str = ""
    queries: int = 0
    ttft_early_ms: float = 0.0          # median TTFT of the first quarter of arrivals
    ttft_late_ms: float = 0.0           # ... and of the last quarter: a growing backlog shows here

    def backlog_grows(self) -> bool:
        """The queue grew through the run (the late arrivals wait far longer than the early ones)."""
        return self.ttft_late_ms > BACKLOG_GROWTH * self.ttft_early_ms and \
            self.ttft_late_ms - self.ttft_early_ms > BACKLOG_GROWTH_MS

    def describe(self) -> str:
        what = "VALID" if self.valid else self.reason
        return (f"{_n(self.devices, 'device')} ({_n(self.replicas, 'replica')}) at {self.qps:.4g} QPS: {what}; "
                f"TTFT p99 {self.ttft_p99_ms:,.0f} ms, TPOT p99 {self.tpot_p99_ms:.1f} ms, "
                f"{self.tokens_per_s:,.0f} tokens/s ({self.length}, {self.queries:,} queries)")


@dataclass
class LLMPlan:
    device: str
    status: str = "ok"
    devices: int | None = None
    tp: int = 0
    pp: int = 1
    replicas: int = 0
    max_seqs: int = 0
    step_tokens: int = 0
    kv_tokens_per_replica: int = 0
    precision: str = ""
    binding: str = ""
    plus10: str = ""
    chosen: Trial | None = None
    smaller: Trial | None = None
    plus10_trial: Trial | None = None
    power_w: float | None = None
    price_usd: float | None = None
    calibration: str = ""
    trials: int = 0
    seconds: float = 0.0
    notes: list = field(default_factory=list)

    @property
    def layout(self) -> str:
        return (f"{self.replicas} x TP{self.tp}" + (f" PP{self.pp}" if self.pp > 1 else "")
                + f", batch <= {self.max_seqs}") if self.replicas else ""


def _n(count: int, what: str) -> str:
    return f"{count} {what}{'' if count == 1 else 's'}"


def served_and_offered(r) -> tuple[float, float]:
    """(tokens/s the system generated while LoadGen was issuing, tokens/s it was offered). The
    window ends at the last arrival (the drain after it is no shortfall) and starts once the
    first arrivals had time to be served (the 90th percentile of the samples' latency, at most
    half the issue span): in a steady state that keeps up, the two rates are equal. A sample's
    tokens are spread evenly between its first token and its completion."""
    sched = r.scheduled_ns.astype(float)
    first = r.engine.first_token_ns.astype(float)
    done = r.engine.complete_ns.astype(float)
    t_end = float(sched.max())
    span = max(1.0, t_end - float(sched.min()))
    t0 = float(sched.min()) + min(float(np.percentile(done - sched, 90)), span / 2)
    window = max(1.0, t_end - t0)
    n = r.engine.n_tokens.astype(float)
    dur = np.maximum(done - first, 1.0)
    inside = np.clip(np.minimum(done, t_end) - np.maximum(first, t0), 0.0, None) / dur
    generated = float(((n - 1) * inside + ((first >= t0) & (first <= t_end))).sum())
    return generated / window * 1e9, float(r.output_tokens.sum()) / span * 1e9


class _Planner:
    """One device's search (the module docstring)."""

    def __init__(self, wl, target: LLMTarget, res, precision: str, max_devices: int, log=None,
                 tp_degrees=llm_compare.TP_DEGREES):
        self.wl, self.target, self.res, self.precision = wl, target, res, precision
        self.tp_degrees = tuple(tp_degrees)
        self.max_devices = max_devices
        self.log = log
        self.trials = 0
        self.model_name = wl.mlperf_model

    def system(self, tp, pp, replicas, max_seqs):
        return llm_compare.system_for(self.res, self.wl.model, self.precision, tp, replicas, pp=pp, max_seqs=max_seqs)

    def run(self, tp, pp, replicas, max_seqs, qps, full: bool) -> Trial:
        from sim.run_llm import simulate_llm_run  # noqa: PLC0415 - the LLM engine, only when planning

        s = self.system(tp, pp, replicas, max_seqs)
        over = {"server_target_qps": qps, **self.target.overrides()}
        if not full:
            over.update(llm_compare.short_overrides(self.target.trial_s, TRIAL_SAMPLES))
        elif self.target.confirm_duration_ms is not None:
            over.update(llm_compare.short_overrides(self.target.confirm_duration_ms / 1e3, TRIAL_SAMPLES))
        r = simulate_llm_run(self.target.scenario, self.wl, system=s, overrides=over)
        self.trials += 1
        m = r.metrics
        done_tps, offered = served_and_offered(r)
        order = np.argsort(r.scheduled_ns, kind="stable")
        ttft = (r.engine.first_token_ns - r.scheduled_ns)[order] / 1e6
        quarter = max(1, len(ttft) // 4)
        kv = s.kv_blocks_for(r.workload.model)
        eng = r.engine
        # the decode step at the mean batch the run reached: which side of the roofline it is on
        mean_batch = max(1.0, float(r.output_tokens.sum()) / max(1, eng.steps))
        ctx = float(r.input_tokens.mean() + r.output_tokens.mean() / 2)
        comp = r.cost.components(0, 0.0, mean_batch, mean_batch * ctx)
        side = "compute" if float(comp["compute_ns"]) > float(comp["memory_ns"]) else "memory bandwidth"
        if not full:
            length = f"{self.target.trial_s:g} s trial"
        elif self.target.confirm_duration_ms is None:
            length = "MLPerf-length run"
        else:
            length = f"{self.target.confirm_duration_ms / 1e3:g} s confirming run"
        return Trial(replicas=replicas, devices=s.devices, qps=qps, valid=bool(m.valid), full_length=full,
                     length=length,
                     ttft_p99_ms=(m.ttft_percentile_ns or 0) / 1e6, tpot_p99_ms=(m.tpot_percentile_ns or 0) / 1e6,
                     tokens_per_s=float(m.tokens_per_second), served_tokens_per_s=done_tps,
                     offered_tokens_per_s=offered,
                     preemptions=int(eng.preemptions),
                     kv_peak_share=float(max(eng.peak_kv_blocks)) / kv if kv else 0.0, decode_side=side,
                     reason=r.verdict_reason(), queries=len(r.scheduled_ns),
                     ttft_early_ms=float(np.median(ttft[:quarter])), ttft_late_ms=float(np.median(ttft[-quarter:])))

    # -- layouts -------------------------------------------------------------------------------
    def layouts(self) -> list[tuple[int, int, int]]:
        """(tp, pp, kv tokens) of every layout that holds the model; PP only where TP 8 cannot."""
        out = []
        for pp in PP_DEGREES:
            for tp in self.tp_degrees:
                if tp > 1 and not self.res.has_link:
                    continue
                ok, tokens = llm_compare.fits(self.system(tp, pp, 1, None), self.wl)
                if ok:
                    out.append((tp, pp, tokens))
            if out:
                return out
        return out

    def smallest_replicas(self, tp, pp, max_seqs, limit_devices: int) -> tuple[int | None, Trial | None]:
        """Fewest replicas VALID in short trials, below ``limit_devices`` devices; (None, None) if none."""
        from sim.run_llm import capacity_estimate  # noqa: PLC0415

        q = self.target.required_qps()
        one = self.system(tp, pp, 1, max_seqs)
        wl1 = replace(self.wl, model=one.model_for(self.wl.model))
        cap = capacity_estimate(wl1, one, one.cost(self.wl.model))["samples_per_second"]
        per = tp * pp
        top = min(self.max_devices, limit_devices - 1) // per
        if top < 1:
            return None, None
        r = max(1, min(top, math.ceil(q / cap)))
        lo, hi, hi_trial = 0, None, None
        while hi is None:
            t = self.run(tp, pp, r, max_seqs, q, full=False)
            if t.valid:
                hi, hi_trial = r, t
            else:
                lo = r
                if r >= top:
                    return None, None
                r = min(top, r * 2)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            t = self.run(tp, pp, mid, max_seqs, q, full=False)
            if t.valid:
                hi, hi_trial = mid, t
            else:
                lo = mid
        return hi, hi_trial

    def min_step_ms(self, tp, pp) -> float:
        """One step of one decoding sequence at context 1 on this layout (the fastest any step is)."""
        cost = self.system(tp, pp, 1, None).cost(self.wl.model)
        return cost.step_ns(0, 0.0, 1, 1) / 1e6


def _limits(wl, target: LLMTarget) -> tuple[float, float]:
    """(TTFT, TPOT) limits in ms: the target's, else LoadGen's for the benchmark."""
    from sim.run import settings_of  # noqa: PLC0415
    from sim.run_llm import mlperf_model_for  # noqa: PLC0415

    model, scen = mlperf_model_for(wl, target.scenario, None)
    s, _ = settings_of(model, scen, overrides={"server_target_qps": target.qps, **target.overrides()},
                       total_sample_count=wl.dataset.samples if wl.dataset else None)
    return s.server_ttft_latency_ns / 1e6, s.server_tpot_latency_ns / 1e6


def binding_of(smaller: Trial | None, tpot_ms: float) -> str:
    """The constraint that makes the next smaller system INVALID (the module docstring)."""
    if smaller is None:
        return "memory: one replica is the smallest system that holds the model"
    kv_full = smaller.preemptions or smaller.kv_peak_share >= KV_FULL_SHARE
    kv = (f"KV capacity: the smaller system filled {smaller.kv_peak_share:.0%} of its KV cache and preempted "
          f"{smaller.preemptions:,} sequences")
    behind = smaller.served_tokens_per_s < BEHIND_SHARE * smaller.offered_tokens_per_s or smaller.backlog_grows()
    load = (f"it generates {smaller.served_tokens_per_s:,.0f} of {smaller.offered_tokens_per_s:,.0f} offered tokens/s "
            f"while LoadGen issues, its median TTFT {smaller.ttft_early_ms:,.0f} ms early in the run and "
            f"{smaller.ttft_late_ms:,.0f} ms late")
    if behind:
        if kv_full:
            return f"{kv}; {load}"
        return (f"{smaller.decode_side}: the smaller system falls behind ({load}; its decode steps are "
                f"{smaller.decode_side}-bound)")
    if (smaller.tpot_p99_ms or 0) > tpot_ms:
        return f"TPOT: p99 {smaller.tpot_p99_ms:.1f} ms > {tpot_ms:g} ms on the smaller system"
    if kv_full:
        return kv
    return (f"TTFT queueing: the smaller system keeps up ({load}) but its TTFT p99 {smaller.ttft_p99_ms:,.0f} ms is "
            f"over the limit")


def plan_device(device, wl, target: LLMTarget, *, prices=None, precision: str | None = None,
                max_devices: int = 256, log=None, tp_degrees=llm_compare.TP_DEGREES,
                batch_limits=BATCH_LIMITS) -> LLMPlan:
    """One device's plan; ``device``: a profile name or an ``llm_compare.Resolved``; ``tp_degrees``
    and ``batch_limits`` narrow the search."""
    t0 = time.perf_counter()
    name = device if isinstance(device, str) else device.name
    out = LLMPlan(name)
    try:
        res = llm_compare.resolve(device, prices) if isinstance(device, str) else device
    except Unsupported as e:
        out.status = f"unsupported: {e}"
        return out
    prec = llm_compare.precision_for(res.device, precision)
    out.precision, out.calibration = prec, res.calibration
    out.notes += list(res.notes)
    p = _Planner(wl, target, res, prec, max_devices, log, tp_degrees)
    layouts = p.layouts()
    if not layouts:
        gb = replace(wl.model, precision=prec).weight_bytes() / 1e9
        tp_max = max(t for t in p.tp_degrees if t == 1 or res.has_link)
        most = tp_max * PP_DEGREES[-1]
        out.status = (f"impossible: {wl.name} in {prec} ({gb:,.0f} GB of weights plus the KV of its longest sequence) "
                      f"fits no layout of {res.name} ({res.device.memory_bytes / 1e9:.0f} GB each) up to TP{tp_max} x "
                      f"PP{PP_DEGREES[-1]} ({most} devices, {most * res.device.memory_bytes / 1e9:,.0f} GB)")
        return out
    ttft_ms, tpot_ms = _limits(wl, target)
    tp_f, pp_f, _ = max(layouts, key=lambda x: x[0])
    step = p.min_step_ms(tp_f, pp_f)
    for what, limit in (("TPOT", tpot_ms), ("TTFT", ttft_ms)):
        if limit <= step:
            out.status = (f"impossible: the {what} limit {limit:g} ms is below one step's time on {res.name} "
                          f"({step:.2f} ms for one token at TP{tp_f}, the fastest layout)")
            return out
    best = None             # (devices, tp, pp, max_seqs, replicas, trial)
    for tp, pp, _tokens in layouts:
        for bs in batch_limits:
            limit = best[0] if best else max_devices + 1
            r, trial = p.smallest_replicas(tp, pp, bs, limit)
            if r is not None and (best is None or r * tp * pp < best[0]):
                best = (r * tp * pp, tp, pp, bs, r, trial)
            if log:
                log(f"{name} TP{tp} PP{pp} batch {bs}: {r * tp * pp if r else 'none'}")
    if best is None:
        out.status = (f"impossible: no system of up to {max_devices} x {name} meets {target.required_qps():.4g} QPS "
                      f"at TTFT {ttft_ms:g} ms / TPOT {tpot_ms:g} ms in the trials")
        out.trials = p.trials
        return out
    _, tp, pp, bs, r, chosen = best
    smaller = None
    q = target.required_qps()
    if target.confirm:
        chosen = p.run(tp, pp, r, bs, q, full=True)
        steps = 0
        while not chosen.valid and steps < MAX_CONFIRM_STEPS and (r + 1) * tp * pp <= max_devices:
            r += 1
            steps += 1
            chosen = p.run(tp, pp, r, bs, q, full=True)
        if not chosen.valid:
            out.status = (f"impossible: the trials' plan is INVALID at MLPerf length up to {r} replicas "
                          f"({chosen.reason})")
            return out
        while r > 1:
            smaller = p.run(tp, pp, r - 1, bs, q, full=True)
            if smaller.valid:       # the trials were pessimistic: one fewer replica passes
                r, chosen, smaller = r - 1, smaller, None
                continue
            break
    elif r > 1:
        smaller = p.run(tp, pp, r - 1, bs, q, full=False)
    sys_ = p.system(tp, pp, r, bs)
    out.devices, out.tp, out.pp, out.replicas, out.max_seqs = sys_.devices, tp, pp, r, bs
    out.step_tokens = sys_.max_step_tokens
    out.kv_tokens_per_replica = sys_.kv_blocks_for(wl.model) * sys_.block_size
    out.chosen, out.smaller = chosen, smaller
    out.binding = binding_of(smaller, tpot_ms)
    # +10% beyond the headroom
    q10 = target.required_qps(1.1)
    t10 = p.run(tp, pp, r, bs, q10, full=target.confirm)
    out.plus10_trial = t10
    if t10.valid:
        out.plus10 = (f"+10% ({q10:.4g} QPS): still VALID, TTFT p99 {t10.ttft_p99_ms:,.0f} ms, TPOT p99 "
                      f"{t10.tpot_p99_ms:.1f} ms")
    else:
        rr = r + 1
        while rr * tp * pp <= max_devices and not p.run(tp, pp, rr, bs, q10, full=False).valid:
            rr += 1
        keep = f"{_n(rr * tp * pp, 'device')} ({_n(rr, 'replica')}) keep it VALID" if rr * tp * pp <= max_devices else \
            f"no count up to {max_devices} keeps it VALID"
        out.plus10 = f"+10% ({q10:.4g} QPS): {t10.reason.removeprefix('INVALID: ') or 'INVALID'}; {keep}"
    out.power_w = res.tdp_w * out.devices if res.tdp_w else None
    out.price_usd = res.price_usd * out.devices if res.price_usd else None
    out.trials = p.trials
    out.seconds = time.perf_counter() - t0
    return out


def plan_llm(workload: str, target: LLMTarget, devices: list[str], *, prices=None, precision: str | None = None,
             max_devices: int = 256, log=None) -> list[LLMPlan]:
    """A plan per device, ranked by device count (those without a plan after, in the order given)."""
    target.check()
    wl = llm_workloads.load(workload)
    if wl.dataset is None:
        raise InputError(f"{workload}: an LLM plan needs the dataset's token lengths (its workload file has none)")
    plans = []
    for d in devices:
        plans.append(plan_device(d, wl, target, prices=prices, precision=precision, max_devices=max_devices, log=log))
        if log:
            log(f"{d}: done")
    return sorted(plans, key=lambda x: (x.devices is None, x.devices or 0))


def to_markdown(plans: list[LLMPlan], workload: str, target: LLMTarget) -> str:
    wl = llm_workloads.load(workload)
    ttft, tpot = _limits(wl, target)
    lines = [f"Plan for {workload} {target.scenario}: {target.qps:g} QPS at TTFT p99 <= {ttft:g} ms and TPOT p99 <= "
             f"{tpot:g} ms, planned at {target.required_qps():.4g} QPS ({target.headroom:.0%} headroom); confirmed "
             + ("with MLPerf-length runs" if target.confirm and target.confirm_duration_ms is None else
                f"with runs of {target.confirm_duration_ms:g} ms" if target.confirm else "by short trials only"),
             "", "| device | devices | layout | precision | TTFT p99 ms | TPOT p99 ms | completed tokens/s | "
             "power kW (TDP) | price $ | binding | +10% load |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in plans:
        if p.devices is None:
            continue
        c = p.chosen
        lines.append(f"| {p.device} | {p.devices} | {p.layout} | {p.precision} | {c.ttft_p99_ms:,.0f} | "
                     f"{c.tpot_p99_ms:.1f} | {c.tokens_per_s:,.0f} | "
                     f"{'-' if p.power_w is None else f'{p.power_w / 1e3:.1f}'} | "
                     f"{'-' if p.price_usd is None else f'{p.price_usd:,.0f}'} | {p.binding.split(':')[0]} | "
                     f"{'VALID' if p.plus10_trial and p.plus10_trial.valid else 'INVALID'} |")
    lines.append("")
    for p in plans:
        if p.devices is None:
            lines.append(f"- {p.device}: {p.status}")
            continue
        lines.append(f"- {p.device}: {_n(p.devices, 'device')}, {p.layout} (step budget {p.step_tokens} tokens, "
                     f"KV cache {p.kv_tokens_per_replica:,} tokens per replica); {p.calibration}.")
        lines.append(f"  Planned: {p.chosen.describe()}.")
        if p.smaller:
            lines.append(f"  One replica fewer: {p.smaller.describe()}.")
        lines.append(f"  Binding: {p.binding}. {p.plus10}. ({p.trials} simulated runs, {p.seconds:.1f} s)")
        for n in p.notes:
            lines.append(f"  Note: {n}.")
    no_price = [p.device for p in plans if p.devices and p.price_usd is None]
    if no_price:
        lines.append(f"No public price (give --price DEVICE=USD): {', '.join(no_price)}.")
    return "\n".join(lines) + "\n"


def to_json(plans: list[LLMPlan], workload: str, target: LLMTarget) -> str:
    import json  # noqa: PLC0415

    return json.dumps({"schema": "sim.llm_plan/1", "workload": workload, "target": asdict(target),
                       "plans": [asdict(p) | {"layout": p.layout} for p in plans]}, indent=1) + "\n"


def write(plans, workload: str, target: LLMTarget, prefix: str) -> list:
    return [atomic.write_text(prefix + ".md", to_markdown(plans, workload, target)),
            atomic.write_text(prefix + ".json", to_json(plans, workload, target))]
