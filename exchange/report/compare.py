"""``tongban compare``: several runs side by side, with overlaid charts.

Pure functions of the runs' ``report.json`` documents, plus writing PNGs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["comparison_rows", "draw_comparison"]

_COLUMNS = ("run", "topology", "requests", "ok %", "failed", "lost", "p50 ms", "p99 ms", "faults")


def _label(report: dict[str, Any], run_dir: Path) -> str:
    return str(report.get("scenario", {}).get("name") or run_dir.name)


def comparison_rows(runs: list[tuple[Path, dict[str, Any]]]) -> tuple[tuple[str, ...], list[list[str]]]:
    """One row per run: volume, success, loss and latency over all flows."""
    rows = []
    for run_dir, r in runs:
        flows = r.get("flows", {}).values()
        count = sum(f["count"] for f in flows)
        ok = sum(f["ok"] for f in flows)
        # overall percentiles need the merged histogram; show the worst flow's, never an average
        p50 = max((f["latency_ms"]["p50"] for f in flows), default=0.0)
        p99 = max((f["latency_ms"]["p99"] for f in flows), default=0.0)
        faults = ", ".join(f"{f['kind']} {f['at_s']:g}–{f['end_s'] if f.get('end_s') is not None else 'end'} s"
                           for f in r.get("faults", [])) or "-"
        rows.append([_label(r, run_dir), str(r.get("scenario", {}).get("topology", "star")), str(count),
                     f"{100 * ok / count:.1f}" if count else "-", str(count - ok),
                     str(r.get("reconciliation", {}).get("lost", "-")), f"{p50:.1f}", f"{p99:.1f}", faults])
    return _COLUMNS, rows


def draw_comparison(runs: list[tuple[Path, dict[str, Any]]], out_dir: Path) -> list[Path]:
    """Overlaid charts: successful throughput per second, and p99 per second."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for key, ylabel, name in (("ok", "successful requests per second", "compare_throughput.png"),
                              ("p99_ms", "p99 latency per second (ms)", "compare_p99.png")):
        fig, ax = plt.subplots(figsize=(9, 4.5))
        for run_dir, r in runs:
            ts = r.get("timeseries", {})
            ax.plot(ts.get("t_s", []), ts.get(key, []), label=_label(r, run_dir), linewidth=1.5)
        shown = set()
        for _, r in runs:
            for f in r.get("faults", []):
                span = (f["at_s"], f["end_s"] if f.get("end_s") is not None else f["at_s"])
                if span not in shown and span[1] > span[0]:
                    ax.axvspan(*span, color="grey", alpha=0.15)
                    shown.add(span)
        ax.set_xlabel("time since load start (s)")
        ax.set_ylabel(ylabel)
        ax.set_title(ylabel.capitalize() + " — fault windows shaded")
        ax.grid(alpha=0.3)
        ax.legend()
        path = out_dir / name
        fig.savefig(path, format="png", metadata={"Software": None}, bbox_inches="tight")
        plt.close(fig)
        written.append(path)
    return written
