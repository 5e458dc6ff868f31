"""Disaggregated serving: prefill on one pool of replicas, decode on another, KV over a link.

A request first goes to the prefill pool (its own router), which runs its prompt's prefill and
produces the first token (the first token time is the end of that step); the sequence then
leaves the prefill replica, freeing its blocks there. Its prompt's KV (``input_tokens *
kv_bytes_per_token`` bytes) crosses the link of that prefill replica: one transfer at a time in
the order prefills finish, each occupying the link for ``bytes / link_bandwidth_Bps`` and
arriving ``link_latency_ns`` after it leaves. On arrival the request goes to the decode pool
(its own router), where it waits like any request; admission reserves blocks for its prompt
plus the token being decoded, and each step decodes one token until ``output_tokens``. A request
of one output token is complete when its prefill ends (nothing is transferred). A sequence
preempted on the decode pool recomputes its KV there (its prompt and generated tokens).

Not modelled: transfer overlapped with the prefill (layer by layer), contention on a shared
fabric beyond one link per prefill replica, the decode side pulling KV lazily.
"""

from __future__ import annotations

import numpy as np

from sim.sut.llm.router import build_pool, route
from sim.sut.llm.scheduler import Samples


def transfer_arrivals(done_ns: np.ndarray, link_of: np.ndarray, n_bytes: np.ndarray, bandwidth_Bps: float,
                      latency_ns: float) -> np.ndarray:
    """When each KV transfer arrives: FIFO per link in the order the prefills end (ties by index)."""
    arrive = np.empty(len(done_ns), dtype=np.int64)
    busy_ns = np.rint(n_bytes / bandwidth_Bps * 1e9).astype(np.int64)
    lat = int(round(latency_ns))
    free: dict[int, int] = {}
    for i in np.lexsort((np.arange(len(done_ns)), done_ns)).tolist():
        link = int(link_of[i])
        start = max(int(done_ns[i]), free.get(link, 0))
        free[link] = start + int(busy_ns[i])
        arrive[i] = start + int(busy_ns[i]) + lat
    return arrive


def run_disagg(spec, prefill_cost, decode_cost, scheduled_ns: np.ndarray, input_tokens: np.ndarray,
               output_tokens: np.ndarray, trace: bool = False):
    """Simulate ``spec`` (a ``DisaggSpec``). Returns ``(first_ns, complete_ns, prefill engines,
    decode engines, engine names, served engine per sample (decode side where it decoded),
    transfer arrival per sample (-1 where none))``."""
    n = len(scheduled_ns)
    pre = Samples(input_tokens, np.ones(n, dtype=np.int64))
    p_reps, p_names = build_pool(spec.prefill, prefill_cost, pre, trace, 0, "prefill")
    sids = np.arange(n, dtype=np.int64)
    p_served = route(p_reps, sids, scheduled_ns, spec.prefill.router)
    first = np.asarray(pre.complete_ns, dtype=np.int64)
    pp = spec.prefill.layout.pp
    link_of = p_served // pp
    go = np.flatnonzero(output_tokens > 1)
    arrive = np.full(n, -1, dtype=np.int64)
    arrive[go] = transfer_arrivals(first[go], link_of[go], input_tokens[go] * spec.kv_bytes_per_token,
                                   spec.link_bandwidth_Bps, spec.link_latency_ns)
    dec = Samples(input_tokens, output_tokens)
    for i in go.tolist():
        p = int(input_tokens[i])
        dec.comp[i] = p                     # the prompt's KV came over the link
        dec.tgt[i] = p + 1                  # the first token is known, not yet fed back
        dec.rem[i] = int(output_tokens[i]) - 1
    dec.first_ns = first.tolist()
    d_reps, d_names = build_pool(spec.decode, decode_cost, dec, trace, len(p_names), "decode")
    order = go[np.lexsort((go, arrive[go]))]
    served = p_served.copy()
    served[order] = route(d_reps, order, arrive[order], spec.decode.router)
    complete = np.asarray(dec.complete_ns, dtype=np.int64)
    one = output_tokens == 1
    complete[one] = first[one]
    engines_p = [e for r in p_reps for e in r]
    engines_d = [e for r in d_reps for e in r]
    return first, complete, engines_p, engines_d, p_names + d_names, served, arrive
