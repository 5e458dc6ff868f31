"""The planning target: scenario, rate, latency limit and headroom, and its checks."""

from __future__ import annotations

from dataclasses import dataclass

from sim.errors import InputError
from sim.loadgen.scenarios import CLOSED_LOOP, THROUGHPUT
from sim.util.checks import RANGES, number

SCENARIOS = (*THROUGHPUT, *CLOSED_LOOP)      # Server, Offline, SingleStream, MultiStream


#: The margin a plan keeps: load x (1 + h) or latency / (1 + h), h in [0, 10).
HEADROOM = {"minimum": 0.0, "below": 10.0}


@dataclass(frozen=True)
class Target:
    scenario: str
    qps: float | None = None            # Server target QPS, Offline samples/s
    latency_ms: float | None = None     # Server bound; SingleStream p90 / MultiStream p99 limit
    headroom: float = 0.1
    min_duration_ms: float | None = None  # None: the model's mlperf.conf rules
    min_query_count: int | None = None

    def required_qps(self, load: float = 1.0) -> float:
        return float(self.qps) * load * (1.0 + self.headroom)

    def latency_limit_ns(self) -> float:
        return float(self.latency_ms) * 1e6 / (1.0 + self.headroom)

    def duration_overrides(self) -> dict:
        out = {}
        if self.min_duration_ms is not None:
            out["min_duration_ns"] = round(float(self.min_duration_ms) * 1_000_000)
        if self.min_query_count is not None:
            out["min_query_count"] = int(self.min_query_count)
        return out


def check_target(t: Target) -> None:
    """Field-named errors for a target the planner cannot work with (the numbers checked as the
    command line checks its flags: ``sim.util.checks.RANGES``)."""
    if t.scenario not in SCENARIOS:
        raise InputError(f"--scenario {t.scenario!r}: expected one of {list(SCENARIOS)}")
    if t.scenario in THROUGHPUT and t.qps is None:
        raise InputError(f"--qps {t.qps!r}: a {t.scenario} plan needs a target rate > 0 (queries/s)")
    if t.scenario in CLOSED_LOOP and t.latency_ms is None:
        raise InputError(f"--latency-ms {t.latency_ms!r}: a {t.scenario} plan needs a latency limit > 0 ms")
    if t.qps is not None:
        number(t.qps, "--qps", **RANGES["qps"])
    if t.latency_ms is not None:
        number(t.latency_ms, "--latency-ms", **RANGES["latency_ms"])
    number(t.headroom, "--headroom", **HEADROOM)
    if t.min_duration_ms is not None:
        number(t.min_duration_ms, "--min-duration-ms", **RANGES["duration_ms"])
    if t.min_query_count is not None:
        number(t.min_query_count, "--min-query-count", **RANGES["count"])
