"""Accuracy of the calibrated hardware models on published MLPerf Inference results.

    python benchmarks/hw_accuracy.py [--results PATH] [--workers N] [--quick] [--json OUT] [--heldout CSV]
        [--section lono [--closed-form]]

Prints, for the rows of the five models (resnet50, ssd-mobilenet, ssd-resnet34,
retinanet, bert-99) in the shared results file:

1. leave-one-system-out: each system (submitter + system name, all its rounds) predicted
   from parameters fitted without any of its rows; median |error| overall and per
   accelerator kind, model and scenario, with coverage (share of rows with status ok);
2. the twin-lookup baseline (median per-device value of the same accelerator's other
   systems) on the rows where a twin exists, beside the simulator on the same rows, and
   the simulator alone on the rows without a twin;
3. cross-scenario: Server and MultiStream rows predicted from units fitted on Offline and
   SingleStream rows only (per device, strictly with no Server/MultiStream row in any fit,
   and per product, the chip's other products keeping theirs);
4. leave-one-product-out: every hardware product predicted with none of its rows in any
   fit (its datasheet, plus its chip's other products or its family's priors);
5. the analytical model against the measured CPU profile of this machine, per layer class
   (``sim.hw.local_cpu``; needs cached profiles: ``python -m sim profile resnet50
   --batch-sizes 1,2,4,8``, likewise ssd_mobilenet_v1 and bert_base).

6. with ``--heldout CSV``: published rows that are not in the results file, each predicted
   from the calibration fitted on all of it, in four sets: devices the file does not
   have; a model and scenario the file has no row of for that device (its Server results
   where it has Offline ones, say); systems the file does not have of a device, model and
   scenario it has; and systems the file has (submitter and system name), in another
   round or test. The sign of the median error says fast (+ on throughput, - on latency)
   or slow.

7. one network to the others: each unit refitted on one network's rows predicts its other
   networks in closed form (the fixed cost per kernel held at its prior, a variant the
   calibration does not use, and free).

0. leave-one-network-out (the headline): each network (every row of it, on every device)
   left out of every fit, all devices refitted at once; its rows are then predicted from
   its layer table alone, as a user's new model is (no network factor exists for it).
   Median and 90th-percentile |error| per device kind, per network and per kind and
   network. ``--section lono`` runs it alone; ``--closed-form`` predicts in closed form
   instead of through the simulator (Server: the sustainable capacity), for iterating.

Every prediction goes through the simulator, except in (7) and with ``--closed-form``.
``--quick`` runs only (0), (1) and (2) (and 6).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # small dense problems: threads only contend

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sim.hw import evaluate as ev  # noqa: E402

DEFAULT_RESULTS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "mlperf_results" / "results.csv"
ISSUE_DEVICES = ("t4", "a2", "a10", "a30", "a40", "a100-pcie", "a100-sxm", "l4", "l40", "l40s", "h100-pcie",
                 "h100-sxm", "h200-sxm", "cloud-ai-100-standard", "cloud-ai-100-pro", "cloud-ai-100-ultra", "goya",
                 "vck5000", "u250", "hexagon-855-hvx", "hexagon-x-elite", "xeon-8380", "xeon-8480", "xeon-8592")


def table(title: str, summary: dict) -> None:
    print(f"\n{title}")
    print(f"  {'group':34s} {'rows':>6s} {'ok':>6s} {'coverage':>9s} {'median |err|':>13s} {'p90 |err|':>10s}")
    for label, v in summary.items():
        med = f"{v['median_abs_error']:.1%}" if v["ok"] else "-"
        p90 = f"{v['p90_abs_error']:.1%}" if v["ok"] else "-"
        print(f"  {label:34s} {v['rows']:6d} {v['ok']:6d} {v['coverage']:9.1%} {med:>13s} {p90:>10s}")


def lono_section(data: "ev.Data", rows: list[int], workers: int, simulate: bool) -> dict:
    """Section 0: leave-one-network-out, printed per kind, network and kind x network."""
    t0 = time.time()
    preds = ev.leave_one_network_out(data, workers=workers, simulate=simulate)
    errs = ev.abs_errors(preds, data)
    signed = {i: p / data.values[i] - 1.0 for i, p in preds.items() if i in data.values and p > 0}
    how = "simulator" if simulate else "closed form"
    nets = sorted({data.cases[i].workload for i in rows if data.cases[i].ok})
    print(f"\n0. leave-one-network-out ({len(nets)} networks, each left out of every fit; {how}, "
          f"{time.time() - t0:.0f} s)")
    # units with rows of more than one network: the device is known to the fold, only the network is new
    nets_of: dict = {}
    for i in rows:
        c = data.cases[i]
        if c.ok:
            nets_of.setdefault(ev.unit_of(c), set()).add(c.workload)
    known = {u for u, n in nets_of.items() if len(n) > 1}
    out = {"overall": ev.summarise_by(errs, data, rows, lambda c: "overall")["overall"],
           "kind_known_device": ev.summarise_by(
               errs, data, [i for i in rows if data.cases[i].ok and ev.unit_of(data.cases[i]) in known],
               lambda c: c.kind),
           "kind": ev.summarise_by(errs, data, rows, lambda c: c.kind),
           "network": ev.summarise_by(errs, data, rows, lambda c: c.workload or c.model),
           "kind_network": ev.summarise_by(errs, data, rows, lambda c: f"{c.kind} {c.workload or c.model}")}
    for title in ("overall", "kind", "kind_known_device", "network", "kind_network"):
        table_rows = {"overall": out["overall"]} if title == "overall" else out[title]
        label = {"overall": "  overall", "kind_known_device": "  by kind, rows of devices (units) that have rows of "
                 "another network"}.get(title, f"  by {title.replace('_', ' and ')}")
        table(label, table_rows)
    # signed median per unit and network (+: throughput high / latency low... as predicted / published - 1)
    by: dict = {}
    for i, e in signed.items():
        c = data.cases[i]
        by.setdefault(f"{c.workload} {ev.unit_of(c)} {c.target}", []).append(e)
    out["signed_unit_network"] = {k: {"rows": len(v), "median_error": float(np.median(v))} for k, v in sorted(by.items())}
    return out


def median(errs: dict, rows) -> float:
    vals = [errs[i] for i in rows if i in errs]
    return float(np.median(vals)) if vals else float("nan")


def held_out(path: str, full, data: "ev.Data") -> dict:
    """Rows published but absent from the calibration's results file (``data``), each
    predicted by the calibration fitted on all of it (``predict-published``): median |error|
    per set, device, device and scenario, model, and overall. A row that is in the results
    file too (same round, submitter, system, model and scenario) would be scored in sample:
    it is left out and counted."""
    from sim.hw import calibrate as cal
    from sim.hw import published
    from sim.hw.rows import read_case

    def key(r: dict) -> tuple:
        return tuple(r.get(k, "").strip().lower() for k in ("version", "submitter", "system", "model", "scenario"))

    known = {key(r) for r in data.rows}
    # what the results file has of each product: decides which set a row is in
    fitted = [c for c in data.cases if c.ok and c.index in data.values]
    covered = {(c.profile, c.mig_slices, c.mig_instances, c.model, c.target) for c in fitted}
    products = {c.profile for c in fitted}
    systems = {c.system_key for c in fitted}
    given = cal.read_results(path)
    rows = [r for r in given if key(r) not in known]
    preds = published.predict_rows(rows, full)
    errs, groups, unsupported, no_value = [], {}, 0, 0
    for i, (row, (value, status)) in enumerate(zip(rows, preds)):
        truth = cal.observed(row)
        if status != "ok":
            unsupported += 1
            continue
        if truth is None:
            no_value += 1
            continue
        e = value / truth - 1.0
        case = read_case(row, i)
        label = ev.scenario_label(case)
        errs.append(e)
        if case.profile not in products:
            held = "set=device not in the results file"
        elif (case.profile, case.mig_slices, case.mig_instances, case.model, case.target) not in covered:
            held = "set=model and scenario new for the device"
        elif case.system_key in systems:
            held = "set=system in the file (another round or test)"
        else:
            held = "set=system not in the file, device and test in it"
        keys = [held, f"{held}: {label}", f"device={case.profile}", f"device={case.profile} {label}",
                f"model={case.model}", f"scenario={label}"]
        if case.target in ev.CROSS_TARGETS:
            keys.append(f"{held}: Server and MultiStream")
        for k in keys:
            groups.setdefault(k, []).append(e)
    print(f"\n6. held-out rows ({path}): {len(given)} rows, {len(given) - len(rows)} also in --results (left out), "
          f"{len(errs)} ok, {unsupported} unsupported, {no_value} without a value; every row predicted from the "
          f"calibration fitted on --results")
    print(f"  {'group':40s} {'rows':>5s} {'median |err|':>13s} {'median err':>11s}")
    out = {"rows": len(given), "in_results": len(given) - len(rows), "ok": len(errs), "unsupported": unsupported,
           "without_value": no_value}
    for k, e in [("overall", errs)] + sorted(groups.items()):
        a = np.asarray(e)
        out[k] = {"rows": len(a), "median_abs_error": float(np.median(np.abs(a))),
                  "median_error": float(np.median(a))}
        print(f"  {k:40s} {len(a):5d} {np.median(np.abs(a)):13.1%} {np.median(a):+11.1%}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default=str(DEFAULT_RESULTS))
    ap.add_argument("--workers", type=int, default=0, help="processes (default: up to 2)")
    ap.add_argument("--quick", action="store_true", help="leave-one-system-out and the baseline only")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    ap.add_argument("--section", choices=("all", "lono", "loso"), default="all",
                    help="lono: leave-one-network-out alone (section 0); loso: sections 1 and 2 alone")
    ap.add_argument("--closed-form", action="store_true",
                    help="section 0 in closed form instead of through the simulator (quicker)")
    ap.add_argument("--heldout", default=None, metavar="CSV",
                    help="published rows that are not in --results (same columns, with value): predicted by "
                         "the calibration fitted on --results, errors per device, model and scenario")
    args = ap.parse_args(argv)

    t0 = time.time()
    data = ev.load(args.results)
    five = [i for i, c in enumerate(data.cases) if c.model in ev.FIVE_MODELS and i in data.values
            and not c.version.lower().startswith("mobile")]
    # every row whose network the catalog builds (the five, and any other with a workload)
    networked = [i for i, c in enumerate(data.cases) if i in data.values and c.workload]
    print(f"{args.results}: {len(data.rows)} rows, {len(five)} rows of the five models, {len(networked)} rows "
          f"of networks in the catalog")
    figures: dict = {}
    if args.section != "loso":
        figures["leave_one_network_out"] = lono_section(data, networked, args.workers, not args.closed_form)
    if args.section == "lono":
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=2, default=float) + "\n")
        print(f"\ntotal time {time.time() - t0:.0f} s")
        return 0

    preds, full = ev.leave_one_system_out(data, workers=args.workers)
    errs = ev.abs_errors(preds, data)
    t1 = time.time()
    loso = ev.summarise(errs, data, five)
    table(f"1. leave-one-system-out ({len({data.cases[i].system_key for i in five})} systems, "
          f"{t1 - t0:.0f} s)", loso)
    kinds = {k: v for k, v in loso.items() if k in ("kind=gpu", "kind=asic", "kind=cpu")}
    print("  coverage of gpu / asic / cpu rows: " + ", ".join(f"{k[5:]} {v['coverage']:.0%}" for k, v in kinds.items()))
    figures["leave_one_system_out"] = loso

    twin = ev.abs_errors(ev.twin_lookup(data), data)
    both = [i for i in five if i in twin and i in errs]
    alone = [i for i in five if i in errs and i not in twin]
    print("\n2. twin lookup (same accelerator's other systems, same model and metric, per-device scaling)")
    print(f"  rows with a twin: {len(both)}: twin lookup {median(twin, both):.1%}, simulator {median(errs, both):.1%}")
    for kind in ("gpu", "asic", "cpu"):
        sub = [i for i in both if data.cases[i].kind == kind]
        if sub:
            print(f"    {kind:5s} {len(sub):5d} rows: twin lookup {median(twin, sub):.1%}, simulator {median(errs, sub):.1%}")
    print(f"  rows without a twin: {len(alone)}: simulator {median(errs, alone):.1%}")
    figures["twin_lookup"] = {"rows_with_twin": len(both), "twin_median": median(twin, both),
                              "simulator_median_same_rows": median(errs, both), "rows_without_twin": len(alone),
                              "simulator_median_without_twin": median(errs, alone)}

    if not args.quick and args.section == "all":
        cross = ev.abs_errors(ev.cross_scenario(data, full, workers=args.workers), data)
        rows = [i for i in five if data.cases[i].target in ev.CROSS_TARGETS]
        table("3a. cross-scenario, per device: Server and MultiStream from its Offline + SingleStream rows "
              "(other devices keep all rows)", ev.summarise(cross, data, rows))
        strict = ev.abs_errors(ev.cross_scenario(data, full, workers=args.workers, strict=True), data)
        table("3b. cross-scenario, strict: no Server or MultiStream row in any fit", ev.summarise(strict, data, rows))
        per_product = ev.abs_errors(ev.cross_scenario(data, full, workers=args.workers, per="product"), data)
        table("3c. cross-scenario, per product: Server and MultiStream from its Offline + SingleStream rows "
              "(its chip's other products keep all rows)", ev.summarise(per_product, data, rows))
        figures["cross_scenario"] = ev.summarise(cross, data, rows)
        figures["cross_scenario_strict"] = ev.summarise(strict, data, rows)
        figures["cross_scenario_per_product"] = ev.summarise(per_product, data, rows)

        prod = ev.abs_errors(ev.leave_one_product_out(data, full, workers=args.workers), data)
        table("4. leave-one-product-out: a product with none of its rows in any fit", ev.summarise(prod, data, five))
        print("  per product (devices of the issue's list first):")
        products = sorted({data.cases[i].profile for i in five if data.cases[i].ok},
                          key=lambda p: (p not in ISSUE_DEVICES, p))
        per = {}
        for p in products:
            rows = [i for i in five if data.cases[i].profile == p]
            e = [prod[i] for i in rows if i in prod]
            if e:
                per[p] = {"rows": len(rows), "median_abs_error": float(np.median(e))}
                print(f"    {p:22s} {len(rows):5d} rows  median |error| {np.median(e):6.1%}")
        listed = [i for i in five if data.cases[i].profile in ISSUE_DEVICES]
        print(f"  devices of the issue's list, all rows: median |error| {median(prod, listed):.1%}")
        figures["leave_one_product_out"] = {"summary": ev.summarise(prod, data, five), "per_product": per,
                                            "issue_devices_median": median(prod, listed)}
        from sim.hw import local_cpu

        local = local_cpu.compare()
        print("\n5. " + local_cpu.report(local))
        figures["local_cpu"] = {k: v for k, v in local.items() if k != "class_rows"}
        one = ev.one_network_to_others(data, full)
        print("\n7. one network to the others: each unit refitted on one network's rows, its other networks "
              "predicted (closed form, no Server rows)")
        for k in sorted(one):
            print(f"  {k:12s} {len(one[k]):6d} rows  median |error| {np.median(one[k]):6.1%}")
        figures["one_network_to_others"] = {k: {"rows": len(v), "median_abs_error": float(np.median(v))}
                                            for k, v in one.items()}
    if args.heldout:
        figures["held_out"] = held_out(args.heldout, full, data)
    print(f"\ntotal time {time.time() - t0:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, default=float) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
