"""Latency and outcome accounting: HdrHistograms that merge across processes.

Percentiles are always read from a merged histogram, never averaged.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hdrh.histogram import HdrHistogram

__all__ = ["LATE_SHARE", "LATE_US", "FlowStats", "SendLag", "fell_behind", "new_histogram", "record_us", "stats_in"]

_K = TypeVar("_K")
#: 1 µs to 10 minutes at 3 significant digits.
_LOWEST_US, _HIGHEST_US, _DIGITS = 1, 600_000_000, 3
#: A load generator that sends a request this far (µs) behind its planned time sent it late:
#: ten times the lag of an idle one (p99 2.4 ms on the quickstart scenario).
LATE_US = 10_000
#: With this share of the requests sent late or more, the load generator fell behind its plan.
LATE_SHARE = 0.01


def new_histogram() -> HdrHistogram:
    return HdrHistogram(_LOWEST_US, _HIGHEST_US, _DIGITS)


def record_us(h: HdrHistogram, value_us: int) -> None:
    """Record ``value_us`` into a histogram from ``new_histogram``, clamped to its range."""
    h.record_value(min(max(value_us, _LOWEST_US), _HIGHEST_US))


def fell_behind(sent_late: int, fired: int) -> bool:
    """Whether a load generator that sent ``sent_late`` of ``fired`` requests late fell behind its plan."""
    return sent_late > 0 and sent_late >= LATE_SHARE * fired


@dataclass
class SendLag:
    """How far behind its planned time each request was sent (µs), and how many ``LATE_US`` or more."""

    lag_us: HdrHistogram = field(default_factory=new_histogram)
    late: int = 0

    def record(self, lag_us: int) -> None:
        record_us(self.lag_us, lag_us)
        self.late += lag_us >= LATE_US

    def to_json(self) -> dict[str, Any]:
        """The load generator's result keys ``send_lag`` (encoded histogram) and ``sent_late``."""
        return {"send_lag": self.lag_us.encode().decode("ascii") if self.lag_us.get_total_count() else "",
                "sent_late": self.late}

    def merge_json(self, doc: dict[str, Any]) -> None:
        """Add a load generator's result (the keys of ``to_json``)."""
        if doc.get("send_lag"):
            self.lag_us.add(HdrHistogram.decode(doc["send_lag"]))
        self.late += int(doc.get("sent_late", 0))

    def summary(self) -> dict[str, Any]:
        """report.json's ``load``."""
        h = self.lag_us
        lag = {"p50": 0.0, "p99": 0.0, "max": 0.0}
        if h.get_total_count():
            lag = {"p50": h.get_value_at_percentile(50) / 1000, "p99": h.get_value_at_percentile(99) / 1000,
                   "max": h.get_max_value() / 1000}
        return {"send_lag_ms": {k: round(v, 3) for k, v in lag.items()}, "sent_late": self.late,
                "late_ms": LATE_US / 1000}


@dataclass
class FlowStats:
    """Counts by outcome and a latency histogram (µs) for one flow."""

    flow: str
    outcomes: Counter[str] = field(default_factory=Counter)
    results: Counter[str] = field(default_factory=Counter)
    latency_us: HdrHistogram = field(default_factory=new_histogram)

    def record(self, outcome: str, latency_us: int, result: str = "") -> None:
        self.outcomes[outcome] += 1
        if result:
            self.results[result] += 1
        if outcome == "ok":
            record_us(self.latency_us, latency_us)

    @property
    def count(self) -> int:
        return sum(self.outcomes.values())

    @property
    def ok(self) -> int:
        return self.outcomes.get("ok", 0)

    def failed_by_reason(self) -> dict[str, int]:
        return {k: v for k, v in sorted(self.outcomes.items()) if k != "ok"}

    def merge(self, other: FlowStats) -> None:
        self.outcomes.update(other.outcomes)
        self.results.update(other.results)
        self.latency_us.add(other.latency_us)

    def percentile_ms(self, p: float) -> float:
        if self.latency_us.get_total_count() == 0:
            return 0.0
        return round(self.latency_us.get_value_at_percentile(p) / 1000.0, 3)

    def to_json(self) -> dict[str, Any]:
        return {
            "flow": self.flow,
            "outcomes": dict(self.outcomes),
            "results": dict(self.results),
            "histogram": self.latency_us.encode().decode("ascii") if self.latency_us.get_total_count() else "",
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> FlowStats:
        s = cls(flow=doc["flow"], outcomes=Counter(doc["outcomes"]), results=Counter(doc.get("results", {})))
        if doc.get("histogram"):
            s.latency_us.add(HdrHistogram.decode(doc["histogram"]))
        return s

    def cdf(self) -> list[list[float]]:
        """[latency ms, fraction at or below] points for a CDF chart."""
        h = self.latency_us
        if h.get_total_count() == 0:
            return []
        points = [0.1, 0.5, *range(1, 100), 99.5, 99.9, 99.99, 100]
        return [[round(h.get_value_at_percentile(p) / 1000.0, 3), p / 100] for p in points]

    def summary(self, duration_s: float) -> dict[str, Any]:
        """The report.json shape of one flow."""
        h = self.latency_us
        return {
            "count": self.count,
            "ok": self.ok,
            "failed_by_reason": self.failed_by_reason(),
            "results": dict(sorted(self.results.items())),
            "throughput_per_s": round(self.ok / duration_s, 2) if duration_s > 0 else 0.0,
            "latency_ms": {
                "p50": self.percentile_ms(50),
                "p90": self.percentile_ms(90),
                "p99": self.percentile_ms(99),
                "p999": self.percentile_ms(99.9),
                "max": round(h.get_max_value() / 1000.0, 3) if h.get_total_count() else 0.0,
            },
            "cdf": self.cdf(),
        }


def stats_in(table: dict[_K, FlowStats], key: _K) -> FlowStats:
    """``table[key]``, made (empty, named ``str(key)``) the first time it is asked for.

    Not ``table.setdefault(key, FlowStats(key))``: that makes a histogram (170 KiB, about
    130 µs) on every call and throws it away; the load generator did it twice a request,
    a tenth of its samples at 520 requests/s (bench/results/profile-notes.md).
    """
    s = table.get(key)
    if s is None:
        s = table[key] = FlowStats(str(key))
    return s
