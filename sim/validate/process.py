"""Each measurement in its own process: the parent's side.

``run_in_subprocess(module, spec, outdir, ...)`` writes ``spec.json`` into the run's folder,
starts ``python -m <module> spec.json`` there (the repository on ``PYTHONPATH``, with the
niceness asked for), keeps its stdout and stderr and returns the JSON result it leaves in the
folder. The children are ``sim.validate.harness`` (one LoadGen run: LoadGen reads its
embedded mlperf.conf once per process, so one scenario per process) and
``sim.validate.calibrate_cpu`` (the service-time microbenchmarks).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from sim.errors import InputError
from sim.paths import REPO_ROOT


def jsonable(x):
    """``json.dumps``'s ``default``: numpy scalars and arrays as numbers and lists, anything else as text."""
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def _niceness(nice: int):
    """A ``preexec_fn`` that changes the child's scheduling priority (``nice`` < 0 needs privileges)."""
    def apply():
        try:
            os.nice(nice)
        except OSError:
            pass                                     # not permitted: run at the normal priority
    return apply if nice else None


def run_in_subprocess(module: str, spec: dict, outdir: Path, timeout_s: float, nice: int = 0) -> dict:
    """Run ``python -m <module> <spec.json>`` and return the JSON it leaves in ``outdir``.

    ``nice``: the child's niceness change (e.g. -10: other processes on a shared machine
    take less CPU from the measurement; refused silently without the privilege, and the
    child records the niceness it really ran at).
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    spec_path = outdir / "spec.json"
    spec_path.write_text(json.dumps(spec, indent=1, default=jsonable) + "\n")
    try:
        proc = subprocess.run([sys.executable, "-m", module, str(spec_path)], capture_output=True, text=True,
                              timeout=timeout_s, env=child_env(), cwd=str(outdir), preexec_fn=_niceness(nice))
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{module} in {outdir} did not finish within {timeout_s:.0f} s") from None
    (outdir / "stdout.txt").write_text(proc.stdout)
    (outdir / "stderr.txt").write_text(proc.stderr)
    if proc.returncode == 2 and proc.stderr.strip().splitlines()[-1:] and \
            proc.stderr.strip().splitlines()[-1].startswith("error: "):
        raise InputError(proc.stderr.strip().splitlines()[-1][len("error: "):])
    if proc.returncode != 0:
        raise RuntimeError(f"{module} failed (exit {proc.returncode}) in {outdir}:\n{proc.stderr[-3000:]}")
    result_name = spec.get("result_file", "harness.json")
    return json.loads((outdir / result_name).read_text())
