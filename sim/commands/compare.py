"""``python -m sim compare``: devices side by side on one workload (``sim.apps.compare``)."""

from __future__ import annotations

from sim.apps import compare
from sim.commands.args import add_input_shape_arg, add_out_dir, device_count, out_prefix, use_input_shapes
from sim.errors import InputError

NAME = "compare"
OUT_DEST = "out_prefix"      # DIR/compare, checked before the work (sim.cli.OUTPUTS)


def add_parser(subparsers):
    p = subparsers.add_parser(NAME, help="devices side by side on one workload (calibrated hardware model)")
    p.add_argument("--workload", default="resnet50")
    p.add_argument("--devices", required=True, help="comma-separated profile names, e.g. t4,l4,a100-sxm")
    p.add_argument("--count", type=device_count, default=1, help="devices per system")
    add_out_dir(p, "compare.csv and compare.md", old="a path prefix (the old meaning) with a note")
    add_input_shape_arg(p)
    p.add_argument("--precision", help="LLM workloads: weights and KV precision (default fp8 where the device has it)")
    p.add_argument("--price", help="LLM workloads: price per device where the profile has none, e.g. h100-sxm=30000")
    return p


def normalize(args) -> None:
    setattr(args, OUT_DEST, out_prefix(args, NAME, "compare", (".csv", ".md")))


def run_llm(args) -> int:
    """The LLM branch: ``sim.apps.llm_compare`` (one node per device, tokens/s per device, $ and watt)."""
    from sim.apps import llm_compare  # noqa: PLC0415 - the LLM engine, only for LLM workloads
    from sim.commands.plan import _pairs  # noqa: PLC0415

    if getattr(args, "input_shape", None):
        raise InputError(f"compare --input-shape: not used for LLM workload {args.workload!r}")
    node = args.count if args.count > 1 else llm_compare.NODE_DEVICES
    devices = [d for d in args.devices.split(",") if d]
    print(f"comparing {args.workload} on {', '.join(devices)}: one node of {node} per device (--count N for another "
          f"size), an Offline run and a Server peak search each", flush=True)
    rows = llm_compare.compare_llm(args.workload, devices, node, precision=args.precision,
                                   prices=_pairs(args.price, "--price"))
    print(llm_compare.to_markdown(rows, args.workload), end="")
    if getattr(args, OUT_DEST):
        print("wrote " + ", ".join(str(p) for p in llm_compare.write(rows, args.workload, getattr(args, OUT_DEST))))
    return 0 if any(r.status == "ok" for r in rows) else 1     # no device could be modelled (sim/cli.py)


def run(args) -> int:
    from sim.workload.llm import is_llm_workload  # noqa: PLC0415 - the LLM branch

    if is_llm_workload(args.workload):
        return run_llm(args)
    for name, value in (("--precision", args.precision), ("--price", args.price)):
        if value is not None:
            raise InputError(f"compare {name}: for LLM workloads only; {args.workload!r} is not one")
    use_input_shapes(args)
    from sim.util import progress  # noqa: PLC0415 - only when comparing

    devices = [d for d in args.devices.split(",") if d]
    print(f"comparing {args.workload} on {args.count} x each of {', '.join(devices)}: predicted with the hardware "
          f"model calibrated on published MLPerf results (sim.hw), each scenario through the simulator", flush=True)
    with progress.stage("fitting or loading the hardware model, then predicting (the fit is cached after the first "
                        "run)"):
        rows = compare.compare(args.workload, devices, args.count)
    print(compare.to_markdown(rows), end="")
    if getattr(args, OUT_DEST):
        print("wrote " + ", ".join(str(p) for p in compare.write(rows, getattr(args, OUT_DEST))))
    return 0
