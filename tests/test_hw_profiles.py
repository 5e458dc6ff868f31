"""Device profiles load, validate, and name what is wrong in a bad file."""

import copy

import pytest
import yaml

from sim.errors import InputError
from sim.hw import profiles

REQUIRED = ["t4", "a2", "a10", "a30", "a40", "a100-pcie", "a100-sxm", "l4", "l40", "l40s", "h100-pcie", "h100-sxm",
            "h200-sxm", "cloud-ai-100-standard", "cloud-ai-100-pro", "cloud-ai-100-ultra", "goya", "vck5000", "u250",
            "hexagon-855-hvx", "hexagon-x-elite", "xeon-8380", "xeon-8480", "xeon-8592", "local-cpu"]


def test_every_profile_loads_and_the_issue_list_is_covered():
    loaded = profiles.load_all()
    for name in REQUIRED:
        assert name in loaded, name
    kinds = {p.kind for p in loaded.values()}
    assert kinds == {"cpu", "gpu", "dsp", "fpga", "asic"}
    for p in loaded.values():
        assert p.peak_tops and all(v > 0 for v in p.peak_tops.values())
        assert p.memory_bandwidth_gbps > 0
        # every number has a source
        assert all(isinstance(s, str) and s for s in p.sources.values() if s is not None)


def _good() -> dict:
    return yaml.safe_load((profiles.profiles_dir() / "t4.yaml").read_text())


def _write(tmp_path, data, name="t4"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("mutate, field, expected", [
    (lambda d: d["peak_tops"].update(int8={"value": -5, "source": "x"}), "peak_tops.int8.value", "a number >= "),
    (lambda d: d["peak_tops"].update(int8={"value": 130}), "peak_tops.int8", "every number needs a source"),
    (lambda d: d.update(kind="npu"), "kind", "one of"),
    (lambda d: d.update(memory_bandwidth_gbps={"value": None, "source": "x"}), "memory_bandwidth_gbps.value",
     "required"),
    (lambda d: d["peak_tops"].update(int3={"value": 1, "source": "x"}), "peak_tops.int3", "a precision from"),
    (lambda d: d.update(bandwidth=3), "bandwidth", "one of"),
    (lambda d: d.update(software=3), "software", "a text naming a software stack"),
    (lambda d: d.update(mig_slices={"value": 2.5, "source": "x"}), "mig_slices.value", "an integer >= 1"),
])
def test_bad_field_names_file_field_value_and_expectation(tmp_path, mutate, field, expected):
    data = copy.deepcopy(_good())
    mutate(data)
    path = _write(tmp_path, data)
    with pytest.raises(InputError) as err:
        profiles.load_profile(path)
    msg = str(err.value)
    assert str(path) in msg and f"'{field}'" in msg and expected in msg


def test_name_must_match_file(tmp_path):
    path = _write(tmp_path, _good(), name="not-t4")
    with pytest.raises(InputError, match=r"field 'name' = 't4': expected 'not-t4'"):
        profiles.load_profile(path)


def test_unknown_profile_is_an_input_error():
    with pytest.raises(InputError, match="no file"):
        profiles.get("no-such-device")


def test_power_headroom_ranks_products_of_one_chip():
    assert profiles.power_headroom(profiles.get("a100-sxm")) == pytest.approx(1.0)
    assert profiles.power_headroom(profiles.get("a100-pcie")) < profiles.power_headroom(profiles.get("a100-pcie-80gb")) < 1
    assert profiles.chip_release_year(profiles.get("h200-sxm")) == profiles.get("h100-sxm").release_year


def test_a_mig_slice_is_the_share_of_its_own_gpu():
    """A MIG compute slice is a seventh of an A100 but a quarter of an A30 (NVIDIA datasheets:
    up to 7 MIG instances on A100, 4 on A30): a one-slice instance has that share of the
    GPU's peak. A MIG row of a GPU whose profile gives no slice count is unsupported."""
    from sim.hw import system_model as sm
    from sim.hw.rows import read_case

    def row(acc):
        return {"version": "v2.0", "division": "closed", "submitter": "s", "system": "mig", "accelerator": acc,
                "accelerator_kind": "gpu", "accelerators_per_node": "1", "framework": "TensorRT",
                "model": "resnet50", "scenario": "Offline", "metric": "Samples per second", "units": "samples/s",
                "target_latency_ns": "0", "number_of_nodes": "1"}

    for acc, profile, slices in (("NVIDIA A30 (1x1g.6gb MIG)", "a30", 4),
                                 ("NVIDIA A100-SXM-80GB (1x1g.10gb MIG)", "a100-sxm", 7)):
        case = read_case(row(acc))
        assert case.ok and case.profile == profile and case.mig_slices == 1
        whole = profiles.get(profile).peak_tops["int8"] * 1e12
        assert sm.setup(case).device.peak_ops["int8"] == pytest.approx(whole / slices)
    t4 = read_case(row("NVIDIA T4 (1x1g.4gb MIG)"))
    assert not t4.ok and "no mig_slices" in t4.unsupported
    # seven one-slice instances fit an A100, not an A30 (four slices)
    assert read_case(row("NVIDIA A100-SXM-80GB (7x1g.10gb MIG)")).ok
    too_many = read_case(row("NVIDIA A30 (7x1g.6gb MIG)"))
    assert not too_many.ok and "which has 4" in too_many.unsupported
