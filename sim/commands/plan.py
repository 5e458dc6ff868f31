"""``python -m sim plan``: the command line, the table and the files of ``sim.apps.plan``."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict

from sim.apps import plan as planner
from sim.apps.plan.ranking import ranked
from sim.commands.args import (
    add_input_shape_arg,
    add_out_dir,
    device_count,
    duration_ms,
    latency_ms,
    non_negative,
    out_prefix,
    qps,
    query_count,
    use_input_shapes,
)
from sim.errors import InputError
from sim.loadgen.scenarios import OFFLINE, percentile_label
from sim.util import atomic
from sim.util.checks import flag

NAME = "plan"
_HEADROOM = flag(**planner.HEADROOM)

COLUMNS = ("rank", "device", "kind", "count", "batching", "value", "value_units", "utilisation_pct",
           "price_usd_total", "usd_per_hour_total", "power_w_total", "binding", "plus10_load", "status",
           "precision", "source")


def _pairs(text: str | None, flag: str) -> dict:
    """``t4=2000,l4=2500`` -> {"t4": 2000.0, "l4": 2500.0}."""
    out = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        try:
            v = float(value)
        except ValueError:
            v = float("nan")
        if not sep or not name.strip() or not 0 < v < math.inf:
            raise InputError(f"{flag} {item!r}: expected DEVICE=AMOUNT with AMOUNT > 0, e.g. t4=2000")
        out[name.strip()] = v
    return out


def add_parser(subparsers):
    p = subparsers.add_parser(NAME, help="smallest system per device that meets a target, ranked (capacity planning)")
    p.add_argument("--workload", default="resnet50", help="a model the hardware model covers (default resnet50)")
    p.add_argument("--scenario", default="Server", choices=planner.SCENARIOS)
    p.add_argument("--qps", type=qps, help="Server target QPS, or Offline samples/s")
    p.add_argument("--latency-ms", type=latency_ms,
                   help="Server latency bound (default: the model's MLPerf bound); SingleStream p90 / "
                        "MultiStream p99 limit")
    p.add_argument("--devices", required=True, help="comma-separated profile names, e.g. t4,l4,a100-sxm")
    p.add_argument("--headroom", type=_HEADROOM, default=0.1,
                   help="margin the plan keeps: load x (1 + h), or latency / (1 + h) (default 0.1)")
    p.add_argument("--objective", default="count", choices=("cost", "hourly", "power", "count"),
                   help="rank by purchase price, $/hour, watts (TDP) or device count (default count)")
    p.add_argument("--budget", type=non_negative, help="purchase budget in USD: plans above it are marked")
    p.add_argument("--price", help="purchase price per device where the profile has none, e.g. t4=2000,l4=2500")
    p.add_argument("--hourly", help="$/hour per device (cloud), e.g. t4=0.53,l4=0.80")
    p.add_argument("--max-devices", type=device_count, default=256, help="largest count tried (default 256)")
    p.add_argument("--min-duration-ms", type=duration_ms,
                   help="shorter simulated runs than MLPerf's 600 s (faster, less strict)")
    p.add_argument("--min-query-count", type=query_count, help="override LoadGen's minimum query count")
    add_out_dir(p, "plan.csv, plan.md and plan.json", old="a path prefix (the old meaning) with a note")
    add_input_shape_arg(p)
    p.add_argument("--ttft-ms", type=latency_ms, help="LLM workloads: TTFT p99 limit (default: the benchmark's)")
    p.add_argument("--tpot-ms", type=latency_ms, help="LLM workloads: TPOT p99 limit (default: the benchmark's)")
    p.add_argument("--precision", help="LLM workloads: weights and KV precision (default fp8 where the device has it)")
    return p


def normalize(args) -> None:
    """``args.out_prefix``: DIR/plan for ``--out DIR`` (checked before the work, ``sim.cli``)."""
    args.out_prefix = out_prefix(args, NAME, "plan", (".csv", ".md", ".json"))


def run_llm(args) -> int:
    """The LLM branch: ``sim.apps.llm_plan`` (TP x replicas x batch limit searched per device)."""
    from sim.apps import llm_plan  # noqa: PLC0415 - the LLM engine, only for LLM workloads

    for name, value in (("--latency-ms", args.latency_ms), ("--budget", args.budget), ("--hourly", args.hourly),
                        ("--input-shape", getattr(args, "input_shape", None))):
        if value is not None:
            raise InputError(f"plan {name}: not used for LLM workload {args.workload!r}; expected --ttft-ms, "
                             f"--tpot-ms, --price, --precision")
    if args.scenario not in ("Server",):
        raise InputError(f"plan --scenario {args.scenario}: an LLM plan is for Server (QPS at TTFT/TPOT limits)")
    if args.qps is None:
        raise InputError("plan --qps: an LLM plan needs a target rate > 0 (queries/s)")
    target = llm_plan.LLMTarget(qps=args.qps, ttft_ms=args.ttft_ms, tpot_ms=args.tpot_ms, headroom=args.headroom,
                                confirm_duration_ms=args.min_duration_ms)
    devices = [d.strip() for d in args.devices.split(",") if d.strip()]
    print(f"planning {args.workload} for {', '.join(devices)}: TP x replicas x batch limit searched with "
          f"{llm_plan.TRIAL_S:g} s simulated Server trials, the answer confirmed with "
          + ("MLPerf-length runs" if args.min_duration_ms is None else f"runs of {args.min_duration_ms:g} ms"),
          flush=True)
    plans = llm_plan.plan_llm(args.workload, target, devices, prices=_pairs(args.price, "--price"),
                              precision=args.precision, max_devices=args.max_devices,
                              log=lambda m: print(f"  {m}", flush=True))
    print()
    print(llm_plan.to_markdown(plans, args.workload, target), end="")
    if args.out_prefix:
        print("wrote " + ", ".join(str(p) for p in llm_plan.write(plans, args.workload, target, args.out_prefix)))
    if not any(p.devices for p in plans):
        print("no device meets the target (see the reasons above)")
        return 1
    return 0


def run(args) -> int:
    from sim.workload.llm import is_llm_workload  # noqa: PLC0415 - the LLM branch

    if is_llm_workload(args.workload):
        return run_llm(args)
    for name, value in (("--ttft-ms", args.ttft_ms), ("--tpot-ms", args.tpot_ms), ("--precision", args.precision)):
        if value is not None:
            raise InputError(f"plan {name}: for LLM workloads only; {args.workload!r} is not one (--latency-ms sets "
                             f"its bound)")
    use_input_shapes(args)
    from sim.util import progress  # noqa: PLC0415 - only when planning

    target = planner.Target(args.scenario, args.qps, args.latency_ms, args.headroom, args.min_duration_ms,
                            args.min_query_count)
    devices = [d.strip() for d in args.devices.split(",") if d.strip()]
    prices, hourly = _pairs(args.price, "--price"), _pairs(args.hourly, "--hourly")
    runs = "MLPerf-length runs (600 s simulated each)" if args.min_duration_ms is None else \
        f"runs of {args.min_duration_ms:g} ms simulated"
    print(f"planning {args.workload} for {', '.join(devices)}: each device's count searched with simulated "
          f"{args.scenario} runs of the calibrated hardware model (sim.hw, published MLPerf results), {runs}",
          flush=True)
    with progress.task("planning", total=len(devices), unit="devices") as t:
        def log(message: str) -> None:
            t.advance(note=message.strip())
        plans = planner.plan(args.workload, target, devices, args.objective, args.budget, args.max_devices,
                             prices, hourly, log=log)
    print()
    print(to_markdown(plans, target, args.objective, args.workload), end="")
    if args.out_prefix:
        print("wrote " + ", ".join(str(p) for p in write(plans, target, args.objective, args.workload,
                                                             args.out_prefix)))
    if not any(p.chosen for p in plans):
        print("no device meets the target (see the reasons above)")
        return 1        # the question has no answer (exit codes: sim/cli.py)
    return 0


def _units(target) -> str:
    return "samples/s" if target.scenario == OFFLINE else f"{percentile_label(target.scenario)} ms"


def rows(plans, target, objective: str) -> list[dict]:
    out = []
    k = 0
    for p in plans:
        c = p.chosen or p.best
        if ranked(p, objective):
            k += 1

        def tot(v):
            return "" if v is None or p.chosen is None else f"{v * p.chosen.count:.6g}"
        out.append({
            "rank": k if ranked(p, objective) else "", "device": p.device, "kind": p.kind,
            "count": p.chosen.count if p.chosen else "", "batching": c.batching if c else "",
            "value": "" if c is None or c.value is None else f"{c.value:.4g}", "value_units": _units(target),
            "utilisation_pct": "" if c is None or c.utilisation is None else f"{100 * c.utilisation:.0f}",
            "price_usd_total": tot(p.price_usd), "usd_per_hour_total": tot(p.usd_per_hour),
            "power_w_total": tot(p.tdp_w), "binding": p.binding, "plus10_load": p.sensitivity,
            "status": p.status + (" (over budget)" if p.over_budget else ""),
            "precision": p.precision, "source": p.source})
    return out


def describe_target(target, workload: str) -> str:
    t = target
    if t.scenario == "Server":
        bound = f"p99 <= {t.latency_ms:g} ms" if t.latency_ms else "the model's MLPerf latency bound"
        what = f"Server {t.qps:,.0f} QPS at {bound}, planned at {t.required_qps():,.0f} QPS ({t.headroom:.0%} headroom)"
    elif t.scenario == "Offline":
        what = f"Offline {t.qps:,.0f} samples/s, planned at {t.required_qps():,.0f} ({t.headroom:.0%} headroom)"
    else:
        pct = percentile_label(t.scenario)
        what = (f"{t.scenario} {pct} <= {t.latency_ms:g} ms, planned at <= {t.latency_limit_ns() / 1e6:.3g} ms "
                f"({t.headroom:.0%} headroom)")
    runs = "MLPerf run rules" if t.min_duration_ms is None else f"runs of at least {t.min_duration_ms:g} ms"
    return f"{workload}: {what}; {runs}"


_QUANTITY = {"cost": "purchase price", "hourly": "$/hour", "power": "TDP", "count": "count"}


def to_markdown(plans, target, objective: str, workload: str) -> str:
    head = ("rank", "device", "count", "batching", "value", "utilisation_pct", "price_usd_total", "power_w_total",
            "binding")
    lines = [f"Plan for {describe_target(target, workload)}; ranked by {objective}.", "",
             "| " + " | ".join(h if h != "value" else _units(target) for h in head) + " |",
             "|" + "---|" * len(head)]
    rs = rows(plans, target, objective)
    for r in rs:
        lines.append("| " + " | ".join(str(r[h]) or "-" for h in head) + " |")
    lines.append("")
    unknown = [p.device for p in plans if p.chosen and not ranked(p, objective)]
    if unknown:
        flag = {"cost": "--price DEVICE=USD", "hourly": "--hourly DEVICE=USD_PER_HOUR"}.get(objective, "")
        lines += [f"Not ranked by {objective} (their profiles have no {_QUANTITY[objective]}"
                  f"{'; give ' + flag if flag else ''}): {', '.join(unknown)}; listed apart, without a rank, "
                  f"after the ranked ones, by device count.", ""]
    for p, r in zip(plans, rs):
        if p.chosen:
            lines.append(f"- {p.device}: {planner._devices(p.chosen.count)}, {p.chosen.batching}; {p.chosen.detail}.")
            if p.smaller:
                lines.append(f"  One fewer ({p.smaller.count}): {p.smaller.detail}.")
            lines.append(f"  Binding: {p.binding}. Sensitivity: {p.sensitivity}.")
            if p.over_budget:
                lines.append("  Over the budget (or no price known to check it).")
            lines.append(f"  Precision {p.precision}; parameters: {p.source}.")
        else:
            lines.append(f"- {p.device}: {p.status}")
    return "\n".join(lines) + "\n"


def to_csv(plans, target, objective: str) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows(plans, target, objective):
        w.writerow(r)
    return buf.getvalue()


def to_json(plans, target, objective: str, workload: str) -> str:
    return json.dumps({"schema": "sim.plan/1", "workload": workload, "target": asdict(target),
                       "objective": objective, "plans": [asdict(p) for p in plans]}, indent=1) + "\n"


def write(plans, target, objective: str, workload: str, prefix: str) -> list:
    return [atomic.write_text(prefix + ".csv", to_csv(plans, target, objective)),
            atomic.write_text(prefix + ".md", to_markdown(plans, target, objective, workload)),
            atomic.write_text(prefix + ".json", to_json(plans, target, objective, workload))]

