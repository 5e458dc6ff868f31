"""How late LoadGen's Server issue callback runs, with and without a busy core, and why.

    python benchmarks/loadgen_issue_lag.py [--qps 10000] [--seconds 10] [--workload dlrm] [--batch 8]
        [--modes alone,thread,process,spin,spin-pinned] [--switch-interval-us US]

LoadGen Server runs (each in its own process: LoadGen reads its mlperf.conf once per
process) with a SUT that answers every query inside the issue callback, while:

- ``alone``: nothing else runs;
- ``thread``: a second Python thread of the LoadGen process runs the workload's
  onnxruntime session on batches of ``--batch`` samples back to back, as the validation
  harness's worker does under load (it shares the interpreter lock with the callback);
- ``process``: the same batches in a separate process (no shared interpreter lock);
- ``spin``: a separate process that only spins in a Python loop (one busy core, no model);
- ``spin-pinned``: that process pinned to the second core and LoadGen to the first.

The issue lag of a query is the time its callback ran minus its time in LoadGen's schedule
(``sim.loadgen.traffic``, the same seeds), less the median lag. Prints, per run, the p50/p99/max
lag and how often a stall (lag over 0.5 ms) starts. If ``process`` and ``spin`` stall as
often as ``thread``, the stalls come from a busy core, not from the interpreter lock.
The validation report quotes these figures for dlrm (docs/validation.md).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STALL_NS = 500_000


def _settings(qps: float, seconds: float):
    from sim.loadgen.settings import load_settings
    return load_settings("resnet50", "Server", overrides={
        "server_target_qps": qps, "min_duration_ns": int(seconds * 1e9), "min_query_count": 100,
        "server_target_latency_ns": 10 ** 9}, total_sample_count=1024)


def _child(args: dict) -> None:
    import mlperf_loadgen as lg

    if args.get("switch_interval_us"):
        sys.setswitchinterval(args["switch_interval_us"] / 1e6)
    stop = threading.Event()
    if args["mode"] == "thread":
        from sim.validate.config import HarnessConfig
        from sim.validate.sut import make_executors
        cfg = HarnessConfig.from_dict({"workload": args["workload"], "instances": 1, "intra_op_threads": 1,
                                       "policy": "fixed", "max_batch": args["batch"]})
        ex = make_executors(cfg, seed=0)[0]
        ex.warm_up()
        idx = np.arange(args["batch"])

        def worker():
            while not stop.is_set():
                ex.run(idx)
        threading.Thread(target=worker, daemon=True).start()
        time.sleep(1.0)
    st = _settings(args["qps"], args["seconds"])
    callbacks: list[int] = []

    def issue(samples):
        callbacks.append(time.perf_counter_ns())
        lg.QuerySamplesComplete([lg.QuerySampleResponse(s.id, 0, 0) for s in samples])

    s = lg.TestSettings()
    s.scenario = lg.TestScenario.Server
    s.mode = lg.TestMode.PerformanceOnly
    s.server_target_qps = args["qps"]
    s.min_duration_ms = int(args["seconds"] * 1000)
    s.min_query_count = 100
    s.server_target_latency_ns = 10 ** 9
    s.schedule_rng_seed, s.qsl_rng_seed = st.schedule_rng_seed, st.qsl_rng_seed
    s.sample_index_rng_seed = st.sample_index_rng_seed
    os.chdir(args["outdir"])
    sut = lg.ConstructSUT(issue, lambda: None)
    qsl = lg.ConstructQSL(1024, 1024, lambda i: None, lambda i: None)
    log = lg.LogSettings()
    log.log_output.outdir = args["outdir"]
    lg.StartTestWithLogSettings(sut, qsl, s, log, "")
    stop.set()
    lg.DestroyQSL(qsl)
    lg.DestroySUT(sut)
    np.save(Path(args["outdir"]) / "callbacks.npy", np.array(callbacks, dtype=np.int64))


_BUSY_CODE = {
    "process": ("import sys, time\nsys.path.insert(0, {root!r})\nimport numpy as np\n"
                "from sim.validate.config import HarnessConfig\nfrom sim.validate.sut import make_executors\n"
                "cfg = HarnessConfig.from_dict({{'workload': {workload!r}, 'instances': 1, 'intra_op_threads': 1, "
                "'policy': 'fixed', 'max_batch': {batch}}})\n"
                "ex = make_executors(cfg, seed=0)[0]\nex.warm_up()\nidx = np.arange({batch})\n"
                "end = time.time() + {seconds}\nwhile time.time() < end:\n    ex.run(idx)\n"),
    "spin": "import time\nend = time.time() + {seconds}\nwhile time.time() < end:\n    pass\n",
}


def _pinned(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)]


def run_mode(mode: str, a, scheduled) -> dict:
    """One LoadGen run with ``mode``'s other load; its issue-lag statistics."""
    with tempfile.TemporaryDirectory() as tmp:
        spec = {"mode": mode, "qps": a.qps, "seconds": a.seconds, "workload": a.workload, "batch": a.batch,
                "outdir": tmp, "switch_interval_us": a.switch_interval_us}
        pin = mode == "spin-pinned" and shutil.which("taskset") and (os.cpu_count() or 1) >= 2
        other = None
        kind = {"process": "process", "spin": "spin", "spin-pinned": "spin"}.get(mode)
        if kind:
            code = _BUSY_CODE[kind].format(root=str(ROOT), workload=a.workload, batch=a.batch,
                                           seconds=a.seconds + 30.0)
            other = subprocess.Popen((_pinned(1) if pin else []) + [sys.executable, "-c", code])
            time.sleep(3.0 if kind == "process" else 0.5)       # the model is built and warm
        try:
            subprocess.run((_pinned(0) if pin else []) + [sys.executable, __file__, "--child", json.dumps(spec)],
                           check=True)
        finally:
            if other is not None:
                other.kill()
                other.wait()
        return lag_stats(np.load(Path(tmp) / "callbacks.npy"), scheduled)


WHAT = {"alone": "alone",
        "thread": "{w} batch {b} back to back in a second thread of the LoadGen process",
        "process": "{w} batch {b} back to back in another process",
        "spin": "another process spinning in a Python loop",
        "spin-pinned": "another process spinning, pinned to core 1, LoadGen pinned to core 0"}


def lag_stats(callbacks_ns: np.ndarray, scheduled_ns: np.ndarray) -> dict:
    n = min(callbacks_ns.size, scheduled_ns.size)
    lag = ((callbacks_ns[:n] - callbacks_ns[0]) - (scheduled_ns[:n] - scheduled_ns[0])).astype(float)
    lag -= np.median(lag)
    seconds = (callbacks_ns[n - 1] - callbacks_ns[0]) / 1e9
    starts = int(np.count_nonzero(np.diff((lag > STALL_NS).astype(np.int8)) == 1))
    return {"queries": n, "p50_us": float(np.percentile(lag, 50) / 1e3), "p99_us": float(np.percentile(lag, 99) / 1e3),
            "max_ms": float(lag.max() / 1e6), "stalls_per_s": starts / seconds if seconds > 0 else 0.0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--qps", type=float, default=10_000.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--workload", default="dlrm")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--modes", default="alone,thread,process,spin,spin-pinned",
                    help="comma-separated: " + ", ".join(WHAT))
    ap.add_argument("--switch-interval-us", type=float, default=0.0,
                    help="the child's sys.setswitchinterval (default: Python's 5,000 us)")
    a = ap.parse_args(argv)
    if importlib.util.find_spec("mlperf_loadgen") is None:
        print("needs the LoadGen extra: pip install -e '.[loadgen]'", file=sys.stderr)
        return 2
    from sim.loadgen.traffic import generate
    scheduled = generate(_settings(a.qps, a.seconds)).scheduled_ns
    print(f"LoadGen Server at {a.qps:,.0f} QPS for {a.seconds:g} s, SUT answering inside the issue callback")
    modes = [m.strip() for m in a.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in WHAT]
    if bad:
        print(f"--modes: unknown {bad}; expected some of {sorted(WHAT)}", file=sys.stderr)
        return 2
    for mode in modes:
        r = run_mode(mode, a, scheduled)
        what = WHAT[mode].format(w=a.workload, b=a.batch)
        print(f"  {what}: {r['queries']} queries, issue lag p50 {r['p50_us']:.0f} us, p99 {r['p99_us']:.0f} us, "
              f"max {r['max_ms']:.2f} ms, stalls > 0.5 ms: {r['stalls_per_s']:.1f}/s")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        _child(json.loads(sys.argv[2]))
    else:
        raise SystemExit(main())
