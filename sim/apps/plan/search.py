"""The count search: the smallest count of one device that meets the target, what binds, and
the sensitivity to +10 % load beyond the planned load (target x (1 + headroom) x 1.1)."""

from __future__ import annotations

from sim.apps.plan.devices import Infeasible
from sim.apps.plan.results import Candidate, DevicePlan
from sim.apps.plan.target import Target
from sim.loadgen.scenarios import THROUGHPUT
from sim.util.bisect import bisect


def smallest_count(evaluate, start: int, max_count: int) -> tuple[Candidate | None, Candidate | None, Candidate]:
    """(smallest passing, the next smaller's failure or None at 1, best failure seen).

    ``evaluate(k)`` must improve with ``k``. Starts at ``start``: down while passing, else
    doubling up to ``max_count`` and bisecting. ``(None, None, best)`` when nothing up to
    ``max_count`` passes.
    """
    seen: dict[int, Candidate] = {}

    def ev(k: int) -> Candidate:
        if k not in seen:
            seen[k] = evaluate(k)
        return seen[k]

    k = min(max(1, start), max_count)
    if ev(k).ok:
        while k > 1 and ev(k - 1).ok:
            k -= 1
        return ev(k), (ev(k - 1) if k > 1 else None), ev(k)
    lo = k
    hi = None
    while hi is None:
        if lo >= max_count:
            return None, None, ev(lo)
        nxt = min(max_count, max(lo + 1, lo * 2))
        if ev(nxt).ok:
            hi = nxt
        else:
            lo = nxt
    hi, lo = bisect(lambda count: ev(count).ok, hi, lo)
    return ev(hi), ev(lo), ev(hi)


#: the sensitivity's load: 10 % above the planned load (the target with its headroom)
SENSITIVITY_LOAD = 1.1

BINDING_TEXT = {
    "throughput": "throughput: one device fewer cannot carry the load",
    "queueing": "latency bound under queueing: one device fewer has the capacity but its p99 misses the bound",
    "latency": "latency bound",
    "host issue": "host issue rate",
    "memory": "memory",
    "early stopping": "run length: one device fewer meets the limit in this run, but the run is too short for "
                      "LoadGen's early-stopping estimate (lengthen --min-duration-ms)",
    "run length (min duration)": "run length: one device fewer fails LoadGen's minimum duration",
    "run length (min queries)": "run length: one device fewer fails LoadGen's minimum query count",
}


def plan_device(dev, target: Target, max_count: int = 256) -> DevicePlan:
    out = DevicePlan(dev.name, dev.kind, price_usd=dev.price_usd, usd_per_hour=dev.usd_per_hour, tdp_w=dev.tdp_w,
                     precision=dev.precision, source=dev.source)
    try:
        dev.feasible(target)
    except Infeasible as e:
        out.status, out.binding = f"impossible: {e}", e.binding
        return out
    calls = [0]

    def evaluate(k: int, load: float = 1.0) -> Candidate:
        calls[0] += 1
        return dev.evaluate(k, target, load)

    chosen, smaller, best = smallest_count(evaluate, dev.estimate(target), max_count)
    if chosen is None:
        out.status = (f"impossible: no system up to {max_count} x {dev.name} meets the target; best found: "
                      f"{best.count} devices, {best.detail}")
        out.best, out.binding = best, best.reason
        out.evaluated = calls[0]
        return out
    out.chosen, out.smaller = chosen, smaller
    if smaller is None:
        out.binding = "none: one device meets the target"
    else:
        out.binding = BINDING_TEXT.get(smaller.reason, smaller.reason)
    if target.scenario in THROUGHPUT:
        # +10 % load beyond what the plan was sized for (the target with its headroom): a load
        # the headroom does not already cover, so the line can fail
        beyond = target.required_qps(SENSITIVITY_LOAD)
        out.plus10 = evaluate(chosen.count, SENSITIVITY_LOAD)
        nxt, _, _ = smallest_count(lambda k: evaluate(k, SENSITIVITY_LOAD), chosen.count, max_count)
        out.count_at_plus10 = nxt.count if nxt else None
        verdict = "meets it" if out.plus10.ok else f"fails ({out.plus10.reason})"
        n = out.count_at_plus10
        keep = (f"; {_devices(n)} {'meets' if n == 1 else 'meet'} it" if n
                else f"; no count up to {max_count} meets it")
        out.sensitivity = (f"+10% load beyond the {target.headroom:.0%} headroom ({beyond:,.0f}"
                           f"{' QPS' if target.scenario == 'Server' else ' samples/s'}): the planned system "
                           f"{verdict}{keep}")
    else:
        out.sensitivity = "load-independent (one query at a time): margin " + (
            f"{(1 - chosen.value * 1e6 / target.latency_limit_ns()) * 100:.0f}% below the limit")
    out.evaluated = calls[0]
    return out


def _devices(n: int) -> str:
    return f"{n} device" + ("" if n == 1 else "s")
