"""The result of a CPU calibration (``sim.validate.calibrate_cpu.calibrate``):
``MachineCalibration``, what the simulator takes from the microbenchmarks.

- the cost model of a run (``cost_for``): the busy and idle service-time tables
  (``EmpiricalCost``, their scheduler stalls drawn as a process in time), slowed where
  LoadGen's own threads take cores from a model whose intra-op threads fill them all
  (``contention``), else Server's busy times slowed by the issue traffic at its target QPS
  (``traffic_factors``), or on request drawn from the ratios measured under LoadGen's Server
  traffic (``wake_ratios``);
- LoadGen's host overheads per scenario (``host_ns``, ``system_for``);
- the machine's drift since calibration, from the speed probes (``drift``, ``drift_max``);
- several calibrations of one system pooled (``pooled``, ``slowdowns``);
- its JSON form (``to_dict``, ``from_dict``: ``SCHEMA``) and a summary (``summary_lines``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from sim.cost.empirical import EmpiricalCost
from sim.errors import InputError
from sim.validate.config import HarnessConfig

TRAFFIC_MIN_CYCLES = 20            # fewer back-to-back cycles of a batch size: no ratio for it
SCHEMA = "sim.cpu_calibration/1"


def _probe_ratio(run: dict, key: str, reference_ns: float | None) -> float | None:
    """A run's speed probe ``key`` over the calibration's (None if either is missing)."""
    p = (run.get(key) or {}).get("median_ns")
    return float(p / reference_ns) if p and reference_ns else None


@dataclass
class MachineCalibration:
    config: HarnessConfig
    workload_sha256: str
    cost: EmpiricalCost
    overhead: dict                      # scenario -> {issue_overhead_ns, schedule_delay_ns, ...}
    machine: dict = field(default_factory=dict)
    seconds: float = 0.0
    fingerprint: dict = field(default_factory=dict)
    probe_ns: float | None = None       # median batch-1 run time of the speed probe during calibration
    traffic: list = field(default_factory=list)   # back-to-back cycles under issue traffic (measure_service)
    probe_max_ns: float | None = None   # the same probe at the largest batch
    parts: list = field(default_factory=list)     # pooled: the calibrations it was made of (``pooled``)
    wakes: dict = field(default_factory=dict)     # woken batches under LoadGen Server traffic (measure_loadgen_wakes)

    @staticmethod
    def pooled(parts: list["MachineCalibration"]) -> "MachineCalibration":
        """One calibration from several of the same system made at different times (before,
        between and after the real runs). The machine's speed drifts by some percent from one
        window of minutes to the next, and a run sees one window's speed, not a mix: so each
        part keeps the shape of its own samples and is rescaled, batch size by batch size, to
        the median over the parts (``EmpiricalCost.pooled``); with three or more parts one
        slow or fast window cannot set the level (with two, the median is their mean).
        LoadGen's overheads are averaged, the traffic slowdown (each part against its own
        busy cycles) averaged over the parts, the wake-up ratios (each part's against its own
        medians) taken together; the speed probes are the first part's (runs' drift is recorded
        against it).
        ``slowdowns`` reports each part's overall service time against the first's."""
        if len(parts) == 1:
            return parts[0]
        first = parts[0]
        for other in parts[1:]:
            if other.config != first.config or other.workload_sha256 != first.workload_sha256:
                raise InputError(f"calibration of {first.config.workload}: the calibrations to pool are of "
                                 f"different systems or workloads")
        cost = EmpiricalCost.pooled([c.cost for c in parts],
                                    f"{first.cost.source}, {len(parts)} calibrations pooled at their median")
        overhead = {s: {k: float(np.mean([c.overhead[s][k] for c in parts])) for k in o
                        if all(isinstance(c.overhead.get(s, {}).get(k), (int, float)) for c in parts)}
                    for s, o in first.overhead.items() if all(s in c.overhead for c in parts)}
        return MachineCalibration(first.config, first.workload_sha256, cost, overhead,
                           {f"part{k + 1}": c.machine for k, c in enumerate(parts)},
                           float(sum(c.seconds for c in parts)), first.fingerprint, first.probe_ns, [],
                           first.probe_max_ns, list(parts))

    def slowdowns(self) -> list[float]:
        """Pooled: each part's service times against the first part's (1.10: 10% slower);
        else [1.0]."""
        return [c.cost.slowdown_against(self.parts[0].cost) for c in self.parts] if self.parts else [1.0]

    def traffic_ratios(self) -> list[tuple[float, dict]]:
        """``(rate_qps, {batch: cycle under traffic / busy cycle})`` per measured rate, for
        batch sizes with at least ``TRAFFIC_MIN_CYCLES`` back-to-back cycles. The busy cycle is
        the one measured next to that traffic segment (``reference_ns``) where there is one,
        else the busy median of the calibration (calibrations made before the reference)."""
        out = []
        for t in self.traffic:
            level = int(t.get("concurrency", 1))
            local = t.get("reference_ns") or {}
            ratios = {int(b): c["median_ns"] / (local.get(b) or self.cost.median_ns(int(b), concurrency=level))
                      for b, c in t["cycles"].items()
                      if c["count"] >= TRAFFIC_MIN_CYCLES and int(b) in self.cost.batch_sizes}
            if ratios:
                out.append((float(t["rate_qps"]), ratios))
        return sorted(out, key=lambda x: x[0])

    def traffic_factors(self, qps: float) -> dict:
        """Per batch size, how much slower back-to-back batches run with queries arriving at
        ``qps``: the measured ratio, linear in the rate between measured rates and held at
        the ends; a batch size without enough cycles at a rate takes the nearest size's."""
        if self.parts:
            each = [c.traffic_factors(qps) for c in self.parts]
            return {b: float(np.mean([f[b] for f in each if b in f])) for b in self.cost.batch_sizes
                    if any(b in f for f in each)}
        measured = self.traffic_ratios()
        if not measured:
            return {}

        def at(ratios: dict, b: int) -> float:
            return ratios[min(ratios, key=lambda k: (abs(k - b), k))]
        rates = [r for r, _ in measured]
        out = {}
        for b in self.cost.batch_sizes:
            values = [at(ratios, b) for _, ratios in measured]
            out[b] = float(np.interp(qps, rates, values))
        return out

    def wake_ratios(self, key: str = "ratios") -> np.ndarray:
        """Under LoadGen's Server traffic (``measure_loadgen_wakes``), of every part: the woken
        batches' times (``key`` "ratios") or the queued batches' cycles ("queued_ratios") over
        the busy medians; none from calibrations made before it."""
        parts = self.parts or [self]
        return np.sort(np.concatenate([np.asarray((c.wakes or {}).get(key) or [], dtype=np.float64)
                                       for c in parts]))

    def fills_cores(self) -> bool:
        """Whether the model's intra-op threads (over all instances) fill every usable core, so
        any other thread that runs takes a core from a run in progress."""
        fp = self.fingerprint or {}
        cores = int(fp.get("usable_cores") or fp.get("logical_cores") or 0)
        threads = self.config.intra_op_threads or int(fp.get("physical_cores") or cores)
        return cores > 0 and self.config.instances * threads >= cores

    def loadgen_cpu_ns(self, scenario: str) -> tuple[float, float] | None:
        """LoadGen's CPU time per query and per sample in ``scenario`` (its null-model run,
        ``sim.validate.loadgen_overhead``); None where the calibration did not measure it
        (the mean over the parts of a pooled calibration)."""
        parts = self.parts or [self]
        got = [(c.overhead.get(scenario) or {}) for c in parts]
        if not all("loadgen_cpu_ns_per_query" in g for g in got):
            return None
        return (float(np.mean([g["loadgen_cpu_ns_per_query"] for g in got])),
                float(np.mean([g["loadgen_cpu_ns_per_sample"] for g in got])))

    def contention(self, scenario: str, qps: float | None, cost: EmpiricalCost) -> EmpiricalCost | None:
        """``cost`` with LoadGen's own work taken from the model's cores, where the model's
        intra-op threads fill every core (``fills_cores``) and the calibration measured that
        work (``loadgen_cpu_ns``); None otherwise.

        A parallel operator waits for its slowest thread, so while LoadGen's threads run,
        the run stands still. Server: queries arrive at ``qps`` whatever the SUT does, each
        costing ``c`` ns of a core, so a run of ``t`` ns meets ``qps * t`` of them and lasts
        ``t / (1 - qps * c)``: every time, busy or woken, scaled by that. Offline: LoadGen's
        work per sample (its completions' share: the one query is issued once) lands on the
        runs, so a batch of ``b`` samples is ``b * c`` ns longer. SingleStream and MultiStream:
        LoadGen issues the next query when the previous one is done, so its work falls
        between runs (``host_ns`` holds its share of the latency) and the runs are as measured."""
        if not self.fills_cores():
            return None
        per = self.loadgen_cpu_ns(scenario)
        if per is None or scenario in ("SingleStream", "MultiStream"):
            return None if per is None else cost
        per_query, per_sample = per
        if scenario == "Server":
            load = min(0.9, float(qps or 0.0) * per_query / 1e9)     # 0.9: a run ten times longer
            return cost.scaled(1.0 / (1.0 - load)) if load > 0 else cost
        factors = {b: (cost.median_ns(b) + b * per_sample) / cost.median_ns(b) for b in cost.batch_sizes}
        return cost.busy_scaled(factors, f"+{per_sample / 1e3:.1f} us of LoadGen's work per sample")

    def cost_for(self, scenario: str, qps: float | None, cost: EmpiricalCost | None = None,
                 loadgen_ratios: bool = False) -> EmpiricalCost:
        """The cost model for a run. Server: the busy times slowed by the issue traffic at the
        target QPS (``traffic_factors``); with ``loadgen_ratios``, where the calibration measured
        batches under LoadGen's Server traffic (``wake_ratios``), every batch at its size's busy
        median times a ratio measured for its kind instead (``EmpiricalCost.under_traffic``: on
        dlrm closer at 46% of batch 1's capacity, too slow at 65%, so not the default). Other
        scenarios (no queries arrive while a batch runs) use the times as measured. In every case
        the scheduler stalls are taken out of the tables and drawn as a process in time
        (``EmpiricalCost.with_stall_process``)."""
        cost = (cost or self.cost).with_stall_process()
        contended = self.contention(scenario, qps, cost)
        if contended is not None:
            return contended
        if scenario != "Server" or not qps:
            return cost
        woken, queued = self.wake_ratios(), self.wake_ratios("queued_ratios")
        if loadgen_ratios and woken.size and queued.size:
            return cost.under_traffic(woken, queued, "batches x ratios measured under LoadGen Server traffic")
        factors = self.traffic_factors(float(qps))
        return cost.busy_scaled(factors, f"busy times under traffic at {qps:.0f} QPS") if factors else cost

    def drift(self, run: dict) -> float:
        """How much slower than at calibration the machine was just before ``run`` (its probe)."""
        r = _probe_ratio(run, "probe", self.probe_ns)
        return 1.0 if r is None else float(min(2.0, max(0.5, r)))

    def drift_max(self, run: dict) -> float | None:
        """The same at the largest batch, unclamped (None where either side has no such probe)."""
        return _probe_ratio(run, "probe_max", self.probe_max_ns)

    def host_ns(self, scenario: str) -> tuple[float, float]:
        """(issue_overhead_ns, schedule_delay_ns) for a scenario."""
        o = self.overhead.get(scenario) or self.overhead["SingleStream"]
        delay = o["schedule_delay_ns"] if scenario == "Server" else 0.0
        return float(o["issue_overhead_ns"]), float(delay)

    def system_for(self, scenario: str, system):
        """``system`` with this machine's measured host overheads for ``scenario``."""
        issue, delay = self.host_ns(scenario)
        return replace(system, issue_overhead_ns=max(0.0, issue), schedule_delay_ns=max(0.0, delay),
                       idle_after_ns=0.0, idle_wake_ns=0.0)

    def to_dict(self) -> dict:
        return {"schema": SCHEMA, "config": self.config.to_dict(), "workload_sha256": self.workload_sha256,
                "cost": self.cost.to_dict(), "overhead": self.overhead, "machine": self.machine,
                "seconds": self.seconds, "fingerprint": self.fingerprint, "probe_ns": self.probe_ns,
                "traffic": self.traffic, "probe_max_ns": self.probe_max_ns, "wakes": self.wakes}

    @staticmethod
    def from_dict(d: dict, source: str = "calibration") -> "MachineCalibration":
        if not isinstance(d, dict) or d.get("schema") != SCHEMA:
            raise InputError(f"{source}: field 'schema' = {d.get('schema') if isinstance(d, dict) else d!r}: "
                             f"expected {SCHEMA!r}")
        return MachineCalibration(HarnessConfig.from_dict(d["config"]), d["workload_sha256"],
                           EmpiricalCost.from_dict(d["cost"], source), d["overhead"], d.get("machine", {}),
                           d.get("seconds", 0.0), d.get("fingerprint", {}), d.get("probe_ns"),
                           list(d.get("traffic") or []), d.get("probe_max_ns"), wakes=dict(d.get("wakes") or {}))

    def summary_lines(self) -> list[str]:
        c = self.cost
        pooled = (f", {len(self.parts)} calibrations (service times " + ", ".join(f"{x:.3f}" for x in self.slowdowns())
                  + " times the first's) pooled at their median per batch size") if self.parts else ""
        lines = [f"calibration of {self.config.workload} ({self.config.describe()}), {self.seconds:.0f} s{pooled}"]
        for b in c.batch_sizes:
            lines.append(f"  batch {b}: busy median {c.median_ns(b) / 1e6:.3f} ms"
                         + (f", idle median {c.median_ns(b, idle=True) / 1e6:.3f} ms"
                            if any(bb == b for bb, _ in c.idle) else ""))
        for k, part in enumerate(self.parts or [self]):
            when = f" (calibration {k + 1})" if self.parts else ""
            for rate, ratios in part.traffic_ratios():
                lines.append(f"  under traffic at {rate:,.0f} QPS{when}: back-to-back cycles x "
                             + ", ".join(f"{r:.2f} (batch {b})" for b, r in sorted(ratios.items())))
        for k, part in enumerate(self.parts or [self]):
            for key, what in (("ratios", "woken batches"), ("queued_ratios", "queued batches' cycles")):
                r = np.asarray((part.wakes or {}).get(key) or [])
                if r.size:
                    when = f" (calibration {k + 1})" if self.parts else ""
                    lines.append(f"  {what} under LoadGen Server traffic at {part.wakes['rate_qps']:,.0f} QPS"
                                 f"{when}: x {np.median(r):.2f} median, {np.percentile(r, 90):.2f} p90, "
                                 f"{np.percentile(r, 99):.2f} p99 of the calibrated times ({r.size} batches)")
        for s, o in self.overhead.items():
            lines.append(f"  LoadGen {s}: issue overhead {o['issue_overhead_ns'] / 1e3:.1f} us, "
                         f"scheduler delay {o['schedule_delay_ns'] / 1e3:.1f} us")
        return lines
