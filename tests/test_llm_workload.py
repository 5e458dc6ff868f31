"""LLM workloads: parameter counts and KV bytes against published figures, length distributions,
strict validation of model files and length CSVs."""

from __future__ import annotations

import numpy as np
import pytest

from sim.errors import InputError
from sim.workload import llm

# (workload, published total, published active or None, relative tolerance). Sources: each
# workload file's `published.source` (Meta's Llama 2 / 3 papers and Hugging Face pages, Mistral
# AI's Mixtral announcement, the DeepSeek-V3 technical report, EleutherAI's GPT-J model card,
# OpenAI's gpt-oss model card).
PUBLISHED = [
    ("llama2-70b", 68.98e9, None, 1e-3),
    ("llama3.1-8b", 8.03e9, None, 1e-3),
    ("llama3.1-405b", 405.9e9, None, 1e-3),
    ("mixtral-8x7b", 46.7e9, 12.9e9, 5e-3),
    ("deepseek-r1", 671e9, 37e9, 2e-2),   # the report rounds the active count to 37B
    ("gpt-j-6b", 6_053_381_344, None, 1e-3),
    ("gpt-oss-120b", 116.83e9, None, 1e-3),
]


@pytest.mark.parametrize("name,total,active,tol", PUBLISHED)
def test_parameter_counts_match_published(name, total, active, tol):
    w = llm.load(name)
    p = w.model.params()
    assert p.total == pytest.approx(total, rel=tol)
    assert float(w.published["params"]) == pytest.approx(total, rel=1e-3)   # the file cites the same figure
    if active is not None:
        assert p.active == pytest.approx(active, rel=tol)
    if w.model.moe is None:
        assert p.active == p.total


def test_gpt_oss_active_count_excludes_the_embedding_table():
    # OpenAI's model card: 5.13B active parameters per token, counting the unembedding but not
    # the (looked-up) embedding table
    p = llm.load("gpt-oss-120b").model.params()
    assert p.active - p.embedding == pytest.approx(5.13e9, rel=2e-3)


def test_llama2_70b_count_by_hand():
    h, f, v, layers = 8192, 28672, 32000, 80
    per_layer = h * h * 2 + 2 * h * 1024 + 3 * h * f + 2 * h      # q, o; k, v (8 KV heads of 128); SwiGLU; norms
    assert llm.load("llama2-70b").model.params().total == layers * per_layer + 2 * v * h + h


@pytest.mark.parametrize("name,kib", [("llama2-70b", 320), ("llama3.1-8b", 128), ("llama3.1-405b", 504),
                                      ("mixtral-8x7b", 128)])
def test_kv_bytes_per_token_bf16(name, kib):
    # layers x KV heads x head size x (K and V) x 2 bytes
    assert llm.load(name).model.kv_bytes_per_token() == kib * 1024


def test_kv_bytes_per_token_latent_attention():
    # DeepSeek-R1 caches the 512-wide latent and the 64-wide rotary key per layer: (512 + 64) x 61 x 2 B
    assert llm.load("deepseek-r1").model.kv_bytes_per_token() == (512 + 64) * 61 * 2 == 70_272


def test_weight_bytes_use_each_part_precision():
    m = llm.load("gpt-oss-120b").model
    p = m.params()
    routed = p.expert * m.moe.experts * m.moe_layers
    assert m.weight_bytes() == pytest.approx((p.total - routed) * 2 + routed * 4.25 / 8)
    assert llm.load("llama2-70b").model.weight_bytes() == 2 * llm.load("llama2-70b").model.params().total


DISTS = [(w, part) for w in ("llama2-70b", "mixtral-8x7b", "llama3.1-405b", "deepseek-r1", "gpt-j-6b")
         for part in ("input", "output")]


@pytest.mark.parametrize("name,part", DISTS)
def test_length_distribution_honours_mean_and_max(name, part):
    d = getattr(llm.load(name).dataset, part)
    x = d.sample(200_000, np.random.default_rng(11))
    assert x.max() <= d.maximum and x.min() >= d.minimum
    assert x.mean() == pytest.approx(d.mean, rel=0.01)


def test_fixed_output_of_llama31_8b():
    _, out = llm.load("llama3.1-8b").sample_lengths(1000, seed=3)
    assert (out == 128).all()


def test_deepseek_output_tail_matches_the_published_run():
    # the spread was derived from one published run's median 2,114 and p90 9,496 (see the file)
    d = llm.load("deepseek-r1").dataset.output
    x = d.sample(200_000, np.random.default_rng(2))
    assert np.median(x) == pytest.approx(2114, rel=0.1)
    assert np.percentile(x, 90) == pytest.approx(9496, rel=0.1)
    assert np.percentile(x, 99) == 20000             # the cap, as published


def test_bounded_lognormal_mean_closed_form_against_sampling():
    for mode in ("clip", "truncate"):
        d = llm.LengthDist("lognormal", mean=300.0, maximum=500, sigma=1.0, mode=mode)
        mu = d.mu()
        raw = np.random.default_rng(0).lognormal(mu, 1.0, 400_000)
        kept = np.minimum(raw, 500) if mode == "clip" else raw[raw <= 500]
        assert kept.mean() == pytest.approx(300.0, rel=0.01)


def test_lengths_are_deterministic_per_seed():
    w = llm.load("llama2-70b")
    a = w.sample_lengths(500, seed=7)
    b = w.sample_lengths(500, seed=7)
    c = w.sample_lengths(500, seed=8)
    assert all((x == y).all() for x, y in zip(a, b))
    assert not (a[1] == c[1]).all()


def test_lengths_from_csv(tmp_path):
    p = tmp_path / "lens.csv"
    p.write_text("input_tokens,output_tokens\n10,5\n20,7\n30,9\n")
    inp, out = llm.load("llama2-70b").sample_lengths(5, seed=0, lengths_csv=str(p))
    assert inp.tolist() == [10, 20, 30, 10, 20] and out.tolist() == [5, 7, 9, 5, 7]


@pytest.mark.parametrize("row,match", [("0,5", "expected an integer >= 1"), ("10,0", "zero tokens"),
                                       ("5000,5", "context of 4,096"), ("3000,2000", "input \\+ output"),
                                       ("x,5", "expected an integer")])
def test_bad_lengths_csv(tmp_path, row, match):
    p = tmp_path / "lens.csv"
    p.write_text(f"input_tokens,output_tokens\n10,5\n{row}\n")
    with pytest.raises(InputError, match=match) as e:
        llm.load("llama2-70b").sample_lengths(4, seed=0, lengths_csv=str(p))
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_csv_without_the_columns(tmp_path):
    p = tmp_path / "lens.csv"
    p.write_text("prompt,gen\n1,2\n")
    with pytest.raises(InputError, match="column 'input_tokens' is missing"):
        llm.load_lengths_csv(p)


def test_workload_without_dataset_needs_a_csv():
    with pytest.raises(InputError, match="--lengths"):
        llm.load("gpt-oss-120b").sample_lengths(4, seed=0)


def _write_variant(tmp_path, edit):
    import yaml
    data = yaml.safe_load((llm.LLM_WORKLOADS_DIR / "mixtral-8x7b.yaml").read_text())
    edit(data)
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


BAD_MODELS = [
    (lambda d: d["model"].pop("heads"), "field 'model.heads' is missing"),
    (lambda d: d["model"].update(kv_heads=3), "field 'model.kv_heads' = 3: expected a divisor of heads"),
    (lambda d: d["model"].update(layers=0), "field 'model.layers' = 0"),
    (lambda d: d["model"].update(hidden_size=-4096), "field 'model.hidden_size' = -4096"),
    (lambda d: d["model"].update(precision="fp7"), "field 'model.precision' = 'fp7'"),
    (lambda d: d["model"]["moe"].update(experts_per_token=9), "experts_per_token' = 9: expected at most experts"),
    (lambda d: d["model"].update(heads_count=4), "unknown field 'model.heads_count'"),
    (lambda d: d["dataset"]["output"].update(max=40000), "beyond the model's context of 32,768"),
    (lambda d: d["dataset"]["output"].update(mean=2000), "field 'dataset.output.mean' = 2000"),
    (lambda d: d["dataset"]["input"].pop("sigma"), "field 'dataset.input.sigma' is missing"),
    (lambda d: d.pop("source"), "field 'source' is missing"),
]


@pytest.mark.parametrize("edit,match", BAD_MODELS)
def test_bad_model_file_is_one_line_naming_file_and_field(tmp_path, edit, match):
    p = _write_variant(tmp_path, edit)
    with pytest.raises(InputError, match=match) as e:
        llm.load_llm_workload(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_every_catalog_file_loads_and_names_its_source():
    names = {"llama2-70b", "llama3.1-8b", "llama3.1-405b", "mixtral-8x7b", "deepseek-r1", "gpt-j-6b",
             "gpt-oss-120b"}
    assert names <= set(llm.llm_catalog())
    for name in names:
        w = llm.load(name)
        assert w.source.startswith("https://huggingface.co/") and w.published.get("source")
        assert llm.is_llm_workload(name)
    assert not llm.is_llm_workload("resnet50")
