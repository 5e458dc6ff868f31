"""Capacity planning: the smallest system of each candidate device that meets a target.

    python -m sim plan --workload resnet50 --scenario Server --qps 20000 --latency-ms 15 \\
        --devices t4,l4,a100-sxm,h100-sxm --objective power

For every candidate, the planner looks for the fewest devices whose *simulated* MLPerf run
meets the target with the stated headroom, and ranks the candidates by the objective:

- Server: VALID (LoadGen's verdict: p99 within the latency bound, early stopping, run
  length) at ``qps * (1 + headroom)``; the latency bound is ``--latency-ms`` or the model's
  MLPerf bound.
- Offline: samples/s of the simulated Offline run at least ``qps * (1 + headroom)``.
- SingleStream: p90 latency at most ``latency_ms / (1 + headroom)``; MultiStream: p99
  latency of 8-sample queries at most ``latency_ms / (1 + headroom)``, the samples spread
  over the devices.

A *device* is a hardware profile (``hw_profiles/``, through the calibrated hardware model
of ``sim.hw``) or a system file whose accelerator count is varied (``CostDevice``). For a
count the planner tries a few batching settings (the hardware model's choice, half and
twice its batch); a count fails only when none meets the target. Search: from the count
the throughput alone asks for, down while the smaller system still meets the target, or up
(doubling, then bisection) until one does; so the answer comes with the next smaller
system's failed run. The verdict is assumed to improve with the count, as it does for
these systems (more devices, same traffic).

What binds is read from the runs: *latency* (one batch on an idle device already misses
the bound: no count helps), *memory* (the weights do not fit the device), *host issue*
(the single LoadGen issue thread's rate), *throughput* (the next smaller system's capacity
is below the target) or *queueing* (the next smaller system has the capacity but its tail
latency misses the bound). The sensitivity: the planned system run at 10 % more than the
load it was sized for (the target with its headroom), and the count that meets that load.
Only plans with a value of the ranked quantity are ranked (``ranking.ranked``).

The package: ``target`` (the target and its checks), ``results`` (a candidate's run, a
device's plan), ``evaluate`` (the simulated run of one candidate count), ``devices`` (the
device kinds), ``search`` (the smallest count of one device) and ``ranking`` (every device
planned and ranked by the objective).
"""

from sim.apps.plan.devices import DEVICES_PER_NODE, CostDevice, HwDevice, Infeasible
from sim.apps.plan.evaluate import MS_SAMPLES
from sim.apps.plan.ranking import OBJECTIVES, plan, rank
from sim.apps.plan.results import Candidate, DevicePlan
from sim.apps.plan.search import BINDING_TEXT, plan_device, smallest_count
from sim.apps.plan.search import _devices as _devices
from sim.apps.plan.target import HEADROOM, SCENARIOS, Target, check_target

__all__ = [
    "BINDING_TEXT", "DEVICES_PER_NODE", "HEADROOM", "MS_SAMPLES", "OBJECTIVES", "SCENARIOS",
    "Candidate", "CostDevice", "DevicePlan", "HwDevice", "Infeasible", "Target",
    "check_target", "plan", "plan_device", "rank", "smallest_count",
]
