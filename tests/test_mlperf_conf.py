"""Settings as LoadGen reads them: defaults, precedence, derivations, errors.

The built-in defaults are compared with the mlperf.conf embedded in the installed
``mlcommons-loadgen`` wheel (read out of its shared library); the derived settings are
also compared with LoadGen's own ``effective_*`` log lines in test_traffic_vs_loadgen.py.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from sim.errors import InputError
from sim.loadgen.conf import parse_conf_text
from sim.loadgen.settings import (
    BUILTIN_MLPERF_CONF,
    load_settings,
)

SEEDS_6_0 = (2085463073848966840, 2747215439041700203, 16159082839903944936)


def _embedded_mlperf_conf() -> str:
    spec = importlib.util.find_spec("mlperf_loadgen")
    if spec is None or spec.origin is None:
        pytest.skip("mlcommons-loadgen is not installed")
    data = Path(spec.origin).read_bytes()
    at = data.find(b"*.*.qsl_rng_seed")
    assert at > 0, "no embedded mlperf.conf found in the LoadGen library"
    start = data.rfind(b"\0", 0, at) + 1
    end = data.find(b"\0", at)
    return data[start:end].decode("utf-8")


def test_builtin_defaults_equal_the_wheels_embedded_mlperf_conf():
    embedded = parse_conf_text(_embedded_mlperf_conf(), "embedded mlperf.conf", mlperf_conf=True)
    assert {k: e.value for k, e in embedded.items()} == BUILTIN_MLPERF_CONF


def test_default_seeds_are_the_current_rounds():
    for scenario in ("SingleStream", "MultiStream", "Server", "Offline"):
        s = load_settings("resnet50", scenario)
        assert (s.qsl_rng_seed, s.sample_index_rng_seed, s.schedule_rng_seed) == SEEDS_6_0


@pytest.mark.parametrize("model,ms", [("resnet50", 15), ("retinanet", 100), ("bert-99", 130),
                                      ("bert-99.9", 130), ("dlrm-v2", 60), ("rnnt", 1000),
                                      ("gptj", 20000), ("ssd-mobilenet", 10),
                                      ("3d-unet", 10), ("stable-diffusion-xl", 20000)])
def test_server_latency_bounds(model, ms):
    s = load_settings(model, "Server", total_sample_count=43)
    assert s.server_target_latency_ns == s.target_latency_ns == ms * 1_000_000
    assert s.target_latency_percentile == 0.99


def test_legacy_models_on_request():
    with pytest.raises(InputError, match="ssd-resnet34"):
        load_settings("ssd-resnet33", "Server")
    with pytest.raises(InputError, match="defaults='6.0\\+legacy'"):
        load_settings("ssd-resnet34", "Server")
    s = load_settings("ssd-resnet34", "Server", defaults="6.0+legacy")
    assert s.target_latency_ns == 100_000_000 and s.performance_sample_count == 64
    g = load_settings("gnmt", "Server", defaults="6.0+legacy")
    assert g.target_latency_ns == 250_000_000 and g.target_latency_percentile == 0.97


@pytest.mark.parametrize("model,count", [("resnet50", 24576), ("retinanet", 24576),
                                         ("dlrm-v2", 24576), ("bert", 10833), ("gptj", 13368),
                                         ("rnnt", 2513), ("3d-unet", 43)])
def test_offline_min_query_count_and_sample_count(model, count):
    s = load_settings(model, "Offline", total_sample_count=43)
    assert s.requested_min_query_count == count
    assert s.min_query_count == 1  # LoadGen folds Offline into one query
    # samples: max(min_query_count, 1.1 * 600 s * the default 1 QPS = 660)
    assert s.samples_per_query == max(count, 660)


@pytest.mark.parametrize("model,count", [("resnet50", 1024), ("retinanet", 64), ("bert", 10833),
                                         ("dlrm-v2", 204800), ("rnnt", 2513), ("gptj", 13368)])
def test_performance_sample_counts(model, count):
    s = load_settings(model, "SingleStream", total_sample_count=10**6)
    assert s.performance_sample_count == count


def test_3d_unet_uses_the_whole_set_and_needs_its_size():
    with pytest.raises(InputError, match="total_sample_count"):
        load_settings("3d-unet", "Offline")
    assert load_settings("3d-unet", "Offline", total_sample_count=43).performance_sample_count == 43


def test_scenario_defaults():
    ss = load_settings("resnet50", "SingleStream")
    assert ss.target_latency_percentile == 0.9 and ss.min_duration_ns == 600 * 10**9
    assert ss.single_stream_expected_latency_ns == 10e6 and ss.target_qps == 100.0
    ms = load_settings("resnet50", "MultiStream")
    assert (ms.samples_per_query, ms.min_query_count, ms.target_latency_percentile) == (8, 662, 0.99)
    assert ms.min_sample_count == 662 * 8
    assert load_settings("retinanet", "MultiStream").multi_stream_expected_latency_ns == 528e6


def _conf(tmp_path, text: str, name: str = "user.conf") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_precedence_within_one_file(tmp_path):
    text = ("*.*.min_query_count = 1\n"
            "resnet50.*.min_query_count = 2\n"
            "*.Server.min_query_count = 3\n"
            "resnet50.Server.min_query_count = 4\n")
    conf = _conf(tmp_path, text)
    assert load_settings("resnet50", "Server", conf).requested_min_query_count == 4
    assert load_settings("bert", "Server", conf).requested_min_query_count == 3
    assert load_settings("resnet50", "SingleStream", conf).requested_min_query_count == 2
    assert load_settings("bert", "SingleStream", conf).requested_min_query_count == 1


def test_user_conf_beats_mlperf_conf_at_any_level(tmp_path):
    # mlperf.conf sets *.MultiStream.min_query_count = 662; user.conf's *.*.key still wins
    conf = _conf(tmp_path, "*.*.min_query_count = 100\n*.*.min_duration = 1000\n")
    s = load_settings("resnet50", "MultiStream", conf)
    assert s.min_query_count == 100 and s.min_duration_ns == 10**9


def test_units_and_derived_settings(tmp_path):
    conf = _conf(tmp_path, "# comment\n"
                           "resnet50.SingleStream.target_latency = 0.25\n"
                           "resnet50.Server.target_latency = 20\n"
                           "resnet50.Server.target_qps = 1234.5\n"
                           "resnet50.Offline.target_qps = 250000\n"
                           "*.*.min_duration = 300\n"
                           "resnet50.*.target_latency_percentile = 99.9\n")
    ss = load_settings("resnet50", "SingleStream", conf)
    assert ss.single_stream_expected_latency_ns == 250000.0 and ss.target_qps == 4000.0
    assert ss.target_latency_percentile == 99.9 * 0.01
    sv = load_settings("resnet50", "Server", conf)
    assert sv.server_target_latency_ns == 20_000_000 and sv.target_qps == 1234.5
    off = load_settings("resnet50", "Offline", conf)
    assert off.samples_per_query == int(1.1 * 0.3 * 250000) == 82500
    assert off.target_duration_ns == 0 and off.min_duration_ns == 300 * 10**6


def test_3d_unet_single_stream_query_count_rule(tmp_path):
    conf = _conf(tmp_path, "3d-unet.SingleStream.target_latency = 0.5\n"
                           "*.*.min_duration = 100\n*.*.min_query_count = 10\n")
    s = load_settings("3d-unet", "SingleStream", conf, total_sample_count=43)
    # max(10, 2.0 * 0.1 s * 2000/s = 400) rounded past the next multiple of 43
    assert s.min_query_count == 430 and s.sample_concatenate_permutation


def test_overrides(tmp_path):
    s = load_settings("resnet50", "Server", overrides={"server_target_qps": 3000,
                                                       "min_duration_ns": 10**9,
                                                       "qsl_rng_seed": 5})
    assert (s.target_qps, s.min_duration_ns, s.qsl_rng_seed) == (3000.0, 10**9, 5)
    with pytest.raises(InputError, match="not a LoadGen test setting"):
        load_settings("resnet50", "Server", overrides={"target_qsp": 1})
    with pytest.raises(InputError, match="whole ms"):
        load_settings("resnet50", "Server", overrides={"min_duration_ns": 1500})
    with pytest.raises(InputError, match="expected a finite number"):
        load_settings("resnet50", "Server", overrides={"server_target_qps": "fast"})
    with pytest.raises(InputError, match="positive finite rate"):
        load_settings("resnet50", "Server", overrides={"server_target_qps": -1.0})


@pytest.mark.parametrize("text,fragment", [
    ("# ok\n\nresnet50.Server.target_qps = 100\nresnet50.Server.target_qps = abc\n",
     "user.conf:4: key 'resnet50.Server.target_qps': value 'abc' is not a number; "
     "expected model.scenario.key = number"),
    ("resnet50.Server.target_qps = 100 # fast\n", "user.conf:1: key 'resnet50.Server.target_qps': a comment after the value"),
    ("#no space here\n", "user.conf:1: comment"),
    ("resnet50.Server.target_qps=100\n", "needs spaces around '='"),
    ("resnet50.Server.target_qps 100\n", "found '100' where '=' belongs"),
    ("resnet50.Server.target_qps =\n", "has no value"),
    ("resnet50.Server.target_qps = 1 2\n", "more than one value"),
    ("resnet50.server.target_qps = 100\n", "unknown scenario 'server'"),
    ("resnet50.Server.target_qsp = 100\n", "unknown setting 'target_qsp'"),
    ("target_qps = 100\n", "not of the form model.scenario.key"),
    ("*.*.qsl_rng_seed = 1\n", "only from its built-in mlperf.conf"),
])
def test_bad_lines_are_rejected_with_file_line_and_key(tmp_path, text, fragment):
    conf = _conf(tmp_path, text)
    with pytest.raises(InputError) as err:
        load_settings("resnet50", "Server", conf)
    assert fragment in str(err.value).replace(str(conf), "user.conf")


def test_numbers_loadgen_would_misread_for_whole_number_keys(tmp_path):
    conf = _conf(tmp_path, "resnet50.Server.target_latency = 0.5\n")
    with pytest.raises(InputError, match="read by LoadGen as the whole number 0"):
        load_settings("resnet50", "Server", conf)
    # the same line does not matter to a SingleStream run: LoadGen reads it as 0.5 ms there
    s = load_settings("resnet50", "SingleStream", _conf(tmp_path, "*.*.target_latency = 0.5\n"))
    assert s.single_stream_expected_latency_ns == 500000.0
    with pytest.raises(InputError, match="whole number 8"):
        load_settings("resnet50", "Server", _conf(tmp_path, "*.*.min_query_count = 010\n"))


def test_hex_and_commented_out_keys_as_loadgen(tmp_path):
    conf = _conf(tmp_path, "#resnet50.Server.min_query_count = 7\n"
                           "resnet50.Server.min_query_count = 0x20\n")
    assert load_settings("resnet50", "Server", conf).requested_min_query_count == 32


def test_model_aliases_and_unknown_models(tmp_path):
    assert load_settings("bert-99", "Server").model == "bert"
    with pytest.raises(InputError, match="LoadGen looks up model 'bert'"):
        load_settings("bert-99", "Server", _conf(tmp_path, "bert-99.Server.target_qps = 5\n"))
    with pytest.raises(InputError, match="not in LoadGen's mlperf.conf"):
        load_settings("resnet-50", "Server")
    s = load_settings("mynet", "Server", allow_unknown_model=True, total_sample_count=10)
    assert s.target_latency_ns == 10_000_000 and s.performance_sample_count == 10


def test_missing_file_and_bad_scenario(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        load_settings("resnet50", "Server", tmp_path / "nope.conf")
    with pytest.raises(InputError, match="scenario 'server'"):
        load_settings("resnet50", "server")
