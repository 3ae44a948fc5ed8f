"""Export tongban flows from node ledgers as OpenTelemetry traces (optional tool).

Every hop of one flow carries the same W3C trace id in its signed header, and every
node's ledger records it. This tool reads ledgers (``<code>.sqlite`` in a run's
``data/`` directory, or the data directory of ``tongban node`` processes) and turns
each trace id into one OpenTelemetry trace whose trace id *is* the header's:

- a CLIENT span for the asking node (the request's signer), from the first to the
  last ledgered envelope of the trace (``tongban.flow``, ``tongban.node``,
  ``tongban.outcome``; ``tongban.directions`` is empty when the asker's ledger was
  not given, e.g. an outside client such as examples/node);
- a SERVER child span per other node that ledgered the trace (the hub: received →
  forwarded; the answering province: received → sent), with the hop's directions.

Span ids are derived from (trace id, node) so an export is reproducible. Exporters:
the console (default, JSON per span) or OTLP over HTTP (``--otlp URL``, needs
``pip install opentelemetry-exporter-otlp-proto-http``). Needs ``opentelemetry-sdk``;
nothing in tongban imports it.

    python tools/otel_export.py runs/quickstart-*/data/*.sqlite --limit 5
    python tools/otel_export.py runs/dev/world/*.sqlite --trace 01c5b5e1326176aad27d46a4f3e8603b
    python tools/otel_export.py runs/X/data/*.sqlite --otlp http://127.0.0.1:4318/v1/traces
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

try:
    from opentelemetry import trace as otel_trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor, SpanExporter
    from opentelemetry.sdk.trace.id_generator import IdGenerator
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError as e:  # pragma: no cover - exercised where the SDK is absent
    raise SystemExit(f"otel_export: needs opentelemetry-sdk (pip install opentelemetry-sdk): {e}") from None

from exchange.ledger import LedgerEntry, read_entries  # noqa: E402

__all__ = ["Hop", "collect", "export", "main"]


@dataclass(frozen=True, slots=True)
class Hop:
    """One ledger row of a trace, with the node whose ledger it is."""

    node: str
    entry: LedgerEntry


def collect(ledgers: Iterable[Path], *, trace_id: str | None = None,
            skip_flows: frozenset[str] = frozenset({"registration"})) -> dict[str, list[Hop]]:
    """Ledger rows grouped by trace id, oldest first; rows without a trace id, and
    traces of ``skip_flows`` (a node registering), are left out."""
    traces: dict[str, list[Hop]] = defaultdict(list)
    for path in ledgers:
        node = path.stem
        for row in read_entries(path, trace_id=trace_id):
            if row.entry.trace_id and row.entry.flow not in skip_flows:
                traces[row.entry.trace_id].append(Hop(node, row.entry))
    for hops in traces.values():
        hops.sort(key=lambda h: h.entry.at_ns)
    return dict(traces)


class _FixedIds(IdGenerator):
    """Trace id from the header, span ids from (trace id, node)."""

    def __init__(self) -> None:
        self.trace_id = 0
        self.node = ""

    def generate_trace_id(self) -> int:
        return self.trace_id

    def generate_span_id(self) -> int:
        digest = hashlib.sha256(f"{self.trace_id:032x}/{self.node}".encode()).digest()
        return int.from_bytes(digest[:8], "big") or 1


def _origin(hops: Sequence[Hop]) -> str:
    """The asking node: the signer of the earliest envelope (the request)."""
    return hops[0].entry.sender or hops[0].node


def export(traces: dict[str, list[Hop]], exporter: SpanExporter) -> int:
    """Emit every trace through ``exporter``; returns the number of spans."""
    ids = _FixedIds()
    provider = TracerProvider(resource=Resource.create({"service.name": "tongban"}), id_generator=ids)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tongban.ledger")
    spans = 0
    try:
        for trace_hex, hops in traces.items():
            ids.trace_id = int(trace_hex, 16)
            origin = _origin(hops)
            by_node: dict[str, list[Hop]] = defaultdict(list)
            for h in hops:
                by_node[h.node].append(h)
            mine = by_node.pop(origin, [])  # empty when the asker's ledger was not given (or it has none)
            flow = next((h.entry.flow for h in hops if h.entry.flow), "unknown")
            failed = [h.entry for h in hops if h.entry.outcome not in ("ok", "retry")]
            ids.node = origin
            root = tracer.start_span(f"{flow} from {origin}", kind=SpanKind.CLIENT, start_time=hops[0].entry.at_ns,
                                     attributes=_attrs(origin, flow, mine, hops))
            if failed:
                root.set_status(Status(StatusCode.ERROR, f"{failed[0].outcome}: {failed[0].reason}"[:200]))
            parent = otel_trace.set_span_in_context(root)
            for node, rows in by_node.items():
                ids.node = node
                child = tracer.start_span(f"{flow} at {node}", context=parent, kind=SpanKind.SERVER,
                                          start_time=rows[0].entry.at_ns, attributes=_attrs(node, flow, rows, hops))
                bad = [h.entry for h in rows if h.entry.outcome not in ("ok", "retry")]
                if bad:
                    child.set_status(Status(StatusCode.ERROR, f"{bad[0].outcome}: {bad[0].reason}"[:200]))
                child.end(end_time=max(rows[-1].entry.at_ns, rows[0].entry.at_ns + 1))
                spans += 1
            root.end(end_time=max(hops[-1].entry.at_ns, hops[0].entry.at_ns + 1))
            spans += 1
    finally:
        provider.shutdown()
    return spans


def _attrs(node: str, flow: str, rows: Sequence[Hop], hops: Sequence[Hop]) -> dict[str, Any]:
    return {
        "tongban.node": node,
        "tongban.flow": flow,
        "tongban.directions": ",".join(h.entry.direction for h in rows),
        "tongban.outcome": next((h.entry.outcome for h in rows if h.entry.outcome not in ("ok", "retry")), "ok"),
        "tongban.message_ids": ",".join(sorted({h.entry.message_id for h in rows})),
        "tongban.hops": len(hops),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="otel_export", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="examples:\n" + __doc__.rsplit("\n\n", 1)[1])
    p.add_argument("ledgers", nargs="+", type=Path, metavar="LEDGER.sqlite")
    p.add_argument("--trace", metavar="TRACE_ID", help="only this trace id (32 hex)")
    p.add_argument("--limit", type=int, default=0, help="at most N traces (0: all)")
    p.add_argument("--otlp", metavar="URL", help="OTLP/HTTP traces endpoint instead of the console")
    a = p.parse_args(argv)
    traces = collect(a.ledgers, trace_id=a.trace)
    if a.limit:
        traces = dict(list(traces.items())[: a.limit])
    if not traces:
        print("otel_export: no trace found in the given ledgers", file=sys.stderr)
        return 1
    exporter: SpanExporter
    if a.otlp:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            print("otel_export: --otlp needs pip install opentelemetry-exporter-otlp-proto-http", file=sys.stderr)
            return 2
        exporter = OTLPSpanExporter(endpoint=a.otlp)
    else:
        exporter = ConsoleSpanExporter()
    n = export(traces, exporter)
    print(f"otel_export: {len(traces)} trace(s), {n} span(s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
