"""The run summary table printed at the end of ``tongban run``."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from exchange.runner import RunResult

__all__ = ["print_summary"]


def print_summary(result: RunResult, console: Console | None = None) -> None:
    if console is None:
        console = Console()
        console.width = max(console.width, 120)
    report = result.report()
    table = Table(title=f"{result.scenario.name}: {result.duration_s:.1f} s, seed {result.scenario.seed}")
    for col in ("flow", "count", "ok", "failed by reason", "results", "throughput/s", "p50 ms", "p99 ms"):
        table.add_column(col, justify="left" if col in ("flow", "failed by reason", "results") else "right")
    for name, f in report["flows"].items():
        failed = ", ".join(f"{k} {v}" for k, v in f["failed_by_reason"].items()) or "-"
        results = ", ".join(f"{k} {v}" for k, v in f["results"].items()) or "-"
        table.add_row(name, str(f["count"]), str(f["ok"]), failed, results, f"{f['throughput_per_s']:.1f}",
                      f"{f['latency_ms']['p50']:.2f}", f"{f['latency_ms']['p99']:.2f}")
    console.print(table)
    rec = report["reconciliation"]
    rows = sum(report["ledger_rows"].values())
    console.print(f"planned {rec['planned']}, completed {rec['completed']}, lost {rec['lost']}; "
                  f"{rows} ledger rows in {len(report['ledger_rows'])} ledgers, every hash chain verified")
    console.print(f"report: {result.out_dir / 'report.json'}")
