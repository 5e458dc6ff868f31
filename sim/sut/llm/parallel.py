"""How one model replica is laid out over devices: tensor, pipeline and expert parallelism.

- **Tensor parallelism (tp)** splits every layer over ``tp`` devices that work on the same step
  together (with collectives inside each layer). To the engine it is only a faster step and a
  larger KV cache: the step cost model (``sim.cost.protocol.StepCost``) prices the collectives.
- **Expert parallelism (ep)** spreads a mixture-of-experts model's experts over ``ep`` of the
  replica's devices; again the cost model's business (all-to-all traffic, expert imbalance).
- **Pipeline parallelism (pp)** splits the layers into ``pp`` stages on different devices. One
  step of one batch passes through every stage in turn, so its latency is the sum over stages
  (the cost model's ``step_ns`` for the whole model, stage hops included); to keep every stage
  busy the engine runs ``pp`` micro-batch streams at once, each a *virtual engine* with its own
  scheduler and ``1/pp`` of the replica's KV blocks and sequence limit (the token budget stays
  per step). With equal stages and ``pp`` streams in flight, a stage is never asked to work on
  two micro-batches at once, so throughput is set by the stage time; where streams' steps differ
  in length, the real pipeline would make a short step wait for a long one in a busy stage: not
  modelled. New requests go to the virtual engine with the fewest unfinished requests.

A replica therefore uses ``tp * pp`` devices; ``ep`` must divide them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.util.checks import number, refuse

MAX_DEGREE = 1 << 12


@dataclass(frozen=True)
class Layout:
    """Parallel degrees of one replica."""
    tp: int = 1
    pp: int = 1
    ep: int = 1
    source: str = "LLM layout"

    def __post_init__(self) -> None:
        for name in ("tp", "pp", "ep"):
            object.__setattr__(self, name, number(getattr(self, name), self.source, name, minimum=1,
                                                  maximum=MAX_DEGREE, integer=True))
        if self.devices_per_replica % self.ep:
            raise refuse(self.source, "ep", self.ep,
                         f"a divisor of the replica's devices tp*pp = {self.devices_per_replica}")

    @property
    def devices_per_replica(self) -> int:
        return self.tp * self.pp

    @property
    def virtual_engines(self) -> int:
        """Micro-batch streams per replica (one per pipeline stage)."""
        return self.pp


def virtual_engine_limits(kv_blocks: int, max_seqs: int, pp: int) -> tuple[int, int]:
    """KV blocks and sequence limit of each of a replica's ``pp`` virtual engines (floor shares)."""
    return kv_blocks // pp, max_seqs // pp
