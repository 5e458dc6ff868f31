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

from sim.errors import field_error
from sim.util.yamlfile import read_yaml

POLICIES = ("none", "fixed", "dynamic")


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


def _get(d: dict, key: str, kind, src: str, path: str, default=None, minimum=None):
    if key not in d or d[key] is None:
        return default
    value = d[key]
    ok = isinstance(value, kind) and not isinstance(value, bool)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok or (minimum is not None and value < minimum):
        what = {int: "an integer", float: "a number", str: "a string", list: "a list", dict: "a mapping"}[kind]
        bound = f" >= {minimum}" if minimum is not None else ""
        raise field_error(src, f"{path}{key}", value, f"{what}{bound}")
    return value


def _check_keys(d, allowed: set, src: str, path: str) -> dict:
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise field_error(src, path.rstrip(".") or "(top level)", d, "a mapping")
    for key in d:
        if key not in allowed:
            raise field_error(src, f"{path}{key}", d[key], f"one of {sorted(allowed)}")
    return d


def _stage(d, src: str, path: str) -> StageSpec | None:
    if d is None:
        return None
    d = _check_keys(d, {"workers", "time_us_per_sample", "time_us_per_batch"}, src, path)
    return StageSpec(workers=_get(d, "workers", int, src, path, 1, minimum=1),
                     time_ns_per_sample=_get(d, "time_us_per_sample", float, src, path, 0.0, minimum=0) * 1e3,
                     time_ns_per_batch=_get(d, "time_us_per_batch", float, src, path, 0.0, minimum=0) * 1e3)


COST_FIELDS = {
    "fixed": {"time_us"},
    "exponential": {"mean_us"},
    "affine": {"a_us", "b_us_per_sample"},
    "cpu_profile": {"workload", "threads", "small"},
}


def _cost(d, src: str) -> dict | None:
    if d is None:
        return None
    path = "accelerators.cost."
    if not isinstance(d, dict) or d.get("kind") not in COST_FIELDS:
        raise field_error(src, path + "kind", d.get("kind") if isinstance(d, dict) else d,
                          f"one of {sorted(COST_FIELDS)}")
    kind = d["kind"]
    _check_keys(d, COST_FIELDS[kind] | {"kind"}, src, path)
    for key in COST_FIELDS[kind] - {"workload", "threads", "small"}:
        _get(d, key, float, src, path, minimum=0)
        if key not in d:
            raise field_error(src, path + key, None, f"a number (required for kind {kind})")
    return dict(d)


def parse_system(data: dict, src: str = "system") -> SystemSpec:
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
        raise field_error(src, "batching.policy", policy, f"one of {list(POLICIES)}")
    max_batch = _get(bat, "max_batch", int, src, "batching.", 1, minimum=1)
    delay_ns = _get(bat, "max_queue_delay_us", float, src, "batching.", 0.0, minimum=0) * 1e3
    preferred = _get(bat, "preferred_batch_sizes", list, src, "batching.", [])
    for p in preferred:
        if not isinstance(p, int) or isinstance(p, bool) or not 1 <= p <= max_batch:
            raise field_error(src, "batching.preferred_batch_sizes", preferred,
                              f"integers between 1 and max_batch ({max_batch})")
    if policy == "none" and max_batch != 1:
        raise field_error(src, "batching.max_batch", max_batch, "1 with policy 'none' (or choose fixed/dynamic)")
    if preferred and policy != "dynamic":
        raise field_error(src, "batching.preferred_batch_sizes", preferred, "only with policy 'dynamic'")

    link_spec = None
    if link:
        bw = _get(link, "bandwidth_gbps", float, src, "link.")
        if bw is None or bw <= 0:
            raise field_error(src, "link.bandwidth_gbps", bw, "a number > 0 (GB/s)")
        link_spec = LinkSpec(bandwidth_bytes_per_s=bw * 1e9,
                             latency_ns=_get(link, "latency_us", float, src, "link.", 0.0, minimum=0) * 1e3,
                             input_bytes_per_sample=_get(link, "input_bytes_per_sample", int, src, "link.", 0,
                                                         minimum=0),
                             output_bytes_per_sample=_get(link, "output_bytes_per_sample", int, src, "link.", 0,
                                                          minimum=0))
    name = _get(d, "name", str, src, "", SystemSpec.name)
    return SystemSpec(
        name=name,
        issue_overhead_ns=_get(host, "issue_overhead_us", float, src, "host.", 0.0, minimum=0) * 1e3,
        schedule_delay_ns=_get(host, "schedule_delay_us", float, src, "host.", 0.0, minimum=0) * 1e3,
        preprocess=_stage(host.get("preprocess"), src, "host.preprocess."),
        postprocess=_stage(host.get("postprocess"), src, "host.postprocess."),
        batching=BatchingSpec(policy, max_batch, delay_ns, tuple(sorted(preferred))),
        accelerators=_get(acc, "count", int, src, "accelerators.", 1, minimum=1),
        instances=_get(acc, "instances", int, src, "accelerators.", 1, minimum=1),
        cost=_cost(acc.get("cost"), src),
        idle_wake_ns=_get(acc, "idle_wake_us", float, src, "accelerators.", 0.0, minimum=0) * 1e3,
        idle_after_ns=_get(acc, "idle_after_us", float, src, "accelerators.", 0.0, minimum=0) * 1e3,
        link=link_spec,
    )


def load_system(path: str | Path) -> SystemSpec:
    path = Path(path)
    data = read_yaml(path, "a system description")
    return parse_system(data or {}, str(path))
