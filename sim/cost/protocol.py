"""The cost-model contract: how long one batch keeps one accelerator instance busy.

Every cost model answers ``service_time_ns(batch, idle, rng)`` and says what it is with
``describe()``; ``random`` tells whether its times depend on the run's generator. Three
optional capabilities refine the answer, and the engine (``sim.sut.device``) asks the most
specific one a model has:

- ``ContextCost.service_time_in_context_ns(batch, gap_ns, computing, rng)``: the time also
  depends on how long the instance had been idle (``gap_ns``) and on how many batches are in
  compute at once, this one included (CPU instances share cores and caches);
- ``TimedCost.service_time_at_ns(batch, gap_ns, computing, rng, start_ns)``: the same, told
  when the batch starts (a machine whose speed varies over time);
- ``RunBoundCost.for_run(rng)``: a model bound to one run first (it draws a random offset
  or state from the run's seeded generator).

Implementations: ``sim.cost.synthetic`` (fixed, exponential, affine), ``sim.cost.empirical``
(measured service-time tables), ``sim.cost.cpu_profile`` (a measured onnxruntime profile),
``sim.cost.speed_trace`` (a time-varying wrapper), ``sim.hw.analytic`` (a device profile's
roofline per layer). ``sim.cost.resolve`` turns a description into one of them.

LLM serving engines (``sim.sut.llm``) ask a different question: the time of one *iteration*
(step) of a continuous-batching engine, ``StepCost.step_ns``, from what the step computes:

- ``prefill_tokens``: prompt tokens (chunks of prefills) processed in the step;
- ``prefill_attn_tokens2``: the attention token-pairs of those chunks, the sum over chunks of
  ``chunk_len * (context_before_chunk + (chunk_len + 1) / 2)`` (each new token attends to the
  context before the chunk and, causally, to the chunk up to itself);
- ``decode_seqs``: sequences generating one token each in the step;
- ``decode_kv_tokens``: the sum of those sequences' context lengths (KV tokens read, the
  token being decoded included).

``StepCostArray.step_ns_array`` is the same question for many steps at once (numpy arrays,
broadcast together): the engine uses it, when a cost has it, to time runs of decode steps in
one call; it must equal ``step_ns`` element by element.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class CostModel(Protocol):
    """The time of a batch of ``batch`` samples; ``idle``: the instance pays its wake-up cost."""

    def service_time_ns(self, batch: int, idle: bool = False, rng: np.random.Generator | None = None) -> float: ...

    def describe(self) -> str: ...


@runtime_checkable
class ContextCost(Protocol):
    """A cost that depends on the gap since the instance's last batch and on its neighbours."""

    def service_time_in_context_ns(self, batch: int, gap_ns: float, computing: int,
                                   rng: np.random.Generator | None) -> float: ...


@runtime_checkable
class TimedCost(Protocol):
    """A cost that also depends on when the batch starts."""

    def service_time_at_ns(self, batch: int, gap_ns: float, computing: int, rng: np.random.Generator | None,
                           start_ns: float) -> float: ...


@runtime_checkable
class RunBoundCost(Protocol):
    """A cost bound to one run (and its generator) before the run starts."""

    def for_run(self, rng: np.random.Generator) -> object: ...


@runtime_checkable
class StepCost(Protocol):
    """The time of one iteration of an LLM serving engine (one replica), in nanoseconds."""

    def step_ns(self, prefill_tokens: int, prefill_attn_tokens2: float, decode_seqs: int,
                decode_kv_tokens: int) -> float: ...

    def describe(self) -> str: ...


@runtime_checkable
class StepCostArray(Protocol):
    """``StepCost.step_ns`` over arrays of steps (broadcast together), element by element."""

    def step_ns_array(self, prefill_tokens: np.ndarray, prefill_attn_tokens2: np.ndarray,
                      decode_seqs: np.ndarray, decode_kv_tokens: np.ndarray) -> np.ndarray: ...


def describe(cost: object) -> str:
    """A cost model's own description, or its class name where it has none."""
    text = getattr(cost, "describe", None)
    return text() if callable(text) else type(cost).__name__
