"""The validation report's history: one entry per set of real runs, replaced when the same runs
are reported again, never dropped; bad files are refused with their name."""

import json

import numpy as np
import pytest

from sim.errors import InputError
from sim.validate import history


def _result(workload, errors, finished, seconds=600.0):
    recs = [{"workload": workload, "scenario": "Server", "metric": f"m{i}", "error_pct": e,
             "measured_spread_pct": 2.0 * abs(e)} for i, e in enumerate(errors)]
    return {"workload": workload, "system": "1x1", "records": recs, "finished_utc": finished,
            "seconds": seconds}


def test_entry_summarises_overall_and_per_workload():
    a = _result("resnet50", [1.0, -3.0, 12.0], "2026-11-25T10:30:00Z", seconds=1800)
    b = _result("dlrm", [-0.5, 4.0], "2026-11-25T11:00:00Z", seconds=1200)
    e = history.entry([a, b], "method M", "abc1234", "cmd")
    errs = [1.0, 3.0, 12.0, 0.5, 4.0]
    assert e["summary"]["median_abs_error_pct"] == pytest.approx(np.median(errs))
    assert e["summary"]["worst_abs_error_pct"] == 12.0
    assert e["summary"]["worst"] == "resnet50 Server m2"
    assert e["summary"]["within_10pct"] == 4
    per = {w["workload"]: w for w in e["workloads"]}
    assert per["resnet50"]["median_abs_error_pct"] == pytest.approx(3.0)
    assert per["dlrm"]["worst_abs_error_pct"] == 4.0
    # the runs began 30 minutes before resnet50 finished and ended when dlrm finished
    assert e["period_utc"] == "2026-11-25 10:00-11:00"


def test_update_replaces_the_same_runs_and_keeps_the_others(tmp_path):
    path = tmp_path / "h.json"
    first = history.entry([_result("w", [10.0], "2026-11-25T10:00:00Z")], "M", "c1", "cmd")
    later = history.entry([_result("w", [2.0], "2026-11-25T14:00:00Z")], "M", "c2", "cmd")
    history.update(path, later)
    history.update(path, first)
    again = history.entry([_result("w", [9.0], "2026-11-25T10:00:00Z")], "M", "c3", "cmd")  # same runs, new prediction
    entries = history.update(path, again)
    assert [e["commit"] for e in entries] == ["c3", "c2"]          # oldest runs first, c1 replaced
    assert [e["summary"]["worst_abs_error_pct"] for e in history.load(path)] == [9.0, 2.0]
    lines = history.markdown_lines(entries, later["key"])
    assert len(lines) == 4 and "(this report)" in lines[3] and "(this report)" not in lines[2]
    assert not list(tmp_path.glob(".*tmp"))                         # written atomically, nothing left over


def test_bad_history_files_and_results_are_refused(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="bad.json"):
        history.load(bad)
    bad.write_text(json.dumps({"schema": "other/1", "entries": []}))
    with pytest.raises(InputError, match="schema 'other/1'"):
        history.load(bad)
    bad.write_text(json.dumps({"schema": history.SCHEMA, "entries": [{"key": ["k"]}]}))
    with pytest.raises(InputError, match=r"entries\[0\] lacks period_utc"):
        history.load(bad)
    with pytest.raises(InputError, match="no finished_utc"):
        history.entry([_result("w", [1.0], None)], "M", "c", "cmd")
    assert history.load(tmp_path / "absent.json") == []


def _report_script():
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "validation_report.py"
    spec = importlib.util.spec_from_file_location("validation_report", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_a_report_from_kept_results_names_the_machine_they_ran_on():
    runs_machine = _report_script().runs_machine
    there, here = {"hash": "aaa", "os": "Linux 1"}, {"hash": "bbb", "os": "Linux 2"}
    assert runs_machine([{"workload": "a", "fingerprint": there}, {"workload": "b", "fingerprint": there}],
                        here) == there
    assert runs_machine([{"workload": "a", "fingerprint": there}, {"workload": "b"}], here) == here
    with pytest.raises(SystemExit, match="a: aaa, b: bbb"):
        runs_machine([{"workload": "a", "fingerprint": there}, {"workload": "b", "fingerprint": here}], here)
