"""What this machine's repeatability allows: the figures of docs/validation.md's section of that name.

    python benchmarks/validation_noise_floor.py                      # from docs/validation_history.json
    python benchmarks/validation_noise_floor.py --repeats 3,9,25 --draws 20000 --seed 1

No model and no new run: a perfect model (the median of each metric's run-to-run distribution)
scored against the median of n real repeats resampled from the kept sets of real runs, and
one kept set's measured values as the prediction of another's (``sim.validate.noise_floor``).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sim.validate import LOAD_BASES, history, noise_floor  # noqa: E402  (after the path is set)
from sim.validate.experiment import QUICK, Durations  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--history", default=str(ROOT / "docs" / "validation_history.json"))
    ap.add_argument("--server-loads-of", choices=LOAD_BASES, default="peak",
                    help="pool the Server latencies of the sets whose loads were fractions of this (default: peak)")
    ap.add_argument("--quick", action="store_true", help="the sets made with --quick run lengths")
    ap.add_argument("--repeats", default=",".join(map(str, noise_floor.REPEATS)),
                    help="comma-separated repeat counts (default: %(default)s)")
    ap.add_argument("--draws", type=int, default=10_000, help="simulated reports per repeat count")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        repeats = [int(x) for x in args.repeats.split(",")]
    except ValueError:
        ap.error(f"--repeats {args.repeats!r}: expected comma-separated whole numbers, e.g. 3,9,25")
    if min(repeats) < 1 or args.draws < 1:
        ap.error(f"--repeats {args.repeats!r} and --draws {args.draws}: expected at least 1 each")
    entries = history.load(args.history)
    lines = noise_floor.markdown_lines(entries, asdict(QUICK if args.quick else Durations()), args.server_loads_of,
                                       repeats=repeats, draws=args.draws, seed=args.seed)
    if not lines:
        print(f"{args.history}: fewer than two kept sets with per-metric records at these run lengths; "
              "nothing to compare", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
