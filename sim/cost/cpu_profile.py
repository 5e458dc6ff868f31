"""A cost model from a measured CPU profile: batch service times of this machine in onnxruntime.

``CpuProfileCost`` answers ``service_time_ns(batch, idle)`` from a profile
(``sim.profile.schema``; measured and cached by ``sim.profile.store``): the median
end-to-end time at a measured batch size, linear between measured batch sizes.
"""

from __future__ import annotations

import bisect
from fractions import Fraction

import numpy as np

from sim.errors import InputError
from sim.profile.schema import SCHEMA


class CpuProfileCost:
    """Service time from a measured profile: linear in batch between measured batch sizes.

    ``service_time_ns(batch)`` uses the median clean back-to-back time (``clean_busy_ns``),
    ``service_time_ns(batch, idle=True)`` the median time after idling (``clean_idle_ns``).
    A batch outside the measured range is an error: there is no calibration data for it.
    """

    random = False

    def __init__(self, profile: dict, source: str | None = None) -> None:
        if not isinstance(profile, dict) or profile.get("schema") != SCHEMA:
            got = profile.get("schema") if isinstance(profile, dict) else type(profile).__name__
            raise InputError(f"{source or 'cpu profile'}: field 'schema' = {got!r}: expected {SCHEMA!r}")
        name = (profile.get("workload") or {}).get("name", "?")
        self.source = source or f"cpu profile of {name}"
        points = []
        for key, entry in (profile.get("batches") or {}).items():
            try:
                e2e = entry["end_to_end"]
                points.append((int(key), int(e2e["clean_busy_ns"]["median"]), int(e2e["clean_idle_ns"]["median"])))
            except (KeyError, TypeError, ValueError):
                raise InputError(f"{self.source}: field 'batches.{key}.end_to_end' = {entry!r:.80}: expected "
                                 f"clean_busy_ns and clean_idle_ns medians") from None
        if not points:
            raise InputError(f"{self.source}: field 'batches' is empty: expected at least one measured batch size")
        points.sort()
        self.batch_sizes = tuple(p[0] for p in points)
        self._busy = [p[1] for p in points]
        self._idle = [p[2] for p in points]

    def service_time_ns(self, batch: int, idle: bool = False, rng: np.random.Generator | None = None) -> int:
        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch <= 0:
            raise InputError(f"{self.source}: batch size {batch!r}: expected an integer >= 1")
        batch = int(batch)
        lo, hi = self.batch_sizes[0], self.batch_sizes[-1]
        if batch < lo or batch > hi:
            wanted = ",".join(str(b) for b in sorted(set(self.batch_sizes) | {batch}))
            raise InputError(f"{self.source}: batch {batch} outside measured range [{lo}, {hi}]; re-profile "
                             f"with --batch-sizes {wanted}")
        values = self._idle if idle else self._busy
        k = bisect.bisect_left(self.batch_sizes, batch)
        if self.batch_sizes[k] == batch:
            return values[k]
        b0, b1 = self.batch_sizes[k - 1], self.batch_sizes[k]
        v0, v1 = values[k - 1], values[k]
        return round(Fraction(v0 * (b1 - batch) + v1 * (batch - b0), b1 - b0))

    def describe(self) -> str:
        sizes = ",".join(str(b) for b in self.batch_sizes)
        return f"measured CPU profile ({self.source}), batch sizes {sizes}, linear between them"
