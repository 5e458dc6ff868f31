"""Hardware profiles and calibrated cost models for accelerators (GPU, ASIC, FPGA, DSP, CPU).

- ``sim.hw.profiles``: device profiles as data (``hw_profiles/*.yaml``), loaded and validated.
- ``sim.hw.names``: accelerator names as written in published results -> profile names.
- ``sim.hw.summaries``: compact per-layer summaries of the built-in workloads (shipped).
- ``sim.hw.precision``: which precision a prediction assumes, and why.
- ``sim.hw.analytic``: the per-layer roofline cost model (a cost object for the simulator).
- ``sim.hw.calibrate``: fitting a device's efficiency parameters (scipy.optimize).
- ``sim.hw.published``: predicting published MLPerf results through the simulator.
"""
