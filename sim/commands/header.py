"""The first lines of a command: what it simulates (workload, scenario, device, count, cost model
and where the cost's numbers come from), printed before any long work starts.

``what_simulated`` is said before the cost model is built (building it may measure the
workload with onnxruntime for seconds), from the flags alone, so a user sees at once which
device and which numbers the command stands on.
"""

from __future__ import annotations

import os

from sim.util.fingerprint import cpu_model_name


def this_cpu() -> str:
    """``AMD EPYC, 2 CPUs``: this machine's CPU as a profile measured here runs on it."""
    return f"{cpu_model_name()}, {os.cpu_count() or 1} CPUs"


def cost_source(system, workload: str | None, service_time: str | None, small: bool = False) -> str:
    """Where a run's batch cost comes from, in words (``sim.cost.resolve.for_system``'s order)."""
    if service_time is not None:
        return f"synthetic service time {service_time} ms (--service-time-ms), no device model"
    spec = system.cost
    if spec is not None and spec.get("kind") != "cpu_profile":
        fields = ", ".join(f"{k}={v}" for k, v in spec.items() if k != "kind")
        return f"synthetic {spec['kind']} cost from the system file ({fields}), no device model"
    name = (spec or {}).get("workload") or workload
    small = bool((spec or {}).get("small", small))
    precision = "the model's own precision" if str(name).endswith(".onnx") else "FP32"
    threads = (spec or {}).get("threads")
    return (f"measured onnxruntime profile of {name}{' (small)' if small else ''} on this machine's CPU "
            f"({this_cpu()}; {precision}; {threads or 'default'} threads), measured once and cached")


def what_simulated(scenario: str, workload: str | None, system, service_time: str | None, small: bool = False,
                   qps: float | None = None) -> str:
    """One line: ``simulating resnet50, Server at 20 QPS, on <system>; cost: <source>``."""
    load = f" at {qps:g} QPS" if qps is not None else ""
    count = (f"{system.accelerators} device{'s' if system.accelerators != 1 else ''} x {system.instances} "
             f"instance{'s' if system.instances != 1 else ''}")
    return (f"simulating {workload or 'no workload'}, {scenario}{load}, on '{system.name}' ({count}, "
            f"max batch {system.batching.max_batch}); cost: {cost_source(system, workload, service_time, small)}")
