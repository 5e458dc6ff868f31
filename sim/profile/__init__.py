"""Measured CPU profiles: a model's end-to-end and per-kernel times in onnxruntime on this machine.

- ``schema``: the profile document (``"sim.cpu_profile/1"``): its fields, and the stats
  objects it is made of.
- ``measure``: the onnxruntime measurement: sessions, profiled runs, end-to-end times
  busy and idle.
- ``kernels``: onnxruntime's fused kernels mapped back to the ONNX nodes they cover, and
  per-kernel times aggregated from the profiler's trace.
- ``store``: the cache, one file per model hash and machine fingerprint
  (``load_or_measure``), and a text summary of a profile (``summarise``).

The cost model built from a profile is ``sim.cost.cpu_profile.CpuProfileCost``.
"""
