"""What the real system under test runs and is made of.

- ``parse_workload_ref`` and ``load_workload``: the workload, named as the simulator names it
  (a catalog name, ``name:key=value,...`` with builder parameters, or an ``.onnx`` path);
- ``HarnessConfig``: the SUT's parts (worker instances, intra-op threads, the batching
  policy), what every real run's process is given;
- ``realise``: that configuration from the same ``SystemSpec`` the simulator reads, as far
  as a CPU can realise it; host stages the CPU has no counterpart for (pre/post-processing
  pools, a link, several accelerators, a synthetic cost) are refused, and so are the host
  overheads the calibration measures (``sim.validate.calibrate_cpu``);
- ``check_model_batches``: a model whose fixed first dimension rules out the batch sizes asked.

The SUT itself is ``sim.validate.sut``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

from sim.errors import InputError
from sim.workload import catalog as workloads

POOL_SAMPLES = 32          # distinct input samples held in memory per instance


def parse_workload_ref(ref: str) -> tuple[str, dict]:
    """``name`` or ``name:key=value,key=value`` (builder parameters) or a ``.onnx`` path."""
    if ref.endswith(".onnx") or os.sep in ref or ":" not in ref:
        return ref, {}
    name, _, rest = ref.partition(":")
    params = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = part.partition("=")
        if not eq or not key:
            raise InputError(f"workload {ref!r}: parameter {part!r}: expected key=value")
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return name, params


def load_workload(ref: str, small: bool = False) -> workloads.Workload:
    """The workload ``ref`` names (see ``parse_workload_ref``), from the catalog or its ``.onnx`` file."""
    name, params = parse_workload_ref(ref)
    return workloads.resolve(name, small=small, **params)


@dataclass(frozen=True)
class HarnessConfig:
    """What the real SUT is made of (see the module docstring)."""
    workload: str                       # catalog name, name:key=value,... or .onnx path
    small: bool = False
    instances: int = 1
    intra_op_threads: int = 0           # 0: onnxruntime's default (one per physical core)
    policy: str = "none"
    max_batch: int = 1
    max_queue_delay_ns: float = 0.0
    preferred: tuple[int, ...] = ()
    pool_samples: int = POOL_SAMPLES

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "HarnessConfig":
        d = dict(d)
        d["preferred"] = tuple(d.get("preferred", ()))
        return HarnessConfig(**d)

    def describe(self) -> str:
        threads = self.intra_op_threads or "default"
        bat = self.policy if self.policy == "none" else (
            f"{self.policy} max {self.max_batch}"
            + (f", delay {self.max_queue_delay_ns / 1e3:g} us" if self.policy == "dynamic" else ""))
        return f"{self.instances} worker(s) x {threads} intra-op thread(s), batching {bat}"


def setup_lines(cfg: HarnessConfig, physical_cores: int, usable_cores: int, system_file: str | None) -> list[str]:
    """What a validation runs, said before it starts: where the set-up comes from, the
    worker and intra-op thread counts (onnxruntime's default resolved to its number), the
    batching, and whether the model's threads fill every core (then LoadGen's threads and
    any other process take cores from a run in progress, and the prediction depends on
    measuring that: ``MachineCalibration.contention``)."""
    threads = cfg.intra_op_threads or physical_cores
    how = (f"{threads} intra-op thread(s)" if cfg.intra_op_threads
           else f"onnxruntime's default intra-op threads ({threads}: one per physical core)")
    lines = [f"set-up ({system_file or 'the default: no --system file'}): {cfg.instances} worker(s) x {how}, "
             f"batching {cfg.describe().split('batching ', 1)[1]}"]
    used = cfg.instances * threads
    if used >= usable_cores:
        lines.append(f"  the model's {used} thread(s) fill all {usable_cores} usable cores: LoadGen's threads and "
                     f"other processes take cores from runs in progress (measured by the calibration and "
                     f"simulated); keep the machine quiet, other processes' load is not predicted")
    else:
        lines.append(f"  the model's {used} thread(s) leave {usable_cores - used} of {usable_cores} usable cores to "
                     f"LoadGen and the harness")
    return lines


def realise(system, workload: str, small: bool = False, source: str = "system") -> HarnessConfig:
    """The harness configuration for ``system``, or ``InputError`` for what a CPU cannot be.

    Refused: more than one accelerator, a link, pre/post-processing pools, a host issue
    overhead or an idle wake-up cost (those are properties of this machine, measured by
    the calibration, not settings), a cost model other than ``cpu_profile``.
    """
    problems = []
    if system.accelerators != 1:
        problems.append(f"accelerators.count = {system.accelerators} (this CPU is one device; use "
                        f"accelerators.instances for parallel workers)")
    if system.link is not None:
        problems.append("link (no host-device link on a CPU)")
    if system.preprocess is not None:
        problems.append("host.preprocess (the harness has no pre-processing stage)")
    if system.postprocess is not None:
        problems.append("host.postprocess (the harness has no post-processing stage)")
    for attr, key in (("issue_overhead_ns", "host.issue_overhead_us"),
                      ("schedule_delay_ns", "host.schedule_delay_us"),
                      ("idle_wake_ns", "accelerators.idle_wake_us"),
                      ("idle_after_ns", "accelerators.idle_after_us")):
        if getattr(system, attr, 0.0):
            problems.append(f"{key} (measured on this machine by the calibration, not a setting)")
    cost = system.cost or {"kind": "cpu_profile"}
    if cost.get("kind") != "cpu_profile":
        problems.append(f"accelerators.cost.kind = {cost.get('kind')!r} (the harness runs the real model; "
                        f"expected cpu_profile or no cost entry)")
    if cost.get("workload") and cost["workload"] != workload:
        problems.append(f"accelerators.cost.workload = {cost['workload']!r} differs from the validated "
                        f"workload {workload!r}")
    if problems:
        raise InputError(f"{source}: the real harness cannot realise " + "; ".join(problems))
    b = system.batching
    return HarnessConfig(workload=workload, small=bool(small or cost.get("small", False)),
                         instances=int(system.instances), intra_op_threads=int(cost.get("threads") or 0),
                         policy=b.policy, max_batch=int(b.max_batch), max_queue_delay_ns=float(b.max_queue_delay_ns),
                         preferred=tuple(b.preferred_batch_sizes))


def check_model_batches(model, max_batch: int, source: str) -> None:
    """A model with a fixed first dimension can only run batches of exactly that size."""
    from sim.workload.inputs import graph_inputs  # noqa: PLC0415 - loads onnx

    for v in graph_inputs(model):
        t = v.type.tensor_type
        dims = t.shape.dim if t.HasField("shape") else []
        if not dims:
            raise InputError(f"{source}: input '{v.name}' has no batch dimension (rank 0 or unknown shape); "
                             f"the harness gathers samples along the first dimension")
        if dims[0].HasField("dim_value") and dims[0].dim_value > 0:
            fixed = dims[0].dim_value
            if fixed != 1 or max_batch != 1:
                raise InputError(f"{source}: input '{v.name}' has a fixed first dimension {fixed}; the harness "
                                 f"can realise only batches of 1 on such a model (max_batch {max_batch} asked)")
