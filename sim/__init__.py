"""mlperf-inference-sim: a discrete-event simulator of ML inference systems.

The package follows one direction of flow: an ONNX model becomes a layer table and a
measured cost profile; LoadGen settings become scenario traffic; traffic runs through a
SimPy model of the system under test; per-query times become LoadGen's metrics and
verdict.
"""

__version__ = "0.1.0"
