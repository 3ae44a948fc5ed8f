"""The run summary table printed by ``tongban run`` and ``tongban report``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from exchange.metrics import fell_behind

__all__ = ["print_summary"]


def print_summary(report: dict[str, Any], out_dir: Path, console: Console | None = None) -> None:
    if console is None:
        console = Console(soft_wrap=True)
        console.width = max(console.width, 120)
    sc = report["scenario"]
    title = f"{sc['name']}: {report['duration_s']:.1f} s, seed {sc['seed']}"
    if report.get("interrupted"):
        title += " [bold red](interrupted: partial report)[/]"
    table = Table(title=title)
    for col in ("flow", "count", "ok", "failed by reason", "results", "throughput/s", "p50 ms", "p99 ms"):
        table.add_column(col, justify="left" if col in ("flow", "failed by reason", "results") else "right")
    for name, f in report["flows"].items():
        failed = ", ".join(f"{k} {v}" for k, v in f["failed_by_reason"].items()) or "-"
        results = ", ".join(f"{k} {v}" for k, v in f.get("results", {}).items()) or "-"
        table.add_row(name, str(f["count"]), str(f["ok"]), failed, results, f"{f['throughput_per_s']:.1f}",
                      f"{f['latency_ms']['p50']:.2f}", f"{f['latency_ms']['p99']:.2f}")
    console.print(table)
    rec = report["reconciliation"]
    ledgers = report.get("ledgers", {})
    rows = sum(v.get("rows") or 0 for v in ledgers.values())
    broken = [code for code, v in ledgers.items() if not v.get("verified")]
    chain = "every hash chain verified" if not broken else f"[bold red]broken ledgers: {', '.join(broken)}[/]"
    console.print(f"reconciliation: sent {rec['sent']}, delivered {rec['delivered']}, rejected {rec['rejected']}, "
                  f"failed {rec['failed']}, lost {rec['lost']}; {rows} ledger rows in {len(ledgers)} ledgers, {chain}")
    load = report.get("load") or {}
    if fell_behind(load.get("sent_late", 0), rec.get("fired", 0)):  # as the report says it
        lag = load["send_lag_ms"]
        console.print(f"[yellow]load generator behind plan: {load['sent_late']} of {rec.get('fired', '?')} requests "
                      f"sent {load['late_ms']:g} ms or more late (p99 {lag['p99']:.1f} ms, max {lag['max']:.1f} ms)"
                      + (f", {load['busy_cores']:.2f} of {load['cores']} cores busy" if "busy_cores" in load else "")
                      + "; latencies include it[/]")
    for f in report.get("faults", []):
        end = f"{f['end_s']:g}" if f.get("end_s") is not None else "end"
        console.print(f"fault: {f['kind']} {','.join(f['nodes'])} from {f['at_s']:g} s to {end}")
    console.print(f"report: {out_dir / 'report.json'}")
