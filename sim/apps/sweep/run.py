"""Running a sweep: the grid's points not yet in the results file, on this process, local
processes, a Dask cluster or a given executor, one record appended per point as it finishes."""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path

from sim.apps.sweep.executors import dask_executor, drive, results_fd_args, run_chunk, worker_init
from sim.apps.sweep.grid import Grid, load_grid
from sim.apps.sweep.point import describe_point, point_id
from sim.apps.sweep.progress import ProgressBar, SweepSummary
from sim.apps.sweep.records import ResultsFile
from sim.apps.sweep.system import system_and_cost
from sim.errors import InputError
from sim.hw import whatif


def run_sweep(grid: Grid | str | Path, out: str | Path, *, workers: int | None = None, dask: str | None = None,
              dask_timeout_s: float = 10.0, progress: bool | None = None, chunk: int = 1,
              executor: Executor | None = None) -> SweepSummary:
    """Run the grid's points not yet in ``out``; append one record per point as it finishes.

    ``workers``: local processes (default: the CPU count; 1 runs in this process).
    ``dask``: a Dask scheduler address instead (``dask_timeout_s`` to connect).
    ``progress``: the bar on stderr (default: only when stderr is a terminal).
    ``chunk``: points per task (more amortises the per-task cost of tiny points; a kill
    then loses at most the chunks in flight, never a written record).
    ``executor``: any ``concurrent.futures.Executor`` to run on instead.
    Raises ``InputError`` before writing anything when the grid, the results file or the
    scheduler is unusable.
    """
    if not isinstance(grid, Grid):
        grid = load_grid(grid)
    if workers is not None and workers < 1:
        raise InputError(f"--workers {workers}: expected an integer >= 1")
    if chunk < 1:
        raise InputError(f"chunk {chunk}: expected an integer >= 1")
    client = None
    n_workers = workers or os.cpu_count() or 1
    results = ResultsFile(out)
    own_executor = False
    bar = None
    ok = False
    try:
        finished = results.open()      # a results file that cannot be used is refused before any work
        if dask:
            client, executor, n_workers = dask_executor(dask, dask_timeout_s)
            kind = f"Dask {dask}, {n_workers} workers"
        elif executor is not None:
            kind = type(executor).__name__
        else:
            kind = f"{n_workers} local process{'es' if n_workers > 1 else ''}"
        pending = [p for p, pid in zip(grid.points, grid.ids) if pid not in finished]
        summary = SweepSummary(Path(out), len(grid.points), len(grid.points) - len(pending), 0, executor=kind)
        if progress is None:
            progress = sys.stderr.isatty()
        t0 = time.perf_counter()
        _measure_profiles_first(pending, grid.source)
        if progress:
            bar = ProgressBar(len(grid.points), summary.already_done, label=grid.name)

        def record(rec: dict) -> None:
            results.append(rec)
            summary.ran += 1
            if rec["error"] is not None:
                summary.errors.append(f"{rec['id']} ({describe_point(rec['params'])}): {rec['error']}")
            if bar:
                bar.update(1, note=f"{len(summary.errors)} failed" if summary.errors else "")

        chunks = [pending[i:i + chunk] for i in range(0, len(pending), chunk)]
        if executor is None and n_workers == 1:
            for c in chunks:
                for rec in run_chunk(c):
                    record(rec)
        elif chunks:
            if executor is None:
                executor = ProcessPoolExecutor(max_workers=min(n_workers, len(chunks)), initializer=worker_init,
                                               initargs=results_fd_args(results))
                own_executor = True
            drive(executor, chunks, record, in_flight=max(4, 4 * n_workers))
        summary.elapsed_s = time.perf_counter() - t0
        ok = True
        return summary
    finally:
        if bar:
            bar.close()
        results.close()
        if own_executor:
            executor.shutdown(wait=ok, cancel_futures=not ok)
        if client is not None:
            client.close()


def _measure_profiles_first(points: list[dict], source: str) -> None:
    """Measure each CPU profile the points need once, here, before workers start (they load it)."""

    seen = set()
    if any(isinstance(p.get("device"), str) for p in points):
        whatif.default_calibration()   # fitted (or loaded) once here: workers load the cached fit
    for p in points:
        if isinstance(p.get("device"), str):
            continue
        system, _ = system_and_cost(p, build_cost=False)
        if system.cost is None or system.cost["kind"] == "cpu_profile":
            key = json.dumps([system.cost, p.get("workload"), p.get("small"), system.batching.max_batch],
                             sort_keys=True)
            if key not in seen:
                seen.add(key)
                try:
                    system_and_cost(p)
                except InputError as exc:
                    raise InputError(f"{source}: the CPU profile of point {point_id(p)} ({describe_point(p)}): "
                                     f"{exc}") from None
