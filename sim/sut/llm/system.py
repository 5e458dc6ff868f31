"""An LLM serving system described as data: one engine's limits, its replicas, its pools.

``EngineSpec`` is what one serving engine (one model replica) may do in a step and hold in its
KV cache, plus how many data-parallel replicas of it sit behind a router:

- ``max_seqs``: the most sequences running at once (the batch limit);
- ``max_step_tokens``: the token budget of one step (decode tokens plus prefill chunk tokens;
  chunked prefill is always on); at least ``max_seqs``, as vLLM requires, so every running
  sequence gets its token in every step;
- ``kv_blocks`` of ``block_size`` tokens: the KV cache of one replica (see
  ``sim.sut.llm.kv_cache.blocks_from_memory`` to derive it from device memory);
- ``replicas`` and ``router``: data-parallel copies and how requests are spread over them
  (``round_robin`` or ``least_loaded``, see ``sim.sut.llm.router``);
- ``layout``: tensor, pipeline and expert parallel degrees (``sim.sut.llm.parallel``).

``DisaggSpec`` is prefill and decode on separate pools (``sim.sut.llm.disagg``): two
``EngineSpec`` and the link that moves a prompt's KV from one to the other.

Every value is checked here, once; a bad one is a one-line ``InputError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sim.sut.llm.parallel import Layout
from sim.util.checks import number, refuse

ROUTERS = ("round_robin", "least_loaded")
#: Bounds that keep a description sane (a step budget or a cache beyond these is a typo).
MAX_SEQS = 1 << 20
MAX_STEP_TOKENS = 1 << 24
MAX_KV_BLOCKS = 1 << 40
MAX_BLOCK_SIZE = 1 << 16
MAX_REPLICAS = 1 << 16


@dataclass(frozen=True)
class EngineSpec:
    """One serving engine (a model replica) and its data-parallel copies."""
    kv_blocks: int
    block_size: int = 16
    max_seqs: int = 256
    max_step_tokens: int = 8192
    replicas: int = 1
    router: str = "round_robin"
    layout: Layout = field(default_factory=Layout)
    source: str = "LLM engine"

    def __post_init__(self) -> None:
        src = self.source
        for name, hi in (("kv_blocks", MAX_KV_BLOCKS), ("block_size", MAX_BLOCK_SIZE), ("max_seqs", MAX_SEQS),
                         ("max_step_tokens", MAX_STEP_TOKENS), ("replicas", MAX_REPLICAS)):
            object.__setattr__(self, name, number(getattr(self, name), src, name, minimum=1, maximum=hi,
                                                  integer=True))
        if self.max_step_tokens < self.max_seqs:
            raise refuse(src, "max_step_tokens", self.max_step_tokens,
                         f"at least max_seqs ({self.max_seqs}): every running sequence decodes one token a step")
        if self.router not in ROUTERS:
            raise refuse(src, "router", self.router, "one of " + ", ".join(ROUTERS))
        if not isinstance(self.layout, Layout):
            raise refuse(src, "layout", self.layout, "a sim.sut.llm.parallel.Layout")
        pp = self.layout.pp
        if self.kv_blocks < pp or self.max_seqs < pp:
            raise refuse(src, "kv_blocks" if self.kv_blocks < pp else "max_seqs",
                         min(self.kv_blocks, self.max_seqs), f"at least the pipeline degree pp={pp}")

    @property
    def devices(self) -> int:
        """Devices of all replicas together."""
        return self.replicas * self.layout.devices_per_replica


@dataclass(frozen=True)
class DisaggSpec:
    """Prefill on one pool, decode on another, the prompt's KV moved over a link between them.

    ``kv_bytes_per_token``: KV bytes of one token (all layers); ``link_bandwidth_Bps`` (bytes/s)
    and ``link_latency_ns``: one link per prefill replica, transfers in order (FIFO).
    """
    prefill: EngineSpec
    decode: EngineSpec
    kv_bytes_per_token: float
    link_bandwidth_Bps: float
    link_latency_ns: float = 0.0
    source: str = "LLM disaggregated system"

    def __post_init__(self) -> None:
        src = self.source
        for name in ("prefill", "decode"):
            if not isinstance(getattr(self, name), EngineSpec):
                raise refuse(src, name, getattr(self, name), "an EngineSpec")
        object.__setattr__(self, "kv_bytes_per_token",
                           number(self.kv_bytes_per_token, src, "kv_bytes_per_token", minimum=0.0, maximum=1e12))
        object.__setattr__(self, "link_bandwidth_Bps",
                           number(self.link_bandwidth_Bps, src, "link_bandwidth_Bps", above=0.0, maximum=1e15))
        object.__setattr__(self, "link_latency_ns",
                           number(self.link_latency_ns, src, "link_latency_ns", minimum=0.0, maximum=1e12))

    @property
    def devices(self) -> int:
        return self.prefill.devices + self.decode.devices
