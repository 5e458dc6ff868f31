"""One simulated MLPerf LLM test: settings -> equal-issue traffic -> token lengths -> serving engine ->
token metrics and verdict.

``simulate_llm_run`` is the LLM counterpart of ``sim.run.simulate``::

    from sim.run_llm import simulate_llm_run
    r = simulate_llm_run("Server", "llama2-70b", overrides={"server_target_qps": 20.0})
    print(r.summary_text())

The steps:

1. LoadGen's settings for the benchmark (``sim.loadgen.settings``): the workload's MLPerf model, or
   ``<model>-interactive`` for the Interactive scenario (a Server run with tighter TTFT/TPOT limits).
2. LoadGen's traffic (``sim.loadgen.traffic``): equal-issue sample order, Poisson Server arrivals;
   Offline issues every sample at time 0.
3. Token lengths per sample *index* (``sim.workload.llm``): the dataset's distribution drawn once
   for the whole sample set with the seed, so a sample issued in several passes keeps its lengths.
4. The serving system (``LLMSystem``: a device, the parallel layout, replicas, batch and token
   limits, the KV cache derived from memory) and its step cost
   (``sim.cost.llm_roofline.RooflineStepCost``); with no system given, ``default_llm_system``
   picks one 8-GPU node that holds the model, and the run says so.
5. The engine (``sim.sut.llm.simulate_llm``) gives first-token and completion times; LoadGen's
   token rules (``sim.loadgen.tokens``) give the statistics and the verdict; ``sim.loadgen.logs``
   writes the summary and detail logs.

A run that cannot work is refused with one line: a model config with a missing or impossible
field, lengths of zero or past the model's context, a KV cache too small for one sequence at its
longest. A Server target the system cannot sustain runs and is INVALID, with the reason
(``LLMRunResult.verdict_reason``) and, before the run, a note when the target exceeds the
system's estimated capacity.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from sim.cost.llm_device import DEVICES, LLMDevice, device
from sim.cost.llm_roofline import RooflineParams, RooflineStepCost
from sim.errors import InputError
from sim.loadgen import logs as loadgen_logs
from sim.loadgen.settings import KNOWN_MODELS, TestSettings
from sim.loadgen.tokens import TokenMetrics, compute_token_metrics
from sim.loadgen.traffic import Traffic, check_run_size, generate
from sim.run import settings_of, write_run_files
from sim.sut.llm import EngineSpec, Layout, LLMResult, blocks_from_memory, simulate_llm
from sim.sut.llm.kv_cache import check_fits
from sim.util.checks import RANGES, number, refuse
from sim.util.yamlfile import read_yaml
from sim.workload import llm as llm_workloads

#: The scenarios an LLM benchmark runs in (Interactive: Server with the ``-interactive`` keys).
LLM_SCENARIOS = ("Offline", "Server", "Interactive")

#: Defaults of an LLM serving system (each an assumption, named with its source).
DEFAULT_MAX_SEQS = 256               # vLLM's max_num_seqs default
DEFAULT_STEP_TOKENS = 8192           # vLLM's max_num_batched_tokens with chunked prefill (V1 default)
DEFAULT_BLOCK_SIZE = 16              # vLLM's KV block size default
DEFAULT_MEMORY_FRACTION = 0.9        # vLLM's gpu_memory_utilization default
DEFAULT_ACTIVATION_RESERVE_BYTES = 4e9   # per device: activations, CUDA graphs, workspace (assumed)
#: The node the default system is: 8 GPUs of the first kind in this list that holds the model.
DEFAULT_NODE_DEVICES = 8
DEFAULT_DEVICE_ORDER = ("h100-sxm", "h200-sxm", "b200")


# -- the system ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LLMSystem:
    """An LLM serving system: ``replicas`` copies of one engine on ``tp * pp`` devices each."""
    name: str
    device: LLMDevice
    tp: int = 1
    pp: int = 1
    ep: int = 1
    replicas: int = 1
    max_seqs: int = DEFAULT_MAX_SEQS
    max_step_tokens: int = DEFAULT_STEP_TOKENS
    block_size: int = DEFAULT_BLOCK_SIZE
    memory_fraction: float = DEFAULT_MEMORY_FRACTION
    activation_reserve_bytes: float = DEFAULT_ACTIVATION_RESERVE_BYTES
    kv_blocks: int | None = None       # None: derived from memory
    router: str = "round_robin"
    precision: str = ""                # weights' precision on this system ("": the model's default)
    kv_precision: str = ""             # KV cache's precision ("": the model's default)
    roofline: RooflineParams = field(default_factory=RooflineParams)
    source: str = "LLM system"
    default_note: str = ""             # set when the system was chosen by default

    @property
    def devices(self) -> int:
        return self.replicas * self.tp * self.pp

    def model_for(self, model: llm_workloads.LLMConfig) -> llm_workloads.LLMConfig:
        """The model as this system stores it (its weight and KV precisions, where set)."""
        return replace(model, precision=self.precision or model.precision,
                       kv_precision=self.kv_precision or model.kv_precision)

    def kv_bytes_per_token(self, model: llm_workloads.LLMConfig) -> float:
        """KV bytes one token takes across a replica: an MLA latent is held on every TP device;
        KV heads are split over at most ``kv_heads`` devices, copied beyond."""
        per = self.model_for(model).kv_bytes_per_token()
        if model.mla is not None:
            return per * self.tp
        return per * self.tp / min(self.tp, model.kv_heads)

    def kv_blocks_for(self, model: llm_workloads.LLMConfig) -> int:
        """KV blocks of one replica: given, or memory minus weights minus the activation reserve."""
        if self.kv_blocks is not None:
            return self.kv_blocks
        model = self.model_for(model)
        n = self.tp * self.pp
        return blocks_from_memory(self.device.memory_bytes, model.weight_bytes(), self.kv_bytes_per_token(model),
                                  self.block_size, devices=n, memory_fraction=self.memory_fraction,
                                  activation_bytes=self.activation_reserve_bytes * n,
                                  source=f"{self.source}: {model.name} on {n} x {self.device.name}")

    def engine_spec(self, model: llm_workloads.LLMConfig) -> EngineSpec:
        return EngineSpec(kv_blocks=self.kv_blocks_for(model), block_size=self.block_size, max_seqs=self.max_seqs,
                          max_step_tokens=self.max_step_tokens, replicas=self.replicas, router=self.router,
                          layout=Layout(self.tp, self.pp, self.ep, source=self.source), source=self.source)

    def cost(self, model: llm_workloads.LLMConfig) -> RooflineStepCost:
        return RooflineStepCost(self.model_for(model), self.device, self.tp, self.pp, self.ep, self.roofline)

    def describe(self, model: llm_workloads.LLMConfig) -> str:
        par = f"TP{self.tp}" + (f" PP{self.pp}" if self.pp > 1 else "") + (f" EP{self.ep}" if self.ep > 1 else "")
        blocks = self.kv_blocks_for(model)
        return (f"{self.name}: {self.devices} x {self.device.name}, {self.replicas} replica(s) of {par}, "
                f"max {self.max_seqs} sequences and {self.max_step_tokens} tokens a step, KV cache "
                f"{blocks:,} blocks of {self.block_size} tokens ({blocks * self.block_size:,} tokens) per replica")


_SYSTEM_FIELDS = {"name", "kind", "device", "tp", "pp", "ep", "replicas", "max_batch", "token_budget", "block_size",
                  "memory_fraction", "activation_reserve_gb", "kv_blocks", "router", "precision", "kv_precision",
                  "roofline"}
_ROOFLINE_FIELDS = {"memory_efficiency", "compute_efficiency", "step_overhead_us", "layer_overhead_us",
                    "allreduce_latency_us"}


def load_llm_system(path: str | Path) -> LLMSystem:
    """An LLM system file (YAML), every field checked::

        kind: llm
        name: 8xH100 TP2
        device: h100-sxm          # one of sim.cost.llm_device.DEVICES
        tp: 2                     # tensor-parallel degree of one replica (pp, ep likewise; default 1)
        replicas: 4
        max_batch: 256            # sequences running at once per replica
        token_budget: 8192        # tokens of one step (decodes + prefill chunks)
        block_size: 16            # KV block, tokens
        memory_fraction: 0.9      # of device memory for weights + KV + reserve
        activation_reserve_gb: 4  # per device
        kv_blocks: 20000          # optional: fixes the KV cache instead of deriving it
        precision: fp8            # optional: the weights' precision (default: the model file's)
        kv_precision: fp8         # optional: the KV cache's
        roofline: {memory_efficiency: 0.87, compute_efficiency: 0.69, step_overhead_us: 126,
                   layer_overhead_us: 32, allreduce_latency_us: 35}
    """
    src = str(path)
    data = read_yaml(path, "an LLM system description (kind: llm)")
    if not isinstance(data, dict):
        raise refuse(src, "", data, "a mapping of an LLM system's fields")
    for key in data:
        if key not in _SYSTEM_FIELDS:
            raise InputError(f"{src}: unknown field '{key}'; expected one of {sorted(_SYSTEM_FIELDS)}")
    if data.get("kind", "llm") != "llm":
        raise refuse(src, "kind", data.get("kind"), "llm")
    if "device" not in data:
        raise InputError(f"{src}: field 'device' is missing; expected one of {sorted(DEVICES)}")
    dev = device(data["device"], src)

    def integer(key: str, default: int, hi: int = 1 << 20) -> int:
        return number(data.get(key, default), src, key, minimum=1, maximum=hi, integer=True)

    rf = data.get("roofline") or {}
    if not isinstance(rf, dict):
        raise refuse(src, "roofline", rf, "a mapping")
    for key in rf:
        if key not in _ROOFLINE_FIELDS:
            raise InputError(f"{src}: unknown field 'roofline.{key}'; expected one of {sorted(_ROOFLINE_FIELDS)}")
    base = RooflineParams()
    params = RooflineParams(
        memory_efficiency=number(rf.get("memory_efficiency", base.memory_efficiency), src,
                                 "roofline.memory_efficiency", above=0.0, maximum=1.0),
        compute_efficiency=number(rf.get("compute_efficiency", base.compute_efficiency), src,
                                  "roofline.compute_efficiency", above=0.0, maximum=1.0),
        step_overhead_ns=1e3 * number(rf.get("step_overhead_us", base.step_overhead_ns / 1e3), src,
                                      "roofline.step_overhead_us", **RANGES["time_us"]),
        layer_overhead_ns=1e3 * number(rf.get("layer_overhead_us", base.layer_overhead_ns / 1e3), src,
                                       "roofline.layer_overhead_us", **RANGES["time_us"]),
        allreduce_latency_ns=1e3 * number(rf.get("allreduce_latency_us", base.allreduce_latency_ns / 1e3), src,
                                          "roofline.allreduce_latency_us", **RANGES["time_us"]))
    kv_blocks = data.get("kv_blocks")
    if kv_blocks is not None:
        kv_blocks = number(kv_blocks, src, "kv_blocks", minimum=1, maximum=1 << 40, integer=True)
    prec = {}
    for key in ("precision", "kv_precision"):
        if key in data and data[key] not in llm_workloads.PRECISION_BYTES:
            raise refuse(src, key, data[key], f"one of {sorted(llm_workloads.PRECISION_BYTES)}")
        prec[key] = data.get(key, "")
    name = data.get("name", Path(src).stem)
    if not isinstance(name, str):
        raise refuse(src, "name", name, "text")
    return LLMSystem(
        name=name, device=dev, tp=integer("tp", 1, 4096), pp=integer("pp", 1, 4096), ep=integer("ep", 1, 4096),
        replicas=integer("replicas", 1, 1 << 16), max_seqs=integer("max_batch", DEFAULT_MAX_SEQS),
        max_step_tokens=integer("token_budget", DEFAULT_STEP_TOKENS, 1 << 24),
        block_size=integer("block_size", DEFAULT_BLOCK_SIZE, 1 << 16),
        memory_fraction=number(data.get("memory_fraction", DEFAULT_MEMORY_FRACTION), src, "memory_fraction",
                               above=0.0, maximum=1.0),
        activation_reserve_bytes=1e9 * number(data.get("activation_reserve_gb", DEFAULT_ACTIVATION_RESERVE_BYTES / 1e9),
                                              src, "activation_reserve_gb", minimum=0.0, maximum=1e6),
        kv_blocks=kv_blocks, router=data.get("router", "round_robin"), roofline=params, source=src, **prec)


def default_llm_system(workload: llm_workloads.LLMWorkload) -> LLMSystem:
    """One 8-GPU node that holds the model (the module docstring): the first device of
    ``DEFAULT_DEVICE_ORDER`` whose memory holds the weights and one sequence of the dataset's
    longest, and on it the smallest TP degree (1, 2, 4, 8) at which one replica's KV cache holds
    ``DEFAULT_MAX_SEQS`` sequences of the dataset's mean length (else the largest that fits);
    ``8 / TP`` replicas."""
    model = workload.model
    ds = workload.dataset
    mean_len = (ds.input.mean + ds.output.mean) if ds is not None and ds.input.kind != "csv" else 2048.0
    longest = ds.max_total() if ds is not None else model.max_context
    tried = []
    for name in DEFAULT_DEVICE_ORDER:
        dev = DEVICES[name]
        fits = []
        for tp in (1, 2, 4, 8):
            sys_ = LLMSystem(name=f"default: 1 node of {DEFAULT_NODE_DEVICES} x {name}, TP{tp}", device=dev, tp=tp,
                             replicas=DEFAULT_NODE_DEVICES // tp, source="default LLM system")
            try:
                tokens = sys_.kv_blocks_for(model) * sys_.block_size
            except InputError:
                continue
            if tokens >= longest:
                fits.append((tokens >= DEFAULT_MAX_SEQS * mean_len, sys_))
        if fits:
            # the smallest TP whose cache holds a full batch of mean-length sequences, else the largest
            sys_ = next((s for full, s in fits if full), fits[-1][1])
            note = (f"no --system given: {sys_.describe(model)}; datasheet figures "
                    f"({dev.source.split(':')[0]}), roofline efficiencies as documented in sim.cost.llm_roofline")
            return replace(sys_, default_note=note)
        tried.append(name)
    raise InputError(f"{workload.path}: {model.name} ({model.weight_bytes() / 1e9:.0f} GB of weights) fits no "
                     f"default node of {DEFAULT_NODE_DEVICES} x {', '.join(tried)}; expected --system FILE")


# -- the run ---------------------------------------------------------------------------------------

@dataclass
class LLMRunResult:
    scenario: str                     # as asked (Interactive included)
    workload: llm_workloads.LLMWorkload
    system: LLMSystem
    cost: RooflineStepCost
    settings: TestSettings
    traffic: Traffic
    input_tokens: np.ndarray          # per issued sample
    output_tokens: np.ndarray
    scheduled_ns: np.ndarray
    engine: LLMResult
    metrics: TokenMetrics
    seed: int
    notes: list = field(default_factory=list)

    def summary_text(self) -> str:
        return loadgen_logs.summary_text(self.metrics, loadgen_logs.summary_params(self.settings),
                                         sut_name=f"sim: {self.system.name}")

    def verdict_reason(self) -> str:
        """Why the run is INVALID, one line ("" when VALID)."""
        m = self.metrics
        if m.valid:
            return ""
        why = []
        if m.ttft is not None and m.perf_constraints_met is False:
            ttft = m.ttft_percentile_ns or 0
            tpot = m.tpot_percentile_ns or 0
            if ttft > m.ttft_latency_ns:
                why.append(f"TTFT p99 {ttft / 1e6:.1f} ms > {m.ttft_latency_ns / 1e6:g} ms")
            if tpot > m.tpot_latency_ns:
                why.append(f"TPOT p99 {tpot / 1e6:.1f} ms > {m.tpot_latency_ns / 1e6:g} ms")
        if not m.early_stopping_met:
            why.append("early stopping not met")
        if not m.min_duration_met:
            why.append("min duration not met")
        if not m.min_queries_met:
            why.append("min queries not met")
        if m.errors:
            why.append(f"{len(m.errors)} sample error(s)")
        return "INVALID: " + ("; ".join(why) or "see the summary")

    def little(self) -> dict:
        """Little's law over the run: sequences in flight as the arrival rate times the mean time in
        the system, and LoadGen's cross-check (completed samples/s x mean latency against completed
        tokens/s x mean TPOT, which agree in published runs)."""
        sched = self.scheduled_ns
        done = self.engine.complete_ns
        span = float(done.max() - sched.min())
        lat = (done - sched).astype(np.float64)
        out = {"samples_per_second": len(done) / span * 1e9, "mean_latency_s": float(lat.mean()) / 1e9,
               "in_flight": len(done) / span * float(lat.mean())}
        m = self.metrics
        if m.tpot is not None:
            out["loadgen_samples_x_latency"] = m.samples_per_second * m.sample_latency.mean_ns / 1e9
            out["loadgen_tokens_x_tpot"] = m.tokens_per_second * m.tpot.mean_ns / 1e9
        return out

    def to_json(self) -> dict:
        m = self.metrics
        return {
            "schema": "sim.llm_result/1", "scenario": self.scenario, "workload": self.workload.name,
            "mlperf_model": self.settings.model, "system": self.system.describe(self.workload.model),
            "default_system": bool(self.system.default_note), "cost_model": self.cost.describe(), "seed": self.seed,
            "result": {"valid": m.valid, "metric": m.headline_name, "value": m.headline_value,
                       "reason": self.verdict_reason()},
            "metrics": m.to_dict(), "notes": list(self.notes),
            "samples": int(len(self.scheduled_ns)), "tokens": int(self.engine.n_tokens.sum()),
            "mean_input_tokens": float(self.input_tokens.mean()),
            "mean_output_tokens": float(self.output_tokens.mean()),
            "steps": int(self.engine.steps), "preemptions": int(self.engine.preemptions),
            "peak_kv_blocks": [int(x) for x in self.engine.peak_kv_blocks],
            "little": self.little(),
        }

    def write(self, out_dir: str | Path) -> list[Path]:
        """mlperf_log_summary.txt, mlperf_log_detail.txt and result.json into ``out_dir``."""
        return write_run_files(out_dir, self.summary_text(), self.metrics, self.settings, self.traffic, self.to_json())



def mlperf_model_for(workload: llm_workloads.LLMWorkload, scenario: str, mlperf_model: str | None) -> tuple[str, str]:
    """(LoadGen model name, LoadGen scenario): Interactive is Server with ``<model>-interactive``."""
    if scenario not in LLM_SCENARIOS:
        raise InputError(f"scenario {scenario!r}: expected one of {list(LLM_SCENARIOS)} for LLM workload "
                         f"{workload.name}")
    model = mlperf_model or workload.mlperf_model
    if scenario == "Interactive":
        if not model.endswith("-interactive"):
            model += "-interactive"
        if model not in KNOWN_MODELS:
            raise InputError(f"LLM workload {workload.name}: LoadGen's mlperf.conf has no '{model}' settings; "
                             f"expected a benchmark with an Interactive scenario")
        return model, "Server"
    return model, scenario


def capacity_estimate(workload: llm_workloads.LLMWorkload, system: LLMSystem, cost: RooflineStepCost) -> dict:
    """The system's decode-bound throughput: every replica running ``max_seqs`` sequences (as many
    as the KV cache holds at the mean length) at the dataset's mean context, one token each a step,
    plus the prefill work of the samples those tokens finish. Returns tokens/s and samples/s."""
    ds = workload.dataset
    mean_in = float(ds.input.mean) if ds is not None else 1024.0
    mean_out = float(ds.output.mean) if ds is not None else 256.0
    blocks = system.kv_blocks_for(workload.model)
    seqs = max(1, min(system.max_seqs, int(blocks * system.block_size // (mean_in + mean_out))))
    ctx = mean_in + mean_out / 2
    step = cost.step_ns(0, 0.0, seqs, int(seqs * ctx))
    # prefill of one sample, spread over its output tokens
    prefill = cost.step_ns(int(mean_in), mean_in * (mean_in + 1) / 2, 0, 0)
    per_token_ns = step / seqs + prefill / mean_out
    tokens_ps = system.replicas * 1e9 / per_token_ns
    return {"tokens_per_second": tokens_ps, "samples_per_second": tokens_ps / mean_out, "batch": seqs,
            "decode_step_ns": step}


def simulate_llm_run(scenario: str, workload: str | llm_workloads.LLMWorkload, *, system: LLMSystem | None = None,
                     mlperf_model: str | None = None, user_conf: str | None = None, overrides: dict | None = None,
                     seed: int = 0, lengths_csv: str | None = None, trace: bool = False,
                     cost=None) -> LLMRunResult:
    """One LLM benchmark run (the module docstring). ``cost``: a ``StepCost`` instead of the
    system's roofline."""
    seed = number(seed, "simulate_llm_run", "seed", **RANGES["seed"])
    wl = workload if isinstance(workload, llm_workloads.LLMWorkload) else llm_workloads.load(workload)
    model_name, lg_scenario = mlperf_model_for(wl, scenario, mlperf_model)
    notes = []
    if system is None:
        system = default_llm_system(wl)
        notes.append(system.default_note)
    wl = replace(wl, model=system.model_for(wl.model))
    step_cost = cost if cost is not None else system.cost(wl.model)
    total = wl.dataset.samples if wl.dataset is not None else None
    if lengths_csv:
        total = llm_workloads.load_lengths_csv(lengths_csv, wl).samples
    overrides = dict(overrides or {})
    if lg_scenario == "Offline" and "offline_expected_qps" not in overrides:
        # LoadGen sizes an Offline query from the expected QPS: the capacity estimate stands in
        cap = capacity_estimate(wl, system, system.cost(wl.model))
        overrides["offline_expected_qps"] = cap["samples_per_second"]
        notes.append(f"offline_expected_qps = {cap['samples_per_second']:.4g} from the system's estimated capacity "
                     f"(LoadGen would need it in user.conf)")
    if lg_scenario == "Server" and "server_target_qps" not in overrides:
        raise InputError(f"{wl.name} {scenario}: no Server target QPS; expected --qps Q (python -m sim search "
                         f"finds the highest VALID one)")
    settings, snotes = settings_of(model_name, lg_scenario, user_conf=user_conf, overrides=overrides,
                                   total_sample_count=total)
    notes += snotes
    if lg_scenario == "Server":
        cap = capacity_estimate(wl, system, system.cost(wl.model))
        if settings.server_target_qps > cap["samples_per_second"]:
            notes.append(f"target {settings.server_target_qps:g} QPS is above the system's estimated capacity of "
                         f"{cap['samples_per_second']:.3g} QPS ({cap['tokens_per_second']:.4g} tokens/s): "
                         f"queues grow without bound, the run cannot be VALID")
    check_run_size(settings, total, by_duration=True)
    traffic = generate(settings, total)
    n_indices = settings.total_sample_count or total or int(traffic.sample_index.max()) + 1
    inp_all, out_all = wl.sample_lengths(int(max(n_indices, int(traffic.sample_index.max()) + 1)), seed, lengths_csv)
    idx = traffic.sample_index
    inp, out = inp_all[idx], out_all[idx]
    if lg_scenario == "Server":
        sched = np.asarray(traffic.scheduled_ns, dtype=np.int64)
    else:
        sched = np.zeros(len(idx), dtype=np.int64)
    spec = system.engine_spec(wl.model)
    if not lengths_csv and wl.dataset is not None:
        # the dataset's longest sequence must fit one (virtual) engine's cache, drawn or not
        check_fits(np.array([wl.dataset.input.maximum]), np.array([wl.dataset.output.maximum]),
                   spec.kv_blocks // spec.layout.pp, spec.block_size,
                   f"{system.source}: {wl.name}'s longest sequence ({wl.path})")
    eng = simulate_llm(spec, step_cost, sched, inp, out, trace=trace)
    m = compute_token_metrics(settings, sched, eng.first_token_ns, eng.complete_ns, eng.n_tokens)
    return LLMRunResult(scenario=scenario, workload=wl, system=system, cost=step_cost, settings=settings,
                        traffic=traffic, input_tokens=inp, output_tokens=out, scheduled_ns=sched, engine=eng,
                        metrics=m, seed=seed, notes=notes)


def peak_llm_qps(workload: str | llm_workloads.LLMWorkload, *, scenario: str = "Server",
                 system: LLMSystem | None = None, mlperf_model: str | None = None, user_conf: str | None = None,
                 overrides: dict | None = None, seed: int = 0, lengths_csv: str | None = None,
                 rel_tol: float = 0.01, repeats: int = 5, start_qps: float | None = None, on_trial=None,
                 cost=None):
    """The highest Server (or Interactive) QPS meeting both the TTFT and the TPOT limits
    (``sim.loadgen.peak_search.find_peak_qps``; each trial a full simulated run, passed to
    ``on_trial`` when given; ``cost``: a ``StepCost`` instead of the system's roofline)."""
    from sim.loadgen.peak_search import (  # noqa: PLC0415 - keeps this module's imports to the run's
        ScheduleSeeds,
        check_search,
        find_peak_qps,
    )

    wl = workload if isinstance(workload, llm_workloads.LLMWorkload) else llm_workloads.load(workload)
    if scenario not in ("Server", "Interactive"):
        raise InputError(f"peak search of {wl.name}: scenario {scenario!r}: expected Server or Interactive")
    start_qps, rel_tol, repeats, _, _ = check_search(start_qps, rel_tol, repeats, source="peak_llm_qps")
    system = system or default_llm_system(wl)
    overrides = dict(overrides or {})
    overrides.pop("server_target_qps", None)
    seeds = ScheduleSeeds()

    def trial(qps: float, seed_index: int):
        r = simulate_llm_run(scenario, wl, system=system, mlperf_model=mlperf_model, user_conf=user_conf,
                             overrides={**overrides, **seeds.overrides(qps, seed_index)}, seed=seed,
                             lengths_csv=lengths_csv, cost=cost)
        seeds.saw(r.settings)
        if on_trial is not None:
            on_trial(r)
        return r.metrics

    if start_qps is None:
        start_qps = 0.8 * capacity_estimate(wl, system, system.cost(wl.model))["samples_per_second"]
    return find_peak_qps(trial, start_qps, rel_tol=rel_tol, repeats=repeats)
