"""Procurement comparison: devices side by side on one workload.

For each device (a profile name in ``hw_profiles/``) and count, the calibrated hardware
model predicts what an MLPerf submission of that system would report in the current round
(v5.1 rules), with the software of the device's most recent published round
(``software_round``): Offline samples/s, Server samples/s at the model's latency bound,
SingleStream p90 and MultiStream p99 latency, each through the simulator
(``sim.hw.published``). Throughput per dollar and per watt use the profile's price and TDP
where it has them.

The workload is any catalog workload or a user's ``.onnx`` file (``sim.hw.whatif.network``).
Every row says what it is: the device, the count, the precision and why, where the device's
parameters come from (its chip's fit, or priors learned from other devices), whether the
network is fitted on its published rows or predicted from physics, the settings it follows,
and the ops its layer table could not count (their cost is missing from the prediction).

A scenario MLPerf does not define for the network (BERT has no MultiStream, DLRM is
Server and Offline only, 3D-UNet has no Server) is ``not an MLPerf test`` and has no
number; a device the model does not cover gets ``unsupported: <reason>`` and no numbers.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from sim.errors import InputError
from sim.hw import profiles, published, whatif
from sim.hw.whatif import ROUND, SCENARIOS, software_round, unit_of_profile
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
    network: str = ""                                # fitted on its rows / predicted from physics, settings
    uncounted: dict = field(default_factory=dict)    # op type -> nodes without a cost formula

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


def compare(workload: str, devices: list[str], count: int = 1, calib=None,
            input_shapes: dict | None = None) -> list[DeviceRow]:
    """One row per device: ``count`` of it running ``workload`` (a catalog name or a .onnx path)."""
    check_devices(devices)
    net = whatif.network(workload, input_shapes)
    calib = calib or published.calibration_from()
    uncounted = net.uncounted
    network_note = f"{whatif.provenance(calib, net)}; {net.settings_note}"
    out = []
    server_row = next(k for k, sc in enumerate(SCENARIOS) if sc[0] == "Server")
    for d in devices:
        prof = profiles.get(d)
        r = DeviceRow(d, count, prof.kind, price_usd=prof.price_usd, tdp_w=prof.tdp_w, network=network_note,
                      uncounted=uncounted)
        version = software_round(prof, calib)
        cases = [whatif.case_for(prof, count, net, sc, version) for sc, _, _, _ in SCENARIOS]
        uncapped: dict = {}
        run = [k for k, (sc, _, _, _) in enumerate(SCENARIOS) if net.not_a_test(sc) is None]
        preds = dict(zip(run, published.predict_cases([cases[k] for k in run], calib, uncapped)))
        uncapped = {run[k]: v for k, v in uncapped.items()}
        for k, (sc, _, _, key) in enumerate(SCENARIOS):
            r.values[key], r.status[key] = preds.get(k, (None, net.not_a_test(sc)))
        info = published.explain_case(cases[run[0]] if run else cases[0], calib)
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


def uncounted_note(r: DeviceRow) -> str:
    """The ops a row's prediction does not count, in words ('' when every op is counted)."""
    if not r.uncounted:
        return ""
    ops = ", ".join(f"{op} x{n}" for op, n in sorted(r.uncounted.items()))
    return f"uncounted ops (no cost formula, not in the prediction): {ops}"


COLUMNS = ("device", "count", "kind", "precision", "offline_samples_per_s", "server_samples_per_s",
           "singlestream_p90_ms", "multistream_p99_ms", "samples_per_s_per_usd", "samples_per_s_per_w", "network",
           "uncounted_ops", "source")


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
            "network": r.network, "uncounted_ops": "; ".join(f"{op}={n}" for op, n in sorted(r.uncounted.items())),
            "source": r.source + (f" [{notes}]" if notes else "")}


def to_csv(rows: list[DeviceRow]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(_cells(r))
    return buf.getvalue()


def to_markdown(rows: list[DeviceRow]) -> str:
    head = COLUMNS[:-3]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        c = _cells(r)
        lines.append("| " + " | ".join(str(c[k]) or "-" for k in head) + " |")
    lines.append("")
    if rows:
        lines.append(f"Network: {rows[0].network}")
        if uncounted_note(rows[0]):
            lines.append(f"Warning: {uncounted_note(rows[0])}")
        lines.append("")
    lines += [f"- {r.device} x{r.count} ({r.kind}, {r.precision or 'no precision'}): {_cells(r)['source']}"
              for r in rows]
    return "\n".join(lines) + "\n"


def write(rows: list[DeviceRow], out_prefix: str) -> list:
    return [atomic.write_text(out_prefix + ".csv", to_csv(rows)),
            atomic.write_text(out_prefix + ".md", to_markdown(rows))]
