"""Accuracy of the calibrated LLM step cost on the published LLM results (``sim.hw.llm_calibrate``).

    python benchmarks/llm_accuracy.py [--variant beams+fp8] [--simulate N] [--json OUT]

Every row the calibration models (Offline, Server and Interactive rows of the LLM benchmarks on a
device with a profile) is predicted in these held-out settings, and the median and 90th
percentile |predicted / published - 1| are printed overall, per device and per benchmark:

- in-sample: every unit fitted on all rows (the fit's own error, not a held-out figure);
- LOSO, leave one system out: each system (submitter + system name, every round) predicted by its
  unit refitted without its rows (the unit's prior learned from the other units);
- LODO, leave one device out: every row of a device profile predicted from the prior learned from
  the other devices' units (its datasheet figures and the family / vendor / kind medians);
- Server from Offline: every unit fitted on Offline rows only; its Server and Interactive rows
  predicted (units with no Offline row: the learned prior);
- LOBO, leave one benchmark out: every unit refitted without a model's rows (gptj, llama2-70b,
  llama3.1-8b, llama3.1-405b, mixtral-8x7b, deepseek-r1: the quality variants together) and
  that model's rows predicted, with the dataset's data-free mean input (``prior_mean``) where the
  workload file's mean was estimated from the published rows (``sim.hw.llm_lengths``).

The mean inputs estimated from the published rows (``benchmarks/llm_input_lengths.py``) used every
row, so the other folds see a little of the held-out rows through that one number per benchmark.

Every figure above comes from the closed-form surrogate the fit uses (``Surrogate``). With
``--simulate N`` the script also runs the simulator (``sim.hw.llm_published.simulate_case``) on
N rows (Offline and Server, a spread of devices), with the in-sample parameters, and prints the
simulator's value beside the surrogate's and the published one.

``--variant`` picks the modelling choices, to compare them on the same rows: ``base`` (the row's
precision as written, one beam), ``beams`` (GPT-J's 4 beams), ``beams+fp8`` (and 16-bit weights
under TensorRT-LLM on FP8 hardware taken as FP8: the calibration's default), ``beams+fp8+tight``
(and narrower stage-1 priors, ``TIGHT_SD``), ``beams+fp8+tw`` (and the time-weighted generated tokens
a running sample holds, ``llm_calibrate.TIME_WEIGHTED_KV``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.errors import InputError  # noqa: E402
from sim.hw import llm_calibrate as lc  # noqa: E402

VARIANTS = ("base", "beams", "beams+fp8", "beams+fp8+tight", "beams+fp8+tw")
#: ``tight``: stage-1 prior spreads that keep the parameters physical (efficiencies within about
#: a factor 1.6 of the defaults in odds, overheads within about a factor 2)
TIGHT_SD = {"memory_efficiency": 0.5, "compute_efficiency": 0.7, "step_overhead_us": 0.7, "layer_overhead_us": 0.7,
            "allreduce_latency_us": 0.7}


def set_variant(name: str) -> None:
    lc.BEAMS = {"gpt-j-6b": 4} if "beams" in name else {}
    lc.PRECISION_RULE = "fp8-tensorrt" if "fp8" in name else "row"
    lc.TIME_WEIGHTED_KV = "tw" in name
    if "tight" in name:
        lc.DEFAULT_PRIOR = {n: (m, TIGHT_SD[n]) for n, (m, _) in lc.DEFAULT_PRIOR.items()}


def bench_of(c: lc.Case) -> str:
    return c.task.workload


def _err(pred: float | None, meas: float) -> float:
    return float("nan") if pred is None else abs(pred / meas - 1.0)


def _predict(params: dict, c: lc.Case) -> float | None:
    try:
        return lc.Surrogate(params).predict(c)
    except InputError:
        return None


def in_sample(cases, cal):
    return {id(c): _predict(cal.params_for(c.unit)[0], c) for c in cases}


def loso(cases, cal):
    by_sys = defaultdict(list)
    for c in cases:
        by_sys[c.task.system_key].append(c)
    out = {}
    for _key, held in by_sys.items():
        hid = {id(c) for c in held}
        for unit in {c.unit for c in held}:
            rest = [c for c in cases if c.unit == unit and id(c) not in hid]
            prior = cal.learned_prior(unit)
            params = lc.fit_unit(rest, prior) if rest else lc.from_vector(prior.mean)
            for c in held:
                if c.unit == unit:
                    out[id(c)] = _predict(params, c)
    return out


def lodo(cases, cal):
    out = {}
    for prof in {c.task.profile for c in cases}:
        units = frozenset(u for u in cal.stage1 if u.split("/", 1)[0] == prof)
        for c in cases:
            if c.task.profile == prof:
                prior = cal.learned_prior(c.unit, exclude=units)
                out[id(c)] = _predict(lc.from_vector(prior.mean), c)
    return out


def server_from_offline(cases):
    offline = [c for c in cases if c.task.scenario == "Offline"]
    cal = lc.calibrate(offline)
    return {id(c): _predict(cal.params_for(c.unit)[0], c) for c in cases if c.task.scenario != "Offline"}


def unseen(c: lc.Case) -> lc.Case:
    """The case as a calibration that never saw its benchmark's rows must build it: with the
    dataset's data-free mean input where the file's mean was estimated from those rows."""
    prior = lc.prior_input_mean(c.task.workload)
    if prior is None:
        return c
    try:
        h = lc.layout_of(c.task, mean_in=prior)
    except InputError:
        return c
    h.measured = c.measured
    return h


def lobo(cases):
    out = {}
    for b in sorted({bench_of(c) for c in cases}):
        cal = lc.calibrate([c for c in cases if bench_of(c) != b])
        for c in cases:
            if bench_of(c) == b:
                out[id(c)] = _predict(cal.params_for(c.unit)[0], unseen(c))
    return out


def summarise(cases, preds: dict, key) -> dict:
    groups = defaultdict(list)
    for c in cases:
        if id(c) not in preds:
            continue
        e = _err(preds[id(c)], c.measured)
        groups[key(c)].append(e)
    out = {}
    for g, es in sorted(groups.items()):
        a = np.array(es)
        ok = a[np.isfinite(a)]
        out[g] = {"rows": len(a), "predicted": int(len(ok)),
                  "median": float(np.median(ok)) if len(ok) else float("nan"),
                  "p90": float(np.percentile(ok, 90)) if len(ok) else float("nan")}
    return out


def _fmt(s: dict) -> str:
    return f"{s['median'] * 100:5.1f}% | {s['p90'] * 100:6.1f}% | {s['predicted']}/{s['rows']}"


def print_table(title: str, folds: dict, cases) -> dict:
    res = {}
    print(f"\n### {title}\n")
    print("| fold | median abs err | p90 abs err | rows predicted |")
    print("|---|---:|---:|---:|")
    for name, preds in folds.items():
        s = summarise(cases, preds, lambda c: "all")["all"]
        res[name] = {"all": s}
        print(f"| {name} | {_fmt(s).replace(' | ', ' | ')} |")
    for by, key in (("device", lambda c: c.task.profile), ("benchmark", bench_of),
                    ("scenario", lambda c: c.task.scenario)):
        print(f"\nby {by} (median / p90 |error| / rows):\n")
        names = list(folds)
        print("| " + by + " | " + " | ".join(names) + " |")
        print("|---|" + "---:|" * len(names))
        tabs = {n: summarise(cases, folds[n], key) for n in names}
        for n in names:
            res[n][by] = tabs[n]
        for g in sorted({g for t in tabs.values() for g in t}):
            cells = []
            for n in names:
                s = tabs[n].get(g)
                cells.append(f"{s['median'] * 100:.1f} / {s['p90'] * 100:.1f} / {s['rows']}" if s else "")
            print(f"| {g} | " + " | ".join(cells) + " |")
    return res


def simulate_check(cases, cal, n: int) -> list:
    """The simulator on ``n`` rows (one per unit and scenario, Offline first), in-sample parameters."""
    from sim.hw import llm_published as lp  # noqa: PLC0415 - the simulator, only here

    picked, seen = [], set()
    for scen in ("Offline", "Server", "Interactive"):
        for c in cases:
            k = (c.unit, c.task.workload, scen)
            if c.task.scenario == scen and k not in seen and len(picked) < n:
                seen.add(k)
                picked.append(c)
                break
        seen_units = {p.unit for p in picked}
        for c in cases:
            if len(picked) >= n * (1 + ("Offline", "Server", "Interactive").index(scen)) // 3:
                break
            if c.task.scenario == scen and c.unit not in seen_units:
                seen_units.add(c.unit)
                picked.append(c)
    out = []
    print("\n### Simulator against surrogate (in-sample parameters)\n")
    print("| row | device/stack | benchmark | scenario | published | surrogate | simulator | sim err | s |")
    print("|---:|---|---|---|---:|---:|---:|---:|---:|")
    for c in picked[:n]:
        p = cal.params_for(c.unit)[0]
        t0 = time.time()
        try:
            sim = lp.simulate_case(c, p)
        except InputError as e:
            sim = None
            print(f"row {c.task.index + 1}: {e}", file=sys.stderr)
        sur = _predict(p, c)
        dt = time.time() - t0
        e = _err(sim, c.measured)
        out.append({"row": c.task.index + 1, "unit": c.unit, "benchmark": c.task.benchmark,
                    "scenario": c.task.scenario, "published": c.measured, "surrogate": sur, "simulator": sim,
                    "seconds": dt})
        sim_s = f"{sim:.4g}" if sim else "n/a"
        sur_s = f"{sur:.4g}" if sur else "n/a"
        print(f"| {c.task.index + 1} | {c.unit} | {c.task.benchmark} | {c.task.scenario} | {c.measured:.4g} | "
              f"{sur_s} | {sim_s} | {e * 100:.1f}% | {dt:.0f} |")
    sims = [o for o in out if o["simulator"]]
    if sims:
        e = np.array([abs(o["simulator"] / o["published"] - 1) for o in sims])
        d = np.array([abs(o["simulator"] / o["surrogate"] - 1) for o in sims if o["surrogate"]])
        print(f"\nsimulator |error|: median {np.median(e) * 100:.1f}%, p90 {np.percentile(e, 90) * 100:.1f}% "
              f"on {len(sims)} rows; simulator vs surrogate: median {np.median(d) * 100:.1f}%, "
              f"max {d.max() * 100:.1f}%")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", choices=VARIANTS, default="beams+fp8")
    ap.add_argument("--results", default=None, help="LLM results file (default: the shared file)")
    ap.add_argument("--simulate", type=int, default=0, help="rows to run through the simulator as well")
    ap.add_argument("--json", default=None, help="write the figures as JSON here")
    a = ap.parse_args(argv)
    set_variant(a.variant)
    t0 = time.time()
    cases, skipped, note = lc.load_cases(a.results)
    print(f"variant {a.variant}: {len(cases)} rows modelled, {len(skipped)} not{note} "
          f"({time.time() - t0:.0f} s to read)")
    t = time.time()
    cal = lc.calibrate(cases, note)
    folds = {"in-sample": in_sample(cases, cal)}
    timings = {"calibrate": time.time() - t}
    for name, fn in (("LOSO", lambda: loso(cases, cal)), ("LODO", lambda: lodo(cases, cal)),
                     ("Server from Offline", lambda: server_from_offline(cases)), ("LOBO", lambda: lobo(cases))):
        t = time.time()
        folds[name] = fn()
        timings[name] = time.time() - t
    res = print_table(f"LLM accuracy, variant {a.variant} (surrogate)", folds, cases)
    srv = {k: v for k, v in folds["in-sample"].items()}
    srv_cases = [c for c in cases if c.task.scenario != "Offline"]
    s_in = summarise(srv_cases, srv, lambda c: "all")["all"]
    print(f"\nServer + Interactive rows, in-sample fit (for comparison with 'Server from Offline'): {_fmt(s_in)}")
    print("\nseconds: " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()) + " (a shared machine)")
    sims = simulate_check(cases, cal, a.simulate) if a.simulate else []
    if a.json:
        Path(a.json).write_text(json.dumps({"variant": a.variant, "rows": len(cases), "tables": res,
                                            "simulator": sims, "seconds": timings}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
