"""conf/grafana-dashboard.json queries only metrics gripd exports: every metric name in its panels and
variables is scraped from a running gripd's prometheus_port (so a renamed or removed metric breaks
this test, not the operator's dashboard)."""

import json
import re
import urllib.request
from pathlib import Path

import pytest

from harness.proxy import unique_free_port

pytestmark = pytest.mark.gripd_only("gripd's own dashboard (some of its metrics are gripd's)")

DASHBOARD = Path(__file__).resolve().parents[2] / "conf" / "grafana-dashboard.json"
PROMQL_WORDS = {"sum", "max", "min", "avg", "rate", "irate", "increase", "by", "without", "instance",
                "label_values", "histogram_quantile", "le", "count"}


def queried_metrics(dash: dict) -> set:
    texts = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    texts += [v["query"]["query"] for v in dash.get("templating", {}).get("list", []) if v.get("type") == "query"]
    names = set()
    for text in texts:
        text = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\"", "", text)  # selectors, ranges, strings
        names |= {w for w in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text) if w not in PROMQL_WORDS}
    return names


def test_every_metric_the_dashboard_queries_is_exported(start_proxy, backend):
    dash = json.loads(DASHBOARD.read_text())
    wanted = queried_metrics(dash)
    assert len(wanted) >= 10 and "gripd_messages_delivered_total" in wanted  # the parse found them
    port = unique_free_port()
    start_proxy(routes=f"* {backend.addr}\n", conf={"handler": {"prometheus_port": str(port)}})
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    exported = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
    assert wanted - exported == set()


def test_panels_have_titles_ids_and_unique_positions():
    dash = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    spots = [(p["gridPos"]["x"], p["gridPos"]["y"]) for p in dash["panels"]]
    assert len(spots) == len(set(spots))
    assert all(p["title"] and p["targets"] for p in dash["panels"])
