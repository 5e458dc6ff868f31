"""``python -m sim predict-published --in ROWS.csv --out PRED.csv``: predict published MLPerf rows
(``sim.hw.published``)."""

from __future__ import annotations

import sys

from sim.commands.args import add_out_dir, out_file
from sim.hw import published

NAME = "predict-published"
OUT_DEST = "out_file"        # DIR/predictions.csv, checked before the work (sim.cli.OUTPUTS)
MAX_WARNINGS = 10       # bad rows named on stderr; every one has its status in the output file


def add_parser(subparsers):
    p = subparsers.add_parser(NAME, help="predict published MLPerf results (Offline, Server, SingleStream, "
                                         "MultiStream) from system descriptions")
    p.add_argument("--in", dest="input", required=True, help="CSV of systems and tests (results.csv's columns)")
    add_out_dir(p, "predictions.csv: the same rows plus predicted_value and status",
                old="a file name ending in .csv (the old meaning) with a note")
    p.set_defaults(out_required=True)
    p.add_argument("--results", default=None, help="published results to calibrate on (default: the shared file)")
    p.add_argument("--explain", action="store_true",
                   help="add columns: precision and why, parameter source, correction, and "
                        "server_uncapped (a Server prediction capped at its system's Offline one: the value before)")
    return p


def normalize(args) -> None:
    if args.out is None:
        from sim.errors import InputError  # noqa: PLC0415 - only on this error
        raise InputError("predict-published: --out DIR is required (the folder for predictions.csv)")
    setattr(args, OUT_DEST, out_file(args, NAME, "predictions.csv", (".csv",)))


def run(args) -> int:
    from sim.hw import llm_published  # noqa: PLC0415 - the LLM branch, only when asked
    llm = llm_published.read_if_llm(args.input)
    if llm is not None:          # a file in the LLM results schema (sim.hw.llm_published)
        return llm_published.run_command(args, getattr(args, OUT_DEST), *llm)
    header, rows = published.read_rows(args.input)
    calib = published.calibration_from(args.results)
    uncapped: dict = {}
    preds = published.predict_rows(rows, calib, uncapped)
    extra = None
    if args.explain:
        extra = [published.explain_row(r, calib) for r in rows]
        for k, e in enumerate(extra):
            # a Server row capped at its system's Offline prediction: what its own correction gave
            e["server_uncapped"] = f"{uncapped[k]:.6g}" if k in uncapped else ""
    out = published.write_predictions(getattr(args, OUT_DEST), header, rows, preds, extra)
    ok = sum(1 for _, s in preds if s == "ok")
    print(f"wrote {out}: {len(rows)} rows, {ok} ok, {len(rows) - ok} unsupported")
    # a row with a bad value is unsupported, the others predicted: each named once on stderr
    bad = [s[len("unsupported: "):] for _, s in preds if s.startswith("unsupported: row ")]
    for reason in bad[:MAX_WARNINGS]:
        print(f"warning: {args.input}: {reason}", file=sys.stderr)
    if len(bad) > MAX_WARNINGS:
        print(f"warning: {args.input}: {len(bad) - MAX_WARNINGS} more rows with bad values (see their status "
              f"in {out})", file=sys.stderr)
    return 0
