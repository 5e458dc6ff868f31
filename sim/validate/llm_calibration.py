"""The measured step cost of the real LLM engine: microbenchmarks on this CPU and an affine fit.

The simulator's only input from this machine for the LLM validation. ``measure`` times the real
engine's step (``sim.validate.llm_sut.StepRunner.step``, the same code and session options the
served runs use: gathering the KV cache into the call, the session calls, writing the new keys
and values back, the argmax) over a grid, apart from the compared runs:

- prefill-only steps: one prompt of 16 to the largest prompt tokens, two prompts side by side,
  and a chunk after a cached prefix (chunked prefill);
- decode-only steps: 1 to ``max_seqs`` sequences at mean contexts from short to the longest,
  each sequence's context drawn around the mean (a served batch mixes lengths, and its cache is
  padded to the longest);
- mixed steps: a prompt and a batch of decodes together;

each grid point ``repeats`` times, the grid visited in a new shuffled order each round so that a
slow spell of the machine is spread over the points. Each point is fitted at the *mean* of its
timings: a run lasts the sum of its steps, the ones slowed by other processes included.
Calibrations made before and after the compared runs are pooled timing by timing (``pool``).
The serving loop's own Python work per step (forming the step, bookkeeping, with a runner that
returns at once) is timed too, and added as a fixed per-step cost.

``fit`` finds non-negative coefficients of::

    step_ns = fixed + prefill_call * [prefill_tokens > 0] + per_prefill_token * prefill_tokens
              + per_attn_pair * prefill_attn_tokens2
              + decode_call * [decode_seqs > 0] + per_decode_seq * decode_seqs
              + per_kv_token * decode_kv_tokens

by least squares on relative error (each point weighted by 1 / its mean time). ``MeasuredStepCost``
is that model as a ``sim.cost.protocol.StepCost`` (with ``step_ns_array``). The measurements and
the fit are stored as JSON (``save``/``load``, atomic writes, schema checked on reading);
``python -m sim.validate.llm_calibration SPEC.json`` measures in a process of its own.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim.errors import InputError
from sim.util import atomic

SCHEMA = "sim.llm_step_calibration/1"
#: The fitted terms, in order (``MeasuredStepCost.coef_ns``).
TERMS = ("fixed", "prefill_call", "per_prefill_token", "per_attn_pair", "decode_call", "per_decode_seq",
         "per_kv_token")


def features(prefill_tokens, prefill_attn_tokens2, decode_seqs, decode_kv_tokens) -> np.ndarray:
    """The fit's design matrix (``TERMS`` as columns) for steps given as arrays."""
    pf = np.asarray(prefill_tokens, dtype=np.float64)
    at = np.asarray(prefill_attn_tokens2, dtype=np.float64)
    ds = np.asarray(decode_seqs, dtype=np.float64)
    kv = np.asarray(decode_kv_tokens, dtype=np.float64)
    pf, at, ds, kv = np.broadcast_arrays(pf, at, ds, kv)
    return np.stack([np.ones_like(pf), (pf > 0).astype(np.float64), pf, at, (ds > 0).astype(np.float64), ds, kv],
                    axis=-1)


@dataclass(frozen=True)
class MeasuredStepCost:
    """A ``StepCost`` affine in the step's counts (the module docstring); ``coef_ns`` in ``TERMS`` order."""
    coef_ns: tuple[float, ...]
    source: str = "measured step cost"

    def step_ns(self, prefill_tokens: int, prefill_attn_tokens2: float, decode_seqs: int,
                decode_kv_tokens: int) -> float:
        c = self.coef_ns
        t = c[0]
        if prefill_tokens > 0:
            t += c[1] + c[2] * prefill_tokens + c[3] * prefill_attn_tokens2
        if decode_seqs > 0:
            t += c[4] + c[5] * decode_seqs + c[6] * decode_kv_tokens
        return float(t)

    def step_ns_array(self, prefill_tokens, prefill_attn_tokens2, decode_seqs, decode_kv_tokens) -> np.ndarray:
        return features(prefill_tokens, prefill_attn_tokens2, decode_seqs, decode_kv_tokens) @ np.asarray(self.coef_ns)

    def describe(self) -> str:
        c = self.coef_ns
        return (f"{self.source}: {c[0] / 1e3:.0f} us a step + prefill {c[1] / 1e3:.0f} us a call, "
                f"{c[2] / 1e3:.1f} us/token, {c[3]:.2f} ns/attention pair + decode {c[4] / 1e3:.0f} us a call, "
                f"{c[5] / 1e3:.1f} us/sequence, {c[6]:.1f} ns/KV token")


def attn_pairs(chunk: int, before: int) -> float:
    """``prefill_attn_tokens2`` of one chunk of ``chunk`` tokens after ``before`` cached ones."""
    return chunk * (before + (chunk + 1) / 2)


def fit(rows: np.ndarray) -> tuple[tuple[float, ...], dict]:
    """Non-negative coefficients from rows ``(prefill_tokens, prefill_attn_tokens2, decode_seqs,
    decode_kv_tokens, ns)`` (the module docstring), and the fit's relative residuals."""
    from scipy.optimize import nnls  # noqa: PLC0415 - heavy: only where a fit is made

    rows = np.asarray(rows, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] != 5 or len(rows) < len(TERMS) or not (rows[:, 4] > 0).all():
        raise InputError(f"LLM step calibration: {len(rows)} timed steps: expected at least {len(TERMS)} rows of "
                         f"(prefill_tokens, prefill_attn_tokens2, decode_seqs, decode_kv_tokens, ns > 0)")
    x = features(rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3])
    y = rows[:, 4]
    w = 1.0 / y
    scale = np.maximum(np.abs(x * w[:, None]).max(axis=0), 1e-30)   # columns of similar size for nnls
    coef, _ = nnls(x * w[:, None] / scale, np.ones_like(y))
    coef = coef / scale
    rel = x @ coef / y - 1.0
    return tuple(float(c) for c in coef), {"median_abs_rel_error": float(np.median(np.abs(rel))),
                                           "max_abs_rel_error": float(np.abs(rel).max())}


# -- measuring --------------------------------------------------------------------------------------

def grid(max_seqs: int, max_prompt: int, max_context: int, budget: int) -> list[dict]:
    """The grid of steps (the module docstring): each a dict of prefills ``(chunk, before)`` and
    decodes (``batch``, mean context ``ctx``)."""
    points: list[dict] = []
    for p in sorted({16, 32, 64, max_prompt // 2, (3 * max_prompt) // 4, max_prompt}):
        points.append({"prefills": [(min(p, budget), 0)], "batch": 0, "ctx": 0})
    points.append({"prefills": [(max(1, budget // 2), 0), (max(1, budget // 2), 0)], "batch": 0, "ctx": 0})
    points.append({"prefills": [(min(32, budget), max_prompt - 32)], "batch": 0, "ctx": 0})
    contexts = sorted({max(8, max_context // 6), max_context // 3, max_context // 2, (2 * max_context) // 3})
    batches = sorted({1, 2, max(1, max_seqs // 4), max(1, max_seqs // 2), max_seqs})
    for b in batches:
        for c in contexts:
            points.append({"prefills": [], "batch": b, "ctx": c})
    for b in sorted({max(1, max_seqs // 4), max(1, max_seqs - 1)}):
        for p in (16, min(budget - b, max_prompt // 2)):
            points.append({"prefills": [(p, 0)], "batch": b, "ctx": max_context // 3})
    return points


def _contexts(rng: np.random.Generator, batch: int, mean: int, max_context: int) -> np.ndarray:
    lo, hi = max(1, mean // 2), min(max_context - 1, (3 * mean) // 2)
    return rng.integers(lo, hi + 1, batch)


def loop_overhead_ns(max_seqs: int, budget: int, steps: int = 400) -> float:
    """The serving loop's own time per step (``ContinuousBatcher.run_step`` with a runner that does
    nothing), median over ``steps`` steps with about half the sequence limit running."""
    from sim.validate.llm_sut import ContinuousBatcher  # noqa: PLC0415 - the loop being timed

    class NullRunner:
        class cfg:                                           # noqa: N801 - stands in for an LLMConfig
            vocab_size = 1000

        def __init__(self):
            self.free = list(range(max_seqs))

        def alloc(self):
            return self.free.pop()

        def release(self, slot):
            self.free.append(slot)

        def step(self, prefills, decodes):
            return np.zeros(len(prefills), np.int64), np.zeros(len(decodes), np.int64)

    n = max(2, max_seqs // 2)
    eng = ContinuousBatcher(NullRunner(), np.full(n, 8), np.full(n, steps + 10), max_seqs, budget,
                            lambda s: None, lambda s: None)
    eng.issue([(i, i) for i in range(n)])
    while eng.arrived:
        eng.waiting.append(eng.arrived.popleft())
    times = []
    for _ in range(steps):
        t = time.perf_counter_ns()
        eng.run_step(t)
        times.append(time.perf_counter_ns() - t)
    return float(np.median(times))


def measure(workload: str, max_seqs: int, max_step_tokens: int, threads: int = 1, repeats: int = 5,
            seed: int = 0, log=None) -> dict:
    """Time the grid on the real engine (the module docstring); returns the calibration record."""
    from sim.validate.llm_harness import warm_up  # noqa: PLC0415 - loads onnxruntime's side
    from sim.validate.llm_sut import StepRunner, prompt_tokens  # noqa: PLC0415 - idem
    from sim.workload import llm  # noqa: PLC0415 - only where measured

    wl = llm.load(workload)
    cfg = wl.model
    max_prompt = wl.dataset.input.maximum if wl.dataset is not None else cfg.max_context // 2
    runner = StepRunner(cfg, max_seqs, threads=threads)
    warm_up(runner, cfg, max_seqs, max_prompt)
    points = grid(max_seqs, max_prompt, cfg.max_context, max_step_tokens)
    rng = np.random.default_rng([int(seed), 0xCA1])
    # each point's contexts are drawn once, so its counts are the same in every round
    ctxs = [_contexts(rng, pt["batch"], pt["ctx"], cfg.max_context) if pt["batch"] else np.zeros(0, np.int64)
            for pt in points]
    counts = [(sum(c for c, _ in pt["prefills"]), sum(attn_pairs(c, bf) for c, bf in pt["prefills"]),
               pt["batch"], int((ctx + 1).sum())) for pt, ctx in zip(points, ctxs)]
    times: list[list[int]] = [[] for _ in points]
    t0 = time.perf_counter()
    for r in range(repeats):
        for i in rng.permutation(len(points)):
            pt, ctx = points[i], ctxs[i]
            slots = list(range(max_seqs))
            prefills = [(slots.pop(), prompt_tokens(k, c + before, cfg.vocab_size)[before:], before)
                        for k, (c, before) in enumerate(pt["prefills"])]
            decodes = [(slots[j], 1, int(ctx[j])) for j in range(pt["batch"])]
            t = time.perf_counter_ns()
            runner.step(prefills, decodes)
            times[i].append(time.perf_counter_ns() - t)
        if log:
            log(f"  calibration round {r + 1}/{repeats} ({time.perf_counter() - t0:.0f} s)")
    loop_ns = loop_overhead_ns(max_seqs, max_step_tokens)
    coef, quality, rows = fit_samples(counts, times, loop_ns)
    from sim.util.fingerprint import fingerprint, fingerprint_hash  # noqa: PLC0415 - reads onnxruntime's version

    fp = fingerprint(intra_op_threads=threads, inter_op_threads=1)
    return {"schema": SCHEMA, "workload": wl.name, "max_seqs": max_seqs, "max_step_tokens": max_step_tokens,
            "threads": threads, "repeats": repeats, "fingerprint": fp, "fingerprint_hash": fingerprint_hash(fp),
            "measured_at_unix_s": time.time(), "wall_s": time.perf_counter() - t0,
            "loop_overhead_ns": loop_ns, "terms": list(TERMS), "coef_ns": list(coef), "fit": quality,
            "columns": ["prefill_tokens", "prefill_attn_tokens2", "decode_seqs", "decode_kv_tokens", "mean_ns"],
            "rows": rows.tolist(), "counts": [list(c) for c in counts], "samples_ns": times}


def fit_samples(counts: list, times: list[list[int]], loop_ns: float) -> tuple[tuple[float, ...], dict, np.ndarray]:
    """The fit over grid points with counts ``counts[i]`` and timings ``times[i]``: each point at the
    mean of its timings (a run's time is the sum of its steps, slow ones included), plus the
    loop's own time per step in the fixed term. Returns the coefficients, the fit's quality and
    the rows fitted."""
    rows = np.array([(*counts[i], float(np.mean(times[i]))) for i in range(len(counts))])
    coef, quality = fit(rows)
    return (coef[0] + loop_ns, *coef[1:]), quality, rows


def pool(records: list[dict]) -> dict:
    """Calibrations of one grid (before and after the runs) pooled timing by timing, refitted."""
    first = records[0]
    for r in records[1:]:
        if r["counts"] != first["counts"]:
            raise InputError("LLM step calibrations of different grids cannot be pooled; expected the same "
                             "workload, limits and seed")
    times = [sum((r["samples_ns"][i] for r in records), []) for i in range(len(first["counts"]))]
    loop_ns = float(np.median([r["loop_overhead_ns"] for r in records]))
    coef, quality, rows = fit_samples(first["counts"], times, loop_ns)
    return {**first, "coef_ns": list(coef), "fit": quality, "rows": rows.tolist(), "samples_ns": times,
            "loop_overhead_ns": loop_ns, "pooled": len(records),
            "coef_ns_each": [r["coef_ns"] for r in records]}


def save(path: str | Path, record: dict) -> Path:
    return atomic.write_json(path, record)


def load(path: str | Path) -> dict:
    """A stored calibration, checked."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; expected an LLM step calibration (python -m sim validate "
                         f"--workload tiny-llm measures one)") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable JSON file ({exc}); expected an LLM step calibration") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise InputError(f"{path}: field 'schema' = {data.get('schema') if isinstance(data, dict) else data!r}: "
                         f"expected {SCHEMA!r}")
    coef = data.get("coef_ns")
    if not (isinstance(coef, list) and len(coef) == len(TERMS)
            and all(isinstance(c, (int, float)) and np.isfinite(c) and c >= 0 for c in coef)):
        raise InputError(f"{path}: field 'coef_ns' = {coef!r}: expected {len(TERMS)} non-negative numbers "
                         f"({', '.join(TERMS)})")
    return data


def cost_of(record: dict) -> MeasuredStepCost:
    return MeasuredStepCost(tuple(float(c) for c in record["coef_ns"]),
                            f"{record['workload']} measured on this CPU ({record['threads']} thread(s))")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m sim.validate.llm_calibration SPEC.json", file=sys.stderr)
        return 2
    try:
        spec = json.loads(Path(argv[0]).read_text())
        rec = measure(spec["workload"], int(spec["max_seqs"]), int(spec["max_step_tokens"]),
                      int(spec.get("threads", 1)), int(spec.get("repeats", 5)), int(spec.get("seed", 0)),
                      log=lambda m: print(m, flush=True))
        save(Path(spec["outdir"]) / spec.get("result_file", "calibration.json"), rec)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
