"""The LLM serving engine (``sim.sut.llm``): theory, hand-computed cases, the naive reference.

The fast engine takes runs of decode steps in one jump and keeps its bookkeeping relative to a
step counter; ``sim.sut.llm.naive`` applies the same rules one step at a time with one SimPy
process per request. They must agree to the nanosecond. The other checks are independent of
both: hand-computed times, Little's law, conservation of samples and tokens, KV capacity.
"""

from __future__ import annotations

import numpy as np
import pytest

from sim.errors import InputError
from sim.sut.llm import DisaggSpec, EngineSpec, Layout, blocks_from_memory, simulate_llm
from sim.sut.llm.kv_cache import decode_growth, decode_steps_that_fit
from sim.sut.llm.naive import simulate_naive


class Affine:
    """step = a + b*prefill_tokens + c*prefill_attn_tokens2 + e*decode_seqs + f*decode_kv_tokens (ns)."""

    def __init__(self, a, b=0.0, c=0.0, e=0.0, f=0.0):
        self.p = (a, b, c, e, f)

    def step_ns(self, pt, pa, ds, dk):
        a, b, c, e, f = self.p
        return a + b * pt + c * pa + e * ds + f * dk

    def describe(self):
        return "affine step cost"


class AffineArray(Affine):
    """The same with the vectorised capability (``StepCostArray``)."""

    def step_ns_array(self, pt, pa, ds, dk):
        a, b, c, e, f = self.p
        return a + b * np.asarray(pt) + c * np.asarray(pa) + e * np.asarray(ds) + f * np.asarray(dk)


def random_case(seed: int):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    block = int(rng.choice([1, 2, 4, 16]))
    inp, out = rng.integers(1, 60, n), rng.integers(1, 40, n)
    need = int(((inp + out - 1 + block - 1) // block).max())
    pp = int(rng.choice([1, 1, 2]))
    seqs = max(int(rng.integers(pp, 12)), pp)
    spec = EngineSpec(kv_blocks=int(need * pp * rng.choice([1, 1.5, 3, 20])), block_size=block, max_seqs=seqs,
                      max_step_tokens=int(rng.integers(seqs, 100)), replicas=int(rng.integers(1, 4)),
                      router=str(rng.choice(["round_robin", "least_loaded"])), layout=Layout(pp=pp))
    if rng.random() < 0.3:
        sched = np.zeros(n, dtype=np.int64)
    else:
        sched = np.cumsum(rng.integers(0, int(rng.choice([10, 1000, 100_000])), n)).astype(np.int64)
    cls = AffineArray if rng.random() < 0.5 else Affine
    cost = cls(float(rng.integers(1, 1000)), float(rng.integers(0, 10)), float(rng.random()),
               float(rng.integers(0, 50)), float(rng.integers(0, 5)))
    return spec, cost, sched, inp, out


def assert_same_as_naive(spec, cost, sched, inp, out):
    fast = simulate_llm(spec, cost, sched, inp, out, trace=True)
    ref = simulate_naive(spec, cost, sched, inp, out)
    assert np.array_equal(fast.first_token_ns, ref["first_token_ns"])
    assert np.array_equal(fast.complete_ns, ref["complete_ns"])
    assert np.array_equal(fast.engine, ref["engine"])
    assert (fast.steps, fast.preemptions) == (ref["steps"], ref["preemptions"])
    assert np.array_equal(fast.peak_kv_blocks, ref["peak_kv_blocks"])
    tr = fast.trace                                # every step, including those inside decode runs
    for e, rows in enumerate(ref["steps_by_engine"]):
        s = tr.engine == e
        mine = np.column_stack([tr.start_ns[s], tr.duration_ns[s], tr.prefill_tokens[s], tr.prefill_attn_tokens2[s],
                                tr.decode_seqs[s], tr.decode_kv_tokens[s], tr.kv_blocks_used[s]])
        assert np.array_equal(mine, rows)
    return fast


# -- the fast engine against the one-process-per-request reference -----------------------------

def test_fast_engine_equals_naive_on_random_small_cases():
    preemptions = 0
    for seed in range(150):
        preemptions += assert_same_as_naive(*random_case(seed)).preemptions
    assert preemptions > 100          # the cases do exercise preemption


@pytest.mark.parametrize("router, pp", [("least_loaded", 1), ("round_robin", 2)])
def test_fast_engine_equals_naive_on_a_longer_poisson_run(router, pp):
    """Long decode runs (the vectorised path), runs cut by arrivals routed mid-run, preemptions."""
    rng = np.random.default_rng(11)
    n = 400
    inp, out = rng.integers(1, 300, n), rng.integers(1, 200, n)
    sched = np.cumsum(rng.exponential(2e6, n)).astype(np.int64)
    spec = EngineSpec(kv_blocks=pp * 64, block_size=8, max_seqs=pp * 16, max_step_tokens=256, replicas=3,
                      router=router, layout=Layout(pp=pp))
    fast = assert_same_as_naive(spec, AffineArray(2e5, 300, 0.5, 2e3, 40), sched, inp, out)
    assert fast.preemptions > 0


# -- hand-computed cases --------------------------------------------------------------------------

def test_one_request_affine_cost_with_chunked_prefill():
    """Prompt 250 with a 100-token budget: chunks 100, 100, 50; then 4 decode steps."""
    a, b, c, e, f = 1000.0, 10.0, 0.5, 7.0, 3.0
    spec = EngineSpec(kv_blocks=100, block_size=16, max_seqs=4, max_step_tokens=100)
    r = simulate_llm(spec, AffineArray(a, b, c, e, f), [1000], [250], [5], trace=True)
    chunks = [(100, 0), (100, 100), (50, 200)]
    t = 1000 + sum(round(a + b * n + c * n * (ctx + (n + 1) / 2)) for n, ctx in chunks)
    assert r.first_token_ns[0] == t
    for j in range(1, 5):                      # decode j feeds token 250 + j - 1, context 250 + j
        t += round(a + e + f * (250 + j))
    assert r.complete_ns[0] == t
    assert list(r.trace.prefill_tokens) == [100, 100, 50, 0, 0, 0, 0]
    assert list(r.trace.decode_kv_tokens) == [0, 0, 0, 251, 252, 253, 254]
    assert list(r.trace.kv_blocks_used) == [7, 13, 16, 16, 16, 16, 16]   # ceil(tokens / 16)


def test_decode_bound_steady_state_matches_hand_computed_tokens_per_s_and_tpot():
    """N identical requests at t=0, all prefilled in one step, then N tokens per step; constant
    step time c: TPOT = c and decode tokens/s = N / c exactly; with a KV-dependent step, TPOT is
    the hand-computed mean of the growing steps."""
    n, p, o, step = 64, 8, 50, 20_000_000
    spec = EngineSpec(kv_blocks=10_000, block_size=16, max_seqs=n, max_step_tokens=n * p)
    r = simulate_llm(spec, AffineArray(step), np.zeros(n, dtype=np.int64), [p] * n, [o] * n)
    tpot = (r.complete_ns - r.first_token_ns) / (o - 1)
    assert np.all(r.first_token_ns == step) and np.all(tpot == step)
    decode_tokens_per_s = n * (o - 1) / ((r.complete_ns.max() - r.first_token_ns.min()) / 1e9)
    assert decode_tokens_per_s == pytest.approx(n / (step / 1e9), rel=1e-12)
    a, f = 5e6, 100.0
    r = simulate_llm(spec, AffineArray(a, f=f), np.zeros(n, dtype=np.int64), [p] * n, [o] * n)
    expected = sum(round(a + f * n * (p + j)) for j in range(1, o)) / (o - 1)
    assert np.allclose((r.complete_ns - r.first_token_ns) / (o - 1), expected, rtol=0, atol=1e-9)


def test_server_constant_step_every_tpot_is_the_step_and_ttft_within_two_steps():
    rng = np.random.default_rng(3)
    n, step = 2000, 10_000_000
    sched = np.cumsum(rng.exponential(30e6, n)).astype(np.int64)
    out = rng.integers(2, 80, n)
    spec = EngineSpec(kv_blocks=100_000, block_size=16, max_seqs=512, max_step_tokens=4096)
    r = simulate_llm(spec, Affine(step), sched, rng.integers(1, 500, n), out)
    assert np.all((r.complete_ns - r.first_token_ns) == step * (out - 1))
    ttft = r.first_token_ns - sched
    assert ttft.min() >= step and ttft.max() <= 2 * step


def test_preemption_on_a_tiny_cache_hand_computed():
    """Cache of 4 blocks of 4 tokens; A and B, prompt 4, 9 tokens each, both at t=0. Steps of c:
    1 prefills both (1 block each); 2 grows both (4 blocks); 6 needs 2 more: B (the most recent)
    is preempted; A finishes at the end of step 9; B prefills its 9 known tokens again in step
    10 (3 blocks) and finishes 3 decode steps later, at 13c."""
    c = 1000
    spec = EngineSpec(kv_blocks=4, block_size=4, max_seqs=4, max_step_tokens=64)
    r = simulate_llm(spec, Affine(c), [0, 0], [4, 4], [9, 9], trace=True)
    assert list(r.first_token_ns) == [c, c]
    assert list(r.complete_ns) == [9 * c, 13 * c]
    assert r.preemptions == 1 and r.peak_kv_blocks[0] == 4
    assert list(r.trace.prefill_tokens) == [8, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0]
    assert list(r.trace.decode_seqs) == [0, 2, 2, 2, 2, 1, 1, 1, 1, 0, 1, 1, 1]
    assert r.trace.kv_blocks_used.max() <= 4


# -- theory: Little's law, conservation ------------------------------------------------------------

def test_littles_law_on_decoding_sequences():
    """Time-averaged number of decoding sequences (from the engine's step records) equals
    throughput times mean decode residence (from the per-sample times)."""
    rng = np.random.default_rng(5)
    n = 3000
    sched = np.cumsum(rng.exponential(4e6, n)).astype(np.int64)
    inp, out = rng.integers(50, 800, n), rng.integers(2, 400, n)
    spec = EngineSpec(kv_blocks=200_000, block_size=16, max_seqs=256, max_step_tokens=2048, replicas=2)
    r = simulate_llm(spec, AffineArray(8e6, 2e3, 0.01, 1e4, 50), sched, inp, out, trace=True)
    assert r.preemptions == 0
    tr = r.trace
    span = (tr.start_ns + tr.duration_ns).max() - tr.start_ns.min()
    avg_in_decode = float((tr.decode_seqs * tr.duration_ns).sum()) / span
    throughput = n / span
    mean_residence = float((r.complete_ns - r.first_token_ns).mean())
    assert avg_in_decode == pytest.approx(throughput * mean_residence, rel=1e-12)
    assert avg_in_decode > 10


@pytest.mark.parametrize("seed", range(40))
def test_conservation_of_samples_tokens_and_kv(seed):
    spec, cost, sched, inp, out = random_case(1000 + seed)
    r = simulate_llm(spec, cost, sched, inp, out, trace=True)
    assert np.all(r.first_token_ns > sched) and np.all(r.complete_ns >= r.first_token_ns)
    assert np.array_equal(r.n_tokens, out) and r.tokens == out.sum()
    assert np.all((out > 1) | (r.complete_ns == r.first_token_ns))
    tr = r.trace
    assert len(tr.start_ns) == r.steps
    kv_each, _ = divmod(spec.kv_blocks, spec.layout.pp)
    assert tr.kv_blocks_used.max() <= kv_each and r.peak_kv_blocks.max() == tr.kv_blocks_used.max()
    for e in np.unique(tr.engine):                  # one engine's steps never overlap
        s = tr.engine == e
        assert np.all(tr.start_ns[s][1:] >= tr.start_ns[s][:-1] + tr.duration_ns[s][:-1])
    decoded = int(tr.decode_seqs.sum())             # each token comes from a decode or a finished prefill
    if r.preemptions == 0:
        assert tr.prefill_tokens.sum() == inp.sum() and decoded == (out - 1).sum()
    else:
        assert tr.prefill_tokens.sum() > inp.sum()
        assert (out - 1).sum() - r.preemptions <= decoded <= (out - 1).sum()


def test_decode_steps_that_fit_against_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(300):
        block = int(rng.integers(1, 20))
        g = int(rng.integers(0, 1000))
        bases = rng.integers(-50, 100, int(rng.integers(1, 30)))
        residues = [int(np.count_nonzero(bases % block == r)) for r in range(block)]
        free = int(rng.integers(0, 200))

        def brute(steps):
            comp = bases + g
            return sum(int(np.count_nonzero((comp + m) % block == 0)) for m in range(steps))

        k = decode_steps_that_fit(residues, g, free, block)
        assert decode_growth(residues, g, k, block) == brute(k) <= free < brute(k + 1)


# -- routing, pipelines, disaggregation ----------------------------------------------------------

def test_round_robin_and_least_loaded_routing():
    """Replica 0 gets a long request; after request 1 finishes on replica 1, request 2 goes to
    replica 0 under round robin, to the idle replica 1 under least loaded."""
    c = 1000
    sched, inp, out = [0, 0, 50 * c], [4, 4, 4], [100, 2, 2]
    for router, want in (("round_robin", [0, 1, 0]), ("least_loaded", [0, 1, 1])):
        spec = EngineSpec(kv_blocks=64, block_size=16, max_seqs=1, max_step_tokens=16, replicas=2, router=router)
        r = simulate_llm(spec, Affine(c), sched, inp, out)
        assert list(r.engine) == want
        waited = 100 * c - 50 * c if router == "round_robin" else 0     # behind the long request, or not
        assert r.first_token_ns[2] - sched[2] == waited + c


def test_pipeline_virtual_engines_double_throughput():
    """pp=2: two micro-batch streams with half the sequence limit each run two requests at once."""
    c, o = 1000, 10
    one = EngineSpec(kv_blocks=20, block_size=16, max_seqs=1, max_step_tokens=16)
    two = EngineSpec(kv_blocks=20, block_size=16, max_seqs=2, max_step_tokens=16, layout=Layout(tp=4, pp=2))
    r1 = simulate_llm(one, Affine(c), [0, 0], [4, 4], [o, o])
    r2 = simulate_llm(two, Affine(c), [0, 0], [4, 4], [o, o])
    assert list(r1.complete_ns) == [o * c, 2 * o * c]
    assert list(r2.complete_ns) == [o * c, o * c] and list(r2.engine) == [0, 1]
    assert two.devices == 8


def test_disaggregated_prefill_decode_with_kv_transfer_hand_computed():
    """Prefill pool step 3 us (constant), decode pool step 1 us; KV 1,000 B/token over a 1 GB/s
    link with 2 us latency: 100 us to move a 100-token prompt. Two requests at t=0 on one
    prefill replica end their prefill together; the second transfer waits for the first."""
    pre = EngineSpec(kv_blocks=100, block_size=16, max_seqs=8, max_step_tokens=512)
    dec = EngineSpec(kv_blocks=100, block_size=16, max_seqs=8, max_step_tokens=64)
    spec = DisaggSpec(prefill=pre, decode=dec, kv_bytes_per_token=1000, link_bandwidth_Bps=1e9, link_latency_ns=2000)
    r = simulate_llm(spec, Affine(3000), [0, 0, 0], [100, 100, 50], [5, 5, 1], decode_cost=Affine(1000))
    assert list(r.first_token_ns) == [3000, 3000, 3000]
    assert list(r.kv_arrival_ns) == [3000 + 100_000 + 2000, 3000 + 200_000 + 2000, -1]
    assert list(r.complete_ns) == [105_000 + 4 * 1000, 205_000 + 4 * 1000, 3000]   # 4 decode steps each
    assert r.engine_names == ["prefill0", "decode0"] and list(r.engine) == [1, 1, 0]


@pytest.mark.parametrize("seed", range(10))
def test_disaggregated_conservation(seed):
    rng = np.random.default_rng(seed)
    n = 60
    inp, out = rng.integers(1, 200, n), rng.integers(1, 60, n)
    sched = np.cumsum(rng.integers(0, 50_000, n)).astype(np.int64)
    need = int(((inp + out - 1 + 15) // 16).max())
    pre = EngineSpec(kv_blocks=need * 2, block_size=16, max_seqs=4, max_step_tokens=128,
                     replicas=int(rng.integers(1, 3)), router="least_loaded")
    dec = EngineSpec(kv_blocks=int(need * rng.choice([1, 4])), block_size=16, max_seqs=8, max_step_tokens=64,
                     replicas=int(rng.integers(1, 3)))
    spec = DisaggSpec(prefill=pre, decode=dec, kv_bytes_per_token=2e5, link_bandwidth_Bps=50e9, link_latency_ns=5000)
    r = simulate_llm(spec, AffineArray(8000, 20, 0.01), sched, inp, out, decode_cost=AffineArray(3000, 0, 0, 50, 1),
                     trace=True)
    moved = out > 1
    assert np.all(r.first_token_ns > sched) and np.all(r.complete_ns[~moved] == r.first_token_ns[~moved])
    assert np.all(r.kv_arrival_ns[moved] >= r.first_token_ns[moved] + 5000 + inp[moved] * 2e5 / 50e9 * 1e9 - 1)
    assert np.all(r.complete_ns[moved] > r.kv_arrival_ns[moved]) and np.all(r.kv_arrival_ns[~moved] == -1)
    tr = r.trace
    on_prefill = tr.engine < pre.replicas
    assert tr.decode_seqs[on_prefill].sum() == 0 and tr.prefill_tokens[on_prefill].sum() == inp.sum()
    if r.preemptions == 0:
        assert tr.decode_seqs[~on_prefill].sum() == (out - 1).sum() and tr.prefill_tokens[~on_prefill].sum() == 0
    assert np.all(tr.kv_blocks_used[on_prefill] <= pre.kv_blocks)
    assert np.all(tr.kv_blocks_used[~on_prefill] <= dec.kv_blocks)


# -- bad input -----------------------------------------------------------------------------------

def test_refuses_a_sequence_that_could_never_fit():
    spec = EngineSpec(kv_blocks=10, block_size=16)                      # 160 tokens
    with pytest.raises(InputError, match="sample 1 .*needs 11 KV blocks.*could never run"):
        simulate_llm(spec, Affine(1.0), [0, 0], [10, 100], [10, 62])     # 161 tokens of KV at most
    r = simulate_llm(spec, Affine(1.0), [0, 0], [10, 100], [10, 61])     # 160 tokens: fits, and runs
    assert r.peak_kv_blocks[0] == 10


@pytest.mark.parametrize("kwargs, match", [
    ({"input_tokens": [0]}, "input_tokens' = 0 at sample 0"),
    ({"output_tokens": [0]}, "output_tokens' = 0 at sample 0"),
    ({"scheduled_ns": [5, 3], "input_tokens": [1, 1], "output_tokens": [1, 1]}, "issue order"),
    ({"input_tokens": [1, 2]}, "expected the same number"),
    ({"input_tokens": [1.5]}, "expected an integer"),
])
def test_bad_requests_are_one_line_errors(kwargs, match):
    args = {"scheduled_ns": [0], "input_tokens": [1], "output_tokens": [1]} | kwargs
    with pytest.raises(InputError, match=match):
        simulate_llm(EngineSpec(kv_blocks=10), Affine(1.0), **args)


def test_bad_specs_and_costs_are_one_line_errors():
    with pytest.raises(InputError, match="max_step_tokens' = 100: expected at least max_seqs"):
        EngineSpec(kv_blocks=10, max_seqs=256, max_step_tokens=100)
    with pytest.raises(InputError, match="'ep' = 3"):
        Layout(tp=4, ep=3)
    with pytest.raises(InputError, match="router"):
        EngineSpec(kv_blocks=10, router="random")
    with pytest.raises(InputError, match="step_ns = -1.0"):
        simulate_llm(EngineSpec(kv_blocks=10), Affine(-1.0), [0], [1], [1])
    with pytest.raises(InputError, match="leave no room"):
        blocks_from_memory(80e9, 140e9, 327680, 16, devices=1)
    assert blocks_from_memory(80e9, 0, 1000, 10, memory_fraction=0.5) == 4_000_000
