"""Device profiles: what a datasheet says about an accelerator, as data.

One YAML file per device in ``hw_profiles/`` (``SIM_HW_PROFILES_DIR`` overrides), named
by its file: ``hw_profiles/a100-sxm.yaml`` is the profile ``a100-sxm``. Every number is a
mapping ``{value: ..., source: "..."}``; ``value`` may be ``null`` only for the optional
fields, and then ``source`` says why it is missing. A source is a datasheet or paper, a
``derived: ...`` line that shows the arithmetic from such figures, an ``assumption: ...``
that says why, or ``fitted: ...`` with the data it was fitted on.

Fields (units in the names)::

    name: a100-sxm              # must equal the file name
    kind: gpu                   # cpu, gpu, dsp, fpga, asic
    vendor: nvidia
    chip: ga100                 # the silicon: calibrated efficiencies are shared per chip
    family: ampere              # architecture: the prior for a chip without calibration data
    description: ...
    release_year: {value: 2020.9, source: ...}          # when it became available
    peak_tops: {int8: {value: 624, source: ...}, fp16: ..., fp32: ...}   # dense peaks, 1 MAC = 2 ops
    memory_bandwidth_gbps: {value: 2039, source: ...}
    memory_capacity_gb: {value: 80, source: ...}        # may be null (set by the board)
    onchip_memory_mb: {value: 40, source: ...}          # L2 / SRAM / L3; may be null
    compute_units: {value: 108, source: ...}            # SMs, cores, AI cores; may be null
    chips_per_device: {value: 4, source: ...}           # optional, default 1 (Cloud AI 100 Ultra)
    mig_slices: {value: 7, source: ...}                 # optional: compute slices of a MIG-partitioned GPU
                                                        # (A100/H100 7, A30 4); a MIG row needs it
    host_link: {name: PCIe Gen4 x16, bandwidth_gbps: {value: 31.5, source: ...}}   # optional
    scale_up_link: {name: NVLink 4 (18 links), bandwidth_gbps: {value: 450, source: ...}}  # optional:
                                # device-to-device link inside one scale-up domain (NVLink, xGMI,
                                # ICI, PCIe peer-to-peer), GB/s per direction per device
    tdp_w: {value: 400, source: ...}                    # may be null (phone SoCs)
    idle_w: {value: null, source: ...}
    price_usd: {value: null, source: ...}
    software: onnxruntime       # optional: the software stack the profile describes (a CPU
                                # measured with onnxruntime); what-if rows run it
    notes: free text                                    # optional
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from sim.errors import InputError, field_error
from sim.paths import REPO_ROOT
from sim.util.yamlfile import read_yaml

KINDS = ("cpu", "gpu", "dsp", "fpga", "asic")
PRECISIONS = ("fp4", "int4", "int8", "fp8", "fp16", "bf16", "fp32")   # fp4: NVFP4 / MXFP4 tensor peak
REQUIRED_NUMBERS = ("release_year", "memory_bandwidth_gbps")
OPTIONAL_NUMBERS = ("memory_capacity_gb", "onchip_memory_mb", "compute_units", "tdp_w", "idle_w", "price_usd",
                    "chips_per_device", "mig_slices")
STRINGS = ("name", "kind", "vendor", "chip", "family", "description")
ALLOWED = set(STRINGS) | set(REQUIRED_NUMBERS) | set(OPTIONAL_NUMBERS) | {"peak_tops", "host_link", "notes",
                                                                          "software", "scale_up_link"}


def profiles_dir() -> Path:
    return Path(os.environ.get("SIM_HW_PROFILES_DIR", REPO_ROOT / "hw_profiles"))


@dataclass(frozen=True)
class Profile:
    """A validated device profile; numbers in the units their names say (None = not published)."""
    name: str
    kind: str
    vendor: str
    chip: str
    family: str
    description: str
    release_year: float
    peak_tops: dict                      # precision -> TOPS (dense)
    memory_bandwidth_gbps: float
    memory_capacity_gb: float | None
    onchip_memory_mb: float | None
    compute_units: int | None
    chips_per_device: int
    host_link_gbps: float | None
    host_link_name: str | None
    tdp_w: float | None
    idle_w: float | None
    price_usd: float | None
    software: str = ""                   # the software stack the profile describes, if one
    mig_slices: int | None = None        # compute slices of the GPU under MIG (None: no MIG)
    scale_up_link_gbps: float | None = None   # device-to-device GB/s per direction (None: not published)
    scale_up_link_name: str | None = None
    path: str = ""
    sources: dict = field(default_factory=dict, compare=False, repr=False)

    def peak_ops_per_s(self, precision: str) -> float:
        if precision not in self.peak_tops:
            raise InputError(f"{self.path or self.name}: field 'peak_tops.{precision}' is missing: the device "
                             f"has no published {precision} peak (it has {sorted(self.peak_tops)})")
        return self.peak_tops[precision] * 1e12


def _number(d: dict, key: str, src: str, path: str, required: bool, minimum: float = 0.0):
    entry = d.get(key)
    where = f"{path}{key}"
    if entry is None:
        if required:
            raise field_error(src, where, None, "a mapping {value: <number>, source: <text>}")
        return None, None
    if not isinstance(entry, dict) or set(entry) - {"value", "source"} or "source" not in entry:
        raise field_error(src, where, entry,
                          "a mapping {value: <number>, source: <text>} (every number needs a source)")
    source = entry.get("source")
    if not isinstance(source, str) or not source.strip():
        raise field_error(src, where + ".source", source, "a non-empty text naming the datasheet, paper or fit")
    value = entry.get("value")
    if value is None:
        if required:
            raise field_error(src, where + ".value", None, "a number (this field is required)")
        return None, source
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum or value != value:
        raise field_error(src, where + ".value", value, f"a number >= {minimum}")
    return float(value), source


def parse_profile(data, src: str, expected_name: str | None = None) -> Profile:
    """Validate one profile mapping; ``src`` names the file in error messages."""
    if not isinstance(data, dict):
        raise InputError(f"{src}: expected a mapping of profile fields, got {type(data).__name__}")
    for key in data:
        if key not in ALLOWED:
            raise field_error(src, key, data[key], f"one of {sorted(ALLOWED)}")
    for key in STRINGS:
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise field_error(src, key, data.get(key), "a non-empty string")
    if expected_name is not None and data["name"] != expected_name:
        raise field_error(src, "name", data["name"], f"{expected_name!r} (the file name)")
    if data["kind"] not in KINDS:
        raise field_error(src, "kind", data["kind"], f"one of {list(KINDS)}")
    sources = {}
    peaks_in = data.get("peak_tops")
    if not isinstance(peaks_in, dict) or not peaks_in:
        raise field_error(src, "peak_tops", peaks_in, f"a mapping precision -> {{value, source}} with precisions "
                                                      f"from {list(PRECISIONS)}")
    peaks = {}
    for prec in peaks_in:
        if prec not in PRECISIONS:
            raise field_error(src, f"peak_tops.{prec}", peaks_in[prec], f"a precision from {list(PRECISIONS)}")
        val, s = _number(peaks_in, prec, src, "peak_tops.", required=True, minimum=1e-6)
        peaks[prec], sources[f"peak_tops.{prec}"] = val, s
    nums = {}
    for key in REQUIRED_NUMBERS:
        nums[key], sources[key] = _number(data, key, src, "", required=True, minimum=1e-9)
    for key in OPTIONAL_NUMBERS:
        nums[key], sources[key] = _number(data, key, src, "", required=False)
    link = data.get("host_link")
    link_gbps = link_name = None
    if link is not None:
        if not isinstance(link, dict) or set(link) - {"name", "bandwidth_gbps"}:
            raise field_error(src, "host_link", link, "a mapping {name: <text>, bandwidth_gbps: {value, source}}")
        link_gbps, sources["host_link.bandwidth_gbps"] = _number(link, "bandwidth_gbps", src, "host_link.",
                                                                 required=True, minimum=1e-6)
        link_name = str(link.get("name", ""))
    up = data.get("scale_up_link")
    up_gbps = up_name = None
    if up is not None:
        if not isinstance(up, dict) or set(up) - {"name", "bandwidth_gbps"}:
            raise field_error(src, "scale_up_link", up, "a mapping {name: <text>, bandwidth_gbps: {value, source}}")
        up_gbps, sources["scale_up_link.bandwidth_gbps"] = _number(up, "bandwidth_gbps", src, "scale_up_link.",
                                                                   required=True, minimum=1e-6)
        up_name = str(up.get("name", ""))
    chips = nums["chips_per_device"]
    if chips is not None and (chips < 1 or chips != int(chips)):
        raise field_error(src, "chips_per_device.value", chips, "an integer >= 1")
    units = nums["compute_units"]
    mig = nums["mig_slices"]
    if mig is not None and (mig < 1 or mig != int(mig)):
        raise field_error(src, "mig_slices.value", mig, "an integer >= 1")
    software = data.get("software", "")
    if not isinstance(software, str):
        raise field_error(src, "software", software, "a text naming a software stack (e.g. onnxruntime)")
    return Profile(
        name=data["name"], kind=data["kind"], vendor=data["vendor"], chip=data["chip"], family=data["family"],
        description=data["description"], release_year=nums["release_year"], peak_tops=peaks,
        memory_bandwidth_gbps=nums["memory_bandwidth_gbps"], memory_capacity_gb=nums["memory_capacity_gb"],
        onchip_memory_mb=nums["onchip_memory_mb"], compute_units=int(units) if units else None,
        chips_per_device=int(chips) if chips else 1, host_link_gbps=link_gbps, host_link_name=link_name,
        tdp_w=nums["tdp_w"], idle_w=nums["idle_w"], price_usd=nums["price_usd"], software=software.strip(),
        mig_slices=int(mig) if mig else None, scale_up_link_gbps=up_gbps, scale_up_link_name=up_name,
        path=src, sources=sources)


def load_profile(path: str | Path) -> Profile:
    path = Path(path)
    data = read_yaml(path, "a device profile")
    return parse_profile(data, str(path), expected_name=path.stem)


_CACHE: dict[tuple[str, str], Profile] = {}


def get(name: str) -> Profile:
    """The profile ``hw_profiles/<name>.yaml``."""
    folder = profiles_dir()
    key = (str(folder), name)
    if key not in _CACHE:
        path = folder / f"{name}.yaml"
        if not path.is_file():
            raise InputError(f"device profile {name!r}: no file {path}; expected one of {sorted(names())}")
        _CACHE[key] = load_profile(path)
    return _CACHE[key]


def names() -> list[str]:
    return sorted(p.stem for p in profiles_dir().glob("*.yaml"))


def load_all() -> dict[str, Profile]:
    return {n: get(n) for n in names()}


_SIBLINGS: dict[tuple, list] = {}


def chip_siblings(p: Profile) -> list[Profile]:
    """Every profile built on the same chip (the same silicon), ``p`` included."""
    key = (str(profiles_dir()), p.chip, p.kind)
    if key not in _SIBLINGS:
        _SIBLINGS[key] = [q for q in load_all().values() if q.chip == p.chip and q.kind == p.kind]
    return _SIBLINGS[key]


def chip_release_year(p: Profile) -> float:
    """When the chip first shipped: software for it matures from then, whatever the product."""
    return min(q.release_year for q in chip_siblings(p))


def power_density(p: Profile) -> float | None:
    """TDP per TOPS of the highest listed peak: how much power each unit of peak compute gets."""
    if not p.tdp_w:
        return None
    return p.tdp_w / max(p.peak_tops.values())


def power_headroom(p: Profile) -> float:
    """This product's power density relative to the best-fed product of its chip (<= 1)."""
    mine = power_density(p)
    dens = [d for d in (power_density(q) for q in chip_siblings(p)) if d]
    if mine is None or not dens:
        return 1.0
    return min(1.0, mine / max(dens))
