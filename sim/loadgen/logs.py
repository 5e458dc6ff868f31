"""LoadGen's output files, written from a simulated run.

``summary_text`` lays out ``mlperf_log_summary.txt`` line for line as LoadGen 6.0 does
(same labels, spacing and number formats), so tools that read a real summary read a
simulated one. ``detail_lines`` writes ``mlperf_log_detail.txt`` records
(``:::MLLOG {json}``) with LoadGen's keys for the settings and results.
"""

from __future__ import annotations

import json

from sim.loadgen.scenarios import CLOSED_LOOP

RULE = "================================================"


def _g(x: float) -> str:
    """C++ ostream's default formatting of a double (6 significant digits)."""
    return f"{x:g}"


def _fixed2(x: float) -> str:
    return f"{x:.2f}"


def summary_text(m, params: list[tuple[str, object]], sut_name: str = "SimulatedSUT",
                 mode: str = "PerformanceOnly") -> str:
    """The text of ``mlperf_log_summary.txt`` for metrics ``m`` and test parameters ``params``."""
    out = [RULE, "MLPerf Results Summary", RULE, f"SUT name : {sut_name}", f"Scenario : {m.scenario}",
           f"Mode     : {mode}"]
    if m.scenario in CLOSED_LOOP:
        out.append(f"{m.headline_name} : {int(m.headline_value)}")
    elif m.scenario == "Server":
        out.append(f"Completed samples per second    : {_fixed2(m.headline_value)}")
    else:
        out.append(f"Samples per second: {_g(m.headline_value)}")
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
    for key, value in params:
        sep = "" if key.endswith(")") else " "
        out.append(f"{key}{sep}: {value}")
    out += ["", "No warnings encountered during test.", "", "No errors encountered during test."]
    return "\n".join(out) + "\n"


def _mllog(key: str, value, time_ms: float = 0.0) -> str:
    rec = {"key": key, "value": value, "time_ms": time_ms, "namespace": "mlperf::logging",
           "event_type": "POINT_IN_TIME",
           "metadata": {"is_error": False, "is_warning": False, "file": "sim", "line_no": 0, "pid": 0, "tid": 0}}
    return ":::MLLOG " + json.dumps(rec)


def detail_lines(m, settings_items: dict, extra_items: dict | None = None) -> list[str]:
    """``mlperf_log_detail.txt`` records: effective settings, then results, LoadGen's keys."""
    lines = [_mllog("loadgen_version", "simulated (mlperf-inference-sim)")]
    for key, value in settings_items.items():
        lines.append(_mllog(key, value))
    for key, value in (extra_items or {}).items():
        lines.append(_mllog(key, value))
    lines.append(_mllog("result_validity", "VALID" if m.valid else "INVALID"))
    if m.perf_constraints_met is not None:
        lines.append(_mllog("result_perf_constraints_met", m.perf_constraints_met))
    lines.append(_mllog("result_min_duration_met", m.min_duration_met))
    lines.append(_mllog("result_min_queries_met", m.min_queries_met))
    lines.append(_mllog("early_stopping_met", m.early_stopping_met))
    if not m.valid:
        lines.append(_mllog("result_invalid_reason", " ".join(m.recommendations)))
    lines.append(_mllog("early_stopping_result", " ".join(s.strip() for s in m.early_stopping_lines)))
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
    """The "Test Parameters Used" block of the summary, from ``sim.loadgen.settings.TestSettings``."""
    return [
        ("samples_per_query", s.samples_per_query),
        ("target_qps", _num(s.target_qps)),
        ("target_latency (ns)", s.target_latency_ns),
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
    ]


def detail_settings(s, traffic) -> dict:
    """LoadGen's ``effective_*`` and ``generated_*`` detail-log records."""
    return {
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
        "generated_query_count": traffic.query_count,
        "generated_samples_per_query": traffic.samples_per_query,
        "generated_query_duration": traffic.generated_query_duration_ns,
        "loaded_qsl_set": [int(i) for i in traffic.loaded_set],
    }
