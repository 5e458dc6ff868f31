"""The same serving rules with one SimPy process per request: the reference for the fast engine.

This is the model written the obvious way: every request is a process that waits for its
arrival, is routed, joins its engine's waiting queue and waits for its completion; every engine
is a process that forms one step at a time by walking its running sequences (objects with
their own counters) exactly as ``sim.sut.llm.scheduler`` describes, waits for the step's time,
and applies it. No vectorisation, no decode runs, no offsets. ``tests/test_llm_engine.py``
checks that the fast engine (``sim.sut.llm.serve.simulate_llm``) gives identical first-token
and completion times, step counts, preemptions and KV peaks on small cases. It covers replicas
(both routers) and pipelined replicas; not disaggregated pools.

Same-instant order: a request arriving when a step ends is routed after that step's
completions are recorded and is in the next step (both wait one zero-delay event, and SimPy
runs same-instant events in the order they were scheduled).
"""

from __future__ import annotations

from collections import deque

import numpy as np
import simpy

from sim.sut.llm.parallel import virtual_engine_limits
from sim.sut.llm.scheduler import duration_ns


class _Seq:
    def __init__(self, env, sid: int, prompt: int, out: int):
        self.sid = sid
        self.comp = 0                 # tokens whose KV is computed
        self.tgt = prompt             # tokens known (prompt + generated)
        self.rem = out                # tokens still to generate
        self.first = -1
        self.done = env.event()


class _Engine:
    def __init__(self, env, cost, kv_blocks, block_size, max_seqs, max_step_tokens):
        self.env, self.cost = env, cost
        self.cap, self.B, self.max_seqs, self.budget = kv_blocks, block_size, max_seqs, max_step_tokens
        self.running: list[_Seq] = []
        self.waiting: deque[_Seq] = deque()
        self.used = self.peak = self.preemptions = self.steps = 0
        self.assigned = self.completed = 0
        self.rows: list[tuple] = []   # per step: start, duration, prefill tokens, attention pairs,
        self.wake = env.event()       # decode sequences, decode KV tokens, KV blocks in use
        env.process(self.loop())

    def blocks(self, tokens: int) -> int:
        return -(-tokens // self.B)

    def arrive(self, seq: _Seq) -> None:
        self.assigned += 1
        self.waiting.append(seq)
        if not self.wake.triggered:
            self.wake.succeed()

    def loop(self):
        env = self.env
        while True:
            if not self.running and not self.waiting:
                self.wake = env.event()
                yield self.wake
            yield env.timeout(0)
            plan = self.form()
            pf_tokens, pf_attn, dseq, dkv = 0, 0.0, 0, 0
            for seq, ntok in plan:
                if ntok == 1 and seq.tgt - seq.comp == 1 and seq.first >= 0:
                    dseq += 1
                    dkv += seq.comp + 1
                else:
                    pf_tokens += ntok
                    pf_attn += ntok * (seq.comp + (ntok + 1) / 2)
            d = duration_ns(self.cost.step_ns(pf_tokens, pf_attn, dseq, dkv))
            self.rows.append((int(env.now), d, pf_tokens, pf_attn, dseq, dkv, self.used))
            yield env.timeout(d)
            self.steps += 1
            for seq, ntok in plan:
                seq.comp += ntok
                if seq.comp == seq.tgt:
                    seq.tgt += 1
                    seq.rem -= 1
                    if seq.first < 0:
                        seq.first = int(env.now)
                    if seq.rem == 0:
                        self.running.remove(seq)
                        self.used -= self.blocks(seq.comp)
                        self.completed += 1
                        seq.done.succeed()

    def form(self) -> list[tuple[_Seq, int]]:
        budget = self.budget
        plan = []
        preempted = False
        i = 0
        while i < len(self.running):
            seq = self.running[i]
            ntok = min(seq.tgt - seq.comp, budget)
            need = self.blocks(seq.comp + ntok) - self.blocks(seq.comp)
            lost = False
            while self.used + need > self.cap:
                victim = self.running.pop()
                self.used -= self.blocks(victim.comp)
                victim.comp = 0
                self.waiting.appendleft(victim)
                self.preemptions += 1
                preempted = True
                if victim is seq:
                    lost = True
                    break
            if lost:
                break
            self.used += need
            budget -= ntok
            plan.append((seq, ntok))
            i += 1
        if not preempted:
            while self.waiting and budget > 0 and len(self.running) < self.max_seqs:
                seq = self.waiting[0]
                ntok = min(seq.tgt - seq.comp, budget)
                need = self.blocks(seq.comp + ntok)
                if self.used + need > self.cap:
                    break
                self.waiting.popleft()
                self.running.append(seq)
                self.used += need
                budget -= ntok
                plan.append((seq, ntok))
        self.peak = max(self.peak, self.used)
        return plan


def simulate_naive(spec, cost, scheduled_ns, input_tokens, output_tokens) -> dict:
    """Serve the requests on ``spec`` (an ``EngineSpec``). Returns a dict of arrays and counters:
    ``first_token_ns``, ``complete_ns``, ``engine``, ``steps``, ``preemptions``, ``peak_kv_blocks``, and
    ``steps_by_engine`` (each engine's step rows, as ``StepTrace`` has them)."""
    env = simpy.Environment()
    n = len(scheduled_ns)
    seqs = [_Seq(env, i, int(input_tokens[i]), int(output_tokens[i])) for i in range(n)]
    served = np.zeros(n, dtype=np.int64)
    done_ns = np.zeros(n, dtype=np.int64)
    kv, max_seqs = virtual_engine_limits(spec.kv_blocks, spec.max_seqs, spec.layout.pp)

    def request(i):
        yield env.timeout(int(scheduled_ns[i]))
        yield env.timeout(0)
        if spec.router == "round_robin":
            rep = replicas[i % len(replicas)]
        else:
            loads = [sum(e.assigned - e.completed for e in r) for r in replicas]
            rep = replicas[loads.index(min(loads))]
        v = [e.assigned - e.completed for e in rep]
        k = v.index(min(v))
        served[i] = replicas.index(rep) * spec.layout.pp + k
        rep[k].arrive(seqs[i])
        yield seqs[i].done
        done_ns[i] = int(env.now)

    for i in range(n):
        env.process(request(i))
    replicas = [[_Engine(env, cost, kv, spec.block_size, max_seqs, spec.max_step_tokens)
                 for _ in range(spec.layout.pp)] for _ in range(spec.replicas)]
    env.run()
    engines = [e for r in replicas for e in r]
    return {"first_token_ns": np.array([s.first for s in seqs], dtype=np.int64), "complete_ns": done_ns,
            "engine": served, "steps": sum(e.steps for e in engines),
            "preemptions": sum(e.preemptions for e in engines),
            "peak_kv_blocks": np.array([e.peak for e in engines], dtype=np.int64),
            "steps_by_engine": [np.array(e.rows, dtype=np.float64).reshape(-1, 7) for e in engines]}
