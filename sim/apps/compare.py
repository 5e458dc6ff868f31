"""Procurement comparison: devices side by side on one workload.

For each device (a profile name in ``hw_profiles/``) and count, the calibrated hardware
model predicts what an MLPerf submission of that system would report in the current round
(v5.1 rules), with the software of the device's most recent published round
(``software_round``): Offline samples/s, Server samples/s at the model's latency bound,
SingleStream p90 and MultiStream p99 latency, each through the simulator
(``sim.hw.published``). Throughput per dollar and per watt use the profile's price and TDP
where it has them. Every row says where its numbers come from (fitted parameters of the
device's chip, or priors learned from other devices) and the precision assumed.

A device the model does not cover gets ``unsupported: <reason>`` and no numbers.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from sim.util import atomic
from sim.errors import InputError

ROUND = "v5.1"
MODELS = {"resnet50": "resnet50", "ssd_mobilenet_v1": "ssd-mobilenet", "ssd_resnet34": "ssd-resnet34",
          "retinanet": "retinanet", "bert_large": "bert-99"}
SERVER_BOUND_NS = {"resnet50": 15_000_000, "ssd-mobilenet": 10_000_000, "ssd-resnet34": 100_000_000,
                   "retinanet": 100_000_000, "bert-99": 130_000_000}
SCENARIOS = (("Offline", "Samples per second", "samples/s", "offline_samples_per_s"),
             ("Server", "Scheduled samples per second", "samples/s", "server_samples_per_s"),
             ("SingleStream", "90th percentile latency (ns)", "ns", "singlestream_p90_ns"),
             ("MultiStream", "99th percentile latency (ns)", "ns", "multistream_p99_ns"))


@dataclass
class DeviceRow:
    device: str
    count: int
    kind: str
    values: dict = field(default_factory=dict)       # metric -> value or None
    status: dict = field(default_factory=dict)       # metric -> "ok" / "unsupported: ..."
    price_usd: float | None = None
    tdp_w: float | None = None
    source: str = ""
    precision: str = ""
    server_uncapped: float | None = None             # the Server prediction before the Offline cap

    def per_dollar(self) -> float | None:
        v = self.values.get("offline_samples_per_s")
        return v / (self.price_usd * self.count) if v and self.price_usd else None

    def per_watt(self) -> float | None:
        v = self.values.get("offline_samples_per_s")
        return v / (self.tdp_w * self.count) if v and self.tdp_w else None


def software_round(prof, calib) -> str:
    """The round whose software a prediction assumes: the current round, or the last round
    with published results of the device's chip when that is older. The fitted software
    trend is not extrapolated past a chip's last results: a product that stopped
    submitting (e.g. Habana Goya, last seen in v0.5) shows no later software gains."""
    from sim.hw.rows import ROUND_YEAR

    f = calib.units.get(_unit(prof))
    if f is None or not f.fitted or not f.row_keys:
        return ROUND
    last = max(k[6] for k in f.row_keys)
    if last >= ROUND_YEAR[ROUND]:
        return ROUND
    return min((v for v, y in ROUND_YEAR.items() if y >= last and not v.startswith("mobile")),
               key=lambda v: ROUND_YEAR[v])


def _row(prof, count: int, model: str, scenario: str, metric: str, units: str, version: str = ROUND) -> dict:
    return {"version": version, "division": "closed", "submitter": "what-if", "system": f"{count}x {prof.name}",
            "accelerator": prof.name, "accelerator_kind": prof.kind,
            "accelerators_per_node": str(count) if prof.kind != "cpu" else "0",
            "host_processors_per_node": str(count) if prof.kind == "cpu" else "",
            "number_of_nodes": "1", "framework": prof.software, "host_cpu": "", "model": model, "scenario": scenario,
            "metric": metric, "units": units, "power_measured": "no",
            "target_latency_ns": str(SERVER_BOUND_NS[model]) if scenario == "Server" else "0"}


def _unit(prof) -> str | None:
    """The calibration unit a what-if row of ``prof`` is predicted by (None: unsupported)."""
    from sim.hw.rows import read_case, unit_of
    case = read_case(_row(prof, 1, "resnet50", "Offline", SCENARIOS[0][1], SCENARIOS[0][2]), 0)
    return unit_of(case) if case.ok else None


def check_devices(devices: list[str]) -> None:
    """At least one device, each a profile name of ``hw_profiles/`` (else an ``InputError``)."""
    from sim.hw import profiles
    if not devices:
        raise InputError("--devices: expected at least one device profile name")
    known = set(profiles.names())
    for d in devices:
        if d not in known:
            raise InputError(f"--devices: unknown device {d!r}; expected one of {sorted(known)}")


def compare(workload: str, devices: list[str], count: int = 1, calib=None) -> list[DeviceRow]:
    from sim.hw import profiles, published
    if workload not in MODELS:
        raise InputError(f"--workload {workload!r}: the hardware model covers {sorted(MODELS)}")
    check_devices(devices)
    calib = calib or published.calibration_from()
    model = MODELS[workload]
    out = []
    server_row = next(k for k, sc in enumerate(SCENARIOS) if sc[0] == "Server")
    for d in devices:
        prof = profiles.get(d)
        r = DeviceRow(d, count, prof.kind, price_usd=prof.price_usd, tdp_w=prof.tdp_w)
        version = software_round(prof, calib)
        rows = [_row(prof, count, model, sc, metric, units, version) for sc, metric, units, _ in SCENARIOS]
        uncapped: dict = {}
        for (value, status), (_, _, _, key) in zip(published.predict_rows(rows, calib, uncapped), SCENARIOS):
            r.values[key], r.status[key] = value, status
        info = published.explain_row(rows[0], calib)
        r.source, r.precision = info.get("parameters", info.get("status", "")), info.get("precision", "")
        if version != ROUND:
            r.source += (f"; software as of {version}, the round of its measurements"
                         if _unit(prof) in calib.own_data_only
                         else f"; software as of {version}, its latest published round")
        if server_row in uncapped:
            r.server_uncapped = uncapped[server_row]
            r.source += f"; Server capped at the Offline prediction (its own correction gave {r.server_uncapped:,.0f})"
        out.append(r)
    return out


COLUMNS = ("device", "count", "kind", "precision", "offline_samples_per_s", "server_samples_per_s",
           "singlestream_p90_ms", "multistream_p99_ms", "samples_per_s_per_usd", "samples_per_s_per_w", "source")


def _cells(r: DeviceRow) -> dict:
    def f(v, scale=1.0, nd=1):
        return "" if v is None else f"{v * scale:.{nd}f}"
    v = r.values
    notes = "; ".join(f"{k}: {s}" for k, s in r.status.items() if s != "ok")
    return {"device": r.device, "count": r.count, "kind": r.kind, "precision": r.precision,
            "offline_samples_per_s": f(v.get("offline_samples_per_s")),
            "server_samples_per_s": f(v.get("server_samples_per_s")),
            "singlestream_p90_ms": f(v.get("singlestream_p90_ns"), 1e-6, 3),
            "multistream_p99_ms": f(v.get("multistream_p99_ns"), 1e-6, 3),
            "samples_per_s_per_usd": f(r.per_dollar(), 1.0, 3), "samples_per_s_per_w": f(r.per_watt(), 1.0, 2),
            "source": r.source + (f" [{notes}]" if notes else "")}


def to_csv(rows: list[DeviceRow]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(_cells(r))
    return buf.getvalue()


def to_markdown(rows: list[DeviceRow]) -> str:
    head = COLUMNS[:-1]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        c = _cells(r)
        lines.append("| " + " | ".join(str(c[k]) or "-" for k in head) + " |")
    lines.append("")
    lines += [f"- {r.device}: {_cells(r)['source']}" for r in rows]
    return "\n".join(lines) + "\n"


def write(rows: list[DeviceRow], out_prefix: str) -> list:
    return [atomic.write_text(out_prefix + ".csv", to_csv(rows)), atomic.write_text(out_prefix + ".md", to_markdown(rows))]
