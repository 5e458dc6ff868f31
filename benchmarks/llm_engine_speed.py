"""How fast the LLM serving engine (``sim.sut.llm``) simulates an MLPerf-length llama2-70b run.

An MLPerf llama2-70b Server run is at least one pass over its 24,576 samples (prompts of up to
1,024 tokens, outputs averaging about 294 tokens). This script draws lengths of that shape
(seeded: prompts from a gamma distribution of mean ``--mean-input``, outputs of mean
``--mean-output``, both capped at 1,024), prices a step with a simple roofline of llama2-70b
(defined here; ``sim.cost.llm_roofline`` is used instead where it exists and ``--cost roofline``
asks for it), and times on one core, for two 8-device systems:

- one replica at TP8 (bf16 weights and KV cache, 80 GB devices);
- eight replicas at TP1 (fp8 weights and KV cache, 141 GB devices);

an Offline run (every query at time 0) and a Server run (Poisson arrivals at ``--load`` of the
Offline throughput), printing wall time, steps, tokens simulated, preemptions and peak memory
(``tracemalloc``, Python allocations, and the process's maximum resident size). Where
``sim.run_llm`` exists, it also times one full Server run through it (LoadGen's traffic and
metrics included) and its peak search, on its default llama2-70b system and roofline.

    python benchmarks/llm_engine_speed.py [--queries 24576] [--load 0.8] [--no-peak]
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc

import numpy as np

from sim.sut.llm import EngineSpec, Layout, blocks_from_memory, simulate_llm

# llama2-70b (public model config): 80 layers, hidden 8192, 64 heads, 8 KV heads of 128, FFN 28672
LAYERS, HIDDEN, KV_HEADS, HEAD_DIM = 80, 8192, 8, 128
PARAMS = 68.98e9
KV_ELEMS_PER_TOKEN = 2 * LAYERS * KV_HEADS * HEAD_DIM


class Roofline:
    """A step of llama2-70b on ``tp`` devices: the larger of compute and memory time, plus two
    all-reduces per layer (TP > 1) and a fixed per-step overhead."""

    def __init__(self, tp: int, peak_flops: float, bandwidth_Bps: float, weight_bytes: float, kv_bytes: float,
                 mfu: float = 0.6, bw_eff: float = 0.8, allreduce_ns: float = 35_000, overhead_ns: float = 200_000):
        self.tp, self.flops, self.bw = tp, peak_flops * mfu * tp, bandwidth_Bps * bw_eff * tp
        self.wbytes, self.kvb = weight_bytes * PARAMS, kv_bytes * KV_ELEMS_PER_TOKEN
        self.fixed = overhead_ns + (2 * LAYERS * allreduce_ns if tp > 1 else 0.0)

    def step_ns_array(self, prefill_tokens, prefill_attn_tokens2, decode_seqs, decode_kv_tokens):
        tokens = np.asarray(prefill_tokens) + np.asarray(decode_seqs)
        flops = 2 * PARAMS * tokens + 4 * LAYERS * HIDDEN * (np.asarray(prefill_attn_tokens2)
                                                             + np.asarray(decode_kv_tokens))
        nbytes = self.wbytes + self.kvb * (np.asarray(decode_kv_tokens) + np.asarray(prefill_tokens))
        return np.maximum(flops / self.flops, nbytes / self.bw) * 1e9 + self.fixed

    def step_ns(self, prefill_tokens, prefill_attn_tokens2, decode_seqs, decode_kv_tokens):
        flops = 2 * PARAMS * (prefill_tokens + decode_seqs) + 4 * LAYERS * HIDDEN * (prefill_attn_tokens2
                                                                                   + decode_kv_tokens)
        nbytes = self.wbytes + self.kvb * (decode_kv_tokens + prefill_tokens)
        return max(flops / self.flops, nbytes / self.bw) * 1e9 + self.fixed

    def describe(self):
        return f"llama2-70b roofline, TP{self.tp}"


def systems():
    kv_bf16, kv_fp8 = 2 * KV_ELEMS_PER_TOKEN, KV_ELEMS_PER_TOKEN
    tp8 = EngineSpec(kv_blocks=blocks_from_memory(80e9, 2 * PARAMS, kv_bf16, 16, devices=8), block_size=16,
                     max_seqs=1024, max_step_tokens=8192, layout=Layout(tp=8))
    tp1 = EngineSpec(kv_blocks=blocks_from_memory(141e9, PARAMS, kv_fp8, 16, devices=1), block_size=16,
                     max_seqs=256, max_step_tokens=4096, replicas=8)
    return [("1 replica TP8, 8x 80 GB, bf16", tp8, Roofline(8, 989e12, 3.35e12, 2, 2)),
            ("8 replicas TP1, 8x 141 GB, fp8", tp1, Roofline(1, 1979e12, 4.8e12, 1, 1))]


def lengths(n: int, mean_in: float, mean_out: float, seed: int):
    rng = np.random.default_rng(seed)
    inp = np.clip(np.rint(rng.gamma(2.0, mean_in / 2.0, n)), 1, 1024).astype(np.int64)
    out = np.clip(np.rint(rng.gamma(1.5, mean_out / 1.5, n)), 2, 1024).astype(np.int64)
    return inp, out


def timed(spec, cost, sched, inp, out):
    """The run timed, then run again under ``tracemalloc`` (which slows Python down) for its peak."""
    t0, c0 = time.perf_counter(), time.process_time()
    r = simulate_llm(spec, cost, sched, inp, out)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    tracemalloc.start()
    simulate_llm(spec, cost, sched, inp, out)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return r, wall, cpu, peak


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=24576)
    ap.add_argument("--mean-input", type=float, default=700.0)
    ap.add_argument("--mean-output", type=float, default=294.0)
    ap.add_argument("--load", type=float, default=0.8, help="Server QPS as a fraction of Offline throughput")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--run-qps", type=float, default=20.0, help="Server QPS of the sim.run_llm run")
    ap.add_argument("--no-peak", action="store_true", help="skip the peak search")
    args = ap.parse_args(argv)
    inp, out = lengths(args.queries, args.mean_input, args.mean_output, args.seed)
    print(f"{args.queries} queries, input mean {inp.mean():.0f} (max {inp.max()}), "
          f"output mean {out.mean():.1f} (max {out.max()}), {int(out.sum()):,} output tokens")
    print("system | run | QPS | wall s | CPU s | steps | tokens/s sim | TTFT mean ms | TPOT mean ms | preemptions "
          "| peak KV blocks | tracemalloc MiB | wall tokens/s")
    for name, spec, cost in systems():
        r, wall, cpu, peak = timed(spec, cost, np.zeros(args.queries, dtype=np.int64), inp, out)
        dur_s = r.complete_ns.max() / 1e9
        offline_qps = args.queries / dur_s
        row(name, "Offline", offline_qps, r, wall, cpu, peak, np.zeros(args.queries))
        qps = args.load * offline_qps
        rng = np.random.default_rng(args.seed + 1)
        sched = np.cumsum(np.rint(rng.exponential(1e9 / qps, args.queries))).astype(np.int64)
        r, wall, cpu, peak = timed(spec, cost, sched, inp, out)
        row(name, "Server", qps, r, wall, cpu, peak, sched)
    print(f"max resident set size: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    peak_search(args)
    return 0


def row(name, run, qps, r, wall, cpu, peak, sched):
    dur_s = (r.complete_ns.max() - sched.min()) / 1e9
    ttft = (r.first_token_ns - sched) / 1e6
    tpot = (r.complete_ns - r.first_token_ns) / np.maximum(r.n_tokens - 1, 1) / 1e6
    print(f"{name} | {run} | {qps:.1f} | {wall:.3f} | {cpu:.3f} | {r.steps:,} | {r.tokens / dur_s:,.0f} | {ttft.mean():.0f} | "
          f"{tpot.mean():.1f} | {r.preemptions} | {int(r.peak_kv_blocks.max()):,} | {peak / 2**20:.1f} | "
          f"{r.tokens / wall:,.0f}")


def peak_search(args) -> None:
    """A full ``sim.run_llm`` Server run and a peak search on its default llama2-70b system."""
    try:
        from sim.run_llm import peak_llm_qps, simulate_llm_run  # noqa: PLC0415 - optional: the run glue
    except ImportError as e:
        print(f"peak search: sim.run_llm not importable ({e}), not timed")
        return
    t0, c0 = time.perf_counter(), time.process_time()
    r = simulate_llm_run("Server", "llama2-70b", overrides={"server_target_qps": args.run_qps})
    print(f"sim.run_llm Server run at {args.run_qps:g} QPS ({len(r.scheduled_ns):,} queries, "
          f"{r.engine.steps:,} steps; {r.system.describe(r.workload.model)}): "
          f"{time.perf_counter() - t0:.2f} s wall, {time.process_time() - c0:.2f} s CPU")
    if args.no_peak:
        return
    t0, c0 = time.perf_counter(), time.process_time()
    peak = peak_llm_qps("llama2-70b")
    print(f"peak search: {peak.peak_qps:.3f} QPS in {len(peak.trials)} trials, "
          f"{time.perf_counter() - t0:.1f} s wall, {time.process_time() - c0:.1f} s CPU")


if __name__ == "__main__":
    raise SystemExit(main())
