"""MLPerf LoadGen settings for one run, derived the way LoadGen derives them.

A run is described by LoadGen's ``mlperf.conf`` and the user's ``user.conf``, both read by
``sim.loadgen.conf`` (syntax, errors, the most-specific-line lookup within one file). The
built-in defaults are the package's ``sim/loadgen/mlperf.conf``: the mlperf.conf embedded in
LoadGen 6.0.17. ``defaults="6.0+legacy"`` adds the settings of models of earlier rounds
(``LEGACY_DEFAULTS``); ``mlperf_conf=`` replaces the built-in file (e.g. an older round's).

How the two files combine (LoadGen's ``TestSettings::FromConfig``):

* The built-in mlperf.conf is applied first, then user.conf in a second pass, so *any*
  user.conf line for a key (even ``*.*.key``) beats every mlperf.conf line for it.
* The three random seeds (and ``accuracy_log_probability``, ``test05*``) are read only
  from mlperf.conf; LoadGen ignores them in user.conf. Set them with ``overrides``.
* Some keys are read under a fixed scenario whatever the run's scenario:
  ``SingleStream.target_latency`` and ``MultiStream.target_latency`` are only the expected
  latency (a hint for how many queries to pre-generate), ``Server.target_latency`` is the
  latency bound, ``Server.target_qps`` and ``Offline.target_qps`` the requested rates.

``load_settings`` returns one frozen ``TestSettings``: the requested fields (LoadGen's
``mlperf::TestSettings``, in SI units: ns, samples/s, fractions) and the effective fields
LoadGen derives from them (``TestSettingsInternal``: target QPS from the expected
latency, the Offline sample count, the 3D-UNet query count, the performance sample
count).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from sim.errors import InputError
from sim.loadgen.conf import (
    BUILTIN_SOURCE,
    ConfEntry,
    Lookup,
    read_builtin_mlperf_conf,
    read_conf_file,
)
from sim.loadgen.scenarios import SCENARIOS
from sim.util.checks import MAX_QPS, MIN_QPS, RANGES, number

_MS_TO_NS = 1_000_000
_U64 = 1 << 64
#: A conf file's percentiles (percent) and the ranges of the float ``overrides`` that have one
#: of their own (every other float override is only finite; the run's rate is checked once
#: derived, whatever set it).
_PERCENT = {"above": 0.0, "below": 100.0}
_FLOAT_RANGES = {
    "single_stream_target_latency_percentile": RANGES["percentile"],
    "multi_stream_target_latency_percentile": RANGES["percentile"],
    "server_target_latency_percentile": RANGES["percentile"],
    "accuracy_log_probability": RANGES["fraction"],
}

# ---------------------------------------------------------------------------------------
# Built-in defaults: the package's mlperf.conf (LoadGen 6.0.17's embedded mlperf.conf).

_BUILTIN_ENTRIES: dict[str, ConfEntry] = read_builtin_mlperf_conf()
#: The built-in mlperf.conf as ``{"model.scenario.key": value as written}``.
BUILTIN_MLPERF_CONF: dict[str, str] = {key: entry.value for key, entry in _BUILTIN_ENTRIES.items()}
KNOWN_MODELS = frozenset(
    key.split(".")[0] for key in BUILTIN_MLPERF_CONF if not key.startswith("*.")
)
#: performance_sample_count_override per model (0: the whole data set).
PERFORMANCE_SAMPLE_COUNT: dict[str, int] = {
    key.rsplit(".", 2)[0]: int(value) for key, value in BUILTIN_MLPERF_CONF.items()
    if key.endswith(".*.performance_sample_count_override") and not key.startswith("*.")
}

#: Models of earlier rounds (v0.7 to v2.1), absent from 6.0: ``defaults="6.0+legacy"``.
LEGACY_DEFAULTS = {
    "ssd-resnet34.*.performance_sample_count_override": "64",
    "ssd-resnet34.Server.target_latency": "100",
    "ssd-resnet34.MultiStream.target_latency": "528",
    "gnmt.*.performance_sample_count_override": "3903900",
    "gnmt.Server.target_latency": "250",
    "gnmt.Server.target_latency_percentile": "97",
    "gnmt.Server.min_query_count": "90112",
}

#: Benchmark names people use for LoadGen's model names (accuracy-target variants).
MODEL_ALIASES = {
    "bert-99": "bert", "bert-99.9": "bert", "dlrm-v2-99": "dlrm-v2",
    "dlrm-v2-99.9": "dlrm-v2", "dlrm-99": "dlrm", "dlrm-99.9": "dlrm",
    "3d-unet-99": "3d-unet", "3d-unet-99.9": "3d-unet", "gptj-99": "gptj",
    "gptj-99.9": "gptj", "llama2-70b-99": "llama2-70b", "llama2-70b-99.9": "llama2-70b",
    "llama2-70b-interactive-99": "llama2-70b-interactive",
    "llama2-70b-interactive-99.9": "llama2-70b-interactive",
}


# ---------------------------------------------------------------------------------------
# TestSettings


@dataclass(frozen=True)
class TestSettings:
    """Everything LoadGen decides from its settings, for one model and scenario.

    The first group mirrors LoadGen's requested ``mlperf::TestSettings`` (SI units:
    ns, samples per second, fractions for percentiles); the second group is what
    LoadGen's ``TestSettingsInternal`` derives for the scenario and is what the rules
    use (``min_query_count`` is the effective count, e.g. 1 for Offline).
    """

    __test__ = False  # not a pytest test class

    model: str
    scenario: str
    mode: str
    # requested
    single_stream_expected_latency_ns: float
    single_stream_target_latency_percentile: float
    multi_stream_expected_latency_ns: float
    multi_stream_target_latency_percentile: float
    multi_stream_samples_per_query: int
    server_target_qps: float
    server_target_latency_ns: int
    server_target_latency_percentile: float
    server_coalesce_queries: bool
    server_max_async_queries: int
    offline_expected_qps: float
    sample_concatenate_permutation: bool
    min_duration_ns: int
    max_duration_ns: int
    requested_min_query_count: int
    max_query_count: int
    qsl_rng_seed: int
    sample_index_rng_seed: int
    schedule_rng_seed: int
    accuracy_log_rng_seed: int
    accuracy_log_probability: float
    accuracy_log_sampling_target: int
    print_timestamps: bool
    performance_issue_unique: bool
    performance_issue_same: bool
    performance_issue_same_index: int
    performance_sample_count_override: int
    accuracy_sample_count_override: int
    use_token_latencies: bool
    server_ttft_latency_ns: int
    server_tpot_latency_ns: int
    infer_token_latencies: bool
    token_latency_scaling_factor: int
    # effective (TestSettingsInternal)
    samples_per_query: int
    target_qps: float
    target_latency_ns: int
    target_latency_percentile: float
    max_async_queries: int
    target_duration_ns: int
    min_query_count: int
    min_sample_count: int
    performance_sample_count: int
    accuracy_sample_count: int | None
    qsl_performance_sample_count: int | None
    total_sample_count: int | None

    @property
    def min_duration_ms(self) -> int:
        return self.min_duration_ns // _MS_TO_NS


#: Requested fields a caller may set with ``overrides`` (and their kinds).
_REQUESTED_FIELDS = {
    "single_stream_expected_latency_ns": float,
    "single_stream_target_latency_percentile": float,
    "multi_stream_expected_latency_ns": float,
    "multi_stream_target_latency_percentile": float,
    "multi_stream_samples_per_query": int,
    "server_target_qps": float,
    "server_target_latency_ns": int,
    "server_target_latency_percentile": float,
    "server_coalesce_queries": bool,
    "server_max_async_queries": int,
    "offline_expected_qps": float,
    "sample_concatenate_permutation": bool,
    "min_duration_ns": int,
    "max_duration_ns": int,
    "min_query_count": int,
    "max_query_count": int,
    "qsl_rng_seed": int,
    "sample_index_rng_seed": int,
    "schedule_rng_seed": int,
    "accuracy_log_rng_seed": int,
    "accuracy_log_probability": float,
    "accuracy_log_sampling_target": int,
    "print_timestamps": bool,
    "performance_issue_unique": bool,
    "performance_issue_same": bool,
    "performance_issue_same_index": int,
    "performance_sample_count_override": int,
    "accuracy_sample_count_override": int,
    "use_token_latencies": bool,
    "server_ttft_latency_ns": int,
    "server_tpot_latency_ns": int,
    "infer_token_latencies": bool,
    "token_latency_scaling_factor": int,
    "test05": bool,
    "mode": str,
}

#: LoadGen's defaults (``test_settings.h``) for keys no conf line sets.
_LOADGEN_DEFAULTS = {
    "mode": "PerformanceOnly",
    "single_stream_expected_latency_ns": 1_000_000.0,
    "single_stream_target_latency_percentile": 0.90,
    "multi_stream_expected_latency_ns": 8_000_000.0,
    "multi_stream_target_latency_percentile": 0.99,
    "multi_stream_samples_per_query": 8,
    "server_target_qps": 1.0,
    "server_target_latency_ns": 100_000_000,
    "server_target_latency_percentile": 0.99,
    "server_coalesce_queries": False,
    "server_max_async_queries": 0,
    "offline_expected_qps": 1.0,
    "sample_concatenate_permutation": False,
    "min_duration_ns": 10_000 * _MS_TO_NS,
    "max_duration_ns": 0,
    "min_query_count": 100,
    "max_query_count": 0,
    "qsl_rng_seed": 0,
    "sample_index_rng_seed": 0,
    "schedule_rng_seed": 0,
    "accuracy_log_rng_seed": 0,
    "accuracy_log_probability": 0.0,
    "accuracy_log_sampling_target": 0,
    "print_timestamps": False,
    "performance_issue_unique": False,
    "performance_issue_same": False,
    "performance_issue_same_index": 0,
    "performance_sample_count_override": 0,
    "accuracy_sample_count_override": 0,
    "use_token_latencies": False,
    "server_ttft_latency_ns": 100_000_000,
    "server_tpot_latency_ns": 100_000_000,
    "infer_token_latencies": False,
    "token_latency_scaling_factor": 0,
    "test05": False,
    "test05_qsl_rng_seed": 0,
    "test05_sample_index_rng_seed": 0,
    "test05_schedule_rng_seed": 0,
}
_MODES = ("SubmissionRun", "AccuracyOnly", "PerformanceOnly", "FindPeakPerformance")


def _apply_conf(req: dict[str, Any], kv: dict[str, ConfEntry], model: str, scenario: str,
                mlperf_conf: bool) -> None:
    """One ``FromConfig`` pass: set every requested field the file defines."""
    lk = Lookup(kv, model, scenario)

    def set_if(field: str, value: Any) -> None:
        if value is not None:
            req[field] = value

    mode = lk.uint(scenario, "mode")
    if mode is not None:
        if mode > 3:
            entry = lk.find(scenario, "mode")
            raise InputError(f"{entry.source}:{entry.line}: key 'mode': value "
                             f"'{entry.value}' is not a test mode; expected 0 (submission), "
                             f"1 (accuracy), 2 (performance) or 3 (find peak)")
        req["mode"] = _MODES[mode]
    if mlperf_conf:
        for key in ("qsl_rng_seed", "sample_index_rng_seed", "schedule_rng_seed",
                    "test05_qsl_rng_seed", "test05_sample_index_rng_seed",
                    "test05_schedule_rng_seed"):
            set_if(key, lk.uint(scenario, key))
        set_if("accuracy_log_probability", lk.double(scenario, "accuracy_log_probability", 0.01))
        flag = lk.uint(scenario, "test05")
        if flag is not None:
            req["test05"] = flag == 1
    flag = lk.uint(scenario, "use_token_latencies")
    if flag is not None:
        req["use_token_latencies"] = flag == 1
    if req["use_token_latencies"]:
        set_if("server_ttft_latency_ns", lk.uint("Server", "ttft_latency", _MS_TO_NS,
                                                 used=scenario == "Server"))
        set_if("server_tpot_latency_ns", lk.uint("Server", "tpot_latency", _MS_TO_NS,
                                                 used=scenario == "Server"))
    flag = lk.uint(scenario, "infer_token_latencies")
    if flag is not None:
        req["infer_token_latencies"] = flag == 1
    if req["infer_token_latencies"]:
        set_if("token_latency_scaling_factor", lk.uint(scenario, "token_latency_scaling_factor"))
    set_if("single_stream_target_latency_percentile", _percentile(lk, "SingleStream"))
    set_if("multi_stream_target_latency_percentile", _percentile(lk, "MultiStream"))
    set_if("multi_stream_samples_per_query",
           lk.uint("MultiStream", "samples_per_query", used=scenario == "MultiStream"))
    set_if("server_target_latency_percentile", _percentile(lk, "Server"))
    set_if("server_target_latency_ns",
           lk.uint("Server", "target_latency", _MS_TO_NS, used=scenario == "Server"))
    for field, key in (("performance_issue_unique", "performance_issue_unique"),
                       ("performance_issue_same", "performance_issue_same")):
        flag = lk.uint(scenario, key)
        if flag is not None:
            req[field] = flag != 0
    set_if("performance_issue_same_index", lk.uint(scenario, "performance_issue_same_index"))
    flag = lk.uint(scenario, "sample_concatenate_permutation")
    if flag is not None:
        req["sample_concatenate_permutation"] = flag == 1
    flag = lk.uint("Server", "coalesce_queries", used=scenario == "Server")
    if flag is not None:
        req["server_coalesce_queries"] = flag != 0
    flag = lk.uint("Server", "max_async_queries", used=scenario == "Server")
    if flag is not None:
        req["server_max_async_queries"] = flag
    set_if("min_duration_ns", lk.uint(scenario, "min_duration", _MS_TO_NS))
    set_if("max_duration_ns", lk.uint(scenario, "max_duration", _MS_TO_NS))
    set_if("min_query_count", lk.uint(scenario, "min_query_count"))
    set_if("max_query_count", lk.uint(scenario, "max_query_count"))
    set_if("performance_sample_count_override",
           lk.uint(scenario, "performance_sample_count_override"))
    set_if("accuracy_sample_count_override", lk.uint(scenario, "accuracy_sample_count_override"))
    set_if("single_stream_expected_latency_ns",
           lk.double("SingleStream", "target_latency", 1e6))
    set_if("multi_stream_expected_latency_ns",
           lk.double("MultiStream", "target_latency", 1e6))
    set_if("server_target_qps", lk.double("Server", "target_qps"))
    set_if("offline_expected_qps", lk.double("Offline", "target_qps"))
    flag = lk.uint(scenario, "print_timestamps")
    if flag is not None:
        req["print_timestamps"] = flag != 0
    set_if("accuracy_log_rng_seed", lk.uint(scenario, "accuracy_log_rng_seed"))
    set_if("accuracy_log_sampling_target", lk.uint(scenario, "accuracy_log_sampling_target"))


def _percentile(lk: Lookup, scenario: str) -> float | None:
    """A ``target_latency_percentile`` line (percent) as a fraction, refused outside (0, 100)."""
    value = lk.double(scenario, "target_latency_percentile", 0.01)
    if value is not None and not 0.0 < value < 1.0:
        entry = lk.find(scenario, "target_latency_percentile")
        number(value * 100, f"{entry.source}:{entry.line}", f"{scenario}.target_latency_percentile",
               **_PERCENT)
    return value


def canonical_model(model: str, defaults: str = "6.0", *,
                    allow_unknown_model: bool = False) -> str:
    """LoadGen's model name for a benchmark name (``bert-99`` -> ``bert``)."""
    name = MODEL_ALIASES.get(model, model)
    legacy = {k.split(".")[0] for k in LEGACY_DEFAULTS}
    if name in legacy and defaults != "6.0+legacy" and not allow_unknown_model:
        raise InputError(f"model '{model}' is from an earlier round and absent from LoadGen "
                         f"6.0's mlperf.conf; expected defaults='6.0+legacy' to use its "
                         f"historical settings")
    if name not in KNOWN_MODELS | legacy and not allow_unknown_model:
        raise InputError(
            f"model '{model}' is not in LoadGen's mlperf.conf (LoadGen would silently use "
            f"the '*' defaults); expected one of {', '.join(sorted(KNOWN_MODELS | legacy))}, "
            f"or pass allow_unknown_model=True")
    return name


#: The Interactive "scenario" of the LLM benchmarks: LoadGen 6.0 has no such scenario; an
#: Interactive run is a Server run of the model ``<model>-interactive`` (its own mlperf.conf keys:
#: tighter ``ttft_latency`` / ``tpot_latency``).
INTERACTIVE = "Interactive"
INTERACTIVE_MODELS = frozenset(m for m in KNOWN_MODELS if m.endswith("-interactive"))


def interactive_model(model: str, defaults: str = "6.0") -> str:
    """LoadGen's model name for ``model``'s Interactive run (``llama2-70b`` ->
    ``llama2-70b-interactive``); refused for a model with no interactive keys."""
    name = canonical_model(model, defaults, allow_unknown_model=True)
    if name in INTERACTIVE_MODELS:
        return name
    name = f"{name}-interactive"
    if name not in INTERACTIVE_MODELS:
        bases = sorted(m.removesuffix("-interactive") for m in INTERACTIVE_MODELS)
        raise InputError(f"model '{model}': LoadGen's mlperf.conf has no Interactive settings "
                         f"for it; expected one of {', '.join(bases)}")
    return name


def builtin_conf(defaults: str = "6.0") -> dict[str, ConfEntry]:
    """The built-in mlperf.conf entries (``"6.0"`` or ``"6.0+legacy"``)."""
    if defaults not in ("6.0", "6.0+legacy"):
        raise InputError(f"defaults '{defaults}': expected '6.0' or '6.0+legacy'")
    entries = dict(_BUILTIN_ENTRIES)
    if defaults == "6.0+legacy":
        entries.update({k: ConfEntry(v, BUILTIN_SOURCE, 0) for k, v in LEGACY_DEFAULTS.items()})
    return entries


def load_settings(model: str, scenario: str, user_conf: str | os.PathLike | None = None,
                  overrides: dict[str, Any] | None = None, total_sample_count: int | None = None,
                  *, qsl_performance_sample_count: int | None = None,
                  mlperf_conf: str | os.PathLike | None = None, defaults: str = "6.0",
                  allow_unknown_model: bool = False) -> TestSettings:
    """Settings for one run, as LoadGen would have them after ``FromConfig``.

    ``user_conf``: the user's conf file (applied after mlperf.conf). ``overrides``:
    requested fields set after both files (as a program sets ``TestSettings`` attributes
    after ``FromConfig``), by ``TestSettings`` field name in SI units
    (e.g. ``{"server_target_qps": 3000.0, "min_duration_ns": 10**9}``).
    ``total_sample_count`` / ``qsl_performance_sample_count``: the QSL's sizes (the
    latter defaults to the former); needed where the model has no performance sample
    count of its own (3d-unet). ``mlperf_conf`` replaces the built-in defaults with a
    file (e.g. an older round's).
    """
    if scenario == INTERACTIVE:
        model, scenario = interactive_model(model, defaults), "Server"
    if scenario not in SCENARIOS:
        raise InputError(f"scenario '{scenario}': expected one of {', '.join(SCENARIOS)} "
                         f"(or {INTERACTIVE} for an LLM)")
    name = canonical_model(model, defaults, allow_unknown_model=allow_unknown_model)
    base = (read_conf_file(mlperf_conf, mlperf_conf=True) if mlperf_conf is not None
            else builtin_conf(defaults))
    req = dict(_LOADGEN_DEFAULTS)
    _apply_conf(req, base, name, scenario, mlperf_conf=True)
    if user_conf is not None:
        user = read_conf_file(user_conf)
        if name != model:
            for key, entry in user.items():
                if key.rsplit(".", 2)[0] == model:
                    raise InputError(
                        f"{entry.source}:{entry.line}: key '{key}': LoadGen looks up model "
                        f"'{name}', not '{model}'; expected {name}.scenario.key = value")
        _apply_conf(req, user, name, scenario, mlperf_conf=False)
    for field, value in (overrides or {}).items():
        req[field] = _checked_override(field, value)
    if req["test05"]:
        req["mode"] = "PerformanceOnly"
        for key in ("qsl_rng_seed", "sample_index_rng_seed", "schedule_rng_seed"):
            req[key] = req[f"test05_{key}"]
    for count, label in ((total_sample_count, "total_sample_count"),
                         (qsl_performance_sample_count, "qsl_performance_sample_count")):
        if count is not None:
            number(count, label, minimum=1, integer=True)
    return _derive(name, scenario, req, total_sample_count, qsl_performance_sample_count)


def _checked_override(field: str, value: Any) -> Any:
    kind = _REQUESTED_FIELDS.get(field)
    if kind is None:
        raise InputError(f"overrides: field '{field}' is not a LoadGen test setting; expected "
                         f"one of {', '.join(sorted(_REQUESTED_FIELDS))}")
    if kind is str:
        if value not in _MODES:
            raise InputError(f"overrides: field 'mode' = {value!r}: expected one of "
                             f"{', '.join(_MODES)}")
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise InputError(f"overrides: field '{field}' = {value!r}: expected True or False")
        return value
    if kind is int:
        value = number(value, "overrides", field, minimum=0, maximum=_U64 - 1, integer=True)
        if field in ("min_duration_ns", "max_duration_ns") and value % _MS_TO_NS:
            raise InputError(f"overrides: field '{field}' = {value!r}: LoadGen keeps "
                             f"durations in whole ms; expected a multiple of 1000000")
        return value
    return number(value, "overrides", field, **_FLOAT_RANGES.get(field, {}))


def _derive(model: str, scenario: str, req: dict[str, Any], total: int | None,
            qsl_perf: int | None) -> TestSettings:
    """LoadGen's ``TestSettingsInternal``: the effective settings for the scenario."""
    if qsl_perf is None:
        qsl_perf = total
    samples_per_query = 1
    target_qps = 1.0
    target_latency_ns = 0
    max_async = 1
    if scenario == "SingleStream":
        target_qps = 1e9 / req["single_stream_expected_latency_ns"]
        percentile = req["single_stream_target_latency_percentile"]
    elif scenario == "MultiStream":
        target_qps = 1e9 / req["multi_stream_expected_latency_ns"]
        percentile = req["multi_stream_target_latency_percentile"]
        samples_per_query = req["multi_stream_samples_per_query"]
    elif scenario == "Server":
        target_qps = req["server_target_qps"]
        target_latency_ns = req["server_target_latency_ns"]
        percentile = req["server_target_latency_percentile"]
        max_async = req["server_max_async_queries"]
    else:
        percentile = 0.99
        target_qps = req["offline_expected_qps"]
    if not (math.isfinite(target_qps) and MIN_QPS <= target_qps <= MAX_QPS):
        # LoadGen would log an error and run at 1 QPS (negative) or misbehave (zero); past
        # MAX_QPS the gaps between queries are below the simulated clock's 1 ns, below MIN_QPS
        # one gap is longer than the clock's range
        raise InputError(f"{model} {scenario}: the expected latency / target QPS gives a "
                         f"rate of {target_qps:g} queries/s; expected a positive finite rate "
                         f"from {MIN_QPS:.3g} to {MAX_QPS:g} queries/s (an expected latency of at "
                         f"least 1 ns and at most {1e9 / MIN_QPS / 3.15576e16:.0f} years)")
    override = req["performance_sample_count_override"]
    if override == 0 and qsl_perf is None:
        raise InputError(
            f"{model} {scenario}: performance_sample_count_override is 0 (use the QSL's "
            f"performance sample count); expected total_sample_count (or "
            f"qsl_performance_sample_count) to be given")
    performance_sample_count = qsl_perf if override == 0 else override
    accuracy_override = req["accuracy_sample_count_override"]
    accuracy_sample_count = total if accuracy_override == 0 else accuracy_override
    min_duration_ns = req["min_duration_ns"]
    target_duration_ns = min_duration_ns
    min_query_count = req["min_query_count"]
    if scenario == "Offline":
        seconds = (min_duration_ns // _MS_TO_NS) / 1000.0
        target_sample_count = int(1.1 * seconds * target_qps)
        samples_per_query = (performance_sample_count if req["performance_issue_unique"]
                             else max(min_query_count, target_sample_count))
        min_query_count = 1
        target_duration_ns = 0
    if samples_per_query < 1:
        raise InputError(f"{model} {scenario}: {samples_per_query} samples per query (from samples_per_query, or "
                         f"Offline's min_query_count and min_duration x expected QPS); expected at least 1")
    if req["sample_concatenate_permutation"] and scenario == "SingleStream":
        if qsl_perf is None:
            raise InputError(f"{model} SingleStream (equal issue): the query count depends "
                             f"on the QSL's performance sample count; expected "
                             f"total_sample_count to be given")
        seconds = (target_duration_ns // _MS_TO_NS) / 1000.0
        expected_queries = int(2.0 * seconds * target_qps)
        min_query_count = max(min_query_count, expected_queries)
        min_query_count += qsl_perf - (min_query_count % qsl_perf)
    requested = {k: v for k, v in req.items()
                 if k not in ("min_query_count", "test05") and not k.startswith("test05_")}
    return TestSettings(
        model=model, scenario=scenario, **requested,
        requested_min_query_count=req["min_query_count"],
        samples_per_query=samples_per_query, target_qps=target_qps,
        target_latency_ns=target_latency_ns, target_latency_percentile=percentile,
        max_async_queries=max_async, target_duration_ns=target_duration_ns,
        min_query_count=min_query_count,
        min_sample_count=min_query_count * samples_per_query,
        performance_sample_count=performance_sample_count,
        accuracy_sample_count=accuracy_sample_count,
        qsl_performance_sample_count=qsl_perf, total_sample_count=total,
    )
