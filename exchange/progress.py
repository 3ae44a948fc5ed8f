"""Live progress of a run on the terminal (rich), fed by the load generators.

Shows elapsed and total time, current throughput, running p99 (from a merged
histogram), failures and the faults active now. Off a terminal it prints a plain
line every few seconds instead.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from exchange.metrics import FlowStats, stats_in

__all__ = ["LiveProgress"]


class LiveProgress:
    """Aggregates per-second progress events from every load generator."""

    def __init__(self, *, total_s: float, console: Console | None = None, enabled: bool = True) -> None:
        self.total_s = total_s
        self.console = console or Console(stderr=True)
        self.enabled = enabled
        self.running = FlowStats("all")
        self.last_second: dict[int, FlowStats] = {}
        #: how many load generators feed this view, and how many have reported each recent second
        self.sources = 1
        self._reports: dict[int, int] = {}
        self.elapsed_s = 0.0
        self.active_faults: list[str] = []
        self._live: Live | None = None
        self._last_plain = 0.0

    def __enter__(self) -> LiveProgress:
        if self.enabled and self.console.is_terminal:
            self._live = Live(self._render(), console=self.console, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.__exit__(*exc)
            self._live = None

    def phase(self, text: str) -> None:
        if self.enabled:
            self.console.print(f"· {text}")

    def event(self, doc: dict[str, Any]) -> None:
        """One progress line from a load generator."""
        second = int(doc["t"])
        self._reports[second] = self._reports.get(second, 0) + 1
        stats = doc.get("stats")
        if stats:
            s = FlowStats.from_json(stats)
            self.running.merge(s)
            stats_in(self.last_second, second).merge(s)
        for t in [t for t in self._reports if t < second - 2]:  # only the last second is shown
            del self._reports[t]
            self.last_second.pop(t, None)

    def tick(self, elapsed_s: float, active_faults: Sequence[str]) -> None:
        self.elapsed_s = elapsed_s
        self.active_faults = list(active_faults)
        if self._live is not None:
            self._live.update(self._render())
        elif self.enabled and time.monotonic() - self._last_plain >= 5:
            self._last_plain = time.monotonic()
            self.console.print(self._line())

    def _numbers(self) -> tuple[int, int, float, int]:
        done = self.running.count
        failed = done - self.running.ok
        # the last whole second every load generator has reported: a line for second t comes
        # just after t + 1, and a busy one sends it later still (0 ok/s would be a lie)
        past = [t for t in self._reports if t <= int(self.elapsed_s) - 1]
        whole = [t for t in past if self._reports[t] >= self.sources]
        last = self.last_second.get(max(whole or past)) if past else None
        rate = last.ok if last else 0
        return done, failed, self.running.percentile_ms(99), rate

    def _line(self) -> str:
        done, failed, p99, rate = self._numbers()
        faults = ", ".join(self.active_faults) or "none"
        return (f"  {self.elapsed_s:5.1f}/{self.total_s:g} s  {rate} ok/s  done {done}  failed {failed}  "
                f"p99 {p99:.1f} ms  faults: {faults}")

    def _render(self) -> Table:
        done, failed, p99, rate = self._numbers()
        t = Table.grid(padding=(0, 2))
        t.add_row("elapsed", f"{self.elapsed_s:.1f} / {self.total_s:g} s")
        t.add_row("throughput", f"{rate} ok/s")
        t.add_row("completed", str(done))
        t.add_row("failures", f"[red]{failed}[/red]" if failed else "0")
        t.add_row("running p99", f"{p99:.1f} ms")
        t.add_row("active faults", ", ".join(self.active_faults) or "none")
        return t
