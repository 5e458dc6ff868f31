"""The validation's outputs: a text table, the JSON records, plots and ``docs/validation.md``.

Input is a list of per-workload results from ``sim.validate.experiment.validate_workload``.
``records`` are flat: ``workload, scenario, metric, measured, predicted, error_pct`` plus
the real runs' spread (``measured_spread_pct``, max - min over mean, in %), LoadGen's
verdicts (``measured_valid`` "k/n", ``invalid_reasons``) and the CPU other processes used.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from sim.util import atomic

SCHEMA = "sim.validation/1"


def _fmt(x: float) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    if abs(x) >= 1000:
        return f"{x:.0f}"
    if abs(x) >= 100:
        return f"{x:.1f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def _pct(x: float) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:+.1f}"


def _spread(x: float) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.1f}"


def all_records(results: list[dict]) -> list[dict]:
    return [r for res in results for r in res["records"]]


def error_summary(records: list[dict], key: str = "error_pct") -> dict:
    """Median and worst absolute error (%) and the median real-run spread; ``key``:
    ``error_at_run_speed_pct`` for the same at the runs' own speed (a diagnostic)."""
    records = [dict(r, error_pct=r.get(key, math.nan)) for r in records]
    errs = [abs(r["error_pct"]) for r in records if math.isfinite(r["error_pct"])]
    spreads = [r["measured_spread_pct"] for r in records if math.isfinite(r.get("measured_spread_pct", math.nan))]
    if not errs:
        return {"count": 0, "median_abs_error_pct": math.nan, "worst_abs_error_pct": math.nan,
                "median_spread_pct": math.nan, "worst": None}
    worst = max((r for r in records if math.isfinite(r["error_pct"])), key=lambda r: abs(r["error_pct"]))
    return {"count": len(errs), "median_abs_error_pct": float(np.median(errs)),
            "worst_abs_error_pct": float(max(errs)),
            "median_spread_pct": float(np.median(spreads)) if spreads else math.nan,
            "within_5pct": int(sum(e <= 5 for e in errs)), "within_10pct": int(sum(e <= 10 for e in errs)),
            "worst": f"{worst['workload']} {worst['scenario']} {worst['metric']}"}


def _validity(r: dict) -> str:
    v = r.get("measured_valid")
    if v is None:
        return ""
    k, n = v.split("/")
    if k == n:
        return "VALID"
    reasons = ", ".join(r.get("invalid_reasons", []))
    return f"INVALID {int(n) - int(k)}/{n}" + (f" ({reasons})" if reasons else "")


DISTURBED_CORES = 0.1      # other processes' mean CPU use during a real run above which a record says so


def format_table(records: list[dict]) -> str:
    """A plain-text table, one line per compared metric. ``at speed %``: the error of the same
    prediction made at the speed the run's own batches ran (a diagnostic: the gap between the
    two columns is the machine's speed in that run against the calibration's, not the model's);
    a record whose real runs other processes disturbed says so."""
    head = (f"{'workload':<22} {'scenario':<12} {'metric':<34} {'measured':>10} {'predicted':>10} "
            f"{'error %':>8} {'at speed %':>10} {'spread %':>8}  LoadGen")
    lines = [head, "-" * len(head)]
    for r in records:
        busy = r.get("foreign_cores_max") or 0.0
        lines.append(f"{r['workload'][:22]:<22} {r['scenario']:<12} {r['metric'][:34]:<34} {_fmt(r['measured']):>10} "
                     f"{_fmt(r['predicted']):>10} {_pct(r['error_pct']):>8} "
                     f"{_pct(r.get('error_at_run_speed_pct', math.nan)):>10} {_spread(r['measured_spread_pct']):>8}  "
                     f"{_validity(r)}" + (f" [disturbed: others used {busy:.2f} cores]" if busy > DISTURBED_CORES
                                          else ""))
    s = error_summary(records)
    if s["count"]:
        lines.append(f"{s['count']} metrics: median |error| {s['median_abs_error_pct']:.1f}%, worst "
                     f"{s['worst_abs_error_pct']:.1f}% ({s['worst']}); median spread of the real runs "
                     f"{s['median_spread_pct']:.1f}%")
        at = error_summary(records, "error_at_run_speed_pct")
        if at["count"]:
            lines.append(f"at the runs' own speed: median |error| {at['median_abs_error_pct']:.1f}%, worst "
                         f"{at['worst_abs_error_pct']:.1f}% (the rest is the machine's speed, run against "
                         f"calibration)")
    return "\n".join(lines)


def _clean(x):
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return x if math.isfinite(x) else None
    if isinstance(x, np.ndarray):
        return _clean(x.tolist())
    if isinstance(x, Path):
        return str(x)
    return x


def to_json(results: list[dict], fingerprint: dict, command: str = "") -> dict:
    recs = all_records(results)
    return _clean({"schema": SCHEMA, "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   "command": command, "fingerprint": fingerprint, "summary": error_summary(recs),
                   "records": recs,
                   "workloads": [{k: v for k, v in res.items() if k not in ("records", "plots")} for res in results],
                   "plots": {res["workload"]: res.get("plots") for res in results}})


def write_json(path, results: list[dict], fingerprint: dict, command: str = "") -> Path:
    return atomic.write_text(Path(path), json.dumps(to_json(results, fingerprint, command), indent=1) + "\n")


# ---------------------------------------------------------------------------------------
# plots


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_")


def system_tag(res: dict) -> str:
    """A short name of a result's system for file names: ``1x1t_dynamic8``, ``1x2t_none``."""
    c = res.get("harness_config") or {}
    threads = c.get("intra_op_threads") or "def"
    policy = c.get("policy", "none")
    return f"{c.get('instances', 1)}x{threads}t_{policy}{c.get('max_batch', 1) if policy != 'none' else ''}"


def plot_workload(res: dict, folder: Path) -> list[Path]:
    """Latency CDFs (measured vs predicted) per scenario, and Server p99 against QPS."""
    import matplotlib  # noqa: PLC0415 - heavy: only to draw
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415 - heavy: only to draw

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = res.get("plots") or {}
    out = []
    cdfs = data.get("cdf", {})
    if cdfs:
        tags = list(cdfs)
        cols = 3
        rows = math.ceil(len(tags) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
        for ax, tag in zip(axes.flat, tags):
            c = cdfs[tag]
            if c.get("measured") and c["measured"]["ms"]:
                ax.plot(c["measured"]["ms"], c["measured"]["p"], label="measured", color="black")
            if c.get("predicted") and c["predicted"]["ms"]:
                ax.plot(c["predicted"]["ms"], c["predicted"]["p"], label="predicted", color="tab:orange",
                        linestyle="--")
            ax.set_title(tag.replace("@", " at ").replace("Offline", "Offline (completion times)"), fontsize=9)
            ax.set_xlabel("latency (ms)", fontsize=8)
            ax.set_ylabel("fraction of samples" if "MultiStream" not in tag else "fraction of queries", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        for ax in list(axes.flat)[len(tags):]:
            ax.axis("off")
        fig.suptitle(f"{res['workload']} ({res.get('system', '')}): latency CDFs, measured (first repeat) vs "
                     f"predicted", fontsize=10)
        fig.tight_layout()
        path = folder / f"{_slug(res['workload'])}_{system_tag(res)}_cdf.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        out.append(path)
    curve = data.get("server_curve")
    if curve and curve.get("qps"):
        fig, ax = plt.subplots(figsize=(5.5, 3.6))
        ax.plot(curve["qps"], curve["p99_ms"], color="tab:orange", marker=".", label="predicted p99")
        for pt in data.get("server_points", []):
            ax.scatter([pt["qps"]] * len(pt["p99_ms"]), pt["p99_ms"], color="black", zorder=3, s=14,
                       label="measured p99" if pt is data["server_points"][0] else None)
        bound = res.get("server_bound_ms")
        if bound:
            ax.axhline(bound, color="grey", linestyle=":", label=f"bound {bound:g} ms")
        peak = data.get("peak")
        if peak and peak.get("real") and max(peak["real"]) > 0:
            for q in peak["real"]:
                ax.axvline(q, color="black", alpha=0.35, linewidth=1)
            ax.axvline(float(np.mean(peak["sim"])), color="tab:orange", alpha=0.8, linewidth=1,
                       linestyle="--", label="peak VALID QPS (predicted; grey: measured)")
        ax.set_yscale("log")
        ax.set_xlabel("Server target QPS")
        ax.set_ylabel("p99 latency (ms)")
        ax.set_title(f"{res['workload']} ({system_tag(res)}): Server p99 against QPS", fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = folder / f"{_slug(res['workload'])}_{system_tag(res)}_server_p99.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        out.append(path)
    return out


def write_plots(results: list[dict], folder) -> list[Path]:
    paths = []
    for res in results:
        paths += plot_workload(res, Path(folder))
    return paths


# ---------------------------------------------------------------------------------------
# docs/validation.md


def _md_table(records: list[dict]) -> list[str]:
    systems = len({r.get("system", "") for r in records}) > 1
    lines = ["| workload | " + ("system | " if systems else "") + "scenario | metric | measured | predicted | "
             "error % | real-run spread % | batch time vs calibration | error at the runs' speed % | LoadGen |",
             "|---|" + ("---|" if systems else "") + "---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in records:
        lines.append(f"| {r['workload']} | " + (f"{r.get('system', '')} | " if systems else "")
                     + f"{r['scenario']} | {r['metric']} | {_fmt(r['measured'])} | "
                     f"{_fmt(r['predicted'])} | {_pct(r['error_pct'])} | {_spread(r['measured_spread_pct'])} | "
                     f"{_speed(r.get('batch_speed'))} | {_pct(r.get('error_at_run_speed_pct', math.nan))} | "
                     f"{_validity(r)} |")
    return lines


def _speed(values) -> str:
    """The repeats' batch times against the calibration (``real_runs.batch_speed``): 'x1.02 (0.99-1.10)'."""
    v = [x for x in (values or []) if x is not None and math.isfinite(x)]
    if not v:
        return ""
    return f"x{np.median(v):.2f}" + (f" ({min(v):.2f}-{max(v):.2f})" if len(v) > 1 else "")


def _load_basis_text(results: list[dict]) -> str:
    peak = [res["workload"] for res in results if res.get("load_basis") == "peak"]
    if not peak:
        return "Server loads are fractions of the measured Offline capacity."
    if len(peak) == len(results):
        return "Server loads are fractions of the real peak VALID Server QPS (searched before the loads)."
    return ("Server loads are fractions of the measured Offline capacity, those of " + ", ".join(peak)
            + " of the real peak VALID Server QPS (searched before the loads).")


def markdown(results: list[dict], fingerprint: dict, command: str, plot_paths: list[Path], doc_dir: Path,
             notes: list[str] | None = None, json_path: str | None = None, history: list[str] | None = None,
             repeatability: list[str] | None = None) -> str:
    """``history``: the table of every kept set of runs (``sim.validate.history.markdown_lines``);
    ``repeatability``: the section on what the machine's own repeatability allows
    (``sim.validate.noise_floor.markdown_lines``)."""
    recs = all_records(results)
    s = error_summary(recs)
    fp = fingerprint
    lines = ["# Validation: predictions against real runs", "",
             "Generated by the command below; do not edit by hand. Each workload runs on a real system under "
             "test (onnxruntime on this CPU behind worker threads and a batching queue, "
             "`sim/validate/harness.py`) driven by the real MLPerf LoadGen, and is simulated with the same "
             "LoadGen settings and seeds: the simulated run issues the same queries at the same times. The "
             "simulator's inputs come only from microbenchmarks run before, between and after the validation runs "
             "(`sim/validate/calibrate_cpu.py`): busy and idle service times per batch size, LoadGen's issue "
             "overhead and scheduler delay. Nothing is fitted to the runs compared here.", "",
             "## Command", "", "```", command, "```", "",
             "## Machine", "",
             f"- CPU: {fp.get('cpu_model')}, {fp.get('logical_cores')} logical / {fp.get('physical_cores')} "
             f"physical cores ({fp.get('usable_cores')} usable), {fp.get('os')}",
             f"- onnxruntime {fp.get('onnxruntime')}, numpy {fp.get('numpy')}, Python {fp.get('python')}, "
             f"mlcommons-loadgen {fp.get('loadgen', '?')}",
             f"- a shared virtual machine: other processes ran during these runs (see the CPU they used, "
             f"below); fingerprint hash {fp.get('hash', '?')}", "",
             "## Summary", "",
             f"- {s['count']} compared metrics: median absolute error **{s['median_abs_error_pct']:.1f}%**, "
             f"worst **{s['worst_abs_error_pct']:.1f}%** ({s['worst']}); "
             f"{s.get('within_5pct', 0)} within 5%, {s.get('within_10pct', 0)} within 10%.",
             f"- The real runs' own spread (max - min over the median of the repeats): median "
             f"{s['median_spread_pct']:.1f}%.",
             *([f"- A diagnostic, not a prediction: simulated at the speed each real run's batches actually ran "
                f"(`batch time vs calibration`, read from the run's own batch log), the median absolute error is "
                f"{a['median_abs_error_pct']:.1f}% and the worst {a['worst_abs_error_pct']:.1f}% ({a['worst']}): "
                f"the difference from the figures above is the machine's speed during the runs, not the model."]
               if (a := error_summary(recs, "error_at_run_speed_pct"))["count"] else []),
             "", "Per workload:", "",
             "| workload | system | metrics | median abs error % | worst abs error % | median spread % | "
             "capacity (samples/s) | Server bound (ms) | real runs (repeated when disturbed) | CPU used by "
             "others (cores, median / max) | batch time vs calibration (runs' median, range) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for res in results:
        rs = error_summary(res["records"])
        foreign = [r["foreign_cores"] for r in res["runs"] if r.get("foreign_cores") is not None]
        fg = f"{np.median(foreign):.2f} / {max(foreign):.2f}" if foreign else "n/a"
        lines.append(f"| {res['workload']} | {res['system']} | {rs['count']} | {rs['median_abs_error_pct']:.1f} | "
                     f"{rs['worst_abs_error_pct']:.1f} | {rs['median_spread_pct']:.1f} | "
                     f"{res['capacity_qps']:.1f} | {res['server_bound_ms']:g} | {len(res['runs'])} "
                     f"({res.get('disturbed_retries', 0)}) | {fg} | "
                     f"{_speed([x for r in res['records'] for x in (r.get('batch_speed') or [])])} |")
    if history:
        lines += ["", "Every kept set of real runs this report was made from (`sim/validate/history.py`; new runs "
                  "add a row, none is dropped): this machine's speed moves from hour to hour, and each row is "
                  "one draw of it.", ""] + list(history)
    if repeatability:
        lines += [""] + list(repeatability)
    lines += ["", "## All compared metrics", "",
              "`measured` is the median of the real repeats, `predicted` the median over the repeats of the mean "
              "over each repeat's simulation seeds, error = (predicted - measured) / measured. "
              + _load_basis_text(results) +
              " `LoadGen` is the real runs' verdict (INVALID runs are kept, with LoadGen's reasons). "
              "`batch time vs calibration`: how long the real repeats' batches took against the calibrated busy "
              "times of the same batch size (median over each run's batches; median and range over the "
              "repeats), read from the runs' own batch logs after the fact: never an input of a prediction, it "
              "tells a machine that ran slow during a run (x1.10: 10% slower) from an error of the model. "
              "`error at the runs' speed`: the same comparison with each repeat simulated at that speed (its "
              "calibrated service times times its batch time vs calibration); a diagnostic, not a prediction.",
              ""]
    lines += _md_table(recs)
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    lines += ["", "## Calibration (the simulator's only inputs from this machine)", ""]
    for res in results:
        lines.append(f"- {res['workload']}: " + "; ".join(x.strip() for x in res["calibration"]["summary"][1:]))
    if plot_paths:
        lines += ["", "## Plots", ""]
        for p in plot_paths:
            rel = Path(p).resolve().relative_to(Path(doc_dir).resolve()) if Path(p).resolve().is_relative_to(
                Path(doc_dir).resolve()) else Path(p)
            lines.append(f"![{Path(p).stem}]({rel.as_posix()})")
    if json_path:
        lines += ["", f"Machine-readable records: `{json_path}`."]
    return "\n".join(lines) + "\n"


def write_markdown(path, results: list[dict], fingerprint: dict, command: str, plot_paths: list[Path],
                   notes: list[str] | None = None, json_path: str | None = None,
                   history: list[str] | None = None, repeatability: list[str] | None = None) -> Path:
    path = Path(path)
    text = markdown(results, fingerprint, command, plot_paths, path.parent, notes, json_path, history, repeatability)
    kept = kept_sections(path.read_text(encoding="utf-8")) if path.is_file() else []
    return atomic.write_text(path, text + "".join("\n" + block + "\n" for block in kept))


def put_section(path: str | Path, section: str, start: str, end: str) -> Path:
    """Put ``section`` (which begins with the marker line ``start`` and ends with ``end``) into
    the file at ``path`` in place of the section between those markers, or at its end
    (``kept_sections`` keeps it when the report is regenerated)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if start in text and end in text:
        head, rest = text.split(start, 1)
        tail = rest.split(end, 1)[1].lstrip("\n")
        text = head + section + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + section
    return atomic.write_text(path, text)


def kept_sections(text: str) -> list[str]:
    """Sections another command writes into the same document (``<!-- NAME: written by ... -->``
    to ``<!-- NAME: end -->``, e.g. the LLM validation's): kept as they are when the report is
    regenerated."""
    blocks, lines, start = [], text.splitlines(), None
    for i, line in enumerate(lines):
        if start is None and line.startswith("<!-- ") and ": written by " in line:
            start, name = i, line[5:].split(":", 1)[0]
        elif start is not None and line.strip() == f"<!-- {name}: end -->":
            blocks.append("\n".join(lines[start:i + 1]))
            start = None
    return blocks
