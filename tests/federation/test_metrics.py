"""A hub's ``/metrics`` time its peers like its own sources, and count the peers that fail, so
that the dashboard's per-source panels (deploy/grafana-dashboard.json) show every site."""

from __future__ import annotations

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.federation.conftest import ONLY_B, Sites, StartHub, closed_port_url, peer, peer_env

METRICS_TOKEN = "hub-metrics-token-4e8a1c"


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = requests.get(
        f"{url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }


def test_peers_are_timed_and_their_failures_counted(sites: Sites, start_hub: StartHub) -> None:
    down_url = closed_port_url()
    down = peer(down_url, "down")
    env = {**peer_env(DOWN="token-of-the-down-site"), "GATEWAY_METRICS_TOKEN": METRICS_TOKEN}
    hub = start_hub(down, peer(sites.url("b"), "b"), local=False, env=env)
    assert hub.search(ONLY_B)["files"]
    got = samples(hub.url)
    ids = {dict(labels)["source"] for name, labels in got if name == "gateway_search_seconds_count"}
    assert len(ids) == 2  # both sites, the one down too
    down_id = f"gateway+{down_url}"
    assert down_id in ids
    assert got[("gateway_store_errors_total", (("error", "SiteUnavailable"), ("source", down_id)))]
