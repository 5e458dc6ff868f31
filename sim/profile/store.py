"""The profile cache: one JSON file per model and machine, so a model is measured once per machine.

``load_or_measure`` returns the cached profile of a workload, measuring (``sim.profile.measure``)
the batch sizes it lacks; ``load_profile`` reads one file, checking its schema
(``sim.profile.schema``); ``summarise`` is a readable text report of a profile.

The file lives at ``<cache>/profiles/<workload>-<sha256[:12]>-<fingerprint hash>.json``
and is written atomically: its name holds the model's content hash and the hash of the
machine and thread settings (``sim.util.fingerprint``), so a changed model, another
machine or another thread count gets a file of its own.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from sim.errors import InputError
from sim.profile.measure import EXECUTION_MODE, OPT_LEVEL, check_batches, check_threads, measure
from sim.profile.schema import SCHEMA
from sim.util import atomic
from sim.util.fingerprint import fingerprint, fingerprint_hash
from sim.workload import catalog as workloads
from sim.workload.catalog import Workload

NOISY_SPREAD = 1.25     # summarise() flags a batch size whose busy p90/p10 exceeds this


def profile_path(workload: Workload, threads: int | None = None, cache_dir: str | os.PathLike | None = None) -> Path:
    """``<cache>/profiles/<workload>-<sha256[:12]>-<fingerprint hash>.json`` for this machine."""
    threads = check_threads(threads, f"workload {workload.name}")
    fp = fingerprint(intra_op_threads=threads, inter_op_threads=0, execution_mode=EXECUTION_MODE,
                     graph_optimization_level=OPT_LEVEL)
    base = Path(cache_dir) if cache_dir is not None else workloads.cache_dir()
    return base / "profiles" / f"{workload.name}-{workload.sha256[:12]}-{fingerprint_hash(fp)}.json"


def _ensure_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InputError(f"{folder}: profile cache folder is not writable ({exc.strerror or exc}); expected a "
                         f"writable folder (pass cache_dir / --cache-dir or set SIM_CACHE_DIR)") from None


def load_profile(path: str | os.PathLike) -> dict:
    """Read a profile JSON file, checking its schema."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; expected a CPU profile JSON file") from None
    except (OSError, ValueError, RecursionError) as exc:   # a file cut short, not UTF-8, nested too deeply
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise InputError(f"{path}: not readable as JSON ({reason}); expected a CPU profile JSON file") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        got = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise InputError(f"{path}: field 'schema' = {got!r}: expected {SCHEMA!r}")
    return data


def load_or_measure(workload: Workload, batch_sizes: int | Iterable[int] = (1,), threads: int | None = None,
                    cache_dir: str | os.PathLike | None = None, remeasure: bool = False,
                    **measure_options) -> dict:
    """The cached profile for this workload and machine, measuring batch sizes it lacks.

    ``remeasure=True`` measures every requested batch size again (other cached batch
    sizes are kept). ``measure_options`` go to ``measure`` (warmup_runs, repeat_runs, ...).
    """
    source = f"workload {workload.name}"
    batches = check_batches(batch_sizes, source)
    threads = check_threads(threads, source)
    path = profile_path(workload, threads, cache_dir)
    _ensure_writable(path.parent)
    cached = None
    if path.exists():
        try:
            cached = load_profile(path)
        except InputError:
            cached = None   # a damaged cache entry is measured again and replaced
        if cached is not None and (cached.get("workload", {}).get("sha256") != workload.sha256
                                   or not isinstance(cached.get("batches"), dict)):
            cached = None
    have = set(cached["batches"]) if cached is not None else set()
    missing = batches if remeasure else [b for b in batches if str(b) not in have]
    if not missing:
        return cached
    fresh = measure(workload, missing, intra_op_threads=threads, **measure_options)
    if cached is not None:
        merged = dict(cached)
        merged["batches"] = {**cached["batches"], **fresh["batches"]}
        for key in ("fingerprint", "fingerprint_hash", "graph", "workload", "schema", "doc"):
            merged[key] = fresh[key]
        merged["updated_utc"] = fresh["updated_utc"]
        fresh = merged
    fresh["batches"] = dict(sorted(fresh["batches"].items(), key=lambda kv: int(kv[0])))
    atomic.write_json(path, fresh)
    return fresh


def _ms(ns: float) -> str:
    return f"{ns / 1e6:.3f}"


def summarise(profile: dict, top_kernels: int = 12) -> str:
    """A readable text report: machine, graph fusions, end-to-end table, top kernels."""
    w, fp, g = profile["workload"], profile["fingerprint"], profile["graph"]
    threads = fp["intra_op_threads"] or "default"
    lines = [
        f"CPU profile of {w['name']} (model sha256 {w['sha256'][:12]}), schema {profile['schema']}",
        f"machine: {fp['cpu_model']}, {fp['logical_cores']} logical / {fp['physical_cores']} physical cores "
        f"({fp['usable_cores']} usable); onnxruntime {fp['onnxruntime']}, {fp['graph_optimization_level']}, "
        f"{fp['execution_mode']}, intra-op threads {threads}; fingerprint {profile['fingerprint_hash']}",
    ]
    kinds = Counter(k["kind"] for k in g["kernels"].values())
    ops = ", ".join(f"{op} x{n}" for op, n in sorted(g["optimized_op_types"].items(), key=lambda kv: -kv[1]))
    lines.append(f"graph: {g['original_nodes']} original nodes -> {g['optimized_nodes']} kernels "
                 f"({kinds.get('fused', 0)} fused, {kinds.get('single', 0)} single, "
                 f"{kinds.get('inserted', 0)} inserted): {ops}")
    unc = g["uncovered"]
    lines.append("uncovered original nodes: " + (", ".join(f"{k} {len(v)}" for k, v in unc.items() if v) or "none"))
    lines.append("")
    header = (f"{'batch':>5} {'busy ms':>9} {'p10-p90':>17} {'idle ms':>9} {'prof run ms':>11} {'kernels ms':>10} "
              f"{'gap ms':>8} {'gap %':>6} {'clean gap %':>11} {'prof ovh %':>10} {'runs':>5}")
    lines += ["end to end (busy/idle: no profiler; prof run: profiler's model_run; gap: model_run - kernel sum)",
              header, "-" * len(header)]
    for key, e in profile["batches"].items():
        ee = e["end_to_end"]
        busy = ee["clean_busy_ns"]
        lines.append(
            f"{key:>5} {_ms(busy['median']):>9} {_ms(busy['p10']) + '-' + _ms(busy['p90']):>17} "
            f"{_ms(ee['clean_idle_ns']['median']):>9} {_ms(ee['profiled_model_run_ns']['median']):>11} "
            f"{_ms(e['kernel_sum_ns']['median']):>10} {_ms(e['gap']['model_run_minus_kernel_sum_ns']['median']):>8} "
            f"{e['gap']['model_run_minus_kernel_sum_pct']:>6.1f} {e['gap']['clean_minus_kernel_sum_pct']:>11.1f} "
            f"{e['profiler_overhead']['pct']:>10.1f} {busy['n']:>5}")
    noisy = []
    for key, e in profile["batches"].items():
        busy = e["end_to_end"]["clean_busy_ns"]
        if busy["p10"] > 0 and busy["p90"] / busy["p10"] > NOISY_SPREAD:
            noisy.append(f"{key} (p90/p10 {busy['p90'] / busy['p10']:.2f}, load {e.get('load_average_1min')})")
    if noisy:
        lines.append(f"note: wide spread at batch {', '.join(noisy)}; other work on the machine? "
                     f"consider --remeasure on a quiet machine")
    if profile["batches"] and top_kernels:
        key = next(iter(profile["batches"]))
        ks = sorted(profile["batches"][key]["kernels"], key=lambda k: -k["dur_ns"]["median"])[:top_kernels]
        lines += ["", f"top kernels at batch {key} (median us per run, p10-p90, share of kernel sum)"]
        for k in ks:
            d = k["dur_ns"]
            covers = ",".join(k["covers"]) if len(k["covers"]) <= 4 else \
                ",".join(k["covers"][:3]) + f",...(+{len(k['covers']) - 3})"
            lines.append(f"  {k['name'][:34]:<34} {k['op_type'][:18]:<18} {d['median'] / 1e3:>9.1f} "
                         f"{d['p10'] / 1e3:>8.1f}-{d['p90'] / 1e3:<8.1f} {k['share_pct']:>5.1f}%  "
                         f"[{covers or 'inserted'}]")
    return "\n".join(lines)
