"""The real LLM SUT driven by the real MLPerf LoadGen with token latencies: one run per process.

``python -m sim.validate.llm_harness <spec.json>`` (started by
``sim.validate.process.run_in_subprocess``: LoadGen reads its embedded mlperf.conf once per
process) runs one LoadGen performance test of the spec's scenario against the continuous-batching
SUT of ``sim.validate.llm_sut``: LoadGen's issue callback hands the samples to the engine; the
engine calls ``FirstTokenComplete`` at the end of the step that produced a sample's first token
and ``QuerySamplesComplete`` (with ``n_tokens``, the sample's drawn output length) at the end of
the step that produced its last. ``Interactive`` is a Server run with the model's
``-interactive`` settings.

The spec: ``workload`` (an LLM workload name or file), ``scenario``, ``mlperf_model``,
``overrides`` (LoadGen settings by the simulator's field names, ``LLM_LOADGEN_FIELDS``), ``total``
(samples in the QSL), ``seed`` (lengths and prompts), ``engine`` (``max_seqs``,
``max_step_tokens``, ``threads``), ``outdir``. The child writes LoadGen's logs,
``harness.json`` (LoadGen's verdict and results from its detail log, the engine's counters, the
CPU other processes used during the run: ``sim.validate.machine.CpuMonitor``) and
``llm_run.npz`` (``ContinuousBatcher.arrays``) into ``outdir``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from sim.errors import InputError
from sim.validate import require_loadgen
from sim.validate.harness import LOADGEN_FIELDS, run_test
from sim.validate.machine import _current_niceness
from sim.validate.process import jsonable

#: LoadGen's settings the LLM runs set, by the simulator's field name: LoadGen's attribute, conversion
LLM_LOADGEN_FIELDS = {
    **LOADGEN_FIELDS,
    "server_ttft_latency_ns": ("ttft_latency", int),
    "server_tpot_latency_ns": ("tpot_latency", int),
    "sample_concatenate_permutation": ("sample_concatenate_permutation", bool),
}

WARMUP_STEPS = 3


def loadgen_model(mlperf_model: str, scenario: str) -> tuple[str, str]:
    """LoadGen's (model, scenario) for a run: Interactive is Server with the ``-interactive`` key."""
    if scenario == "Interactive":
        from sim.loadgen.settings import interactive_model  # noqa: PLC0415 - only for Interactive

        return interactive_model(mlperf_model), "Server"
    return mlperf_model, scenario


def warm_up(runner, cfg, max_seqs: int, max_prompt: int) -> None:
    """A few steps of every kind before LoadGen starts (onnxruntime's first calls are slow)."""
    from sim.validate.llm_sut import prompt_tokens  # noqa: PLC0415 - loads onnxruntime's side

    p = prompt_tokens(0, max_prompt, cfg.vocab_size)
    for _ in range(WARMUP_STEPS):
        runner.step([(0, p, 0)], [(i, 1, min(max_prompt, cfg.max_context - 1)) for i in range(1, max_seqs)])
        runner.step([], [(i, 1, 8) for i in range(max_seqs)])


def run_llm_loadgen(spec: dict) -> dict:
    """One LoadGen test against the real LLM SUT; writes the run's folder (module docstring)."""
    lg = require_loadgen()
    from sim.validate.llm_sut import ContinuousBatcher, StepRunner  # noqa: PLC0415 - loads onnxruntime
    from sim.workload import llm  # noqa: PLC0415 - light, but only the child needs it

    workload = llm.load(spec["workload"])
    cfg = workload.model
    scenario = spec["scenario"]
    model, lg_scenario = loadgen_model(spec["mlperf_model"], scenario)
    out = Path(spec["outdir"]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.chdir(out)                                    # no stray audit.config applies
    conf = out / "user.conf"
    conf.write_text("# all settings are set explicitly by the harness after FromConfig\n")
    settings = lg.TestSettings()
    rc = settings.FromConfig(str(conf), model, lg_scenario)
    if rc != 0:
        raise InputError(f"LoadGen's FromConfig({conf}, {model!r}, {lg_scenario}) failed with code {rc}")
    settings.scenario = getattr(lg.TestScenario, lg_scenario)
    settings.mode = lg.TestMode.PerformanceOnly
    for key, value in spec.get("overrides", {}).items():
        if key not in LLM_LOADGEN_FIELDS:
            raise InputError(f"llm harness: setting {key!r} cannot be passed to LoadGen; expected one of "
                             f"{sorted(LLM_LOADGEN_FIELDS)}")
        attr, conv = LLM_LOADGEN_FIELDS[key]
        setattr(settings, attr, conv(value))

    total = int(spec["total"])
    inp, outp = workload.sample_lengths(total, int(spec.get("seed", 0)))
    eng = spec["engine"]
    max_seqs, budget, threads = int(eng["max_seqs"]), int(eng["max_step_tokens"]), int(eng.get("threads", 1))
    t0 = time.perf_counter()
    runner = StepRunner(cfg, max_seqs, threads=threads, seed=int(spec.get("model_seed", 0)))
    warm_up(runner, cfg, max_seqs, int(inp.max()))
    setup_s = time.perf_counter() - t0

    def first_token(seqs):
        lg.FirstTokenComplete([lg.QuerySampleResponse(s.rid, 0, 0, 1) for s in seqs])

    def complete(seqs):
        lg.QuerySamplesComplete([lg.QuerySampleResponse(s.rid, 0, 0, s.n_out) for s in seqs])

    engine = ContinuousBatcher(runner, inp, outp, max_seqs, budget, first_token, complete,
                               seed=int(spec.get("seed", 0)))
    sut = lg.ConstructSUT(lambda qs: engine.issue([(q.id, q.index) for q in qs]), lambda: None)
    wall_s, machine, detail = run_test(lg, engine, sut, settings, out, total, total)
    arrays = engine.arrays()
    np.savez_compressed(out / "llm_run.npz", **arrays)
    result = {
        "schema": "sim.llm_harness_run/1",
        "workload": workload.name, "scenario": scenario, "mlperf_model": model, "engine": eng,
        "overrides": spec.get("overrides", {}), "total": total, "seed": int(spec.get("seed", 0)),
        "valid": detail.get("result_validity") == "VALID", "result_validity": detail.get("result_validity"),
        "loadgen": {k: v for k, v in detail.items() if k.startswith(("result_", "early_stopping", "generated_",
                                                                     "effective_"))
                    and k != "effective_test_mode"},
        "samples_issued": len(engine.issue_ns), "steps": len(engine.steps),
        "tokens_generated": int(sum(outp[i] for i in engine.index)),
        "setup_s": setup_s, "wall_s": wall_s, "machine": {**machine, "niceness": _current_niceness()},
        "errors": engine.errors + ([f"LoadGen logged {detail.get('num_errors')} errors"]
                                   if detail.get("num_errors") else []),
    }
    (out / "harness.json").write_text(json.dumps(result, indent=1, default=jsonable) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m sim.validate.llm_harness SPEC.json", file=sys.stderr)
        return 2
    try:
        run_llm_loadgen(json.loads(Path(argv[0]).read_text()))
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
