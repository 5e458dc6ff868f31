"""Published MLPerf Inference results from a local copy of an MLCommons results repository.

    python benchmarks/collect_published.py REPO [REPO ...] --out ROWS.csv [--heldout-of RESULTS.csv]

``REPO`` is a checkout (or a bare git directory) of ``mlcommons/inference_results_vX.Y``
(the round is read from its name, or give it as ``vX.Y=PATH``). Every closed-division
``results/<system>/<model>/<scenario>/performance/run_1/mlperf_log_summary.txt`` of
ResNet-50, SSD-MobileNet, SSD-ResNet34, RetinaNet and BERT-99 becomes one row in the
columns of the shared results file (``sim.hw.rows`` reads it): the metric the scenario
reports (Offline samples/s, Server scheduled samples/s, SingleStream p90, MultiStream
samples per query up to v1.1 and p99 from v2.0), the test parameters, and the system's
description from ``systems/<system>.json``. A summary whose scenario line says
SingleStream in an Offline or MultiStream folder (an edge submitter's stand-in) is marked
``inferred=yes``; a result with a ``power`` folder or ``MaxQ`` in its system name is
``power_measured=yes``.

``--heldout-of RESULTS.csv`` keeps only what can judge a calibration fitted on that file:
rows it does not hold (same round, submitter, system, model and scenario), VALID, not
inferred, not power-measured. Such rows feed ``benchmarks/hw_accuracy.py --heldout``.
Nothing is downloaded: the repositories are the user's copies.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sim.errors import InputError  # noqa: E402
from sim.hw import names  # noqa: E402
from sim.util import atomic  # noqa: E402

COLUMNS = ("version,division,submitter,system,accelerator,accelerator_kind,accelerators_per_node,host_cpu,"
           "framework,model,scenario,metric,value,units,source_path,result_validity,min_query_count,"
           "target_latency_ns,target_qps,samples_per_query,min_duration_ms,early_stopping_estimate_ns,"
           "completed_samples_per_sec,run_scenario,inferred,power_measured,system_type,system_status,"
           "number_of_nodes,host_processors_per_node,host_processor_core_count,file_path").split(",")
MODELS = {"resnet50": "resnet50", "resnet": "resnet50", "bert-99": "bert-99", "retinanet": "retinanet",
          "ssd-resnet34": "ssd-resnet34", "ssd-large": "ssd-resnet34", "ssd-mobilenet": "ssd-mobilenet",
          "ssd-small": "ssd-mobilenet"}
SCENARIOS = {"singlestream": "SingleStream", "multistream": "MultiStream", "server": "Server", "offline": "Offline"}
SUMMARY = re.compile(r"^closed/([^/]+)/results/([^/]+)/([^/]+)/([^/]+)/performance/run_1/mlperf_log_summary\.txt$")
OLD_MULTISTREAM = ("v0.5", "v0.7", "v1.0", "v1.1")
NO_ACCELERATOR = {"", "n/a", "na", "-", "none", "null", "0", "cpu"}


class Repo:
    """Files of a checkout or a bare git directory."""

    def __init__(self, path: Path):
        self.path = path
        self.bare = not (path / "closed").is_dir()
        if self.bare:
            try:
                out = subprocess.run(["git", "--git-dir", str(path), "ls-tree", "-r", "--name-only", "-z", "HEAD"],
                                     check=True, capture_output=True).stdout
            except (OSError, subprocess.CalledProcessError) as exc:
                raise InputError(f"{path}: neither a checkout with a closed/ folder nor a git directory ({exc})")
            self.files = [f for f in out.decode("utf-8", "surrogateescape").split("\0") if f]
        else:
            self.files = [p.relative_to(path).as_posix() for p in (path / "closed").rglob("*") if p.is_file()]
        self.fileset = set(self.files)

    def read(self, rel: str) -> str | None:
        if rel not in self.fileset:
            return None
        if not self.bare:
            return (self.path / rel).read_text(encoding="utf-8", errors="replace")
        out = subprocess.run(["git", "--git-dir", str(self.path), "show", f"HEAD:{rel}"], capture_output=True)
        return out.stdout.decode("utf-8", "replace") if out.returncode == 0 else None


def parse_summary(text: str) -> dict:
    """``mlperf_log_summary.txt`` as {"top"|"stats"|"params": {key: value}} (first value wins)."""
    out, section = {"top": {}, "stats": {}, "params": {}}, "top"
    heads = {"MLPerf Results Summary": "top", "Additional Stats": "stats", "Test Parameters Used": "params"}
    for raw in text.splitlines():
        line = raw.strip().lstrip("*").strip()
        if line in heads:
            section = heads[line]
        elif ":" in line and not line.startswith("="):
            key, value = line.split(":", 1)
            out[section].setdefault(re.sub(r"\s+", " ", key.strip()), value.strip())
    return out


def _first(d: dict, *keys: str) -> str:
    return next((d[k] for k in keys if d.get(k)), "")


def metric_of(scenario: str, version: str, s: dict) -> tuple[str, str, str]:
    """(metric, value, units) the scenario reports in that round."""
    top, stats = s["top"], s["stats"]
    if scenario == "Offline":
        return "Samples per second", _first(top, "Samples per second"), "samples/s"
    if scenario == "Server":      # from v4.1 the scheduled rate moved to Additional Stats
        return ("Scheduled samples per second",
                _first(top, "Scheduled samples per second") or _first(stats, "Scheduled samples per second"), "samples/s")
    if scenario == "SingleStream":
        return "90th percentile latency (ns)", _first(top, "90th percentile latency (ns)"), "ns"
    if version in OLD_MULTISTREAM:
        return "Samples per query", _first(top, "Samples per query"), "samples/query (streams)"
    return "99th percentile latency (ns)", _first(top, "99th percentile latency (ns)"), "ns"


def _int_text(v) -> str:
    s = str(v if v is not None else "").strip()
    return str(int(float(s))) if re.fullmatch(r"[+-]?\d+(\.0+)?", s) else s


def device_of(system: dict) -> tuple[str, str, str]:
    """(accelerator, kind, accelerators per node) of a system description; the kind is the one
    under which ``sim.hw.names`` knows the name (empty when no profile covers it)."""
    acc = str(system.get("accelerator_model_name") or "").strip()
    per_node = _int_text(system.get("accelerators_per_node"))
    if acc.lower() in NO_ACCELERATOR or per_node in ("0", ""):
        return str(system.get("host_processor_model_name") or "").strip(), "cpu", "0"
    for kind in ("gpu", "asic", "fpga", "dsp", "cpu"):
        if names.normalise(acc, kind) is not None:
            return acc, kind, per_node
    return acc, "", per_node


def collect(repo: Repo, version: str, repo_name: str = "") -> list[dict]:
    rows = []
    # a result's power logs: <result>/power/ or <result>/performance/power/
    power_dirs = {re.sub(r"/performance$", "", f.rsplit("/power/", 1)[0]) for f in repo.files if "/power/" in f}
    for rel in repo.files:
        m = SUMMARY.match(rel)
        if not m or m.group(3) not in MODELS or m.group(4).lower() not in SCENARIOS:
            continue
        submitter, system_name, model_dir, scenario_dir = m.groups()
        text = repo.read(rel)
        if text is None:
            continue
        s = parse_summary(text)
        scenario = SCENARIOS[scenario_dir.lower()]
        ran = SCENARIOS.get(_first(s["top"], "Scenario").replace(" ", "").lower(), scenario)
        metric, value, units = metric_of(ran, version, s)
        raw = repo.read(f"closed/{submitter}/systems/{system_name}.json")
        try:
            system = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            system = {}
        acc, kind, per_node = device_of(system if isinstance(system, dict) else {})
        result_dir = rel.rsplit("/performance/", 1)[0]
        early = ""
        if version not in OLD_MULTISTREAM and ran in ("SingleStream", "MultiStream"):
            early = _first(s["top"], f"Early stopping {'90th' if ran == 'SingleStream' else '99th'} percentile estimate")
        p = s["params"]
        rows.append({
            "version": version, "division": "closed", "submitter": submitter, "system": system_name,
            "accelerator": acc, "accelerator_kind": kind, "accelerators_per_node": per_node,
            "host_cpu": str(system.get("host_processor_model_name") or ""), "framework": str(system.get("framework") or ""),
            "model": MODELS[model_dir], "scenario": scenario, "metric": metric, "value": value, "units": units,
            "source_path": f"{repo_name}:{rel}" if repo_name else rel, "result_validity": _first(s["top"], "Result is"),
            "min_query_count": _first(p, "min_query_count"), "target_latency_ns": _first(p, "target_latency (ns)"),
            "target_qps": _first(p, "target_qps"), "samples_per_query": _first(p, "samples_per_query"),
            "min_duration_ms": _first(p, "min_duration (ms)"), "early_stopping_estimate_ns": early,
            "completed_samples_per_sec": (_first(s["stats"], "Completed samples per second")
                                          or _first(s["top"], "Completed samples per second")) if ran == "Server" else "",
            "run_scenario": ran, "inferred": "no" if ran == scenario else "yes",
            "power_measured": "yes" if "maxq" in system_name.lower() or result_dir in power_dirs else "no",
            "system_type": str(system.get("system_type") or ""), "system_status": str(system.get("status") or "").lower(),
            "number_of_nodes": _int_text(system.get("number_of_nodes")),
            "host_processors_per_node": _int_text(system.get("host_processors_per_node")),
            "host_processor_core_count": _int_text(system.get("host_processor_core_count")),
            "file_path": rel})
    return rows


def _key(r: dict) -> tuple:
    return tuple((r.get(k) or "").strip().lower() for k in ("version", "submitter", "system", "model", "scenario"))


def heldout(rows: list[dict], results: str) -> list[dict]:
    """Rows that can judge a calibration fitted on ``results`` (see the module docstring)."""
    with open(results, newline="", encoding="utf-8") as fh:
        known = {_key(r) for r in csv.DictReader(fh)}
    return [r for r in rows if _key(r) not in known and r["result_validity"] == "VALID" and r["inferred"] == "no"
            and r["power_measured"] == "no"]


def _version_of(spec: str) -> tuple[str, Path]:
    if "=" in spec:
        v, path = spec.split("=", 1)
        return v, Path(path)
    m = re.search(r"inference_results_(v\d+\.\d+)", Path(spec).resolve().as_posix())
    if not m:
        raise InputError(f"{spec}: cannot tell the round from the path; give it as vX.Y={spec}")
    return m.group(1), Path(spec)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("repos", nargs="+", help="checkouts or git directories of inference_results_vX.Y (or vX.Y=PATH)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--heldout-of", default=None, metavar="RESULTS.csv")
    args = ap.parse_args(argv)
    try:
        rows = []
        for spec in args.repos:
            version, path = _version_of(spec)
            rows += collect(Repo(path), version, f"mlcommons/inference_results_{version}")
        if args.heldout_of:
            rows = heldout(rows, args.heldout_of)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    atomic.write_text(args.out, buf.getvalue())
    kinds = {}
    for r in rows:
        kinds[r["accelerator_kind"] or "no profile"] = kinds.get(r["accelerator_kind"] or "no profile", 0) + 1
    print(f"wrote {len(rows)} rows to {args.out} ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
