"""Procurement comparison: rows for known devices, clear errors for bad input."""

from __future__ import annotations

import pytest

from sim import compare
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


def test_compare_bad_input():
    with pytest.raises(InputError, match="unknown device 'no-such-gpu'"):
        compare.compare("resnet50", ["no-such-gpu"])
    with pytest.raises(InputError, match="covers"):
        compare.compare("dlrm", ["t4"])
    with pytest.raises(InputError, match="at least one device"):
        compare.compare("resnet50", [])
