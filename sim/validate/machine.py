"""The machine the real runs share with other work.

- ``foreign_cpu_cores``, ``wait_quiet``, ``ForeignMeter`` and ``CpuMonitor`` read
  ``/proc/stat``: the CPU time other processes use (other work on a shared machine), before
  a run (a quiet wait), between two points, and sampled during a run, recorded with every
  run so a disturbed run can be told from a model error;
- ``_current_niceness``: the scheduling priority a measuring process really runs at;
- ``machine_fingerprint``: what the machine is (``sim.util.fingerprint``), the LoadGen
  version and a hash, kept with the validation's results.
"""

from __future__ import annotations

import os
import threading
import time
from importlib import metadata

import numpy as np

from sim.util.fingerprint import fingerprint, fingerprint_hash

# ---------------------------------------------------------------------------------------
# other work on the machine


def _proc_stat() -> tuple[int, int]:
    """(busy ticks of all CPUs, steal ticks) from /proc/stat."""
    with open("/proc/stat") as fh:
        parts = fh.readline().split()[1:]
    v = [int(x) for x in parts]
    busy = v[0] + v[1] + v[2] + v[5] + v[6]        # user nice system irq softirq
    steal = v[7] if len(v) > 7 else 0
    return busy, steal


def _own_ticks(pid: int | None = None) -> int:
    with open(f"/proc/{pid or 'self'}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])       # utime + stime, all threads


def foreign_cpu_cores(seconds: float = 1.0, own_pids: tuple[int, ...] = ()) -> float:
    """CPU cores used by other processes over ``seconds`` (this process excluded)."""
    if not os.path.exists("/proc/stat"):
        return 0.0
    hz = os.sysconf("SC_CLK_TCK")
    pids = (None,) + tuple(own_pids)
    b0, _ = _proc_stat()
    o0 = sum(_own_ticks(p) for p in pids)
    t0 = time.monotonic()
    time.sleep(seconds)
    b1, _ = _proc_stat()
    o1 = sum(_own_ticks(p) for p in pids)
    dt = time.monotonic() - t0
    return max(0.0, ((b1 - b0) - (o1 - o0)) / hz / dt)


def wait_quiet(max_cores: float, max_wait_s: float) -> tuple[float, float]:
    """Wait until other processes use < ``max_cores``; (seconds waited, last reading)."""
    t0 = time.monotonic()
    reading = foreign_cpu_cores(0.5)
    while reading >= max_cores and time.monotonic() - t0 < max_wait_s:
        time.sleep(1.0)
        reading = foreign_cpu_cores(1.0)
    return time.monotonic() - t0, reading


class ForeignMeter:
    """CPU cores other processes used between ``start()`` and ``read()``."""

    def start(self) -> "ForeignMeter":
        self.ok = os.path.exists("/proc/stat")
        if self.ok:
            self.b0, _ = _proc_stat()
            self.o0 = _own_ticks()
        self.t0 = time.monotonic()
        return self

    def read(self) -> float:
        if not self.ok:
            return 0.0
        b1, _ = _proc_stat()
        o1 = _own_ticks()
        dt = max(time.monotonic() - self.t0, 1e-3)
        return max(0.0, ((b1 - self.b0) - (o1 - self.o0)) / os.sysconf("SC_CLK_TCK") / dt)


class CpuMonitor:
    """Samples CPU use by other processes (and hypervisor steal) while a run goes on."""

    def __init__(self, period_s: float = 0.5):
        self.period_s = period_s
        self.windows: list[tuple[float, float, float]] = []    # (seconds, foreign cores, steal cores)
        self._stop = threading.Event()
        self._thread = None
        self.available = os.path.exists("/proc/stat")

    def _loop(self):
        hz = os.sysconf("SC_CLK_TCK")
        b0, s0 = _proc_stat()
        o0 = _own_ticks()
        t0 = time.monotonic()
        while not self._stop.wait(self.period_s):
            b1, s1 = _proc_stat()
            o1 = _own_ticks()
            t1 = time.monotonic()
            dt = t1 - t0
            if dt > 0:
                self.windows.append((dt, max(0.0, ((b1 - b0) - (o1 - o0)) / hz / dt), (s1 - s0) / hz / dt))
            b0, s0, o0, t0 = b1, s1, o1, t1

    def start(self) -> None:
        if self.available:
            self._thread = threading.Thread(target=self._loop, name="cpu-monitor", daemon=True)
            self._thread.start()

    def stop(self) -> dict:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
        if not self.windows:
            return {"foreign_cores_mean": None, "foreign_cores_max": None, "steal_cores_mean": None, "windows": 0}
        w = np.array(self.windows)
        total = w[:, 0].sum()
        return {"foreign_cores_mean": float((w[:, 0] * w[:, 1]).sum() / total),
                "foreign_cores_max": float(w[:, 1].max()),
                "steal_cores_mean": float((w[:, 0] * w[:, 2]).sum() / total),
                "windows": int(len(w))}


# ---------------------------------------------------------------------------------------
# this process and this machine


def _current_niceness() -> int | None:
    """This process's niceness (None where the platform does not say)."""
    try:
        return os.getpriority(os.PRIO_PROCESS, 0)
    except (AttributeError, OSError):
        return None


def machine_fingerprint(results: list[dict] | None = None) -> dict:
    """This machine's fingerprint (``sim.util.fingerprint``) plus the LoadGen version and a hash."""

    threads = 0
    if results:
        threads = results[0].get("harness_config", {}).get("intra_op_threads", 0)
    fp = fingerprint(intra_op_threads=threads, inter_op_threads=1)
    try:
        fp["loadgen"] = metadata.version("mlcommons-loadgen")
    except metadata.PackageNotFoundError:
        fp["loadgen"] = "not installed"
    fp["hash"] = fingerprint_hash(fp)
    return fp
