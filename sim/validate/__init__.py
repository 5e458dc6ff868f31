"""Validation: the simulator's predictions against real onnxruntime runs driven by LoadGen.

The real side:

- ``config``: what the real system under test runs and is made of (the workload, a
  ``HarnessConfig`` realised from a ``SystemSpec``, refusing what a CPU cannot be);
- ``sut``: that SUT, onnxruntime sessions on this CPU behind worker threads and a batching
  queue;
- ``harness``: the SUT driven by the real MLPerf LoadGen (``mlcommons-loadgen``, an optional
  extra), one scenario per process (``python -m sim.validate.harness``);
- ``process``: the parent's side of those processes (``run_in_subprocess``);
- ``machine``: the CPU other processes use (quiet waits, monitoring during a run), this
  process's niceness, the machine's fingerprint;
- ``calibrate_cpu``: microbenchmarks of that same SUT code, run in turn: without LoadGen
  (``service_times``: service times back to back and after idle gaps, per batch size, and
  under issue traffic), with LoadGen but no model (``loadgen_overhead``: LoadGen's issue
  and completion overhead) and with LoadGen and the model (``loadgen_wakes``: batches
  woken by its Server traffic); the result, ``machine_calibration.MachineCalibration``.
  They give the simulator its inputs; the validation runs themselves are never used to
  fit anything.

The comparison:

- ``experiment``: the plan and the ``Validator``: runs each scenario for real and simulated
  with the same settings and seeds and lines up the metrics (``run_validation``);
- ``real_runs``: the real runs' attempts as kept in their folders, replayed, and what their
  files say;
- ``twin``: each real run's simulated twin;
- ``peak``: the peak VALID Server QPS search, real and simulated;
- ``records``: one record per compared metric (medians of the repeats, errors), the plot data;
- ``report``: the table, the JSON records, the plots and ``docs/validation.md``;
  ``history`` and ``noise_floor``: the reports over time and the spread a perfect model
  would show.
"""

from __future__ import annotations

from sim.errors import InputError

#: what the Server loads of a validation can be fractions of: the measured Offline samples/s
#: or the real peak VALID Server QPS (``experiment.run_validation``'s ``load_basis``)
LOAD_BASES = ("offline", "peak")
#: the one help text of the ``--server-loads-of`` option (``python -m sim validate`` and the report script)
LOAD_BASES_HELP = ("what the Server loads are fractions of: the measured Offline samples/s or the real peak VALID "
                   "Server QPS, searched first (a load above it makes the run's latency grow with its length: "
                   "on a small model in the default set-up the Server sustains far less than Offline)")

INSTALL_HINT = "mlcommons-loadgen is not installed: pip install -e '.[loadgen]'"


def require_loadgen():
    """Import ``mlperf_loadgen`` or raise an ``InputError`` saying how to install it."""
    try:
        import mlperf_loadgen  # noqa: PLC0415 - optional extra
    except ImportError:
        raise InputError(INSTALL_HINT) from None
    return mlperf_loadgen
