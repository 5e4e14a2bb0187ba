"""deploy/grafana-dashboard.json queries only what a real gateway exports on /metrics.

A gateway is started, searched, downloaded from and refused a wrong token; its /metrics are
scraped with the metrics token and parsed with prometheus-client's own parser. Every metric
name of every PromQL expression of the dashboard must be one of the samples the families
exported make (a counter ``x``: ``x_total``; a histogram: ``x_bucket``, ``x_count``,
``x_sum``; a gauge: ``x``), every label it selects or groups by must be one those samples
carry, and ``rate``/``increase`` only ever apply to counters.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port
from tests.web.conftest import TOKEN, Archive, Gateway, serve_args

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana-dashboard.json"
METRICS_TOKEN = "metrics-token-for-the-dashboard-3e9a"
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
}
TARGET_LABELS = {"instance", "job"}
"""Labels Prometheus adds to every scraped sample."""
_METRIC = re.compile(r"\b(gateway_[A-Za-z0-9_:]+)")
_SELECTOR = re.compile(r"\b(gateway_[A-Za-z0-9_:]+)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"")
_GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
_COUNTER_FUNCTION = re.compile(r"\b(?:rate|irate|increase)\s*\(\s*(gateway_[A-Za-z0-9_:]+)")


def load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def expressions(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression: panels' targets and the template variables' queries."""
    found = [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        if variable["type"] == "query":
            text = query["query"] if isinstance(query, dict) else query
            found.append(re.sub(r"^label_values\((.*),\s*\w+\)$", r"\1", text))
    return found


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, archive: Archive) -> dict[str, set[str]]:
    """Sample names a real gateway exports, each with the labels its samples carry."""
    folder = tmp_path_factory.mktemp("dashboard")
    token_file = folder / "metrics-token"
    token_file.write_text(METRICS_TOKEN + "\n")
    token_file.chmod(0o600)
    # A NAS that is down, first in --path: each search counts a store error, then the archive
    # answers.
    nas = f"smb://user@127.0.0.1:{free_port()}/recordings?timeout=2"
    args = serve_args(archive, "--metrics-token-file", str(token_file))
    args[args.index("--path") + 1] = f"{nas},{archive.root}"
    gw = Gateway(args, folder / "gw.log", {"GATEWAY_SMB_PASSWORD": "not-used-anywhere"})
    try:
        for link in gw.links(archive.call_with(1)):  # a search and a download
            assert requests.get(link["url"], timeout=10).status_code == 200
        refused = requests.post(f"{gw.url}/search/", data={"token": "wrong"}, timeout=10)
        assert refused.status_code == 401
        scrape = requests.get(
            f"{gw.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10
        )
        assert scrape.status_code == 200
    finally:
        gw.stop()
    names: dict[str, set[str]] = defaultdict(set)
    for family in text_string_to_metric_families(scrape.text):
        for suffix in SUFFIXES.get(family.type, ()):
            names[family.name + suffix]  # exported even before its first sample
        for sample in family.samples:
            names[sample.name].update(sample.labels)
    assert "gateway_search_seconds_bucket" in names  # the scrape is what the test thinks
    assert "source" in names["gateway_store_errors_total"]
    return dict(names)


def test_the_dashboard_is_an_importable_dashboard() -> None:
    dashboard = load()
    assert dashboard["uid"] == "recording-gateway"
    assert dashboard["title"]
    assert dashboard["schemaVersion"] >= 30
    [source] = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert source["query"] == "prometheus"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"]
            assert panel["title"]


def test_every_metric_the_dashboard_queries_is_exported(exported: dict[str, set[str]]) -> None:
    for expr in expressions(load()):
        used = _METRIC.findall(expr)
        assert used, f"no gateway metric in {expr!r}"
        missing = [name for name in used if name not in exported]
        assert not missing, f"{expr!r} uses {missing}, not exported by the gateway"


def test_counter_functions_only_apply_to_counters(exported: dict[str, set[str]]) -> None:
    for expr in expressions(load()):
        for name in _COUNTER_FUNCTION.findall(expr):
            assert name.endswith(("_total", "_bucket", "_count", "_sum")), expr
        if "histogram_quantile" in expr:
            assert "_bucket" in expr, expr


def test_every_label_the_dashboard_uses_is_exported(exported: dict[str, set[str]]) -> None:
    for expr in expressions(load()):
        labels_here = set().union(*(exported[name] for name in _METRIC.findall(expr)))
        for name, matchers in _SELECTOR.findall(expr):
            for label in _MATCHER.findall(matchers):
                assert label in exported[name] | TARGET_LABELS, f"{label} of {name} in {expr!r}"
        for grouping in _GROUPING.findall(expr):
            for label in filter(None, (part.strip() for part in grouping.split(","))):
                assert label in labels_here | TARGET_LABELS, f"{label} in {expr!r}"


def test_the_panels_cover_what_operators_watch() -> None:
    text = " ".join(expressions(load()))
    for metric in (
        "gateway_search_seconds_count",  # searches per source
        "gateway_search_seconds_bucket",  # their latency
        "gateway_requests_total",  # downloads, requests by route and status
        "gateway_bytes_streamed_total",
        "gateway_store_errors_total",
        "gateway_auth_blocked_total",  # throttled clients
    ):
        assert metric in text
    assert TOKEN not in DASHBOARD.read_text()
