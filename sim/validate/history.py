"""Every kept run of the validation report, so one draw of a noisy machine is read next to the others.

The report's figures come from real runs on a shared machine whose speed moves from one hour
to the next; a single report is one draw. ``docs/validation_history.json`` keeps one entry per
set of real runs the report was made from: when they ran, the method, the commit that wrote
the entry, the error summary overall and per workload, each workload's run lengths and what its
Server loads were fractions of (``load_basis``), and every compared metric's measured repeats
and prediction (``RECORD_FIELDS``; ``sim.validate.noise_floor`` reads them to tell how closely
the machine reproduces its own runs). Regenerating the report
from the same runs (``--reuse``) replaces that entry (its key is the runs' finish times); new
runs add one. Entries are never dropped, and the report shows them all.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sim.errors import InputError
from sim.util import atomic
from sim.validate.report import _clean, error_summary

SCHEMA = "sim.validation-history/1"
#: what an entry keeps of each compared metric (``records``)
RECORD_FIELDS = ("workload", "system", "scenario", "metric", "measured", "measured_runs", "predicted", "error_pct",
                 "measured_spread_pct", "qps")


def entry(results: list[dict], method: str, commit: str, command: str) -> dict:
    """The history entry of a report made from ``results`` (each with ``finished_utc`` and
    ``seconds``: when its real runs ended and how long the workload took)."""
    for res in results:
        if not res.get("finished_utc"):
            raise InputError(f"validation result of {res.get('workload')}: no finished_utc; expected the time "
                             f"its real runs ended (ISO 8601, UTC)")
    workloads = []
    for res in results:
        s = error_summary(res["records"])
        workloads.append({"workload": res["workload"], "system": res.get("system", ""),
                          "finished_utc": res["finished_utc"], "seconds": float(res.get("seconds") or 0.0),
                          "runs_commit": res.get("runs_commit", ""), "run_lengths": res.get("run_lengths"),
                          "load_basis": res.get("load_basis") or "offline",
                          "count": s["count"], "median_abs_error_pct": s["median_abs_error_pct"],
                          "worst_abs_error_pct": s["worst_abs_error_pct"]})
    records = [r for res in results for r in res["records"]]
    return {"key": sorted(f"{w['workload']} | {w['system']} | {w['finished_utc']}" for w in workloads),
            "period_utc": _period(results), "method": method, "commit": commit, "command": command,
            "source": "validation report", "summary": error_summary(records), "workloads": workloads,
            "records": [{k: r[k] for k in RECORD_FIELDS if k in r} for r in records]}


def _period(results: list[dict]) -> str:
    ends = [datetime.fromisoformat(r["finished_utc"].replace("Z", "+00:00")) for r in results]
    starts = [e - timedelta(seconds=float(r.get("seconds") or 0.0)) for e, r in zip(ends, results)]
    a, b = min(starts).astimezone(timezone.utc), max(ends).astimezone(timezone.utc)
    return f"{a:%Y-%m-%d %H:%M}-{b:%H:%M}" if a.date() == b.date() else f"{a:%Y-%m-%d %H:%M} - {b:%Y-%m-%d %H:%M}"


def load(path) -> list[dict]:
    """The entries kept in ``path`` (none when it does not exist)."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read the validation history ({exc}); expected JSON with schema "
                         f"{SCHEMA}") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA or not isinstance(doc.get("entries"), list):
        raise InputError(f"{path}: schema {doc.get('schema') if isinstance(doc, dict) else None!r}; expected "
                         f"{SCHEMA!r} with a list 'entries'")
    for i, e in enumerate(doc["entries"]):
        missing = [k for k in ("key", "period_utc", "method", "summary", "workloads") if k not in e]
        if missing:
            raise InputError(f"{path}: entries[{i}] lacks {', '.join(missing)}")
    return doc["entries"]


def update(path, new: dict) -> list[dict]:
    """Add ``new`` to the history in ``path`` (replacing an entry of the same runs) and write it
    atomically; returns the entries, oldest runs first."""
    entries = [e for e in load(path) if e["key"] != new["key"]] + [new]
    entries.sort(key=lambda e: e["period_utc"])
    atomic.write_text(Path(path), json.dumps({"schema": SCHEMA, "entries": _clean(entries)}, indent=1) + "\n")
    return entries


def _num(x, fmt: str = ".1f") -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, fmt)


def markdown_lines(entries: list[dict], current_key: list | None = None) -> list[str]:
    """A table of every kept run, the one this report shows marked."""
    if not entries:
        return []
    names = []
    for e in entries:
        for w in e["workloads"]:
            if w["workload"] not in names:
                names.append(w["workload"])
    lines = ["| runs (UTC) | method | metrics | median abs error % | worst abs error % | within 10% | "
             + " | ".join(f"{n.split(':')[0]} median / worst %" for n in names) + " | source |",
             "|---|---|---:|---:|---:|---:|" + "---:|" * len(names) + "---|"]
    for e in entries:
        s = e["summary"]
        per = {w["workload"]: w for w in e["workloads"]}
        cells = [f"{_num(per[n]['median_abs_error_pct'])} / {_num(per[n]['worst_abs_error_pct'])}"
                 if n in per else "" for n in names]
        shown = " (this report)" if current_key is not None and e["key"] == current_key else ""
        lines.append(f"| {e['period_utc']}{shown} | {e['method']} | {s['count']} | "
                     f"{_num(s['median_abs_error_pct'])} | {_num(s['worst_abs_error_pct'])} | "
                     f"{s.get('within_10pct', '')} | " + " | ".join(cells)
                     + f" | {e.get('source', '')}{', commit ' + e['commit'] if e.get('commit') else ''} |")
    return lines
