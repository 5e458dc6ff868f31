"""Where sweep points run: local worker processes (their set-up), a Dask cluster's executor, and
the loop that keeps tasks in flight and hands each finished task's records back. ``run_chunk``
is the task a worker runs (pickled by its module path, ``sim.apps.sweep.executors``)."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Executor, wait

from sim.apps.sweep.metrics import run_point
from sim.apps.sweep.point import describe_point, point_id
from sim.apps.sweep.records import ResultsFile
from sim.errors import InputError


def worker_init(results_fd: int | None = None, results_id: tuple | None = None) -> None:
    """Set up a local worker: it ignores Ctrl-C and dies with the sweep (Linux), so a killed
    sweep leaves no orphans running, and it drops its inherited copy of the results file (a forked child
    would otherwise keep the file's lock alive after the sweep itself is gone; a spawned
    child has no such copy, hence the check that the descriptor is that file)."""
    if results_fd is not None:
        try:
            st = os.fstat(results_fd)
            if (st.st_dev, st.st_ino) == tuple(results_id):
                os.close(results_fd)
        except OSError:
            pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # Ctrl-C is the sweep's to handle, not each worker's
    if sys.platform.startswith("linux"):
        try:
            import ctypes  # noqa: PLC0415 - Linux only (prctl)
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def results_fd_args(results: ResultsFile) -> tuple:
    """``worker_init``'s arguments: the results file's descriptor and its (device, inode)."""
    st = os.fstat(results.fh.fileno())
    return results.fh.fileno(), (st.st_dev, st.st_ino)


def run_chunk(chunk: list[dict]) -> list[dict]:
    """One task: the records of a chunk of points, in order (run on a worker)."""
    return [run_point(p) for p in chunk]


def dask_executor(address: str, timeout_s: float) -> tuple[object, Executor, int]:
    """A client of the running scheduler at ``address``, its executor, and its worker threads."""
    try:
        from distributed import Client  # noqa: PLC0415 - optional extra: dask
    except ImportError:
        raise InputError(f"--dask {address}: dask.distributed is not installed; expected "
                         f"pip install 'mlperf-inference-sim[dask]'") from None
    try:
        client = Client(address, timeout=f"{timeout_s}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else ""
        raise InputError(f"--dask {address}: cannot reach a Dask scheduler within {timeout_s:g} s "
                         f"({type(exc).__name__}: {detail}); expected the address of a running scheduler, "
                         f"e.g. tcp://host:8786") from None
    threads = sum(client.nthreads().values())
    return client, client.get_executor(pure=False), max(1, threads)


def drive(executor: Executor, chunks: list[list[dict]], record: Callable[[dict], None], in_flight: int) -> None:
    """Keep ``in_flight`` tasks submitted; write each finished task's records at once."""
    it = iter(chunks)
    futures: dict = {}

    def fill() -> None:
        while len(futures) < in_flight:
            c = next(it, None)
            if c is None:
                return
            futures[executor.submit(run_chunk, c)] = c

    try:
        fill()
        while futures:
            done, _ = wait(list(futures), return_when=FIRST_COMPLETED)
            for f in done:
                c = futures.pop(f)
                try:
                    recs = f.result()
                except Exception as exc:
                    raise InputError(f"the executor could not run point {point_id(c[0])} ({describe_point(c[0])}): "
                                     f"{type(exc).__name__}: {exc}; expected workers that can import this "
                                     f"package (sim)") from None
                for rec in recs:
                    record(rec)
            fill()
    finally:
        for f in futures:
            f.cancel()
