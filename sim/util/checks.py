"""The one validation layer for numbers that enter from outside (command line, YAML, conf, CSV,
Python API): finite, of the right type, in range, and small enough to fit in memory and time.

Every check returns the value (converted where a float is asked for and an integer given) or
raises an ``InputError`` that names where the value came from, the value, and what was
expected. NaN and infinity never pass: a comparison with NaN is false, so a check written as
``value < minimum`` alone would let it through.

``LIMITS`` holds the sizes past which a run would not fit in a few GiB or a few minutes; work
that would exceed one is refused up front with the estimate and the limit
(``check_work``), never started.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

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


def _where(source: str, field: str) -> str:
    return f"{source}: field '{field}'" if field else source


def number(value: object, source: str, field: str = "", *, minimum: float | None = None,
           maximum: float | None = None, above: float | None = None, integer: bool = False) -> float | int:
    """A finite number (an ``int`` with ``integer``) within ``[minimum, maximum]`` and ``> above``.

    Booleans are not numbers here; a float with an integral value is accepted as an integer.
    """
    given = value
    ok = isinstance(value, Real) and not isinstance(value, bool)
    if ok and integer and not isinstance(value, Integral):
        ok = math.isfinite(value) and float(value).is_integer()
    if ok and not math.isfinite(float(value)):
        ok = False
    if ok:
        value = int(value) if integer else float(value)
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum) \
                or (above is not None and not value > above):
            ok = False
    if not ok:
        expected = _expected(integer, minimum, maximum, above)
        raise InputError(f"{_where(source, field)} = {_short(given)}: expected {expected}")
    return value


def parse_number(text: str, source: str, field: str = "", **bounds) -> float | int:
    """``number`` of a string (a command-line flag, a CSV cell)."""
    try:
        value: object = int(text) if bounds.get("integer") and text.strip().lstrip("+-").isdigit() else float(text)
    except (TypeError, ValueError):
        value = text
    return number(value, source, field, **bounds)


def check_work(kind: str, estimate: float, what: str) -> None:
    """Refuse work above ``LIMITS[kind]``, saying the estimate, the limit and where it comes from."""
    limit = LIMITS[kind]
    if not math.isfinite(estimate) or estimate > limit:
        shown = f"{estimate:,.0f}" if math.isfinite(estimate) else str(estimate)
        raise InputError(f"{what}: {shown} {kind.replace('_', ' ')}, above the limit of {limit:,}; "
                         f"expected a smaller run (fewer queries, a shorter duration, a smaller system or grid)")


def _expected(integer: bool, minimum, maximum, above) -> str:
    what = "a finite integer" if integer else "a finite number"
    parts = []
    if above is not None:
        parts.append(f"> {above:g}")
    if minimum is not None:
        parts.append(f">= {minimum:g}")
    if maximum is not None:
        parts.append(f"<= {maximum:g}")
    return what + (" " + " and ".join(parts) if parts else "")


def _short(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters: an error never echoes a large input back."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text):,} characters)"
