"""predict-published: ok/unsupported per row, and no result column is ever read."""

import csv
from pathlib import Path

import pytest

from sim.cli import main
from sim.hw.rows import INPUT_COLUMNS
from sim.paths import REPO_ROOT

RESULTS = Path(__file__).resolve().parents[2] / "shared" / "data" / "mlperf_results" / "results.csv"
pytestmark = pytest.mark.skipif(not RESULTS.is_file(), reason="shared results file not present")


def _results():
    with RESULTS.open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def small_calibration(tmp_path_factory):
    """A calibration file with a few hundred rows (T4 and Cloud AI 100 Pro), fast to fit."""
    rows = [r for r in _results() if r["accelerator"] in ("NVIDIA T4", "QUALCOMM Cloud AI 100 PCIe/HHHL Pro")]
    path = tmp_path_factory.mktemp("cal") / "calib.csv"
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def _pick():
    rows = _results()
    want, seen = [], set()
    for r in rows:      # one T4 ResNet-50 row per scenario: Offline, Server, SingleStream
        if r["accelerator"] == "NVIDIA T4" and r["model"] == "resnet50" and r["scenario"] not in seen \
                and r["scenario"] != "MultiStream":
            want.append(r)
            seen.add(r["scenario"])
    mali = next(r for r in rows if r["accelerator"].startswith("Arm Mali"))
    # a benchmark whose network the catalog cannot build in that round (BraTS19 3D-UNet)
    mobile = dict(want[0], model="3d-unet-99", version="v1.1", scenario="Offline", metric="Samples per second",
                  units="samples/s")
    warboy = next(r for r in rows if r["accelerator"] == "FuriosaAI Warboy")
    assert len(want) >= 2
    return want + [mali, mobile, warboy]


def _write(path, rows, columns):
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def _predict(tmp_path, rows, columns, calib, name):
    src, out = tmp_path / f"{name}.csv", tmp_path / f"{name}-pred.csv"
    _write(src, rows, columns)
    assert main(["predict-published", "--in", str(src), "--out", str(out), "--results", str(calib)]) == 0
    with out.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_ok_and_unsupported_rows_without_result_columns(tmp_path, small_calibration):
    rows = _pick()
    pred = _predict(tmp_path, rows, list(INPUT_COLUMNS), small_calibration, "in")
    assert len(pred) == len(rows)
    assert [p["system"] for p in pred] == [r["system"] for r in rows]            # same rows, same order
    k = len(rows) - 3
    for p in pred[:k]:
        assert p["status"] == "ok" and float(p["predicted_value"]) > 0
    for p in pred[k:]:
        assert p["status"].startswith("unsupported: ") and p["predicted_value"] == ""
    assert "value" not in pred[0]


def test_predictions_ignore_result_columns(tmp_path, small_calibration):
    rows = _pick()[:-3]
    full_cols = list(rows[0])
    base = _predict(tmp_path, rows, full_cols, small_calibration, "a")
    tampered = [dict(r, value="1", target_qps="999999", samples_per_query="1", min_query_count="1",
                     latency_p99_ns="1", early_stopping_estimate_ns="1") for r in rows]
    changed = _predict(tmp_path, tampered, full_cols, small_calibration, "b")
    removed = _predict(tmp_path, rows, [c for c in full_cols if c != "value"], small_calibration, "c")
    assert [p["predicted_value"] for p in base] == [p["predicted_value"] for p in changed] == \
        [p["predicted_value"] for p in removed]


def test_missing_required_column_is_an_input_error(tmp_path, capsys, small_calibration):
    src = tmp_path / "bad.csv"
    src.write_text("version,model\nv2.1,resnet50\n")
    rc = main(["predict-published", "--in", str(src), "--out", str(tmp_path / "o.csv"), "--results",
               str(small_calibration)])
    assert rc == 2 and "column 'accelerator' is missing" in capsys.readouterr().err


def test_a_server_prediction_never_exceeds_its_systems_offline():
    """The L40's Server residual correction (its v3.0 Server rows) and its Offline one come
    from different rows; uncapped, its ResNet-50 Server prediction came out about 20% above
    its own Offline prediction. Published, the same system's Server is 0.99 of its Offline
    (Nettrix L40x8, v3.0: 245,020 and 248,114 samples/s): capped, the prediction is closer."""
    from sim.hw import published

    pair = {r["scenario"]: r for r in _results()
            if r["system"] == "L40x8_Custom_X640_G40_TRT" and r["model"] == "resnet50"}
    rows = [pair["Server"], pair["Offline"]]
    uncapped: dict = {}
    (server, s_status), (offline, o_status) = published.predict_rows(rows, published.calibration_from(), uncapped)
    assert s_status == o_status == "ok"
    assert server <= offline
    assert list(uncapped) == [0] and uncapped[0] > offline
    truth = float(pair["Server"]["value"])
    assert abs(server / truth - 1) < abs(uncapped[0] / truth - 1)


def test_explain_shows_the_server_value_before_the_offline_cap(tmp_path):
    pair = [r for r in _results() if r["system"] == "L40x8_Custom_X640_G40_TRT" and r["model"] == "resnet50"]
    src, out = tmp_path / "l40.csv", tmp_path / "l40-pred.csv"
    _write(src, pair, list(INPUT_COLUMNS))
    assert main(["predict-published", "--in", str(src), "--out", str(out), "--explain"]) == 0
    with out.open(newline="") as fh:
        got = {r["scenario"]: r for r in csv.DictReader(fh)}
    assert got["Offline"]["server_uncapped"] == ""
    assert float(got["Server"]["server_uncapped"]) > float(got["Server"]["predicted_value"])
    assert got["Server"]["predicted_value"] == got["Offline"]["predicted_value"]


def test_the_offline_twin_of_a_server_row_is_that_systems_offline_row():
    """The cap compares a Server row with its system's Offline test, built from the Server
    row alone: for every closed-division system with both rows in the shared results, the
    twin must be the Offline row's own case (every field but the row index)."""
    from dataclasses import asdict

    from sim.hw.published import offline_twin
    from sim.hw.rows import read_case

    rows = _results()
    offline = {(r["version"], r["submitter"], r["system"], r["model"]): (i, r) for i, r in enumerate(rows)
               if r["scenario"] == "Offline" and r["division"] == "closed"}
    checked = 0
    for i, r in enumerate(rows):
        key = (r["version"], r["submitter"], r["system"], r["model"])
        if r["scenario"] != "Server" or r["division"] != "closed" or key not in offline:
            continue
        twin = asdict(offline_twin(read_case(r, i)))
        j, o = offline[key]
        own = asdict(read_case(o, j))
        twin.pop("index"), own.pop("index")
        if not own["unsupported"]:
            assert twin == own, (r["system"], r["model"])
            checked += 1
    assert checked > 500


def test_explain_keeps_one_status_column_with_unsupported_rows(tmp_path, small_calibration):
    rows = _pick()
    src, out = tmp_path / "mixed.csv", tmp_path / "mixed-pred.csv"
    _write(src, rows, list(INPUT_COLUMNS))
    assert main(["predict-published", "--in", str(src), "--out", str(out), "--results", str(small_calibration),
                 "--explain"]) == 0
    with out.open(newline="") as fh:
        header = next(csv.reader(fh))
        fh.seek(0)
        pred = list(csv.DictReader(fh))
    assert header.count("status") == 1
    k = len(rows) - 3
    assert all(p["status"] == "ok" for p in pred[:k])
    assert all(p["status"].startswith("unsupported: ") for p in pred[k:])


@pytest.mark.parametrize("given, used", [("56", 56), ("112", None), ("224", None), ("28", 28), ("8", None)])
def test_a_cpu_rows_core_count_above_its_datasheet_is_not_taken_per_socket(given, used):
    """``host_processor_core_count`` is per socket; a Xeon 8480+ has 56 cores (Intel ARK).
    Submitters of one 2-socket 8480+ system published 56, 112 (both sockets) and 224
    (threads): only a count within the part's datasheet (down to a quarter of it, a
    part with cores disabled) scales the socket; otherwise the profile's 56 stand."""
    from sim.hw.rows import read_case

    row = {"version": "v3.0", "division": "closed", "submitter": "s", "system": "cpu-sys",
           "accelerator": "Intel(R) Xeon(R) Platinum 8480+", "accelerator_kind": "cpu", "accelerators_per_node": "0",
           "framework": "PyTorch", "model": "resnet50", "scenario": "Offline", "metric": "Samples per second",
           "units": "samples/s", "target_latency_ns": "0", "number_of_nodes": "1", "host_processors_per_node": "2",
           "host_processor_core_count": given}
    case = read_case(row)
    assert case.ok and case.profile == "xeon-8480" and case.devices == 2
    assert case.cores == used


def test_shipped_measurements_join_the_calibration_after_the_results(tmp_path, monkeypatch):
    """``<profiles>/measured/*.csv`` rows follow the results file's rows (no index shared),
    their unit is marked as fitted on measurements alone, and changing a measured file
    changes the calibration's cache key."""
    import shutil

    from sim.hw import published
    from sim.hw.rows import unit_of

    folder = tmp_path / "profiles"
    shutil.copytree(Path(REPO_ROOT) / "hw_profiles", folder, ignore=shutil.ignore_patterns("fitted"))
    monkeypatch.setenv("SIM_HW_PROFILES_DIR", str(folder))
    (folder / "measured" / "local-cpu.csv").write_text(
        "device,model,batch,latency_ms,precision,framework\n"
        "local-cpu,resnet50,1,38.4,fp32,onnxruntime 1.32\n"
        "local-cpu,resnet50,2,75.2,fp32,onnxruntime 1.32\n"
        "local-cpu,resnet50,4,149.4,fp32,onnxruntime 1.32\n")
    results = tmp_path / "results.csv"
    with results.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(INPUT_COLUMNS + ("value",))
        for i in range(2):
            row = {c: "" for c in INPUT_COLUMNS}
            row.update(version="v2.1", division="closed", submitter="s", system=f"t4-{i}", accelerator="NVIDIA T4",
                       accelerator_kind="gpu", accelerators_per_node="1", model="resnet50", scenario="Offline",
                       metric="Samples per second", units="samples/s", number_of_nodes="1")
            w.writerow([row[c] for c in INPUT_COLUMNS] + ["5000"])
    cases, values, measured = published.calibration_data(results)
    assert [c.index for c in cases] == list(range(5)) and sorted(values) == list(range(5))
    assert [c.profile for c in cases] == ["t4", "t4", "local-cpu", "local-cpu", "local-cpu"]
    assert values[2] == 38.4e6 and cases[2].system_key.startswith("measured/local-cpu.csv/")
    assert measured == frozenset({unit_of(cases[2])}) == frozenset({"local-epyc-zen4/onnxruntime"})
    before = published._fingerprint(results)
    with (folder / "measured" / "local-cpu.csv").open("a") as fh:
        fh.write("local-cpu,resnet50,8,302.0,fp32,onnxruntime 1.32\n")
    assert published._fingerprint(results) != before


_METRICS = {"Offline": ("Samples per second", "samples/s"), "Server": ("Scheduled samples per second", "samples/s"),
            "SingleStream": ("90th percentile latency (ns)", "ns"),
            "MultiStream": ("99th percentile latency (ns)", "ns")}


def _t4_row(model: str, scenario: str, version: str) -> dict:
    """A published T4 ResNet-50 Offline row (one T4 in a node) made into another benchmark's test."""
    base = next(r for r in _results() if r["accelerator"] == "NVIDIA T4" and r["scenario"] == "Offline"
                and r["model"] == "resnet50" and r["accelerators_per_node"] == "1")
    metric, units = _METRICS[scenario]
    return dict(base, model=model, version=version, scenario=scenario, metric=metric, units=units)


def test_benchmarks_by_mlperf_name_at_the_rows_round(tmp_path, small_calibration):
    """MLPerf's names in the model column, read at the row's round: DLRM (v0.7-v2.1, dot
    interaction) and DLRM-DCNv2 (v3.0 on) are predicted from their layer tables; bert-99.9
    asks for FP16 where bert-99 takes INT8; 3D-UNet and a name no catalog network has are
    unsupported with the reason; a scenario MLPerf does not define is not predicted. The
    result columns are never read: changed, the predictions stay."""
    from sim.hw.rows import read_case

    rows = [_t4_row("dlrm-99", "Offline", "v2.1"), _t4_row("dlrm-v2-99", "Offline", "v3.1"),
            _t4_row("dlrm-v2-99.9", "Server", "v3.1"), _t4_row("bert-99.9", "Offline", "v3.0"),
            _t4_row("bert-99", "Offline", "v3.0"), _t4_row("3d-unet-99", "Offline", "v3.0"),
            _t4_row("3d-unet-99.9", "SingleStream", "v1.0"), _t4_row("gptj-99", "Offline", "v3.1"),
            _t4_row("bert-99", "MultiStream", "v3.0"), _t4_row("dlrm-99", "SingleStream", "v2.1")]
    rows[2]["target_latency_ns"] = "60000000"
    cases = [read_case(r, i) for i, r in enumerate(rows)]
    assert [c.workload for c in cases[:5]] == ["dlrm", "dlrm_v2", "dlrm_v2", "bert_large", "bert_large"]
    assert cases[3].precision == "fp16" and cases[4].precision == "int8"
    pred = _predict(tmp_path, rows, list(rows[0]), small_calibration, "names")
    assert all(p["status"] == "ok" and float(p["predicted_value"]) > 0 for p in pred[:5]), pred[:5]
    # DLRM-DCNv2 does 6.5x the FLOPs per sample of DLRM: fewer samples per second on the same T4
    assert float(pred[1]["predicted_value"]) < float(pred[0]["predicted_value"])
    # FP16 is half the T4's INT8 rate: bert-99.9 is slower than bert-99
    assert float(pred[3]["predicted_value"]) < float(pred[4]["predicted_value"])
    reasons = [p["status"] for p in pred[5:]]
    assert "KiTS19" in reasons[0] and "BraTS19" in reasons[1]
    assert "'gptj-99' has no workload in the catalog" in reasons[2]
    assert "MultiStream is not an MLPerf test of bert-99" in reasons[3]
    assert "SingleStream is not an MLPerf test of dlrm-99" in reasons[4]
    tampered = [dict(r, value="1", target_qps="1", samples_per_query="99", min_query_count="1") for r in rows]
    again = _predict(tmp_path, tampered, list(rows[0]), small_calibration, "names2")
    assert [p["predicted_value"] for p in again] == [p["predicted_value"] for p in pred]


def test_mobile_names_map_to_catalog_networks():
    """MLPerf Mobile's names map to catalog names; one the catalog does not hold is unsupported,
    naming the network."""
    from sim.hw import benchmarks
    from sim.workload import catalog

    held = set(catalog.WORKLOADS_DIR.glob("*.yaml"))
    held = {p.stem for p in held}
    for name, net in (("mobilenet-edgetpu", "mobilenet_edgetpu"), ("mobilenet-v4", "mobilenet_v4"),
                      ("ssd-mobiledet", "ssd_mobiledet"), ("mobilebert", "mobilebert"),
                      ("deeplabv3-mobilenetv2", "deeplabv3_mobilenetv2"), ("mosaic", "mosaic"), ("edsr", "edsr")):
        b = benchmarks.lookup(name, "mobile-v3.0")
        assert b.catalog == net and "SingleStream" in b.scenarios
        if net in held:
            assert b.ok and b.workload == net
        else:
            assert b.unsupported == f"{name}: its network {net!r} is not in the catalog (workloads/)"
