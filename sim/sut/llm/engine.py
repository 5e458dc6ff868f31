"""The fast event loop of one LLM serving engine: steps back to back, jumps over quiet runs.

An engine (a replica, or one virtual engine of a pipelined replica) is idle until a request
arrives; then it runs steps back to back while it has work, each formed by
``sim.sut.llm.scheduler`` at the step's start from the requests that had arrived by then (an
arrival at the very instant a step starts is in it). Time is whole nanoseconds.

Most steps change nothing but lengths: every running sequence decodes one token, nothing is
admitted (the waiting queue is empty, or its head cannot fit until a sequence leaves). Such a
*decode run* is taken in one jump: its length is the first of (a sequence completing; the KV
cache running out, ``kv_cache.decode_steps_that_fit``; the next arrival, when it could be
admitted), and its step times come from one vectorised call to the cost model
(``StepCostArray.step_ns_array`` when the cost has it, else one ``step_ns`` call per step).
The result is identical, step for step, to taking the steps one at a time.

A run can be held *open* past a time horizon (``run_until``): the router asks engines how
loaded they are at each arrival, and a request routed to an engine in the middle of a decode
run cuts it at the first step that starts after the arrival (``submit``).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass, field

import numpy as np

from sim.sut.llm.scheduler import Samples, Scheduler, duration_ns, durations_ns

NEVER = 1 << 62


@dataclass
class StepTrace:
    """One row per step: which engine, when, and what it computed."""
    engine: np.ndarray
    start_ns: np.ndarray
    duration_ns: np.ndarray
    prefill_tokens: np.ndarray
    prefill_attn_tokens2: np.ndarray
    decode_seqs: np.ndarray
    decode_kv_tokens: np.ndarray
    kv_blocks_used: np.ndarray
    engine_names: list[str] = field(default_factory=list)

    @classmethod
    def concat(cls, parts: list[StepTrace], names: list[str]) -> StepTrace:
        fields = ("engine", "start_ns", "duration_ns", "prefill_tokens", "prefill_attn_tokens2", "decode_seqs",
                  "decode_kv_tokens", "kv_blocks_used")
        if not parts:
            return cls(*(np.zeros(0) for _ in fields), engine_names=names)
        cols = [np.concatenate([getattr(p, f) for p in parts]) for f in fields]
        order = np.lexsort((cols[0], cols[1]))
        return cls(*(c[order] for c in cols), engine_names=names)


class Engine:
    """One engine's clock, arrivals and scheduler."""

    def __init__(self, index: int, samples: Samples, cost, kv_blocks: int, block_size: int, max_seqs: int,
                 max_step_tokens: int, trace: bool = False):
        self.index = index
        self.samples = samples
        self.cost = cost
        self.array_cost = getattr(cost, "step_ns_array", None)
        self.sched = Scheduler(samples, kv_blocks, block_size, max_seqs, max_step_tokens)
        self.now = 0                   # when the last step ended
        self.pend_t: list[int] = []    # arrivals not yet in the waiting queue, in time order
        self.pend_sid: list[int] = []
        self.pend_i = 0
        self.assigned = 0
        self.last_end = -1             # end of the last step applied
        self.run: tuple | None = None  # an open decode run: (times, steps), times a list or array
        self.steps = 0
        self.wake_ns = -1              # run_until(h) has nothing to do while h < wake_ns
        self.trace = trace
        self._rows: list[tuple] = []
        self._runs: list[tuple] = []

    # -- arrivals --------------------------------------------------------------------------------
    def submit(self, sid: int, t_ns: int) -> None:
        """A request arrives at ``t_ns`` (not before any earlier ``submit`` or ``run_until``)."""
        if self.run is not None and not self.sched.head_blocked:
            times, k = self.run
            j = bisect_left(times, t_ns, 0, k)
            if j < k:
                self._commit(j)
        self.pend_t.append(t_ns)
        self.pend_sid.append(sid)
        self.assigned += 1
        self.wake_ns = -1

    def load_at(self, t_ns: int) -> int:
        """Requests routed here and not complete by ``t_ns`` (after ``run_until(t_ns)``)."""
        done = self.sched.done - (self.sched.last_done if self.last_end > t_ns else 0)
        return self.assigned - done

    # -- the loop ---------------------------------------------------------------------------------
    def run_until(self, horizon_ns: int = NEVER) -> None:
        """Take every step that starts before ``horizon_ns``."""
        sched = self.sched
        pend_t = self.pend_t
        while True:
            if self.run is not None:
                times, k = self.run
                if times[k] > horizon_ns:
                    self.wake_ns = times[k]
                    return
                self._commit(k)
            if sched.n == 0 and not sched.waiting:
                if self.pend_i == len(pend_t):
                    self.wake_ns = NEVER
                    return
                start = max(self.now, pend_t[self.pend_i])
            else:
                start = self.now
            if start >= horizon_ns:
                self.wake_ns = start
                return
            while self.pend_i < len(pend_t) and pend_t[self.pend_i] <= start:
                sched.waiting.append(self.pend_sid[self.pend_i])
                self.pend_i += 1
            if sched.decode_run_ready():
                k = sched.decode_run_limit()
                if k > 0:
                    nxt = pend_t[self.pend_i] if self.pend_i < len(pend_t) and not sched.head_blocked else NEVER
                    times = self._run_times(start, k, nxt)
                    self.run = (times, len(times) - 1)
                    continue
            d, what = sched.step(start, self.cost)
            self.now = self.last_end = start + d
            self.steps += 1
            if self.trace:
                self._rows.append((start, d, *what, sched.step_used))

    def _run_times(self, start: int, k: int, limit: int) -> list[int] | np.ndarray:
        """Start and end times of up to ``k`` decode steps, those starting before ``limit``:
        ``times[j]`` is the start of step ``j`` and the end of step ``j - 1``."""
        sched = self.sched
        n = sched.nd
        kv0 = sched.decode_kv_start()
        step_ns = self.cost.step_ns
        first = duration_ns(step_ns(0, 0.0, n, kv0))
        t = start + first
        if k == 1 or t >= limit:
            return [start, t]
        if self.array_cost is None or k <= 8:
            out = [start, t]
            kv = kv0
            for _ in range(1, k):
                if t >= limit:
                    break
                kv += n
                x = step_ns(0, 0.0, n, kv)
                if not 0.5 <= x < math.inf:
                    x = duration_ns(x)
                t += round(x)
                out.append(t)
            return out
        # vectorised, in chunks sized by the first step's time so that a run cut short by an
        # arrival does not time steps it will never take
        parts = [np.array([start, t], dtype=np.int64)]
        j = 1
        while j < k and t < limit:
            want = (limit - t) // first + 2 if limit < NEVER else k
            m = int(min(k - j, max(8, want)))
            kv = kv0 + n * np.arange(j, j + m, dtype=np.int64)
            ends = np.cumsum(durations_ns(self.array_cost(0, 0.0, n, kv)))
            ends += t
            cut = int(np.searchsorted(ends, limit, side="left"))
            if cut < m:                        # the step ending at ends[cut] starts before limit
                parts.append(ends[:cut + 1])
                break
            parts.append(ends)
            t = int(ends[-1])
            j += m
        return np.concatenate(parts)

    def _commit(self, j: int) -> None:
        """Apply the first ``j`` steps of the open decode run and close it."""
        times, k = self.run
        self.run = None
        sched = self.sched
        if self.trace and j:
            rotated = [sched.residues[(-(sched.G + m)) % sched.B] for m in range(sched.B)]
            self._runs.append((np.asarray(times[:j]), np.diff(times[:j + 1]), sched.nd, sched.decode_kv_start(),
                               sched.used, rotated))
        sched.advance_decodes(j, int(times[j]))
        self.now = self.last_end = int(times[j])
        self.steps += j

    def step_trace(self) -> StepTrace:
        """The steps taken, in time order (``trace=True`` only)."""
        parts = []
        if self._rows:
            parts.append(np.array(self._rows, dtype=np.float64))
        for starts, durs, n, kv0, used0, rotated in self._runs:
            j = len(starts)
            B = len(rotated)
            steps = np.arange(1, j + 1, dtype=np.int64)
            partial = np.concatenate([[0], np.cumsum(rotated)])
            used = used0 + (steps // B) * n + partial[steps % B]       # blocks in use during each step
            parts.append(np.column_stack([starts, durs, np.zeros(j), np.zeros(j), np.full(j, n),
                                          kv0 + n * (steps - 1), used]).astype(np.float64))
        a = np.concatenate(parts) if parts else np.zeros((0, 7))
        a = a[np.argsort(a[:, 0], kind="stable")]
        col = a.T
        return StepTrace(np.full(len(a), self.index, dtype=np.int64), col[0].astype(np.int64),
                         col[1].astype(np.int64), col[2].astype(np.int64), col[3], col[4].astype(np.int64),
                         col[5].astype(np.int64), col[6].astype(np.int64))
