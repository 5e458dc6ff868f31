"""LoadGen's conf files: their syntax, and how a key is looked up in one file.

Two files describe a run: LoadGen's own ``mlperf.conf`` (seeds, latency bounds, minimum
durations and query counts, sample counts, per model and scenario; the project ships it
as ``sim/loadgen/mlperf.conf``) and the user's ``user.conf`` (target QPS, expected latency,
and anything they may override). Both are read by ``parse_conf_text``. Each line is
``model.scenario.key = value``; ``model`` or ``scenario`` may be ``*``; a line whose first
word is ``#`` is a comment. Times are in milliseconds, percentiles in percent.

Within one file the most specific line wins (``Lookup``, LoadGen's
``TestSettings::FromConfig``): ``model.scenario.key`` beats ``*.scenario.key``, which beats
``model.*.key``, which beats ``*.*.key``. ``sim.loadgen.settings`` applies mlperf.conf,
then user.conf.

LoadGen rejects the whole file when a value is not a number or a comment follows a value;
here that raises ``InputError`` naming file, line, key and the expected form. Where LoadGen
would *silently* do something surprising (ignore a line with no spaces around ``=``, read
``0.5`` ms as ``0`` for a whole-number key, read ``010`` as octal, drop a seed from
user.conf, never use a key whose scenario is misspelt) this module raises ``InputError``
too, saying what LoadGen would have done.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from sim.errors import InputError
from sim.loadgen.scenarios import SCENARIOS
from sim.util.textfile import read_text

_U64 = 1 << 64
#: How entries of the shipped mlperf.conf name their source in messages.
BUILTIN_SOURCE = "mlperf.conf (built in)"

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
    if not Path(path).is_file():
        raise InputError(f"{source}: file not found; expected a LoadGen conf file")
    text = read_text(path, "a LoadGen conf file")     # size limit, UTF-8 (a byte-order mark accepted)
    return parse_conf_text(text, source, mlperf_conf=mlperf_conf)


def read_builtin_mlperf_conf() -> dict[str, ConfEntry]:
    """The mlperf.conf shipped with the package (LoadGen's defaults), parsed as a mlperf.conf."""
    text = resources.files("sim.loadgen").joinpath("mlperf.conf").read_text(encoding="utf-8")
    return parse_conf_text(text, BUILTIN_SOURCE, mlperf_conf=True)


# ---------------------------------------------------------------------------------------
# Lookup


class Lookup:
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
        value = _c_strtoull(entry.value)
        if used and int(entry.value.lstrip("+"), 0) * multiplier >= _U64:
            # strtoull saturates past 2^64 - 1, and LoadGen's unit conversions wrap modulo 2^64
            unit = f" ms = {value * multiplier:.3g} ns" if multiplier != 1 else ""
            raise InputError(
                f"{entry.source}:{entry.line}: key '{key}' ({scenario}): value "
                f"'{entry.value[:40]}'{unit} is past LoadGen's 64-bit range (it would saturate or "
                f"wrap); expected model.scenario.key = a smaller whole number")
        return (value * multiplier) % _U64

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
