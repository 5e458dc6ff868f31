"""A published LLM result row, read as a prediction task (never its results).

The shared file of published LLM and generative results (``mlperf_llm_results/results.csv``)
has one row per (system, benchmark, scenario). ``read_task(row)`` turns a row into an
``LLMTask``: the LLM workload config to simulate (``workloads/llm/<name>.yaml``), the scenario,
the device profile and how many devices (per node, nodes, and the devices that share one
scale-up link domain), the weights' precision, the serving software, the round, the test's
latency limits, and which official metric a prediction must produce and in what units.

It reads only the columns in ``INPUT_COLUMNS``, the description of the system and of the test.
The results, the latency statistics, the accuracy line and the submitter's own settings that
follow from the result (``target_qps``, ``min_query_count``, ``max_query_count``,
``samples_per_query``) are never looked at: ``read_task`` copies the allowed columns first and
works on that copy only. The measured value a prediction is compared with is read by a
separate function, ``measured_value``, for scoring only.

A row the simulator cannot model gets ``unsupported`` set to the reason, never a guess:
diffusion, speech and multimodal benchmarks; CPU-only systems; systems that mix two kinds of
accelerator; an accelerator no profile covers; multi-node systems whose model does not fit in
one scale-up domain (each node of a multi-node system is otherwise a data-parallel replica);
a count that is not a whole number of devices.

Rules, each in one place here:

- ``BENCHMARKS``: the benchmark name -> LLM workload config and quality target (99 / 99.9% of
  the reference accuracy), and the scenarios MLPerf defines for it; ``canonical`` folds v5.0's
  ``<name>-interactive`` benchmarks into the Interactive scenario.
- ``official_metric``: the metric MLPerf scores for a round, benchmark and scenario (README of
  the shared file, caveat 4): tokens/s for LLM Offline, completed tokens/s for Server and
  Interactive, the same inferred from samples for GPT-J from v4.1, samples/s before (and for
  llama2-70b Server in v4.0), samples/s for the image and video benchmarks, the 90th
  percentile latency for SingleStream.
- ``precision_of``: the weights' precision from ``weight_data_types``; empty -> the model's own
  checkpoint precision (the workload config's ``model.precision``), said in the reason.
- ``stack_of``: the serving software family from ``framework`` (and the system name).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field

from sim.errors import InputError
from sim.hw import names, profiles
from sim.hw.rows import ROUND_YEAR

#: The only columns a task is built from.
INPUT_COLUMNS = ("version", "division", "submitter", "system", "system_name", "benchmark", "scenario",
                 "accelerator", "accelerator_kind", "accelerators_per_node", "number_of_nodes",
                 "accelerator_interconnect", "host_cpu", "framework", "system_type", "system_status",
                 "weight_data_types", "power_measured", "ttft_latency_ns", "tpot_latency_ns", "target_latency_ns",
                 "min_duration_ms", "performance_sample_count")
REQUIRED_COLUMNS = ("version", "benchmark", "scenario", "accelerator", "accelerators_per_node")
#: Columns a task must never depend on (tests change them and check the task is the same).
FORBIDDEN_COLUMNS = ("target_qps", "min_query_count", "max_query_count", "samples_per_query", "accuracy_results",
                     "result_value", "result_metric", "official_metric_value", "official_table_result",
                     "samples_per_second", "tokens_per_second", "tokens_per_second_inferred",
                     "completed_samples_per_second", "completed_tokens_per_second",
                     "completed_tokens_per_second_inferred", "scheduled_samples_per_second",
                     "loadgen_header_metrics", "result_p90_latency_ns", "latency_p90_ns", "latency_p99_ns",
                     "ttft_p99_ns", "tpot_p99_ns", "early_stopping_p90_latency_ns", "result_validity")

ROUNDS = ("v3.1", "v4.0", "v4.1", "v5.0", "v5.1", "v6.0")
OFFLINE, SERVER, INTERACTIVE, SINGLESTREAM = "Offline", "Server", "Interactive", "SingleStream"
_DATACENTER = (OFFLINE, SERVER)
_WITH_INTERACTIVE = (OFFLINE, SERVER, INTERACTIVE)


@dataclass(frozen=True)
class Benchmark:
    workload: str                  # workloads/llm/<workload>.yaml
    quality: float                 # share of the reference accuracy the result must reach
    scenarios: tuple               # the scenarios MLPerf defines for it
    family: str                    # gptj, llama2, llama3.1, mixtral, deepseek (metric rules)


BENCHMARKS = {
    "gptj-99": Benchmark("gpt-j-6b", 0.99, (OFFLINE, SERVER, SINGLESTREAM), "gptj"),
    "gptj-99.9": Benchmark("gpt-j-6b", 0.999, (OFFLINE, SERVER, SINGLESTREAM), "gptj"),
    "llama2-70b-99": Benchmark("llama2-70b", 0.99, _WITH_INTERACTIVE, "llama2"),
    "llama2-70b-99.9": Benchmark("llama2-70b", 0.999, _WITH_INTERACTIVE, "llama2"),
    "llama3.1-8b": Benchmark("llama3.1-8b", 0.99, _WITH_INTERACTIVE, "llama3.1"),
    "llama3.1-8b-edge": Benchmark("llama3.1-8b", 0.99, (OFFLINE, SINGLESTREAM), "llama3.1"),
    "llama3.1-405b": Benchmark("llama3.1-405b", 0.99, _WITH_INTERACTIVE, "llama3.1"),
    "mixtral-8x7b": Benchmark("mixtral-8x7b", 0.99, _DATACENTER, "mixtral"),
    "deepseek-r1": Benchmark("deepseek-r1", 0.99, _WITH_INTERACTIVE, "deepseek"),
    "gpt-oss-120b": Benchmark("gpt-oss-120b", 0.99, _WITH_INTERACTIVE, "gpt-oss"),
}
#: v5.0 published the interactive tests as benchmarks of their own ("llama2-70b-interactive-99",
#: run as LoadGen Server with the tighter limits); from v5.1 they are the Interactive scenario.
_INTERACTIVE_NAME = re.compile(r"^(?P<base>.+?)-interactive(?P<quality>-99(?:\.9)?)?$")


def canonical(benchmark: str, scenario: str) -> tuple[str, str]:
    """(benchmark, scenario) with v5.0's interactive benchmark names folded into the
    Interactive scenario of the base benchmark; other names unchanged."""
    m = _INTERACTIVE_NAME.match(benchmark.strip())
    if m and scenario in (SERVER, INTERACTIVE):
        return m.group("base") + (m.group("quality") or ""), INTERACTIVE
    return benchmark, scenario
#: Benchmarks of the file that are not LLM serving, with the reason.
NOT_LLM = {
    "stable-diffusion-xl": "text-to-image diffusion (UNet denoising steps and a VAE), not token generation: "
                           "no diffusion cost model",
    "wan-2.2-t2v-a14b": "text-to-video diffusion, not token generation: no diffusion cost model",
    "whisper": "speech-to-text (audio encoder and decoder): no speech cost model",
    "qwen3-vl-235b-a22b": "multimodal LLM (a vision encoder and image tokens before decoding): the image path is "
                          "not modelled",
}
#: Published systems whose scale-up (NVLink) domain spans several nodes: the GPUs of the
#: whole rack share the NVLink switches (NVIDIA GB200 NVL72: 72 GPUs in 18 compute trays
#: of 4, one NVLink domain; nvidia.com/en-us/data-center/gb200-nvl72; GB300 NVL72 the same).
RACK_DOMAIN_DEVICES = {"gb200": 72, "gb300": 72}
#: Boards that carry several GPUs under one accelerator name: the count the row gives is of
#: boards (the "B60 Dual 48G" card holds two Arc Pro B60 GPUs with 24 GB each; the rows give
#: 48 GB per accelerator).
GPUS_PER_BOARD = ((re.compile(r"arc pro b60 dual", re.I), 2),)
MAX_DEVICES = 1024


@dataclass(frozen=True)
class Metric:
    column: str        # the results column holding the official value
    units: str         # tokens/s, samples/s, ns
    what: str          # in words


@dataclass(frozen=True)
class LLMTask:
    """One row as an LLM prediction task."""
    index: int
    system_key: str                    # submitter/system: the unit of leave-one-system-out
    version: str
    year: float
    submitter: str
    system: str
    benchmark: str
    scenario: str
    accelerator: str
    kind: str
    workload: str | None = None        # LLM workload config name
    quality: float | None = None
    metric: Metric | None = None
    profile: str | None = None
    devices_per_node: int = 0          # GPUs (boards x GPUs per board)
    nodes: int = 0
    devices: int = 0                   # all nodes
    scale_up_devices: int = 0          # devices sharing one scale-up (NVLink / xGMI / ICI) domain
    precision: str = ""
    precision_reason: str = ""
    stack: str = ""
    ttft_limit_ns: float | None = None
    tpot_limit_ns: float | None = None
    latency_limit_ns: float | None = None
    min_duration_ms: float | None = None
    performance_sample_count: int | None = None
    interconnect: str = ""             # the row's accelerator_interconnect, verbatim
    interconnect_kind: str = ""        # nvlink, xgmi, ici, pcie, or "" (not said): see interconnect_kind()
    power_measured: bool = False
    notes: tuple = field(default_factory=tuple)
    unsupported: str | None = None

    @property
    def ok(self) -> bool:
        return self.unsupported is None


# -- rules ----------------------------------------------------------------------------------------

def _round_index(version: str) -> int:
    return ROUNDS.index(version) if version in ROUNDS else -1


def official_metric(version: str, benchmark: str, scenario: str) -> Metric | None:
    """The metric MLPerf scores for this round, benchmark and scenario (None: not known)."""
    if version not in ROUNDS:
        return None
    benchmark, scenario = canonical(benchmark, scenario)
    r = _round_index(version)
    if scenario == SINGLESTREAM:
        if benchmark == "llama3.1-8b-edge":
            return Metric("latency_p90_ns", "ns", "90th percentile sample latency")
        return Metric("early_stopping_p90_latency_ns", "ns", "90th percentile latency (early-stopping estimate)")
    if scenario not in (OFFLINE, SERVER, INTERACTIVE):
        return None
    offline = scenario == OFFLINE
    if benchmark in ("stable-diffusion-xl", "wan-2.2-t2v-a14b", "qwen3-vl-235b-a22b"):
        if offline:
            return Metric("samples_per_second", "samples/s", "samples per second")
        if r <= ROUNDS.index("v4.0"):
            return Metric("scheduled_samples_per_second", "samples/s", "scheduled samples per second")
        return Metric("completed_samples_per_second", "samples/s", "completed samples per second")
    fam = BENCHMARKS[benchmark].family if benchmark in BENCHMARKS else ("whisper" if benchmark == "whisper" else "")
    if fam == "gptj":
        if r <= ROUNDS.index("v4.0"):
            return (Metric("samples_per_second", "samples/s", "samples per second") if offline
                    else Metric("scheduled_samples_per_second", "samples/s", "scheduled samples per second"))
        return (Metric("tokens_per_second_inferred", "tokens/s", "tokens per second (samples/s x fixed tokens)")
                if offline else Metric("completed_tokens_per_second_inferred", "tokens/s",
                                       "completed tokens per second (samples/s x fixed tokens)"))
    if not fam:
        return None
    if offline:
        return Metric("tokens_per_second", "tokens/s", "generated tokens per second")
    if fam == "llama2" and r <= ROUNDS.index("v4.0"):
        return Metric("completed_samples_per_second", "samples/s", "completed samples per second")
    return Metric("completed_tokens_per_second", "tokens/s", "completed tokens per second within the TTFT/TPOT limits")


_PREC_TOKENS = (("nvfp4", "fp4"), ("mxfp4", "mxfp4"), ("fp4", "fp4"), ("f8", "fp8"), ("fp8", "fp8"),
                ("uint8", "int8"), ("u8", "int8"), ("int8", "int8"), ("uint4", "int4"), ("int4", "int4"),
                ("bfloat16", "bf16"), ("bf16", "bf16"), ("fp16", "fp16"), ("float16", "fp16"), ("f32", "fp32"),
                ("fp32", "fp32"))
_WIDTH = {"fp4": 4, "mxfp4": 4, "int4": 4, "fp8": 8, "int8": 8, "bf16": 16, "fp16": 16, "fp32": 32}


def precision_of(weight_data_types: str, vendor: str, default: str) -> tuple[str, str]:
    """(precision, reason) of the weights from the row's ``weight_data_types``.

    One type: that type (``fp4`` on an AMD device is MXFP4, the only 4-bit float format of
    CDNA 4). Several (``fp8,fp16,int8``): the narrowest, which the bulk of the weights is
    stored in (wider types are scales and norms). Empty: ``default``, the model's checkpoint
    precision."""
    text = (weight_data_types or "").strip().lower()
    if not text:
        return default, f"weight_data_types is empty: the model's checkpoint precision ({default})"
    found = []
    for part in re.split(r"[,/;\s]+", text):
        for token, prec in _PREC_TOKENS:
            if part == token or part.startswith(token):
                found.append(prec)
                break
    if not found:
        return default, f"weight_data_types {weight_data_types!r} names no known type: the model's checkpoint " \
                        f"precision ({default})"
    prec = min(found, key=lambda p: (_WIDTH[p], p))
    if prec == "fp4" and vendor == "amd":
        prec = "mxfp4"
    why = f"weight_data_types {weight_data_types!r}"
    if len(set(found)) > 1:
        why += ": the narrowest listed type"
    if prec == "mxfp4" and "mx" not in text:
        why += " (4-bit floats on AMD CDNA 4 are MXFP4)"
    return prec, why


_STACKS = (("sglang", ("sglang",)), ("llmboost", ("llmboost",)), ("tensorrt-llm", ("tensorrt", "jetpack", "trt")),
           ("vllm", ("vllm",)), ("shark-ai", ("shark",)), ("jax", ("flax", "jax")), ("thestage", ("thestage",)),
           ("krai", ("krai", "kiss-v")), ("pytorch", ("pytorch",)), ("rocm", ("rocm",)), ("cuda", ("cuda",)))


def stack_of(framework: str, system: str = "") -> str:
    """The serving software family: tensorrt-llm (NVIDIA's TensorRT releases, which carry
    TensorRT-LLM for the LLM benchmarks), vllm, sglang, llmboost (MangoBoost's vLLM-based
    platform), jax, pytorch, ... ; ``other`` when nothing is named."""
    t = f"{framework} {system}".lower()
    for name, keys in _STACKS:
        if any(k in t for k in keys):
            return name
    return "other"


def interconnect_kind(text: str) -> str:
    """What the row says links its accelerators: ``nvlink``, ``xgmi`` (AMD Infinity Fabric),
    ``ici`` (TPU), ``pcie``, or "" where it says nothing usable (``N/A``, ``TBD``). An H100
    NVL / PCIe system without NVLink bridges says ``pcie``: its profile's bridge bandwidth then
    does not apply."""
    t = (text or "").lower()
    for kind, keys in (("nvlink", ("nvlink",)), ("xgmi", ("xgmi", "infinity fabric", "amd fabric")),
                       ("ici", ("ici",)), ("pcie", ("pcie",))):
        if any(k in t for k in keys):
            return kind
    return ""


def _count(text: str) -> int | None:
    try:
        v = float(text)
    except (TypeError, ValueError):
        return None
    return int(v) if math.isfinite(v) and v.is_integer() else -1


def _number(text: str) -> float | None:
    try:
        v = float(text)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v > 0 else None


_WEIGHT_BYTES: dict[tuple[str, str], float] = {}


def weight_bytes(workload: str, precision: str) -> float:
    """Bytes of the workload's weights stored in ``precision`` (experts the config stores in a
    precision of their own, as gpt-oss-120b's MXFP4 experts, keep it)."""
    key = (workload, precision)
    if key not in _WEIGHT_BYTES:
        from sim.workload import llm  # noqa: PLC0415 - numpy-based loader, only for rows that need it
        model = llm.load(workload).model
        _WEIGHT_BYTES[key] = dataclasses.replace(model, precision=precision).weight_bytes()
    return _WEIGHT_BYTES[key]


_DEFAULT_PRECISION: dict[str, str] = {}


def _default_precision(workload: str) -> str:
    """The weights' precision of the workload's checkpoint (its config's ``model.precision``)."""
    if workload not in _DEFAULT_PRECISION:
        from sim.workload import llm  # noqa: PLC0415 - numpy-based loader, only for rows that need it
        _DEFAULT_PRECISION[workload] = llm.load(workload).model.precision
    return _DEFAULT_PRECISION[workload]


_NAMES: dict[tuple[str, str, str], names.DeviceName | None] = {}


def _normalise(accelerator: str, kind: str) -> names.DeviceName | None:
    """``names.normalise``, remembered per (name, kind): a results file repeats a few names."""
    key = (str(profiles.profiles_dir()), accelerator, kind)
    if key not in _NAMES:
        _NAMES[key] = names.normalise(accelerator, kind or None)
    return _NAMES[key]


# -- the task -------------------------------------------------------------------------------------

def read_task(row: dict, index: int = 0) -> LLMTask:
    """The prediction task of one row (see the module docstring); ``index`` is the row's
    0-based position, used in messages as ``row index+1``."""
    missing = [c for c in REQUIRED_COLUMNS if c not in row]
    if missing:
        raise InputError(f"row {index + 1}: column '{missing[0]}' is missing; expected the columns "
                         f"{list(REQUIRED_COLUMNS)} of the LLM results schema")
    g = {c: str(row.get(c) or "").strip() for c in INPUT_COLUMNS}      # the only view of the row
    version = g["version"]
    bench_name, scenario = canonical(g["benchmark"], g["scenario"])
    kind = g["accelerator_kind"].lower()
    base = dict(index=index, system_key=f"{g['submitter']}/{g['system']}", version=version,
                year=ROUND_YEAR.get(version.lower(), 0.0), submitter=g["submitter"], system=g["system"],
                benchmark=bench_name, scenario=scenario, accelerator=g["accelerator"], kind=kind,
                stack=stack_of(g["framework"], g["system"]), interconnect=g["accelerator_interconnect"],
                interconnect_kind=interconnect_kind(g["accelerator_interconnect"]),
                power_measured=g["power_measured"].lower() == "yes",
                ttft_limit_ns=_number(g["ttft_latency_ns"]), tpot_limit_ns=_number(g["tpot_latency_ns"]),
                latency_limit_ns=_number(g["target_latency_ns"]), min_duration_ms=_number(g["min_duration_ms"]),
                performance_sample_count=(_count(g["performance_sample_count"]) or None))
    if base["performance_sample_count"] is not None and base["performance_sample_count"] < 1:
        base["performance_sample_count"] = None
    where = f"row {index + 1}"

    def unsupported(reason: str, **kw) -> LLMTask:
        return LLMTask(**{**base, **kw}, unsupported=reason)

    if version not in ROUNDS:
        return unsupported(f"{where}: round {version!r} is not a known MLPerf Inference round; expected one of "
                           f"{list(ROUNDS)}")
    if g["division"] and g["division"].lower() != "closed":
        return unsupported(f"{where}: {g['division']} division: the model may differ from the reference")
    metric = official_metric(version, bench_name, scenario)
    if bench_name in NOT_LLM:
        return unsupported(f"{bench_name}: {NOT_LLM[bench_name]}", metric=metric)
    bench = BENCHMARKS.get(bench_name)
    if bench is None:
        return unsupported(f"{where}: benchmark {bench_name!r} is not one this simulator models; expected one of "
                           f"{sorted(BENCHMARKS)}", metric=metric)
    base.update(workload=bench.workload, quality=bench.quality)
    if scenario not in bench.scenarios or metric is None:
        return unsupported(f"{where}: scenario {scenario!r} is not an MLPerf test of {bench_name} (it defines "
                           f"{', '.join(bench.scenarios)})", metric=metric)
    base["metric"] = metric
    if scenario in (SERVER, INTERACTIVE) and metric.units == "tokens/s" and bench.family != "gptj" \
            and not (base["ttft_limit_ns"] and base["tpot_limit_ns"]):
        return unsupported(f"{where}: {scenario} row of {bench_name} without ttft_latency_ns / tpot_latency_ns: "
                           f"the completed-tokens metric needs both limits")
    acc = g["accelerator"]
    if kind == "cpu" or acc.upper() in ("", "N/A", "NONE"):
        return unsupported(f"CPU-only system (accelerator {acc or 'empty'!r}): the LLM step cost models "
                           f"accelerators only")
    if re.search(r"\(x\d+\)", acc) or ("," in acc and len({_normalise(p.strip(), kind) for p in acc.split(",")
                                                          if p.strip()} - {None}) > 1):
        return unsupported(f"{where}: mixed accelerators ({acc!r}): one system of two device kinds is not "
                           f"modelled")
    dev = _normalise(acc, kind)
    if dev is None:
        return unsupported(f"{where}: accelerator {acc!r} ({kind or 'kind not given'}) matches no hardware "
                           f"profile (sim/hw/names.py)")
    prof = profiles.get(dev.profile)
    base["profile"] = dev.profile
    boards = _count(g["accelerators_per_node"])
    if boards is None or boards < 1:
        return unsupported(f"{where}: column 'accelerators_per_node' = {g['accelerators_per_node']!r}: expected a "
                           f"whole number >= 1")
    nodes = _count(g["number_of_nodes"]) if g["number_of_nodes"] else 1
    if nodes is None or nodes < 1:
        return unsupported(f"{where}: column 'number_of_nodes' = {g['number_of_nodes']!r}: expected a whole "
                           f"number >= 1")
    per_board = next((k for pat, k in GPUS_PER_BOARD if pat.search(acc)), 1)
    per_node = boards * per_board
    devices = per_node * nodes
    if devices > MAX_DEVICES:
        return unsupported(f"{where}: {devices:,} devices (accelerators_per_node x GPUs per board x "
                           f"number_of_nodes); expected at most {MAX_DEVICES:,}")
    notes = []
    if per_board > 1:
        notes.append(f"{per_board} GPUs per board: {boards} boards x {per_board} = {per_node} GPUs per node")
    domain = per_node
    if dev.profile in RACK_DOMAIN_DEVICES and nodes > 1:
        domain = min(devices, RACK_DOMAIN_DEVICES[dev.profile])
        notes.append(f"rack-scale NVLink domain: {domain} GPUs over {nodes} nodes")
    base.update(devices_per_node=per_node, nodes=nodes, devices=devices, scale_up_devices=domain)
    prec, why = precision_of(g["weight_data_types"], prof.vendor, _default_precision(bench.workload))
    base.update(precision=prec, precision_reason=why)
    need = weight_bytes(bench.workload, prec)
    cap = (prof.memory_capacity_gb or 0) * 1e9
    if cap and need > cap * domain:
        if domain < devices:
            return unsupported(f"{where}: {bench.workload} weights in {prec} ({need / 1e9:,.0f} GB) exceed one "
                               f"scale-up domain ({domain} x {prof.memory_capacity_gb:g} GB): splitting the model "
                               f"over the network between nodes is not modelled", notes=tuple(notes))
        return unsupported(f"{where}: {bench.workload} weights in {prec} ({need / 1e9:,.0f} GB) exceed the memory "
                           f"of all {devices} x {prof.memory_capacity_gb:g} GB {dev.profile}", notes=tuple(notes))
    if devices > domain:
        notes.append(f"{devices // domain} scale-up domains of {domain} devices: data-parallel replicas")
    return LLMTask(**base, notes=tuple(notes))


def read_tasks(rows) -> list[LLMTask]:
    return [read_task(r, i) for i, r in enumerate(rows)]


def measured_value(row: dict, index: int = 0) -> tuple[float, str]:
    """(value, units) of the row's official metric, for scoring a prediction only.

    The metric is chosen by ``official_metric`` from the round, benchmark and scenario (never
    by the row's result columns); a missing or non-numeric value is an ``InputError``."""
    version, bench, scenario = (str(row.get(c) or "").strip() for c in ("version", "benchmark", "scenario"))
    metric = official_metric(version, bench, scenario)
    if metric is None:
        raise InputError(f"row {index + 1}: no official metric known for round {version!r}, benchmark {bench!r}, "
                         f"scenario {scenario!r}")
    text = str(row.get(metric.column) or "").strip()
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"row {index + 1}: column '{metric.column}' = {text!r}: expected a positive number "
                         f"(the official {metric.what})")
    return value, metric.units


def observed(row: dict) -> float | None:
    """The row's official value, or None where it is missing or not a positive number (the
    convention of ``sim.hw.measurements.observed``: calibration and evaluation only)."""
    try:
        return measured_value(row)[0]
    except InputError:
        return None
