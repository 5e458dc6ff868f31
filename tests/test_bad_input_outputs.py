"""Outputs, exit codes and messages through the command line: a file that is not a command's own
is never overwritten, output paths are refused before any work, temporary files of killed
writes are cleaned, two runs into one folder leave one run's files, a question without an
answer exits 1 and bad input 2, with one line naming what was wrong and what was expected."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from sim.cli import main
from sim.cost.synthetic import parse_synthetic
from sim.errors import InputError
from sim.run import RunResult, simulate
from sim.util import atomic
from sim.validate import experiment

GRID = """\
name: tiny
base: {settings: {min_query_count: 100, min_duration_ns: 10000000}}
axes:
  scenario: [Offline]
  device: [{kind: fixed, time_us: 100}]
"""
FOREIGN_JSON = b'{"name": "my config", "qps": 100, "devices": ["t4", "l4"]}'      # no final newline
FOREIGN_YAML = b"name: my grid\naxes:\n  scenario: [Server]\n"
FOREIGN_ID_LINE = b'{"id": "mine", "note": "a JSON line of another program"}\n'
SHORT_RUN = ["--service-time-ms", "1", "--min-duration-ms", "10", "--min-query-count", "100"]
LONG_RUN = ["--service-time-ms", "1", "--min-duration-ms", "600000", "--min-query-count", "1000000"]


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _tiny_onnx(path: Path) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "tiny", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


# ---- case set-ups: each gets (tmp_path, monkeypatch) and returns the argv ------------------------
def sweep_into(content: bytes):
    def setup(t, mp):
        (t / "g.yaml").write_text(GRID)
        (t / "out.json").write_bytes(content)
        return ["sweep", str(t / "g.yaml"), "--out", str(t / "out.json"), "--workers", "1"]
    return setup


def sweep_resume(t, mp):
    (t / "g.yaml").write_text(GRID)
    argv = ["sweep", str(t / "g.yaml"), "--out", str(t / "r.jsonl"), "--workers", "1"]
    assert main(argv) == 0
    return argv


def compare_again(t, mp):
    argv = ["compare", "--devices", "t4", "--out", str(t / "cmp")]
    assert main(argv) == 0
    return argv


def under_a_file(argv_of):
    def setup(t, mp):
        (t / "afile").write_text("x")
        (t / "g.yaml").write_text(GRID)
        return argv_of(t, t / "afile" / "sub")
    return setup


def is_a_folder(argv_of):
    def setup(t, mp):
        (t / "adir").mkdir()
        (t / "g.yaml").write_text(GRID)
        return argv_of(t, t / "adir")
    return setup


def is_a_file(argv_of):
    def setup(t, mp):
        (t / "afile").write_text("x")
        return argv_of(t, t / "afile")
    return setup


def unwritable(t, mp):
    ro = t / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    if os.access(ro, os.W_OK):
        pytest.skip("this user writes anywhere (root)")
    return ["run", "--scenario", "Offline", *LONG_RUN, "--out", str(ro / "run")]


def stale_temporaries(t, mp):
    out = t / "run"
    out.mkdir()
    dead = out / f".result.json.sim-{atomic._HOST}-{_dead_pid()}-abcd1234.tmp"
    old = out / ".summary.txt.sim-ffffff-1-wxyz5678.tmp"                 # another machine's, two days old
    fresh = out / ".summary.txt.sim-ffffff-1-fresh123.tmp"               # another machine's, in progress
    mine = out / ".notes.tmp"                                             # not a temporary file of ours
    for p in (dead, old, fresh, mine):
        p.write_bytes(b"x" * 1000)
    os.utime(old, (time.time() - 2 * 86400,) * 2)
    return ["run", "--scenario", "Offline", *SHORT_RUN, "--out", str(out)]


def files(**contents: bytes):
    """Files in the test folder (``rows_csv``: rows.csv), then the argv (``{t}``: the test folder)."""
    def setup_of(*args):
        def setup(t, mp):
            for name, content in contents.items():
                path = t / name.replace("__", "/").replace("_", ".")      # a__b_csv: a/b.csv
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content)
            return [a.replace("{t}", str(t)) for a in args]
        return setup
    return setup_of


ROWS = b"system,device,scenario,value\nmy box,t4,Offline,5000\n"
SYSTEM = b"name: my system\naccelerators: {count: 2}\n"


def user_onnx(t, mp):
    model = _tiny_onnx(t / "tiny.onnx")
    return ["run", "--scenario", "Offline", "--workload", str(model), *SHORT_RUN, "--out", str(t / "run")]


def failing_validation(exc: Exception):
    def setup(t, mp):
        def fail(plan):
            (Path(plan.outdir) / "calibration").mkdir(parents=True)
            (Path(plan.outdir) / "calibration" / "partial.json").write_text("{")
            raise exc
        mp.setattr(experiment, "require_loadgen", lambda: None)
        mp.setattr(experiment, "validate_workload", fail)
        return ["validate", "--workload", "mobilenet_v1", "--quick", "--out", str(t / "v" / "out")]
    return setup


def argv(*args):
    return lambda t, mp: list(args)


# ---- post-conditions ---------------------------------------------------------------------------
def unchanged(content: bytes, name: str = "out.json"):
    return lambda t: (t / name).read_bytes() == content


def resumed(t):
    return len((t / "r.jsonl").read_bytes().splitlines()) == 1


def stale_cleaned(t):
    names = {p.name for p in (t / "run").iterdir()}
    kept = {".summary.txt.sim-ffffff-1-fresh123.tmp", ".notes.tmp"}
    return names == kept | {"mlperf_log_summary.txt", "mlperf_log_detail.txt", "result.json"}


def qsl_assumed(t):
    settings = json.loads((t / "run" / "result.json").read_text())["settings"]
    return settings["performance_sample_count"] == 1024


def nothing_left(t):
    return not (t / "v").exists()


def no_output(name):
    return lambda t: not (t / name).exists()


# id, set-up, exit code, words in the output (stdout + stderr), post-condition, refused at once
CASES = [
    ("sweep-foreign-one-line-json", sweep_into(FOREIGN_JSON), 2,
     ["error: --out", "out.json", "not sweep results", "no complete line", "left unchanged"],
     unchanged(FOREIGN_JSON), True),
    ("sweep-foreign-yaml", sweep_into(FOREIGN_YAML), 2,
     ["error: --out", "not sweep results", "first line is not a sweep record", "sim.sweep.record/1"],
     unchanged(FOREIGN_YAML), True),
    ("sweep-foreign-json-line-with-id", sweep_into(FOREIGN_ID_LINE), 2,
     ["error: --out", "not sweep results"], unchanged(FOREIGN_ID_LINE), True),
    ("sweep-own-results-resume", sweep_resume, 0, ["1 points: 1 already in"], resumed, False),
    ("sweep-results-is-a-folder",
     is_a_folder(lambda t, p: (p / "results.jsonl").mkdir() or ["sweep", "--grid", str(t / "g.yaml"), "--out", str(p)]),
     2, ["error: --out", "results.jsonl: is a folder", "expected a file path"], None, True),
    ("sweep-out-under-a-file", under_a_file(lambda t, p: ["sweep", str(t / "g.yaml"), "--out", str(p / "r.jsonl")]),
     2, ["error: --out", "afile is a file, not a folder", "expected a path whose folders can be made"], None, True),
    ("run-out-under-a-file", under_a_file(lambda t, p: ["run", "--scenario", "Server", *LONG_RUN, "--out", str(p)]),
     2, ["error: --out", "is a file, not a folder"], None, True),
    ("run-out-unwritable", unwritable, 2, ["error: --out", "is not writable", "expected a folder this user can write"],
     None, True),
    ("run-trace-is-a-folder", is_a_folder(lambda t, p: ["run", "--scenario", "Server", *LONG_RUN, "--trace", str(p)]),
     2, ["error: --trace", "is a folder", "expected a file path"], None, True),
    ("compare-out-under-a-file", under_a_file(lambda t, p: ["compare", "--devices", "t4", "--out", str(p)]), 2,
     ["error: --out", "compare.csv", "is a file, not a folder"], None, True),
    ("plan-out-under-a-file",
     under_a_file(lambda t, p: ["plan", "--devices", "t4", "--qps", "100", "--out", str(p)]), 2,
     ["error: --out", "plan.csv", "is a file, not a folder"], None, True),
    ("procure-out-is-a-file", is_a_file(lambda t, p: ["procure", "--devices", "t4", "--out", str(p)]), 2,
     ["error: --out", "is a file, not a folder", "expected a folder path"], None, True),
    ("predict-published-predictions-is-a-folder",
     is_a_folder(lambda t, p: (p / "predictions.csv").mkdir() or ["predict-published", "--in", str(t / "rows.csv"),
                                                                   "--out", str(p)]), 2,
     ["error: --out", "predictions.csv: is a folder", "expected a file path"], None, True),
    ("predict-published-out-is-its-input",
     files(rows_csv=ROWS)("predict-published", "--in", "{t}/rows.csv", "--out", "{t}/rows.csv"), 2,
     ["error: --out", "rows.csv: is the input --in", "expected another path"], unchanged(ROWS, "rows.csv"), True),
    ("predict-published-out-is-a-foreign-csv",
     files(rows_csv=ROWS, other_csv=b"a,b\n1,2\n")("predict-published", "--in", "{t}/rows.csv", "--out",
                                                   "{t}/other.csv"), 2,
     ["error: --out", "not predictions", "left unchanged"], unchanged(b"a,b\n1,2\n", "other.csv"), True),
    ("compare-out-over-a-foreign-csv",
     files(results__compare_csv=ROWS)("compare", "--devices", "t4", "--out", "{t}/results"), 2,
     ["error: --out", "compare.csv: an existing file that is not a device comparison", "left unchanged"],
     unchanged(ROWS, "results/compare.csv"), True),
    ("compare-out-over-its-own-files", compare_again, 0, ["wrote", "cmp/compare.csv", "cmp/compare.md"], None,
     False),
    ("plan-out-over-a-foreign-json",
     files(p__plan_json=FOREIGN_JSON)("plan", "--devices", "t4", "--qps", "100", "--out", "{t}/p"), 2,
     ["error: --out", "plan.json: an existing file that is not a plan"], unchanged(FOREIGN_JSON, "p/plan.json"),
     True),
    ("run-trace-over-a-foreign-json",
     files(t_json=FOREIGN_JSON)("run", "--scenario", "Server", *LONG_RUN, "--trace", "{t}/t.json"), 2,
     ["error: --trace", "not a Chrome trace"], unchanged(FOREIGN_JSON, "t.json"), True),
    ("validate-report-over-a-foreign-markdown",
     files(readme_md=b"# My project\n")("validate", "--workload", "resnet50", "--out", "{t}/v", "--report",
                                        "{t}/readme.md"), 2,
     ["error: --report", "not a validation report"], unchanged(b"# My project\n", "readme.md"), True),
    ("run-trace-is-its-system-file",
     files(sys_yaml=SYSTEM)("run", "--scenario", "Offline", "--system", "{t}/sys.yaml", *SHORT_RUN,
                            "--trace", "{t}/sys.yaml"), 2,
     ["error: --trace", "is the input --system"], unchanged(SYSTEM, "sys.yaml"), True),
    ("validate-out-is-a-file", is_a_file(lambda t, p: ["validate", "--workload", "resnet50", "--out", str(p)]), 2,
     ["error: --out", "is a file, not a folder"], None, True),
    ("validate-report-is-a-folder",
     is_a_folder(lambda t, p: ["validate", "--workload", "resnet50", "--out", str(t / "v"), "--report", str(p)]),
     2, ["error: --report", "is a folder"], no_output("v"), True),
    ("validate-failure-leaves-no-folder",
     failing_validation(InputError("harness: the real run failed; expected a run that finishes")), 2,
     ["error: harness: the real run failed"], nothing_left, True),
    ("validate-crash-exits-3-and-leaves-no-folder", failing_validation(RuntimeError("onnxruntime: Reshape failed")),
     3, ["RuntimeError: onnxruntime: Reshape failed", "error: internal error in 'validate'"], nothing_left, True),
    ("run-misspelt-workload", argv("run", "--scenario", "Offline", "--workload", "resnet5"), 2,
     ["error: unknown workload 'resnet5': expected a .onnx file or one of [", "'resnet50'"], None, True),
    ("run-misspelt-workload-synthetic-cost",
     argv("run", "--scenario", "Offline", "--workload", "resnet5", *SHORT_RUN), 2,
     ["error: unknown workload 'resnet5': expected a .onnx file or one of ["], None, True),
    ("search-misspelt-workload", argv("search", "--workload", "resnet5", *SHORT_RUN), 2,
     ["error: unknown workload 'resnet5'"], None, True),
    ("run-user-onnx-without-mlperf-model", user_onnx, 0,
     ["note: model 'tiny' is not in LoadGen's mlperf.conf", "generic '*' settings", "assumed a QSL of 1024 samples",
      "Result is : VALID"], qsl_assumed, False),
    ("run-cleans-stale-temporaries", stale_temporaries, 0, ["wrote", "result.json"], stale_cleaned, False),
    ("search-no-valid-qps", argv("search", "--service-time-ms", "100", "--min-duration-ms", "100"), 1,
     ["no VALID Server QPS", "above the 15 ms latency bound"], None, False),
    ("plan-impossible-target",
     argv("plan", "--devices", "t4", "--qps", "1000000", "--latency-ms", "15", "--min-duration-ms", "1000",
          "--max-devices", "2"), 1, ["impossible", "no device meets the target"], None, False),
]


@pytest.mark.parametrize("setup, code, words, post, at_once", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_cli_case(tmp_path, monkeypatch, capsys, setup, code, words, post, at_once):
    args = setup(tmp_path, monkeypatch)
    capsys.readouterr()
    t0 = time.perf_counter()
    rc = main(args)
    elapsed = time.perf_counter() - t0
    out, err = capsys.readouterr()
    text = out + err
    assert rc == code, text
    for w in words:
        assert w in text, f"{w!r} not in {text!r}"
    assert "performance_sample_count_override is 0" not in text
    if code == 2:
        assert err.count("\n") == 1 and err.startswith("error: "), err       # one line
    if code != 3:
        assert "Traceback" not in text
    if at_once:
        assert elapsed < 5.0, f"refused after {elapsed:.1f} s"
    if post is not None:
        assert post(tmp_path)


def test_notes_come_first_in_the_run_output(tmp_path, capsys):
    model = _tiny_onnx(tmp_path / "tiny.onnx")
    assert main(["run", "--scenario", "SingleStream", "--workload", str(model), *SHORT_RUN]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("simulating ")                  # what it simulates, then the notes
    k = next(i for i, line in enumerate(lines) if line.startswith("note: "))
    assert lines[k].startswith("note: model 'tiny'") and lines[k + 1].startswith("note: model 'tiny' takes")
    assert k < next(i for i, line in enumerate(lines) if line.startswith("====="))


def _run_id(folder: Path) -> tuple:
    """The min_query_count each of a run folder's three files says (one run: all equal)."""
    summary = re.search(r"^min_query_count : (\d+)$", (folder / "mlperf_log_summary.txt").read_text(), re.M)
    detail = re.search(r'"effective_min_query_count", "value": (\d+)', (folder / "mlperf_log_detail.txt").read_text())
    result = json.loads((folder / "result.json").read_text())["settings"]["min_query_count"]
    return int(summary.group(1)), int(detail.group(1)), int(result)


def test_two_runs_into_one_out_leave_one_run(tmp_path, monkeypatch):
    """Run B starts writing while run A is between its first and second file (A waits for B up to
    0.5 s there): without the lock B's files land between A's and the folder holds both runs."""
    cost = parse_synthetic("1", "--service-time-ms")
    run_a, run_b = [simulate("SingleStream", workload=None, cost=cost,
                             overrides={"min_query_count": n, "min_duration_ns": 10_000_000}) for n in (111, 222)]
    real_write = atomic.write_text
    a_started, b_finished = threading.Event(), threading.Event()

    def write_text(path, text):
        written = real_write(path, text)
        me = threading.current_thread().name
        if me == "A" and Path(path).name == "mlperf_log_summary.txt":
            a_started.set()
            b_finished.wait(timeout=0.5)
        if me == "B" and Path(path).name == "result.json":
            b_finished.set()
        return written

    monkeypatch.setattr(atomic, "write_text", write_text)
    out = tmp_path / "out"
    errors = []

    def writer(r: RunResult, wait_for: threading.Event | None) -> None:
        try:
            if wait_for is not None:
                wait_for.wait(timeout=5)
            r.write(out)
        except Exception as exc:       # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(run_a, None), name="A"),
               threading.Thread(target=writer, args=(run_b, a_started), name="B")]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert _run_id(out) == (222,) * 3          # B's run, written whole after A's
    assert sorted(p.name for p in out.iterdir()) == ["mlperf_log_detail.txt", "mlperf_log_summary.txt", "result.json"]


def test_two_run_processes_into_one_out(tmp_path):
    out = tmp_path / "out"
    procs = [subprocess.Popen([sys.executable, "-m", "sim", "run", "--scenario", "SingleStream",
                               "--service-time-ms", "1", "--min-duration-ms", "10", "--min-query-count", str(n),
                               "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for n in (111, 222)]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()
        p.stderr.close()
    assert _run_id(out) in ((111,) * 3, (222,) * 3)
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_a_failed_write_leaves_no_temporary_file(tmp_path):
    with pytest.raises(TypeError):
        atomic.write_bytes(tmp_path / "x.json", object())
    assert list(tmp_path.iterdir()) == []


def test_check_output_creates_nothing(tmp_path):
    target = tmp_path / "a" / "b" / "c.json"
    assert atomic.check_output(target, "file") == target
    assert atomic.check_output(tmp_path / "d" / "e", "folder") == tmp_path / "d" / "e"
    assert list(tmp_path.iterdir()) == []
