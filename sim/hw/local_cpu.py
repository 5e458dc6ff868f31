"""The analytical model against the measured CPU profile of the ``local-cpu`` machine.

``local-cpu`` is the CPU the shipped measurements (``hw_profiles/measured/local-cpu.csv``)
were taken on: a 2-vCPU AMD EPYC Zen 4 virtual machine (``MEASURED_ON``), not necessarily the
machine running the simulator. ``this_machine_differs`` compares /proc/cpuinfo's vendor, CPU
family and model with it and says how, so a report of ``local-cpu`` never passes for this
machine's figures; ``benchmarks/local_cpu_measurements.py`` re-measures the data here.

The measured onnxruntime profile (``sim.profile``) is ground truth on the one device
this project can measure. ``compare`` fits the ``local-cpu`` profile's parameters to the
profile's end-to-end times (every measured batch size of every measured workload) and
then sets the analytical model's per-layer times beside the measured per-kernel times:

- per kernel class (conv, grouped conv, matmul, attention matmul, vector, other): the
  class's total time per batch, analytical vs measured;
- per layer: each MAC or vector node of the original graph against the onnxruntime kernel
  that covers it (a fused Conv+BatchNormalization+ReLU kernel is the Conv's time);
- end to end: in-sample error and leave-one-point-out error across batch sizes, which is
  what says whether the model's batch scaling has the right shape.

Nothing is measured here: the profiles must exist in the cache (``python -m sim profile
resnet50 --batch-sizes 1,2,4,8``); a workload without one is skipped.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from sim.hw import analytic, summaries
from sim.hw import calibrate as cal
from sim.hw import system_model as sm
from sim.hw.rows import Case
from sim.profile import store
from sim.workload import catalog as wl
from sim.workload import layers

PROFILE = "local-cpu"
#: the CPU the shipped local-cpu measurements were taken on (hw_profiles/local-cpu.yaml)
MEASURED_ON = {"vendor_id": "AuthenticAMD", "cpu family": "25", "model": "17", "cpus": 2,
               "label": "2-vCPU AMD EPYC Zen 4 VM (family 25 model 17)"}


def cpu_identity(cpuinfo: str | None = None) -> dict:
    """vendor_id, cpu family and model of the first processor in /proc/cpuinfo ({} where unknown)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
                cpuinfo = fh.read()
        except OSError:
            return {}
    out: dict = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip()
        if sep and key in ("vendor_id", "cpu family", "model") and key not in out:
            out[key] = value.strip()
    return out


def this_machine_differs(cpuinfo: str | None = None, cpus: int | None = None) -> str | None:
    """How this machine's CPU differs from the one ``local-cpu`` was measured on (None: the same
    vendor, family, model and CPU count, or nothing to compare)."""
    import os  # noqa: PLC0415 - the CPU count, only when asked

    here = cpu_identity(cpuinfo)
    if not here:
        return None
    cpus = cpus if cpus is not None else (os.cpu_count() or 0)
    diffs = [f"{k} {here.get(k, '?')} (measured: {MEASURED_ON[k]})" for k in ("vendor_id", "cpu family", "model")
             if here.get(k) != MEASURED_ON[k]]
    if cpus != MEASURED_ON["cpus"]:
        diffs.append(f"{cpus} CPUs (measured: {MEASURED_ON['cpus']})")
    if not diffs:
        return None
    return (f"local-cpu holds the measurements of a {MEASURED_ON['label']}, not of this machine ("
            + ", ".join(diffs) + "); python benchmarks/local_cpu_measurements.py re-measures them here")
WORKLOADS = ("resnet50", "ssd_mobilenet_v1", "bert_base")
CLASSES = ("conv", "gconv", "matmul", "bmm", "vector", "other")


def measured_profiles(workloads=WORKLOADS) -> dict[str, dict]:
    """Cached measured profiles of this machine, by workload (missing ones left out)."""

    out = {}
    for name in workloads:
        w = wl.build(name)
        path = store.profile_path(w)
        if path.is_file():
            out[name] = store.load_profile(path)
    return out


def _case(workload: str, batch: int, index: int) -> Case:
    return Case(index=index, system_key=f"local/{workload}/{batch}", version="local", year=2025.0, submitter="local",
                system="local", accelerator="local", kind="cpu", model=workload, scenario="SingleStream",
                target="singlestream", units="ns", profile=PROFILE, workload=workload, devices=1,
                stack="onnxruntime", precision="fp32", precision_reason="onnxruntime CPU run of the FP32 graph",
                batch=batch)


def fit(profiles_: dict[str, dict]) -> tuple[cal.UnitFit, list[Case], dict[int, float]]:
    cases, values = [], {}
    for w, prof in profiles_.items():
        for key, entry in prof["batches"].items():
            c = _case(w, int(key), len(cases))
            cases.append(c)
            values[c.index] = float(entry["end_to_end"]["clean_busy_ns"]["median"])
    vals = np.array([values[c.index] for c in cases])
    return cal.fit_unit("local-epyc-zen4/onnxruntime", cases, vals, _prior()), cases, values


def _prior() -> cal.Prior:
    """The prior of a CPU unit fitted on measurements alone (``cal.measurement_prior``)."""
    return cal.measurement_prior("cpu")


def _node_classes(workload: str) -> tuple[dict[str, str], list[str]]:
    """kclass of every original node, and the names of the summary's rows in order."""

    w = wl.build(workload)
    table = layers.layer_table(w.model, 1, w.name)
    kinds, order = {}, []
    for r in table.rows:
        if r.op_type in ("Constant", "Shape"):
            continue
        kinds[r.name] = summaries._kclass(r, r.weight_params > 0)[0]
        order.append(r.name)
    return kinds, order


def _measured_by_node(prof_batch: dict, kinds: dict) -> tuple[dict[str, float], dict[str, float]]:
    """Kernel median times keyed by the MAC (or vector) node each kernel covers; per-class totals."""
    per_node, per_class = {}, defaultdict(float)
    for k in prof_batch["kernels"]:
        t = float(k["dur_ns"]["median"]) * 1e-9 * k.get("calls_per_run", 1)
        covered = [n for n in k.get("covers", []) if n in kinds]
        mac = [n for n in covered if kinds[n] in summaries.MAC_KCLASSES]
        vec = [n for n in covered if kinds[n] == "vector"]
        if mac:
            cls = kinds[mac[0]]
            per_node[mac[0]] = per_node.get(mac[0], 0.0) + t
        elif vec:
            cls = "vector"
            per_node[vec[0]] = per_node.get(vec[0], 0.0) + t
        else:
            cls = "other"
        per_class[cls] += t
    return per_node, dict(per_class)


def compare(profiles_: dict[str, dict] | None = None) -> dict:
    """Fit and compare (see the module docstring); a dict of figures."""
    profiles_ = measured_profiles() if profiles_ is None else profiles_
    if not profiles_:
        return {"error": "no measured profile in the cache; run: python -m sim profile resnet50 --batch-sizes 1,2,4,8"}
    unit_fit, cases, values = fit(profiles_)
    p = unit_fit.params
    # leave one measured point out: refit without it, predict it
    loo = []
    for c in cases:
        rest = [d for d in cases if d.index != c.index]
        f = cal.fit_unit(unit_fit.unit, rest, np.array([values[d.index] for d in rest]), cal.default_prior("cpu"),
                         warm=p)
        loo.append(abs(sm.closed_form(c, f.params) / values[c.index] - 1))
    class_err, layer_err = defaultdict(list), defaultdict(list)
    class_rows = []
    for w, prof in profiles_.items():
        kinds, order = _node_classes(w)
        wk = analytic.workload(w)
        s = sm.setup(_case(w, 1, 0))
        mac_names = [n for n in order if kinds[n] in summaries.MAC_KCLASSES]
        vec_names = [n for n in order if kinds[n] == "vector"]
        net = p.net.get(w, 1.0)
        for key, entry in prof["batches"].items():
            b = int(key)
            mac_t, vec_t = analytic.layer_times_s(wk, s.device, "fp32", p.eff, b, latency_mode=True)
            model_node = dict(zip(mac_names, net * mac_t)) | dict(zip(vec_names, net * vec_t))
            meas_node, meas_class = _measured_by_node(entry, kinds)
            model_class = defaultdict(float)
            for n, t in model_node.items():
                model_class[kinds[n]] += t
            model_class["other"] += p.net_batch_us.get(w, p.eff.batch_us) * 1e-6
            for cls in CLASSES:
                m, a = meas_class.get(cls, 0.0), model_class.get(cls, 0.0)
                if m > 0:
                    class_err[cls].append(a / m - 1)
                    class_rows.append((w, b, cls, m, a))
            for n, t in meas_node.items():
                if n in model_node and t > 0:
                    layer_err[kinds[n]].append(abs(model_node[n] / t - 1))
    in_sample = np.abs(np.expm1(unit_fit.in_sample_log_err))
    return {
        "points": len(cases), "params": p.as_dict(),
        "end_to_end_in_sample_median_abs_error": float(np.median(in_sample)),
        "end_to_end_leave_one_out_median_abs_error": float(np.median(loo)),
        "class_total_median_signed_error": {k: float(np.median(v)) for k, v in class_err.items()},
        "class_total_median_abs_error": {k: float(np.median(np.abs(v))) for k, v in class_err.items()},
        "layer_median_abs_error": {k: float(np.median(v)) for k, v in layer_err.items()},
        "layers_compared": {k: len(v) for k, v in layer_err.items()},
        "class_rows": class_rows,
    }


def report(fig: dict) -> str:
    if "error" in fig:
        return fig["error"]
    lines = [f"analytical model vs measured CPU profile ({fig['points']} measured points: workloads x batch sizes)",
             f"  end to end: in-sample median |error| {fig['end_to_end_in_sample_median_abs_error']:.1%}, "
             f"leave-one-point-out {fig['end_to_end_leave_one_out_median_abs_error']:.1%}",
             f"  {'class':8s} {'layers':>7s} {'per-layer median |err|':>23s} {'class total median |err|':>25s} "
             f"{'(signed)':>9s}"]
    for cls in CLASSES:
        if cls in fig["class_total_median_abs_error"] or cls in fig["layer_median_abs_error"]:
            le = fig["layer_median_abs_error"].get(cls)
            lines.append(f"  {cls:8s} {fig['layers_compared'].get(cls, 0):7d} "
                         f"{(f'{le:.1%}' if le is not None else '-'):>23s} "
                         f"{fig['class_total_median_abs_error'].get(cls, math.nan):>25.1%} "
                         f"{fig['class_total_median_signed_error'].get(cls, math.nan):>+9.1%}")
    return "\n".join(lines)
