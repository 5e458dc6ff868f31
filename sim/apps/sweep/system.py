"""The one place a sweep point becomes a system (``sim.sut.system.SystemSpec``) and a cost model:
a system description composed from the point's fields, or a device profile name through the
calibrated hardware model (``sim.hw.whatif``)."""

from __future__ import annotations

import copy
from dataclasses import replace as _replace

from sim.apps.sweep.fields import SYSTEM_PREFIX, check_device_name
from sim.cost import resolve
from sim.cost.protocol import CostModel
from sim.errors import InputError
from sim.hw import whatif
from sim.sut.system import SystemSpec, parse_system


def _set_path(d: dict, path: list[str], value) -> None:
    for key in path[:-1]:
        nxt = d.get(key)
        if nxt is None:
            nxt = d[key] = {}
        elif not isinstance(nxt, dict):
            raise InputError(f"system field '{key}' is a {type(nxt).__name__}: expected a mapping "
                             f"(to set {'.'.join(path)})")
        d = nxt
    d[path[-1]] = value


def system_mapping(p: dict) -> dict:
    """The system description (as in a system YAML file) a point asks for."""
    sysd = copy.deepcopy(p.get("system") or {})
    changes = {}
    if "accelerators" in p:
        changes["accelerators.count"] = p["accelerators"]
    if "instances" in p:
        changes["accelerators.instances"] = p["instances"]
    if isinstance(p.get("device"), dict):
        changes["accelerators.cost"] = {k: v for k, v in p["device"].items() if k != "label"}
    if "batching" in p:
        changes["batching"] = dict(p["batching"])
    changes.update({k[len(SYSTEM_PREFIX):]: copy.deepcopy(v) for k, v in p.items() if k.startswith(SYSTEM_PREFIX)})
    for path, value in changes.items():
        _set_path(sysd, path.split("."), value)
    composed = _system_name(p, sysd)
    if changes or "name" not in sysd:
        sysd["name"] = f"{sysd['name']}: {composed}" if sysd.get("name") and changes else composed
    return sysd


def _system_name(p: dict, sysd: dict) -> str:
    acc = sysd.get("accelerators") if isinstance(sysd.get("accelerators"), dict) else {}
    dev = p.get("device")
    cost = acc.get("cost") if isinstance(acc.get("cost"), dict) else {}
    label = (dev.get("label") or dev.get("kind")) if isinstance(dev, dict) else (dev or cost.get("kind") or "device")
    bat = sysd.get("batching") if isinstance(sysd.get("batching"), dict) else {}
    policy = bat.get("policy", "none")
    batching = "no batching" if policy == "none" else f"{policy} batching (max {bat.get('max_batch', 1)})"
    inst = acc.get("instances", 1)
    return f"{acc.get('count', 1)}x {label}" + (f" x{inst} instances" if inst != 1 else "") + f", {batching}"


def system_and_cost(p: dict, *, build_cost: bool = True) -> tuple[SystemSpec, CostModel | None]:
    """The one place a grid point becomes a ``SystemSpec`` and a cost model.

    ``device`` mappings are system-file cost entries (synthetic or ``cpu_profile``; the
    latter measured once per process, cached on disk by ``sim.profile.store``); a device
    profile name goes through the calibrated hardware model (``_hw_system_and_cost``). With ``build_cost=False``
    the point is only checked (cheap: nothing is measured) and the cost is ``None``.
    """
    if isinstance(p.get("device"), str):
        return _hw_system_and_cost(p, build_cost)
    sysd = system_mapping(p)
    system = parse_system(sysd, "system")
    workload = p.get("workload")
    spec = system.cost
    if spec is None and workload is None:
        raise InputError("no cost model: expected a device (cost mapping), a system with accelerators.cost, "
                         "or a workload (whose CPU profile is measured)")
    if spec is not None and spec["kind"] == "cpu_profile" and not (spec.get("workload") or workload):
        raise InputError("device kind cpu_profile needs a workload: expected 'workload' in the point or the cost")
    if not build_cost:
        return system, None
    return system, resolve.for_system(system, workload, None, bool(p.get("small", False)), cache=True)


def _hw_system_and_cost(p: dict, build_cost: bool) -> tuple[SystemSpec, CostModel | None]:
    """A point whose device is a profile name: the calibrated cost of one engine
    (``sim.hw.whatif``); ``accelerators`` counts devices (each has the profile's engines)."""

    name, workload = check_device_name(p["device"], "point", "device"), p.get("workload")
    covers = f"device {name!r} (a hardware profile) needs a workload the hardware model covers"
    if not isinstance(workload, str) or not workload:
        raise InputError(f"{covers}: expected 'workload' a catalog name or a .onnx file, got {workload!r}")
    try:
        whatif.network(workload)
    except InputError as exc:
        raise InputError(f"{covers}: {exc}") from None
    system = parse_system(system_mapping(p), "system")
    if system.cost is not None:
        raise InputError(f"device {name!r} is a hardware profile: the system must not give accelerators.cost too")
    if not build_cost:
        return system, None
    bound = (p.get("settings") or {}).get("server_target_latency_ns")
    e = whatif.engine(name, workload, p["scenario"], system.accelerators, None, bound)
    return _replace(system, accelerators=system.accelerators * e.engines_per_device), e.cost
