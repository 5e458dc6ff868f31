"""The system under test, described as data.

A ``SystemSpec`` says what sits between LoadGen and the accelerators: the host's issue
overhead, an optional pre-processing stage with its own workers, the batching policy,
K accelerators with M concurrent instances each, an optional host<->device link, and
post-processing. It is read from a small YAML file (times in microseconds, bandwidth in
GB/s, as the field names say) and turned into SI values (ns, bytes/s) here, once.

Example::

    name: 8x-accelerator, dynamic batching
    host:
      issue_overhead_us: 2          # LoadGen issue cost per query, one issue thread
      schedule_delay_us: 0          # how late a scheduled (Server) query is issued; a delay,
                                    # not a cost: queries do not queue for it
      preprocess: {workers: 4, time_us_per_sample: 50}
      postprocess: {workers: 2, time_us_per_batch: 10, time_us_per_sample: 1}
    batching: {policy: dynamic, max_batch: 64, max_queue_delay_us: 2000,
               preferred_batch_sizes: [32, 64]}
    accelerators:
      count: 8
      instances: 1
      cost: {kind: affine, a_us: 2000, b_us_per_sample: 50}   # or fixed, exponential, cpu_profile
      idle_wake_us: 0               # extra time for a batch that finds its instance idle
      idle_after_us: 1000           # how long without work makes an instance idle
    link: {bandwidth_gbps: 16, latency_us: 5, input_bytes_per_sample: 602112,
           output_bytes_per_sample: 4004}

Every field is optional; the default system is one accelerator with one instance, no
batching and no overheads, which with a synthetic cost is an exact M/D/1 or M/M/1 queue.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from sim.errors import InputError
from sim.util.checks import MAX_TIME_US, RANGES, check_work, number, refuse, short
from sim.util.yamlfile import read_yaml

POLICIES = ("none", "fixed", "dynamic")
#: The fastest host<->device link a system file may describe, in GB/s, and the most bytes one
#: sample may move over it.
MAX_BANDWIDTH_GBPS = 1e6
MAX_BYTES_PER_SAMPLE = 10 ** 12


@dataclass(frozen=True)
class StageSpec:
    """A host stage: ``workers`` parallel workers, each taking a fixed time per item."""
    workers: int = 1
    time_ns_per_sample: float = 0.0
    time_ns_per_batch: float = 0.0


@dataclass(frozen=True)
class BatchingSpec:
    policy: str = "none"
    max_batch: int = 1
    max_queue_delay_ns: float = 0.0
    preferred_batch_sizes: tuple[int, ...] = ()


@dataclass(frozen=True)
class LinkSpec:
    bandwidth_bytes_per_s: float
    latency_ns: float = 0.0
    input_bytes_per_sample: int = 0
    output_bytes_per_sample: int = 0

    def transfer_ns(self, nbytes: int) -> float:
        return float(self.latency_ns + round(nbytes * 1e9 / self.bandwidth_bytes_per_s))


@dataclass(frozen=True)
class SystemSpec:
    name: str = "1 device, 1 instance, no batching"
    issue_overhead_ns: float = 0.0
    schedule_delay_ns: float = 0.0    # open loop only: scheduled time -> issue (timer lateness)
    preprocess: StageSpec | None = None
    postprocess: StageSpec | None = None
    batching: BatchingSpec = field(default_factory=BatchingSpec)
    accelerators: int = 1
    instances: int = 1
    cost: dict | None = None          # cost description; None = supplied by the caller
    idle_wake_ns: float = 0.0
    idle_after_ns: float = 0.0
    link: LinkSpec | None = None

    @property
    def servers(self) -> int:
        return self.accelerators * self.instances

    def with_cost(self, cost: dict) -> "SystemSpec":
        return replace(self, cost=cost)


_KINDS = {str: "a string", list: "a list", dict: "a mapping", bool: "true or false"}


def _get(d: dict, key: str, kind, src: str, path: str, default=None, **bounds):
    """``d[key]`` (``default`` when absent or null): a number within ``bounds`` (those of
    ``sim.util.checks.number``) for ``int`` and ``float``, else a value of type ``kind``."""
    if key not in d or d[key] is None:
        return default
    value = d[key]
    if kind in (int, float):
        return number(value, src, f"{path}{key}", **{**bounds, "integer": kind is int})
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise refuse(src, f"{path}{key}", value, _KINDS[kind])
    return value


def _time_ns(d: dict, key: str, src: str, path: str, positive: bool = False) -> float:
    """A time field in us (``0`` when absent), as ns: finite, >= 0 (> 0 with ``positive``), at most an hour."""
    return _get(d, key, float, src, path, 0.0, **RANGES["positive_time_us" if positive else "time_us"]) * 1e3


def _check_keys(d, allowed: set, src: str, path: str) -> dict:
    if d is None:
        return {}
    if not isinstance(d, dict):
        if not path:   # the whole file: what it holds is not echoed (it may be any file the user named)
            raise InputError(f"{src}: the file holds a YAML {type(d).__name__}, not a mapping; expected a system "
                             f"description with fields {', '.join(sorted(allowed))}")
        raise refuse(src, path.rstrip("."), d, "a mapping")
    for key in d:
        if key not in allowed:   # the key is named, its value is not echoed
            name = key if isinstance(key, str) and len(key) <= 40 else short(key, 40)
            raise InputError(f"{src}: field '{path}{name}' is not a system field; "
                             f"expected one of {sorted(allowed)}")
    return d


def _stage(d, src: str, path: str) -> StageSpec | None:
    if d is None:
        return None
    d = _check_keys(d, {"workers", "time_us_per_sample", "time_us_per_batch"}, src, path)
    return StageSpec(workers=_get(d, "workers", int, src, path, 1, **RANGES["instances"]),
                     time_ns_per_sample=_time_ns(d, "time_us_per_sample", src, path),
                     time_ns_per_batch=_time_ns(d, "time_us_per_batch", src, path))


COST_FIELDS = {
    "fixed": {"time_us"},
    "exponential": {"mean_us"},
    "affine": {"a_us", "b_us_per_sample"},
    "cpu_profile": {"workload", "threads", "small"},
}
#: Threads a measured CPU profile may ask for.
MAX_THREADS = 4096


def _cost(d, src: str) -> dict | None:
    if d is None:
        return None
    path = "accelerators.cost."
    kind = d.get("kind") if isinstance(d, dict) else d
    if not isinstance(kind, str) or kind not in COST_FIELDS:
        raise refuse(src, path + "kind", kind, f"one of {sorted(COST_FIELDS)}")
    _check_keys(d, COST_FIELDS[kind] | {"kind"}, src, path)
    if kind == "cpu_profile":
        workload = _get(d, "workload", str, src, path)
        if workload is not None and not workload.strip():
            raise refuse(src, path + "workload", workload, "a workload name or a path to a .onnx file")
        threads = _get(d, "threads", int, src, path, minimum=1, maximum=MAX_THREADS)
        _get(d, "small", bool, src, path)
        return {**d, "threads": threads} if threads is not None else dict(d)
    times = {}
    for key in sorted(COST_FIELDS[kind]):
        if d.get(key) is None:
            raise refuse(src, path + key, None, f"a number (required for kind {kind})")
        # a fixed or exponential batch takes some time; affine's two terms may each be 0, not both
        times[key] = _get(d, key, float, src, path, **RANGES["time_us" if kind == "affine" else "positive_time_us"])
    if kind == "affine" and not times["a_us"] + times["b_us_per_sample"] > 0:
        raise refuse(src, path + "b_us_per_sample", d["b_us_per_sample"],
                     "a number > 0 where a_us is 0 (a batch takes some time)")
    return dict(d)


def parse_system(data: dict, src: str = "system") -> SystemSpec:
    """A ``SystemSpec`` from the parsed YAML; ``InputError`` names the field of any bad value."""
    d = _check_keys(data, {"name", "host", "batching", "accelerators", "link"}, src, "")
    host = _check_keys(d.get("host"), {"issue_overhead_us", "schedule_delay_us", "preprocess", "postprocess"},
                       src, "host.")
    bat = _check_keys(d.get("batching"), {"policy", "max_batch", "max_queue_delay_us", "preferred_batch_sizes"},
                      src, "batching.")
    acc = _check_keys(d.get("accelerators"), {"count", "instances", "cost", "idle_wake_us", "idle_after_us"},
                      src, "accelerators.")
    link = _check_keys(d.get("link"), {"bandwidth_gbps", "latency_us", "input_bytes_per_sample",
                                       "output_bytes_per_sample"}, src, "link.")

    policy = _get(bat, "policy", str, src, "batching.", "none")
    if policy not in POLICIES:
        raise refuse(src, "batching.policy", policy, f"one of {list(POLICIES)}")
    max_batch = _get(bat, "max_batch", int, src, "batching.", 1, **RANGES["batch"])
    delay_ns = _time_ns(bat, "max_queue_delay_us", src, "batching.")
    preferred = _get(bat, "preferred_batch_sizes", list, src, "batching.", [])
    for p in preferred:
        if not isinstance(p, int) or isinstance(p, bool) or not 1 <= p <= max_batch:
            raise refuse(src, "batching.preferred_batch_sizes", preferred,
                         f"integers between 1 and max_batch ({max_batch})")
    if policy == "none" and max_batch != 1:
        raise refuse(src, "batching.max_batch", max_batch, "1 with policy 'none' (or choose fixed/dynamic)")
    if preferred and policy != "dynamic":
        raise refuse(src, "batching.preferred_batch_sizes", preferred, "only with policy 'dynamic'")

    count = _get(acc, "count", int, src, "accelerators.", 1, **RANGES["instances"])
    instances = _get(acc, "instances", int, src, "accelerators.", 1, **RANGES["instances"])
    check_work("instances", count * instances,
               f"{src}: accelerators.count {count} x accelerators.instances {instances}")

    link_spec = None
    if link:
        if link.get("bandwidth_gbps") is None:
            raise refuse(src, "link.bandwidth_gbps", None, "a number > 0 (GB/s; required with a link)")
        bw = _get(link, "bandwidth_gbps", float, src, "link.", above=0.0, maximum=MAX_BANDWIDTH_GBPS)
        nbytes = [_get(link, key, int, src, "link.", 0, minimum=0, maximum=MAX_BYTES_PER_SAMPLE)
                  for key in ("input_bytes_per_sample", "output_bytes_per_sample")]
        link_spec = LinkSpec(bandwidth_bytes_per_s=bw * 1e9, latency_ns=_time_ns(link, "latency_us", src, "link."),
                             input_bytes_per_sample=nbytes[0], output_bytes_per_sample=nbytes[1])
        worst_ns = link_spec.latency_ns + max(nbytes) * max_batch * 1e9 / link_spec.bandwidth_bytes_per_s
        if worst_ns > MAX_TIME_US * 1e3:
            raise refuse(src, "link.bandwidth_gbps", bw,
                         f"a bandwidth that moves a batch of {max_batch} x {max(nbytes):,} bytes within an hour "
                         f"(it would take {worst_ns / 3.6e12:,.3g} hours)")
    name = _get(d, "name", str, src, "", SystemSpec.name)
    return SystemSpec(
        name=name,
        issue_overhead_ns=_time_ns(host, "issue_overhead_us", src, "host."),
        schedule_delay_ns=_time_ns(host, "schedule_delay_us", src, "host."),
        preprocess=_stage(host.get("preprocess"), src, "host.preprocess."),
        postprocess=_stage(host.get("postprocess"), src, "host.postprocess."),
        batching=BatchingSpec(policy, max_batch, delay_ns, tuple(sorted(preferred))),
        accelerators=count,
        instances=instances,
        cost=_cost(acc.get("cost"), src),
        idle_wake_ns=_time_ns(acc, "idle_wake_us", src, "accelerators."),
        idle_after_ns=_time_ns(acc, "idle_after_us", src, "accelerators."),
        link=link_spec,
    )


def load_system(path: str | Path) -> SystemSpec:
    path = Path(path)
    data = read_yaml(path, "a system description")
    return parse_system(data or {}, str(path))
