"""MLPerf LoadGen's rules, reproduced: what LoadGen would issue and how it would judge a run.

Each module holds one part of LoadGen:

``scenarios``
    The four scenarios in LoadGen's order; closed loop (SingleStream, MultiStream), open
    (Server) and Offline; each scenario's official metric and its percentile.
``conf``
    The mlperf.conf / user.conf syntax, its errors, and LoadGen's most-specific-line lookup
    within one file (``TestSettings::FromConfig``).
``mlperf.conf`` (a data file)
    LoadGen's built-in defaults (the mlperf.conf embedded in LoadGen 6.0.17), read by ``conf``.
``settings``
    The settings of one run: mlperf.conf then user.conf then overrides, and what LoadGen
    derives from them (``TestSettings``, ``load_settings``; LoadGen's ``TestSettings`` and
    ``TestSettingsInternal``); the LLM keys, and Interactive as ``<model>-interactive``.
``rng``
    LoadGen's random streams (``std::mt19937`` and libstdc++'s distributions), bit for bit.
``traffic``
    The queries LoadGen issues: loaded sample set, sample indices, Server arrival times,
    when issuing stops.
``metrics``, ``percentile``, ``early_stopping``
    The results: LoadGen's percentiles and means, each scenario's headline metric, the
    early-stopping rule and the VALID / INVALID verdict.
``tokens``
    LLM runs: time to first token, time per output token, token throughput and their
    verdict (TTFT / TPOT limits, early stopping on each), gptj's inferred tokens/s.
``logs``
    LoadGen's output files, ``mlperf_log_summary.txt`` and ``mlperf_log_detail.txt``.
``peak_search``
    FindPeakPerformance: the highest Server QPS whose run is VALID.
"""
