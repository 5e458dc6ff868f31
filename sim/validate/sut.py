"""The real system under test: onnxruntime sessions behind worker threads and a batching queue.

The SUT realises a ``HarnessConfig`` (``sim.validate.config.realise`` makes one from a ``SystemSpec``):

- ``instances`` worker threads, each with its own onnxruntime session (``Executor``:
  ``intra_op_threads`` intra-op threads, sequential execution, all graph optimisations,
  the CPU execution provider);
- one FIFO queue in front of them, and the batching policy applied by whichever worker is
  free (``BatchRule``), with the same rules as ``sim.sut.batching`` (``none``: one sample;
  ``fixed``: wait for ``max_batch``, a short batch only when no further sample can come;
  ``dynamic``: send ``target`` samples as soon as they are queued, else when the oldest has
  waited ``max_queue_delay_us``, the largest preferred size that fits);
- the issue callback (LoadGen's ``IssueQuery`` under ``sim.validate.harness``) only appends
  the samples to the queue; a worker gathers the samples' inputs from a pool held in memory
  (sample index modulo the pool size), runs the session and calls the completion callback
  (LoadGen's ``QuerySamplesComplete``).

Input tensors are synthetic (``sim.workload.inputs.make_feeds``) and the responses carry no
data. The SUT records, per sample in issue order, when the issue callback saw it and when
its batch finished, and per batch its first sample, size, worker, start and end
(``WorkerSUT.arrays``). Times are ``time.perf_counter_ns``.
"""

from __future__ import annotations

import collections
import os
import sys
import threading
import time
import traceback

import numpy as np

from sim.loadgen.scenarios import CLOSED_LOOP
from sim.validate.config import POOL_SAMPLES, HarnessConfig, check_model_batches, load_workload

WARMUP_RUNS = 2            # per batch size and instance, before LoadGen starts


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
        self.native_ids: list[int] = []           # the workers' thread ids (``sim.validate.thread_cpu``)
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
        self.native_ids.append(threading.get_native_id())
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
