"""benchmarks/validation_zoo.py: per-model summaries of validation records and the report
section it puts into a markdown file (kept when the main report is regenerated)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from sim.validate.report import kept_sections, put_section

_SPEC = importlib.util.spec_from_file_location(
    "validation_zoo", Path(__file__).resolve().parent.parent / "benchmarks" / "validation_zoo.py")
zoo = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(zoo)


def _rec(scenario, metric, err, at_speed=None):
    return {"scenario": scenario, "metric": metric, "error_pct": err,
            "error_at_run_speed_pct": err if at_speed is None else at_speed}


RECORDS = [_rec("Offline", "samples/s", -2.0, -1.0), _rec("SingleStream", "p90 latency (ms)", 4.0, 3.0),
           _rec("Server", "peak VALID QPS", 12.0, 2.0), _rec("Server", "p99 latency at 30% load (ms)", -30.0, -5.0),
           _rec("MultiStream", "p99 latency (ms)", 1.0, 1.0)]


def test_summary_row_takes_medians_and_the_headline_errors():
    row = zoo.summary_row("m", RECORDS)
    assert row["metrics"] == 5
    assert row["median_abs_error_pct"] == pytest.approx(4.0)          # |e| = 2, 4, 12, 30, 1
    assert row["median_abs_error_at_run_speed_pct"] == pytest.approx(2.0)   # 1, 3, 2, 5, 1
    assert row["worst_abs_error_pct"] == 30.0 and row["worst_metric"] == "Server p99 latency at 30% load (ms)"
    assert row["Offline samples/s"] == -2.0 and row["Server peak VALID QPS"] == 12.0
    assert zoo.summary_row("m", RECORDS[:2])["Server peak VALID QPS"] is None


def test_the_section_replaces_its_earlier_self_and_survives_the_report(tmp_path):
    doc = tmp_path / "validation.md"
    doc.write_text("# Report\n\nbody\n")
    report = {"setups": {"default": {"rows": [zoo.summary_row("m", RECORDS)], "records": RECORDS}}}
    for note in ("first", "second"):
        put_section(doc, zoo.markdown_section(report, "python benchmarks/validation_zoo.py", [note]),
                    zoo.SECTION_START, zoo.SECTION_END)
    text = doc.read_text()
    assert text.startswith("# Report\n\nbody\n") and text.count(zoo.SECTION_START) == 1
    assert "- second" in text and "- first" not in text
    assert "| m | 5 | 4.0 | 2.0 | 30.0 | -2.0 | +4.0 | +12.0 | Server p99 latency at 30% load (ms) |" in text
    assert "All 5 metrics: median |error| 4.0%" in text
    (block,) = kept_sections(text)
    assert block.startswith(zoo.SECTION_START) and block.endswith(zoo.SECTION_END)
