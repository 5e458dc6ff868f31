"""LLM serving at iteration level: continuous batching, a paged KV cache, replicas and pools.

Read in this order: ``system`` (what a serving system is: ``EngineSpec``, ``DisaggSpec``),
``parallel`` (TP/PP/EP layout), ``kv_cache`` (blocks, admission, preemption), ``scheduler`` (how
one step is formed), ``engine`` (the fast event loop of one engine), ``router`` (replicas),
``disagg`` (prefill and decode pools), ``serve`` (``simulate_llm``, the entry point), and
``naive`` (the same rules with one SimPy process per request: the reference the tests compare
the fast engine with).
"""

from sim.sut.llm.engine import StepTrace
from sim.sut.llm.kv_cache import blocks_from_memory
from sim.sut.llm.parallel import Layout
from sim.sut.llm.serve import LLMResult, check_requests, simulate_llm
from sim.sut.llm.system import DisaggSpec, EngineSpec

__all__ = ["DisaggSpec", "EngineSpec", "LLMResult", "Layout", "StepTrace", "blocks_from_memory",
           "check_requests", "simulate_llm"]
