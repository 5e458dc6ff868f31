"""Users' files read safely: each case is a real file written to a temporary folder, run through
the command line, with its exit code and the words its one-line message must contain.

Text files (YAML, CSV, conf): not UTF-8, UTF-16, over the size limit, a 200 KB CSV field, a
YAML alias bomb (refused in under 2 s), a recursive alias; a UTF-8 byte-order mark works. A
sweep grid's system file is never quoted. ONNX files: external data in a ``Constant`` node or an
``If`` branch, pointing outside the model's folder, is refused by every command; an unknown op is
named with its node; a truncated cached model is rebuilt. ``predict-published``: a bad row is
that row's status, the others are predicted.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from sim.cli import main
from sim.hw.rows import INPUT_COLUMNS
from sim.util.checks import LIMITS
from sim.workload import catalog

RESULTS = Path(__file__).resolve().parents[2] / "shared" / "data" / "mlperf_results" / "results.csv"
SECRET = "s3cr3t-T0KEN-4242"
OVERSIZE = LIMITS["file_bytes"] + 1


# ---------------------------------------------------------------------------------------
# Files


def _sparse(path: Path, size: int, head: bytes = b"") -> Path:
    """A file of ``size`` bytes that takes no disk space (the reader refuses it by its size)."""
    with path.open("wb") as fh:
        fh.write(head)
        fh.truncate(size)
    return path


def _bomb(path: Path) -> Path:
    lines = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    path.write_text("\n".join(lines) + "\nname: *i\n")
    return path


def _grid(tmp: Path, system: Path) -> Path:
    """A grid whose one point's system is the file ``system`` (named relative to the grid)."""
    system = system.name
    grid = tmp / "grid.yaml"
    grid.write_text(f"base: {{scenario: Offline, device: {{kind: fixed, time_us: 1000}}}}\n"
                    f"axes: {{system: [{system}]}}\n")
    return grid


_X = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
_Y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])


def _external(tensor: onnx.TensorProto, location: str) -> onnx.TensorProto:
    tensor.data_location = TensorProto.EXTERNAL
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", location
    return tensor


def _save(path: Path, nodes, inputs=(_X,), initializers=(), opset: int = 17, extra_opsets=()) -> Path:
    graph = helper.make_graph(list(nodes), "g", list(inputs), [_Y], list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset), *extra_opsets])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return path


def _ones(name: str, value: float = 1.0) -> onnx.TensorProto:
    return numpy_helper.from_array(np.full((4,), value, np.float32), name)


def _constant_model(tmp: Path, location: str, write_data: bool = False) -> Path:
    """y = x + c, c a Constant node whose tensor keeps its data at ``location``."""
    if write_data:
        _write(tmp / "model" / location, np.full(4, 2.0, np.float32).tobytes())
    c = _external(_ones("c"), location)
    return _save(tmp / "model" / "const.onnx", [helper.make_node("Constant", [], ["c"], value=c, name="const0"),
                                                helper.make_node("Add", ["x", "c"], ["y"], name="add0")])


def _if_model(tmp: Path, location: str, write_data: bool = False) -> Path:
    """y = x + w if cond else x, w an initializer of the then-branch kept at ``location``."""
    folder = tmp / "model"
    folder.mkdir(parents=True, exist_ok=True)
    if write_data:
        (folder / location).write_bytes(np.full(4, 3.0, np.float32).tobytes())
    w = _external(_ones("w"), location)
    out = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", 4]) for n in ("t", "e")]
    then_g = helper.make_graph([helper.make_node("Add", ["x", "w"], ["t"])], "then", [], [out[0]], [w])
    else_g = helper.make_graph([helper.make_node("Identity", ["x"], ["e"])], "else", [], [out[1]])
    cond = numpy_helper.from_array(np.array(True), "cond")
    node = helper.make_node("If", ["cond"], ["y"], then_branch=then_g, else_branch=else_g, name="if0")
    return _save(folder / "if.onnx", [node], initializers=[cond])


def _unknown_op_model(tmp: Path, domain: str = "") -> Path:
    node = helper.make_node("FooBar", ["x"], ["y"], name="weird0", domain=domain)
    extra = [helper.make_opsetid(domain, 1)] if domain else []
    return _save(tmp / "unknown.onnx", [node], extra_opsets=extra)


def _unknown_op_in_subgraph(tmp: Path) -> Path:
    out = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", 4]) for n in ("t", "e")]
    then_g = helper.make_graph([helper.make_node("FooBar", ["x"], ["t"], name="inner")], "then", [], [out[0]])
    else_g = helper.make_graph([helper.make_node("Identity", ["x"], ["e"])], "else", [], [out[1]])
    cond = helper.make_tensor_value_info("cond", TensorProto.BOOL, [])
    node = helper.make_node("If", ["cond"], ["y"], then_branch=then_g, else_branch=else_g, name="if0")
    return _save(tmp / "sub_unknown.onnx", [node], inputs=[_X, cond])


def _rows_csv(path: Path, rows: list[dict], bom: bool = False) -> Path:
    with path.open("w", newline="", encoding="utf-8-sig" if bom else "utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(INPUT_COLUMNS), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


def _published_rows() -> list[dict]:
    """Two NVIDIA T4 ResNet-50 rows (Offline, SingleStream) of the shared results."""
    with RESULTS.open(newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["accelerator"] == "NVIDIA T4" and r["model"] == "resnet50"]
    pick = {}
    for r in rows:
        pick.setdefault(r["scenario"], r)
    return [pick["Offline"], pick["SingleStream"]]


@pytest.fixture(scope="module")
def t4_calibration(tmp_path_factory) -> Path:
    """A small calibration file (the shared results' T4 rows), fast to fit."""
    if not RESULTS.is_file():
        pytest.skip("shared results file not present")
    with RESULTS.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = [r for r in reader if r["accelerator"] == "NVIDIA T4"]
        fields = reader.fieldnames
    path = tmp_path_factory.mktemp("cal") / "t4.csv"
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    return path


# ---------------------------------------------------------------------------------------
# Checks run after a case (besides its exit code and message)


def _output_rows(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _bad_row_predicted_around(tmp: Path, out: str):
    pred = _output_rows(tmp / "pred.csv")
    assert [p["status"] for p in pred][0::2] == ["ok", "ok"]
    assert pred[1]["status"].startswith("unsupported: row 2: column 'accelerators_per_node' = '1e400'")
    assert pred[1]["predicted_value"] == "" and float(pred[0]["predicted_value"]) > 0


def _all_ok(tmp: Path, out: str):
    pred = _output_rows(tmp / "pred.csv")
    assert [p["status"] for p in pred] == ["ok", "ok"]
    assert "version" in pred[0] and not any(k.startswith("\ufeff") for k in pred[0])


def _profiled(tmp: Path, out: str):
    assert "add0" in out                        # the profile's kernel table: the model ran with its constant


def _conf_applied(tmp: Path, out: str):
    assert "samples_per_query : 123" in out      # the BOM-prefixed line was read, not ignored


# ---------------------------------------------------------------------------------------
# The cases: (id, argv builder, exit code, words the one line must contain, words it must not)
#   a builder takes (tmp_path, calibration) and returns argv, or (argv, check(tmp_path, stdout))


def _predict(tmp, calib, src):
    argv = ["predict-published", "--in", str(src), "--out", str(tmp / "pred.csv")]
    return argv + (["--results", str(calib)] if calib else [])


def _run_system(path):
    return ["run", "--system", str(path), "--scenario", "Offline", "--service-time-ms", "1"]


CASES = [
    # --- YAML
    ("yaml-not-utf8", lambda t, c: _run_system(_write(t / "latin1.yaml", b"name: caf\xe9\n")),
     2, ["latin1.yaml", "line 1, byte 10", "0xe9 is not UTF-8", "expected a system description"], []),
    ("yaml-utf16", lambda t, c: _run_system(_write(t / "u16.yaml", "name: x\n".encode("utf-16"))),
     2, ["u16.yaml", "UTF-16", "expected a system description saved as UTF-8"], []),
    ("yaml-alias-bomb", lambda t, c: _run_system(_bomb(t / "bomb.yaml")),
     2, ["bomb.yaml", "aliases", "expand it to", "past the limit of 100,000"], ["'x', 'x'"]),
    ("yaml-recursive-alias", lambda t, c: _run_system(_write(t / "rec.yaml", b"name: &a [*a]\n")),
     2, ["rec.yaml", "refers to a value that contains it"], []),
    ("yaml-nested-too-deeply", lambda t, c: _run_system(_write(t / "deep.yaml", b"[" * 5000 + b"]" * 5000)),
     2, ["deep.yaml", "nested too deeply"], []),
    ("yaml-impossible-date", lambda t, c: _run_system(_write(t / "date.yaml", b"name: 2024-02-30\n")),
     2, ["date.yaml", "day is out of range for month"], []),
    ("yaml-syntax-error", lambda t, c: _run_system(_write(t / "syntax.yaml", b"name: x\nhost: {a: 1\n")),
     2, ["syntax.yaml", "not valid YAML (line 3, column 1"], []),
    ("yaml-oversized-system", lambda t, c: _run_system(_sparse(t / "huge.yaml", OVERSIZE, b"name: x\n")),
     2, ["huge.yaml", f"{OVERSIZE:,} bytes", "above the limit"], []),
    ("yaml-over-1mib-system", lambda t, c: _run_system(_sparse(t / "big.yaml", 2 * 1024 * 1024, b"name: x\n")),
     2, ["big.yaml", "2,097,152 bytes, above the limit of 1,048,576", "at most 1 MiB"], []),
    ("yaml-oversized-grid", lambda t, c: ["sweep", str(_sparse(t / "grid.yaml", OVERSIZE)), "--out",
                                          str(t / "o.jsonl")],
     2, ["grid.yaml", "bytes, above the limit", "a sweep grid"], []),
    # --- user.conf
    ("conf-not-utf8", lambda t, c: ["run", "--user-conf", str(_write(t / "u.conf", b"# caf\xe9\n")), "--scenario",
                                    "Offline", "--service-time-ms", "1"],
     2, ["u.conf", "line 1, byte 6", "not UTF-8", "conf file"], []),
    ("conf-bom-works", lambda t, c: (["run", "--user-conf",
                                      str(_write(t / "u.conf", b"\xef\xbb\xbf*.Offline.min_query_count = 123\r\n")),
                                      "--scenario", "Offline", "--service-time-ms", "1", "--min-duration-ms", "10"],
                                     _conf_applied),
     0, [], []),
    # --- CSV
    ("csv-not-utf8", lambda t, c: ["calibrate", "--device", "t4", "--no-loo", "--measurements",
                                   str(_write(t / "m.csv", b"device,model,batch,latency_ms\nt4,r\xe9snet50,1,1\n"))],
     2, ["m.csv", "line 2, byte 5", "0xe9 is not UTF-8"], []),
    ("csv-bom-measurements-work", lambda t, c: ["calibrate", "--device", "t4", "--no-loo", "--measurements", str(
        _write(t / "m.csv", b"\xef\xbb\xbfdevice,model,batch,latency_ms\r\nt4,resnet50,1,0.9\r\n"
                            b"t4,resnet50,4,1.9\r\nt4,resnet50,8,3.1\r\n"))],
     0, [], []),
    ("csv-200kb-field", lambda t, c: _predict(t, c, _write(t / "big.csv", b"version,model\nv4.0,\""
                                                                          + b"x" * 200_000 + b"\"\n")),
     2, ["big.csv", "line 2", "a field is longer than 131,072 characters"], ["xxxxxxxx"]),
    ("csv-oversized", lambda t, c: _predict(t, c, _sparse(t / "huge.csv", OVERSIZE, b"version,model\n")),
     2, ["huge.csv", "bytes, above the limit"], []),
    ("csv-bom-predict-published-works", lambda t, c: (_predict(t, c, _rows_csv(t / "bom.csv", _published_rows(),
                                                                                bom=True)), _all_ok),
     0, [], []),
    ("predict-published-bad-row", lambda t, c: (_predict(t, c, _rows_csv(t / "rows.csv", [
        _published_rows()[0], dict(_published_rows()[0], accelerators_per_node="1e400"), _published_rows()[1]])),
        _bad_row_predicted_around),
     0, ["rows.csv", "row 2: column 'accelerators_per_node' = '1e400'", "expected a whole number"], []),
    # --- a sweep grid's system file is never quoted
    ("sweep-system-secret-text", lambda t, c: ["sweep", str(_grid(t, (_write(t / "secret.txt",
                                                                                  SECRET.encode())))),
                                               "--out", str(t / "o.jsonl")],
     2, ["secret.txt", "holds a YAML str, not a mapping", "expected a system description", "axes.system[0]"],
     [SECRET]),
    ("sweep-system-secret-mapping", lambda t, c: ["sweep", str(_grid(t, (_write(
        t / "creds.yaml", f"API_KEY: {SECRET}\n".encode())))), "--out", str(t / "o.jsonl")],
     2, ["creds.yaml", "'API_KEY' is not a system field"], [SECRET]),
    ("sweep-system-secret-alias", lambda t, c: ["sweep", str(_grid(t, (_write(
        t / "alias.txt", f"k: *{SECRET}\n".encode())))), "--out", str(t / "o.jsonl")],
     2, ["alias.txt", "not valid YAML", "undefined alias"], [SECRET]),
    ("sweep-system-secret-binary", lambda t, c: ["sweep", str(_grid(t, (_write(
        t / "key.der", SECRET.encode() + b"\xff\xfe\x00" + SECRET.encode())))), "--out", str(t / "o.jsonl")],
     2, ["key.der", "not UTF-8"], [SECRET]),
    # --- ONNX external data in every tensor
    ("onnx-constant-external-layers", lambda t, c: ["layers", str(_constant_model(t, "../../outside.bin"))],
     2, ["const.onnx", "node 'const0' (Constant) attribute 'value'", "outside the model's folder"], []),
    ("onnx-constant-external-run", lambda t, c: ["run", "--workload", str(_constant_model(t, "/etc/passwd")),
                                                 "--scenario", "Offline"],
     2, ["const.onnx", "node 'const0' (Constant)", "'/etc/passwd', outside the model's folder"], []),
    ("onnx-if-subgraph-external-profile", lambda t, c: ["profile", str(_if_model(t, "../w.bin")),
                                                        "--batch-sizes", "1"],
     2, ["if.onnx", "node 'if0' (If) attribute 'then_branch': initializer 'w'", "outside the model's folder"], []),
    ("onnx-if-subgraph-external-layers", lambda t, c: ["layers", str(_if_model(t, "../w.bin"))],
     2, ["if.onnx", "then_branch", "outside the model's folder"], []),
    ("onnx-external-missing", lambda t, c: ["layers", str(_constant_model(t, "c.bin"))],
     2, ["const.onnx", "external data file 'c.bin' is missing"], []),
    ("onnx-external-inside-works", lambda t, c: ["layers", str(_if_model(t, "w.bin", write_data=True))],
     0, [], []),
    ("onnx-constant-external-inside-profile-works", lambda t, c: (
        ["profile", str(_constant_model(t, "c.bin", write_data=True)), "--batch-sizes", "1"],
        _profiled),
     0, [], []),
    # --- unknown ops
    ("onnx-unknown-op-layers", lambda t, c: ["layers", str(_unknown_op_model(t))],
     2, ["unknown.onnx", "node 'weird0' uses op 'FooBar'", "does not define"], []),
    ("onnx-unknown-op-profile", lambda t, c: ["profile", str(_unknown_op_model(t)), "--batch-sizes", "1"],
     2, ["unknown.onnx", "node 'weird0' uses op 'FooBar'"], []),
    ("onnx-unknown-op-run", lambda t, c: ["run", "--workload", str(_unknown_op_model(t)), "--scenario", "Offline"],
     2, ["unknown.onnx", "node 'weird0' uses op 'FooBar'"], []),
    ("onnx-unknown-op-in-subgraph", lambda t, c: ["profile", str(_unknown_op_in_subgraph(t)), "--batch-sizes", "1"],
     2, ["sub_unknown.onnx", "then_branch': node 'inner' uses op 'FooBar'"], []),
    ("onnx-custom-domain-op-profile", lambda t, c: ["profile", str(_unknown_op_model(t, "com.example")),
                                                    "--batch-sizes", "1"],
     2, ["unknown.onnx", "onnxruntime cannot load the model", "com.example:FooBar"], []),
]


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case_id, build, code, words, forbidden", CASES, ids=[c[0] for c in CASES])
def test_bad_input_file(case_id, build, code, words, forbidden, tmp_path, capsys, request, monkeypatch):
    calib = request.getfixturevalue("t4_calibration") if case_id.endswith(("-works", "-row")) \
        and "predict" in case_id else None
    if code == 2:
        # a 'say' line waits SAY_DELAY_S and is dropped when the command fails on its input
        # (tests/test_progress.py times that); here the delay must not race a slow machine's
        # onnxruntime load, which took over 0.8 s on a loaded 2-core machine
        from sim.util import progress
        monkeypatch.setattr(progress, "SAY_DELAY_S", 60.0)
    built = build(tmp_path, calib)
    argv, check = built if isinstance(built, tuple) else (built, None)
    start = time.perf_counter()
    rc = main(argv)
    took = time.perf_counter() - start
    out, err = capsys.readouterr()
    assert rc == code, err
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), err
    for w in words:
        assert w in err, (w, err)
    for w in forbidden:
        assert w not in err, (w, err)
    assert "Traceback" not in err
    if case_id == "yaml-alias-bomb":
        assert took < 2.0, took
    if check is not None:
        check(tmp_path, out)


def test_a_truncated_cached_model_is_rebuilt(tmp_path, monkeypatch, capsys):
    """A cached built model cut short (a full disk, a killed copy) is built again and rewritten,
    instead of failing every later command."""
    monkeypatch.setenv("SIM_CACHE_DIR", str(tmp_path / "cache"))
    good = catalog.build("mobilenet_v1", small=True)
    size = good.path.stat().st_size
    for cut in (size // 2, 100, 0):
        with good.path.open("r+b") as fh:
            fh.truncate(cut)
        assert main(["layers", "mobilenet_v1", "--small"]) == 0, capsys.readouterr().err
        assert good.path.stat().st_size == size
        assert catalog.build("mobilenet_v1", small=True).sha256 == good.sha256
    assert "Traceback" not in capsys.readouterr().err
