"""The paged KV cache: blocks of ``block_size`` tokens, admission, growth and preemption.

Policy (vLLM-like):

- A sequence holds ``ceil(computed_tokens / block_size)`` blocks: blocks are reserved for the
  tokens computed so far (and those being computed in the current step), never ahead for the
  tokens it will generate. It grows by one block in the step that writes the first token past
  a block boundary.
- Admission: a waiting sequence is admitted only when the blocks for its first chunk fit in
  what is free after the running sequences' growth in the same step.
- Preemption (recompute): when a running sequence cannot get the block it needs, the most
  recently admitted sequence is preempted: its blocks are freed and it returns to the front of
  the waiting queue; when readmitted, it prefills again over its prompt and the tokens it had
  generated. Going through the running sequences in admission order, that keeps exactly the
  longest prefix of them whose held plus needed blocks fit: the engine pops sequences from the
  most recent end until the rest fit.
- A sequence needs at most ``input + output - 1`` tokens of KV (the last token is never fed
  back). One that cannot fit in the whole cache could never run: ``check_fits`` refuses it.
"""

from __future__ import annotations

import math

import numpy as np

from sim.errors import InputError


def blocks_for(tokens: int, block_size: int) -> int:
    """Blocks holding ``tokens`` tokens."""
    return -(-tokens // block_size)


def blocks_from_memory(device_memory_bytes: float, weight_bytes: float, kv_bytes_per_token: float,
                       block_size: int, devices: int = 1, memory_fraction: float = 0.9,
                       activation_bytes: float = 0.0, source: str = "KV cache") -> int:
    """KV blocks of a replica on ``devices`` devices: ``memory_fraction`` of their memory, less
    the weights and an activation reserve, divided by the bytes of one block.

    ``weight_bytes`` and ``activation_bytes`` are for the whole replica (spread over its devices);
    ``kv_bytes_per_token`` for all layers. Raises ``InputError`` when the weights leave no room.
    """
    free = devices * device_memory_bytes * memory_fraction - weight_bytes - activation_bytes
    per_block = kv_bytes_per_token * block_size
    if not per_block > 0 or not math.isfinite(free):
        raise InputError(f"{source}: kv_bytes_per_token = {kv_bytes_per_token!r}: expected a positive number")
    blocks = int(free // per_block)
    if blocks < 1:
        raise InputError(f"{source}: the weights ({weight_bytes / 1e9:.1f} GB) and reserve leave no room for a KV "
                         f"block on {devices} device(s) of {device_memory_bytes / 1e9:.1f} GB at "
                         f"{memory_fraction:g} of memory: expected more devices or less weight memory")
    return blocks


def max_kv_tokens(input_tokens: np.ndarray, output_tokens: np.ndarray) -> np.ndarray:
    """The most KV tokens each sequence ever holds: ``input + output - 1``."""
    return np.asarray(input_tokens, dtype=np.int64) + np.asarray(output_tokens, dtype=np.int64) - 1


def check_fits(input_tokens: np.ndarray, output_tokens: np.ndarray, kv_blocks: int, block_size: int,
               source: str = "LLM engine") -> None:
    """Refuse a run with a sequence whose maximum length could never fit in ``kv_blocks``."""
    if len(input_tokens) == 0:
        return
    need = -(-max_kv_tokens(input_tokens, output_tokens) // block_size)
    worst = int(np.argmax(need))
    if need[worst] > kv_blocks:
        raise InputError(
            f"{source}: sample {worst} (input {int(input_tokens[worst])} + output {int(output_tokens[worst])} "
            f"tokens) needs {int(need[worst])} KV blocks of {block_size} tokens, more than the whole cache of "
            f"{kv_blocks} blocks: it could never run; expected a larger KV cache or shorter sequences")


def decode_growth(residues: list[int], g: int, steps: int, block_size: int) -> int:
    """New blocks that decoding sequences take in ``steps`` decode steps from decode count ``g``.

    A sequence with ``c`` tokens computed writes token ``c`` in its next decode step and needs
    a new block when ``c % block_size == 0``. Decoding sequences store ``c = base + g``, so in
    the step taken at decode count ``g`` the sequences that grow are those with
    ``base % block_size == (-g) % block_size``: ``residues[r]`` counts the sequences with
    ``base % block_size == r``. Every ``block_size`` steps each sequence grows once.
    """
    q, r = divmod(steps, block_size)
    total = q * sum(residues)
    for m in range(r):
        total += residues[(-(g + m)) % block_size]
    return total


def decode_steps_that_fit(residues: list[int], g: int, free_blocks: int, block_size: int) -> int:
    """The most decode steps in a row, from decode count ``g``, whose growth
    (``decode_growth``) fits in ``free_blocks``."""
    n = sum(residues)
    q, rest = divmod(free_blocks, n)
    r = 0
    while r < block_size - 1:
        rest -= residues[(-(g + r)) % block_size]
        if rest < 0:
            break
        r += 1
    return q * block_size + r
