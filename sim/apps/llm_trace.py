"""An LLM run as a Chrome trace (the JSON trace-event format of ``sim.apps.trace``): one slice per
engine iteration, on one track per engine, named by what the step computed (prefill tokens,
decoding sequences), with the step's numbers as its arguments; a counter per engine shows the KV
blocks in use. Open it in ui.perfetto.dev.

Long runs are cut to the first ``max_steps`` steps (``otherData`` says how many there were).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sim.errors import InputError
from sim.util import atomic
from sim.util.checks import LIMITS, check_work, number

PID_ENGINE0 = 10
#: Events one exported step adds: its slice and one counter value.
EVENTS_PER_STEP = 2
MAX_TRACE_STEPS = LIMITS["trace_events"] // EVENTS_PER_STEP


def llm_chrome_trace(run, max_steps: int = 100_000) -> dict:
    """The trace of a ``sim.run_llm.LLMRunResult`` run with ``trace=True``, as a dict."""
    max_steps = number(max_steps, "llm_chrome_trace", "max_steps", minimum=1, maximum=MAX_TRACE_STEPS, integer=True)
    tr = run.engine.trace
    if tr is None:
        raise InputError("llm_chrome_trace: the run kept no step records; expected simulate_llm_run(..., trace=True)")
    n = len(tr.start_ns)
    k = min(n, max_steps)
    check_work("trace_events", EVENTS_PER_STEP * k, f"a trace of {k:,} steps")
    names = list(tr.engine_names) or [f"engine {i}" for i in range(int(np.max(tr.engine)) + 1 if n else 0)]
    events: list[dict] = []
    for i, name in enumerate(names):
        events.append({"ph": "M", "name": "process_name", "pid": PID_ENGINE0 + i, "tid": 0, "args": {"name": name}})
        events.append({"ph": "M", "name": "process_sort_index", "pid": PID_ENGINE0 + i, "tid": 0,
                       "args": {"sort_index": i}})
    for j in range(k):
        e = int(tr.engine[j])
        pre, dec = int(tr.prefill_tokens[j]), int(tr.decode_seqs[j])
        label = " + ".join(x for x in ((f"prefill {pre}" if pre else ""), (f"decode {dec}" if dec else "")) if x)
        ts = float(tr.start_ns[j]) / 1e3
        events.append({"name": label or "idle step", "cat": "step", "ph": "X", "pid": PID_ENGINE0 + e, "tid": 0,
                       "ts": ts, "dur": float(tr.duration_ns[j]) / 1e3,
                       "args": {"step": j, "prefill_tokens": pre,
                                "prefill_attn_tokens2": float(tr.prefill_attn_tokens2[j]),
                                "decode_seqs": dec, "decode_kv_tokens": int(tr.decode_kv_tokens[j]),
                                "kv_blocks_used": int(tr.kv_blocks_used[j])}})
        events.append({"name": "KV blocks used", "ph": "C", "pid": PID_ENGINE0 + e, "tid": 0, "ts": ts,
                       "args": {"blocks": int(tr.kv_blocks_used[j])}})
    other = {"source": "mlperf-inference-sim", "steps_exported": k, "steps_total": n, "scenario": run.scenario,
             "workload": run.workload.name, "system": run.system.name, "cost_model": run.cost.describe()
             if hasattr(run.cost, "describe") else type(run.cost).__name__}
    return {"traceEvents": events, "displayTimeUnit": "ms", "otherData": other}


def write_llm_trace(run, path: str | Path, max_steps: int = 100_000) -> Path:
    """Write ``llm_chrome_trace(run)`` to ``path`` atomically."""
    return atomic.write_text(path, json.dumps(llm_chrome_trace(run, max_steps), separators=(",", ":")) + "\n")
