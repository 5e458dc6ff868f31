"""MLPerf LoadGen settings, read the way LoadGen reads them.

Users describe a run with two text files: LoadGen's own ``mlperf.conf`` (built into the
LoadGen library: seeds, latency bounds, minimum durations and query counts, sample
counts, per model and scenario) and their ``user.conf`` (target QPS, expected latency,
and anything they may override). Each line is ``model.scenario.key = value``; ``model``
or ``scenario`` may be ``*``; a line whose first word is ``#`` is a comment. Times are in
milliseconds, percentiles in percent.

How a key is found (LoadGen's ``TestSettings::FromConfig``):

* Within one file, the most specific line wins: ``model.scenario.key`` beats
  ``*.scenario.key``, which beats ``model.*.key``, which beats ``*.*.key``.
* The built-in mlperf.conf is applied first, then user.conf in a second pass, so *any*
  user.conf line for a key (even ``*.*.key``) beats every mlperf.conf line for it.
* The three random seeds (and ``accuracy_log_probability``, ``test05*``) are read only
  from mlperf.conf; LoadGen ignores them in user.conf. Set them with ``overrides``.
* Some keys are read under a fixed scenario whatever the run's scenario:
  ``SingleStream.target_latency`` and ``MultiStream.target_latency`` are only the expected
  latency (a hint for how many queries to pre-generate), ``Server.target_latency`` is the
  latency bound, ``Server.target_qps`` and ``Offline.target_qps`` the requested rates.

LoadGen rejects the whole file when a value is not a number or a comment follows a
value; here that raises ``InputError`` naming file, line, key and the expected form.
Where LoadGen would *silently* do something surprising (ignore a line with no spaces
around ``=``, read ``0.5`` ms as ``0`` for a whole-number key, read ``010`` as octal, drop
a seed from user.conf, never use a key whose scenario is misspelt) this module raises
``InputError`` too, saying what LoadGen would have done.

``load_settings`` returns one frozen ``TestSettings``: the requested fields (LoadGen's
``mlperf::TestSettings``, in SI units: ns, samples/s, fractions) and the effective fields
LoadGen derives from them (``TestSettingsInternal``: target QPS from the expected
latency, the Offline sample count, the 3D-UNet query count, the performance sample
count). The built-in defaults equal the ``mlperf.conf`` embedded in LoadGen 6.0.17.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from sim.errors import InputError

SCENARIOS = ("SingleStream", "MultiStream", "Server", "Offline")
_MS_TO_NS = 1_000_000
_U64 = 1 << 64

# ---------------------------------------------------------------------------------------
# Built-in defaults: the values of LoadGen 6.0.17's embedded mlperf.conf.

SEEDS = {
    "qsl_rng_seed": "2085463073848966840",
    "sample_index_rng_seed": "2747215439041700203",
    "schedule_rng_seed": "16159082839903944936",
    "test05_qsl_rng_seed": "7975553102935885558",
    "test05_sample_index_rng_seed": "11403566307062068064",
    "test05_schedule_rng_seed": "15816800565822761601",
}

#: performance_sample_count_override per model (0: the whole data set).
PERFORMANCE_SAMPLE_COUNT = {
    "resnet50": 1024, "ssd-mobilenet": 256, "retinanet": 64, "bert": 10833,
    "dlrm": 204800, "dlrm-v2": 204800, "rnnt": 2513, "gptj": 13368,
    "mixtral-8x7b": 15000, "llama2-70b": 24576, "llama2-70b-interactive": 24576,
    "llama3_1-405b": 8313, "llama3_1-405b-interactive": 8313, "llama3_1-8b": 13368,
    "llama3_1-8b-edge": 5000, "llama3_1-8b-interactive": 13368,
    "stable-diffusion-xl": 5000, "wan-2.2-t2v-a14b": 248, "rgat": 788379,
    "pointpainting": 1024, "deepseek-r1": 4388, "deepseek-r1-interactive": 4388,
    "whisper": 1633, "qwen3-vl-235b-a22b": 48289, "yolo": 64, "3d-unet": 0,
    "gpt-oss-120b": 6396, "gpt-oss-120b-interactive": 6396,
}
ACCURACY_SAMPLE_COUNT = {"gpt-oss-120b": 4395, "gpt-oss-120b-interactive": 4395}

#: Server latency bound per model, ms (others: 10 ms; 0 where TTFT/TPOT bound instead).
SERVER_TARGET_LATENCY_MS = {
    "resnet50": 15, "retinanet": 100, "bert": 130, "dlrm": 60, "dlrm-v2": 60,
    "dlrm-v3": 80, "rnnt": 1000, "gptj": 20000, "stable-diffusion-xl": 20000,
    "llama2-70b": 0, "llama2-70b-interactive": 0, "mixtral-8x7b": 0,
    "llama3_1-405b": 0, "llama3_1-405b-interactive": 0, "llama3_1-8b": 0,
    "llama3_1-8b-interactive": 0, "deepseek-r1": 0, "deepseek-r1-interactive": 0,
    "gpt-oss-120b": 0, "gpt-oss-120b-interactive": 0, "qwen3-vl-235b-a22b": 12000,
}
#: Server time-to-first-token and time-per-output-token bounds, ms.
SERVER_TOKEN_LATENCY_MS = {
    "llama2-70b": (2000, 200), "llama2-70b-interactive": (450, 40),
    "mixtral-8x7b": (2000, 200), "llama3_1-405b": (6000, 175),
    "llama3_1-405b-interactive": (4500, 80), "llama3_1-8b": (2000, 100),
    "llama3_1-8b-interactive": (500, 30), "deepseek-r1": (2000, 80),
    "deepseek-r1-interactive": (1500, 15), "gpt-oss-120b": (3000, 80),
    "gpt-oss-120b-interactive": (2000, 15),
}
#: Offline min_query_count (the minimum number of samples in the one Offline query).
OFFLINE_MIN_QUERY_COUNT = {
    "resnet50": 24576, "retinanet": 24576, "dlrm-v2": 24576, "bert": 10833,
    "gptj": 13368, "rnnt": 2513, "3d-unet": 43, "stable-diffusion-xl": 5000,
    "wan-2.2-t2v-a14b": 248, "llama2-70b": 24576, "llama3_1-405b": 8313,
    "llama3_1-8b": 13368, "llama3_1-8b-edge": 5000, "mixtral-8x7b": 15000,
    "rgat": 788379, "deepseek-r1": 4388, "whisper": 1633, "qwen3-vl-235b-a22b": 48289,
}
#: Models run in "equal issue" mode (sample_concatenate_permutation = 1).
EQUAL_ISSUE_MODELS = (
    "3d-unet", "rgat", "gptj", "llama2-70b", "llama2-70b-interactive", "mixtral-8x7b",
    "llama3_1-405b", "llama3_1-405b-interactive", "llama3_1-8b", "llama3_1-8b-edge",
    "llama3_1-8b-interactive", "deepseek-r1", "deepseek-r1-interactive", "whisper",
    "qwen3-vl-235b-a22b", "gpt-oss-120b", "gpt-oss-120b-interactive",
)
#: use_token_latencies per model (1: latency bounds on TTFT/TPOT).
TOKEN_LATENCY_MODELS = {
    "llama2-70b": 1, "llama2-70b-interactive": 1, "mixtral-8x7b": 1, "llama3_1-405b": 1,
    "llama3_1-405b-interactive": 1, "llama3_1-8b": 1, "llama3_1-8b-edge": 1,
    "llama3_1-8b-interactive": 1, "deepseek-r1": 1, "deepseek-r1-interactive": 1,
    "whisper": 1, "gpt-oss-120b": 1, "gpt-oss-120b-interactive": 1,
    "qwen3-vl-235b-a22b": 0,
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
}


def _builtin_entries() -> dict[str, str]:
    kv: dict[str, str] = {}
    for model, n in PERFORMANCE_SAMPLE_COUNT.items():
        kv[f"{model}.*.performance_sample_count_override"] = str(n)
    for model, n in ACCURACY_SAMPLE_COUNT.items():
        kv[f"{model}.*.accuracy_sample_count_override"] = str(n)
    for key, seed in SEEDS.items():
        kv[f"*.*.{key}"] = seed
    kv["*.SingleStream.target_latency_percentile"] = "90"
    kv["pointpainting.SingleStream.target_latency_percentile"] = "99.9"
    kv["*.MultiStream.target_latency_percentile"] = "99"
    kv["*.MultiStream.samples_per_query"] = "8"
    kv["*.MultiStream.min_query_count"] = "662"
    kv["retinanet.MultiStream.target_latency"] = "528"
    for model in EQUAL_ISSUE_MODELS:
        kv[f"{model}.*.sample_concatenate_permutation"] = "1"
    kv["*.Server.target_latency"] = "10"
    kv["*.Server.target_latency_percentile"] = "99"
    kv["*.Server.target_duration"] = "0"
    for model, ms in SERVER_TARGET_LATENCY_MS.items():
        kv[f"{model}.Server.target_latency"] = str(ms)
    for model, flag in TOKEN_LATENCY_MODELS.items():
        kv[f"{model}.*.use_token_latencies"] = str(flag)
    kv["gptj.*.infer_token_latencies"] = "1"
    kv["gptj.*.token_latency_scaling_factor"] = "69"
    for model, (ttft, tpot) in SERVER_TOKEN_LATENCY_MS.items():
        kv[f"{model}.Server.ttft_latency"] = str(ttft)
        kv[f"{model}.Server.tpot_latency"] = str(tpot)
    kv["*.Offline.target_latency_percentile"] = "90"
    for scenario in SCENARIOS:
        kv[f"*.{scenario}.min_duration"] = "600000"
    for model, n in OFFLINE_MIN_QUERY_COUNT.items():
        kv[f"{model}.Offline.min_query_count"] = str(n)
    kv["*.SingleStream.target_latency"] = "10"
    kv["*.MultiStream.target_latency"] = "80"
    kv["*.Server.target_qps"] = "1.0"
    kv["*.Offline.target_qps"] = "1.0"
    return kv


BUILTIN_MLPERF_CONF: dict[str, str] = _builtin_entries()
KNOWN_MODELS = frozenset(
    key.split(".")[0] for key in BUILTIN_MLPERF_CONF if not key.startswith("*.")
)

# ---------------------------------------------------------------------------------------
# Keys LoadGen reads

#: Keys read only from mlperf.conf (LoadGen ignores them in user.conf).
MLPERF_CONF_ONLY_KEYS = frozenset({
    "qsl_rng_seed", "sample_index_rng_seed", "schedule_rng_seed",
    "accuracy_log_probability", "test05", "test05_qsl_rng_seed",
    "test05_sample_index_rng_seed", "test05_schedule_rng_seed",
})
KNOWN_KEYS = MLPERF_CONF_ONLY_KEYS | frozenset({
    "mode", "use_token_latencies", "ttft_latency", "tpot_latency",
    "infer_token_latencies", "token_latency_scaling_factor", "target_latency_percentile",
    "samples_per_query", "target_latency", "performance_issue_unique",
    "performance_issue_same", "performance_issue_same_index",
    "sample_concatenate_permutation", "coalesce_queries", "max_async_queries",
    "min_duration", "max_duration", "min_query_count", "max_query_count",
    "performance_sample_count_override", "accuracy_sample_count_override", "target_qps",
    "print_timestamps", "accuracy_log_rng_seed", "accuracy_log_sampling_target",
    "target_duration",  # present in mlperf.conf, never read by LoadGen
})

_C_SPACE = re.compile(r"[ \t\n\v\f\r]+")
_C_INT = re.compile(r"[+-]?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)\Z")
_C_FLOAT = re.compile(
    r"[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?"
    r"|0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)([pP][+-]?[0-9]+)?"
    r"|inf|infinity|nan)\Z",
    re.IGNORECASE,
)
_PLAIN_UINT = re.compile(r"\+?(0|[1-9][0-9]*|0[xX][0-9a-fA-F]+)\Z")
_C_INT_PREFIX = re.compile(r"[ \t\n\v\f\r]*([+-]?)(0[xX](?=[0-9a-fA-F])|0|)([0-9a-fA-F]*)")


def _is_number(text: str) -> bool:
    """What LoadGen's parser accepts as a value: all of it parsed by strtoul or strtod."""
    return bool(_C_INT.match(text) or _C_FLOAT.match(text))


def _c_strtoull(text: str) -> int:
    """C ``strtoull(text, nullptr, 0)``: the leading integer, base from the prefix."""
    m = _C_INT_PREFIX.match(text)
    sign, prefix, digits = m.group(1), m.group(2), m.group(3)
    if prefix.lower() == "0x":
        base, allowed = 16, "0123456789abcdefABCDEF"
    elif prefix == "0":
        base, allowed = 8, "01234567"
    else:
        base, allowed = 10, "0123456789"
    n = 0
    for ch in digits:
        if ch not in allowed:
            break
        n = n * base + int(ch, 16)
    if n >= _U64:
        return _U64 - 1
    return (-n) % _U64 if sign == "-" else n


def _c_strtod(text: str) -> float:
    t = text.strip()
    if re.match(r"[+-]?0[xX]", t):
        sign = -1.0 if t.startswith("-") else 1.0
        body = t.lstrip("+-")
        if not re.search(r"[pP]", body):
            body += "p0"
        return sign * float.fromhex(body)
    return float(t)


@dataclass(frozen=True)
class ConfEntry:
    """One ``key = value`` line: the value as written and where it came from."""

    value: str
    source: str
    line: int


def _expected_form(what: str = "number") -> str:
    return f"expected model.scenario.key = {what}"


def parse_conf_text(text: str, source: str, *, mlperf_conf: bool = False) -> dict[str, ConfEntry]:
    """Parse conf text into ``{"model.scenario.key": ConfEntry}`` (later lines win).

    Raises ``InputError`` for every line LoadGen rejects and for lines LoadGen would
    silently ignore or misread.
    """
    kv: dict[str, ConfEntry] = {}
    for line_no, raw in enumerate(text.splitlines(), start=1):
        tokens = [t for t in _C_SPACE.split(raw) if t]
        if not tokens or tokens[0] == "#":
            continue
        where = f"{source}:{line_no}"
        key = tokens[0]
        if key.startswith("#"):
            # LoadGen treats '#' as a comment only as a word of its own; '#word' is a key.
            if len(tokens) >= 2 and tokens[1] not in ("=", "#"):
                raise InputError(
                    f"{where}: comment '{raw.strip()}': LoadGen rejects the file because "
                    f"'#' is not followed by a space; expected '# comment' or "
                    f"model.scenario.key = number")
            continue
        if len(tokens) == 1 or tokens[1] == "#":
            if "=" in key:
                raise InputError(
                    f"{where}: line '{raw.strip()}': LoadGen needs spaces around '=' and "
                    f"would silently ignore this line; {_expected_form()}")
            raise InputError(f"{where}: key '{key}' has no value (LoadGen would silently "
                             f"ignore it); {_expected_form()}")
        if tokens[1] != "=":
            raise InputError(f"{where}: key '{key}': found '{tokens[1]}' where '=' belongs; "
                             f"{_expected_form()}")
        values = tokens[2:]
        if not values:
            raise InputError(f"{where}: key '{key}' has no value (LoadGen would silently "
                             f"ignore it); {_expected_form()}")
        for tok in values:
            if tok.startswith("#"):
                raise InputError(f"{where}: key '{key}': a comment after the value makes "
                                 f"LoadGen reject the whole file; put comments on their own "
                                 f"line ('# ...'); {_expected_form()}")
            if not _is_number(tok):
                raise InputError(f"{where}: key '{key}': value '{tok}' is not a number; "
                                 f"{_expected_form()}")
        if len(values) > 1:
            raise InputError(f"{where}: key '{key}': more than one value "
                             f"({' '.join(values)}); {_expected_form()}")
        _check_key(key, where, mlperf_conf)
        kv[key] = ConfEntry(values[0], source, line_no)
    return kv


def _check_key(key: str, where: str, mlperf_conf: bool) -> None:
    parts = key.rsplit(".", 2)
    if len(parts) != 3 or not all(parts):
        raise InputError(f"{where}: key '{key}' is not of the form model.scenario.key; "
                         f"{_expected_form()}")
    _, scenario, name = parts
    if scenario != "*" and scenario not in SCENARIOS:
        raise InputError(f"{where}: key '{key}': unknown scenario '{scenario}' (LoadGen "
                         f"would never use this line); expected one of "
                         f"{', '.join(SCENARIOS)} or *")
    if name not in KNOWN_KEYS:
        raise InputError(f"{where}: key '{key}': unknown setting '{name}' (LoadGen would "
                         f"silently ignore it); expected one of "
                         f"{', '.join(sorted(KNOWN_KEYS))}")
    if not mlperf_conf and name in MLPERF_CONF_ONLY_KEYS:
        raise InputError(f"{where}: key '{key}': LoadGen reads '{name}' only from its "
                         f"built-in mlperf.conf and ignores it in user.conf; set it with "
                         f"overrides={{'{name}': ...}} instead")


def read_conf_file(path: str | os.PathLike, *, mlperf_conf: bool = False) -> dict[str, ConfEntry]:
    """Read and parse a conf file (``InputError`` if it cannot be read)."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{source}: file not found; expected a LoadGen conf file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{source}: cannot read ({exc}); expected a text conf file") from None
    return parse_conf_text(text, source, mlperf_conf=mlperf_conf)


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


class _Lookup:
    """LoadGen's four-level key lookup in one file, with its number conversions."""

    def __init__(self, kv: dict[str, ConfEntry], model: str, scenario: str) -> None:
        self.kv, self.model, self.scenario = kv, model, scenario

    def find(self, scenario: str, key: str) -> ConfEntry | None:
        for m, s in ((self.model, scenario), ("*", scenario), (self.model, "*"), ("*", "*")):
            entry = self.kv.get(f"{m}.{s}.{key}")
            if entry is not None:
                return entry
        return None

    def uint(self, scenario: str, key: str, multiplier: int = 1, used: bool = True) -> int | None:
        entry = self.find(scenario, key)
        if entry is None:
            return None
        if used and not _PLAIN_UINT.match(entry.value):
            read = _c_strtoull(entry.value)
            raise InputError(
                f"{entry.source}:{entry.line}: key '{key}' ({scenario}): value "
                f"'{entry.value}' is read by LoadGen as the whole number {read}; "
                f"expected model.scenario.key = whole number")
        return (_c_strtoull(entry.value) * multiplier) % _U64

    def double(self, scenario: str, key: str, multiplier: float = 1.0) -> float | None:
        entry = self.find(scenario, key)
        if entry is None:
            return None
        value = _c_strtod(entry.value) * multiplier
        if not math.isfinite(value):
            raise InputError(f"{entry.source}:{entry.line}: key '{key}': value "
                             f"'{entry.value}' is not finite; expected model.scenario.key "
                             f"= number")
        return value


def _apply_conf(req: dict, kv: dict[str, ConfEntry], model: str, scenario: str,
                mlperf_conf: bool) -> None:
    """One ``FromConfig`` pass: set every requested field the file defines."""
    lk = _Lookup(kv, model, scenario)

    def set_if(field: str, value) -> None:
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
    set_if("single_stream_target_latency_percentile",
           lk.double("SingleStream", "target_latency_percentile", 0.01))
    set_if("multi_stream_target_latency_percentile",
           lk.double("MultiStream", "target_latency_percentile", 0.01))
    set_if("multi_stream_samples_per_query",
           lk.uint("MultiStream", "samples_per_query", used=scenario == "MultiStream"))
    set_if("server_target_latency_percentile",
           lk.double("Server", "target_latency_percentile", 0.01))
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
    set_if("min_duration_ns", _ms_to_ns(lk.uint(scenario, "min_duration")))
    set_if("max_duration_ns", _ms_to_ns(lk.uint(scenario, "max_duration")))
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


def _ms_to_ns(ms: int | None) -> int | None:
    return None if ms is None else ms * _MS_TO_NS


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


def builtin_conf(defaults: str = "6.0") -> dict[str, ConfEntry]:
    """The built-in mlperf.conf entries (``"6.0"`` or ``"6.0+legacy"``)."""
    if defaults not in ("6.0", "6.0+legacy"):
        raise InputError(f"defaults '{defaults}': expected '6.0' or '6.0+legacy'")
    table = dict(BUILTIN_MLPERF_CONF)
    if defaults == "6.0+legacy":
        table.update(LEGACY_DEFAULTS)
    return {k: ConfEntry(v, "mlperf.conf (built in)", 0) for k, v in table.items()}


def load_settings(model: str, scenario: str, user_conf: str | os.PathLike | None = None,
                  overrides: dict | None = None, total_sample_count: int | None = None,
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
    if scenario not in SCENARIOS:
        raise InputError(f"scenario '{scenario}': expected one of {', '.join(SCENARIOS)}")
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
        if count is not None and (not isinstance(count, int) or count < 1):
            raise InputError(f"{label} = {count!r}: expected a whole number >= 1")
    return _derive(name, scenario, req, total_sample_count, qsl_performance_sample_count)


def _checked_override(field: str, value):
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
        if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value >= _U64:
            raise InputError(f"overrides: field '{field}' = {value!r}: expected a whole "
                             f"number >= 0")
        if field in ("min_duration_ns", "max_duration_ns") and value % _MS_TO_NS:
            raise InputError(f"overrides: field '{field}' = {value!r}: LoadGen keeps "
                             f"durations in whole ms; expected a multiple of 1000000")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"overrides: field '{field}' = {value!r}: expected a finite number")
    return float(value)


def _derive(model: str, scenario: str, req: dict, total: int | None,
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
    if not math.isfinite(target_qps) or target_qps <= 0.0:
        # LoadGen would log an error and run at 1 QPS (negative) or misbehave (zero)
        raise InputError(f"{model} {scenario}: the expected latency / target QPS gives a "
                         f"rate of {target_qps} queries/s; expected a positive finite rate")
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
