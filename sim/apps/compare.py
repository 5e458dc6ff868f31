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

from sim.errors import InputError
from sim.hw import profiles, published
from sim.hw.whatif import MODELS, ROUND, SCENARIOS, software_round, unit_of_profile, what_if_row
from sim.util import atomic


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


def check_devices(devices: list[str]) -> None:
    """At least one device, each a profile name of ``hw_profiles/`` (else an ``InputError``)."""
    if not devices:
        raise InputError("--devices: expected at least one device profile name")
    known = set(profiles.names())
    for d in devices:
        if d not in known:
            raise InputError(f"--devices: unknown device {d!r}; expected one of {sorted(known)}")


def compare(workload: str, devices: list[str], count: int = 1, calib=None) -> list[DeviceRow]:
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
        rows = [what_if_row(prof, count, model, sc, metric, units, version) for sc, metric, units, _ in SCENARIOS]
        uncapped: dict = {}
        for (value, status), (_, _, _, key) in zip(published.predict_rows(rows, calib, uncapped), SCENARIOS):
            r.values[key], r.status[key] = value, status
        info = published.explain_row(rows[0], calib)
        r.source, r.precision = info.get("parameters", info.get("status", "")), info.get("precision", "")
        if version != ROUND:
            r.source += (f"; software as of {version}, the round of its measurements"
                         if unit_of_profile(prof) in calib.own_data_only
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
    return [atomic.write_text(out_prefix + ".csv", to_csv(rows)),
            atomic.write_text(out_prefix + ".md", to_markdown(rows))]
