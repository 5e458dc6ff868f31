"""One device of ``hw_profiles/`` as a simulator cost model, for what-if questions on any network.

``engine(device, workload, scenario, count)`` gives the calibrated cost of one execution
engine (a chip: a GPU, a card's SoC, a CPU socket) of ``count`` such devices in a node,
as a submission of the current round would run it (``ROUND``, with the chip's
latest published software), plus the case and parameters it came from. ``sim.apps.compare``,
``sim.apps.plan`` and sweeps (``device: <profile name>``) all build their costs here.

``workload`` is any catalog workload or a user's ``.onnx`` file (``network``): its per-layer
summary is made from its layer table on first use (``sim.hw.summaries``), and the device's
calibrated parameters price it. A network with published rows in the calibration is
"fitted on its rows" (its own network factor and residual correction); any other is
"predicted from physics": the device's shared parameters, no factor of its own. A what-if
follows the settings of the MLPerf benchmark the network is (``sim.hw.benchmarks``:
Server latency bound, quality target and so precision, the scenarios MLPerf defines); a
catalog network that is no benchmark follows its catalog ``mlperf_model``'s LoadGen
settings, a user's file LoadGen's generic ``*`` settings (10 ms Server bound, INT8 by the
99% rule), and the row says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sim.cost import resolve
from sim.errors import InputError
from sim.hw import benchmarks, profiles, published, summaries
from sim.hw import system_model as sm
from sim.hw.rows import ROUND_YEAR, read_case, unit_of
from sim.loadgen.scenarios import CLOSED_LOOP, SERVER, THROUGHPUT
from sim.loadgen.settings import KNOWN_MODELS, MODEL_ALIASES, load_settings

#: the round whose rules a what-if follows
ROUND = "v5.1"
#: the settings name of a network that is no MLPerf benchmark (LoadGen's generic ``*`` settings)
GENERIC = "generic"
SCENARIOS = (("Offline", "Samples per second", "samples/s", "offline_samples_per_s"),
             ("Server", "Scheduled samples per second", "samples/s", "server_samples_per_s"),
             ("SingleStream", "90th percentile latency (ns)", "ns", "singlestream_p90_ns"),
             ("MultiStream", "99th percentile latency (ns)", "ns", "multistream_p99_ns"))
ALL_SCENARIOS = tuple(sc[0] for sc in SCENARIOS)


def _server_bound_ns(model: str) -> int:
    """The Server latency bound of LoadGen's mlperf.conf for ``model`` (earlier rounds' included)."""
    return int(load_settings(model, SERVER, defaults="6.0+legacy", allow_unknown_model=True,
                             total_sample_count=1024).target_latency_ns)


@dataclass(frozen=True)
class Network:
    """A network as a what-if predicts it."""
    workload: str            # what was asked for: a catalog name or a .onnx path
    key: str                 # its summary key (``sim.hw.summaries``)
    model: str               # the results name whose settings and quality target it follows
    scenarios: tuple         # the scenarios MLPerf defines for it (all four for a non-benchmark)
    benchmark: bool          # an MLPerf benchmark's network
    settings_note: str       # what settings it follows, in words

    @property
    def uncounted(self) -> dict[str, int]:
        return summaries.uncounted(self.key)

    def server_bound_ns(self) -> int | None:
        """The Server bound of its settings; None where MLPerf defines no Server test for it."""
        return _server_bound_ns(self.model) if "Server" in self.scenarios else None

    def not_a_test(self, scenario: str) -> str | None:
        """Why ``scenario`` is no MLPerf test of this network (None: it is one)."""
        if scenario in self.scenarios:
            return None
        return f"not an MLPerf test ({self.model} defines {', '.join(self.scenarios)})"


def network(workload: str, input_shapes: dict | None = None) -> Network:
    """The network of ``workload`` (a catalog name or a ``.onnx`` path), summarised if needed."""
    import os  # noqa: PLC0415 - the process's --input-shape overrides are part of a user model's identity

    shapes_key = (tuple(sorted((k, tuple(v)) for k, v in (input_shapes or {}).items())),
                  os.environ.get("SIM_INPUT_SHAPES", ""))
    return resolve.cached(("hw-network", workload, shapes_key), lambda: _network(workload, input_shapes))


def _network(workload: str, input_shapes: dict | None) -> Network:
    if not isinstance(workload, str) or not workload:
        raise InputError(f"workload {workload!r}: expected a catalog workload name or a .onnx file")
    key = summaries.resolve(workload, input_shapes)
    if summaries.is_path(workload):
        return Network(workload, key, GENERIC, ALL_SCENARIOS, False,
                       "a user's model: LoadGen's generic settings (10 ms Server bound), INT8 by the 99% rule")
    bench = benchmarks.for_workload(workload)
    if bench is not None:
        note = f"MLPerf {bench.name} settings" + (f"; {bench.note}" if bench.note else "")
        return Network(workload, key, bench.name, tuple(bench.scenarios), True, note)
    from sim.workload import catalog  # noqa: PLC0415 - the catalog entry's settings name, off the benchmark path

    spec = catalog.catalog().get(workload)
    m = spec.mlperf_model if spec else ""
    if m and MODEL_ALIASES.get(m, m) in KNOWN_MODELS:
        return Network(workload, key, m, ALL_SCENARIOS, False,
                       f"not an MLPerf benchmark: LoadGen settings of {m!r} (its catalog mlperf_model)")
    return Network(workload, key, GENERIC, ALL_SCENARIOS, False,
                   "not an MLPerf benchmark: LoadGen's generic settings (10 ms Server bound)")


class _Covered:
    """Workload -> the results name whose settings a what-if of it follows, for every catalog
    workload and any ``.onnx`` path (``workload in MODELS`` is true for both)."""

    def __contains__(self, workload) -> bool:
        if not isinstance(workload, str) or not workload:
            return False
        if summaries.is_path(workload):
            return True
        from sim.workload import catalog  # noqa: PLC0415 - the catalog's names, only when asked

        return workload in catalog.catalog()

    def __getitem__(self, workload: str) -> str:
        return network(workload).model

    def __iter__(self):
        from sim.workload import catalog  # noqa: PLC0415 - as above

        return iter(sorted(catalog.catalog()))


MODELS = _Covered()


def server_bound_ns(workload: str) -> int | None:
    """The Server latency bound a what-if of ``workload`` follows (None: no MLPerf Server test)."""
    return network(workload).server_bound_ns()


def software_round(prof, calib) -> str:
    """The round whose software a prediction assumes: the current round, or the last round
    with published results of the device's chip when that is older. The fitted software
    trend is not extrapolated past a chip's last results: a product that stopped
    submitting (e.g. Habana Goya, last seen in v0.5) shows no later software gains."""
    f = calib.units.get(unit_of_profile(prof))
    if f is None or not f.fitted or not f.row_keys:
        return ROUND
    last = max(k[6] for k in f.row_keys)
    if last >= ROUND_YEAR[ROUND]:
        return ROUND
    return min((v for v, y in ROUND_YEAR.items() if y >= last and not v.startswith("mobile")),
               key=lambda v: ROUND_YEAR[v])


def what_if_row(prof, count: int, model: str, scenario: str, metric: str, units: str, version: str = ROUND) -> dict:
    return {"version": version, "division": "closed", "submitter": "what-if", "system": f"{count}x {prof.name}",
            "accelerator": prof.name, "accelerator_kind": prof.kind,
            "accelerators_per_node": str(count) if prof.kind != "cpu" else "0",
            "host_processors_per_node": str(count) if prof.kind == "cpu" else "",
            "number_of_nodes": "1", "framework": prof.software, "host_cpu": "", "model": model, "scenario": scenario,
            "metric": metric, "units": units, "power_measured": "no",
            "target_latency_ns": str(_server_bound_ns(model)) if scenario == "Server" else "0"}


def unit_of_profile(prof) -> str | None:
    """The calibration unit a what-if row of ``prof`` is predicted by (None: unsupported)."""
    case = read_case(what_if_row(prof, 1, "resnet50", "Offline", SCENARIOS[0][1], SCENARIOS[0][2]), 0)
    return unit_of(case) if case.ok else None


@dataclass(frozen=True)
class DeviceEngine:
    cost: object                 # sim.hw.analytic.AnalyticCost of one engine
    case: object                 # sim.hw.rows.Case the cost was built for
    setup: object                # sim.hw.system_model.Setup
    params: object               # sim.hw.system_model.Params
    engines_per_device: int
    source: str                  # where the parameters come from
    version: str                 # the round whose software is assumed
    network: Network | None = None


def row(prof, count: int, model: str, scenario: str, version: str, bound_ns: float | None = None) -> dict:
    """A results-file row (input columns only) describing ``count`` x ``prof`` in ``scenario``."""
    _, metric, units, _ = next(x for x in SCENARIOS if x[0] == scenario)
    r = what_if_row(prof, count, model, scenario, metric, units, version)
    if scenario == "Server" and bound_ns:
        r["target_latency_ns"] = str(int(bound_ns))
    return r


def default_calibration():
    """The calibration on the shared published results, fitted (or loaded) once per process."""
    return resolve.cached("hw-calibration", published.calibration_from)


def engine(device: str, workload: str, scenario: str, count: int = 1, calib=None,
           bound_ns: float | None = None) -> DeviceEngine:
    """The calibrated cost of one engine of ``count`` x ``device`` running ``workload`` (a
    catalog name or a ``.onnx`` path; built once per process and calibration,
    ``sim.cost.resolve.cached``). A Server run of a network MLPerf defines no Server test for
    needs ``bound_ns``: no bound is invented."""
    calib = calib or default_calibration()
    resolve.cached(("hw-calibration-held", id(calib)), lambda: calib)   # its id stays its own while cached
    key = ("hw-engine", device, workload, scenario, count, bound_ns, id(calib))
    return resolve.cached(key, lambda: _build(device, workload, scenario, count, calib, bound_ns))


def case_for(prof, count: int, net: Network, scenario: str, version: str, bound_ns: float | None = None):
    """The prediction task of ``count`` x ``prof`` running ``net`` in ``scenario``."""
    return read_case(row(prof, count, net.model, scenario, version, bound_ns), 0, workload=net.key)


def has_rows(calib, key: str) -> bool:
    """Whether the calibration was fitted on published rows of network ``key``."""
    nets = getattr(calib, "networks", None)
    if nets is not None:
        return key in nets
    return any(k[3] == key for f in calib.units.values() if f.fitted for k in f.row_keys)


def provenance(calib, net: Network) -> str:
    """Where a prediction of ``net`` comes from, in words: fitted on its rows or from physics."""
    if has_rows(calib, net.key):
        return f"{net.workload}: fitted on its published rows (network factor and residual corrections)"
    return (f"{net.workload}: predicted from physics (no published rows of it): its layer table and the "
            f"device's shared parameters, no network factor")


def _build(device: str, workload: str, scenario: str, count: int, calib, bound_ns: float | None) -> DeviceEngine:
    net = network(workload)
    if device not in set(profiles.names()):
        raise InputError(f"device {device!r}: unknown; expected one of {sorted(profiles.names())}")
    if scenario == "Server" and not bound_ns and net.server_bound_ns() is None:
        raise InputError(f"workload {workload!r}, Server: {net.not_a_test('Server')}; expected a latency bound "
                         "(a plan's --latency-ms, a sweep point's server_target_latency_ns)")
    prof = profiles.get(device)
    version = software_round(prof, calib)
    case = case_for(prof, count, net, scenario, version, bound_ns)
    if not case.ok:
        raise InputError(f"device {device!r}, workload {workload!r}, {scenario}: unsupported ({case.unsupported})")
    p, src = calib.params_for(case)
    corr, _ = calib.correction(case)
    s = sm.setup(case)
    c = sm.cost(case, s, p, overlap_link=scenario in THROUGHPUT)
    # the residual correction divides a prediction by exp(corr): a throughput through
    # service times longer by exp(corr), a latency through service times shorter by it
    sign = -1.0 if scenario in CLOSED_LOOP else 1.0
    c = c.with_scale(c.scale / sm.scaling(s, p) * math.exp(sign * corr))
    if version != ROUND:
        src += f"; software as of {version}, its latest published round"
    src += f"; {provenance(calib, net)}; {net.settings_note}"
    if not_test := net.not_a_test(scenario):
        src += f"; {scenario}: {not_test}"
    return DeviceEngine(c, case, s, p, prof.chips_per_device, src, version, net)
