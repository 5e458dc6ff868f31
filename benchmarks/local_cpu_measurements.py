"""Write this machine's measured onnxruntime latencies as calibration data for ``local-cpu``.

    python benchmarks/local_cpu_measurements.py [--out hw_profiles/measured/local-cpu.csv] [--check]

Measures (or reuses the cached profiles of, ``python -m sim profile``) ResNet-50 at batch
1, 2, 4 and 8, SSD-MobileNet at 1, 2, 4 and 8 and BERT-large (sequence 384) at 1 and 2,
onnxruntime's CPU execution provider with its default threads (all cores), the models
built in code at FP32, and writes one row per batch in the format of
``sim.hw.calibrate.read_measurements``: ``device, model, batch, latency_ms, precision,
framework, source``. ``latency_ms`` is the median busy (back-to-back) latency of the
batch; ``source`` says when, with what and on which machine it was measured.

The ``local-cpu`` profile describes one machine (its CPU, cores and memory are in
``hw_profiles/local-cpu.yaml``). The script refuses to write when this machine's CPU
model or core count differs from the profile's (``--force`` writes anyway), so another
machine's numbers do not land under its name. ``--check`` prints the rows without
writing. The calibration (``sim.hw.published.calibration_from``) fits the ``local-cpu``
unit on the file.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sim.hw import profiles  # noqa: E402
from sim.profile import store  # noqa: E402
from sim.util import atomic  # noqa: E402
from sim.workload import catalog as workloads  # noqa: E402

PLAN = (("resnet50", "resnet50", (1, 2, 4, 8)), ("ssd_mobilenet_v1", "ssd-mobilenet", (1, 2, 4, 8)),
        ("bert_large", "bert-99", (1, 2)))
DEFAULT_OUT = profiles.profiles_dir() / "measured" / "local-cpu.csv"
EXPECTED_CPU = "AMD EPYC"


def rows(plan=PLAN) -> list[dict]:
    out = []
    for name, model, batches in plan:
        w = workloads.build(name)
        prof = store.load_or_measure(w, batch_sizes=batches)
        fp = prof["fingerprint"]
        for b in batches:
            entry = prof["batches"][str(b)]
            busy = entry["end_to_end"]["clean_busy_ns"]
            out.append({
                "device": "local-cpu", "model": model, "batch": b, "latency_ms": f"{busy['median'] / 1e6:.3f}",
                "precision": "fp32", "framework": f"onnxruntime {fp['onnxruntime']}",
                "source": (f"measured {entry['measured_utc'][:16]}Z: python -m sim profile {name} "
                           f"--batch-sizes {','.join(map(str, batches))}; median of {busy['n']} back-to-back runs "
                           f"(p10-p90 {busy['p10'] / 1e6:.2f}-{busy['p90'] / 1e6:.2f} ms); {fp['cpu_model']}, "
                           f"{fp['usable_cores']} cores, onnxruntime {fp['onnxruntime']} CPUExecutionProvider, "
                           f"default threads; model sha256 {w.sha256[:12]}")})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    ap.add_argument("--check", action="store_true", help="print the rows, write nothing")
    ap.add_argument("--force", action="store_true", help="write even if this machine is not the profile's")
    args = ap.parse_args(argv)
    from sim.util.fingerprint import fingerprint

    fp = fingerprint()
    prof = profiles.get("local-cpu")
    if not args.check and not args.force and (EXPECTED_CPU not in str(fp.get("cpu_model", ""))
                                              or fp.get("usable_cores") != prof.compute_units):
        print(f"this machine ({fp.get('cpu_model')}, {fp.get('usable_cores')} cores) is not the one "
              f"hw_profiles/local-cpu.yaml describes ({EXPECTED_CPU}, {prof.compute_units} cores): not written "
              f"(--force to write anyway)", file=sys.stderr)
        return 2
    got = rows()
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(got[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(got)
    print(buf.getvalue(), end="")
    if not args.check:
        atomic.write_text(Path(args.out), buf.getvalue())
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
