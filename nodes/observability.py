"""Prometheus metrics for a node process (``tongban node … --metrics-port PORT``).

One :class:`PrometheusObserver` per process, with its own registry (never the
global one, so tests and several processes never share counters). It implements
:class:`nodes.core.Observer`; set it as ``node.core.observer`` on every node the
process runs, and every ledgered envelope and every exchange a province
originates is counted:

==========================================  =========  ===================================
metric                                      type       labels
==========================================  =========  ===================================
``tongban_envelopes_total``                 counter    node, direction, flow, outcome
``tongban_envelope_bytes_total``            counter    node, direction, flow
``tongban_exchanges_total``                 counter    node, flow, outcome
``tongban_exchange_duration_seconds``       histogram  node, flow
==========================================  =========  ===================================

``direction`` is the ledger's: sent, received, forwarded, rejected. ``outcome``
is ``ok`` or the error code of :mod:`exchange.errors` (``signature``,
``replay``, ``unavailable`` …): rejections by reason are
``tongban_envelopes_total{direction="rejected"}`` by ``outcome``. Exchanges are
counted where they start (the asking province's window), end to end.

prometheus_client is imported only when metrics are asked for; the exporter
binds 127.0.0.1 only. ``deploy/grafana/tongban.json`` is a dashboard over these
names.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from exchange.errors import ConfigError

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["LATENCY_BUCKETS_S", "MetricsServer", "PrometheusObserver", "start_metrics_server"]

log = logging.getLogger(__name__)

#: Exchange latency buckets, in seconds: loopback exchanges take 2-20 ms, a slow
#: link or a queue can take seconds, a timeout takes 10 s.
LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075,
    0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0,
)  # fmt: skip


def _prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError as e:
        raise ConfigError(
            "--metrics-port: expected the prometheus_client package, found it missing "
            "(pip install prometheus-client)"
        ) from e
    return prometheus_client


class PrometheusObserver:
    """Counts envelopes and exchanges into a registry of its own (an ``Observer``)."""

    def __init__(self, *, registry: CollectorRegistry | None = None) -> None:
        prom = _prometheus()
        self.registry: CollectorRegistry = registry if registry is not None else prom.CollectorRegistry()
        self._envelopes = prom.Counter(
            "tongban_envelopes", "Envelopes a node ledgered, by direction, flow and outcome "
            "(outcome is ok or the rejection reason).",
            ["node", "direction", "flow", "outcome"], registry=self.registry)
        self._bytes = prom.Counter(
            "tongban_envelope_bytes", "Bytes of serialised envelopes a node ledgered.",
            ["node", "direction", "flow"], registry=self.registry)
        self._exchanges = prom.Counter(
            "tongban_exchanges", "Exchanges a province originated for its windows, by flow and outcome.",
            ["node", "flow", "outcome"], registry=self.registry)
        self._duration = prom.Histogram(
            "tongban_exchange_duration_seconds", "End-to-end latency of originated exchanges, at the window.",
            ["node", "flow"], buckets=LATENCY_BUCKETS_S, registry=self.registry)

    def envelope(self, *, node: str, direction: str, flow: str, outcome: str, size_bytes: int) -> None:
        flow = flow or "unknown"
        self._envelopes.labels(node, direction, flow, outcome or "ok").inc()
        self._bytes.labels(node, direction, flow).inc(size_bytes)

    def exchange(self, *, node: str, flow: str, outcome: str, seconds: float) -> None:
        self._exchanges.labels(node, flow, outcome or "ok").inc()
        self._duration.labels(node, flow).observe(seconds)

    def exposition(self) -> bytes:
        """The current metrics in the Prometheus text format (what a scrape sees)."""
        return bytes(_prometheus().generate_latest(self.registry))


@dataclass
class MetricsServer:
    """A running exporter; ``close()`` stops it and frees the port."""

    host: str
    port: int
    _server: Any = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_metrics_server(observer: PrometheusObserver, *, port: int, host: str = "127.0.0.1") -> MetricsServer:
    """Serve ``observer``'s registry on http://host:port/metrics (port 0: any free port)."""
    prom = _prometheus()
    try:
        server, thread = prom.start_http_server(port, addr=host, registry=observer.registry)
    except OSError as e:
        raise ConfigError(f"--metrics-port {port}: expected a free port on {host}, found: {e}") from e
    bound = int(server.server_address[1])
    log.info("metrics on http://%s:%d/metrics", host, bound)
    return MetricsServer(host=host, port=bound, _server=server, _thread=thread)
