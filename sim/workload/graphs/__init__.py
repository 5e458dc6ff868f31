"""ONNX graphs of MLPerf workloads, built in code with seeded random weights.

Each builder returns an ``onnx.ModelProto`` with a symbolic batch dimension named
``batch``; random weights time the same as trained ones, so no download is needed.
"""
