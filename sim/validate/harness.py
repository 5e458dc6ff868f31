"""A real system under test: onnxruntime on this CPU, driven by the real MLPerf LoadGen.

The SUT is built from the same ``SystemSpec`` the simulator reads, as far as a CPU can
realise it (``realise``):

- ``accelerators.instances`` worker threads, each with its own onnxruntime session
  (``accelerators.cost.threads`` intra-op threads, sequential execution, all graph
  optimisations, the CPU execution provider);
- one FIFO queue in front of them, and the batching policy of ``batching`` applied by
  whichever worker is free, with the same rules as ``sim.sut.batching`` (``none``: one
  sample; ``fixed``: wait for ``max_batch``, a short batch only when no further sample can
  come; ``dynamic``: send ``target`` samples as soon as they are queued, else when the
  oldest has waited ``max_queue_delay_us``, the largest preferred size that fits);
- LoadGen's ``IssueQuery`` callback only appends the samples to the queue; a worker gathers
  the samples' inputs from a pool held in memory (sample index modulo the pool size),
  runs the session and calls ``QuerySamplesComplete``.

Input tensors are synthetic (``sim.workload.inputs.make_feeds``), performance mode only, and the
responses carry no data. Host stages the CPU has no counterpart for (pre/post-processing
pools, a link, several accelerators, a synthetic cost) cannot be realised and are refused.

One scenario per process: LoadGen reads its embedded mlperf.conf once per process, so
``run_in_subprocess`` starts ``python -m sim.validate.harness <spec.json>``. The child
writes LoadGen's own logs (``mlperf_log_summary.txt``, ``mlperf_log_detail.txt``) and
``harness.json`` (LoadGen's verdict, what the SUT did, how busy the rest of the machine
was) plus ``samples.npz`` (per sample, in issue order: when the issue callback saw it and
when its batch finished; per batch: first sample, size, worker, start and end) into the
run's folder. Times are ``time.perf_counter_ns``.

``CpuMonitor`` samples ``/proc/stat`` during a run: CPU time used by other processes
(other work on a shared machine) is recorded with every run, so a disturbed run can be
told from a model error.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from sim.errors import InputError
from sim.loadgen.scenarios import CLOSED_LOOP
from sim.paths import REPO_ROOT
from sim.validate import require_loadgen
from sim.workload import catalog as workloads

POOL_SAMPLES = 32          # distinct input samples held in memory per instance
WARMUP_RUNS = 2            # per batch size and instance, before LoadGen starts


# ---------------------------------------------------------------------------------------
# what to run


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


def load_workload(ref: str, small: bool = False):
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


# ---------------------------------------------------------------------------------------
# onnxruntime


class Executor:
    """One instance: an onnxruntime session and the buffers its batches are gathered into."""

    def __init__(self, model=None, model_bytes: bytes | None = None, intra_op_threads: int = 0,
                 max_batch: int = 1, pool_samples: int = POOL_SAMPLES, seed: int = 0,
                 null_sleep_ns: dict | None = None):
        self.null = model is None
        self.max_batch = max_batch
        # no model: sleep instead (LoadGen's threads then sleep and wake as in a real run)
        self.sleep_s = {int(b): float(ns) / 1e9 for b, ns in (null_sleep_ns or {}).items()}
        if self.null:
            return
        import onnxruntime as ort  # noqa: PLC0415 - heavy: loaded only in the harness's process

        from sim.workload.inputs import make_feeds  # noqa: PLC0415 - loads onnx
        so = ort.SessionOptions()
        so.intra_op_num_threads = int(intra_op_threads or 0)
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        self.session = ort.InferenceSession(model_bytes or model.SerializeToString(), so,
                                            providers=["CPUExecutionProvider"])
        fixed_one = any(v.type.tensor_type.shape.dim[0].HasField("dim_value")
                        and v.type.tensor_type.shape.dim[0].dim_value == 1 for v in _inputs(model))
        self.pool_n = 1 if fixed_one else int(pool_samples)
        self.pool = make_feeds(model, self.pool_n, seed=seed)
        self.buffers = {b: {k: np.empty((b,) + v.shape[1:], dtype=v.dtype) for k, v in self.pool.items()}
                        for b in range(1, max_batch + 1)}
        self.outputs = [o.name for o in self.session.get_outputs()]

    def run(self, indices) -> None:
        if self.null:
            if self.sleep_s:
                time.sleep(self.sleep_s.get(len(indices), 0.0))
            return
        b = len(indices)
        idx = np.asarray(indices, dtype=np.int64) % self.pool_n
        feeds = self.buffers[b]
        for name, pool in self.pool.items():
            np.take(pool, idx, axis=0, out=feeds[name])
        self.session.run(self.outputs, feeds)

    def warm_up(self, runs: int = WARMUP_RUNS) -> None:
        for b in range(1, self.max_batch + 1):
            for _ in range(runs):
                self.run(np.arange(b))

    def probe(self, seconds: float, min_runs: int = 5, max_runs: int = 5000, batch: int = 1) -> list[int]:
        """Back-to-back runs of ``batch`` samples for ``seconds``: how fast this machine is right
        now (ns each)."""
        out: list[int] = []
        if self.null or seconds <= 0:
            return out
        samples = np.arange(batch)
        t_end = time.perf_counter() + seconds
        while len(out) < max_runs and (len(out) < min_runs or time.perf_counter() < t_end):
            t = time.perf_counter_ns()
            self.run(samples)
            out.append(time.perf_counter_ns() - t)
        return out

    def probe_largest(self, seconds: float) -> list[int]:
        """The same probe at the largest batch (none when that is batch 1): batches that go
        through DRAM can drift where batch 1 does not."""
        return self.probe(seconds, batch=self.max_batch) if self.max_batch > 1 else []


def _inputs(model):
    from sim.workload.inputs import graph_inputs  # noqa: PLC0415 - loads onnx

    return graph_inputs(model)


def make_executors(cfg: HarnessConfig, null: bool = False, seed: int = 0,
                   null_sleep_ns: dict | None = None) -> list[Executor]:
    if null:
        return [Executor(None, max_batch=cfg.max_batch, null_sleep_ns=null_sleep_ns) for _ in range(cfg.instances)]
    w = load_workload(cfg.workload, cfg.small)
    check_model_batches(w.model, cfg.max_batch, f"workload {cfg.workload}")
    data = w.model.SerializeToString()
    return [Executor(w.model, data, cfg.intra_op_threads, cfg.max_batch, cfg.pool_samples, seed + k)
            for k in range(cfg.instances)]


# ---------------------------------------------------------------------------------------
# the SUT: one queue, a batching rule, worker threads


class BatchRule:
    """``sim.sut.batching``'s policies, decided in real time on the live queue."""

    def __init__(self, cfg: HarnessConfig):
        self.policy = cfg.policy
        self.max_batch = cfg.max_batch
        self.delay_ns = cfg.max_queue_delay_ns
        self.preferred = tuple(sorted(cfg.preferred))
        self.target = self.preferred[-1] if self.preferred else cfg.max_batch

    def decide(self, queued: int, oldest_ns: int, now_ns: int, more_possible: bool):
        """``("take", count)`` or ``("wait", timeout_s or None)``."""
        if self.policy == "none":
            return ("take", 1)
        if self.policy == "fixed":
            if queued >= self.max_batch:
                return ("take", self.max_batch)
            return ("wait", None) if more_possible else ("take", queued)
        if queued >= self.target:
            return ("take", self.target)
        deadline = oldest_ns + self.delay_ns
        if now_ns < deadline and more_possible:
            return ("wait", (deadline - now_ns) / 1e9)
        count = min(queued, self.max_batch)
        fits = [p for p in self.preferred if p <= count]
        return ("take", fits[-1] if fits else count)


class WorkerSUT:
    """The queue, the batching rule and the worker threads (see the module docstring).

    ``complete(responses)`` is ``lg.QuerySamplesComplete`` under LoadGen; the calibration
    passes a stand-in. ``respond(id)`` builds one response object.
    """

    def __init__(self, cfg: HarnessConfig, executors: list[Executor], scenario: str, complete, respond,
                 capacity: int = 1 << 16):
        self.cfg = cfg
        self.rule = BatchRule(cfg)
        self.executors = executors
        self.closed_loop = scenario in CLOSED_LOOP
        self.all_known = scenario == "Offline"       # the one Offline query holds every sample
        self.complete = complete
        self.respond = respond
        self.cv = threading.Condition()
        self.queue: collections.deque = collections.deque()
        self.in_flight = 0
        self.flushed = False
        self.stopping = False
        self.issued = 0
        self.cb_ns = np.zeros(capacity, dtype=np.int64)
        self.done_ns = np.zeros(capacity, dtype=np.int64)
        self.batches: list[tuple] = []
        self.threads: list[threading.Thread] = []
        self.errors: list[str] = []

    # LoadGen's callbacks ---------------------------------------------------------------
    def issue_queries(self, samples) -> None:
        t = time.perf_counter_ns()
        with self.cv:
            seq = self.issued
            n = len(samples)
            if seq + n > len(self.cb_ns):
                grow = max(seq + n, 2 * len(self.cb_ns))
                self.cb_ns = np.resize(self.cb_ns, grow)
                self.done_ns = np.resize(self.done_ns, grow)
            self.cb_ns[seq:seq + n] = t
            append = self.queue.append
            for s in samples:
                append((s.id, s.index, t, seq))
                seq += 1
            self.issued = seq
            self.cv.notify(min(n, len(self.executors)))

    def flush_queries(self) -> None:
        with self.cv:
            self.flushed = True
            self.cv.notify_all()

    # the workers ------------------------------------------------------------------------
    def _more_possible(self) -> bool:
        if self.all_known:
            return False
        if self.closed_loop:
            return self.in_flight > 0
        return not self.flushed

    def _take(self):
        rule, q, cv = self.rule, self.queue, self.cv
        with cv:
            while True:
                if self.stopping:
                    return None
                if not q:
                    cv.wait()
                    continue
                action, arg = rule.decide(len(q), q[0][2], time.perf_counter_ns(), self._more_possible())
                if action == "wait":
                    cv.wait(arg)
                    continue
                batch = [q.popleft() for _ in range(arg)]
                self.in_flight += 1
                return batch

    def _worker(self, k: int) -> None:
        ex = self.executors[k]
        respond = self.respond
        try:
            while True:
                batch = self._take()
                if batch is None:
                    return
                t_start = time.perf_counter_ns()
                ex.run([s[1] for s in batch])
                t_end = time.perf_counter_ns()
                responses = [respond(s[0]) for s in batch]
                t_done = time.perf_counter_ns()
                first = batch[0][3]
                self.done_ns[first:first + len(batch)] = t_done
                self.batches.append((first, len(batch), k, t_start, t_end, t_done))
                self.complete(responses)
                with self.cv:
                    self.in_flight -= 1
                    if self.closed_loop or self.queue:
                        self.cv.notify_all()
        except Exception:  # a worker must never die silently: LoadGen would wait forever
            traceback.print_exc()
            sys.stderr.flush()
            os._exit(3)

    def start(self) -> None:
        for k in range(len(self.executors)):
            th = threading.Thread(target=self._worker, args=(k,), name=f"sut-worker-{k}", daemon=True)
            th.start()
            self.threads.append(th)

    def stop(self) -> None:
        with self.cv:
            self.stopping = True
            self.cv.notify_all()
        for th in self.threads:
            th.join(timeout=30)

    def arrays(self) -> dict:
        n = self.issued
        b = np.array(self.batches, dtype=np.int64).reshape(-1, 6)
        order = np.argsort(b[:, 0], kind="stable")
        b = b[order]
        return {"cb_ns": self.cb_ns[:n].copy(), "done_ns": self.done_ns[:n].copy(),
                "batch_first": b[:, 0], "batch_count": b[:, 1], "batch_worker": b[:, 2],
                "batch_start_ns": b[:, 3], "batch_end_ns": b[:, 4], "batch_done_ns": b[:, 5]}


# ---------------------------------------------------------------------------------------
# other work on the machine


def _proc_stat() -> tuple[int, int]:
    """(busy ticks of all CPUs, steal ticks) from /proc/stat."""
    with open("/proc/stat") as fh:
        parts = fh.readline().split()[1:]
    v = [int(x) for x in parts]
    busy = v[0] + v[1] + v[2] + v[5] + v[6]        # user nice system irq softirq
    steal = v[7] if len(v) > 7 else 0
    return busy, steal


def _own_ticks(pid: int | None = None) -> int:
    with open(f"/proc/{pid or 'self'}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])       # utime + stime, all threads


def foreign_cpu_cores(seconds: float = 1.0, own_pids: tuple[int, ...] = ()) -> float:
    """CPU cores used by other processes over ``seconds`` (this process excluded)."""
    if not os.path.exists("/proc/stat"):
        return 0.0
    hz = os.sysconf("SC_CLK_TCK")
    pids = (None,) + tuple(own_pids)
    b0, _ = _proc_stat()
    o0 = sum(_own_ticks(p) for p in pids)
    t0 = time.monotonic()
    time.sleep(seconds)
    b1, _ = _proc_stat()
    o1 = sum(_own_ticks(p) for p in pids)
    dt = time.monotonic() - t0
    return max(0.0, ((b1 - b0) - (o1 - o0)) / hz / dt)


def wait_quiet(max_cores: float, max_wait_s: float) -> tuple[float, float]:
    """Wait until other processes use < ``max_cores``; (seconds waited, last reading)."""
    t0 = time.monotonic()
    reading = foreign_cpu_cores(0.5)
    while reading >= max_cores and time.monotonic() - t0 < max_wait_s:
        time.sleep(1.0)
        reading = foreign_cpu_cores(1.0)
    return time.monotonic() - t0, reading


class ForeignMeter:
    """CPU cores other processes used between ``start()`` and ``read()``."""

    def start(self) -> "ForeignMeter":
        self.ok = os.path.exists("/proc/stat")
        if self.ok:
            self.b0, _ = _proc_stat()
            self.o0 = _own_ticks()
        self.t0 = time.monotonic()
        return self

    def read(self) -> float:
        if not self.ok:
            return 0.0
        b1, _ = _proc_stat()
        o1 = _own_ticks()
        dt = max(time.monotonic() - self.t0, 1e-3)
        return max(0.0, ((b1 - self.b0) - (o1 - self.o0)) / os.sysconf("SC_CLK_TCK") / dt)


class CpuMonitor:
    """Samples CPU use by other processes (and hypervisor steal) while a run goes on."""

    def __init__(self, period_s: float = 0.5):
        self.period_s = period_s
        self.windows: list[tuple[float, float, float]] = []    # (seconds, foreign cores, steal cores)
        self._stop = threading.Event()
        self._thread = None
        self.available = os.path.exists("/proc/stat")

    def _loop(self):
        hz = os.sysconf("SC_CLK_TCK")
        b0, s0 = _proc_stat()
        o0 = _own_ticks()
        t0 = time.monotonic()
        while not self._stop.wait(self.period_s):
            b1, s1 = _proc_stat()
            o1 = _own_ticks()
            t1 = time.monotonic()
            dt = t1 - t0
            if dt > 0:
                self.windows.append((dt, max(0.0, ((b1 - b0) - (o1 - o0)) / hz / dt), (s1 - s0) / hz / dt))
            b0, s0, o0, t0 = b1, s1, o1, t1

    def start(self) -> None:
        if self.available:
            self._thread = threading.Thread(target=self._loop, name="cpu-monitor", daemon=True)
            self._thread.start()

    def stop(self) -> dict:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
        if not self.windows:
            return {"foreign_cores_mean": None, "foreign_cores_max": None, "steal_cores_mean": None, "windows": 0}
        w = np.array(self.windows)
        total = w[:, 0].sum()
        return {"foreign_cores_mean": float((w[:, 0] * w[:, 1]).sum() / total),
                "foreign_cores_max": float(w[:, 1].max()),
                "steal_cores_mean": float((w[:, 0] * w[:, 2]).sum() / total),
                "windows": int(len(w))}


# ---------------------------------------------------------------------------------------
# one LoadGen run (in this process)

#: sim override field -> (LoadGen TestSettings attribute, conversion)
LOADGEN_FIELDS = {
    "min_duration_ns": ("min_duration_ms", lambda v: int(v) // 1_000_000),
    "max_duration_ns": ("max_duration_ms", lambda v: int(v) // 1_000_000),
    "min_query_count": ("min_query_count", int),
    "max_query_count": ("max_query_count", int),
    "server_target_qps": ("server_target_qps", float),
    "server_target_latency_ns": ("server_target_latency_ns", int),
    "server_target_latency_percentile": ("server_target_latency_percentile", float),
    "server_max_async_queries": ("server_max_async_queries", int),
    "single_stream_expected_latency_ns": ("single_stream_expected_latency_ns", int),
    "single_stream_target_latency_percentile": ("single_stream_target_latency_percentile", float),
    "multi_stream_expected_latency_ns": ("multi_stream_expected_latency_ns", int),
    "multi_stream_target_latency_percentile": ("multi_stream_target_latency_percentile", float),
    "multi_stream_samples_per_query": ("multi_stream_samples_per_query", int),
    "offline_expected_qps": ("offline_expected_qps", float),
    "performance_sample_count_override": ("performance_sample_count_override", int),
    "qsl_rng_seed": ("qsl_rng_seed", int),
    "sample_index_rng_seed": ("sample_index_rng_seed", int),
    "schedule_rng_seed": ("schedule_rng_seed", int),
}


def read_detail(path: Path) -> dict:
    """First value of each key in LoadGen's ``mlperf_log_detail.txt``."""
    values: dict = {}
    for line in Path(path).read_text(errors="replace").splitlines():
        if line.startswith(":::MLLOG "):
            try:
                entry = json.loads(line[len(":::MLLOG "):])
            except ValueError:
                continue
            values.setdefault(entry.get("key"), entry.get("value"))
    return values


def run_loadgen(spec: dict) -> dict:
    """One LoadGen test against the real SUT; writes the run's folder (module docstring)."""
    lg = require_loadgen()
    cfg = HarnessConfig.from_dict(spec["config"])
    scenario = spec["scenario"]
    out = Path(spec["outdir"]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.chdir(out)                                    # no stray audit.config applies
    conf = out / "user.conf"
    conf.write_text("# all settings are set explicitly by the harness after FromConfig\n")
    settings = lg.TestSettings()
    rc = settings.FromConfig(str(conf), spec["mlperf_model"], scenario)
    if rc != 0:
        raise InputError(f"LoadGen's FromConfig({conf}, {spec['mlperf_model']!r}, {scenario}) failed with code {rc}")
    settings.scenario = getattr(lg.TestScenario, scenario)
    settings.mode = lg.TestMode.PerformanceOnly
    for key, value in spec.get("overrides", {}).items():
        if key not in LOADGEN_FIELDS:
            raise InputError(f"harness: setting {key!r} cannot be passed to LoadGen; expected one of "
                             f"{sorted(LOADGEN_FIELDS)}")
        attr, conv = LOADGEN_FIELDS[key]
        setattr(settings, attr, conv(value))

    t0 = time.perf_counter()
    executors = make_executors(cfg, null=bool(spec.get("null_model")), seed=int(spec.get("seed", 0)),
                               null_sleep_ns=spec.get("null_sleep_ns"))
    for ex in executors:
        ex.warm_up()
    # how fast the machine is just before the run (compared with the same probe in the calibration)
    probe = executors[0].probe(float(spec.get("probe_s", 0.0)))
    probe_max = executors[0].probe_largest(float(spec.get("probe_s", 0.0)))
    setup_s = time.perf_counter() - t0

    sut = WorkerSUT(cfg, executors, scenario, lg.QuerySamplesComplete,
                    lambda i: lg.QuerySampleResponse(i, 0, 0))
    sut_handle = lg.ConstructSUT(sut.issue_queries, sut.flush_queries)
    total = int(spec["total_sample_count"])
    perf = int(spec.get("performance_sample_count", total))
    qsl = lg.ConstructQSL(total, perf, lambda idx: None, lambda idx: None)
    log = lg.LogSettings()
    log.log_output.outdir = str(out)
    log.log_output.copy_summary_to_stdout = False
    log.enable_trace = bool(spec.get("trace", False))
    monitor = CpuMonitor()
    sut.start()
    monitor.start()
    t_run = time.perf_counter()
    lg.StartTestWithLogSettings(sut_handle, qsl, settings, log, "no-audit.config")
    wall_s = time.perf_counter() - t_run
    machine = monitor.stop()
    sut.stop()
    lg.DestroyQSL(qsl)
    lg.DestroySUT(sut_handle)

    detail = read_detail(out / "mlperf_log_detail.txt")
    arrays = sut.arrays()
    np.savez_compressed(out / "samples.npz", **arrays)
    counts = arrays["batch_count"]
    result = {
        "schema": "sim.harness_run/1",
        "scenario": scenario, "mlperf_model": spec["mlperf_model"], "config": cfg.to_dict(), "outdir": str(out),
        "overrides": spec.get("overrides", {}), "null_model": bool(spec.get("null_model")),
        "valid": detail.get("result_validity") == "VALID",
        "result_validity": detail.get("result_validity"),
        "loadgen": {k: v for k, v in detail.items() if k.startswith(("result_", "early_stopping", "generated_",
                                                                     "effective_"))
                    and k != "effective_test_mode"},
        "samples_issued": int(sut.issued), "batches": int(len(counts)),
        "mean_batch_size": float(counts.mean()) if len(counts) else 0.0,
        "setup_s": setup_s, "wall_s": wall_s, "machine": {**machine, "niceness": _current_niceness()},
        "probe": {"runs": len(probe), "median_ns": float(np.median(probe)) if probe else None},
        "probe_max": {"batch": cfg.max_batch, "runs": len(probe_max),
                      "median_ns": float(np.median(probe_max)) if probe_max else None},
        "errors": sut.errors + ([f"LoadGen logged {detail.get('num_errors')} errors"]
                                if detail.get("num_errors") else []),
    }
    (out / "harness.json").write_text(json.dumps(result, indent=1, default=_jsonable) + "\n")
    return result


def _current_niceness() -> int | None:
    try:
        return os.getpriority(os.PRIO_PROCESS, 0)
    except (AttributeError, OSError):
        return None


def _jsonable(x):
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


# ---------------------------------------------------------------------------------------
# from the parent process


def child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def _niceness(nice: int):
    """A ``preexec_fn`` that changes the child's scheduling priority (``nice`` < 0 needs privileges)."""
    def apply():
        try:
            os.nice(nice)
        except OSError:
            pass                                     # not permitted: run at the normal priority
    return apply if nice else None


def run_in_subprocess(module: str, spec: dict, outdir: Path, timeout_s: float, nice: int = 0) -> dict:
    """Run ``python -m <module> <spec.json>`` and return the JSON it leaves in ``outdir``.

    ``nice``: the child's niceness change (e.g. -10: other processes on a shared machine
    take less CPU from the measurement; refused silently without the privilege, and the
    child records the niceness it really ran at).
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    spec_path = outdir / "spec.json"
    spec_path.write_text(json.dumps(spec, indent=1, default=_jsonable) + "\n")
    try:
        proc = subprocess.run([sys.executable, "-m", module, str(spec_path)], capture_output=True, text=True,
                              timeout=timeout_s, env=child_env(), cwd=str(outdir), preexec_fn=_niceness(nice))
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{module} in {outdir} did not finish within {timeout_s:.0f} s") from None
    (outdir / "stdout.txt").write_text(proc.stdout)
    (outdir / "stderr.txt").write_text(proc.stderr)
    if proc.returncode == 2 and proc.stderr.strip().splitlines()[-1:] and \
            proc.stderr.strip().splitlines()[-1].startswith("error: "):
        raise InputError(proc.stderr.strip().splitlines()[-1][len("error: "):])
    if proc.returncode != 0:
        raise RuntimeError(f"{module} failed (exit {proc.returncode}) in {outdir}:\n{proc.stderr[-3000:]}")
    result_name = spec.get("result_file", "harness.json")
    return json.loads((outdir / result_name).read_text())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m sim.validate.harness SPEC.json", file=sys.stderr)
        return 2
    try:
        spec = json.loads(Path(argv[0]).read_text())
        run_loadgen(spec)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
