"""``python -m sim profile``: measure a workload's per-kernel CPU cost with onnxruntime
(``sim.profile.store``, cached)."""

from __future__ import annotations

from sim.commands.args import add_workload_args, int_list, positive_int, take_workload, use_input_shapes

NAME = "profile"


def add_parser(subparsers):
    p = subparsers.add_parser(NAME, help="measure per-kernel CPU cost with onnxruntime")
    add_workload_args(p)
    p.add_argument("--batch-sizes", type=int_list, default=[1, 2, 4, 8])
    p.add_argument("--threads", type=positive_int, default=None, help="intra-op threads (default: all cores)")
    p.add_argument("--cache-dir", default=None,
                   help="profile cache folder (default: $SIM_CACHE_DIR or ~/.cache/mlperf-sim)")
    p.add_argument("--remeasure", action="store_true", help="measure again even if cached")
    return p


def normalize(args) -> None:
    take_workload(args, NAME)


def run(args) -> int:
    from sim.commands.header import this_cpu  # noqa: PLC0415 - reads /proc/cpuinfo
    from sim.profile import store  # noqa: PLC0415 - loads onnx: kept out of `python -m sim --help`
    from sim.util import progress  # noqa: PLC0415 - only when measuring
    from sim.workload import catalog as workloads  # noqa: PLC0415 - loads onnx: kept out of `python -m sim --help`
    from sim.workload import layers  # noqa: PLC0415 - loads onnx: kept out of `python -m sim --help`
    use_input_shapes(args)
    # the model first (a bad name, file or operator fails here, before any other line), then what is done
    with progress.stage(f"loading or building {args.workload} (built models are cached)"):
        w = workloads.resolve(args.workload, small=args.small)
    layers.check_ops(w.model, str(w.path))
    progress.say(f"profiling {w.name} with onnxruntime on this machine's CPU ({this_cpu()}), batch sizes "
                 f"{','.join(map(str, args.batch_sizes))}, {args.threads or 'default'} threads "
                 f"(from the cache when measured before{'; --remeasure: measuring again' if args.remeasure else ''})")
    with progress.stage(f"measuring or loading the profile of {w.name}"):
        profile = store.load_or_measure(w, batch_sizes=args.batch_sizes, threads=args.threads,
                                        cache_dir=args.cache_dir, remeasure=args.remeasure)
    print(store.summarise(profile))
    return 0
