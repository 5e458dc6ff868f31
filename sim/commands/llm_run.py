"""The LLM branch of ``python -m sim run`` and ``python -m sim search``: an LLM workload
(``workloads/llm/*.yaml`` or an LLM workload file) runs through ``sim.run_llm`` instead of the
batch engine. ``run`` and ``search`` call ``run_llm`` / ``search_llm`` when ``is_llm_workload``.

Flags of their own: ``--lengths FILE.csv`` (a user's ``input_tokens,output_tokens`` per sample)
and ``--plot FILE`` (TTFT/TPOT distributions for ``run``, tokens/s and p99s against load for
``search``); ``--scenario Interactive`` runs Server with the ``<model>-interactive`` settings.
"""

from __future__ import annotations

from sim.commands.args import overrides
from sim.errors import InputError
from sim.workload.llm import is_llm_workload

__all__ = ["add_llm_args", "is_llm_workload", "run_llm", "search_llm"]

#: Short trials of an LLM peak search: simulated seconds, and the loaded sample set (equal-issue
#: runs are whole passes over it, so it bounds the queries of a trial).
SHORT_TRIAL_S = 120.0
SHORT_TRIAL_SAMPLES = 2048


def add_llm_args(p) -> None:
    p.add_argument("--lengths", metavar="CSV",
                   help="LLM workloads: token lengths per sample (input_tokens,output_tokens)")
    p.add_argument("--plot", metavar="FILE", help="LLM workloads: write a figure (.png, .svg, or no suffix for both)")


def _system(args, wl):
    from sim.run_llm import default_llm_system, load_llm_system  # noqa: PLC0415 - the LLM engine, only for LLM runs

    if args.system:
        return load_llm_system(args.system)
    return default_llm_system(wl)


def _refuse_batch_flags(args, command: str) -> None:
    for flag, value in (("--service-time-ms", args.service_time_ms), ("--small", args.small or None),
                        ("--input-shape", getattr(args, "input_shape", None))):
        if value:
            raise InputError(f"{command} {flag}: not used by LLM workload {args.workload!r}; expected the LLM flags "
                             f"(--system FILE of kind llm, --lengths CSV)")


def run_llm(args) -> int:
    """``python -m sim run --workload <LLM>``: the summary, the verdict and its reason, notes."""
    from sim.run_llm import simulate_llm_run  # noqa: PLC0415 - the LLM engine, only for LLM runs
    from sim.workload import llm  # noqa: PLC0415

    _refuse_batch_flags(args, "run")
    wl = llm.load(args.workload)
    system = _system(args, wl)
    print(f"simulating {wl.name} ({wl.model.describe()}), {args.scenario}"
          + (f" at {args.qps:g} QPS" if args.qps is not None and args.scenario != "Offline" else ""), flush=True)
    want_trace = bool(args.trace)
    r = simulate_llm_run(args.scenario, wl, system=system, mlperf_model=args.mlperf_model, user_conf=args.user_conf,
                         overrides=overrides(args), seed=args.seed, lengths_csv=args.lengths, trace=want_trace)
    print(f"note: {system.default_note}" if system.default_note else f"system: {system.describe(wl.model)}")
    print(f"cost model: {r.cost.describe()}")
    for note in r.notes:
        if note and note != system.default_note:
            print(f"note: {note}")
    lengths = wl.dataset if not args.lengths else None
    print(f"lengths: {len(r.input_tokens):,} samples, mean input {r.input_tokens.mean():.1f} and output "
          f"{r.output_tokens.mean():.1f} tokens"
          + (f" (input {lengths.input.describe()}; output {lengths.output.describe()})" if lengths else
             f" (from {args.lengths})"))
    print(f"engine: {r.engine.steps:,} steps, {r.engine.preemptions:,} preemptions, peak KV blocks "
          f"{', '.join(str(int(b)) for b in r.engine.peak_kv_blocks)}")
    print("verdict: VALID" if r.metrics.valid else f"verdict: {r.verdict_reason()}", flush=True)
    print(r.summary_text(), end="")
    if args.out:
        print("wrote " + ", ".join(str(p) for p in r.write(args.out)))
    if args.trace:
        from sim.apps.llm_trace import write_llm_trace  # noqa: PLC0415 - only with --trace

        print(f"wrote {write_llm_trace(r, args.trace)} (Chrome trace, one slice per iteration: ui.perfetto.dev)")
    if args.plot:
        from sim.apps.llm_plots import token_latency_cdf  # noqa: PLC0415 - matplotlib, only with --plot

        if r.metrics.ttft is None:
            raise InputError("--plot: an Offline run has no TTFT/TPOT statistics; expected --scenario Server or "
                             "Interactive")
        token_latency_cdf([r], args.plot)
        print(f"wrote {args.plot} (TTFT and TPOT distributions)")
    return 0


def search_llm(args) -> int:
    """``python -m sim search --workload <LLM>``: the highest QPS meeting both the TTFT and TPOT limits."""
    from sim.run_llm import peak_llm_qps, simulate_llm_run  # noqa: PLC0415 - the LLM engine, only for LLM runs
    from sim.workload import llm  # noqa: PLC0415

    _refuse_batch_flags(args, "search")
    wl = llm.load(args.workload)
    system = _system(args, wl)
    over = overrides(args)
    if not args.mlperf_length and "min_duration_ns" not in over:
        over = {"min_duration_ns": round(SHORT_TRIAL_S * 1e9), "min_query_count": 1,
                "performance_sample_count_override": SHORT_TRIAL_SAMPLES, **over}
        length = (f"short trials: {SHORT_TRIAL_S:g} s simulated over a loaded set of {SHORT_TRIAL_SAMPLES} samples "
                  f"(--mlperf-length for MLPerf's)")
    else:
        length = "trials of MLPerf length" if args.mlperf_length else "trials of --min-duration-ms"
    print(f"searching {wl.name} {args.scenario}; {length}", flush=True)
    print(f"note: {system.default_note}" if system.default_note else f"system: {system.describe(wl.model)}")
    if args.scenario == "Offline":
        r = simulate_llm_run("Offline", wl, system=system, mlperf_model=args.mlperf_model, user_conf=args.user_conf,
                             overrides=over, seed=args.seed, lengths_csv=args.lengths)
        print(f"Offline: {r.metrics.headline_name} = {r.metrics.headline_value:.6g} "
              f"({'VALID' if r.metrics.valid else r.verdict_reason()})")
        return 0
    if args.scenario not in ("Server", "Interactive"):
        raise InputError(f"search --scenario {args.scenario}: expected Server, Interactive or Offline for LLM "
                         f"workload {wl.name}")
    rows = []
    limits = {}

    def record(r):
        m = r.metrics
        limits.update(ttft=r.settings.server_ttft_latency_ns, tpot=r.settings.server_tpot_latency_ns)
        rows.append((r.settings.server_target_qps, m.headline_value, m.ttft_percentile_ns or 0,
                     m.tpot_percentile_ns or 0, m.valid))

    peak = peak_llm_qps(wl, scenario=args.scenario, system=system, mlperf_model=args.mlperf_model,
                        user_conf=args.user_conf, overrides=over, seed=args.seed, lengths_csv=args.lengths,
                        rel_tol=args.rel_tol, repeats=args.repeats, on_trial=record)
    print(f"{'target QPS':>12} {'valid':>7} {'TTFT p99 ms':>12} {'TPOT p99 ms':>12} {'tokens/s':>10}")
    for q, tok, ttft, tpot, ok in rows:
        print(f"{q:12.3f} {'VALID' if ok else 'INVALID':>7} {ttft / 1e6:12.1f} {tpot / 1e6:12.2f} {tok:10.1f}")
    print(peak.describe().replace("Server QPS", f"{args.scenario} QPS (TTFT and TPOT limits)"))
    if args.plot:
        from sim.apps.llm_plots import tokens_vs_load  # noqa: PLC0415 - matplotlib, only with --plot

        tokens_vs_load(rows, args.plot, ttft_limit_ns=limits.get("ttft"), tpot_limit_ns=limits.get("tpot"))
        print(f"wrote {args.plot} (tokens/s and p99 TTFT/TPOT against target QPS)")
    return 0 if peak.peak_qps else 1
