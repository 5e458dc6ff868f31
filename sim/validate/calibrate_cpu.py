"""Microbenchmarks for the few parameters of a real CPU system the simulator needs
(``calibrate``).

Nothing here looks at a validation run. Three kinds of measurement, each in a fresh process:

- service times of the harness's own SUT code fed by a stand-in for LoadGen, no LoadGen
  (``sim.validate.service_times.measure_service``): busy and after idle gaps per batch
  size, under issue traffic, and the speed probes;
- LoadGen's overhead, LoadGen with a model that only sleeps
  (``sim.validate.loadgen_overhead.measure_loadgen_overhead``);
- batches woken by LoadGen's Server traffic, LoadGen with the model
  (``sim.validate.loadgen_wakes.measure_loadgen_wakes``).

``calibrate`` runs them and returns a ``MachineCalibration``
(``sim.validate.machine_calibration``): an ``EmpiricalCost`` and the per-scenario host
overheads, which ``system_for`` puts into the simulated ``SystemSpec``.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from sim.cost.empirical import EmpiricalCost
from sim.util.fingerprint import fingerprint
from sim.validate.config import HarnessConfig, load_workload
from sim.validate.loadgen_overhead import measure_loadgen_overhead
from sim.validate.loadgen_wakes import WAKE_S, measure_loadgen_wakes
from sim.validate.machine_calibration import MachineCalibration
from sim.validate.process import run_in_subprocess


def calibrate(cfg: HarnessConfig, outdir: Path, mlperf_model: str, quick: bool = False, seed: int = 0,
              timeout_s: float = 1800.0, disturbed_cores: float = math.inf, quiet_wait_s: float = 0.0,
              retries: int = 0, nice: int = 0) -> MachineCalibration:
    """Service-time microbenchmarks and LoadGen overhead runs; writes ``calibration.json``.

    A measurement during which other processes used more than ``disturbed_cores`` is made
    again (up to ``retries`` times, after waiting up to ``quiet_wait_s`` for quiet).
    """
    outdir = Path(outdir)
    t0 = time.perf_counter()
    spec = {"config": cfg.to_dict(), "seed": seed, "seconds_scale": 0.3 if quick else 1.0,
            "result_file": "service.json", "disturbed_cores": disturbed_cores, "quiet_wait_s": quiet_wait_s,
            "retries": retries}
    service = run_in_subprocess("sim.validate.service_times", spec, outdir / "service", timeout_s, nice=nice)
    cost = EmpiricalCost({(e["batch"], e["concurrency"]): e["ns"] for e in service["busy"]},
                         {(e["batch"], e["gap_ns"]): e["ns"] for e in service["idle"]},
                         source=f"service times of {cfg.workload} measured on this machine")
    overhead = measure_loadgen_overhead(cfg, cost, outdir, mlperf_model, seconds=1.0 if quick else 2.0,
                                        disturbed_cores=disturbed_cores, quiet_wait_s=quiet_wait_s, retries=retries,
                                        nice=nice)
    wakes = measure_loadgen_wakes(cfg, cost, outdir, mlperf_model, seconds=WAKE_S / 6 if quick else WAKE_S,
                                  disturbed_cores=disturbed_cores, quiet_wait_s=quiet_wait_s, retries=retries,
                                  nice=nice)
    w = load_workload(cfg.workload, cfg.small)
    probe = service.get("probe_ns") or []
    probe_max = service.get("probe_max_ns") or []
    cal = MachineCalibration(cfg, w.sha256, cost, overhead, {"service": service["machine"]},
                      time.perf_counter() - t0,
                      fingerprint(intra_op_threads=cfg.intra_op_threads, inter_op_threads=1),
                      float(np.median(probe)) if probe else None, list(service.get("traffic") or []),
                      float(np.median(probe_max)) if probe_max else None, wakes=wakes)
    (outdir / "calibration.json").write_text(json.dumps(cal.to_dict()) + "\n")
    return cal
