"""Step formation: which sequences one iteration of a continuous-batching engine computes.

A replica (or one virtual engine of a pipelined replica) keeps its *running* sequences in
admission order and a FIFO *waiting* queue. Each step, in this order (modelled on vLLM's V1
scheduler with its first-come-first-served policy):

1. Every running sequence gets its tokens for the step: one token for a decoding sequence, and
   for the one whose prefill is still in progress (only the last admitted can be) a chunk of
   ``min(tokens left, budget left)``. The budget is ``max_step_tokens``; it is at least the
   sequence limit, so every decoding sequence always gets its token.
2. Blocks: a sequence's KV grows to cover the tokens computed in the step
   (``sim.sut.llm.kv_cache``). If they do not fit, the most recently admitted sequences are
   preempted (recompute), and nothing is admitted in that step.
3. Admission: while the budget is not spent, fewer than ``max_seqs`` are running and the head
   of the waiting queue can have the blocks of its first chunk, the head is admitted with a
   chunk of ``min(prefill tokens, budget left)``. A head that does not fit stops admission
   (no skipping ahead).
4. At the end of the step: a decoding sequence has one more token; a sequence whose prefill
   chunk reaches all its known tokens (the prompt, plus what it had generated before a
   preemption) produces a token, its first if it had none (the first token time); a sequence
   that has all ``output_tokens`` tokens completes and frees its blocks.

A sequence is in its *decode phase* when exactly one known token is not yet computed and it has
produced a token; otherwise it is prefilling (only the last admitted can be).

The bookkeeping is kept O(1) per step whatever the batch size: decoding sequences advance
together, so each stores its computed tokens relative to the engine's count ``G`` of decode
steps (``computed = base + G``) and the value of ``G`` at which it completes (a heap); the KV
growth of a decode step is the number of decoding sequences whose ``base`` sits at one residue
modulo the block size (``sim.sut.llm.kv_cache`` explains the arithmetic). A run of decode-only
steps is then one addition to ``G``.
"""

from __future__ import annotations

import heapq
import math
from collections import deque

import numpy as np

from sim.errors import InputError
from sim.sut.llm.kv_cache import decode_growth, decode_steps_that_fit


def duration_ns(value: float, what: str = "step cost") -> int:
    """A step time as whole nanoseconds (rounded half to even, at least 1 ns)."""
    if not (value > 0 and math.isfinite(value)):
        raise InputError(f"{what}: step_ns = {value!r}: expected a positive finite number of nanoseconds")
    return max(1, round(value))


def durations_ns(values: np.ndarray, what: str = "step cost") -> np.ndarray:
    """``duration_ns`` over an array."""
    values = np.asarray(values, dtype=np.float64)
    lo, hi = values.min(), values.max()
    if not (lo > 0 and hi < math.inf):
        bad = values[~((values > 0) & np.isfinite(values))][0]
        raise InputError(f"{what}: step_ns = {float(bad)!r}: expected a positive finite number of nanoseconds")
    d = np.rint(values).astype(np.int64)
    if lo < 0.5:
        np.maximum(d, 1, out=d)
    return d


class Samples:
    """Per-sample state shared by the schedulers of a run, and the results (plain lists)."""

    def __init__(self, input_tokens, output_tokens):
        n = len(input_tokens)
        self.comp = [0] * n                                   # tokens computed (prefilling or waiting)
        self.tgt = [int(x) for x in input_tokens]             # tokens known (prefilling or waiting)
        self.rem = [int(x) for x in output_tokens]            # tokens still to produce (idem)
        self.base = [0] * n                                   # decoding: computed = base + G
        self.fin = [0] * n                                    # decoding: completes when G reaches it
        self.first_ns = [-1] * n
        self.complete_ns = [-1] * n


class Scheduler:
    """One engine's running batch, waiting queue and KV blocks; forms and applies steps."""

    def __init__(self, samples: Samples, kv_blocks: int, block_size: int, max_seqs: int, max_step_tokens: int):
        self.s = samples
        self.cap = kv_blocks
        self.B = block_size
        self.max_seqs = max_seqs
        self.budget = max_step_tokens
        self.running: dict[int, None] = {}    # admission order; the last may be prefilling (``tail``)
        self.tail: int | None = None
        self.waiting: deque[int] = deque()
        self.G = 0                            # decode steps taken
        self.nd = 0                           # decoding sequences
        self.sum_base = 0                     # sum of their ``base``
        self.residues = [0] * block_size      # how many of them have base % B == r
        self.heap: list[tuple[int, int, int]] = []   # (fin, entry, sid) of decoding sequences
        self.entry = [0] * len(samples.comp)  # the live heap entry of each sample
        self._entries = 0
        self.used = 0                         # KV blocks held
        self.peak_used = 0
        self.step_used = 0                    # blocks in use during the last general step
        self.preemptions = 0
        self.head_blocked = False             # the waiting head cannot be admitted until one leaves
        self.done = 0                         # sequences completed
        self.last_done = 0                    # of which at the end of the last step applied

    @property
    def n(self) -> int:
        return len(self.running)

    # -- decode-phase bookkeeping ----------------------------------------------------------------
    def _start_decoding(self, j: int, comp: int, rem: int) -> None:
        s = self.s
        base = comp - self.G
        s.base[j] = base
        s.fin[j] = fin = self.G + rem
        self.nd += 1
        self.sum_base += base
        self.residues[base % self.B] += 1
        self._entries += 1
        self.entry[j] = self._entries
        heapq.heappush(self.heap, (fin, self._entries, j))

    def _stop_decoding(self, j: int) -> int:
        """Take ``j`` out of the decoding set; returns its computed tokens."""
        base = self.s.base[j]
        self.nd -= 1
        self.sum_base -= base
        self.residues[base % self.B] -= 1
        self.entry[j] = -1
        return base + self.G

    def _complete_decoders(self, end_ns: int) -> int:
        """Complete the decoding sequences whose last token came out in the step just applied."""
        heap, G, s, B = self.heap, self.G, self.s, self.B
        done = 0
        while heap and heap[0][0] <= G:
            _, entry, j = heapq.heappop(heap)
            if self.entry[j] != entry:
                continue                      # a stale entry (the sequence was preempted)
            comp = self._stop_decoding(j)
            self.used -= -(-comp // B)
            del self.running[j]
            s.complete_ns[j] = end_ns
            done += 1
        return done

    def _clean_heap(self) -> None:
        heap = self.heap
        while heap and self.entry[heap[0][2]] != heap[0][1]:
            heapq.heappop(heap)

    # -- one general step ------------------------------------------------------------------
    def step(self, start_ns: int, cost) -> tuple[int, tuple[int, float, int, int]]:
        """Form one step at ``start_ns``, time it with ``cost``, apply it.

        Returns the duration and ``(prefill_tokens, prefill_attn_tokens2, decode_seqs,
        decode_kv_tokens)``. The caller has moved every arrival up to ``start_ns`` to ``waiting``.
        """
        s, B, cap, G = self.s, self.B, self.cap, self.G
        running = self.running
        nd = self.nd
        dec_new = self.residues[(-G) % B] if nd else 0
        chunks: list[tuple[int, int, int]] = []          # (sample, chunk tokens, computed before)
        new_t = 0
        tail = self.tail
        if tail is not None:
            c0 = s.comp[tail]
            c = min(s.tgt[tail] - c0, self.budget - nd)
            new_t = -(-(c0 + c) // B) - (-(-c0 // B))
            chunks.append((tail, c, c0))
        preempted = False
        over = self.used + dec_new + new_t - cap
        if over > 0:
            preempted = True
            while over > 0:
                j, _ = running.popitem()
                if j == tail:
                    held = -(-s.comp[tail] // B)
                    over -= held + new_t
                    new_t = 0
                    chunks = []
                    tail = None
                else:
                    comp = self._stop_decoding(j)
                    held = -(-comp // B)
                    grow = 1 if comp % B == 0 else 0
                    over -= held + grow
                    dec_new -= grow
                    s.tgt[j] = comp + 1
                    s.rem[j] = s.fin[j] - G
                s.comp[j] = 0
                self.used -= held
                self.waiting.appendleft(j)
                self.preemptions += 1
            self.tail = tail
            nd = self.nd
        self.used += dec_new + new_t
        left = self.budget - nd - (chunks[0][1] if chunks else 0)
        self.head_blocked = False
        waiting = self.waiting
        if not preempted and waiting:
            max_seqs = self.max_seqs
            while waiting and left > 0:
                if len(running) >= max_seqs:
                    self.head_blocked = True
                    break
                j = waiting[0]
                c0 = s.comp[j]
                c = min(s.tgt[j] - c0, left)
                nb = -(-(c0 + c) // B)             # a waiting sequence holds no blocks
                if self.used + nb > cap:
                    self.head_blocked = True
                    break
                waiting.popleft()
                running[j] = None
                chunks.append((j, c, c0))
                self.used += nb
                left -= c
        self.step_used = self.used
        if self.used > self.peak_used:
            self.peak_used = self.used
        # what the step computes
        pf_tokens = 0
        pf_attn = 0.0
        dseq = nd
        dkv = self.sum_base + nd * (G + 1)
        first = s.first_ns
        for j, c, c0 in chunks:
            if c == 1 and s.tgt[j] - c0 == 1 and first[j] >= 0:
                dseq += 1
                dkv += c0 + 1
            else:
                pf_tokens += c
                pf_attn += c * (c0 + (c + 1) / 2)
        d = duration_ns(cost.step_ns(pf_tokens, pf_attn, dseq, dkv))
        end = start_ns + d
        # apply it
        if nd:
            self.G += 1
        done = 0
        self.tail = None
        for j, c, c0 in chunks:
            comp = s.comp[j] = c0 + c
            if comp < s.tgt[j]:
                self.tail = j                   # still prefilling: the last admitted
                continue
            s.tgt[j] += 1
            rem = s.rem[j] = s.rem[j] - 1
            if first[j] < 0:
                first[j] = end
            if rem == 0:
                self.used -= -(-comp // B)
                del running[j]
                s.complete_ns[j] = end
                done += 1
            else:
                self._start_decoding(j, comp, rem)
        if nd:
            done += self._complete_decoders(end)
        self.done += done
        self.last_done = done
        if done:
            self.head_blocked = False
        return d, (pf_tokens, pf_attn, dseq, dkv)

    # -- runs of decode-only steps -----------------------------------------------------------
    def decode_run_ready(self) -> bool:
        """Whether the next steps are decode-only with the same batch until a sequence leaves."""
        return self.nd > 0 and self.tail is None and (self.head_blocked or not self.waiting)

    def decode_run_limit(self) -> int:
        """Decode steps the batch can take as it is: until the first sequence completes (that
        step included) or one step before the KV cache would run out."""
        self._clean_heap()
        k = self.heap[0][0] - self.G
        free = self.cap - self.used
        if self.nd * (k // self.B + 1) <= free:
            return k
        return min(k, decode_steps_that_fit(self.residues, self.G, free, self.B))

    def decode_kv_start(self) -> int:
        """``decode_kv_tokens`` of the next decode step."""
        return self.sum_base + self.nd * (self.G + 1)

    def growth(self, steps: int) -> int:
        """Blocks the decoding sequences take in the next ``steps`` decode steps."""
        return decode_growth(self.residues, self.G, steps, self.B)

    def advance_decodes(self, steps: int, end_ns: int) -> None:
        """Apply ``steps`` decode-only steps (within ``decode_run_limit``) ending at ``end_ns``."""
        self.used += self.growth(steps)
        if self.used > self.peak_used:
            self.peak_used = self.used
        self.G += steps
        done = self._complete_decoders(end_ns)
        self.done += done
        self.last_done = done
        if done:
            self.head_blocked = False
