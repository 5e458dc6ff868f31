"""The four LoadGen scenarios: their names, how they issue queries, what they are judged on.

``SCENARIOS`` lists them in the order of LoadGen's ``TestScenario``: SingleStream,
MultiStream, Server, Offline.

* SingleStream and MultiStream are closed loops (``CLOSED_LOOP``): the next query is issued
  when the previous one completes (a query of one sample, or of ``samples_per_query``
  samples in MultiStream). Their metric is a latency percentile.
* Server is open (``OPEN_LOOP``): queries arrive at Poisson times at the target QPS whatever
  the system does. Its metric is a rate, valid while the latency percentile stays within the
  model's bound.
* Offline issues one query that holds every sample. Its metric is samples per second.

Server and Offline are sized by a target rate (``target_qps``) and judged on throughput
(``THROUGHPUT``).

The official metrics (``METRIC``, ``METRIC_PERCENTILE``): SingleStream the 90th percentile
sample latency, MultiStream the 99th percentile query latency, Server the queries per second
whose 99th percentile latency stays within the bound, Offline samples per second. These
percentiles are the scenarios' ``target_latency_percentile`` in LoadGen's mlperf.conf
(``*.SingleStream``, ``*.MultiStream``, ``*.Server``); a model may have its own there
(pointpainting's SingleStream: 99.9), which ``TestSettings.target_latency_percentile`` holds
for a run.
"""

from __future__ import annotations

SINGLE_STREAM = "SingleStream"
MULTI_STREAM = "MultiStream"
SERVER = "Server"
OFFLINE = "Offline"

#: The scenarios in LoadGen's order.
SCENARIOS: tuple[str, ...] = (SINGLE_STREAM, MULTI_STREAM, SERVER, OFFLINE)
#: Closed loops: a query is issued when the previous one completes; judged on latency.
CLOSED_LOOP: tuple[str, ...] = (SINGLE_STREAM, MULTI_STREAM)
#: Open loop: queries arrive on LoadGen's schedule, whatever the system does.
OPEN_LOOP: tuple[str, ...] = (SERVER,)
#: Sized by a target rate and judged on throughput.
THROUGHPUT: tuple[str, ...] = (SERVER, OFFLINE)

#: The latency percentile of each scenario's metric (Offline's metric is a rate).
METRIC_PERCENTILE: dict[str, float] = {SINGLE_STREAM: 0.90, MULTI_STREAM: 0.99, SERVER: 0.99}
#: Each scenario's official metric, in words.
METRIC: dict[str, str] = {
    SINGLE_STREAM: "p90 latency of samples",
    MULTI_STREAM: "p99 latency of queries",
    SERVER: "queries/s with the p99 latency within the bound",
    OFFLINE: "samples/s",
}


def percentile_label(scenario: str) -> str:
    """``"p90"`` / ``"p99"``: the percentile of ``scenario``'s latency metric, as tables print it."""
    return f"p{METRIC_PERCENTILE[scenario] * 100:g}"
