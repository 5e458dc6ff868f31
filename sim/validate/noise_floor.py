"""How closely this machine reproduces its own real runs, and so what error any model can be held to.

The report's measured value of a metric is the median of a few real repeats on a shared
machine whose speed moves from minute to minute. Two figures that involve no model, from the
kept sets of real runs in ``docs/validation_history.json`` (``sim.validate.history``):

- ``oracle_errors``: a perfect model, one that knew the median of every metric's run-to-run
  distribution in each set, still differs from the median of the set's ``n`` real repeats. Each metric's repeats,
  centred on their set's mean in log space and scaled by sqrt(k / (k - 1)) for that centring
  (k repeats), pooled over the kept sets made with the same run lengths, are the metric's
  run-to-run variation on this machine. Drawing ``n`` of them with replacement and taking the
  median gives one report's error of the perfect model on that metric; the median and the
  worst over a report's metrics, over many such draws, say which targets any model can meet
  with ``n`` repeats.
- ``machine_as_predictor``: where two kept sets ran the same setting (every metric but the
  Server latencies, whose loads are fractions of each set's own measured capacity or peak), one
  set's measured values taken as the prediction of the other's, scored as the model is.
"""

from __future__ import annotations

import math
from itertools import permutations

import numpy as np

#: the targets the validation is held to (median and worst absolute error, %)
MEDIAN_TARGET_PCT = 5.0
WORST_TARGET_PCT = 10.0
#: repeat counts the report shows the perfect model's figures for (the report itself makes 3)
REPEATS = (3, 5, 9, 15, 25)


def metric_key(r: dict) -> tuple:
    return (r["workload"], r.get("system", ""), r["scenario"], r["metric"])


def same_setting(r: dict) -> bool:
    """Whether a metric's real runs have the same settings in every set of equal run lengths:
    all but the Server latencies, run at fractions of each set's own measured capacity."""
    return r["scenario"] != "Server" or r["metric"] == "peak VALID QPS"


def _records(entry: dict, run_lengths: dict, load_basis: str | None = None) -> list[dict]:
    """An entry's records of the workloads it ran with ``run_lengths``; their Server latencies
    only where the Server loads were fractions of ``load_basis`` (none where it is None)."""
    ws = {w["workload"]: w for w in entry["workloads"] if w.get("run_lengths") == run_lengths}
    return [r for r in entry.get("records") or [] if r["workload"] in ws
            and (same_setting(r) or (load_basis is not None and ws[r["workload"]].get("load_basis") == load_basis))]


def log_deviations(values) -> np.ndarray:
    """Repeats' log deviations from their mean, scaled by sqrt(k / (k - 1)) so that they spread
    as single runs do (none from fewer than two repeats; missing or non-positive ones left out)."""
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size < 2:
        return np.empty(0)
    return (np.log(v) - np.log(v).mean()) * math.sqrt(v.size / (v.size - 1))


def repeat_deviations(entries: list[dict], run_lengths: dict, load_basis: str) -> dict[tuple, np.ndarray]:
    """Per metric, its real repeats' log deviations from their set's mean, pooled over the
    entries (only workloads run with ``run_lengths``, and Server latencies only of Server loads
    that were fractions of ``load_basis``; repeats that are missing or not positive left out),
    each scaled by sqrt(k / (k - 1)) so that they spread as single runs do."""
    pools: dict[tuple, list] = {}
    for e in entries:
        for r in _records(e, run_lengths, load_basis):
            d = log_deviations(r.get("measured_runs") or [])
            if d.size:
                pools.setdefault(metric_key(r), []).extend(d)
    return {k: np.asarray(v) for k, v in sorted(pools.items())}


def oracle_errors(deviations: dict[tuple, np.ndarray], repeats: int, draws: int = 10_000,
                  seed: int = 0) -> np.ndarray:
    """|error| (%) of a perfect model against the median of ``repeats`` runs, one row per
    simulated report and one column per metric of ``deviations`` (in its order). The perfect
    model predicts the median of the metric's run-to-run distribution (the pool's median), the
    value the median of many repeats tends to."""
    if repeats < 1 or draws < 1:
        raise ValueError(f"repeats {repeats} and draws {draws}: expected at least 1 each")
    rng = np.random.default_rng(seed)
    out = np.empty((draws, len(deviations)))
    for j, pool in enumerate(deviations.values()):
        median_log = np.median(pool[rng.integers(0, pool.size, size=(draws, repeats))], axis=1)
        out[:, j] = np.abs(np.expm1(median_log - np.median(pool))) * 100.0
    return out


def oracle_summary(errors: np.ndarray, median_target_pct: float = MEDIAN_TARGET_PCT,
                   worst_target_pct: float = WORST_TARGET_PCT) -> dict:
    """The perfect model's median and worst |error| over each simulated report, summarised over
    the reports: their medians, the worst's 5th and 95th percentiles, and the share of reports
    meeting each target."""
    med, worst = np.median(errors, axis=1), errors.max(axis=1)
    return {"metrics": int(errors.shape[1]), "draws": int(errors.shape[0]),
            "median_abs_error_pct": float(np.median(med)),
            "worst_abs_error_pct": float(np.median(worst)),
            "worst_p5_pct": float(np.percentile(worst, 5)), "worst_p95_pct": float(np.percentile(worst, 95)),
            "share_median_within": float(np.mean(med <= median_target_pct)),
            "share_worst_within": float(np.mean(worst <= worst_target_pct)),
            "within_worst_target": float(np.median((errors <= worst_target_pct).sum(axis=1)))}


def machine_as_predictor(entries: list[dict], run_lengths: dict) -> list[dict]:
    """For each ordered pair of entries (predictor, measured): the predictor's measured values
    as the prediction of the other's on the metrics both ran with the same settings; with the
    model's own error on those metrics of the measured set."""
    keyed = [{metric_key(r): r for r in _records(e, run_lengths)} for e in entries]
    out = []
    for (a, ra), (b, rb) in permutations(list(zip(entries, keyed)), 2):
        shared = [k for k in rb if k in ra and _ok(ra[k]["measured"]) and _ok(rb[k]["measured"])]
        if not shared:
            continue
        errs = {k: abs(ra[k]["measured"] - rb[k]["measured"]) / rb[k]["measured"] * 100.0 for k in shared}
        model = [abs(rb[k]["error_pct"]) for k in shared if rb[k].get("error_pct") is not None]
        worst = max(errs, key=errs.get)
        out.append({"predictor": a["period_utc"], "measured": b["period_utc"], "count": len(shared),
                    "median_abs_error_pct": float(np.median(list(errs.values()))),
                    "worst_abs_error_pct": errs[worst], "worst": " ".join(worst[i] for i in (0, 2, 3)),
                    "model_median_abs_error_pct": float(np.median(model)) if model else math.nan,
                    "model_worst_abs_error_pct": float(max(model)) if model else math.nan})
    return out


def _ok(x) -> bool:
    return x is not None and math.isfinite(x) and x > 0


def markdown_lines(entries: list[dict], run_lengths: dict, load_basis: str, repeats=REPEATS,
                   draws: int = 10_000, seed: int = 0) -> list[str]:
    """The report's section on what this machine's repeatability allows (none without two kept
    sets of per-metric records at these run lengths)."""
    usable = [e for e in entries if _records(e, run_lengths)]
    devs = repeat_deviations(usable, run_lengths, load_basis)
    if len(usable) < 2 or not devs:
        return []
    server_sets = sum(any(not same_setting(r) for r in _records(e, run_lengths, load_basis)) for e in usable)
    basis = {"peak": "the real peak VALID QPS", "offline": "the Offline capacity"}.get(load_basis, load_basis)
    lines = ["## What this machine's repeatability allows", "",
             f"No model enters these figures (`sim/validate/noise_floor.py`). They come from the {len(usable)} kept "
             f"sets of real runs made with these run lengths ({sum(p.size for p in devs.values())} real repeats of "
             f"{len(devs)} metrics; the Server latencies from the {server_sets} sets whose Server loads were "
             f"fractions of {basis}, as in this report). A perfect model, one that knew the median of every "
             "metric's run-to-run distribution in each set, is scored against the median of n real repeats "
             "drawn from each metric's run-to-run variation on this machine (its repeats' deviations from their "
             "set's mean, pooled over the sets); "
             f"{draws:,} simulated reports per row (seed {seed}). The targets: median |error| <= "
             f"{MEDIAN_TARGET_PCT:g}%, worst <= {WORST_TARGET_PCT:g}%. Each metric's pool holds "
             f"{min(p.size for p in devs.values())} to {max(p.size for p in devs.values())} repeats, so these are "
             "estimates of the machine's variation, and a slow spell that no kept set caught is not in them.", "",
             "| real repeats per metric | perfect model: median abs error % | worst abs error % (5th-95th "
             "percentile) | metrics within 10% | reports with median <= 5% | reports with worst <= 10% |",
             "|---:|---:|---:|---:|---:|---:|"]
    first = None
    for n in repeats:
        errors = oracle_errors(devs, n, draws, seed)
        s = oracle_summary(errors)
        first = first if first is not None else errors
        lines.append(f"| {n} | {s['median_abs_error_pct']:.1f} | {s['worst_abs_error_pct']:.1f} "
                     f"({s['worst_p5_pct']:.1f}-{s['worst_p95_pct']:.1f}) | {s['within_worst_target']:.0f} of "
                     f"{s['metrics']} | {s['share_median_within']:.1%} | {s['share_worst_within']:.1%} |")
    share = np.mean(first > WORST_TARGET_PCT, axis=0)
    noisy = [(share[j], k) for j, k in enumerate(devs)]
    noisy.sort(key=lambda t: -t[0])
    lines += ["", f"The metrics the perfect model most often misses by more than {WORST_TARGET_PCT:g}% with "
              f"{repeats[0]} repeats: " + "; ".join(f"{k[0]} {k[2]} {k[3]} ({s:.0%} of reports)"
                                                    for s, k in noisy[:6] if s > 0) + "."]
    pairs = machine_as_predictor(usable, run_lengths)
    if pairs:
        lines += ["", "The machine against itself: one kept set's measured values as the prediction of another's, on "
                  "the metrics both ran with the same settings (all but the Server latencies, whose loads are "
                  "fractions of each set's own capacity), next to the model's error on the same metrics of that set.",
                  "", "| measured set (UTC) | metrics | model: median / worst abs error % | other sets as the "
                  "prediction: median abs error % (median over sets) | their worst abs error % (best / median / "
                  "worst set) |", "|---|---:|---:|---:|---:|"]
        for e in usable:
            rows = [p for p in pairs if p["measured"] == e["period_utc"]]
            if not rows:
                continue
            worsts = [p["worst_abs_error_pct"] for p in rows]
            model = [abs(r["error_pct"]) for r in _records(e, run_lengths) if r.get("error_pct") is not None]
            fit = f"{np.median(model):.1f} / {max(model):.1f}" if model else "n/a"
            lines.append(f"| {e['period_utc']} | {len(model)} | {fit} | "
                         f"{np.median([p['median_abs_error_pct'] for p in rows]):.1f} | "
                         f"{min(worsts):.1f} / {np.median(worsts):.1f} / {max(worsts):.1f} |")
    return lines
