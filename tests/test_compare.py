"""Procurement comparison: rows for known devices, clear errors for bad input."""

from __future__ import annotations

import pytest

from sim.apps import compare
from sim.errors import InputError


def test_compare_rows_and_outputs(tmp_path):
    rows = compare.compare("resnet50", ["t4", "a100-sxm"])
    assert [r.device for r in rows] == ["t4", "a100-sxm"]
    for r in rows:
        assert all(s == "ok" for s in r.status.values()), r.status
        assert r.values["offline_samples_per_s"] > 0 and r.values["singlestream_p90_ns"] > 0
        assert r.precision == "int8" and r.source
    # an A100-SXM is faster than a T4 on ResNet-50 (published: ~5.5k vs ~37k samples/s Offline)
    assert rows[1].values["offline_samples_per_s"] > 3 * rows[0].values["offline_samples_per_s"]
    paths = compare.write(rows, str(tmp_path / "cmp"))
    assert paths[0].read_text().splitlines()[0].startswith("device,count,kind")
    assert "| t4 |" in paths[1].read_text()


def test_a_profile_of_a_software_stack_is_compared_on_that_stack():
    """This machine's profile describes onnxruntime running the FP32 reference models
    (``software`` in hw_profiles/local-cpu.yaml): its what-if rows say so, so the rules
    of sim.hw.precision give FP32 and its calibration unit is the onnxruntime stack's,
    not an INT8 submission's (its INT8 peak stays for other stacks)."""
    from sim.hw import profiles

    prof = profiles.get("local-cpu")
    assert "onnxruntime" in prof.software and "int8" in prof.peak_tops
    (row,) = compare.compare("resnet50", ["local-cpu"])
    assert row.precision == "fp32"
    assert "/onnxruntime" in row.source


def test_the_local_cpu_row_is_fitted_on_its_shipped_measurements():
    """hw_profiles/measured/local-cpu.csv (this machine's onnxruntime latencies, written by
    benchmarks/local_cpu_measurements.py) is calibration data: the local-cpu unit is fitted
    on it, and the comparison's SingleStream p90 and Offline throughput land near what was
    measured (batch-1 latency; batch-8 back-to-back throughput, a lower bound on Offline's
    larger batches)."""
    import csv

    from sim.hw import profiles, published

    path = profiles.profiles_dir() / "measured" / "local-cpu.csv"
    measured = {(r["model"], int(r["batch"])): float(r["latency_ms"]) for r in csv.DictReader(path.open())}
    (row,) = compare.compare("resnet50", ["local-cpu"])
    assert f"fitted on {len(measured)} rows" in row.source, row.source
    assert row.values["singlestream_p90_ns"] / 1e6 == pytest.approx(measured[("resnet50", 1)], rel=0.10)
    b8_per_s = 8 / (measured[("resnet50", 8)] / 1e3)
    assert b8_per_s * 0.95 <= row.values["offline_samples_per_s"] <= b8_per_s * 1.3
    assert published.measured_files() == [path]


def test_compare_bad_input():
    with pytest.raises(InputError, match="unknown device 'no-such-gpu'"):
        compare.compare("resnet50", ["no-such-gpu"])
    with pytest.raises(InputError, match="'no_such_workload': unknown; expected a .onnx file or one of"):
        compare.compare("no_such_workload", ["t4"])
    with pytest.raises(InputError, match="at least one device"):
        compare.compare("resnet50", [])


def test_server_against_offline_like_published_pairs():
    """Server is predicted against Offline as the product's published pairs have it.

    Published L4 x1 ResNet-50 (shared results, v3.0 and v3.1): Server / Offline = 12,198 /
    13,158 = 0.93 and 12,204 / 12,882 = 0.95; multi-L4 systems 0.90 to 0.95. Before the
    Server correction was tied to the Offline one, the L4's Server came out above its
    Offline (1.08): its Offline correction came from a v4.1 row, its Server one from v3.x.
    No bundled device's Server may exceed its Offline (the comparison caps it, and says so).
    """
    from sim.apps import procurement

    rows = {r.device: r for r in compare.compare("resnet50", list(procurement.DEVICES))}
    l4 = rows["l4"].values
    assert 0.88 <= l4["server_samples_per_s"] / l4["offline_samples_per_s"] <= 0.97
    assert "capped" not in rows["l4"].source
    for r in rows.values():
        srv, off = r.values.get("server_samples_per_s"), r.values.get("offline_samples_per_s")
        if srv and off:
            assert srv <= off, r.device
            assert (srv == off) == ("Server capped at the Offline prediction" in r.source), r.device
