"""How many published LLM rows become prediction tasks, and why the others do not.

Reads ../shared/data/mlperf_llm_results/results.csv (or the path given) with
``sim.hw.llm_rows.read_task`` and prints the supported and unsupported counts by benchmark,
by device profile and by reason. Run: ``python benchmarks/llm_rows_coverage.py [results.csv]``.
"""

from __future__ import annotations

import collections
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sim.hw import llm_rows  # noqa: E402
from sim.paths import REPO_ROOT  # noqa: E402
from sim.util.textfile import read_csv  # noqa: E402

DEFAULT = REPO_ROOT.parent / "shared" / "data" / "mlperf_llm_results" / "results.csv"


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else DEFAULT
    _, rows = read_csv(path, "a published LLM results file")
    tasks = llm_rows.read_tasks(rows)
    ok = [t for t in tasks if t.ok]
    print(f"{path}: {len(tasks)} rows, {len(ok)} supported, {len(tasks) - len(ok)} unsupported")
    by_bench = collections.Counter((t.benchmark, t.ok) for t in tasks)
    print("\nby benchmark (supported / unsupported):")
    for b in sorted({t.benchmark for t in tasks}):
        print(f"  {b:22s} {by_bench[(b, True)]:4d} / {by_bench[(b, False)]:4d}")
    by_dev = collections.Counter((t.profile or "-", t.ok) for t in tasks)
    print("\nby device profile (supported / unsupported):")
    for d in sorted({t.profile or "-" for t in tasks}):
        print(f"  {d:22s} {by_dev[(d, True)]:4d} / {by_dev[(d, False)]:4d}")
    print("\nby scenario (supported):", dict(collections.Counter(t.scenario for t in ok)))
    print("by stack (supported):", dict(collections.Counter(t.stack for t in ok)))
    print("by precision (supported):", dict(collections.Counter(t.precision for t in ok)))
    print(f"multi-node supported rows: {sum(1 for t in ok if t.nodes > 1)}")
    reasons = collections.Counter(re.sub(r"^row \d+: ", "", t.unsupported) for t in tasks if not t.ok)
    print("\nunsupported reasons:")
    for r, n in reasons.most_common():
        print(f"  {n:4d}  {r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
