"""Published LLM results predicted by simulation: ``python -m sim predict-published`` on a file in
the LLM results schema.

For each row: the task (``sim.hw.llm_rows.read_task``, which reads only the description of the
system and of the test), the modelled system (``sim.hw.llm_calibrate.layout_of``: replicas of one
tensor-parallel engine on the row's device profile, in the row's weight precision), the step cost
with the parameters calibrated for the row's device and software stack (``fitted_calibration``:
the recorded fit, ``hw_profiles/fitted/llm/llm_step_cost.yaml``, or a fit on ``--results``), then
a simulated run (``sim.run_llm``):

- Offline: one run; the metric is its tokens/s (samples/s where that is the official metric);
- Server and Interactive: the peak search (``peak_llm_qps``) for the highest load whose TTFT p99
  and TPOT p99 meet the row's limits (gptj: the per-sample latency limit); the metric is that
  run's completed tokens/s (completed samples/s where that is the official metric).

Output lengths come from the benchmark's length distribution in its workload config, never from
the row. ``status`` is ``ok`` or ``unsupported: reason``: diffusion, speech and multimodal rows,
CPU-only and mixed systems, unknown accelerators (``llm_rows``); SingleStream rows; a unit the
calibration has neither rows nor a learned prior for; a latency limit no load can meet.
"""

from __future__ import annotations

from pathlib import Path

from sim.errors import InputError
from sim.hw import llm_calibrate as lc
from sim.hw import llm_rows
from sim.paths import REPO_ROOT
from sim.util import atomic
from sim.util.yamlfile import read_yaml

#: Columns that mark a file as the LLM results schema (the classic file has ``model``, not these).
LLM_SCHEMA_COLUMNS = ("benchmark", "tpot_latency_ns", "weight_data_types")
FITTED_FILE = REPO_ROOT / "hw_profiles" / "fitted" / "llm" / "llm_step_cost.yaml"
#: Peak search settings for predictions: one seed per load, 2% bracket (the search's cost).
PEAK_REL_TOL = 0.02
PEAK_REPEATS = 1


def is_llm_schema(header) -> bool:
    return all(c in header for c in LLM_SCHEMA_COLUMNS)


# -- the recorded calibration --------------------------------------------------------------------

def calibration_yaml(cal: lc.Calibration) -> dict:
    units = {}
    for u in sorted(cal.params):
        units[u] = {"parameters": {n: {"value": round(float(cal.params[u][n]), 6), "source": cal.sources[u]}
                                   for n in lc.PARAMS},
                    "stage1": [round(float(x), 6) for x in cal.stage1[u]],
                    "rows": [int(i) + 1 for i in cal.rows[u]]}
    return {"model": "sim.hw.llm_calibrate (roofline step cost: memory_efficiency, compute_efficiency, "
                     "step_overhead_us, layer_overhead_us, allreduce_latency_us)",
            "method": "two-stage least squares on log(surrogate / published), learned priors across devices",
            "data": cal.data_note.strip(), "assumptions": {"batch_limit": lc.BATCH_LIMIT,
                                                           "step_tokens": lc.STEP_TOKENS,
                                                           "tpot_p99_margin": lc.TPOT_P99_MARGIN,
                                                           "load_share": dict(lc.LOAD_SHARE),
                                                           "beams": dict(lc.BEAMS),
                                                           "precision_rule": lc.PRECISION_RULE},
            "units": units}


def write_fitted(cal: lc.Calibration, path: str | Path = FITTED_FILE) -> Path:
    import yaml  # noqa: PLC0415 - writing only

    head = "# written by: python -m sim.hw.llm_published --write; every value fitted (see source)\n"
    return atomic.write_text(path, head + yaml.safe_dump(calibration_yaml(cal), sort_keys=False, width=120))


def read_fitted(path: str | Path = FITTED_FILE) -> lc.Calibration:
    import numpy as np  # noqa: PLC0415 - with the numbers only

    src = str(path)
    data = read_yaml(path, "the fitted LLM step-cost parameters")
    if not isinstance(data, dict) or not isinstance(data.get("units"), dict):
        raise InputError(f"{src}: field 'units' is missing; expected the fitted LLM parameters per unit")
    params, stage1, rows, sources = {}, {}, {}, {}
    for u, d in data["units"].items():
        try:
            params[u] = {n: float(d["parameters"][n]["value"]) for n in lc.PARAMS}
            stage1[u] = np.array([float(x) for x in d["stage1"]])
            sources[u] = str(d["parameters"][lc.PARAMS[0]]["source"])
            rows[u] = list(d.get("rows") or [])
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"{src}: unit {u!r}: field {e} is missing or not a number; expected "
                             f"{list(lc.PARAMS)} with value and source") from None
        if len(stage1[u]) != len(lc.PARAMS):
            raise InputError(f"{src}: unit {u!r}: field 'stage1' has {len(stage1[u])} values; expected "
                             f"{len(lc.PARAMS)}")
    return lc.Calibration(params=params, stage1=stage1, rows=rows, sources=sources,
                          data_note=str(data.get("data", "")))


def fitted_calibration(results: str | None = None) -> lc.Calibration:
    """The calibration to predict with: a fit on ``results`` (an LLM results file) when given, else
    the recorded fit, else a fit on the shared file."""
    if results:
        cases, _, note = lc.load_cases(results)
        if not cases:
            raise InputError(f"{results}: no row of the LLM results schema to calibrate on")
        return lc.calibrate(cases, note)
    if FITTED_FILE.is_file():
        return read_fitted(FITTED_FILE)
    cases, _, note = lc.load_cases()
    return lc.calibrate(cases, note)


# -- the simulated system and run ----------------------------------------------------------------

class BeamStepCost:
    """A step cost for samples generated by beam search: each running sample decodes ``beams``
    tokens a step over its context (``sim.hw.llm_calibrate.BEAMS``); prefill is unchanged."""

    def __init__(self, inner, beams: int):
        self.inner, self.beams = inner, beams

    def step_ns(self, prefill_tokens, prefill_attn_tokens2, decode_seqs, decode_kv_tokens) -> float:
        return self.inner.step_ns(prefill_tokens, prefill_attn_tokens2, self.beams * decode_seqs,
                                  self.beams * decode_kv_tokens)

    def describe(self) -> str:
        return f"{self.inner.describe()}, {self.beams} beams per sample"


def system_of(case: lc.Case, params: dict):
    """The ``LLMSystem`` the simulator runs for a case (with beams: a KV cache scaled so that it
    holds as many samples as the surrogate's, each sequence of the engine standing for a sample)."""
    from dataclasses import replace  # noqa: PLC0415 - with the system only

    from sim.run_llm import LLMSystem  # noqa: PLC0415 - the simulator, only for predictions

    t = case.task
    system = LLMSystem(name=f"{t.system_key}: {t.devices} x {t.profile}", device=case.device, tp=case.tp,
                       replicas=case.replicas, max_seqs=lc.BATCH_LIMIT, max_step_tokens=lc.STEP_TOKENS,
                       precision=case.model.precision, kv_precision=case.model.kv_precision,
                       roofline=lc.roofline_params(params), source=f"row {t.index + 1}")
    beams = lc.beams_of(t.workload)
    if beams > 1:
        held = lc.held_tokens(t.workload)
        share = lc.kv_tokens_per_sample(case.mean_in, held) / lc.kv_tokens_per_sample(case.mean_in, held, beams)
        system = replace(system, kv_blocks=max(1, int(system.kv_blocks_for(lc.workload(t.workload).model) * share)))
    return system


def step_cost_of(case: lc.Case, system):
    cost = system.cost(lc.workload(case.task.workload).model)
    beams = lc.beams_of(case.task.workload)
    return BeamStepCost(cost, beams) if beams > 1 else cost


def simulate_case(case: lc.Case, params: dict, seed: int = 0) -> float:
    """The row's official metric from a simulated run (module docstring)."""
    from sim.run_llm import peak_llm_qps, simulate_llm_run  # noqa: PLC0415 - the simulator, only for predictions

    t = case.task
    wl = lc.workload(t.workload)
    system = system_of(case, params)
    if t.scenario == llm_rows.OFFLINE:
        r = simulate_llm_run("Offline", wl, system=system, seed=seed, cost=step_cost_of(case, system))
        return _metric(t, r.metrics)
    lc.Surrogate(params).tokens_per_second(case)          # a limit no load meets: its message
    over = {}
    if t.tpot_limit_ns and t.ttft_limit_ns:
        over = {"server_ttft_latency_ns": int(t.ttft_limit_ns), "server_tpot_latency_ns": int(t.tpot_limit_ns)}
    elif t.latency_limit_ns:
        over = {"server_target_latency_ns": int(t.latency_limit_ns)}
    runs = {}           # the first run at each target QPS (its repeat 0: the bisection's)
    start_qps = lc.Surrogate(params).tokens_per_second(case) / case.mean_out
    peak = peak_llm_qps(wl, scenario=t.scenario, system=system, overrides=over, seed=seed,
                        cost=step_cost_of(case, system), start_qps=start_qps, rel_tol=PEAK_REL_TOL,
                        repeats=PEAK_REPEATS, on_trial=lambda r: runs.setdefault(r.settings.server_target_qps, r))
    if not peak.peak_qps:
        raise InputError(f"row {t.index + 1}: no VALID {t.scenario} load: {peak.reason}")
    best = runs.get(peak.peak_qps)
    if best is None:
        raise InputError(f"row {t.index + 1}: the peak search kept no run at {peak.peak_qps:g} QPS")
    return _metric(t, best.metrics)


def _metric(task: llm_rows.LLMTask, m) -> float:
    """The official metric from a simulated run's token metrics."""
    col = task.metric.column
    if col in ("tokens_per_second_inferred", "completed_tokens_per_second_inferred"):
        v = m.inferred_tokens_per_second
    elif task.metric.units == "samples/s":
        v = m.samples_per_second
    else:
        v = m.tokens_per_second
    if v is None or not v > 0:
        raise InputError(f"row {task.index + 1}: the simulated run gave no {task.metric.what}")
    return float(v)


def predict_llm_rows(rows: list[dict], cal: lc.Calibration, simulate: bool = True) -> list[tuple[float | None, str]]:
    """(predicted_value, status) per row (module docstring); ``simulate=False``: the surrogate."""
    out = []
    for i, row in enumerate(rows):
        try:
            task = llm_rows.read_task(row, i)
        except InputError as e:
            out.append((None, f"unsupported: {e}"))
            continue
        if not task.ok:
            out.append((None, f"unsupported: {task.unsupported}"))
            continue
        if task.scenario not in (llm_rows.OFFLINE, llm_rows.SERVER, llm_rows.INTERACTIVE):
            out.append((None, f"unsupported: row {i + 1}: {task.scenario} latency is not predicted for LLM "
                              f"benchmarks (Offline, Server and Interactive are)"))
            continue
        try:
            unit = f"{task.profile}/{task.stack}"
            params, _ = cal.params_for(unit)
            case = lc.layout_of(task, params)
            value = simulate_case(case, params) if simulate else lc.Surrogate(params).predict(case)
        except InputError as e:
            out.append((None, f"unsupported: {e}"))
            continue
        out.append((value, "ok"))
    return out


def read_if_llm(path) -> tuple[list[str], list[dict]] | None:
    """(header, rows) of ``path`` when it is in the LLM results schema, else None."""
    from sim.util.textfile import read_csv  # noqa: PLC0415 - file reading only here

    p = Path(path)
    if not p.is_file():
        return None
    header, rows = read_csv(p, "a CSV of published results")
    return (header, rows) if is_llm_schema(header) else None


def lengths_source(workload_name: str) -> str:
    """The dataset's mean input and output tokens and where the mean input comes from."""
    ds = lc.workload(workload_name).dataset
    prior = lc.prior_input_mean(workload_name)
    where = (f"estimated from published rows (sim.hw.llm_lengths; assumed {prior:g} before)" if prior
             else "as the workload file states")
    return f"mean input {ds.input.mean:g} tokens, {where}; mean output {ds.output.mean:g} tokens"


def explain(rows: list[dict], cal: lc.Calibration) -> list[dict]:
    """Per row: the weights' precision and why, the layout, the parameters and their source."""
    out = []
    for i, row in enumerate(rows):
        e = {}
        try:
            t = llm_rows.read_task(row, i)
            if t.ok:
                params, src = cal.params_for(f"{t.profile}/{t.stack}")
                prec, why = lc.effective_precision(t, lc.workload(t.workload).model)
                c = lc.layout_of(t, params)
                e = {"precision": prec, "precision_reason": why,
                     "lengths": lengths_source(t.workload),
                     "layout": f"{c.replicas} x TP{c.tp} of {t.profile}, KV {c.kv_tokens:,.0f} tokens per replica",
                     "parameter_source": src,
                     "parameters": "; ".join(f"{n}={params[n]:.4g}" for n in lc.PARAMS)}
        except InputError as err:
            e = {"precision_reason": str(err)}
        out.append(e)
    return out


def run_command(args, out_path, header: list[str], rows: list[dict]) -> int:
    """``predict-published`` on an LLM results file: predictions.csv with predicted_value and status."""
    import sys  # noqa: PLC0415 - messages only

    from sim.hw import published  # noqa: PLC0415 - the shared writer of predictions.csv

    results = getattr(args, "results", None)
    if results and read_if_llm(results) is None:
        raise InputError(f"--results {results}: not in the LLM results schema (columns {list(LLM_SCHEMA_COLUMNS)}); "
                         f"expected an LLM results file to calibrate on for LLM rows")
    cal = fitted_calibration(results)
    preds = predict_llm_rows(rows, cal)
    extra = explain(rows, cal) if getattr(args, "explain", False) else None
    out = published.write_predictions(out_path, header, rows, preds, extra)
    ok = sum(1 for _, s in preds if s == "ok")
    print(f"wrote {out}: {len(rows)} LLM rows, {ok} ok, {len(rows) - ok} unsupported")
    bad = [s for _, s in preds if s.startswith("unsupported: row ")]
    for reason in bad[:10]:
        print(f"warning: {args.input}: {reason[len('unsupported: '):]}", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    """``python -m sim.hw.llm_published --write``: fit on the shared file and record the fit."""
    import argparse  # noqa: PLC0415 - command line only

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--write", action="store_true", help=f"record the fit in {FITTED_FILE}")
    ap.add_argument("--results", default=None, help="LLM results file (default: the shared file)")
    a = ap.parse_args(argv)
    cases, skipped, note = lc.load_cases(a.results)
    cal = lc.calibrate(cases, note)
    print(f"fitted {len(cal.params)} units on {len(cases)} rows ({len(skipped)} left out)")
    if a.write:
        print(f"wrote {write_fitted(cal)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
