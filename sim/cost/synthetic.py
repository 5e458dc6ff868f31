"""Cost models: how long one batch takes on one accelerator instance.

A cost model answers ``service_time_ns(batch, idle, rng)``: the time an instance is busy
with a batch of ``batch`` samples, where ``idle`` says the instance had been idle long
enough to pay a wake-up cost, and ``rng`` is the run's seeded generator for models with
random service. Implementations here are the synthetic ones used for experiments and
queueing-theory checks:

- ``FixedCost``: the same time for every batch (an M/D/c server when fed Poisson traffic).
- ``ExponentialCost``: exponentially distributed with a given mean (M/M/c).
- ``AffineCost``: ``a + b * batch``, the usual shape of batched inference.

Each may add ``wake_ns`` when the instance was idle. The measured CPU profile provides
another implementation (``sim.cost.cpu_profile.CpuProfileCost``); calibrated device profiles
provide more.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.errors import InputError
from sim.util.checks import MAX_TIME_US, short


@dataclass(frozen=True)
class FixedCost:
    time_ns: float
    wake_ns: float = 0.0
    random = False

    def service_time_ns(self, batch: int, idle: bool = False, rng: np.random.Generator | None = None) -> float:
        return self.time_ns + (self.wake_ns if idle else 0.0)

    def describe(self) -> str:
        return f"fixed {self.time_ns / 1e6:g} ms per batch"


@dataclass(frozen=True)
class ExponentialCost:
    mean_ns: float
    wake_ns: float = 0.0
    random = True

    def service_time_ns(self, batch: int, idle: bool = False, rng: np.random.Generator | None = None) -> float:
        if rng is None:
            raise ValueError("ExponentialCost needs the run's random generator")
        # Whole nanoseconds keep simulated times exact integers.
        return float(np.ceil(rng.exponential(self.mean_ns))) + (self.wake_ns if idle else 0.0)

    def describe(self) -> str:
        return f"exponential, mean {self.mean_ns / 1e6:g} ms per batch"


@dataclass(frozen=True)
class AffineCost:
    a_ns: float
    b_ns_per_sample: float
    wake_ns: float = 0.0
    random = False

    def service_time_ns(self, batch: int, idle: bool = False, rng: np.random.Generator | None = None) -> float:
        return self.a_ns + self.b_ns_per_sample * batch + (self.wake_ns if idle else 0.0)

    def describe(self) -> str:
        return f"affine {self.a_ns / 1e6:g} ms + {self.b_ns_per_sample / 1e6:g} ms x batch"


def parse_synthetic(text: str, source: str = "--service-time-ms") -> FixedCost | ExponentialCost | AffineCost:
    """Parse ``T`` or ``fixed:T`` (ms), ``exp:MEAN`` (ms) or ``affine:A,B`` (ms, ms per sample)."""
    if not isinstance(text, str):
        raise InputError(f"{source}: value {short(text)}: expected a string such as 'exp:1'")
    kind, _, rest = text.partition(":") if ":" in text else ("fixed", "", text)
    try:
        values = [float(v) for v in rest.split(",")]
    except ValueError:
        values = []
    expected = (f"T, fixed:T, exp:MEAN or affine:A,B with times in ms (> 0, finite, "
                f"at most {MAX_TIME_US / 1e3:g} ms)")
    if not values or not all(0 <= v <= MAX_TIME_US / 1e3 for v in values) or values[0] <= 0 and kind != "affine":
        raise InputError(f"{source}: value {short(text)}: expected {expected}")
    if kind == "fixed" and len(values) == 1:
        return FixedCost(values[0] * 1e6)
    if kind in ("exp", "exponential") and len(values) == 1:
        return ExponentialCost(values[0] * 1e6)
    if kind == "affine" and len(values) == 2 and values[0] + values[1] > 0:
        return AffineCost(values[0] * 1e6, values[1] * 1e6)
    raise InputError(f"{source}: value {short(text)}: expected {expected}")
