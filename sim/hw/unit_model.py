"""The analytical model evaluated in closed form for every case of one calibration unit at
once (``UnitModel``): what the fit (``sim.hw.calibrate.fit_unit``) compares with the
published values at each step.

The closed form of ``sim.hw.system_model.closed_form`` (one case at a time there): exact for
the scenarios without queueing (Offline, SingleStream, MultiStream), and the sustainable
capacity for Server.
"""

from __future__ import annotations

import numpy as np

from sim.hw import analytic
from sim.hw import system_model as sm
from sim.hw.rows import Case
from sim.hw.system_model import Params


class UnitModel:
    """Closed-form predictions for a list of cases of one unit, vectorised per network.

    Every case needs the batch time of one (device, precision, batch, mode) point; points
    of one network are evaluated together (``analytic.batch_times_many``). A v0.5-v1.0
    MultiStream case (largest batch within a latency bound) evaluates its device at the
    powers of two and interpolates linearly between them.
    """

    STREAM_BATCHES = np.array([2 ** k for k in range(0, 17)], dtype=float)

    def __init__(self, cases: list[Case]):
        self.cases = cases
        self.setups = [sm.setup(c) for c in cases]
        self.kind = self.setups[0].profile.kind if cases else "gpu"
        self.age = np.array([s.age_years for s in self.setups])
        self.headroom = np.array([s.headroom for s in self.setups])
        self.capped = np.array([c.power_capped for c in cases])
        self.servers = np.array([s.servers for s in self.setups], dtype=float)
        self.physical = np.array([s.physical for s in self.setups], dtype=float)
        self.offline = np.array([c.target == "offline" for c in cases])
        # cases evaluated over a block of powers of two (their batch depends on the parameters)
        self.streams = np.array([c.target in ("ms_streams", "server") or (c.target == "offline" and not s.batch_given)
                                 for c, s in zip(cases, self.setups)])
        self.offline_cap = np.array([s.offline_batch for s in self.setups], dtype=float)
        self.server = np.array([c.target == "server" for c in cases])
        self.triton = np.array([c.triton for c in cases])
        # MultiStream rows served through Triton (sm.triton_ms_s)
        self.triton_ms = np.array([c.triton and c.target in sm.MS_TARGETS for c in cases])
        self.bound = np.array([(c.latency_bound_ns or 0.0) * 1e-9 for c in cases])
        # points: one per non-stream case, len(STREAM_BATCHES) per stream case
        self.groups: dict[str, dict] = {}
        self.stream_points: dict[int, np.ndarray] = {}
        for i, (c, s) in enumerate(zip(cases, self.setups)):
            g = self.groups.setdefault(c.workload, {"w": s.workload, "rows": [], "seen": {}})
            d = s.device
            point = (d.peak_ops[c.precision], d.bandwidth_bps, d.onchip_bytes, d.units, analytic.BYTES[c.precision])
            mode = (c.target in sm.LATENCY_TARGETS, d.link_bps or 0.0, c.target in ("offline", "server"))
            if self.streams[i]:
                block = ("block",) + point + mode
                if block not in g["seen"]:      # one block of powers of two per device and mode
                    g["seen"][block] = len(g["rows"])
                    g["rows"].extend(point + (b,) + mode for b in self.STREAM_BATCHES)
                first = g["seen"][block]
            else:
                row = point + (sm.batch_of(c, s),) + mode
                if row not in g["seen"]:        # identical points are evaluated once
                    g["seen"][row] = len(g["rows"])
                    g["rows"].append(row)
                first = g["seen"][row]
            idx = (c.workload, first)
            if self.streams[i]:
                self.stream_points[i] = idx
            else:
                self.stream_points.setdefault(-1 - i, idx)
        for g in self.groups.values():
            a = np.array(g["rows"], dtype=float)
            g["cols"] = {k: a[:, j] for j, k in enumerate(("peak", "bw", "onchip", "units", "nbytes", "batch",
                                                             "latency", "link", "overlap"))}

    def _index(self):
        """Flat positions of every case's point in the concatenated per-network times."""
        offset, base = 0, {}
        for wname, g in self.groups.items():
            base[wname] = offset
            offset += len(g["rows"])
        flat = np.zeros(len(self.cases), dtype=np.int64)
        for i in range(len(self.cases)):
            wname, first = self.stream_points[i] if self.streams[i] else self.stream_points[-1 - i]
            flat[i] = base[wname] + first
        self._flat = flat
        self._batch = np.array([sm.batch_of(c, s) if not self.streams[i] else 1
                                for i, (c, s) in enumerate(zip(self.cases, self.setups))], dtype=float)
        self._server_idx = np.nonzero(self.server)[0]
        self._offline_idx = np.nonzero(self.streams & self.offline)[0]
        self._ms_idx = np.nonzero(self.streams & ~self.server & ~self.offline)[0]

    def predict(self, p: Params) -> np.ndarray:
        if not hasattr(self, "_flat"):
            self._index()
        parts = []
        for wname, g in self.groups.items():
            c = g["cols"]
            t = analytic.batch_times_many(g["w"], self.kind, p.eff, c["peak"], c["bw"], c["onchip"], c["units"],
                                          c["nbytes"], c["batch"], c["latency"].astype(bool),
                                          net=p.net.get(wname, 1.0), batch_us=p.net_batch_us.get(wname))
            link = analytic.link_times_many(g["w"], c["link"], c["nbytes"], c["batch"])
            parts.append(np.where(c["overlap"].astype(bool), np.maximum(t, link), t + link))
        times = np.concatenate(parts)
        scale = np.exp(-p.trend * self.age) / np.where(self.capped, p.maxq, 1.0) / self.headroom ** p.power
        keep = np.where(self.physical > 1, self.physical ** (-p.multi), 1.0)
        t = times[self._flat] * scale
        extra = np.where(self.triton_ms, p.triton_ms_us * 1e-6, 0.0)
        out = np.where(self.offline, self.servers * self._batch / t * keep, (t + extra) * 1e9)
        n = len(self.STREAM_BATCHES)
        off = self._offline_idx
        if len(off):
            # the Offline batch of the best throughput up to the memory cap (system_model.best_batch)
            ts = times[self._flat[off][:, None] + np.arange(n)[None, :]] * scale[off][:, None]
            allowed = self.STREAM_BATCHES[None, :] <= self.offline_cap[off][:, None]
            best = self._chosen(ts, allowed)
            rate = self.STREAM_BATCHES[best] / ts[np.arange(len(off)), best]
            out[off] = self.servers[off] * rate * keep[off]
        srv = self._server_idx
        if len(srv):
            # the simulator's sustainable capacity at its Server batch (system_model.server_batch):
            # the best throughput among the powers of two up to MAX_BATCH whose time is within
            # SERVER_BATCH_SHARE of the bound (batch 1 always counts)
            ts = times[self._flat[srv][:, None] + np.arange(n)[None, :]] * (scale[srv] / keep[srv])[:, None]
            kmax = int(np.log2(sm.MAX_BATCH[self.kind]))
            ts = ts[:, :kmax + 1]
            fits = ts <= (self.bound[srv] * sm.SERVER_BATCH_SHARE)[:, None]
            fits[:, 0] = True
            # batches past the first one over the limit do not count (server_batch stops there)
            fits &= np.cumprod(fits, axis=1).astype(bool)
            best = self._chosen(ts, fits)
            util = p.server_util * np.where(self.triton[srv], p.triton_util, 1.0)
            out[srv] = util * self.servers[srv] * self.STREAM_BATCHES[best] / ts[np.arange(len(srv)), best]
        for i in self._ms_idx:
            ts = times[self._flat[i]:self._flat[i] + n] * scale[i]
            within = _largest_batch_within(ts + extra[i], self.STREAM_BATCHES, self.bound[i])
            out[i] = max(0.5, within * self.servers[i])
        return out

    def _chosen(self, ts: np.ndarray, allowed: np.ndarray) -> np.ndarray:
        """Per row of batch times at the powers of two, the index of the batch run
        (system_model.best_batch): of the ``allowed`` ones (a prefix), the highest throughput
        on ``TUNED_BATCH_KINDS`` (the larger on a tie), else the largest."""
        if self.kind not in sm.TUNED_BATCH_KINDS:
            return allowed.sum(axis=1) - 1
        rate = np.where(allowed, self.STREAM_BATCHES[None, :ts.shape[1]] / ts, 0.0)
        return ts.shape[1] - 1 - np.argmax(rate[:, ::-1], axis=1)


def _largest_batch_within(t: np.ndarray, batches: np.ndarray, bound: float) -> float:
    """Largest batch with time within ``bound``, from times at powers of two (linear in between)."""
    ok = np.nonzero(t <= bound)[0]
    if len(ok) == 0:
        return 0.0
    k = ok[-1]
    if k + 1 >= len(t):
        return float(batches[k])
    b0, b1, t0, t1 = batches[k], batches[k + 1], t[k], t[k + 1]
    return float(np.floor(b0 + (bound - t0) / max(t1 - t0, 1e-30) * (b1 - b0)))
