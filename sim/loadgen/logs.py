"""LoadGen's output files, written from a simulated run.

``summary_text`` lays out ``mlperf_log_summary.txt`` line for line as LoadGen 6.0 does
(same labels, spacing and number formats), so tools that read a real summary read a
simulated one. ``detail_lines`` writes ``mlperf_log_detail.txt`` records
(``:::MLLOG {json}``) with LoadGen's keys for the settings and results.

Both take a ``sim.loadgen.metrics.Metrics`` or, for LLM runs, a
``sim.loadgen.tokens.TokenMetrics``: then the summary has LoadGen's token lines (Server:
"Completed tokens per second", the "TTFT Early Stopping Result:" and "TPOT Early Stopping
Result:" blocks, the first-token and time-per-output-token statistics; Offline: "Tokens per
second"; gptj: the inferred tokens/s line), the "Test Parameters Used" block shows
``ttft_latency (ns)`` / ``tpot_latency (ns)`` in place of ``target_latency (ns)``, equal-issue
runs end it with LoadGen's ``sample_concatenate_permutation`` warning, and errors LoadGen
would log (``TokenMetrics.errors``) are counted at the end and listed in the detail log.
"""

from __future__ import annotations

import json

from sim.loadgen.metrics import REPORTED_PERCENTILES, LatencyStats
from sim.loadgen.scenarios import CLOSED_LOOP
from sim.loadgen.tokens import TokenMetrics

RULE = "================================================"
#: LoadGen's note at the end of "Test Parameters Used" when equal issue is on.
EQUAL_ISSUE_WARNING = [
    "WARNING: sample_concatenate_permutation was set to true. ",
    "Generated samples per query might be different as the one in the setting.",
    "Check the generated_samples_per_query line in the detailed log for the real",
    "samples_per_query value",
]
#: Statistics of no values (LoadGen prints zeros where it recorded none).
_EMPTY = LatencyStats(0, 0, 0, {f"{p * 100:.2f}": 0 for p in REPORTED_PERCENTILES})


def _g(x: float) -> str:
    """C++ ostream's default formatting of a double (6 significant digits)."""
    return f"{x:g}"


def _fixed2(x: float) -> str:
    return f"{x:.2f}"


def summary_text(m, params: list, sut_name: str = "SimulatedSUT",
                 mode: str = "PerformanceOnly") -> str:
    """The text of ``mlperf_log_summary.txt`` for metrics ``m`` and test parameters ``params``.

    ``m``: ``Metrics`` or ``TokenMetrics``. ``params``: ``summary_params(settings)``, pairs
    ``(key, value)`` and lines printed as they are.
    """
    if isinstance(m, TokenMetrics):
        if m.base_metrics is not None:  # gptj: the plain summary with inferred tokens/s
            return _plain_summary(m.base_metrics, params, sut_name, mode,
                                  [f"{m.headline_name}: {_inferred_text(m)}"], m.errors)
        return _token_summary(m, params, sut_name, mode)
    return _plain_summary(m, params, sut_name, mode, [], [])


def _inferred_text(m) -> str:
    return _fixed2(m.headline_value) if m.scenario == "Server" else _g(m.headline_value)


def _header(m, sut_name: str, mode: str) -> list[str]:
    return [RULE, "MLPerf Results Summary", RULE, f"SUT name : {sut_name}",
            f"Scenario : {m.scenario}", f"Mode     : {mode}"]


def _verdict_lines(m) -> list[str]:
    out = [f"Result is : {'VALID' if m.valid else 'INVALID'}"]
    if m.perf_constraints_met is not None:
        out.append(f"  Performance constraints satisfied : {'Yes' if m.perf_constraints_met else 'NO'}")
    out.append(f"  Min duration satisfied : {'Yes' if m.min_duration_met else 'NO'}")
    out.append(f"  Min queries satisfied : {'Yes' if m.min_queries_met else 'NO'}")
    out.append(f"  Early stopping satisfied: {'Yes' if m.early_stopping_met else 'NO'}")
    if not m.valid:
        out.append("Recommendations:")
        out.extend(f" * {r}" for r in m.recommendations)
    return out


def _latency_lines(stats, label: str = "latency", name: str = "latency",
                   min_max_mean: str = "latency (ns)", width: int = 32) -> list[str]:
    """Min/Max/Mean and the percentile lines of one statistic, LoadGen's labels."""
    out = [f"{f'Min {min_max_mean}':<{width}}: {stats.min_ns}",
           f"{f'Max {min_max_mean}':<{width}}: {stats.max_ns}",
           f"{f'Mean {min_max_mean}':<{width}}: {stats.mean_ns}"]
    for pct, value in stats.percentiles_ns.items():
        out.append(f"{pct} percentile {label} (ns)   : {value}")
    return out


def _params_lines(params: list) -> list[str]:
    out = []
    for item in params:
        if isinstance(item, str):
            out.append(item)
            continue
        key, value = item
        sep = "" if key.endswith(")") else " "
        out.append(f"{key}{sep}: {value}")
    return out


def _footer(errors: list[str]) -> list[str]:
    n = len(errors)
    if n == 0:
        tail = "No errors encountered during test."
    else:
        tail = f"{n} ERROR{'S' if n > 1 else ''} encountered. See detailed log."
    return ["", "No warnings encountered during test.", "", tail]


def _token_summary(m, params: list, sut_name: str, mode: str) -> str:
    """LoadGen 6.0's summary of a run with ``use_token_latencies`` (Server or Offline)."""
    out = _header(m, sut_name, mode)
    server = m.scenario == "Server"
    if server:
        out.append(f"Completed samples per second    : {_fixed2(m.samples_per_second)}")
        out.append(f"Completed tokens per second: {_fixed2(m.tokens_per_second)}")
    else:
        out.append(f"Samples per second: {_g(m.samples_per_second)}")
        out.append(f"Tokens per second: {_g(m.tokens_per_second)}")
    out += _verdict_lines(m)
    if server:
        out.append("TTFT Early Stopping Result:")
        out.extend(m.ttft_early_stopping_lines or [""])
        out.append("TPOT Early Stopping Result:")
        out.extend(m.tpot_early_stopping_lines or [""])
    out += ["", RULE, "Additional Stats", RULE]
    if server:
        out.append(f"Scheduled samples per second : {_fixed2(m.scheduled_samples_per_second)}")
    out += _latency_lines(m.sample_latency)
    out.append("")
    if server:
        out.append(f"Completed tokens per second                 : {_fixed2(m.tokens_per_second)}")
        out += _latency_lines(m.ttft or _EMPTY, "first token latency",
                              min_max_mean="First Token latency (ns)", width=44)
        out.append("")
        out += _latency_lines(m.tpot or _EMPTY, "time to output token",
                              min_max_mean="Time per Output Token (ns)", width=46)
    out += ["", RULE, "Test Parameters Used", RULE]
    out += _params_lines(params)
    out += _footer(m.errors)
    return "\n".join(out) + "\n"


def _plain_summary(m, params: list, sut_name: str, mode: str, after_headline: list[str],
                   errors: list[str]) -> str:
    out = _header(m, sut_name, mode)
    if m.scenario in CLOSED_LOOP:
        out.append(f"{m.headline_name} : {int(m.headline_value)}")
    elif m.scenario == "Server":
        out.append(f"Completed samples per second    : {_fixed2(m.headline_value)}")
    else:
        out.append(f"Samples per second: {_g(m.headline_value)}")
    out += after_headline
    out.append(f"Result is : {'VALID' if m.valid else 'INVALID'}")
    if m.perf_constraints_met is not None:
        out.append(f"  Performance constraints satisfied : {'Yes' if m.perf_constraints_met else 'NO'}")
    out.append(f"  Min duration satisfied : {'Yes' if m.min_duration_met else 'NO'}")
    out.append(f"  Min queries satisfied : {'Yes' if m.min_queries_met else 'NO'}")
    out.append(f"  Early stopping satisfied: {'Yes' if m.early_stopping_met else 'NO'}")
    if not m.valid:
        out.append("Recommendations:")
        out.extend(f" * {r}" for r in m.recommendations)
    if m.scenario != "Offline":
        out.append("Early Stopping Result:")
        out.extend(m.early_stopping_lines)
    out += ["", RULE, "Additional Stats", RULE]
    if m.scenario == "SingleStream":
        out.append(f"QPS w/ loadgen overhead         : {_fixed2(m.extra['qps_with_loadgen_overhead'])}")
        out.append(f"QPS w/o loadgen overhead        : {_fixed2(m.extra['qps_without_loadgen_overhead'])}")
        out.append("")
    elif m.scenario == "Server":
        out.append(f"Scheduled samples per second : {_fixed2(m.extra['scheduled_samples_per_second'])}")
    stats = m.query_latency if m.scenario == "MultiStream" else m.sample_latency
    if m.scenario == "MultiStream":
        out.append("Per-query latency:  ")
    out.append(f"Min latency (ns)                : {stats.min_ns}")
    out.append(f"Max latency (ns)                : {stats.max_ns}")
    out.append(f"Mean latency (ns)               : {stats.mean_ns}")
    for label, value in stats.percentiles_ns.items():
        out.append(f"{label} percentile latency (ns)   : {value}")
    out += ["", RULE, "Test Parameters Used", RULE]
    out += _params_lines(params)
    out += _footer(errors)
    return "\n".join(out) + "\n"


def _mllog(key: str, value, time_ms: float = 0.0) -> str:
    rec = {"key": key, "value": value, "time_ms": time_ms, "namespace": "mlperf::logging",
           "event_type": "POINT_IN_TIME",
           "metadata": {"is_error": False, "is_warning": False, "file": "sim", "line_no": 0, "pid": 0, "tid": 0}}
    return ":::MLLOG " + json.dumps(rec)


def _double(x: float) -> float:
    """A double as LoadGen's detail log writes it (6 significant digits)."""
    return float(f"{x:.6g}")


def invalid_reason(recommendations: list[str]) -> str:
    """LoadGen's ``result_invalid_reason``: each reason followed by a space, the min-queries
    reason in its short form, newlines as spaces."""
    text = ""
    perf = [r for r in recommendations if "constrain not met" in r or r.startswith("Reduce")]
    if perf:
        text += "\n * ".join(perf) + " "
    for r in recommendations:
        if r in perf:
            continue
        if r.startswith("The test exited early"):
            text += "The test exited early, before enough queries were issued."
        else:
            text += r + " "
    return text.replace("\n", " ")


def detail_lines(m, settings_items: dict, extra_items: dict | None = None) -> list[str]:
    """``mlperf_log_detail.txt`` records: effective settings, then results, LoadGen's keys."""
    lines = [_mllog("loadgen_version", "simulated (mlperf-inference-sim)")]
    for key, value in settings_items.items():
        lines.append(_mllog(key, value))
    for key, value in (extra_items or {}).items():
        lines.append(_mllog(key, value))
    if isinstance(m, TokenMetrics):
        for message in m.errors:
            lines.append(_mllog("error_runtime", message))
        if m.base_metrics is not None:
            lines += _result_lines(m.base_metrics)
            key = ("result_inferred_completed_tokens_per_second" if m.scenario == "Server"
                   else "result_inferred_tokens_per_second")
            lines.append(_mllog(key, _double(m.headline_value)))
        else:
            lines += _token_result_lines(m)
        lines.append(_mllog("num_errors", len(m.errors)))
        return lines
    return lines + _result_lines(m)


def _token_result_lines(m) -> list[str]:
    """LoadGen 6.0's result records for a run with ``use_token_latencies``."""
    server = m.scenario == "Server"
    lines = [_mllog("result_validity", "VALID" if m.valid else "INVALID")]
    if m.perf_constraints_met is not None:
        lines.append(_mllog("result_perf_constraints_met", m.perf_constraints_met))
    lines.append(_mllog("result_min_duration_met", m.min_duration_met))
    lines.append(_mllog("result_min_queries_met", m.min_queries_met))
    lines.append(_mllog("early_stopping_met", m.early_stopping_met))
    if not m.valid:
        lines.append(_mllog("result_invalid_reason", invalid_reason(m.recommendations)))
    lines.append(_mllog("early_stopping_ttft_result", " ".join(m.ttft_early_stopping_lines)))
    lines.append(_mllog("early_stopping_tpot_result", " ".join(m.tpot_early_stopping_lines)))
    lines.append(_mllog("result_query_count", m.query_count))
    if server:
        lines.append(_mllog("result_overlatency_query_count", m.extra["overlatency_query_count"]))
        lines.append(_mllog("result_scheduled_samples_per_sec", _double(m.scheduled_samples_per_second)))
        lines.append(_mllog("result_completed_samples_per_sec", _double(m.samples_per_second)))
    else:
        lines.append(_mllog("result_samples_per_second", _double(m.samples_per_second)))
    lines += _stat_lines(m.sample_latency, "result_{}_latency_ns", "result_{}_percentile_latency_ns")
    if server:
        lines += _stat_lines(m.ttft or _EMPTY, "result_first_token_{}_latency_ns",
                             "result_first_token_{}_percentile_latency_ns")
        lines.append(_mllog("result_token_throughput_with_loadgen_overhead",
                            _double(m.extra["token_throughput_with_loadgen_overhead"])))
        lines.append(_mllog("result_token_throughput", _double(m.extra["token_throughput"])))
        tpot = m.tpot or _EMPTY
        for label, value in tpot.percentiles_ns.items():
            lines.append(_mllog(f"result_time_per_output_token_{label}_percentile_ns", value))
        lines.append(_mllog("result_time_to_output_token_min", tpot.min_ns))
        lines.append(_mllog("result_time_to_output_token_max", tpot.max_ns))
        lines.append(_mllog("result_time_to_output_token_mean", tpot.mean_ns))
        lines.append(_mllog("result_completed_tokens_per_second", _double(m.tokens_per_second)))
    else:
        lines.append(_mllog("result_tokens_per_second", _double(m.tokens_per_second)))
    return lines


def _stat_lines(stats, minmax: str, pct: str) -> list[str]:
    lines = [_mllog(minmax.format("min"), stats.min_ns), _mllog(minmax.format("max"), stats.max_ns),
             _mllog(minmax.format("mean"), stats.mean_ns)]
    for label, value in stats.percentiles_ns.items():
        lines.append(_mllog(pct.format(label), value))
    return lines


def _result_lines(m) -> list[str]:
    lines = []
    lines.append(_mllog("result_validity", "VALID" if m.valid else "INVALID"))
    if m.perf_constraints_met is not None:
        lines.append(_mllog("result_perf_constraints_met", m.perf_constraints_met))
    lines.append(_mllog("result_min_duration_met", m.min_duration_met))
    lines.append(_mllog("result_min_queries_met", m.min_queries_met))
    lines.append(_mllog("early_stopping_met", m.early_stopping_met))
    if not m.valid:
        lines.append(_mllog("result_invalid_reason", invalid_reason(m.recommendations)))
    # LoadGen's newlines become spaces: " * Run unsuccessful.  * Processed ..."
    lines.append(_mllog("early_stopping_result", " ".join(m.early_stopping_lines)))
    lines.append(_mllog("result_query_count", m.query_count))
    if m.scenario == "Server":
        lines.append(_mllog("result_overlatency_query_count", m.overlatency_count))
        lines.append(_mllog("result_scheduled_samples_per_sec", m.extra["scheduled_samples_per_second"]))
        lines.append(_mllog("result_completed_samples_per_sec", m.extra["completed_samples_per_second"]))
    elif m.scenario == "SingleStream":
        lines.append(_mllog("result_qps_with_loadgen_overhead", m.extra["qps_with_loadgen_overhead"]))
        lines.append(_mllog("result_qps_without_loadgen_overhead", m.extra["qps_without_loadgen_overhead"]))
        lines.append(_mllog("early_stopping_latency_ss", m.early_stopping_estimate_ns))
        lines.append(_mllog("early_stopping_latency_ms", m.early_stopping_p99_estimate_ns))
    elif m.scenario == "MultiStream":
        q = m.query_latency
        lines.append(_mllog("result_min_query_latency_ns", q.min_ns))
        lines.append(_mllog("result_max_query_latency_ns", q.max_ns))
        lines.append(_mllog("result_mean_query_latency_ns", q.mean_ns))
        for label, value in q.percentiles_ns.items():
            lines.append(_mllog(f"result_{label}_percentile_per_query_latency_ns", value))
        lines.append(_mllog("early_stopping_latency_ms", m.early_stopping_estimate_ns))
    else:
        lines.append(_mllog("result_samples_per_second", m.headline_value))
    s = m.sample_latency
    lines.append(_mllog("result_min_latency_ns", s.min_ns))
    lines.append(_mllog("result_max_latency_ns", s.max_ns))
    lines.append(_mllog("result_mean_latency_ns", s.mean_ns))
    for label, value in s.percentiles_ns.items():
        lines.append(_mllog(f"result_{label}_percentile_latency_ns", value))
    return lines


def _num(x) -> str:
    return f"{x:g}" if isinstance(x, float) else str(int(x))


def summary_params(s) -> list[tuple[str, object]]:
    """The "Test Parameters Used" block of the summary, from ``sim.loadgen.settings.TestSettings``.

    Pairs ``(key, value)``; with equal issue on, LoadGen's warning lines (strings) end it.
    """
    if s.use_token_latencies:
        latency = [("ttft_latency (ns)", s.server_ttft_latency_ns),
                   ("tpot_latency (ns)", s.server_tpot_latency_ns)]
    else:
        latency = [("target_latency (ns)", s.target_latency_ns)]
    notes = EQUAL_ISSUE_WARNING if s.sample_concatenate_permutation else []
    return [
        ("samples_per_query", s.samples_per_query),
        ("target_qps", _num(s.target_qps)),
        *latency,
        ("max_async_queries", s.max_async_queries),
        ("min_duration (ms)", s.min_duration_ns // 1_000_000),
        ("max_duration (ms)", s.max_duration_ns // 1_000_000),
        ("min_query_count", s.min_query_count),
        ("max_query_count", s.max_query_count),
        ("qsl_rng_seed", s.qsl_rng_seed),
        ("sample_index_rng_seed", s.sample_index_rng_seed),
        ("schedule_rng_seed", s.schedule_rng_seed),
        ("accuracy_log_rng_seed", s.accuracy_log_rng_seed),
        ("accuracy_log_probability", _num(s.accuracy_log_probability)),
        ("accuracy_log_sampling_target", s.accuracy_log_sampling_target),
        ("print_timestamps", int(s.print_timestamps)),
        ("performance_issue_unique", int(s.performance_issue_unique)),
        ("performance_issue_same", int(s.performance_issue_same)),
        ("performance_issue_same_index", s.performance_issue_same_index),
        ("performance_sample_count", s.performance_sample_count),
        ("accuracy_sample_count", s.accuracy_sample_count if s.accuracy_sample_count is not None
         else s.performance_sample_count),
        *notes,
    ]


def detail_settings(s, traffic) -> dict:
    """LoadGen's ``effective_*`` and ``generated_*`` detail-log records (with, for LLM runs,
    its ``requested_*`` token-latency records)."""
    token = ({"requested_use_token_latencies": True,
              "requested_server_ttft_latency": s.server_ttft_latency_ns,
              "requested_server_tpot_latency": s.server_tpot_latency_ns}
             if s.use_token_latencies else {})
    return {
        **token,
        "effective_scenario": s.scenario,
        "effective_test_mode": s.mode,
        "effective_samples_per_query": s.samples_per_query,
        "effective_target_qps": s.target_qps,
        "effective_target_latency_ns": s.target_latency_ns,
        "effective_target_latency_percentile": s.target_latency_percentile,
        "effective_max_async_queries": s.max_async_queries,
        "effective_target_duration_ms": s.target_duration_ns // 1_000_000,
        "effective_min_duration_ms": s.min_duration_ns // 1_000_000,
        "effective_max_duration_ms": s.max_duration_ns // 1_000_000,
        "effective_min_query_count": s.min_query_count,
        "effective_max_query_count": s.max_query_count,
        "effective_min_sample_count": s.min_sample_count,
        "effective_qsl_rng_seed": s.qsl_rng_seed,
        "effective_sample_index_rng_seed": s.sample_index_rng_seed,
        "effective_schedule_rng_seed": s.schedule_rng_seed,
        "effective_performance_sample_count": s.performance_sample_count,
        "effective_sample_concatenate_permutation": s.sample_concatenate_permutation,
        "generated_query_count": traffic.query_count,
        "generated_samples_per_query": traffic.samples_per_query,
        "generated_query_duration": traffic.generated_query_duration_ns,
        "loaded_qsl_set": [int(i) for i in traffic.loaded_set],
    }
