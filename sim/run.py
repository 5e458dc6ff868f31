"""One simulated MLPerf test: settings -> LoadGen's traffic -> the system model -> verdict.

``simulate`` is the call a notebook makes and ``python -m sim run`` wraps::

    from sim.run import simulate
    r = simulate("Server", workload="resnet50", overrides={"server_target_qps": 20.0})
    print(r.summary_text())
    r.write("out/")          # mlperf_log_summary.txt, mlperf_log_detail.txt, result.json

The traffic is exactly what LoadGen would issue with the same settings (``sim.loadgen.traffic``);
the system is a ``sim.sut.system.SystemSpec``; the cost of a batch comes from the ``cost``
argument, the system's ``cost`` entry, or else the measured CPU profile of the workload.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sim.cost import resolve
from sim.cost.protocol import describe as describe_cost
from sim.errors import InputError
from sim.loadgen import logs as loadgen_logs
from sim.loadgen import metrics as metrics_mod
from sim.loadgen.conf import read_conf_file
from sim.loadgen.scenarios import SCENARIOS
from sim.loadgen.settings import KNOWN_MODELS, TestSettings, load_settings
from sim.loadgen.traffic import Traffic, check_run_size, generate, stop_issuing
from sim.sut.engine import EngineResult, simulate_closed, simulate_open
from sim.sut.system import SystemSpec
from sim.util import atomic
from sim.util.checks import RANGES, check_work, number
from sim.workload import catalog as workloads


@dataclass
class RunResult:
    scenario: str
    workload: str
    system: SystemSpec
    cost_description: str
    settings: TestSettings
    traffic: Traffic
    engine: EngineResult
    metrics: metrics_mod.Metrics
    seed: int
    hints: dict
    notes: list = field(default_factory=list)     # assumptions made for the run (one line each)

    def summary_text(self) -> str:
        return loadgen_logs.summary_text(self.metrics, loadgen_logs.summary_params(self.settings),
                                         sut_name=f"sim: {self.system.name}")

    def to_json(self) -> dict:
        m = self.metrics
        return {
            "schema": "sim.result/1",
            "scenario": self.scenario, "workload": self.workload, "mlperf_model": self.settings.model,
            "system": self.system.name, "cost_model": self.cost_description, "seed": self.seed,
            "run_size_hints": self.hints,
            "result": {"valid": m.valid, "metric": m.headline_name, "value": m.headline_value},
            "metrics": m.to_dict(),
            "settings": {k: v for k, v in vars(self.settings).items() if not k.startswith("_")},
            "queries": int(len(self.engine.query_scheduled_ns)),
            "samples": int(len(self.engine.sample_complete_ns)),
            "batches": int(len(self.engine.batches.get("count", []))),
            "mean_batch_size": float(np.mean(self.engine.batches["count"])) if len(self.engine.batches.get(
                "count", [])) else 0.0,
        }

    def write(self, out_dir: str | Path) -> list[Path]:
        """Write the summary, the detail log and result.json into ``out_dir``: each file atomically,
        the three under a lock on the folder, so runs writing into one folder at once take turns
        and leave the three files of one run."""
        return write_run_files(out_dir, self.summary_text(), self.metrics, self.settings, self.traffic, self.to_json())


def write_run_files(out_dir: str | Path, summary: str, metrics, settings: TestSettings, traffic: Traffic,
                    result: dict) -> list[Path]:
    """mlperf_log_summary.txt, mlperf_log_detail.txt and result.json of one run (sample or LLM)
    into ``out_dir``: each file atomically, the three under a lock on the folder."""
    out = atomic.check_output(out_dir, "folder", "out_dir")
    detail = loadgen_logs.detail_lines(metrics, loadgen_logs.detail_settings(settings, traffic))
    files = {"mlperf_log_summary.txt": summary,
             "mlperf_log_detail.txt": "\n".join(detail) + "\n",
             "result.json": json.dumps(result, indent=2, default=_jsonable) + "\n"}
    with atomic.folder_lock(out):
        return [atomic.write_text(out / name, text) for name, text in files.items()]


def _jsonable(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def resolve_cost(system: SystemSpec, workload: str | None, cost=None, small: bool = False):
    """The batch cost model: explicit, from the system file, or the workload's CPU profile
    (``sim.cost.resolve.for_system``)."""
    return resolve.for_system(system, workload, cost, small)


def mlperf_model_of(workload: str | None) -> str:
    """LoadGen's model name for a workload: the catalog's, a user's ``.onnx`` file's stem (a name
    mlperf.conf does not know gets LoadGen's generic ``*`` settings), resnet50 for none."""
    if workload is None:
        return "resnet50"
    specs = workloads.catalog()
    if workload in specs:
        return specs[workload].mlperf_model
    if not (workload.endswith(".onnx") or os.sep in workload):     # as sim.workload.catalog.resolve
        raise InputError(f"unknown workload {workload!r}: expected a .onnx file or one of {sorted(specs)}")
    return Path(workload).stem


#: The QSL size assumed where LoadGen's settings take the performance sample count from the QSL
#: (a model without ``performance_sample_count_override`` in mlperf.conf: a user's own .onnx,
#: 3d-unet) and the caller gave none.
ASSUMED_SAMPLE_COUNT = 1024


def settings_of(model: str, scenario: str, *, user_conf=None, overrides: dict | None = None,
                total_sample_count: int | None = None) -> tuple[TestSettings, list[str]]:
    """LoadGen's settings for a run, and what was assumed to get them (one line each).

    Where the settings take the performance sample count from the QSL and ``total_sample_count``
    is not given, a QSL of ``ASSUMED_SAMPLE_COUNT`` samples is assumed; a model mlperf.conf does
    not know gets LoadGen's generic ``*`` settings. Both are said.
    """
    notes = []
    try:
        settings = load_settings(model, scenario, user_conf=user_conf, overrides=overrides,
                                 total_sample_count=total_sample_count, allow_unknown_model=True)
    except InputError:
        if total_sample_count is not None:
            raise
        settings = load_settings(model, scenario, user_conf=user_conf, overrides=overrides,
                                 total_sample_count=ASSUMED_SAMPLE_COUNT, allow_unknown_model=True)
        notes.append(f"model '{settings.model}' takes the performance sample count from the QSL: assumed a QSL of "
                     f"{ASSUMED_SAMPLE_COUNT} samples (performance_sample_count_override in user.conf sets another)")
    if settings.model not in KNOWN_MODELS:
        notes.insert(0, f"model '{settings.model}' is not in LoadGen's mlperf.conf: LoadGen's generic '*' "
                        f"settings apply (--mlperf-model NAME picks a benchmark's)")
    return settings, notes


# The settings LoadGen uses only to size a run (how many queries to pre-generate), per scenario:
# the TestSettings field and the conf-file key that set it.
HINT_FIELDS = {"SingleStream": ("single_stream_expected_latency_ns", "target_latency"),
               "MultiStream": ("multi_stream_expected_latency_ns", "target_latency"),
               "Offline": ("offline_expected_qps", "target_qps"),
               "Server": ("server_target_qps", "target_qps")}


def _hint_given(scenario: str, user_conf, overrides: dict | None) -> bool:
    field, conf_key = HINT_FIELDS[scenario]
    if overrides and field in overrides:
        return True
    if user_conf:
        for key in read_conf_file(user_conf):
            parts = key.split(".")
            if len(parts) == 3 and parts[1] in (scenario, "*") and parts[2] == conf_key:
                return True
    return False


def unloaded_latency_ns(system: SystemSpec, cost, samples_per_query: int = 1, seed: int = 0) -> int:
    """Latency of one query through the idle system (one simulated query)."""
    r = simulate_closed(system, cost, samples_per_query, 1, lambda issued, last: True, seed)
    return int(r.query_latency_ns[0])


def offline_capacity_qps(system: SystemSpec, cost, seed: int = 0) -> float:
    """Samples per second of the system kept full (a short simulated Offline run)."""
    n = max(64, 16 * system.servers * system.batching.max_batch)
    check_work("samples", n, f"the Offline capacity run of the system (16 x {system.servers:,} instances "
                             f"x max_batch {system.batching.max_batch:,})")
    r = simulate_open(system, cost, np.zeros(1, dtype=np.int64), n, seed)
    return n / (float(r.sample_complete_ns.max()) / 1e9)


def run_size_hints(scenario: str, system: SystemSpec, cost, user_conf=None, overrides=None) -> dict:
    """What a user would put in user.conf so LoadGen sizes the run for this system.

    LoadGen pre-generates queries from an expected latency (SingleStream, MultiStream) or an
    expected QPS (Offline, and Server's target); with the defaults a fast system runs out of
    queries before the minimum duration. Unless the user set them, the hints are taken from
    the model itself: the latency of one query on the idle system, the Offline capacity, and
    half of it as a Server target. Returned as ``overrides`` entries.
    """
    if _hint_given(scenario, user_conf, overrides):
        return {}
    field = HINT_FIELDS[scenario][0]
    if scenario == "SingleStream":
        return {field: max(1, unloaded_latency_ns(system, cost, 1))}
    if scenario == "MultiStream":
        return {field: max(1, unloaded_latency_ns(system, cost, 8))}
    capacity = offline_capacity_qps(system, cost)
    return {field: capacity if scenario == "Offline" else 0.5 * capacity}


def _refuse_oversized_run(model: str, scenario: str, user_conf, overrides, total_sample_count,
                          auto_hints: bool) -> None:
    """Refuse a run too large to generate before the cost model is built (which may measure the
    workload): what the settings already fix (the minimum query count; the whole size where the
    user gave the expected latency or QPS) is checked here, the rest once the hints are set
    (``sim.loadgen.traffic.generate``). Settings that are wrong are reported later, in the
    usual order."""
    try:
        settings, _ = settings_of(model, scenario, user_conf=user_conf, overrides=overrides,
                                  total_sample_count=total_sample_count)
    except InputError:
        return
    check_run_size(settings, total_sample_count,
                   by_duration=not auto_hints or _hint_given(scenario, user_conf, overrides))


def simulate(scenario: str, *, workload: str | None = "resnet50", system: SystemSpec | None = None,
             cost=None, mlperf_model: str | None = None, user_conf: str | None = None,
             overrides: dict | None = None, seed: int = 0, small: bool = False,
             total_sample_count: int | None = None, auto_hints: bool = True) -> RunResult:
    """Run one LoadGen scenario through the system model; see the module docstring.

    With ``auto_hints`` the run-sizing settings the user did not give are set from the
    model (``run_size_hints``); the values used are in ``RunResult.hints``.
    """
    if scenario not in SCENARIOS:
        raise InputError(f"scenario {scenario!r}: expected one of {list(SCENARIOS)}")
    seed = number(seed, "simulate", "seed", **RANGES["seed"])
    system = system or SystemSpec()
    model = mlperf_model or mlperf_model_of(workload)
    _refuse_oversized_run(model, scenario, user_conf, overrides, total_sample_count, auto_hints)
    cost_model = resolve_cost(system, workload, cost, small)
    hints = run_size_hints(scenario, system, cost_model, user_conf, overrides) if auto_hints else {}
    settings, notes = settings_of(model, scenario, user_conf=user_conf, overrides={**hints, **(overrides or {})},
                                  total_sample_count=total_sample_count)
    traffic = generate(settings, total_sample_count)
    if scenario == "Server":
        eng = simulate_open(system, cost_model, traffic.scheduled_ns, 1, seed)
        lat = eng.sample_complete_ns - eng.query_scheduled_ns
    elif scenario == "Offline":
        eng = simulate_open(system, cost_model, np.zeros(1, dtype=np.int64), traffic.samples_per_query, seed)
        lat = eng.sample_complete_ns.copy()
    else:
        spq = traffic.samples_per_query

        def stop(issued: int, last_issue_ns: int) -> bool:
            return stop_issuing(settings, issued, last_issue_ns) is not None

        eng = simulate_closed(system, cost_model, spq, traffic.query_count, stop, seed)
        lat = eng.sample_complete_ns - np.repeat(eng.query_scheduled_ns, spq)
    m = metrics_mod.compute(scenario, settings, eng.query_scheduled_ns, eng.query_complete_ns, lat,
                            traffic.samples_per_query if scenario != "Offline" else 1)
    return RunResult(scenario=scenario, workload=workload or "-", system=system,
                     cost_description=describe_cost(cost_model),
                     settings=settings, traffic=traffic, engine=eng, metrics=m, seed=seed, hints=hints,
                     notes=notes)
