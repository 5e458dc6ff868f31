"""Planning every candidate device and ranking the plans by an objective (and a budget)."""

from __future__ import annotations

from dataclasses import replace

from sim.apps.compare import check_devices
from sim.apps.plan.devices import HwDevice, Infeasible
from sim.apps.plan.results import DevicePlan
from sim.apps.plan.search import plan_device
from sim.apps.plan.target import Target, check_target
from sim.errors import InputError
from sim.hw import profiles, published, whatif
from sim.util.checks import RANGES, number

OBJECTIVES = ("cost", "hourly", "power", "count")


def plan(workload: str, target: Target, devices: list[str], objective: str = "count",
         budget_usd: float | None = None, max_count: int = 256, prices: dict | None = None,
         hourly: dict | None = None, calib=None, log=None) -> list[DevicePlan]:
    """Plan every device (profile names) and rank them by ``objective``; see the ``sim.apps.plan`` docstring."""

    check_target(target)
    if objective not in OBJECTIVES:
        raise InputError(f"--objective {objective!r}: expected one of {list(OBJECTIVES)}")
    check_devices(devices)
    for what, table in (("--price", prices or {}), ("--hourly", hourly or {})):
        for d in table:
            if d not in devices:
                raise InputError(f"{what}: {d!r} is not one of the planned devices {devices}")
    number(max_count, "--max-devices", **RANGES["instances"])
    if budget_usd is not None:
        number(budget_usd, "--budget", minimum=0.0)
    for what, table in (("--price", prices or {}), ("--hourly", hourly or {})):
        for d, amount in table.items():
            number(amount, f"{what} {d}", above=0.0)
    if target.scenario == "Server" and target.latency_ms is None:
        bound = whatif.server_bound_ns(workload)
        if bound:
            target = replace(target, latency_ms=bound / 1e6)
    calib = calib or published.calibration_from()
    out = []
    for name in devices:
        try:
            dev = HwDevice(name, workload, target, calib)
        except Infeasible as e:
            prof = profiles.get(name)
            out.append(DevicePlan(name, prof.kind, status=f"unsupported: {e}", price_usd=prof.price_usd,
                                  tdp_w=prof.tdp_w))
            continue
        if prices and name in prices:
            dev.price_usd = prices[name]
        if hourly and name in hourly:
            dev.usd_per_hour = hourly[name]
        p = plan_device(dev, target, max_count)
        if log:
            log(f"  {name}: {p.count or '-'} ({p.evaluated} simulated runs)")
        out.append(p)
    return rank(out, objective, budget_usd)


def rank(plans: list[DevicePlan], objective: str, budget_usd: float | None = None) -> list[DevicePlan]:
    """Ranked plans first: those with a value of the objective, by it (over-budget ones after the
    rest); then the plans without the ranked quantity (no price, no TDP: ``ranked(p, objective)``
    is False), listed apart by device count; then the devices with no plan."""
    for p in plans:
        total = p.total("cost")
        p.over_budget = bool(budget_usd is not None and p.chosen and (total is None or total > budget_usd))

    def key(p: DevicePlan):
        if p.chosen is None:
            return (3, 0, 0.0, 0, p.device)
        v = p.total(objective)
        if v is None:
            return (2, 0, 0.0, p.chosen.count, p.device)
        return (1 if p.over_budget else 0, 0, v, p.chosen.count, p.device)

    return sorted(plans, key=key)


def ranked(plan: DevicePlan, objective: str) -> bool:
    """Whether ``plan`` takes a rank under ``objective``: it has a plan and a value of the ranked
    quantity (a device without a price is not ranked by cost, one without a TDP not by power)."""
    return plan.chosen is not None and plan.total(objective) is not None
