"""Machine fingerprint: what a measured CPU profile depends on, and a short hash of it.

A CPU profile is only valid on the machine, software and thread settings it was
measured with. ``fingerprint()`` collects those facts as a flat dictionary:

- ``cpu_model``: the CPU model name from ``/proc/cpuinfo`` (``platform.processor()``
  or ``platform.machine()`` where that file does not exist);
- ``machine``: the instruction-set architecture (``x86_64``, ``aarch64``);
- ``logical_cores``: ``os.cpu_count()``; ``usable_cores``: the CPUs this process may
  run on (its affinity mask, which containers and ``taskset`` narrow);
  ``physical_cores``: distinct (physical id, core id) pairs in ``/proc/cpuinfo``
  (the logical count where that is unknown);
- ``onnxruntime``, ``numpy``, ``python``: versions; ``os``: kernel name and release;
- ``intra_op_threads``, ``inter_op_threads``: the values given to onnxruntime, where
  0 means onnxruntime's own default (one thread per physical core for intra-op);
- ``execution_mode`` and ``graph_optimization_level``: onnxruntime's enum names.

``fingerprint_hash(fp)`` is the first 12 hex digits of the SHA-256 of the dictionary
written as canonical JSON (sorted keys), so the same machine and settings always give
the same hash and any change in them gives a new one. The host name is deliberately
left out: two identical machines share profiles.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys

import numpy

HASH_CHARS = 12


def _cpuinfo_text() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return ""


def cpu_model_name(cpuinfo: str | None = None) -> str:
    """The CPU model name, e.g. ``AMD EPYC 7B13``; a platform string where unknown."""
    text = _cpuinfo_text() if cpuinfo is None else cpuinfo
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "cpu model", "Processor") and value.strip():
            return " ".join(value.split())
    return platform.processor() or platform.machine() or "unknown"


def physical_core_count(cpuinfo: str | None = None) -> int:
    """Distinct (physical id, core id) pairs; the logical count where cpuinfo lacks them."""
    text = _cpuinfo_text() if cpuinfo is None else cpuinfo
    cores = set()
    phys = core = None
    for line in text.splitlines() + [""]:
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "physical id":
            phys = value.strip()
        elif key == "core id":
            core = value.strip()
        elif not line.strip():
            if core is not None:
                cores.add((phys, core))
            phys = core = None
    return len(cores) if cores else (os.cpu_count() or 1)


def usable_core_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def fingerprint(intra_op_threads: int | None = None, inter_op_threads: int | None = None,
                execution_mode: str = "ORT_SEQUENTIAL",
                graph_optimization_level: str = "ORT_ENABLE_ALL") -> dict:
    """The facts a CPU profile depends on (see the module docstring)."""
    import onnxruntime  # noqa: PLC0415 - heavy: only its version is read

    return {
        "cpu_model": cpu_model_name(),
        "machine": platform.machine(),
        "logical_cores": os.cpu_count() or 1,
        "usable_cores": usable_core_count(),
        "physical_cores": physical_core_count(),
        "onnxruntime": onnxruntime.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "intra_op_threads": int(intra_op_threads or 0),
        "inter_op_threads": int(inter_op_threads or 0),
        "execution_mode": str(execution_mode),
        "graph_optimization_level": str(graph_optimization_level),
    }


def fingerprint_hash(fp: dict) -> str:
    """A short stable hash: 12 hex digits of SHA-256 over canonical JSON of ``fp``."""
    text = json.dumps(fp, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_CHARS]


if __name__ == "__main__":  # pragma: no cover - a quick look from the shell
    fp = fingerprint()
    json.dump({"fingerprint": fp, "hash": fingerprint_hash(fp)}, sys.stdout, indent=2)
    print()
