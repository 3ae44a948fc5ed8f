"""tools/otel_export.py: node ledgers become OpenTelemetry traces whose trace id is
the signed header's W3C trace id (optional: needs opentelemetry-sdk)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from exchange.ledger import Ledger, LedgerEntry
from tests.interop.conftest import REPO

pytestmark = pytest.mark.interop

pytest.importorskip("opentelemetry.sdk", reason="opentelemetry-sdk is not installed (pip install opentelemetry-sdk)")
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import SpanKind, StatusCode  # noqa: E402

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("otel_export", REPO / "tools" / "otel_export.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("otel_export", module)  # dataclasses look their module up there
    spec.loader.exec_module(sys.modules["otel_export"])
    return sys.modules["otel_export"]


def _ledgers(tmp_path: Path, *, fail: bool = False) -> list[Path]:
    """An ecert.fetch 440000 -> 000000 -> 220000 and back, as the three ledgers record it."""
    rows = {
        "440000": [(0, "sent", "440000", "m1", "000000"), (9, "received", "220000", "m2", "000000")],
        "000000": [(2, "received", "440000", "m1", "440000"), (3, "forwarded", "440000", "m1", "220000"),
                   (6, "received", "220000", "m2", "220000"), (7, "forwarded", "220000", "m2", "440000")],
        "220000": [(4, "received", "440000", "m1", "000000"), (5, "sent", "220000", "m2", "000000")],
    }
    paths = []
    for node, events in rows.items():
        path = tmp_path / f"{node}.sqlite"
        with Ledger(path, node_code=node) as led:
            for at_ms, direction, sender, mid, peer in events:
                bad = fail and node == "220000" and direction == "received"
                led.append(LedgerEntry(
                    at_ns=1_795_000_000_000_000_000 + at_ms * 1_000_000, direction="rejected" if bad else direction,
                    message_id=mid, payload_type="application/vnd.tongban.ecert-request.v1+proto", flow="ecert.fetch",
                    sender=sender, receiver="", peer=peer, envelope_sha256="0" * 64, size_bytes=600,
                    expires_at_ns=0, outcome="signature" if bad else "ok", reason="bad signature" if bad else "",
                    trace_id=TRACE, request_digest=""))
        paths.append(path)
    return paths


def test_one_flow_becomes_one_trace_with_the_header_trace_id(tmp_path: Path) -> None:
    tool = _tool()
    exporter = InMemorySpanExporter()
    traces = tool.collect(_ledgers(tmp_path))
    assert list(traces) == [TRACE]
    assert tool.export(traces, exporter) == 3
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"ecert.fetch from 440000", "ecert.fetch at 000000", "ecert.fetch at 220000"}
    root = spans["ecert.fetch from 440000"]
    assert {f"{s.context.trace_id:032x}" for s in spans.values()} == {TRACE}
    assert root.parent is None and root.kind == SpanKind.CLIENT
    for name in ("ecert.fetch at 000000", "ecert.fetch at 220000"):
        assert spans[name].parent is not None and spans[name].parent.span_id == root.context.span_id
        assert spans[name].kind == SpanKind.SERVER
    assert root.end_time - root.start_time == 9_000_000
    hub = spans["ecert.fetch at 000000"]
    assert hub.attributes["tongban.directions"] == "received,forwarded,received,forwarded"
    assert (hub.start_time, hub.end_time) == (root.start_time + 2_000_000, root.start_time + 7_000_000)


def test_a_rejection_marks_the_spans_as_errors(tmp_path: Path) -> None:
    tool = _tool()
    exporter = InMemorySpanExporter()
    tool.export(tool.collect(_ledgers(tmp_path, fail=True)), exporter)
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert spans["ecert.fetch at 220000"].status.status_code == StatusCode.ERROR
    assert spans["ecert.fetch at 220000"].attributes["tongban.outcome"] == "signature"
    assert spans["ecert.fetch from 440000"].status.status_code == StatusCode.ERROR
    assert spans["ecert.fetch at 000000"].status.status_code == StatusCode.UNSET
