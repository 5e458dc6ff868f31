"""Real against simulated: each scenario run for real and simulated with the same settings.

``validate_workload(plan)`` does, for one workload and one system description:

1. ``realise`` the system as a real SUT (refusing what a CPU cannot be);
2. calibrate it (``sim.validate.calibrate_cpu``: microbenchmarks, never the runs below);
3. run LoadGen for real, each run in its own process, ``repeats`` times: Offline first
   (its samples/s is the *measured capacity*), then SingleStream, MultiStream and Server
   at ``loads`` (fractions of the measured capacity) in ``repeats`` rounds of one run of
   each, then a search for the peak VALID Server QPS; with ``load_basis="peak"`` the peak
   search comes before the rounds and the loads are fractions of the real peak (its median
   over the repeats): loads at or above it make a run's latency grow with its length;
4. with ``calibrate_between`` and/or ``calibrate_after``, calibrate again between the rounds
   and/or after the runs: the machine's speed drifts by some percent between windows of minutes, so
   the prediction pools the calibrations at their median per batch size (``MachineCalibration.pooled``)
   rather than carry one window's speed;
5. simulate every one of those runs with the same LoadGen settings (the traffic is LoadGen's
   own, query for query), the calibrated cost and host overheads, and ``sim_seeds`` seeds
   of the resampled service times;
6. line up the metrics: SingleStream p90 and its early-stopping estimate, MultiStream p99,
   Offline samples/s, Server p99 and mean latency at each load, and the peak VALID QPS.
   ``measured`` is the median of the real repeats (``measured_spread_pct``: their max - min
   over the median); each repeat is simulated with ``sim_seeds`` seeds, and ``predicted``
   is the median over the repeats of the mean over the seeds; ``error_pct`` =
   100 (predicted - measured) / measured.

Every real run's LoadGen settings are checked against the simulated run's (the same
generated query count, sample count, target QPS and bound), so a mismatch can never pass
as a model error. A run LoadGen marks INVALID stays in the records with its reasons.

The machine is shared: before each real run the harness waits (up to ``quiet_wait_s``)
until other processes use less than ``quiet_cores`` of the CPU, and a run during which
others used more than ``disturbed_cores`` on average is repeated (up to ``retries``
times); the CPU used by others is recorded with every run.

Here: the plan (``Plan``, run lengths ``Durations``) and the ``Validator`` that carries it
out. The pieces it puts together: the real runs' attempts and kept files
(``sim.validate.real_runs``), the simulated twins (``sim.validate.twin``), the peak search
(``sim.validate.peak``) and the records (``sim.validate.records``).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from sim.errors import InputError
from sim.loadgen.scenarios import CLOSED_LOOP
from sim.loadgen.settings import PERFORMANCE_SAMPLE_COUNT, canonical_model
from sim.run import RunResult, offline_capacity_qps
from sim.sut.system import SystemSpec
from sim.util.fingerprint import physical_core_count, usable_core_count
from sim.validate import LOAD_BASES, require_loadgen
from sim.validate.calibrate_cpu import calibrate
from sim.validate.config import load_workload, realise, setup_lines
from sim.validate.machine import machine_fingerprint, wait_quiet
from sim.validate.machine_calibration import MachineCalibration
from sim.validate.peak import bisect_peak, predict_peak, search_real_peak
from sim.validate.process import run_in_subprocess
from sim.validate.real_runs import (
    attempt_folder,
    batch_speed,
    foreign_cores,
    keep_least_disturbed,
    kept_run,
    loadgen_value,
    real_latencies,
)
from sim.validate.records import RunPair, make_records, ns_to_ms, plot_data
from sim.validate.twin import check_same_settings, sim_latencies, sim_summary, simulate_twin

#: the public names (``machine_fingerprint``, ``simulate_twin``, ``bisect_peak``, ``wait_quiet``,
#: ``real_latencies`` and ``make_records`` are defined in the modules above)
__all__ = ["Plan", "Durations", "QUICK", "LOADS", "validate_workload", "simulate_twin", "bisect_peak",
           "wait_quiet", "real_latencies", "make_records", "machine_fingerprint"]

LOADS = (0.30, 0.60, 0.85)
PROBE_S = 1.0           # the speed probe before each real run (and during calibration)


@dataclass(frozen=True)
class Durations:
    """Run lengths (LoadGen's min_duration and min_query_count) per scenario."""
    single_stream_s: float = 15.0
    single_stream_queries: int = 200
    multi_stream_s: float = 10.0
    multi_stream_queries: int = 662          # enough for MultiStream's p99 early-stopping estimate
    offline_s: float = 15.0
    server_s: float = 20.0
    server_queries: int = 500               # enough for Server's early stopping with no late query
    peak_s: float = 20.0
    peak_rel_tol: float = 0.02


QUICK = Durations(single_stream_s=1.5, single_stream_queries=64, multi_stream_s=1.5, multi_stream_queries=64,
                  offline_s=1.5, server_s=2.0, server_queries=500, peak_s=2.0, peak_rel_tol=0.08)


@dataclass
class Plan:
    workload: str                               # catalog name, name:key=value,... or .onnx path
    system: object                              # sim.sut.system.SystemSpec
    outdir: Path
    small: bool = False
    mlperf_model: str | None = None
    repeats: int = 3
    sim_seeds: int = 5
    loads: tuple = LOADS
    durations: Durations = field(default_factory=Durations)
    server_bound_ms: float | None = None        # default: 20x the idle batch-1 service time, >= 2 ms
    peak: bool = True
    quick: bool = False
    quiet_cores: float = 0.35
    quiet_wait_s: float = 120.0
    disturbed_cores: float = 0.6
    retries: int = 2
    nice: int = 0                               # niceness change of the measuring processes (e.g. -10)
    log: object = print
    drift_probe: bool = False                   # rescale each prediction by the run's speed probe
    replay: bool = False                        # re-simulate from the kept real runs and calibration
    calibrate_after: bool = False               # calibrate again after the real runs and pool them all
    calibrate_between: int = 0                  # calibrations between the rounds (spread evenly), pooled too
    load_basis: str = "offline"                 # Server loads of: "offline" (samples/s) or "peak" (VALID QPS)
    system_file: str | None = None              # where ``system`` was read from (None: the default set-up)


# ---------------------------------------------------------------------------------------
# helpers


def _label(workload: str, small: bool) -> str:
    return f"{workload} (small)" if small else workload


def total_samples(model: str) -> int:
    """The QSL size given to LoadGen (and to the simulator): the model's performance sample count."""
    return int(PERFORMANCE_SAMPLE_COUNT.get(model, 0) or 1024)


class Validator:
    """Carries out a ``Plan`` (see the module docstring): ``run()`` returns the workload's result."""

    def __init__(self, plan: Plan):
        require_loadgen()
        self.plan = plan
        self.log = plan.log or (lambda *a, **k: None)
        self.cfg = realise(plan.system, plan.workload, plan.small)
        self.workload = load_workload(plan.workload, plan.small)
        spec_model = plan.mlperf_model or self.workload.mlperf_model
        self.model = canonical_model(spec_model, allow_unknown_model=True)
        self.total = total_samples(self.model)
        self.root = Path(plan.outdir)
        self.cal: MachineCalibration | None = None     # the calibration before the runs (their settings)
        self.pred_cal: MachineCalibration | None = None  # what the predictions use (pooled with the later ones)
        self.runs: list[dict] = []              # every real run (for the report's run table)
        self.disturbed_retries = 0
        self._costs: dict = {}                  # (drift, Server QPS, traffic) -> cost model

    # ---- real ---------------------------------------------------------------------
    def _drift(self, real: dict) -> float:
        """The factor on the calibrated service times for this run's prediction: 1, or with
        ``drift_probe`` the run's speed probe against the calibration's (see ``pair``)."""
        return self.cal.drift(real) if self.plan.drift_probe else 1.0

    def _measured_run(self, scenario: str, overrides: dict, folder: Path) -> dict:
        p = self.plan
        best = None
        for attempt in range(1 + max(0, p.retries)):
            waited, reading = wait_quiet(p.quiet_cores, p.quiet_wait_s) if p.quiet_wait_s > 0 else (0.0, None)
            where = attempt_folder(folder, attempt)
            spec = {"config": self.cfg.to_dict(), "scenario": scenario, "mlperf_model": self.model,
                    "overrides": overrides, "outdir": str(where), "total_sample_count": self.total,
                    "probe_s": PROBE_S}
            timeout = 600.0 + 20 * max(overrides.get("min_duration_ns", 0) / 1e9, 1.0)
            result = run_in_subprocess("sim.validate.harness", spec, where, timeout, nice=p.nice)
            result["waited_s"], result["foreign_before"] = waited, reading
            result["attempt"] = attempt + 1
            best, done = keep_least_disturbed(best, result, p.disturbed_cores)
            if done:
                break
            if attempt < p.retries:
                self.disturbed_retries += 1
                self.log(f"    run disturbed (other processes used {foreign_cores(result):.2f} cores); repeating")
        if best["errors"]:
            raise RuntimeError(f"{folder}: the harness reported errors: {best['errors']}")
        return best

    def real_run(self, scenario: str, overrides: dict, folder: Path) -> dict:
        """One real run; while other processes disturb it, again (the least disturbed attempt is
        kept). With ``replay`` the kept run is read back instead."""
        if self.plan.replay:
            result = kept_run(folder, overrides, self.plan.retries, self.plan.disturbed_cores)
        else:
            result = self._measured_run(scenario, overrides, folder)
        self.runs.append({"folder": str(folder), "scenario": scenario, "valid": result["valid"],
                          "foreign_cores": result["machine"].get("foreign_cores_mean"),
                          "attempt": result["attempt"], "wall_s": result.get("wall_s"),
                          "probe_drift": self.cal.drift(result), "probe_drift_max": self.cal.drift_max(result)})
        return result

    # ---- simulated ----------------------------------------------------------------
    def simulate(self, scenario: str, overrides: dict, seed: int, drift: float = 1.0,
                 traffic: bool = True) -> RunResult:
        """The simulated twin of a run; ``drift`` rescales the calibrated service times (see
        ``pair``); ``traffic=False`` leaves out Server's model of batches under traffic
        (``MachineCalibration.cost_for``)."""
        cal = self.pred_cal
        qps = overrides.get("server_target_qps") if scenario == "Server" else None
        key = (round(drift, 6), qps, traffic)
        if key not in self._costs:
            scaled = cal.cost.with_stall_process().scaled(key[0])
            self._costs[key] = cal.cost_for(scenario, qps, scaled) if traffic else scaled
        return simulate_twin(cal, self.plan.system, self.plan.workload, self.model, self.total, scenario,
                             overrides, seed, self._costs[key])

    # kept on the class: callers outside the package summarise twins with it
    sim_summary = staticmethod(sim_summary)

    # ---- one comparison point -----------------------------------------------------
    def pair(self, scenario: str, tag: str, overrides: dict) -> RunPair:
        """Real repeats of one setting (``predict`` adds their simulated twins).

        Each real run starts with a one-second speed probe (batch-1 runs back to back, before
        LoadGen starts); the same probe ran during calibration. Their ratio, the machine's
        drift since calibration, is recorded with every run; with ``drift_probe`` it also
        rescales the calibrated service times for that run's prediction. ``run_validation``
        turns it on where every batch is of one sample: the probe's batch size. With larger
        batches a one-second batch-1 probe proved a poor guide to a run's batch times (bert_base
        batching up to 8: the probe read +10% where the run's own batches ran +2 to 4%, and
        batch 8 not slower). In the default set-up (batch 1) the probes followed the runs: on
        the zoo, runs whose batches ran at 0.51 to 1.47 of the calibration had probes at 0.59
        to 1.44, and the median |error| over 110 metrics fell from 28.1% to 19.3%.
        """
        rp = RunPair(scenario, tag, dict(overrides))
        for k in range(self.plan.repeats):
            self.add_repeat(rp, k)
        return rp

    def add_repeat(self, rp: RunPair, k: int) -> None:
        """Real repeat ``k`` (from 0) of ``rp``'s setting."""
        real = self.real_run(rp.scenario, rp.overrides, self._folder(rp, k))
        rp.real.append(real)
        rp.drift.append(self._drift(real))

    def _folder(self, rp: RunPair, k: int) -> Path:
        return self.root / "real" / rp.tag.replace("@", "_at_") / f"r{k + 1}"

    def predict(self, rp: RunPair) -> RunPair:
        """Each real repeat's simulated twins: ``sim_seeds`` seeds with the same settings.

        Also, as a diagnostic beside the prediction (``sim_at_speed``): the same twins with
        the calibrated service times rescaled by how fast that repeat's batches actually ran
        (``batch_speed``, read from its own batch log, which already holds any slowdown
        under traffic). The gap between the two errors is the machine's speed during the run;
        what remains is the model's."""
        rp.sim, rp.sim_at_speed = [], []
        rp.speed = [batch_speed(self._folder(rp, k), self.pred_cal.cost) for k in range(len(rp.real))]
        seeds = range(self.plan.sim_seeds)
        for k, (real, drift, speed) in enumerate(zip(rp.real, rp.drift, rp.speed)):
            sims = [self.simulate(rp.scenario, rp.overrides, seed, drift) for seed in seeds]
            check_same_settings(real, sims[0], self._folder(rp, k))
            if k == 0:
                rp.sim_traffic = sims[0].traffic
                rp.sim_latencies = sim_latencies(sims[0])
            rp.sim.append([sim_summary(r) for r in sims])
            rp.sim_at_speed.append([sim_summary(self.simulate(rp.scenario, rp.overrides, seed, speed, False))
                                    for seed in seeds] if speed else [])
        return rp

    def _calibration_again(self, name: str) -> MachineCalibration | None:
        """Another calibration of the system (``calibration_between*``, ``calibration_after``):
        made now, or on replay read back where the kept validation made one (None where it
        did not)."""
        p = self.plan
        folder = self.root / name
        if p.replay:
            path = folder / "calibration.json"
            return MachineCalibration.from_dict(json.loads(path.read_text()), str(path)) if path.is_file() else None
        if p.quiet_wait_s > 0:
            wait_quiet(p.quiet_cores, p.quiet_wait_s)
        return calibrate(self.cfg, folder, self.model, quick=p.quick, disturbed_cores=p.disturbed_cores,
                         quiet_wait_s=p.quiet_wait_s, retries=2 * p.retries, nice=p.nice)

    # ---- the whole workload -------------------------------------------------------
    def settings_for(self, scenario: str, qps: float | None = None) -> dict:
        """LoadGen settings of a run (the same for the real and the simulated one).

        The run-size hints (expected latency, expected QPS) come from the calibration with
        a margin, so a machine faster than calibrated still fills the minimum duration.
        """
        d, cost = self.plan.durations, self.cal.cost
        if scenario == "SingleStream":
            return {"min_duration_ns": int(d.single_stream_s * 1000) * 1_000_000,
                    "min_query_count": d.single_stream_queries,
                    "single_stream_expected_latency_ns": int(0.5 * cost.median_ns(1, idle=True))}
        if scenario == "MultiStream":
            b = min(8, self.cfg.max_batch)
            per_query = cost.median_ns(b, idle=True) * (8 // b) if b > 1 else cost.median_ns(1, idle=True) * 8
            return {"min_duration_ns": int(d.multi_stream_s * 1000) * 1_000_000,
                    "min_query_count": d.multi_stream_queries,
                    "multi_stream_expected_latency_ns": int(0.5 * per_query)}
        if scenario == "Offline":
            return {"min_duration_ns": int(d.offline_s * 1000) * 1_000_000, "min_query_count": 1,
                    "offline_expected_qps": float(round(1.3 * self.expected_capacity, 3))}
        return {"min_duration_ns": int(d.server_s * 1000) * 1_000_000, "min_query_count": d.server_queries,
                "server_target_qps": float(round(qps, 3)), "server_target_latency_ns": self.bound_ns}

    def run(self) -> dict:
        p = self.plan
        label = _label(p.workload, p.small)
        t0 = time.perf_counter()
        self.log(f"== {label}: {self.cfg.describe()}")
        for line in setup_lines(self.cfg, physical_core_count(), usable_core_count(), p.system_file):
            self.log("  " + line)
        if p.replay:
            path = self.root / "calibration" / "calibration.json"
            if not path.is_file():
                raise InputError(f"{path}: no calibration to replay; run the validation first")
            self.cal = MachineCalibration.from_dict(json.loads(path.read_text()), str(path))
        else:
            # a replay pools every later calibration it finds: none may be left from an
            # earlier validation with other options
            for old in [*self.root.glob("calibration_between*"), self.root / "calibration_after"]:
                if old.is_dir():
                    shutil.rmtree(old)
            if p.quiet_wait_s > 0:
                wait_quiet(p.quiet_cores, p.quiet_wait_s)
            self.cal = calibrate(self.cfg, self.root / "calibration", self.model, quick=p.quick,
                                 disturbed_cores=p.disturbed_cores, quiet_wait_s=p.quiet_wait_s,
                                 retries=2 * p.retries, nice=p.nice)
        for line in self.cal.summary_lines():
            self.log("  " + line)
        base = self.cal.system_for("Offline", p.system)
        self.expected_capacity = offline_capacity_qps(base, self.cal.cost)
        bound_ms = p.server_bound_ms or max(2.0, math.ceil(20 * self.cal.cost.median_ns(1, idle=True) / 1e5) / 10)
        self.bound_ns = int(round(bound_ms * 1e6))

        pairs: list[RunPair] = []
        self.log(f"  Offline x{p.repeats}")
        off = self.pair("Offline", "Offline", self.settings_for("Offline"))
        pairs.append(off)
        capacity = float(np.mean([loadgen_value(r, "result_samples_per_second") for r in off.real]))
        self.log(f"  measured capacity {capacity:.2f} samples/s (expected from calibration "
                 f"{self.expected_capacity:.2f}); Server bound {bound_ms:g} ms")
        pairs += [RunPair(s, s, self.settings_for(s)) for s in CLOSED_LOOP]
        # Server's own capacity, where a load above it would make a run's latency grow with its length
        peak = self.peak_search([], capacity) if p.load_basis == "peak" else None
        basis = server_load_basis(p.load_basis, capacity, peak)
        server_pairs = []
        for load in p.loads:
            qps = load * basis
            sp = RunPair("Server", f"Server@{load:.2f}", self.settings_for("Server", qps))
            sp.load, sp.qps = load, qps
            server_pairs.append(sp)
        pairs += server_pairs
        # the repeats in rounds (each setting once per round): a slow spell of the machine that
        # lasts minutes then spoils one repeat of several settings, which the median over the
        # repeats sets aside, not every repeat of the settings that happened to run during it
        between, more = rounds_followed_by_a_calibration(p.repeats, p.calibrate_between), []
        for k in range(p.repeats):
            for rp in pairs[1:]:
                what = f"Server at {rp.load:.0%} of capacity ({rp.qps:.2f} QPS)" if rp.scenario == "Server" \
                    else rp.scenario
                self.log(f"  round {k + 1}/{p.repeats}: {what}")
                self.add_repeat(rp, k)
            if k + 1 in between or p.replay:
                name = f"calibration_between{k + 1}"
                again = self._calibration_again(name)
                if again is not None:
                    self.log(f"  calibrated again after round {k + 1} ({name})")
                    for line in again.summary_lines():
                        self.log("  " + line)
                    more.append(again)
        if peak is None and p.peak:
            peak = self.peak_search(server_pairs, capacity)
        after = self._calibration_again("calibration_after") if p.calibrate_after or p.replay else None
        more += [after] if after is not None else []
        self.pred_cal = MachineCalibration.pooled([self.cal] + more)
        if more:
            self.log(f"  the predictions pool {1 + len(more)} calibrations at their median per batch size")
            for line in self.pred_cal.summary_lines():
                self.log("  " + line)
        for rp in pairs:
            self.predict(rp)
        if peak is not None:
            self.peak_predict(peak, server_pairs, capacity)
        curve = self.server_curve(capacity, float(np.median([x for sp in server_pairs for x in sp.drift])))
        records = make_records(label, pairs, server_pairs, peak, system=getattr(p.system, "name", ""))
        used = self.pred_cal
        return {"workload": label, "workload_ref": p.workload, "small": p.small, "mlperf_model": self.model,
                "system": self.cfg.describe(), "system_name": getattr(p.system, "name", ""),
                "harness_config": self.cfg.to_dict(),
                "calibration": {"summary": used.summary_lines(), "seconds": used.seconds,
                                "overhead": used.overhead, "machine": used.machine,
                                "parts": [c.summary_lines() for c in used.parts], "slowdowns": used.slowdowns(),
                                "expected_capacity_before_qps": self.expected_capacity},
                "capacity_qps": capacity, "load_basis": p.load_basis, "load_basis_qps": basis,
                "expected_capacity_qps": offline_capacity_qps(used.system_for("Offline", p.system), used.cost),
                "server_bound_ms": bound_ms, "records": records, "runs": self.runs,
                "disturbed_retries": self.disturbed_retries, "run_lengths": asdict(p.durations),
                "plots": plot_data(pairs, server_pairs, peak, curve), "seconds": time.perf_counter() - t0}

    # ---- Server: the predicted curve and the peak search -------------------------------
    def server_curve(self, capacity: float, drift: float = 1.0) -> dict:
        fractions = np.round(np.linspace(0.2, 1.0, 17), 3)
        out = {"load": [], "qps": [], "p99_ms": [], "mean_ms": [], "valid_share": [], "drift": drift}
        for f in fractions:
            qps = f * capacity
            sims = [sim_summary(self.simulate("Server", self.settings_for("Server", qps), s, drift))
                    for s in range(min(3, self.plan.sim_seeds))]
            out["load"].append(float(f))
            out["qps"].append(float(qps))
            out["p99_ms"].append(float(np.mean([ns_to_ms(x["p99_ns"]) for x in sims])))
            out["mean_ms"].append(float(np.mean([ns_to_ms(x["mean_ns"]) for x in sims])))
            out["valid_share"].append(float(np.mean([x["valid"] for x in sims])))
        return out

    def peak_settings(self, qps: float) -> dict:
        """A peak-search trial's LoadGen settings: Server's, with the trial's duration."""
        s = self.settings_for("Server", qps)
        s["min_duration_ns"] = int(self.plan.durations.peak_s * 1000) * 1_000_000
        return s

    def peak_search(self, server_pairs: list[RunPair], capacity: float) -> dict:
        """The real peak VALID QPS search, bisected per repeat (``peak_predict`` simulates it)."""
        def run_trial(k: int, qps: float) -> tuple[dict, float]:
            folder = self.root / "real" / "peak" / f"r{k + 1}" / f"qps_{qps:.3f}"
            res = self.real_run("Server", self.peak_settings(qps), folder)
            return res, self._drift(res)

        return search_real_peak(run_trial, server_pairs, capacity, self.plan.repeats,
                                self.plan.durations.peak_rel_tol, self.log)

    def peak_predict(self, peak: dict, server_pairs: list[RunPair], capacity: float) -> dict:
        """The simulated peak search of each real repeat (``peak["sim"]``), bisected finer."""
        def sim_valid(qps: float, seed: int, drift: float) -> bool:
            return bool(self.simulate("Server", self.peak_settings(qps), seed, drift).metrics.valid)

        return predict_peak(peak, sim_valid, server_pairs, capacity, self.plan.sim_seeds,
                            self.plan.durations.peak_rel_tol)


def server_load_basis(basis: str, capacity: float, peak: dict | None) -> float:
    """What the Server loads are fractions of: the measured Offline samples/s (``offline``) or
    the median over the repeats of the real peak VALID Server QPS (``peak``)."""
    if basis == "offline":
        return capacity
    found = float(np.median(peak["real"])) if peak and peak.get("real") else 0.0
    if found <= 0:
        raise InputError(f"load_basis 'peak': the real runs found no VALID Server QPS down to a tenth of the "
                         f"Offline capacity ({capacity:.2f} samples/s); expected a peak to take loads of")
    return found


def rounds_followed_by_a_calibration(repeats: int, calibrations: int) -> set[int]:
    """The rounds (from 1) after which the ``calibrate_between`` calibrations run: spread
    evenly, never after the last round (``calibrate_after`` comes then), at most one a round."""
    n = max(0, min(calibrations, repeats - 1))
    return {int(round((j + 1) * repeats / (n + 1))) for j in range(n)}


def validate_workload(plan: Plan) -> dict:
    """Calibrate, run for real and simulated, and compare (see the module docstring)."""
    return Validator(plan).run()


def run_validation(workloads: list[str], system=None, outdir="out/validate", *, quick: bool = False,
                   small: bool = False, repeats: int | None = None, sim_seeds: int | None = None,
                   server_bound_ms: float | None = None, peak: bool = True, mlperf_model: str | None = None,
                   quiet_wait_s: float | None = None, durations: Durations | None = None, nice: int = 0,
                   log=print, drift_probe: bool | None = None, replay: bool = False,
                   calibrate_after: bool | None = None, calibrate_between: int | None = None,
                   load_basis: str = "offline", system_file: str | None = None) -> list[dict]:
    """``validate_workload`` for each workload in turn (one system); the list of results.

    ``calibrate_after`` (default: unless ``quick``): calibrate again after the real runs;
    ``calibrate_between`` (default: 1 with ``calibrate_after``, else 0): calibrations between
    the rounds of real runs. The predictions pool all the calibrations at their median per batch size.

    ``system_file``: where ``system`` was read from, said in the set-up line (None: the default).

    ``drift_probe`` (default: where the system batches one sample at a time): rescale each
    run's prediction by its speed probe, made in the run's own process before LoadGen starts
    (``Validator.pair``). This machine's speed moves between processes and minutes by up to
    a factor of two on some models; the probe times batch 1, so it speaks for runs of batch
    1 only.

    ``replay``: no real runs and no calibration: both are read back from ``outdir`` (a
    finished validation with the same options) and only the simulated side runs again.
    """
    if load_basis not in LOAD_BASES:
        raise InputError(f"Server loads of {load_basis!r}: expected 'offline' (the Offline samples/s) or 'peak' "
                         f"(the real peak VALID Server QPS)")
    if load_basis == "peak" and not peak:
        raise InputError("Server loads of the peak VALID QPS need the peak search; drop --no-peak")
    if not replay:
        require_loadgen()
    system = system or SystemSpec()
    if drift_probe is None:
        drift_probe = int(system.batching.max_batch) == 1
    results = []
    after = not quick if calibrate_after is None else calibrate_after
    for w in workloads:
        slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in w + ("-small" if small else ""))
        plan = Plan(workload=w, system=system, outdir=Path(outdir).resolve() / slug, small=small,
                    mlperf_model=mlperf_model,
                    repeats=repeats or (1 if quick else 3), sim_seeds=sim_seeds or 3,
                    durations=durations or (QUICK if quick else Durations()), server_bound_ms=server_bound_ms,
                    peak=peak, quick=quick, quiet_wait_s=(0.0 if quick else 120.0) if quiet_wait_s is None
                    else quiet_wait_s, retries=0 if quick else 2, nice=nice, log=log, drift_probe=drift_probe,
                    replay=replay, calibrate_after=after,
                    calibrate_between=(1 if after else 0) if calibrate_between is None else calibrate_between,
                    load_basis=load_basis, system_file=system_file)
        results.append(_removed_if_failed(plan.outdir, lambda: validate_workload(plan)))
    return results


def _removed_if_failed(folder: Path, work):
    """``work()``; if it fails, the folders it made for ``folder`` are removed (a failed
    validation leaves no partial folder; one that was there before is left as it was)."""
    new = []
    probe = Path(folder)
    while not probe.exists() and probe.parent != probe:
        new.append(probe)
        probe = probe.parent
    try:
        return work()
    except BaseException:
        if new:
            shutil.rmtree(new[0], ignore_errors=True)
            for made in new[1:]:        # the parents it made, while empty
                try:
                    made.rmdir()
                except OSError:
                    break
        raise
