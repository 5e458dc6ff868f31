"""Accelerators side by side on an LLM benchmark: tokens/s per device, per dollar and per watt.

``python -m sim compare --workload llama2-70b --devices h100-sxm,h200-sxm,b200,mi300x`` puts each
device in one node (8 devices unless ``--count`` says otherwise), picks the tensor-parallel
degree at which the model and a full batch of KV fit (``node_layout``), and simulates it:

- **Offline tokens/s**: one simulated MLPerf Offline run (LoadGen's settings for the benchmark);
- **Server tokens/s**: the highest Server QPS whose run meets the benchmark's TTFT and TPOT
  limits (``sim.run_llm.peak_llm_qps``, short trials of ``SERVER_TRIAL_S`` simulated seconds),
  as the completed tokens/s of that run;
- each divided by the node's devices, by its price (where the device profile has a public one,
  or ``--price`` gives it; the others are listed apart) and by its TDP watts.

The device comes from ``sim.cost.llm_device`` (datasheet figures) or, for the others, from its
``hw_profiles/`` profile (peaks per precision, HBM bandwidth and capacity, scale-up link). The
step cost is the roofline of ``sim.cost.llm_roofline``; where a calibration on published LLM
results exists for the device (``sim.hw.llm_calibrate``), its fitted efficiencies replace the
datasheet defaults, and every row says which it used (``Resolved.calibration``).

Precision: the weights and KV cache in FP8 on devices with FP8 units (what most published
llama2-70b results run), BF16 otherwise; ``--precision`` overrides.

A device that cannot serve LLMs here is a row with ``status = unsupported: reason`` (no profile,
not an accelerator, no memory capacity published), never a guess.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from sim.cost.llm_device import DEVICES as DATASHEET_DEVICES
from sim.cost.llm_device import LLMDevice
from sim.cost.llm_roofline import RooflineParams
from sim.errors import InputError
from sim.util import atomic
from sim.workload import llm as llm_workloads

NODE_DEVICES = 8                    # one scale-up node (HGX / OAM platforms)
TP_DEGREES = (1, 2, 4, 8)
SERVER_TRIAL_S = 120.0              # simulated seconds of one Server peak-search trial
TRIAL_SAMPLES = 2048                # loaded sample set of a short trial (equal issue: whole passes)
DEFAULT_PRECISION = "fp8"           # where the device has FP8 units; BF16 otherwise
LLM_KINDS = ("gpu", "asic")         # profile kinds an LLM engine is modelled on


class Unsupported(Exception):
    """A device this comparison cannot model, with the reason (shown as ``unsupported: reason``)."""


@dataclass(frozen=True)
class Resolved:
    """A device as the LLM tools see it: the step cost's figures, power, price and calibration."""
    name: str
    device: LLMDevice
    tdp_w: float | None
    price_usd: float | None
    price_source: str
    params: RooflineParams
    calibration: str                 # "calibrated on N published rows (...)" or "datasheet figures, uncalibrated"
    has_link: bool = True
    notes: tuple = field(default_factory=tuple)


_FIT: dict = {}


def _recorded_fit():
    """The recorded LLM calibration (``sim.hw.llm_published.FITTED_FILE``), or None when there is
    none: these tools never fit on the fly (a fit takes minutes)."""
    if "cal" not in _FIT:
        from sim.hw import llm_published  # noqa: PLC0415 - the calibration, only when a device is resolved

        _FIT["cal"] = llm_published.read_fitted() if llm_published.FITTED_FILE.is_file() else None
        _FIT["file"] = llm_published.FITTED_FILE.name
    return _FIT["cal"]


def _calibrated(name: str, stack: str | None = None) -> tuple[RooflineParams | None, str]:
    """The fitted roofline parameters of device ``name`` run by ``stack`` (default: the stack with
    the most published rows for it) from the recorded calibration (``sim.hw.llm_calibrate``):
    (params, "calibrated on N published rows (device/stack)"); a device without rows of its own
    takes the prior the calibration learned from the other devices, and says so; (None, reason)
    when there is no recorded calibration."""
    from sim.hw import llm_calibrate  # noqa: PLC0415 - the calibration, only when a device is resolved

    cal = _recorded_fit()
    if cal is None:
        return None, "no recorded LLM calibration"
    units = sorted((len(cal.rows.get(u, [])), u) for u in cal.params if u.split("/")[0] == name
                   and (stack is None or u.split("/", 1)[1] == stack))
    if units:
        n, unit = units[-1]
        params = cal.params[unit]
        how = f"calibrated on {n} published rows ({unit}, {_FIT['file']})"
    else:
        unit = f"{name}/{stack or 'any'}"
        params, src = cal.params_for(unit)
        how = f"calibration prior, 0 published rows of its own ({src.split(': ', 1)[-1]}; {_FIT['file']})"
    return llm_calibrate.roofline_params(params), how


def resolve(name: str, prices: dict | None = None, stack: str | None = None) -> Resolved:
    """The LLM view of device ``name`` (the module docstring); ``Unsupported`` with the reason."""
    from sim.hw import profiles  # noqa: PLC0415 - reads hw_profiles/ only when a device is asked for

    prices = prices or {}
    try:
        prof = profiles.get(name)
    except InputError:
        if name not in DATASHEET_DEVICES:
            known = sorted(set(DATASHEET_DEVICES) | {n for n in profiles.names()
                                                     if profiles.get(n).kind in LLM_KINDS})
            raise Unsupported(f"no device profile {name!r} in hw_profiles/; expected one of "
                              f"{', '.join(known)}") from None
        prof = None
    notes = []
    if name in DATASHEET_DEVICES:
        dev = DATASHEET_DEVICES[name]
    else:
        if prof.kind not in LLM_KINDS:
            raise Unsupported(f"{name} is a {prof.kind}: the LLM step cost models GPUs and accelerators only")
        if not prof.memory_capacity_gb:
            raise Unsupported(f"{name}: its profile publishes no memory capacity (memory_capacity_gb), which the KV "
                              f"cache is derived from")
        peaks = {p: v * 1e12 for p, v in prof.peak_tops.items()}
        if "bf16" not in peaks and "fp16" in peaks:
            peaks["bf16"] = peaks["fp16"]
        if "bf16" not in peaks:
            raise Unsupported(f"{name}: its profile publishes no BF16/FP16 peak (has {sorted(prof.peak_tops)})")
        link = prof.scale_up_link_gbps
        if link is None and prof.host_link_gbps:
            link = prof.host_link_gbps
            notes.append(f"no scale-up link: tensor parallelism over {prof.host_link_name} "
                         f"({prof.host_link_gbps:g} GB/s)")
        if link is None:
            notes.append("no device-to-device link published: TP1 only")
        # without a link, TP1 only (``has_link``); the roofline then moves no activations
        dev = LLMDevice(name, peaks, prof.memory_bandwidth_gbps * 1e9, prof.memory_capacity_gb * 1e9,
                        link * 1e9 if link else math.inf, source=f"{prof.path or name}: {prof.description}")
    params, calib = _calibrated(name, stack)
    if params is None:
        params, calib = RooflineParams(), f"datasheet figures, uncalibrated ({calib}: sim.cost.llm_roofline defaults)"
    tdp = prof.tdp_w if prof is not None else None
    price, psrc = (prof.price_usd, "profile") if prof is not None and prof.price_usd else (None, "")
    if name in prices:
        price, psrc = prices[name], "--price"
    return Resolved(name, dev, tdp, price, psrc, params, calib, has_link=math.isfinite(dev.link_bandwidth_Bps),
                    notes=tuple(notes))


def precision_for(dev: LLMDevice, asked: str | None) -> str:
    """The weights' and KV cache's precision (the module docstring)."""
    if asked:
        if asked not in llm_workloads.PRECISION_BYTES:
            raise InputError(f"--precision {asked!r}: expected one of {sorted(llm_workloads.PRECISION_BYTES)}")
        return asked
    return DEFAULT_PRECISION if DEFAULT_PRECISION in dev.peak_flops else "bf16"


def system_for(res: Resolved, model, precision: str, tp: int, replicas: int, pp: int = 1,
               max_seqs: int | None = None):
    """An ``LLMSystem`` of ``replicas`` copies of TP ``tp`` x PP ``pp`` on the resolved device."""
    from sim.run_llm import DEFAULT_MAX_SEQS, LLMSystem  # noqa: PLC0415 - the LLM engine, only when simulating

    return LLMSystem(name=f"{replicas * tp * pp} x {res.name}", device=res.device, tp=tp, pp=pp, replicas=replicas,
                     max_seqs=max_seqs or DEFAULT_MAX_SEQS, precision=precision, kv_precision=precision,
                     roofline=res.params, source=f"{res.name} ({res.calibration})")


def fits(system, workload) -> tuple[bool, int]:
    """(whether one replica holds the weights and the dataset's longest sequence, its KV tokens)."""
    try:
        tokens = system.kv_blocks_for(workload.model) * system.block_size
    except InputError:
        return False, 0
    longest = workload.dataset.max_total() if workload.dataset is not None else workload.model.max_context
    return tokens >= longest, tokens


def node_layout(res: Resolved, workload, precision: str, node: int = NODE_DEVICES):
    """The node's system: the smallest TP (dividing ``node``) whose replica's KV cache holds a full
    batch of mean-length sequences, else the largest TP that fits at all; ``Unsupported`` when
    none does."""
    ds = workload.dataset
    mean_len = (ds.input.mean + ds.output.mean) if ds is not None and ds.input.kind != "csv" else 2048.0
    fitting = []
    for tp in TP_DEGREES:
        if node % tp or (tp > 1 and not res.has_link):
            continue
        s = system_for(res, workload.model, precision, tp, node // tp)
        ok, tokens = fits(s, workload)
        if ok:
            fitting.append((tokens >= s.max_seqs * mean_len, s))
    if not fitting:
        gb = replace(workload.model, precision=precision).weight_bytes() / 1e9
        raise Unsupported(f"{workload.name} in {precision} ({gb:.0f} GB of weights) does not fit a node of {node} x "
                          f"{res.name} ({res.device.memory_bytes / 1e9:.0f} GB each) at any TP degree")
    return next((s for full, s in fitting if full), fitting[-1][1])


def short_overrides(seconds: float = SERVER_TRIAL_S, samples: int = TRIAL_SAMPLES) -> dict:
    return {"min_duration_ns": round(seconds * 1e9), "min_query_count": 1, "performance_sample_count_override": samples}


@dataclass
class LLMRow:
    device: str
    status: str = "ok"
    devices: int = 0
    layout: str = ""
    precision: str = ""
    offline_tokens_per_s: float | None = None
    server_tokens_per_s: float | None = None
    server_qps: float | None = None
    tdp_w: float | None = None
    price_usd: float | None = None
    calibration: str = ""
    notes: list = field(default_factory=list)

    def per(self, value: float | None, what: str) -> float | None:
        if value is None or not self.devices:
            return None
        if what == "device":
            return value / self.devices
        if what == "watt":
            return value / (self.tdp_w * self.devices) if self.tdp_w else None
        if what == "usd":
            return value / (self.price_usd * self.devices) if self.price_usd else None
        raise ValueError(what)


def compare_llm(workload: str, devices: list[str], node: int = NODE_DEVICES, *, precision: str | None = None,
                prices: dict | None = None, server: bool = True, offline_samples: int | None = None,
                log=None) -> list[LLMRow]:
    """One row per device (the module docstring). ``offline_samples``: a shorter Offline run over a
    loaded set of that many samples (the main job's); ``server=False`` skips the Server search."""
    from sim.run_llm import peak_llm_qps, simulate_llm_run  # noqa: PLC0415 - the LLM engine, only when simulating

    wl = llm_workloads.load(workload)
    rows = []
    for name in devices:
        row = LLMRow(name)
        rows.append(row)
        try:
            res = resolve(name, prices)
            prec = precision_for(res.device, precision)
            system = node_layout(res, wl, prec, node)
        except Unsupported as e:
            row.status = f"unsupported: {e}"
            continue
        row.devices, row.precision, row.tdp_w, row.price_usd = system.devices, prec, res.tdp_w, res.price_usd
        row.layout = f"{system.replicas} x TP{system.tp}"
        row.calibration = res.calibration
        row.notes += list(res.notes)
        over = {} if offline_samples is None else {**short_overrides(0.001, offline_samples)}
        off = simulate_llm_run("Offline", wl, system=system, overrides=over)
        row.offline_tokens_per_s = off.metrics.tokens_per_second
        if server:
            best = {}

            def keep(r, best=best):
                m = r.metrics
                if m.valid and r.settings.server_target_qps >= best.get("qps", 0.0):
                    best.update(qps=r.settings.server_target_qps, tokens=m.tokens_per_second)

            peak = peak_llm_qps(wl, system=system, overrides=short_overrides(), rel_tol=0.02, repeats=1,
                                on_trial=keep)
            if peak.peak_qps and best:
                row.server_qps, row.server_tokens_per_s = peak.peak_qps, best["tokens"]
            else:
                row.notes.append(f"no Server QPS meets the limits: {peak.reason}")
        if log:
            log(name)
    return rows


def _fmt(v: float | None, spec: str = ",.0f") -> str:
    return "-" if v is None or not math.isfinite(v) else format(v, spec)


def to_markdown(rows: list[LLMRow], workload: str, server: bool = True) -> str:
    head = ["device", "node", "precision", "Offline tokens/s", "Offline per device", "Offline per kW (TDP)",
            "Offline per $1k"]
    if server:
        head[4:4] = ["Server tokens/s", "Server QPS"]
    lines = [f"{workload}: one node per device, simulated MLPerf runs (Offline"
             + (", Server peak at the benchmark's TTFT/TPOT limits)" if server else ")"), "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if r.status != "ok":
            continue
        cells = [r.device, f"{r.devices} ({r.layout})", r.precision, _fmt(r.offline_tokens_per_s)]
        if server:
            cells += [_fmt(r.server_tokens_per_s), _fmt(r.server_qps, ".1f")]
        cells += [_fmt(r.per(r.offline_tokens_per_s, "device")),
                  _fmt(None if r.per(r.offline_tokens_per_s, "watt") is None else
                       1000 * r.per(r.offline_tokens_per_s, "watt"), ",.1f"),
                  _fmt(None if r.per(r.offline_tokens_per_s, "usd") is None else
                       1000 * r.per(r.offline_tokens_per_s, "usd"), ",.2f")]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    no_price = [r.device for r in rows if r.status == "ok" and not r.price_usd]
    if no_price:
        lines.append(f"No public price (per $ left out; give --price DEVICE=USD): {', '.join(no_price)}.")
    for r in rows:
        if r.status != "ok":
            lines.append(f"- {r.device}: {r.status}")
        else:
            lines.append(f"- {r.device}: {r.calibration}" + "".join(f"; {n}" for n in r.notes))
    return "\n".join(lines) + "\n"


CSV_COLUMNS = ("device", "status", "devices", "layout", "precision", "offline_tokens_per_s", "server_tokens_per_s",
               "server_qps", "offline_tokens_per_s_per_device", "offline_tokens_per_s_per_watt",
               "offline_tokens_per_s_per_usd", "tdp_w", "price_usd", "calibration")


def to_csv(rows: list[LLMRow]) -> str:
    import csv  # noqa: PLC0415 - only when writing
    import io  # noqa: PLC0415

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        def g(v):
            return "" if v is None else f"{v:.6g}"
        w.writerow({"device": r.device, "status": r.status, "devices": r.devices or "", "layout": r.layout,
                    "precision": r.precision, "offline_tokens_per_s": g(r.offline_tokens_per_s),
                    "server_tokens_per_s": g(r.server_tokens_per_s), "server_qps": g(r.server_qps),
                    "offline_tokens_per_s_per_device": g(r.per(r.offline_tokens_per_s, "device")),
                    "offline_tokens_per_s_per_watt": g(r.per(r.offline_tokens_per_s, "watt")),
                    "offline_tokens_per_s_per_usd": g(r.per(r.offline_tokens_per_s, "usd")),
                    "tdp_w": g(r.tdp_w), "price_usd": g(r.price_usd), "calibration": r.calibration})
    return buf.getvalue()


def write(rows: list[LLMRow], workload: str, prefix: str, server: bool = True) -> list:
    return [atomic.write_text(prefix + ".csv", to_csv(rows)),
            atomic.write_text(prefix + ".md", to_markdown(rows, workload, server))]


#: The main job's LLM table: a few devices, short Offline runs (a few seconds in all).
MAIN_JOB_WORKLOAD = "llama2-70b"
MAIN_JOB_DEVICES = ("h100-sxm", "h200-sxm", "b200", "mi300x")
MAIN_JOB_SAMPLES = 8192


def main_job_table(out_dir: str | None = None) -> str:
    """The Llama-2-70B table ``python -m sim`` prints after the ResNet-50 one: Offline tokens/s of
    one node per device from runs over ``MAIN_JOB_SAMPLES`` samples (not the MLPerf-length run,
    whose 24,576 x 3 samples take seconds per device; ``python -m sim compare --workload llama2-70b``
    runs those and the Server search)."""
    rows = compare_llm(MAIN_JOB_WORKLOAD, list(MAIN_JOB_DEVICES), server=False, offline_samples=MAIN_JOB_SAMPLES)
    text = to_markdown(rows, MAIN_JOB_WORKLOAD, server=False).replace(
        "simulated MLPerf runs (Offline)", f"simulated Offline runs of {MAIN_JOB_SAMPLES:,} samples")
    if out_dir:
        from pathlib import Path  # noqa: PLC0415

        write(rows, MAIN_JOB_WORKLOAD, str(Path(out_dir) / "llm_comparison"), server=False)
    return text
