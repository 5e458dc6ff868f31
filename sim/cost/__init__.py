"""Cost models: how long one batch keeps one accelerator instance busy.

- ``protocol``: the contract every cost model follows (``CostModel`` and its optional
  capabilities), as ``typing.Protocol``s.
- ``synthetic``: fixed, exponential and affine service times (queueing-theory checks,
  what-ifs).
- ``empirical``: service-time tables measured on this machine (busy, after idle gaps).
- ``cpu_profile``: a measured onnxruntime profile (``sim.profile``) as a cost.
- ``speed_trace``: a machine whose speed varies over time, wrapping another model.
- ``resolve``: a description (explicit, system file, workload) turned into one of them,
  with the one per-process cache.

The calibrated device model (``sim.hw.analytic.AnalyticCost``) follows the same protocol.
"""
