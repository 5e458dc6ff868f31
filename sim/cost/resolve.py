"""Turning a description into a cost model: the one resolver, with the one cache.

A run's cost comes from, in this order: an explicit cost model; the system file's
``accelerators.cost`` mapping (``fixed``, ``exponential``, ``affine``, or ``cpu_profile``);
else the measured onnxruntime profile of the run's workload on this machine. A device
profile of ``hw_profiles/`` becomes a cost in ``sim.hw.whatif`` (the calibrated hardware
model), which keeps its engines in the same cache (``cached``).

Adding a cost model: one module under ``sim/cost/`` implementing ``sim.cost.protocol`` and,
where a system file should name it, one entry in ``SYNTHETIC`` (or one branch below for a
measured kind).
"""

from __future__ import annotations

from typing import Any, Callable, Hashable, Protocol, TypeVar

from sim.cost.cpu_profile import CpuProfileCost
from sim.cost.protocol import CostModel
from sim.cost.synthetic import AffineCost, ExponentialCost, FixedCost
from sim.errors import InputError
from sim.workload import catalog

T = TypeVar("T")


class SystemCost(Protocol):
    """What the resolver reads of a system description (``sim.sut.system.SystemSpec``)."""

    cost: dict | None            # the system file's accelerators.cost mapping
    idle_wake_ns: float
    batching: Any                # .max_batch: the largest batch a measured profile must cover

#: the system file's synthetic cost kinds: (fields in microseconds) -> cost model (ns), wake-up time (ns)
SYNTHETIC: dict[str, Callable[[dict, float], CostModel]] = {
    "fixed": lambda c, wake_ns: FixedCost(c["time_us"] * 1e3, wake_ns),
    "exponential": lambda c, wake_ns: ExponentialCost(c["mean_us"] * 1e3, wake_ns),
    "affine": lambda c, wake_ns: AffineCost(c["a_us"] * 1e3, c["b_us_per_sample"] * 1e3, wake_ns),
}

#: batch sizes measured for a CPU profile (besides 1 and the system's largest batch)
PROFILE_BATCH_SIZES = (2, 4, 8, 16, 32, 64, 128)

_CACHE: dict[Hashable, object] = {}


def cached(key: Hashable, build: Callable[[], T]) -> T:
    """``build()`` once per process for ``key`` (measured profiles, calibrated engines, fits)."""
    if key not in _CACHE:
        _CACHE[key] = build()
    return _CACHE[key]  # type: ignore[return-value]


def clear_cache() -> None:
    _CACHE.clear()


def synthetic(cost: dict, wake_ns: float = 0.0) -> CostModel:
    """A synthetic cost model from a system's ``cost`` mapping (``cpu_profile`` is measured: ``for_system``)."""
    build = SYNTHETIC.get(cost["kind"])
    if build is None:
        raise ValueError(f"cost kind {cost['kind']!r} is not synthetic")
    return build(cost, wake_ns)


def for_system(system: SystemCost, workload: str | None, cost: CostModel | None = None, small: bool = False,
               *, cache: bool = False) -> CostModel:
    """The batch cost model of a run: explicit, from the system file, or the workload's CPU profile.

    With ``cache`` a measured profile's cost is built once per process per description.
    """
    if cost is not None:
        return cost
    spec = system.cost
    if spec is not None and spec["kind"] != "cpu_profile":
        return synthetic(spec, system.idle_wake_ns)
    name = (spec or {}).get("workload") or workload
    if name is None:
        raise InputError("no cost model: give a workload (its CPU profile is measured), a synthetic "
                         "service time, or a cost entry in the system file")
    small = bool((spec or {}).get("small", small))
    max_b = system.batching.max_batch
    sizes = sorted({1, max_b} | {b for b in PROFILE_BATCH_SIZES if b < max_b})
    threads = (spec or {}).get("threads")
    if not cache:
        return _measured(name, small, sizes, threads)
    key = repr(("cpu_profile", name, small, tuple(sizes), threads))
    return cached(key, lambda: _measured(name, small, sizes, threads))


def _measured(name: str, small: bool, sizes: list[int], threads: int | None) -> CostModel:
    from sim.profile import store  # noqa: PLC0415 - loads onnxruntime: only to measure a profile

    w = catalog.resolve(name, small=small)
    profile = store.load_or_measure(w, batch_sizes=sizes, threads=threads)
    return CpuProfileCost(profile)
