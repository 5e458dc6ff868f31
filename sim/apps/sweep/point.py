"""A sweep point's identity and description: its stable id, the seed derived from it, and a
one-line summary of its parameters (for progress notes and error messages)."""

from __future__ import annotations

import hashlib
import json


def point_id(params: dict) -> str:
    """The stable id of a point: 16 hex digits of the SHA-256 of its canonical JSON."""
    text = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def seed_of(pid: str) -> int:
    """The seed of random service times of a point, derived from its id."""
    return int(pid, 16)


def describe_point(p: dict) -> str:
    """A point in one line for messages: scenario, device, counts, QPS, replica, batching."""
    parts = [p.get("scenario", "?")]
    dev = p.get("device")
    if isinstance(dev, dict):
        parts.append(dev.get("label") or dev.get("kind", "?"))
    elif dev is not None:
        parts.append(str(dev))
    for key in ("workload", "accelerators", "instances", "qps", "replica"):
        if key in p:
            parts.append(f"{key}={p[key]}")
    if "batching" in p:
        b = p["batching"]
        parts.append(f"batching={b.get('policy', 'none')}/{b.get('max_batch', 1)}")
    return ", ".join(str(x) for x in parts)
