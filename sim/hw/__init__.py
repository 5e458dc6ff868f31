"""Hardware profiles and calibrated cost models for accelerators (GPU, ASIC, FPGA, DSP, CPU).

- ``sim.hw.profiles``: device profiles as data (``hw_profiles/*.yaml``), loaded and validated.
- ``sim.hw.names``: accelerator names as written in published results -> profile names.
- ``sim.hw.summaries``: compact per-layer summaries of the built-in workloads (shipped).
- ``sim.hw.precision``: which precision a prediction assumes, and why.
- ``sim.hw.analytic``: the per-layer roofline cost model (a cost object for the simulator).
- ``sim.hw.rows``: a published result row read as a prediction task (never its results).
- ``sim.hw.system_model``: a row and parameters -> SystemSpec, cost, simulated metric.
- ``sim.hw.calibrate``: fitting the parameters (scipy.optimize), per unit and in two stages.
- ``sim.hw.param_vector``: the fitted parameters as one vector (names, log space, bounds).
- ``sim.hw.priors``: priors on them, data-free per device kind or learned across devices.
- ``sim.hw.unit_model``: the model in closed form for all of a unit's rows at once.
- ``sim.hw.calibration``: the fitted result (``Calibration``: parameters, residual corrections).
- ``sim.hw.measurements``: the results CSV and the user's measurements, read as cases and values.
- ``sim.hw.published``: predicting published results (``python -m sim predict-published``).
- ``sim.hw.evaluate``: leave-one-system-out, cross-scenario, unseen products, twin baseline.
- ``sim.hw.local_cpu``: the analytical model against this machine's measured CPU profile.
- ``sim.commands.calibrate``, ``sim.commands.predict_published``: their sub-commands.

docs/hardware.md describes the model and its measured accuracy.
"""
