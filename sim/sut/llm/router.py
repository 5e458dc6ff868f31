"""Data-parallel replicas behind a router: which replica (and virtual engine) gets a request.

Requests are routed when they arrive, in arrival order:

- ``round_robin``: request ``i`` (in arrival order) goes to replica ``i mod R``;
- ``least_loaded``: to the replica with the fewest requests routed to it and not complete at the
  arrival instant (a request completing at that very instant counts as complete); ties go to the
  lowest replica index.

Within a pipelined replica (``pp`` virtual engines, ``sim.sut.llm.parallel``) the request goes to
the virtual engine with the fewest unfinished requests, ties to the lowest. Routing is free and
instantaneous (no router queue, no network delay to the replica).

Round robin over unpipelined replicas needs no knowledge of their state, so each replica is
simulated alone, start to end; otherwise the engines advance together, each to every arrival's
instant, before the router looks at them.
"""

from __future__ import annotations

import numpy as np

from sim.sut.llm.engine import NEVER, Engine
from sim.sut.llm.parallel import virtual_engine_limits


def route(replicas: list[list[Engine]], sids: np.ndarray, times_ns: np.ndarray, policy: str) -> np.ndarray:
    """Route requests ``sids`` arriving at ``times_ns`` (nondecreasing) and run every engine to the
    end. Returns the index (``Engine.index``) of the engine that served each request, in the
    order given."""
    n_rep = len(replicas)
    served = np.empty(len(sids), dtype=np.int64)
    if policy == "round_robin" and all(len(r) == 1 for r in replicas):
        for r, (engine,) in enumerate(replicas):
            engine.pend_t = times_ns[r::n_rep].tolist()
            engine.pend_sid = sids[r::n_rep].tolist()
            engine.assigned = len(engine.pend_t)
            served[r::n_rep] = engine.index
            engine.run_until(NEVER)
        return served
    everyone = [e for rep in replicas for e in rep]
    flat = all(len(r) == 1 for r in replicas)
    times = times_ns.tolist()
    for i, sid in enumerate(sids.tolist()):
        t = times[i]
        if policy == "round_robin":
            rep = replicas[i % n_rep]
            for e in rep:
                if e.wake_ns <= t:
                    e.run_until(t)
        else:
            for e in everyone:
                if e.wake_ns <= t:
                    e.run_until(t)
            if flat:
                loads = [e.load_at(t) for e in everyone]
            else:
                loads = [sum(e.load_at(t) for e in r) for r in replicas]
            rep = replicas[loads.index(min(loads))]
        if len(rep) == 1:
            engine = rep[0]
        else:
            v = [e.load_at(t) for e in rep]
            engine = rep[v.index(min(v))]
        engine.submit(sid, t)
        served[i] = engine.index
    for e in everyone:
        e.run_until(NEVER)
    return served


def build_pool(spec, cost, samples, trace: bool = False, first_index: int = 0,
               name: str = "replica") -> tuple[list[list[Engine]], list[str]]:
    """The engines of ``spec.replicas`` replicas of ``spec`` (an ``EngineSpec``), ``pp`` virtual
    engines each, numbered from ``first_index``; and their names."""
    pp = spec.layout.pp
    kv, seqs = virtual_engine_limits(spec.kv_blocks, spec.max_seqs, pp)
    replicas, names = [], []
    for r in range(spec.replicas):
        rep = []
        for v in range(pp):
            rep.append(Engine(first_index + len(names), samples, cost, kv, spec.block_size, seqs,
                              spec.max_step_tokens, trace))
            names.append(f"{name}{r}" + (f".stage-stream{v}" if pp > 1 else ""))
        replicas.append(rep)
    return replicas, names
