"""MLPerf Inference benchmarks by the names results files give them, and the network each is.

A results row names its benchmark in the ``model`` column (``resnet50``, ``bert-99.9``,
``dlrm-v2-99``, ``mobilenet-edgetpu``, ...). ``lookup(model, version)`` says which network of
the catalog (``workloads/*.yaml``) that benchmark ran in that round, with which build
parameters, and which scenarios MLPerf defines for it; or why the catalog cannot build it
(``Benchmark.unsupported``). What changed between rounds is kept here, in one place:

- 3D-UNet: BraTS19 volumes of 4 x 224 x 224 x 160 voxels in v0.7 to v1.1, KiTS19 CT
  volumes of varying size (read as overlapping 128^3 patches) from v2.0. The catalog's
  ``3d_unet`` is the KiTS19 network on one 128^3 patch (one input channel, cubic sizes):
  it builds neither the BraTS19 network nor a whole KiTS19 volume, whose patch count
  varies per case and is not in the repository. Both are ``unsupported`` with that reason.
- DLRM: ``dlrm`` / ``dlrm-99`` / ``dlrm-99.9`` (v0.7 to v2.1) ran DLRM on Criteo Terabyte
  with one-hot lookups and the dot interaction: the catalog's ``dlrm`` as built.
  ``dlrm-v2-99`` / ``dlrm-v2-99.9`` (v3.0 on) run DLRM-DCNv2: three low-rank cross layers
  (rank 512) and multi-hot lookups with MLPerf's pooling factors per table
  (``sim.workload.graphs.dlrm.MLPERF_MULTI_HOT``): the same builder with
  ``interaction="dcn"`` and those factors. A sample is what the catalog's builder makes
  of one (``pairs_per_sample=1``, one user-item pair).
- BERT: ``bert-99`` and ``bert-99.9`` are one network (BERT-large, sequence 384) at two
  quality targets: the precision differs (``sim.hw.precision``), not the network.
- MLPerf Mobile: the names of its results (``mobilenet-edgetpu``, ``mobilenet-v4``,
  ``ssd-mobiledet``, ``mobilebert``, ``deeplabv3-mobilenetv2``, ``mosaic``, ``edsr``) map to
  catalog names; a network the catalog does not hold yet is ``unsupported``, saying so.

Scenarios (``Benchmark.scenarios``): those MLPerf defines for the benchmark in any of its
categories (datacenter, edge, mobile). BERT has no MultiStream, 3D-UNet no Server or
MultiStream, DLRM is a datacenter benchmark (Server and Offline), the Mobile benchmarks
run SingleStream (and Offline for image classification). A what-if run of another
scenario is "not an MLPerf test" (``sim.apps.compare``), never given an invented bound.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_SCENARIOS = ("Offline", "Server", "SingleStream", "MultiStream")
MOBILE_CLASSIFICATION = ("Offline", "SingleStream")
MOBILE_OTHER = ("SingleStream",)


@dataclass(frozen=True)
class Benchmark:
    """One MLPerf benchmark as one round ran it."""
    name: str                         # the results name (``model`` column)
    workload: str | None              # summary key of the network (``sim.hw.summaries``); None: unsupported
    catalog: str = ""                 # the catalog workload it is built from
    params: dict = field(default_factory=dict)    # build parameters beyond the catalog's
    scenarios: tuple = ALL_SCENARIOS  # the scenarios MLPerf defines for it
    unsupported: str | None = None    # why the catalog cannot build it (None: it can)
    note: str = ""                    # what the prediction assumes about a sample

    @property
    def ok(self) -> bool:
        return self.unsupported is None


# build-parameter variants of catalog workloads: summary key -> (catalog workload, parameters)
# (``multi_hot: "mlperf"`` stands for ``sim.workload.graphs.dlrm.MLPERF_MULTI_HOT``, read when built)
VARIANTS: dict[str, tuple[str, dict]] = {
    "dlrm_v2": ("dlrm", {"interaction": "dcn", "dcn_layers": 3, "dcn_rank": 512, "multi_hot": "mlperf"}),
}

_DLRM_NOTE = "a sample is one user-item pair, as the catalog's dlrm builds it"
_UNET_KITS_NOTE = ("KiTS19 samples are whole CT volumes of varying size, run as overlapping 128^3 patches; the "
                   "catalog's 3d_unet is one 128^3 patch and the patch count per volume of the benchmark's "
                   "cases is not in the repository")
_UNET_BRATS = ("v0.7 to v1.1 ran 3D-UNet on BraTS19 (4 x 224 x 224 x 160 voxels, four input channels); the "
               "catalog's 3d_unet is the KiTS19 network (one channel, cubic patches a multiple of 32 a side)")

# results name -> (catalog workload, summary key, scenarios, note); the 3D-UNet and DLRM
# names are resolved per round in ``lookup``
_FIXED = {
    "resnet50": ("resnet50", "resnet50", ALL_SCENARIOS, ""),
    "ssd-mobilenet": ("ssd_mobilenet_v1", "ssd_mobilenet_v1", ALL_SCENARIOS, ""),
    "ssd-resnet34": ("ssd_resnet34", "ssd_resnet34", ALL_SCENARIOS, ""),
    "retinanet": ("retinanet", "retinanet", ALL_SCENARIOS, ""),
    "bert-99": ("bert_large", "bert_large", ("Offline", "Server", "SingleStream"), ""),
    "bert-99.9": ("bert_large", "bert_large", ("Offline", "Server", "SingleStream"), ""),
    "mobilenet": ("mobilenet_v1", "mobilenet_v1", ALL_SCENARIOS, ""),          # v0.5
    "dlrm": ("dlrm", "dlrm", ("Offline", "Server"), _DLRM_NOTE),
    "dlrm-99": ("dlrm", "dlrm", ("Offline", "Server"), _DLRM_NOTE),
    "dlrm-99.9": ("dlrm", "dlrm", ("Offline", "Server"), _DLRM_NOTE),
    "dlrm-v2-99": ("dlrm", "dlrm_v2", ("Offline", "Server"), _DLRM_NOTE),
    "dlrm-v2-99.9": ("dlrm", "dlrm_v2", ("Offline", "Server"), _DLRM_NOTE),
    # MLPerf Mobile
    "mobilenet-edgetpu": ("mobilenet_edgetpu", "mobilenet_edgetpu", MOBILE_CLASSIFICATION, ""),
    "mobilenet-v4": ("mobilenet_v4", "mobilenet_v4", MOBILE_CLASSIFICATION, ""),
    "ssd-mobiledet": ("ssd_mobiledet", "ssd_mobiledet", MOBILE_OTHER, ""),
    "mobilebert": ("mobilebert", "mobilebert", MOBILE_OTHER, ""),
    "deeplabv3-mobilenetv2": ("deeplabv3_mobilenetv2", "deeplabv3_mobilenetv2", MOBILE_OTHER, ""),
    "mosaic": ("mosaic", "mosaic", MOBILE_OTHER, ""),
    "edsr": ("edsr", "edsr", MOBILE_OTHER, ""),
}
UNET_NAMES = ("3d-unet", "3d-unet-99", "3d-unet-99.9")
UNET_SCENARIOS = ("Offline", "SingleStream")
KITS19_FROM = (2, 0)
DLRM_V1_NAMES = ("dlrm", "dlrm-99", "dlrm-99.9")
DLRM_V2_FROM = (3, 0)

#: catalog workload -> the results name whose settings a what-if of it follows
WHAT_IF_NAME = {"resnet50": "resnet50", "ssd_mobilenet_v1": "ssd-mobilenet", "ssd_resnet34": "ssd-resnet34",
                "retinanet": "retinanet", "bert_large": "bert-99", "mobilenet_v1": "mobilenet",
                "dlrm": "dlrm-99", "3d_unet": "3d-unet-99", "mobilenet_edgetpu": "mobilenet-edgetpu",
                "mobilenet_v4": "mobilenet-v4", "ssd_mobiledet": "ssd-mobiledet", "mobilebert": "mobilebert",
                "deeplabv3_mobilenetv2": "deeplabv3-mobilenetv2", "mosaic": "mosaic", "edsr": "edsr"}


def round_number(version: str) -> tuple[int, int] | None:
    """``(major, minor)`` of a round name (``v2.1``, ``mobile-v3.0``), None if it is not one."""
    v = version.strip().lower().removeprefix("mobile-").removeprefix("v")
    major, _, minor = v.partition(".")
    return (int(major), int(minor or 0)) if major.isdigit() and (minor or "0").isdigit() else None


def names() -> list[str]:
    """Every results name this table knows."""
    return sorted(set(_FIXED) | set(UNET_NAMES))


def _catalog_names() -> set[str]:
    """The catalog's workload names: its files' names (``workloads/<name>.yaml``), read once per
    folder: a row is read per results row, and one unreadable entry must not hide the others."""
    from sim.workload import catalog  # noqa: PLC0415 - the catalog folder, only when asked

    folder = str(catalog.WORKLOADS_DIR)
    if folder not in _NAMES:
        _NAMES[folder] = {p.stem for p in catalog.WORKLOADS_DIR.glob("*.yaml")}
    return _NAMES[folder]


_NAMES: dict[str, set[str]] = {}


def lookup(model: str, version: str = "") -> Benchmark | None:
    """The benchmark ``model`` names in round ``version`` (None: a name MLPerf's results do
    not use for a network of this table)."""
    year = round_number(version) if version else None
    if model in UNET_NAMES:
        if year is not None and year < KITS19_FROM:
            return Benchmark(model, None, "3d_unet", scenarios=UNET_SCENARIOS, unsupported=_UNET_BRATS)
        return Benchmark(model, None, "3d_unet", scenarios=UNET_SCENARIOS, unsupported=_UNET_KITS_NOTE)
    if model not in _FIXED:
        return None
    cat, key, scenarios, note = _FIXED[model]
    if year is not None and model in DLRM_V1_NAMES and year >= DLRM_V2_FROM:
        note = f"{note}; {model} is the v0.7-v2.1 benchmark, the round {version} ran dlrm-v2"
    if cat not in _catalog_names():
        return Benchmark(model, None, cat, scenarios=scenarios,
                         unsupported=f"{model}: its network {cat!r} is not in the catalog (workloads/)")
    params = VARIANTS[key][1] if key in VARIANTS else {}
    return Benchmark(model, key, cat, params=params, scenarios=scenarios, note=note)


def for_workload(workload: str) -> Benchmark | None:
    """The benchmark a what-if run of catalog workload ``workload`` follows (None: not an
    MLPerf benchmark's network: generic settings). The catalog's ``3d_unet`` is predicted as
    built, one 128^3 patch a sample, under 3D-UNet's scenarios and settings."""
    name = WHAT_IF_NAME.get(workload)
    if name is None:
        return None
    if name in UNET_NAMES:
        return Benchmark(name, workload, workload, scenarios=UNET_SCENARIOS,
                         note="a sample is one 128^3 patch (the catalog network as built), not a KiTS19 volume")
    b = lookup(name)
    return b if b is not None and b.ok else None
