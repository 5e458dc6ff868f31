"""Workloads: the networks whose inference is simulated.

- ``catalog``: the built-in workloads (``workloads/*.yaml``) by name, or a user's ``.onnx``;
  built models cached by content hash.
- ``graphs``: the ONNX graph builders (seeded random weights, symbolic batch dimension).
- ``layers``: the layer table (shapes, MACs, FLOPs, weight and activation bytes per node).
- ``inputs``: model inputs and random feeds of the right types and ranges.
"""
