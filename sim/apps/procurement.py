"""The main job: a procurement comparison for ResNet-50 across the bundled devices.

``python -m sim`` (or ``python -m sim procure``) predicts, for one of each device in
``DEVICES`` (the GPUs, ASICs, FPGAs, DSPs and server CPUs of ``hw_profiles/`` plus the
measured CPU ``local-cpu``: the CPU the shipped measurements were taken on, named when it is not
this machine's), what an MLPerf Inference closed submission would report in the current
round: Offline and Server samples/s, SingleStream p90 and MultiStream p99 latency, and
throughput per watt (``sim.apps.compare``, through the calibrated hardware model and the
simulator). Prints the table, writes it as CSV and Markdown, and draws:

- ``devices``: throughput and SingleStream latency side by side;
- ``power_vs_capacity``: TDP against Offline samples/s with the Pareto front;
- ``server_p99_vs_qps``: Server p99 latency against load for a few devices, simulated,
  with the 15 ms bound and each device's peak marked.

The first run fits the hardware model to the published results (about a minute); later
runs reuse the fit.
"""

from __future__ import annotations

import time
from pathlib import Path

from sim.apps import compare
from sim.apps import plan as planner
from sim.hw import published, whatif
from sim.run import simulate

DEVICES = ("t4", "a2", "a10", "a30", "a40", "a100-pcie", "a100-sxm", "l4", "l40", "l40s", "h100-pcie", "h100-sxm",
           "h200-sxm", "cloud-ai-100-standard", "cloud-ai-100-pro", "cloud-ai-100-ultra", "goya", "vck5000", "u250",
           "hexagon-855-hvx", "hexagon-x-elite", "xeon-8380", "xeon-8480", "xeon-8592", "local-cpu")
CURVE_DEVICES = ("l4", "a100-sxm", "h100-sxm")
CURVE_LOADS = (0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0, 1.05, 1.1)
CURVE_SECONDS = 20                 # simulated seconds per point of the Server curves


def server_curve(device: str, workload: str, calib, peak_qps: float) -> list[tuple]:
    """(qps, p99_ns, valid, 0, why) of simulated Server runs of one device around its peak (a run
    above the device's calibrated sustained capacity counts as INVALID, as in ``sim.apps.plan``;
    ``why`` says so where the run's own p99 is under the bound, else is empty)."""

    target = planner.Target("Server", qps=peak_qps, headroom=0.0)
    dev = planner.HwDevice(device, workload, target, calib)
    system, cost, extra = dev.system(1, 1.0, target)
    capacity = extra["capacity_qps"]
    out = []
    for load in CURVE_LOADS:
        qps = load * peak_qps
        r = simulate("Server", workload=None, mlperf_model=dev.mlperf_model, system=system, cost=cost,
                     overrides={"server_target_qps": qps, "server_target_latency_ns": int(dev.bound_ns),
                                "min_duration_ns": CURVE_SECONDS * 10 ** 9, "min_query_count": 1})
        # above the calibrated sustained capacity the model calls a run INVALID, whatever a
        # short simulated run's p99 (sim.hw.system_model.server_capacity)
        p99 = r.metrics.sample_latency.percentiles_ns["99.00"]
        valid = bool(r.metrics.valid) and qps <= capacity
        why = ("above the calibrated sustained capacity, though the short run's p99 is under the bound"
               if not valid and qps > capacity and p99 <= dev.bound_ns else "")
        out.append((qps, p99, valid, 0, why))
    return out


def fitted(row) -> bool:
    """Whether a comparison row's figures rest on data of its own chip (a fit), not priors only."""
    return " fitted on " in row.source


def main(workload: str = "resnet50", out_dir: str = "out/procurement", devices=DEVICES, curves=CURVE_DEVICES) -> int:
    from sim.apps import plots  # noqa: PLC0415 - loads matplotlib: kept out of `python -m sim --help`
    from sim.util import progress  # noqa: PLC0415 - only for the main job

    t0 = time.perf_counter()
    print(f"Procurement comparison: {workload}, one of each of {len(devices)} devices, MLPerf {whatif.ROUND} rules; "
          f"each device simulated with the hardware model calibrated on published MLPerf results (sim.hw)",
          flush=True)
    with progress.stage("fitting the hardware model to published MLPerf results (cached after the first run)",
                        estimate_s=60):
        calib = published.calibration_from()
    with progress.stage(f"predicting {len(devices)} devices in the four scenarios"):
        rows = compare.compare(workload, list(devices), 1, calib)
    print()
    print(terminal_table(rows))
    out = Path(out_dir)
    written = compare.write(rows, str(out / "comparison"))
    from sim.apps.llm_compare import main_job_table  # noqa: PLC0415 - the LLM engine, only in the main job

    with progress.stage("simulating Llama-2-70B on a few devices"):
        llm_table = main_job_table(str(out))
    print()
    print(llm_table, end="")
    entries = [(r.device, r.kind, r.values.get("offline_samples_per_s"), r.values.get("server_samples_per_s"),
                (r.values.get("singlestream_p90_ns") or 0) / 1e6 or None) for r in rows]
    written += plots.save_figure(plots.device_comparison(entries, title=f"{workload}: one device each (predicted)"),
                                 out / "devices")
    power = [(r.device, r.tdp_w, r.values["offline_samples_per_s"]) for r in rows
             if r.tdp_w and r.values.get("offline_samples_per_s")]
    unfitted = [r.device for r in rows if not fitted(r)]
    written += plots.save_figure(plots.cost_vs_capacity(power, cost_unit="W, TDP", capacity_unit="Offline samples/s",
                                                        title=f"{workload}: power against capacity",
                                                        unfitted=unfitted,
                                                        unfitted_note="no fitted data, priors only", log=True),
                                 out / "power_vs_capacity")
    by_name = {r.device: r for r in rows}
    series, peaks = {}, {}
    with progress.task("simulating Server curves", total=len(curves), unit="devices") as task:
        for d in curves:
            peak = by_name.get(d) and by_name[d].values.get("server_samples_per_s")
            if peak:
                series[d], peaks[d] = server_curve(d, workload, calib, peak), peak
            task.advance(note=d)
    if series:
        bound = whatif.server_bound_ns(workload)
        title = f"{workload} Server: p99 against load ({CURVE_SECONDS} s simulated per point)"
        written += plots.save_figure(plots.server_p99_vs_qps(series, bound_ns=bound, peak_qps=peaks, title=title),
                                     out / "server_p99_vs_qps")
    notes = [f"  {r.device}: {k.replace('_', ' ')}: {st}" for r in rows for k, st in r.status.items() if st != "ok"]
    if notes:
        print("Missing values:")
        print("\n".join(notes))
    print()
    print("Predicted by the hardware model calibrated on published MLPerf results, through the simulator; "
          "accuracy in docs/hardware.md. Devices without a public price have no perf/$ column value.")
    if unfitted:
        print(f"No fitted data (priors learned from other devices only): {', '.join(unfitted)}.")
    if any(r.device == "local-cpu" for r in rows):
        from sim.hw.local_cpu import MEASURED_ON, this_machine_differs  # noqa: PLC0415 - reads /proc/cpuinfo

        print(f"local-cpu: {this_machine_differs() or 'measured on this machine: ' + MEASURED_ON['label']}.")
    fpgas = [r.device for r in rows if r.kind == "fpga"]
    if fpgas:
        print(f"FPGAs ({', '.join(fpgas)}): the figures are those of the design the calibration rows ran (one "
              f"submitter's each); another design on the same card can differ many-fold (docs/figures.md).")
    print(f"wrote {len(written)} files under {out}/ (comparison.csv, comparison.md, devices, power_vs_capacity, "
          f"server_p99_vs_qps as PNG and SVG)  [{time.perf_counter() - t0:.1f} s]")
    return 0


def terminal_table(rows) -> str:
    head = f"{'device':<22} {'kind':<5} {'prec':<5} {'Offline/s':>10} {'Server/s':>10} {'SS p90 ms':>10} " \
           f"{'MS p99 ms':>10} {'per W':>7}  parameters"
    lines = [head, "-" * len(head)]
    for r in rows:
        v = r.values

        def num(key, scale=1.0, fmt="{:,.0f}"):
            x = v.get(key)
            return "-" if x is None else fmt.format(x * scale)
        per_w = r.per_watt()
        src = r.source.split(":")[0] if "prior" in r.source else r.source.split(" (")[0]
        server = num('server_samples_per_s') + ("*" if r.server_uncapped is not None else "")
        lines.append(f"{r.device:<22} {r.kind:<5} {r.precision:<5} {num('offline_samples_per_s'):>10} "
                     f"{server:>10} {num('singlestream_p90_ns', 1e-6, '{:.3f}'):>10} "
                     f"{num('multistream_p99_ns', 1e-6, '{:.3f}'):>10} "
                     f"{'-' if per_w is None else f'{per_w:.1f}':>7}  {src}")
    if any(r.server_uncapped is not None for r in rows):
        lines.append("* Server capped at the Offline prediction: the calibration's Server correction for this "
                     "product said more (see the source column of comparison.csv)")
    return "\n".join(lines)
