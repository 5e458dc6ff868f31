"""mlperf-inference-sim: a discrete-event simulator of ML inference systems.

The package follows one direction of flow: an ONNX model becomes a layer table and a
measured cost profile; LoadGen settings become scenario traffic; traffic runs through a
SimPy model of the system under test; per-query times become LoadGen's metrics and
verdict.

``docs/architecture.md`` draws the layers of ``sim/`` and the three pipelines (simulate,
calibrate hardware, validate), with a reading guide and recipes for adding a cost model, a
workload, a device profile or a command.
"""

__version__ = "0.1.0"
