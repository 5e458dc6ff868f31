"""What the planner reports: one simulated candidate system, and one device's plan."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Candidate:
    """One simulated system: a count of devices and its settings, and how it did."""
    count: int
    ok: bool
    batching: str = ""
    value: float | None = None          # Server p99 ms, Offline samples/s, SS p90 ms, MS p99 ms
    utilisation: float | None = None    # devices' busy share over the run
    reason: str = ""                    # why it fails (binding constraint), or ""
    detail: str = ""
    valid: bool | None = None           # LoadGen's verdict of the simulated run
    qps: float | None = None


@dataclass
class DevicePlan:
    device: str
    kind: str
    status: str = "ok"                  # ok / impossible: ... / unsupported: ...
    chosen: Candidate | None = None
    smaller: Candidate | None = None    # the next smaller system's run (why it is not enough)
    best: Candidate | None = None       # the best system found when none meets the target
    binding: str = ""
    sensitivity: str = ""
    plus10: Candidate | None = None
    count_at_plus10: int | None = None
    price_usd: float | None = None
    usd_per_hour: float | None = None
    tdp_w: float | None = None
    precision: str = ""
    source: str = ""
    evaluated: int = 0
    over_budget: bool = False

    @property
    def count(self) -> int | None:
        return self.chosen.count if self.chosen else None

    def total(self, objective: str) -> float | None:
        if self.chosen is None:
            return None
        per = {"cost": self.price_usd, "hourly": self.usd_per_hour, "power": self.tdp_w, "count": 1.0}[objective]
        return None if per is None else per * self.chosen.count
