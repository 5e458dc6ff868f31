"""The one validation layer for numbers that enter from outside (command line, YAML, conf, CSV,
Python API): finite, of the right type, in range, and small enough to fit in memory and time.

Every check returns the value (converted where a float is asked for and an integer given) or
raises an ``InputError`` that names where the value came from, the value, and what was
expected. NaN and infinity never pass: a comparison with NaN is false, so a check written as
``value < minimum`` alone would let it through.

``RANGES`` holds the ranges of quantities that enter in several places (a flag, a YAML field,
an argument of the Python API), so the command line and the API apply the same rule; ``flag``
makes an argparse ``type=`` of one, whose refusal argparse prints as one line (exit status 2).

``LIMITS`` holds the sizes past which a run would not fit in a few GiB or a few minutes; work
that would exceed one is refused up front with the estimate and the limit
(``check_work``), never started.
"""

from __future__ import annotations

import argparse
import math
import reprlib
from numbers import Integral, Real
from typing import Callable

from sim.errors import InputError

#: The largest work a command accepts before refusing (what it would need past these does not
#: fit in about 2 GiB of memory or a few minutes of wall time on a small machine).
LIMITS: dict[str, int] = {
    "queries": 50_000_000,           # simulated queries in one run (about 1.9 GiB at 50 M)
    "samples": 50_000_000,           # simulated samples in one run
    "instances": 100_000,            # accelerator instances in one system
    "batch": 1_000_000,              # samples in one batch
    "grid_points": 1_000_000,        # points of one sweep grid
    "trace_events": 2_000_000,       # events in one Chrome trace (about 200 MB of JSON)
    "file_bytes": 64 * 1024 * 1024,  # a user's text file (YAML, CSV, conf)
}

#: The largest rate, in queries (or samples) per second: the simulated clock counts whole
#: nanoseconds, so past 1e9/s every gap between arrivals would round to 0.
MAX_QPS = 1e9
#: The longest single operation (a batch, an issue, a transfer, a latency bound), in us: one hour.
MAX_TIME_US = 3.6e9
#: The longest simulated span, in ns: the simulated clock is a signed 64-bit count of ns, and
#: half its range (about 146 years) leaves room for the sums a run makes.
MAX_SPAN_NS = 2 ** 62
#: The smallest rate: one query in the longest simulated span.
MIN_QPS = 1e9 / MAX_SPAN_NS
_U64_MAX = 2 ** 64 - 1

#: Ranges (keyword bounds of ``number``) of the quantities that enter in several places.
RANGES: dict[str, dict] = {
    "qps": {"above": 0.0, "maximum": MAX_QPS},                       # target QPS, samples/s
    "time_us": {"minimum": 0.0, "maximum": MAX_TIME_US},             # a time in a system file
    "positive_time_us": {"above": 0.0, "maximum": MAX_TIME_US},      # a time that must be > 0
    "latency_ms": {"above": 0.0, "maximum": MAX_TIME_US / 1e3},      # a latency bound or limit
    "duration_ms": {"minimum": 0.0, "maximum": MAX_SPAN_NS / 1e6},   # a run's minimum duration
    "seed": {"minimum": 0, "maximum": _U64_MAX, "integer": True},    # random seeds (64-bit)
    "count": {"minimum": 1, "maximum": _U64_MAX, "integer": True},   # LoadGen's query counts
    "rel_tol": {"above": 0.0, "maximum": 1.0},                       # a search's relative width
    "repeats": {"minimum": 1, "maximum": 1000, "integer": True},     # seeds tried per search end
    "fraction": {"minimum": 0.0, "maximum": 1.0},
    "percentile": {"above": 0.0, "below": 1.0},                      # a latency percentile (0, 1)
    "batch": {"minimum": 1, "maximum": LIMITS["batch"], "integer": True},
    "instances": {"minimum": 1, "maximum": LIMITS["instances"], "integer": True},
}


def _where(source: str, field: str) -> str:
    return f"{source}: field '{field}'" if field else source


def _problem(value: object, integer: bool, minimum, maximum, above, below) -> tuple[object, str | None]:
    """``(value converted, None)`` when the value passes, else ``(value, what was expected)``."""
    ok = isinstance(value, Real) and not isinstance(value, bool)
    if ok and integer and not isinstance(value, Integral):
        ok = math.isfinite(value) and float(value).is_integer()
    if ok and not isinstance(value, Integral) and not math.isfinite(float(value)):
        ok = False
    if ok:
        value = int(value) if integer else float(value)
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum) \
                or (above is not None and not value > above) or (below is not None and not value < below):
            ok = False
    if ok:
        return value, None
    return value, _expected(integer, minimum, maximum, above, below)


def number(value: object, source: str, field: str = "", *, minimum: float | None = None,
           maximum: float | None = None, above: float | None = None, below: float | None = None,
           integer: bool = False) -> float | int:
    """A finite number (an ``int`` with ``integer``) within ``[minimum, maximum]``, ``> above``
    and ``< below``.

    Booleans are not numbers here; a float with an integral value is accepted as an integer.
    """
    converted, expected = _problem(value, integer, minimum, maximum, above, below)
    if expected is not None:
        raise InputError(f"{_where(source, field)} = {short(value)}: expected {expected}")
    return converted


def _from_text(text: str, integer: bool) -> object:
    try:
        return int(text) if integer and text.strip().lstrip("+-").isdigit() else float(text)
    except (TypeError, ValueError, OverflowError):
        return text


def parse_number(text: str, source: str, field: str = "", **bounds) -> float | int:
    """``number`` of a string (a command-line flag, a CSV cell)."""
    return number(_from_text(text, bool(bounds.get("integer"))), source, field, **bounds)


def flag(note: str = "", **bounds) -> Callable[[str], float | int]:
    """An argparse ``type=``: the flag's text as a number within ``bounds`` (those of ``number``).

    A bad value raises ``argparse.ArgumentTypeError``, which argparse prints as one line,
    ``argument --flag: value 'TEXT': expected ...`` (with ``note`` after it), exiting with
    status 2.
    """
    integer = bool(bounds.get("integer"))

    def parse(text: str) -> float | int:
        value, expected = _problem(_from_text(text, integer), integer, bounds.get("minimum"),
                                   bounds.get("maximum"), bounds.get("above"), bounds.get("below"))
        if expected is not None:
            raise argparse.ArgumentTypeError(f"value {short(text)}: expected {expected}"
                                             + (f" ({note})" if note else ""))
        return value

    parse.__name__ = "integer" if integer else "number"
    return parse


def refuse(source: str, field: str, value: object, expected: str) -> InputError:
    """The one-line field error (``sim.errors.field_error``'s form) with the value cut short."""
    return InputError(f"{_where(source, field)} = {short(value)}: expected {expected}")


def check_work(kind: str, estimate: float, what: str) -> None:
    """Refuse work above ``LIMITS[kind]``, saying the estimate, the limit and where it comes from."""
    limit = LIMITS[kind]
    if not math.isfinite(estimate) or estimate > limit:
        shown = f"{estimate:,.0f}" if math.isfinite(estimate) else str(estimate)
        raise InputError(f"{what}: {shown} {kind.replace('_', ' ')}, above the limit of {limit:,}; "
                         f"expected a smaller run (fewer queries, a shorter duration, a smaller system or grid)")


def _expected(integer: bool, minimum, maximum, above, below=None) -> str:
    what = "an integer" if integer else "a finite number"
    parts = [f"{op} {_bound(v)}" for op, v in ((">", above), (">=", minimum), ("<", below), ("<=", maximum))
             if v is not None]
    return what + (" " + " and ".join(parts) if parts else "")


def _bound(v: float) -> str:
    return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else f"{v:g}"


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 6
_REPR.maxlevel = 3
_REPR.maxlong = 40


def short(value: object, limit: int = 60) -> str:
    """A short ``repr(value)``: an error never echoes a large input back (nested containers and
    long strings or integers are cut before they are turned into text)."""
    try:
        text = _REPR.repr(value)
    except ValueError:  # an integer too long to print
        text = f"<an integer of {value.bit_length():,} bits>" if isinstance(value, int) else "<a value>"
    return text if len(text) <= limit else text[:limit] + "..."
