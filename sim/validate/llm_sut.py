"""The real LLM system under test: continuous batching on onnxruntime with a KV cache.

Two parts:

- ``StepRunner``: one onnxruntime session of the validation LLM (``sim.validate.llm_model``) and a
  KV cache of ``max_seqs`` slots of ``max_context`` tokens (one array per layer, keys and values).
  ``step(prefills, decodes)`` runs one iteration: one session call over the step's prefill chunks
  (right-padded to the longest chunk and the longest cached context among them) and one over its
  decodes (one new token each, right-padded to the longest context), gathering each sequence's
  cache into the call's ``past_*`` inputs and writing the new tokens' keys and values back from
  ``present_*``. It returns the next token of every sequence that produced one (greedy argmax).
- ``ContinuousBatcher``: the serving loop. Requests (LoadGen's samples) arrive through
  ``issue``; a thread forms each step with the rules of the simulator's scheduler
  (``sim.sut.llm.scheduler``: the prefill still in progress gets ``min(tokens left, budget -
  decoding sequences)``; then, while the budget lasts and fewer than ``max_seqs`` run, the head
  of the FIFO waiting queue is admitted with a chunk of ``min(prompt, budget left)``; each
  decoding sequence gets one token), from the requests that had arrived when the step starts.
  The KV cache holds ``max_seqs`` full contexts, so no sequence ever waits for blocks or is
  preempted. At the end of a step a sequence whose prompt is all computed has its first token
  (reported with ``first_token``); one that has generated exactly its drawn output length is
  complete (``complete`` with its token count): the end of sequence is forced, whatever the
  argmax says.

Prompts are seeded token ids per sample index. Times are ``time.perf_counter_ns``. The loop
records every step (start, end, and what it computed: ``STEP_FIELDS``) and every sample (issue,
first token, completion).
"""

from __future__ import annotations

import collections
import threading
import time
import traceback

import numpy as np

from sim.validate.llm_model import attention_bias, model_bytes
from sim.workload.llm import LLMConfig

#: Per step: start and end (ns), and what it computed, as ``sim.cost.protocol.StepCost`` counts it.
STEP_FIELDS = ("start_ns", "end_ns", "prefill_tokens", "prefill_attn_tokens2", "decode_seqs", "decode_kv_tokens")


def session_options(threads: int):
    """onnxruntime's options for every session of the LLM validation (the runs and the calibration)."""
    import onnxruntime as ort  # noqa: PLC0415 - heavy: loaded only where a model runs

    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return so


def prompt_tokens(index: int, length: int, vocab: int, seed: int = 0) -> np.ndarray:
    """The seeded prompt of sample ``index`` (token ids)."""
    return np.random.default_rng([int(seed), int(index), 0x50]).integers(0, vocab, int(length), dtype=np.int64)


class StepRunner:
    """One session of the model and its slot-based KV cache (the module docstring)."""

    def __init__(self, cfg: LLMConfig, max_seqs: int, threads: int = 1, seed: int = 0):
        import onnxruntime as ort  # noqa: PLC0415 - heavy: loaded only where a model runs

        self.cfg = cfg
        self.session = ort.InferenceSession(model_bytes(cfg, seed), session_options(threads),
                                            providers=["CPUExecutionProvider"])
        shape = (int(max_seqs), cfg.heads, cfg.max_context, cfg.head_size)
        self.keys = [np.zeros(shape, np.float32) for _ in range(cfg.layers)]
        self.values = [np.zeros(shape, np.float32) for _ in range(cfg.layers)]
        self.free = list(range(int(max_seqs) - 1, -1, -1))
        self.names = [f"{kind}_{layer}" for layer in range(cfg.layers) for kind in ("key", "value")]

    def alloc(self) -> int:
        return self.free.pop()

    def release(self, slot: int) -> None:
        self.free.append(slot)

    def forward(self, slots, tokens: list[np.ndarray], starts) -> tuple[np.ndarray, np.ndarray]:
        """One session call: sequence ``i`` (cache slot ``slots[i]``, ``starts[i]`` tokens cached)
        computes ``tokens[i]``. Returns the logits of each sequence's last new token and their
        argmax; the new keys and values are written into the cache."""
        slots = np.asarray(slots, dtype=np.int64)
        starts = np.asarray(starts, dtype=np.int64)
        lens = np.fromiter((len(t) for t in tokens), dtype=np.int64, count=len(tokens))
        b, new, past = len(slots), int(lens.max()), int(starts.max())
        if new == 1:
            ids = np.fromiter((t[0] for t in tokens), dtype=np.int64, count=b)[:, None]
            pos = starts[:, None].copy()
        else:
            ids = np.zeros((b, new), np.int64)
            pos = np.zeros((b, new), np.int64)
            for i, t in enumerate(tokens):
                ids[i, :len(t)] = t
                pos[i, :len(t)] = np.arange(starts[i], starts[i] + len(t))
        feeds = {"input_ids": ids, "position_ids": pos, "attention_bias": attention_bias(starts, lens, past, new)}
        for layer in range(self.cfg.layers):
            feeds[f"past_key_{layer}"] = self.keys[layer][slots, :, :past, :]
            feeds[f"past_value_{layer}"] = self.values[layer][slots, :, :past, :]
        out = self.session.run(None, feeds)
        rows = np.arange(b)
        last = out[0][rows, lens - 1]
        for n, name in enumerate(self.names):
            cache = (self.keys if name.startswith("key") else self.values)[int(name.rsplit("_", 1)[1])]
            present = out[1 + n]
            if new == 1:
                cache[slots, :, starts, :] = present[:, :, past, :]
            else:
                for i in range(b):
                    cache[slots[i], :, starts[i]:starts[i] + lens[i], :] = present[i, :, past:past + lens[i], :]
        return last, last.argmax(axis=1)

    def step(self, prefills: list[tuple[int, np.ndarray, int]], decodes: list[tuple[int, int, int]]):
        """One iteration: ``prefills`` as (slot, chunk tokens, tokens cached), ``decodes`` as
        (slot, token, tokens cached). Returns the argmax tokens of the prefill chunks and of the
        decodes (arrays in the same order; empty where the list is)."""
        pf = dec = np.zeros(0, np.int64)
        if prefills:
            _, pf = self.forward([p[0] for p in prefills], [p[1] for p in prefills], [p[2] for p in prefills])
        if decodes:
            _, dec = self.forward([d[0] for d in decodes], [np.array([d[1]], np.int64) for d in decodes],
                                  [d[2] for d in decodes])
        return pf, dec


class Sequence:
    """One request in the engine."""
    __slots__ = ("rid", "index", "prompt", "n_in", "n_out", "comp", "gen", "last", "slot", "order")

    def __init__(self, rid, index: int, prompt: np.ndarray, n_out: int, order: int):
        self.rid = rid
        self.index = index
        self.prompt = prompt
        self.n_in = len(prompt)
        self.n_out = int(n_out)
        self.comp = 0          # tokens whose keys and values are in the cache
        self.gen = 0           # tokens generated
        self.last = -1         # the last generated token (the next decode's input)
        self.slot = -1
        self.order = order     # issue order


class ContinuousBatcher:
    """The serving loop (the module docstring). ``first_token(list of Sequence)`` and
    ``complete(list of Sequence)`` are called from the loop's thread at the end of each step."""

    def __init__(self, runner: StepRunner, input_tokens: np.ndarray, output_tokens: np.ndarray, max_seqs: int,
                 max_step_tokens: int, first_token, complete, seed: int = 0):
        if max_step_tokens < max_seqs:
            raise ValueError("max_step_tokens must be at least max_seqs")
        self.runner = runner
        self.inp = np.asarray(input_tokens, dtype=np.int64)
        self.out = np.asarray(output_tokens, dtype=np.int64)
        self.max_seqs = int(max_seqs)
        self.budget = int(max_step_tokens)
        self.first_token = first_token
        self.complete = complete
        self.seed = seed
        self.cond = threading.Condition()
        self.arrived: collections.deque = collections.deque()
        self.waiting: collections.deque = collections.deque()
        self.running: list[Sequence] = []       # admission order; the last may be prefilling
        self.tail: Sequence | None = None
        self.stopping = False
        self.thread: threading.Thread | None = None
        self.steps: list[tuple] = []
        self.issue_ns: list[int] = []
        self.first_ns: list[int] = []
        self.complete_ns: list[int] = []
        self.index: list[int] = []
        self.errors: list[str] = []

    # -- the issue side --------------------------------------------------------------------------
    def issue(self, requests) -> None:
        """``requests``: (id, sample index) pairs, arriving now."""
        now = time.perf_counter_ns()
        with self.cond:
            for rid, index in requests:
                order = len(self.issue_ns)
                self.issue_ns.append(now)
                self.first_ns.append(-1)
                self.complete_ns.append(-1)
                self.index.append(int(index))
                prompt = prompt_tokens(index, self.inp[index], self.runner.cfg.vocab_size, self.seed)
                self.arrived.append(Sequence(rid, int(index), prompt, self.out[index], order))
            self.cond.notify()

    # -- the loop --------------------------------------------------------------------------------
    def start(self) -> None:
        self.thread = threading.Thread(target=self._loop, name="llm-engine", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify()
        if self.thread is not None:
            self.thread.join()

    def _loop(self) -> None:
        try:
            while True:
                with self.cond:
                    while not self.arrived and not self.running and not self.waiting and not self.stopping:
                        self.cond.wait()
                    if self.stopping and not self.arrived and not self.running and not self.waiting:
                        return
                    start = time.perf_counter_ns()
                    while self.arrived:
                        self.waiting.append(self.arrived.popleft())
                self.run_step(start)
        except Exception:                                         # noqa: BLE001 - reported, then the run ends
            self.errors.append(traceback.format_exc())

    def form_step(self) -> tuple[list[tuple[Sequence, int]], list[Sequence]]:
        """The step's prefill chunks (sequence, chunk tokens) and decoding sequences; admits from
        ``waiting`` (the scheduler's rules, the module docstring)."""
        decoding = [s for s in self.running if s is not self.tail]
        chunks: list[tuple[Sequence, int]] = []
        left = self.budget - len(decoding)
        if self.tail is not None:
            c = min(self.tail.n_in - self.tail.comp, left)
            chunks.append((self.tail, c))
            left -= c
        while self.waiting and left > 0 and len(self.running) < self.max_seqs:
            s = self.waiting.popleft()
            s.slot = self.runner.alloc()
            self.running.append(s)
            c = min(s.n_in, left)
            chunks.append((s, c))
            left -= c
        return chunks, decoding

    def run_step(self, start: int) -> None:
        chunks, decoding = self.form_step()
        pf_tokens = sum(c for _, c in chunks)
        pf_attn = sum(c * (s.comp + (c + 1) / 2) for s, c in chunks)
        dkv = sum(s.comp + 1 for s in decoding)
        pf_next, dec_next = self.runner.step(
            [(s.slot, s.prompt[s.comp:s.comp + c], s.comp) for s, c in chunks],
            [(s.slot, s.last, s.comp) for s in decoding])
        end = time.perf_counter_ns()
        firsts, done = [], []
        self.tail = None
        for (s, c), tok in zip(chunks, pf_next):
            s.comp += c
            if s.comp < s.n_in:
                self.tail = s
                continue
            s.gen = 1
            s.last = int(tok)
            firsts.append(s)
            if s.gen == s.n_out:
                done.append(s)
        for s, tok in zip(decoding, dec_next):
            s.comp += 1
            s.gen += 1
            s.last = int(tok)
            if s.gen == s.n_out:
                done.append(s)
        for s in firsts:
            self.first_ns[s.order] = end
        for s in done:
            self.complete_ns[s.order] = end
            self.running.remove(s)
            self.runner.release(s.slot)
        self.steps.append((start, end, pf_tokens, pf_attn, len(decoding), dkv))
        if firsts:
            self.first_token(firsts)
        if done:
            self.complete(done)

    def arrays(self) -> dict:
        """What the loop recorded (the module docstring), as arrays."""
        steps = np.array(self.steps, dtype=np.float64).reshape(-1, len(STEP_FIELDS))
        out = {f"step_{name}": steps[:, i] for i, name in enumerate(STEP_FIELDS)}
        out.update(issue_ns=np.array(self.issue_ns, np.int64), first_ns=np.array(self.first_ns, np.int64),
                   complete_ns=np.array(self.complete_ns, np.int64), sample_index=np.array(self.index, np.int64))
        return out
