"""What users ask the simulator, built on ``sim.run`` and ``sim.hw``:

- ``compare``: devices side by side on one workload (the calibrated hardware model);
- ``procurement``: the main job, a comparison across the bundled devices with plots;
- ``plan``: the smallest system per device that meets a target, ranked (capacity planning);
- ``sweep``: grids of what-ifs run in parallel, resumable;
- ``peak``: the peak VALID Server QPS and each scenario's metric by simulation;
- ``plots``, ``trace``: figures and Chrome traces of runs; ``demo``: this CPU in four scenarios.
"""
