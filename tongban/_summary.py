"""The run summary table printed by ``tongban run`` and ``tongban report``.

It prints what the report has: a section that is missing or null (an interrupted run, a
hand-made report.json) shows as ``-`` or is left out. Every string from the report is
escaped, so a scenario named ``outage[v2]`` prints as such instead of as rich markup.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from exchange.metrics import fell_behind
from exchange.report._schema import array, counts, num, obj

__all__ = ["print_summary"]

_NONE = "-"


def _fixed(x: Any, digits: int) -> str:
    v = num(x)
    return _NONE if v is None else f"{v:.{digits}f}"


def _count(x: Any) -> str:
    v = num(x)
    return _NONE if v is None else str(int(v))


def _pairs(d: Any) -> str:
    return escape(", ".join(f"{k} {_count(v)}" for k, v in obj(d).items())) or _NONE


def _fault_line(f: dict[str, Any]) -> str:
    nodes = array(f.get("nodes"))
    at, end = num(f.get("at_s")), num(f.get("end_s"))
    text = f"fault: {f.get('kind') or 'fault'}" + (f" {','.join(str(n) for n in nodes)}" if nodes else "")
    if at is not None:
        text += f" from {at:g} s to " + (f"{end:g} s" if end is not None else "the end of the run")
    return escape(text)


def print_summary(report: dict[str, Any], out_dir: Path, console: Console | None = None) -> None:
    if console is None:
        console = Console(soft_wrap=True)
        console.width = max(console.width, 120)
    report = obj(report)
    sc = obj(report.get("scenario"))
    duration = num(report.get("duration_s"))
    known = ([f"{duration:.1f} s"] if duration is not None else []) + (
        [f"seed {sc['seed']}"] if sc.get("seed") is not None else [])
    title = escape(str(sc.get("name") or "unnamed scenario") + (": " + ", ".join(known) if known else ""))
    if report.get("interrupted"):
        title += " [bold red](interrupted: partial report)[/]"
    flows = {str(name): obj(f) for name, f in obj(report.get("flows")).items()}
    if flows:
        table = Table(title=title)
        for col in ("flow", "count", "ok", "failed by reason", "results", "throughput/s", "p50 ms", "p99 ms"):
            table.add_column(col, justify="left" if col in ("flow", "failed by reason", "results") else "right")
        for name, f in flows.items():
            lat = obj(f.get("latency_ms"))
            table.add_row(escape(name), _count(f.get("count")), _count(f.get("ok")), _pairs(f.get("failed_by_reason")),
                          _pairs(f.get("results")), _fixed(f.get("throughput_per_s"), 1),
                          _fixed(lat.get("p50"), 2), _fixed(lat.get("p99"), 2))
        console.print(table)
    else:
        console.print(title)
        console.print("flows: no request completed")
    rec = obj(report.get("reconciliation"))
    ledgers = {str(code): obj(v) for code, v in obj(report.get("ledgers")).items()}
    if rec or ledgers:
        line = "reconciliation: " + ", ".join(f"{k} {_count(rec.get(k))}"
                                              for k in ("sent", "delivered", "rejected", "failed", "lost"))
        at_window = counts(rec.get("at_window"))
        if at_window:  # refused or unreachable windows sent nothing on: outside the counts above
            line += "; failed at the window, outside these: " + escape(", ".join(f"{k} {v}" for k, v in at_window.items()))
            if "window_deadline_exceeded" in at_window:
                line += " (one the window did not answer in time may have gone on, and is then counted)"
        if ledgers:
            rows = sum(int(num(v.get("rows")) or 0) for v in ledgers.values())
            broken = [code for code, v in ledgers.items() if v.get("verified") is not True]
            chain = ("every hash chain verified" if not broken
                     else f"[bold red]broken ledgers: {escape(', '.join(broken))}[/]")
            line += f"; {rows} ledger rows in {len(ledgers)} ledgers, {chain}"
        console.print(line)
    load = obj(report.get("load"))
    late, fired = num(load.get("sent_late")) or 0, num(rec.get("fired")) or 0
    if fell_behind(int(late), int(fired)):  # as the report says it
        lag = obj(load.get("send_lag_ms"))
        busy, cores = num(load.get("busy_cores")), num(load.get("cores"))
        console.print(f"[yellow]load generator behind plan: {int(late)} of {int(fired)} requests "
                      f"sent {num(load.get('late_ms')) or 10:g} ms or more late (p99 {_fixed(lag.get('p99'), 1)} ms, "
                      f"max {_fixed(lag.get('max'), 1)} ms)"
                      + (f", {busy:.2f} of {cores:g} cores busy" if busy is not None and cores is not None else "")
                      + "; latencies include it[/]")
    for f in array(report.get("faults")):
        console.print(_fault_line(obj(f)))
    console.print(f"report: {escape(str(out_dir / 'report.json'))}")
