"""The one bisection every search of the project narrows its bracket with.

A search first brackets its answer (a value where the property holds and one where it does
not; how it finds them depends on what it knows, so each search keeps its own bracket) and
then halves the bracket here: Server's peak QPS (simulated or real), the smallest device
count that meets a plan, the largest MultiStream batch within a latency bound.
"""

from __future__ import annotations

from typing import Callable, TypeVar

N = TypeVar("N", int, float)


def bisect(holds: Callable[[N], bool], good: N, bad: N, *, rel_tol: float | None = None,
           max_steps: int | None = None) -> tuple[N, N]:
    """Narrow ``(good, bad)``, where ``holds(good)`` and not ``holds(bad)``; either may be the larger.

    Integers (``rel_tol`` None) until the two are adjacent; floats until they are within
    ``rel_tol`` of the lower one. At most ``max_steps`` calls of ``holds``. Returns the
    narrowed ``(good, bad)``.
    """
    steps = 0
    while _wide(good, bad, rel_tol) and (max_steps is None or steps < max_steps):
        mid = (good + bad) // 2 if rel_tol is None else 0.5 * (good + bad)
        steps += 1
        if holds(mid):
            good = mid
        else:
            bad = mid
    return good, bad


def _wide(good, bad, rel_tol: float | None) -> bool:
    if rel_tol is None:
        return abs(bad - good) > 1
    return abs(bad - good) > rel_tol * min(good, bad)
