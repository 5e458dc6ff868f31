"""The LLM validation: real continuous-batching runs on this CPU against their simulated twins.

``run_llm_validation(workload, out)`` (``python -m sim validate --workload tiny-llm``):

1. **Calibration before the runs**, in a process of its own (``sim.validate.llm_calibration``):
   the step cost of the real engine over a grid of prefill tokens, decode batch sizes and
   contexts, fitted to an affine ``StepCost``. It sets the limits (2.).
2. **Limits scaled to this machine**, from that calibrated cost alone (``limits``): a full decode
   step ``d`` (``max_seqs`` sequences at the mean context) and a full prefill step ``p`` (one
   prompt chunk of the token budget, or the longest prompt). Server: TTFT p99 <= 12 p, TPOT p99 <=
   3 d; Interactive: TTFT p99 <= 6 p, TPOT p99 <= 2 d. MLPerf's own limits (2 s / 200 ms for
   llama2-70b) are for datacenter GPUs and mean nothing for a 4-layer model on two cores. Below
   these multiples the limits bind at light load, where a sequence's TPOT p99 is set by how many
   prompts happened to be prefilled beside it (a few samples, noisy from run to run), rather than
   by queueing.
3. **Real runs** (``sim.validate.llm_harness``, one process each, the real LoadGen with token
   latencies; the workload's MLPerf model's settings with the overrides of ``Plan``): Offline,
   then Server at three loads (fractions of the real Offline samples/s), each repeated; then the
   highest Server and Interactive QPS meeting both p99 limits, by bisection over real runs.
4. **Calibration after the runs**, pooled with the first timing by timing: the simulator's
   only input from this machine. Nothing is fitted to the compared runs.
5. **Twins** (``simulate_twin``): each real run simulated with the same LoadGen settings and
   seeds (LoadGen's traffic, query for query, checked against the real run's generated query
   count), the same token lengths per sample index, the engine rules of ``sim.sut.llm`` with the
   real engine's limits, and the pooled cost; the peak searches repeated on the simulator over
   the same bisection grid.
6. **Records**: per metric the median of the real repeats, the median of their twins, the error
   and the real runs' spread ((max - min) / median). A diagnostic beside them: how long each
   run's steps took against the calibrated cost of the same steps (``step_speed``, from the
   run's own step log) and the error of a twin simulated at that speed (``ScaledCost``): what is
   left there is the model's, the rest is the machine's speed during the run.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from sim.util import atomic
from sim.validate.report import put_section

SCENARIO_LIMITS = {"Server": (12.0, 3.0), "Interactive": (6.0, 2.0)}   # (x prefill step, x decode step)
MS = 1e6


@dataclass(frozen=True)
class Plan:
    """What one validation runs (``plan_for``)."""
    total: int = 64                   # samples in LoadGen's QSL (the workload's dataset size)
    seed: int = 0                     # lengths and prompts
    max_seqs: int = 8
    max_step_tokens: int = 96
    threads: int = 1
    repeats: int = 2                  # real runs per fixed setting
    calibration_repeats: int = 15
    offline_samples: int = 128
    server_queries: int = 128
    loads: tuple = (0.3, 0.55, 0.8)   # Server loads, fractions of the real Offline samples/s
    peak_lo: float = 0.2              # peak search bracket, fractions of the real Offline samples/s
    peak_hi: float = 1.4
    peak_steps: int = 4
    timeout_s: float = 900.0


def plan_for(quick: bool, repeats: int | None = None) -> Plan:
    if quick:
        p = Plan(repeats=1, calibration_repeats=7, offline_samples=64, server_queries=64, peak_steps=3)
    else:
        p = Plan()
    if repeats is not None:
        p = Plan(**{**asdict(p), "repeats": int(repeats)})
    return p


def engine_spec(cfg, plan: Plan):
    """The simulated engine of the real one: its limits, and a KV cache of ``max_seqs`` full
    contexts (the real cache), so that, as in the real engine, nothing waits for blocks."""
    from sim.sut.llm import EngineSpec  # noqa: PLC0415 - the engine only where simulated

    block = 16
    return EngineSpec(kv_blocks=plan.max_seqs * -(-cfg.max_context // block), block_size=block,
                      max_seqs=plan.max_seqs, max_step_tokens=plan.max_step_tokens,
                      source=f"{cfg.name} engine on this CPU")


def limits(cost, wl, plan: Plan) -> dict:
    """TTFT and TPOT p99 limits per scenario from the calibrated cost (the module docstring)."""
    ds = wl.dataset
    ctx = ds.input.mean + ds.output.mean / 2
    d = cost.step_ns(0, 0.0, plan.max_seqs, int(round(plan.max_seqs * ctx)))
    chunk = min(plan.max_step_tokens, ds.input.maximum)
    p = cost.step_ns(chunk, chunk * (chunk + 1) / 2, 0, 0)
    out = {"decode_step_ns": d, "prefill_step_ns": p, "prefill_chunk_tokens": chunk, "mean_context": ctx}
    for scen, (kp, kd) in SCENARIO_LIMITS.items():
        out[scen] = {"ttft_ns": int(round(kp * p / MS) * MS), "tpot_ns": int(max(1, round(kd * d / MS)) * MS),
                     "rule": f"TTFT p99 <= {kp:g} x prefill step, TPOT p99 <= {kd:g} x full decode step"}
    return out


def overrides_for(scenario: str, plan: Plan, lim: dict, qps: float | None = None) -> dict:
    """LoadGen settings of one run, by the simulator's field names (the harness maps them)."""
    o = {"performance_sample_count_override": plan.total, "sample_concatenate_permutation": True,
         "min_duration_ns": 0}
    if scenario == "Offline":
        o.update(min_query_count=plan.offline_samples, offline_expected_qps=1.0)
    else:
        o.update(min_query_count=plan.server_queries, server_target_qps=float(qps),
                 server_ttft_latency_ns=lim[scenario]["ttft_ns"], server_tpot_latency_ns=lim[scenario]["tpot_ns"])
    return o


# -- one run, real and simulated --------------------------------------------------------------------

def real_run(workload: str, scenario: str, overrides: dict, plan: Plan, mlperf_model: str, outdir: Path) -> dict:
    """One real run in its own process; returns its ``harness.json`` with ``metrics`` added."""
    from sim.validate.process import run_in_subprocess  # noqa: PLC0415 - the parent's side only

    spec = {"workload": workload, "scenario": scenario, "mlperf_model": mlperf_model, "overrides": overrides,
            "total": plan.total, "seed": plan.seed,
            "engine": {"max_seqs": plan.max_seqs, "max_step_tokens": plan.max_step_tokens, "threads": plan.threads},
            "outdir": str(Path(outdir).resolve())}
    res = run_in_subprocess("sim.validate.llm_harness", spec, Path(outdir), plan.timeout_s)
    if res.get("errors"):
        raise RuntimeError(f"{outdir}: the real run reported errors: {res['errors'][0][-2000:]}")
    res["metrics"] = real_metrics(res)
    return res


def real_metrics(res: dict) -> dict:
    """The compared metrics as LoadGen's detail log gives them (ms and tokens/s)."""
    lg = res["loadgen"]
    if res["scenario"] == "Offline":
        return {"tokens_per_s": float(lg["result_tokens_per_second"]),
                "samples_per_s": float(lg["result_samples_per_second"])}
    return {"ttft_p99_ms": lg["result_first_token_99.00_percentile_latency_ns"] / MS,
            "ttft_mean_ms": lg["result_first_token_mean_latency_ns"] / MS,
            "tpot_p99_ms": lg["result_time_per_output_token_99.00_percentile_ns"] / MS,
            "tpot_mean_ms": lg["result_time_to_output_token_mean"] / MS,
            "tokens_per_s": float(lg["result_completed_tokens_per_second"]),
            "queries": int(lg["generated_query_count"])}


def simulate_twin(wl, scenario: str, overrides: dict, plan: Plan, cost) -> dict:
    """The simulated twin of a run (the module docstring); the same metrics as ``real_metrics``."""
    from sim.loadgen.settings import load_settings  # noqa: PLC0415 - the simulator's side
    from sim.loadgen.tokens import compute_token_metrics  # noqa: PLC0415 - idem
    from sim.loadgen.traffic import generate  # noqa: PLC0415 - idem
    from sim.sut.llm import simulate_llm  # noqa: PLC0415 - idem

    settings = load_settings(wl.mlperf_model, scenario, overrides=overrides, total_sample_count=plan.total)
    traffic = generate(settings, plan.total)
    inp, out = wl.sample_lengths(plan.total, plan.seed)
    idx = traffic.sample_index
    sched = (np.asarray(traffic.scheduled_ns, dtype=np.int64) if traffic.scheduled_ns is not None
             and scenario != "Offline" else np.zeros(len(idx), np.int64))
    r = simulate_llm(engine_spec(wl.model, plan), cost, sched, inp[idx], out[idx])
    m = compute_token_metrics(settings, sched, r.first_token_ns, r.complete_ns, r.n_tokens)
    if scenario == "Offline":
        return {"tokens_per_s": m.headline_value, "samples_per_s": m.samples_per_second,
                "queries": int(traffic.query_count)}
    return {"ttft_p99_ms": m.ttft.percentiles_ns["99.00"] / MS, "ttft_mean_ms": m.ttft.mean_ns / MS,
            "tpot_p99_ms": m.tpot.percentiles_ns["99.00"] / MS, "tpot_mean_ms": m.tpot.mean_ns / MS,
            "tokens_per_s": m.tokens_per_second, "queries": int(traffic.query_count)}


def meets(metrics: dict, lim: dict) -> bool:
    """Both p99 limits hold (LoadGen's performance constraints, token mode)."""
    return metrics["ttft_p99_ms"] * MS <= lim["ttft_ns"] and metrics["tpot_p99_ms"] * MS <= lim["tpot_ns"]


def bisect_peak(lo: float, hi: float, steps: int, ok) -> tuple[float, list]:
    """The highest QPS in ``[lo, hi]`` for which ``ok(qps)`` holds, by ``steps`` bisections
    (``lo`` when none holds; ``hi`` when it holds). Returns it and the trials ``(qps, ok)``."""
    trials = []
    if ok(hi):
        return hi, [(hi, True)]
    trials.append((hi, False))
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        good = ok(mid)
        trials.append((mid, good))
        if good:
            lo = mid
        else:
            hi = mid
    return lo, trials


# -- the whole validation ---------------------------------------------------------------------------

METRIC_LABELS = {"tokens_per_s": "tokens/s", "ttft_p99_ms": "TTFT p99 (ms)", "ttft_mean_ms": "TTFT mean (ms)",
                 "tpot_p99_ms": "TPOT p99 (ms)", "tpot_mean_ms": "TPOT mean (ms)", "peak_qps": "peak QPS"}


def _record(scenario: str, setting: str, metric: str, real: list[float], sim: list[float]) -> dict:
    measured = float(np.median(real))
    predicted = float(np.median(sim))
    spread = (max(real) - min(real)) / measured * 100 if len(real) > 1 and measured else None
    return {"scenario": scenario, "setting": setting, "metric": metric, "measured": measured,
            "predicted": predicted, "error_pct": (predicted - measured) / measured * 100 if measured else None,
            "spread_pct": spread, "repeats": len(real)}


def step_speed(folder: str | Path, cost) -> float:
    """How long a real run's steps took against the calibrated cost of the same steps (sum over
    sum, from the run's own step log): 1.10 = the machine ran 10% slower than calibrated. A
    diagnostic read after the fact, never an input of a prediction."""
    d = np.load(Path(folder) / "llm_run.npz")
    real = float((d["step_end_ns"] - d["step_start_ns"]).sum())
    pred = float(cost.step_ns_array(d["step_prefill_tokens"], d["step_prefill_attn_tokens2"], d["step_decode_seqs"],
                                    d["step_decode_kv_tokens"]).sum())
    return real / pred


@dataclass(frozen=True)
class ScaledCost:
    """A step cost ``factor`` times another (the diagnostic at a run's own speed)."""
    cost: object
    factor: float

    def step_ns(self, *counts) -> float:
        return self.cost.step_ns(*counts) * self.factor

    def step_ns_array(self, *counts) -> np.ndarray:
        return self.cost.step_ns_array(*counts) * self.factor

    def describe(self) -> str:
        return f"{self.factor:.3f} x {self.cost.describe()}"


def _calibrate(workload: str, plan: Plan, folder: Path) -> dict:
    from sim.validate.process import run_in_subprocess  # noqa: PLC0415 - the parent's side only

    return run_in_subprocess("sim.validate.llm_calibration",
                             {"workload": workload, "max_seqs": plan.max_seqs, "max_step_tokens": plan.max_step_tokens,
                              "threads": plan.threads, "repeats": plan.calibration_repeats, "seed": plan.seed,
                              "outdir": str(folder.resolve()), "result_file": "calibration.json"},
                             folder, plan.timeout_s)


def run_llm_validation(workload: str, out: str | Path, *, quick: bool = False, repeats: int | None = None,
                       mlperf_model: str | None = None, log=print) -> dict:
    """The LLM validation of ``workload`` (the module docstring); writes ``<out>/<name>/llm_validation.json``."""
    from sim.errors import InputError  # noqa: PLC0415 - light
    from sim.validate import llm_calibration  # noqa: PLC0415 - loads scipy for the fit
    from sim.workload import llm  # noqa: PLC0415 - light

    wl = llm.load(workload)
    model = mlperf_model or wl.mlperf_model
    plan = plan_for(quick, repeats)
    if wl.dataset is None or wl.dataset.samples != plan.total:
        raise InputError(f"{wl.path}: field 'dataset.samples' = {wl.dataset.samples if wl.dataset else None}: the LLM "
                         f"validation serves a QSL of {plan.total} samples; expected {plan.total}")
    out = Path(out).resolve() / wl.name              # the children run in their own folders
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    log(f"{wl.name}: calibrating the step cost before the runs ({plan.calibration_repeats} rounds of the grid)")
    cal_before = _calibrate(workload, plan, out / "calibration_before")
    first_cost = llm_calibration.cost_of(cal_before)
    log(f"  {first_cost.describe()} (fit: median |error| {cal_before['fit']['median_abs_rel_error'] * 100:.1f}%)")
    lim = limits(first_cost, wl, plan)
    for scen in SCENARIO_LIMITS:
        log(f"  {scen} limits: TTFT p99 <= {lim[scen]['ttft_ns'] / MS:.0f} ms, TPOT p99 <= "
            f"{lim[scen]['tpot_ns'] / MS:.0f} ms ({lim[scen]['rule']})")
    runs: dict[str, list] = {}

    def real(key: str, scenario: str, qps: float | None, rep: int) -> dict:
        o = overrides_for(scenario, plan, lim, qps)
        folder = out / f"{key}_r{rep}"
        r = real_run(workload, scenario, o, plan, model, folder)
        entry = {"scenario": scenario, "qps": qps, "overrides": o, "folder": str(folder), "real": r["metrics"],
                 "verdict": r["result_validity"], "wall_s": r["wall_s"],
                 "others_cores": r.get("machine", {}).get("foreign_cores_mean")}
        runs.setdefault(key, []).append(entry)
        shown = ", ".join(f"{METRIC_LABELS.get(k, k)} {v:.4g}" for k, v in r["metrics"].items() if k in METRIC_LABELS)
        log(f"  {key} rep {rep + 1}: {shown} [LoadGen: {r['result_validity']}]")
        return entry

    offline_sps = []
    for rep in range(plan.repeats):
        offline_sps.append(real("offline", "Offline", None, rep)["real"]["samples_per_s"])
        if rep == 0:
            base = offline_sps[0]
            loads = [round(f * base, 3) for f in plan.loads]
        for f, q in zip(plan.loads, loads):
            real(f"server_{f:g}", "Server", q, rep)
    peaks = {}
    for scen in SCENARIO_LIMITS:
        lo, hi = plan.peak_lo * base, plan.peak_hi * base
        peak, trials = bisect_peak(
            lo, hi, plan.peak_steps,
            lambda q, s=scen: meets(real(f"peak_{s}_{q:.3f}", s, round(q, 3), 0)["real"], lim[s]))
        peaks[scen] = {"real": peak, "real_trials": trials, "resolution_qps": (hi - lo) / 2 ** plan.peak_steps,
                       "lo": lo, "hi": hi}
        log(f"  {scen}: real peak QPS meeting both limits {peak:.3f}")
    log(f"{wl.name}: calibrating the step cost after the runs")
    cal_after = _calibrate(workload, plan, out / "calibration_after")
    cal = llm_calibration.pool([cal_before, cal_after])
    atomic.write_json(out / "calibration_pooled.json", cal)
    cost = llm_calibration.cost_of(cal)
    log(f"  pooled: {cost.describe()} (fit: median |error| {cal['fit']['median_abs_rel_error'] * 100:.1f}%)")
    for key, entries in runs.items():
        for e in entries:
            e["sim"] = simulate_twin(wl, e["scenario"], e["overrides"], plan, cost)
            if e["real"].get("queries", e["sim"]["queries"]) != e["sim"]["queries"]:
                raise RuntimeError(f"{e['folder']}: LoadGen generated {e['real']['queries']} queries, the simulator "
                                   f"{e['sim']['queries']}: the twin is not the same run")
            e["speed"] = step_speed(e["folder"], cost)
            e["sim_at_speed"] = simulate_twin(wl, e["scenario"], e["overrides"], plan, ScaledCost(cost, e["speed"]))
    for scen, pk in peaks.items():
        sim_peak, sim_trials = bisect_peak(
            pk["lo"], pk["hi"], plan.peak_steps,
            lambda q, s=scen: meets(simulate_twin(wl, s, overrides_for(s, plan, lim, round(q, 3)), plan, cost), lim[s]))
        pk.update(sim=sim_peak, sim_trials=sim_trials)
        log(f"  {scen} peak QPS meeting both limits: real {pk['real']:.3f}, simulated {sim_peak:.3f} "
            f"(bisection resolution {pk['resolution_qps']:.3f})")
    records = []
    for key, entries in runs.items():
        if key.startswith("peak_"):
            continue
        scen = entries[0]["scenario"]
        setting = "Offline" if scen == "Offline" else f"{entries[0]['qps']:.3g} QPS ({key.split('_')[1]} x Offline)"
        for metric in METRIC_LABELS:
            # Server tokens/s below capacity is the offered load's: kept in the runs, not compared
            if metric in entries[0]["real"] and not (scen != "Offline" and metric == "tokens_per_s"):
                rec = _record(scen, setting, metric, [e["real"][metric] for e in entries],
                              [e["sim"][metric] for e in entries])
                at = float(np.median([e["sim_at_speed"][metric] for e in entries]))
                rec["speed"] = [round(e["speed"], 3) for e in entries]
                rec["error_at_speed_pct"] = (at - rec["measured"]) / rec["measured"] * 100
                records.append(rec)
    for scen, pk in peaks.items():
        rec = _record(scen, "both p99 limits", "peak_qps", [pk["real"]], [pk["sim"]])
        bounded = [any(ok for _, ok in pk[f"{side}_trials"]) and not pk[f"{side}_trials"][0][1]
                   for side in ("real", "sim")]
        if not all(bounded):
            # the limits held at no load tried, or at the top of the bracket: the peak is outside it
            rec.update(setting="both p99 limits (outside the searched bracket: not compared)", error_pct=None)
        records.append(rec)
    errors = [abs(r["error_pct"]) for r in records if r["error_pct"] is not None]
    at_speed = [abs(r["error_at_speed_pct"]) for r in records if r.get("error_at_speed_pct") is not None]
    spreads = [r["spread_pct"] for r in records if r["spread_pct"] is not None]
    speeds = [e["speed"] for es in runs.values() for e in es]
    others = [e["others_cores"] for es in runs.values() for e in es if e.get("others_cores") is not None]
    result = {"schema": "sim.llm_validation/1", "workload": wl.name, "mlperf_model": model, "plan": asdict(plan),
              "calibration": {k: cal[k] for k in ("coef_ns", "coef_ns_each", "terms", "fit", "loop_overhead_ns",
                                                   "fingerprint", "fingerprint_hash")},
              "cost": cost.describe(), "limits": lim, "offline_samples_per_s": offline_sps, "runs": runs,
              "peaks": peaks, "records": records,
              "summary": {"metrics": len(errors), "median_abs_error_pct": float(np.median(errors)),
                          "worst_abs_error_pct": float(max(errors)),
                          "median_spread_pct": float(np.median(spreads)) if spreads else None,
                          "median_abs_error_at_speed_pct": float(np.median(at_speed)) if at_speed else None,
                          "step_speed_median": float(np.median(speeds)),
                          "step_speed_range": [min(speeds), max(speeds)],
                          "others_cores_median": float(np.median(others)) if others else None,
                          "others_cores_max": float(max(others)) if others else None},
              "started_unix_s": t0, "wall_s": time.time() - t0}
    atomic.write_json(out / "llm_validation.json", result)
    return result


def format_table(result: dict) -> str:
    """The comparison as a markdown table, with the summary line first."""
    s = result["summary"]
    lines = [f"{result['workload']}: {s['metrics']} compared metrics, median |error| {s['median_abs_error_pct']:.1f}%, "
             f"worst {s['worst_abs_error_pct']:.1f}%; real runs' median spread "
             + (f"{s['median_spread_pct']:.1f}%" if s["median_spread_pct"] is not None else "n/a (one repeat)"),
             f"the real runs' steps took x{s['step_speed_median']:.2f} the calibrated time (median; range "
             f"{s['step_speed_range'][0]:.2f}-{s['step_speed_range'][1]:.2f}); simulated at each run's own step speed "
             f"(a diagnostic, not a prediction) the median |error| is {s['median_abs_error_at_speed_pct']:.1f}%"
             + (f"; other processes used {s['others_cores_median']:.2f} cores during the runs (median; max "
                f"{s['others_cores_max']:.2f})" if s.get("others_cores_median") is not None else ""),
             "", "| scenario | setting | metric | measured | predicted | error % | real spread % | repeats | "
                 "steps vs calibration | error at the runs' speed % |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["records"]:
        spread = f"{r['spread_pct']:.1f}" if r["spread_pct"] is not None else "-"
        err = f"{r['error_pct']:+.1f}" if r["error_pct"] is not None else "-"
        speed = "/".join(f"x{v:.2f}" for v in r["speed"]) if r.get("speed") else "-"
        at = f"{r['error_at_speed_pct']:+.1f}" if r.get("error_at_speed_pct") is not None else "-"
        lines.append(f"| {r['scenario']} | {r['setting']} | {METRIC_LABELS[r['metric']]} | {r['measured']:.4g} | "
                     f"{r['predicted']:.4g} | {err} | {spread} | {r['repeats']} | {speed} | {at} |")
    lim = result["limits"]
    lines.append("")
    for scen in SCENARIO_LIMITS:
        lines.append(f"- {scen} limits: TTFT p99 <= {lim[scen]['ttft_ns'] / MS:.0f} ms, TPOT p99 <= "
                     f"{lim[scen]['tpot_ns'] / MS:.0f} ms ({lim[scen]['rule']}; prefill step "
                     f"{lim['prefill_step_ns'] / MS:.1f} ms for {lim['prefill_chunk_tokens']} tokens, full decode step "
                     f"{lim['decode_step_ns'] / MS:.1f} ms)")
    lines.append(f"- step cost: {result['cost']}")
    return "\n".join(lines)



SECTION_START = "<!-- llm-validation: written by python -m sim validate --workload <LLM> --report FILE -->"
SECTION_END = "<!-- llm-validation: end -->"


def markdown_section(result: dict, command: str, machine_note: str = "") -> str:
    """The LLM section of the validation report (``write_section`` puts it into a file)."""
    fp = result["calibration"]["fingerprint"]
    plan = result["plan"]
    lines = [SECTION_START, "## LLM serving: continuous batching on this CPU (tiny-llm)", "",
             "A 4-layer, 256-wide decoder-only transformer built in ONNX in code (`sim/validate/llm_model.py`, "
             "`workloads/llm/tiny-llm.yaml`) is served by a real continuous-batching engine on onnxruntime "
             "(`sim/validate/llm_sut.py`: iteration-level steps formed with the simulator's scheduler rules, "
             f"at most {plan['max_seqs']} sequences and {plan['max_step_tokens']} tokens a step, chunked prefill, a "
             "KV cache passed into and out of the model) driven by the real LoadGen with token latencies "
             "(`sim/validate/llm_harness.py`: `FirstTokenComplete` at the end of the step that produced a sample's "
             "first token, `QuerySamplesComplete` with `n_tokens` when it has generated exactly its drawn length). "
             "Each run is simulated with the same LoadGen settings and seeds, the same token lengths per sample "
             "index and a step cost calibrated from microbenchmarks of the engine's step before and after the runs, "
             "pooled (`sim/validate/llm_calibration.py`); nothing is fitted to the compared runs. The TTFT and TPOT "
             "limits are scaled to this machine from the calibration made before the runs "
             "(`sim/validate/llm_experiment.py`).", "",
             "### Command", "", "```", command, "```", "",
             "### Machine", "",
             f"- CPU: {fp.get('cpu_model')}, {fp.get('logical_cores')} logical cores; onnxruntime "
             f"{fp.get('onnxruntime')}, numpy {fp.get('numpy')}, Python {fp.get('python')}; one intra-op thread",
             ]
    if machine_note:
        lines.append(f"- {machine_note}")
    lines += ["", "### Results", "", format_table(result), "", "### What is weak", "",
              f"- Runs are short ({plan['server_queries']} Server queries, {plan['offline_samples']} Offline samples): "
              "LoadGen's early stopping needs at least 459 queries with "
              "none over a limit, so LoadGen calls the Server runs INVALID whatever their latencies; \"meeting both "
              "limits\" here is LoadGen's performance constraints (TTFT p99 and TPOT p99 within the limits), checked "
              "the same way on the real and the simulated runs.",
              "- The peak QPS is one bisection of real runs per scenario (no repeat): its error is at best the "
              "bisection's resolution, and one slow run moves it a whole step.",
              "- The engine pads each session call to the longest context in it, while a step cost sees only the sum "
              "of the contexts; the calibration draws each decode batch's contexts around its mean to carry the "
              "average padding.",
              "- `steps vs calibration` is read from each run's own step log after the fact: the machine's speed "
              "during the run against the calibrated cost. Where it is far from x1.00 the machine, not the model, "
              "moved; `error at the runs' speed` simulates each run at its own speed (a diagnostic only).",
              "", SECTION_END]
    return "\n".join(lines) + "\n"


def write_section(path: str | Path, section: str) -> Path:
    """Put ``section`` into the file at ``path`` in place of an earlier LLM section, or at its end."""
    return put_section(path, section, SECTION_START, SECTION_END)
