"""One simulated serving run: requests in, first-token and completion times out.

``simulate_llm(system, cost, scheduled_ns, input_tokens, output_tokens)`` takes per-sample
arrays in issue order (arrival times, nondecreasing; prompt and output lengths, each sample
generating exactly ``output_tokens`` tokens) and an ``EngineSpec`` (replicas of one engine
behind a router) or a ``DisaggSpec`` (prefill and decode pools), checks them, refuses a
sequence that could never fit its KV cache, and runs the engines. ``cost`` is a
``sim.cost.protocol.StepCost`` for one replica's step (with ``decode_cost`` for the decode pool of
a disaggregated system, the same cost where not given).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.errors import InputError
from sim.sut.llm.disagg import run_disagg
from sim.sut.llm.engine import StepTrace
from sim.sut.llm.kv_cache import check_fits
from sim.sut.llm.parallel import virtual_engine_limits
from sim.sut.llm.router import build_pool, route
from sim.sut.llm.scheduler import Samples
from sim.sut.llm.system import DisaggSpec, EngineSpec

#: The largest prompt or output length accepted (far beyond any model's context).
MAX_TOKENS = 1 << 24


@dataclass
class LLMResult:
    """Per-sample times (ns, same clock as ``scheduled_ns``) and the run's counters."""
    first_token_ns: np.ndarray
    complete_ns: np.ndarray
    n_tokens: np.ndarray
    engine: np.ndarray                 # the engine that completed each sample (index into engine_names)
    engine_names: list[str]
    steps: int
    preemptions: int
    peak_kv_blocks: np.ndarray         # per engine
    kv_arrival_ns: np.ndarray | None   # disaggregated: when each sample's KV reached the decode pool (-1: none)
    trace: StepTrace | None

    @property
    def tokens(self) -> int:
        return int(self.n_tokens.sum())


def _array(values, name: str, source: str, minimum: int, maximum: int) -> np.ndarray:
    a = np.asarray(values)
    if a.ndim != 1 or a.dtype.kind not in "iuf":
        raise InputError(f"{source}: field '{name}': expected a one-dimensional array of integers")
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a) | (a != np.round(a))
        if bad.any():
            i = int(np.argmax(bad))
            raise InputError(f"{source}: field '{name}' = {a[i]!r} at sample {i}: expected an integer")
    a = a.astype(np.int64)
    bad = (a < minimum) | (a > maximum)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(f"{source}: field '{name}' = {int(a[i])} at sample {i}: "
                         f"expected an integer from {minimum:,} to {maximum:,}")
    return a


def check_requests(scheduled_ns, input_tokens, output_tokens, source: str = "LLM requests"):
    """The three per-sample arrays as int64, checked (one-line ``InputError`` otherwise)."""
    sched = _array(scheduled_ns, "scheduled_ns", source, 0, 1 << 62)
    inp = _array(input_tokens, "input_tokens", source, 1, MAX_TOKENS)
    out = _array(output_tokens, "output_tokens", source, 1, MAX_TOKENS)
    if not len(sched) == len(inp) == len(out):
        raise InputError(f"{source}: scheduled_ns, input_tokens and output_tokens have {len(sched)}, {len(inp)} "
                         f"and {len(out)} samples: expected the same number")
    if len(sched) > 1 and (np.diff(sched) < 0).any():
        i = int(np.argmax(np.diff(sched) < 0)) + 1
        raise InputError(f"{source}: field 'scheduled_ns' = {int(sched[i])} at sample {i}: expected issue order "
                         f"(not before sample {i - 1}'s {int(sched[i - 1])})")
    return sched, inp, out


def _refuse_impossible(spec: EngineSpec, inp, out, what: str) -> None:
    kv, _ = virtual_engine_limits(spec.kv_blocks, spec.max_seqs, spec.layout.pp)
    check_fits(inp, out, kv, spec.block_size, f"{spec.source}{what}")


def simulate_llm(system: EngineSpec | DisaggSpec, cost, scheduled_ns, input_tokens, output_tokens, *,
                 decode_cost=None, trace: bool = False) -> LLMResult:
    """Serve the requests on ``system``; see the module docstring."""
    sched, inp, out = check_requests(scheduled_ns, input_tokens, output_tokens)
    for c in (cost, decode_cost):
        if c is not None and not callable(getattr(c, "step_ns", None)):
            raise InputError(f"LLM cost model {type(c).__name__}: expected a step cost with step_ns(prefill_tokens, "
                             f"prefill_attn_tokens2, decode_seqs, decode_kv_tokens)")
    n = len(sched)
    if isinstance(system, DisaggSpec):
        _refuse_impossible(system.prefill, inp, np.ones(n, dtype=np.int64), " (prefill pool)")
        _refuse_impossible(system.decode, inp, out, " (decode pool)")
        first, complete, e_p, e_d, names, served, arrive = run_disagg(
            system, cost, decode_cost if decode_cost is not None else cost, sched, inp, out, trace)
        engines = e_p + e_d
    elif isinstance(system, EngineSpec):
        _refuse_impossible(system, inp, out, "")
        samples = Samples(inp, out)
        reps, names = build_pool(system, cost, samples, trace)
        served = route(reps, np.arange(n, dtype=np.int64), sched, system.router)
        first = np.asarray(samples.first_ns, dtype=np.int64)
        complete = np.asarray(samples.complete_ns, dtype=np.int64)
        arrive = None
        engines = [e for r in reps for e in r]
    else:
        raise InputError(f"LLM system {type(system).__name__}: expected an EngineSpec or a DisaggSpec")
    return LLMResult(
        first_token_ns=first, complete_ns=complete, n_tokens=out.copy(), engine=served, engine_names=names,
        steps=sum(e.steps for e in engines), preemptions=sum(e.sched.preemptions for e in engines),
        peak_kv_blocks=np.array([e.sched.peak_used for e in engines], dtype=np.int64), kv_arrival_ns=arrive,
        trace=StepTrace.concat([e.step_trace() for e in engines], names) if trace else None)
