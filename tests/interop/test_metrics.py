"""Prometheus metrics of running node processes (``--metrics-port``), scraped after
a real flow, and the Grafana dashboard in deploy/ checked against what is exported."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

import grpc
import pytest

from certs.pki import load_client_credentials
from tests.interop.conftest import ORIGIN, REPO, TARGET, Running
from tongban.v1 import header_pb2, services_pb2, services_pb2_grpc

pytestmark = pytest.mark.interop

parser = pytest.importorskip("prometheus_client.parser", reason="prometheus_client is not installed "
                             "(pip install prometheus-client)")

DASHBOARD = REPO / "deploy" / "grafana" / "tongban.json"
EXPORTED = {
    "tongban_envelopes_total": {"node", "direction", "flow", "outcome"},
    "tongban_envelope_bytes_total": {"node", "direction", "flow"},
    "tongban_exchanges_total": {"node", "flow", "outcome"},
    "tongban_exchange_duration_seconds_bucket": {"node", "flow", "le"},
    "tongban_exchange_duration_seconds_count": {"node", "flow"},
    "tongban_exchange_duration_seconds_sum": {"node", "flow"},
}


def _scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in parser.text_string_to_metric_families(text) for s in family.samples}


def _value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def _submit(running: Running) -> services_pb2.SubmitResponse:
    holder, cert_type, _ = running.holder()
    chain, key, root = load_client_credentials(running.pki)
    creds = grpc.ssl_channel_credentials(root_certificates=root, private_key=key, certificate_chain=chain)
    with grpc.secure_channel(running.provinces.endpoints[ORIGIN], creds,
                             options=[("grpc.ssl_target_name_override", f"node-{ORIGIN}.tongban.test")]) as ch:
        return services_pb2_grpc.WindowServiceStub(ch).Submit(services_pb2.SubmitRequest(
            flow="ecert.fetch", subject=header_pb2.Subject(holder_id=holder, cert_type=cert_type),
            purpose="interop test: metrics", audit=header_pb2.AuditContext(organisation="test", operator="pytest")),
            timeout=30)


def test_metrics_count_a_flow_at_every_node(running: Running) -> None:
    assert running.hub.metrics_url.startswith("http://127.0.0.1:")
    before_p, before_h = _scrape(running.provinces.metrics_url), _scrape(running.hub.metrics_url)
    reply = _submit(running)
    assert reply.outcome == "ok", reply.detail
    prov, hub = _scrape(running.provinces.metrics_url), _scrape(running.hub.metrics_url)

    def delta(now: dict, before: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
        return _value(now, name, **labels) - _value(before, name, **labels)

    assert delta(prov, before_p, "tongban_exchanges_total", node=ORIGIN, flow="ecert.fetch", outcome="ok") == 1
    assert delta(prov, before_p, "tongban_exchange_duration_seconds_count", node=ORIGIN, flow="ecert.fetch") == 1
    assert 0 < delta(prov, before_p, "tongban_exchange_duration_seconds_sum", node=ORIGIN, flow="ecert.fetch") < 30
    # the asker sent the request and received the answer; the answerer the other way round
    for node, direction in ((ORIGIN, "sent"), (ORIGIN, "received"), (TARGET, "received"), (TARGET, "sent")):
        assert delta(prov, before_p, "tongban_envelopes_total", node=node, direction=direction,
                     flow="ecert.fetch", outcome="ok") == 1, (node, direction)
        assert delta(prov, before_p, "tongban_envelope_bytes_total", node=node, direction=direction,
                     flow="ecert.fetch") > 100
    # the hub received and forwarded both; it originates no exchange
    for direction in ("received", "forwarded"):
        assert delta(hub, before_h, "tongban_envelopes_total", node="000000", direction=direction,
                     flow="ecert.fetch", outcome="ok") == 2
    assert _value(hub, "tongban_exchanges_total") == 0


def _dashboard_exprs() -> list[tuple[str, str]]:
    doc = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [(p["title"], t["expr"]) for p in doc["panels"] for t in p.get("targets", [])]


def test_dashboard_uses_only_exported_metrics_and_labels() -> None:
    exprs = _dashboard_exprs()
    assert len(exprs) >= 8
    titles = " / ".join(t for t, _ in exprs)
    for needed in ("Throughput by flow and outcome", "Latency p50 / p99 by flow", "Rejections by reason"):
        assert needed in titles
    for title, expr in exprs:
        for name, selector in re.findall(r"(tongban_[a-z_]+)(?:\{([^}]*)\})?", expr):
            assert name in EXPORTED, f"{title}: {name} is not exported"
            used = {m.split("=")[0].rstrip("!~") for m in re.findall(r'(\w+\s*[!=]~?)"', selector)}
            assert used <= EXPORTED[name], f"{title}: {name} has no label(s) {used - EXPORTED[name]}"
        for label in re.findall(r"by \(([^)]*)\)", expr):
            assert {x.strip() for x in label.split(",")} <= set().union(*EXPORTED.values()), title


def test_dashboard_queries_parse_with_promtool(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not found (Debian package prometheus): PromQL syntax not checked")
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"tongban:panel_{i}", "expr": expr.replace("$__rate_interval", "1m").replace("$__range", "15m")
         .replace("$node", ".*").replace("$flow", ".*")}
        for i, (_, expr) in enumerate(_dashboard_exprs())]}]}
    path = tmp_path / "rules.yml"
    path.write_text(json.dumps(rules), encoding="utf-8")  # JSON is YAML
    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=30,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
