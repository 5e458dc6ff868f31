"""Validation: the simulator's predictions against real onnxruntime runs driven by LoadGen.

- ``harness``: a real system under test (onnxruntime sessions on this CPU behind worker
  threads and a batching queue, configured from a ``SystemSpec``) driven by the real
  MLPerf LoadGen (``mlcommons-loadgen``, an optional extra), one scenario per process.
- ``calibrate_cpu``: microbenchmarks of that same SUT code without LoadGen (service
  times back to back and after idle gaps, per batch size) and with LoadGen but no model
  (LoadGen's issue and completion overhead). They give the simulator its inputs; the
  validation runs themselves are never used to fit anything.
- ``compare``: runs each scenario for real and simulated with the same settings and
  seeds and lines up the metrics.
- ``report``: the table, the JSON records, the plots and ``docs/validation.md``.
"""

from __future__ import annotations

from sim.errors import InputError

#: what the Server loads of a validation can be fractions of: the measured Offline samples/s
#: or the real peak VALID Server QPS (``compare.run_validation``'s ``load_basis``)
LOAD_BASES = ("offline", "peak")
#: the one help text of the ``--server-loads-of`` option (``python -m sim validate`` and the report script)
LOAD_BASES_HELP = ("what the Server loads are fractions of: the measured Offline samples/s (default) or the real "
                   "peak VALID Server QPS, searched first (loads above it grow with the run's length)")

INSTALL_HINT = "mlcommons-loadgen is not installed: pip install -e '.[loadgen]'"


def require_loadgen():
    """Import ``mlperf_loadgen`` or raise an ``InputError`` saying how to install it."""
    try:
        import mlperf_loadgen  # noqa: PLC0415 - optional extra
    except ImportError:
        raise InputError(INSTALL_HINT) from None
    return mlperf_loadgen
