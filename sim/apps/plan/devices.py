"""The device kinds that can be planned: a hardware profile through the calibrated hardware
model (``HwDevice``), or a system description whose accelerator count is varied (``CostDevice``)."""

from __future__ import annotations

import math
from dataclasses import replace

from sim.apps.plan.evaluate import MS_SAMPLES, _Simulated
from sim.apps.plan.target import Target
from sim.errors import InputError
from sim.hw import analytic, profiles, whatif
from sim.hw import system_model as sm
from sim.loadgen.scenarios import CLOSED_LOOP, THROUGHPUT
from sim.loadgen.settings import MODEL_ALIASES
from sim.run import offline_capacity_qps
from sim.sut.system import BatchingSpec, SystemSpec

DEVICES_PER_NODE = 8      # node size for the per-node scaling loss of the hardware model


class Infeasible(Exception):
    """No count of this device can meet the target (the message says which constraint)."""

    def __init__(self, binding: str, message: str):
        super().__init__(message)
        self.binding = binding



class HwDevice(_Simulated):
    """A hardware profile through the calibrated hardware model (``sim.hw``)."""

    def __init__(self, name: str, workload: str, target: Target, calib, per_node: int = DEVICES_PER_NODE):

        net = whatif.network(workload)        # any catalog workload or .onnx file (an InputError if neither)
        self.prof = profiles.get(name)
        self.name, self.kind = name, self.prof.kind
        self.model, self.workload = net.model, workload
        self.mlperf_model = MODEL_ALIASES.get(self.model, self.model)
        self.calib = calib
        self.per_node = per_node
        self.price_usd, self.tdp_w = self.prof.price_usd, self.prof.tdp_w
        bound = net.server_bound_ns()
        self.bound_ns = (float(target.latency_ms) * 1e6 if target.latency_ms
                         else float(bound) if bound else None)
        first = self._engine(1, target.scenario)
        self.precision, self.source = first.case.precision, first.source

    def _engine(self, count: int, scenario: str):

        try:
            return whatif.engine(self.name, self.workload, scenario, min(count, self.per_node), self.calib,
                                 self.bound_ns)
        except InputError as e:
            raise Infeasible("unsupported", str(e)) from None

    def _parts(self, count: int, scenario: str):
        """(case, setup, params, cost of one engine) for ``count`` devices (per-node scaling)."""
        e = self._engine(count, scenario)
        return e.case, e.setup, e.params, e.cost

    def feasible(self, target: Target) -> None:

        case, s, p, c = self._parts(1, target.scenario)
        if self.prof.memory_capacity_gb:
            need_gb = s.workload.total_weights * analytic.BYTES[case.precision] / 1e9
            have_gb = self.prof.memory_capacity_gb / self.prof.chips_per_device
            if need_gb > have_gb:
                raise Infeasible("memory", f"the weights take {need_gb:.1f} GB at {case.precision}, above the "
                                           f"{have_gb:.1f} GB of one {self.name} chip (no model parallelism modelled)")
        t1 = c.batch_seconds(1) * 1e3
        if target.scenario == "Server" and t1 > target.latency_ms:
            raise Infeasible("latency", f"one sample takes {t1:.3g} ms on an idle {self.name}, above the "
                                        f"{target.latency_ms:g} ms bound: no count helps")
        if target.scenario == "SingleStream" and t1 > target.latency_limit_ns() / 1e6:
            raise Infeasible("latency", f"one sample takes {t1:.3g} ms on an idle {self.name}, above the "
                                        f"{target.latency_limit_ns() / 1e6:.3g} ms limit (headroom included); "
                                        f"more devices do not shorten one sample")

    def variants(self) -> tuple:
        return (1.0, 0.5, 2.0)

    def engines(self, count: int) -> int:
        return count * self.prof.chips_per_device

    def system(self, count: int, variant, target: Target):

        case, s, p, c = self._parts(count, target.scenario)
        servers = self.engines(count)
        name = f"{count} x {self.name}"
        if target.scenario == "Server":
            b = int(sm.server_config(case, s, c).max_batch * variant)
            if b < 1 or b > sm.MAX_BATCH[self.kind] or (variant > 1 and c.batch_seconds(b) > self.bound_ns * 1e-9 / 2):
                return None
            batching = sm.server_config(case, s, c, batch=b)
            util, note = self._server_capacity(count, b)      # per engine
            issue_ns = p.issue_us * 1e3
            extra = {"capacity_qps": util * servers, "capacity_note": note,
                     "issue_limit_qps": 1e9 / issue_ns if issue_ns > 0 else None}
            return SystemSpec(name=name, issue_overhead_ns=issue_ns, batching=batching, accelerators=servers), c, extra
        if variant != 1.0:
            return None
        if target.scenario == "Offline":
            b = sm.run_offline_batch(s, c)
            # LoadGen issues expected QPS x min duration samples: a system faster than the
            # target would end its run early (INVALID) at the target's rate, so it is told its own
            expected = servers * b / c.batch_seconds(b)
            return SystemSpec(name=name, batching=BatchingSpec("fixed", b, 0.0), accelerators=servers), c, \
                {"expected_qps": expected}
        if target.scenario == "SingleStream":
            hint = {"single_stream_expected_latency_ns": max(1, int(c.batch_seconds(1) * 1e9))}
            return SystemSpec(name=name, accelerators=1), c, {"hints": hint}
        per = math.ceil(MS_SAMPLES / servers)
        hint = {"multi_stream_expected_latency_ns": max(1, int(c.batch_seconds(per) * 1e9))}
        return SystemSpec(name=name, batching=BatchingSpec("dynamic", per, 0.0), accelerators=servers), c, \
            {"hints": hint}

    def estimate(self, target: Target) -> int:
        """The count the throughput alone asks for (the search's starting point)."""

        if target.scenario in CLOSED_LOOP:
            return 1
        case, s, p, c = self._parts(1, target.scenario)
        if target.scenario == "Offline":
            b = sm.run_offline_batch(s, c)
            per = b / c.batch_seconds(b) * self.prof.chips_per_device
        else:
            b = sm.server_config(case, s, c).max_batch
            per = self._server_capacity(1, b)[0] * self.prof.chips_per_device
        return max(1, math.ceil(target.required_qps() / per))

    def _server_capacity(self, count: int, batch: int) -> tuple[float, str]:
        """Sustained Server QPS of one engine at ``batch``, and where it comes from: the
        calibrated Server utilisation of the batched capacity, at most the engine's Offline
        capacity (as ``sim.hw.published.predict_case`` caps a Server prediction)."""

        case, s, p, c = self._parts(count, "Server")
        _, so, _, co = self._parts(count, "Offline")
        bo = sm.run_offline_batch(so, co)
        per, capped = sm.server_within_offline(sm.server_capacity(case, s, p, c, batch) / s.servers,
                                               bo / co.batch_seconds(bo))
        if capped:
            return per, f"the Offline capacity of one {self.name}, where the Server calibration said more"
        return per, (f"{p.server_util:.0%} of the batched capacity, the calibrated Server utilisation of "
                     f"{self.prof.chip}")


class CostDevice(_Simulated):
    """A system description whose accelerator count is planned (any cost model)."""

    def __init__(self, name: str, system: SystemSpec, cost, mlperf_model: str = "resnet50", kind: str = "system",
                 price_usd: float | None = None, tdp_w: float | None = None, source: str = ""):
        self.name, self.kind, self.base, self.cost = name, kind, system, cost
        self.mlperf_model, self.price_usd, self.tdp_w = mlperf_model, price_usd, tdp_w
        self.source = source or getattr(cost, "describe", lambda: "")()

    def feasible(self, target: Target) -> None:
        return None

    def system(self, count: int, variant, target: Target):
        sys_ = replace(self.base, accelerators=count, name=f"{count} x {self.name}")
        if target.scenario == "MultiStream":     # a query's 8 samples spread over the devices
            sys_ = replace(sys_, batching=BatchingSpec("dynamic", math.ceil(MS_SAMPLES / sys_.servers), 0.0))
        extra = {}
        if target.scenario == "SingleStream":
            latency_ns = max(1, int(self.cost.service_time_ns(1, True, None)))
            extra["hints"] = {"single_stream_expected_latency_ns": latency_ns}
        if target.scenario == "MultiStream":
            per = sys_.batching.max_batch
            latency_ns = max(1, int(self.cost.service_time_ns(per, True, None)))
            extra["hints"] = {"multi_stream_expected_latency_ns": latency_ns}
        return sys_, self.cost, extra

    def estimate(self, target: Target) -> int:
        if target.scenario not in THROUGHPUT:
            return 1
        per = offline_capacity_qps(replace(self.base, accelerators=1), self.cost)
        return max(1, math.ceil(target.required_qps() / per))
