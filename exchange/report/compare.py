"""``tongban compare``: several runs side by side, with overlaid charts.

Pure functions of the runs' ``report.json`` documents, plus writing PNGs. Each document
must be a report.json of this schema version (:func:`exchange.report._schema.expect_report`,
a ConfigError naming the file otherwise); any other section may be missing or null, and
its cells then read ``-``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from exchange.report._axes import latency_gaps
from exchange.report._schema import array, expect_report, num, obj
from exchange.report.charts import load_end

__all__ = ["comparison_rows", "draw_comparison", "run_labels"]

_COLUMNS = ("run", "topology", "requests", "ok %", "failed", "lost", "p50 ms", "p99 ms", "faults")
_NONE = "-"

Runs = Sequence[tuple[Path, Any]]


def _checked(runs: Runs) -> list[tuple[Path, dict[str, Any]]]:
    return [(Path(d), expect_report(r, Path(d) / "report.json")) for d, r in runs]


def run_labels(runs: Runs) -> list[str]:
    """One label per run: its scenario's name, with its directory's name when two runs share it.

    ``quickstart`` alone; ``quickstart (quickstart-20261208-0612)`` beside another quickstart
    run; the directory's path as given when even the directory names collide.
    """
    runs = _checked(runs)
    names = [str(obj(r.get("scenario")).get("name") or d.name) for d, r in runs]
    repeated = Counter(names)

    def qualified(where: Callable[[Path], str]) -> list[str]:
        return [f"{n} ({where(d)})" if repeated[n] > 1 and where(d) != n else n
                for n, (d, _) in zip(names, runs, strict=True)]

    labels = qualified(lambda d: d.name)
    if len(set(labels)) < len(labels):
        labels = qualified(str)
    seen: Counter[str] = Counter()
    total = Counter(labels)
    out = []
    for label in labels:  # the same directory given twice
        seen[label] += 1
        out.append(f"{label} #{seen[label]}" if total[label] > 1 else label)
    return out


def _fault(f: dict[str, Any]) -> str:
    kind, at, end = str(f.get("kind") or "fault"), num(f.get("at_s")), num(f.get("end_s"))
    if at is None:
        return kind
    return f"{kind} {at:g}–{end:g} s" if end is not None else f"{kind} {at:g} s–end of run"


def _worst(flows: list[dict[str, Any]], key: str) -> str:
    # overall percentiles need the merged histogram; show the worst flow's, never an average
    values = [v for f in flows if (v := num(obj(f.get("latency_ms")).get(key))) is not None]
    return f"{max(values):.1f}" if values else _NONE


def comparison_rows(runs: Runs) -> tuple[tuple[str, ...], list[list[str]]]:
    """One row per run: volume, success, loss and latency over all flows."""
    rows = []
    for (_, r), label in zip(_checked(runs), run_labels(runs), strict=True):
        sc = obj(r.get("scenario"))
        has_flows = isinstance(r.get("flows"), dict)
        flows = [obj(f) for f in obj(r.get("flows")).values()]
        count = sum(int(num(f.get("count")) or 0) for f in flows)
        ok = sum(int(num(f.get("ok")) or 0) for f in flows)
        lost = num(obj(r.get("reconciliation")).get("lost"))
        rows.append([label, str(sc.get("topology") or ("star" if sc else _NONE)),
                     str(count) if has_flows else _NONE,
                     f"{100 * ok / count:.1f}" if count else _NONE,
                     str(count - ok) if has_flows else _NONE,
                     _NONE if lost is None else str(int(lost)),
                     _worst(flows, "p50"), _worst(flows, "p99"),
                     ", ".join(_fault(obj(f)) for f in array(r.get("faults"))) or _NONE])
    return _COLUMNS, rows


def _series(r: dict[str, Any], key: str) -> tuple[list[float], list[float]]:
    """(t, values) of one timeseries key; a null or missing value is a gap (NaN)."""
    ts = obj(r.get("timeseries"))
    t_s, vals = array(ts.get("t_s")), array(ts.get(key))
    pairs = [(t, num(v)) for t, v in zip(t_s, vals + [None] * (len(t_s) - len(vals)), strict=False)
             if num(t) is not None]
    return [float(t) for t, _ in pairs], [math.nan if v is None else v for _, v in pairs]


def _steps(r: dict[str, Any], key: str) -> tuple[list[float], list[float]]:
    """(t, values) to draw as steps (where="post"): each value covers [t, t + 1), so the last one
    is repeated at its second's end; a latency is a gap for a second with no successful request."""
    t, vals = _series(r, key)
    if key != "ok":
        vals = latency_gaps(_series(r, "ok")[1], vals)
    return (t + [t[-1] + 1], vals + vals[-1:]) if t else (t, vals)


def _load_ends(checked: list[tuple[Path, dict[str, Any]]], labels: list[str]) -> list[tuple[str, float]]:
    """(run label, seconds) of each run whose load stopped before its data ends (the seconds after
    hold only requests still in flight: their fall is the load's tail, not a collapse)."""
    out = []
    for (_, r), label in zip(checked, labels, strict=True):
        end, t = load_end(r), _series(r, "ok")[0]
        if end is not None and t and t[0] < end < t[-1] + 1:
            out.append((label, end))
    return out


def _run_end(r: dict[str, Any]) -> float | None:
    """Where the run's data ends (seconds since the load started): the last second's end, else duration_s."""
    t, _ = _series(r, "ok")
    return t[-1] + 1 if t else num(r.get("duration_s"))


def _fault_spans(r: dict[str, Any]) -> list[tuple[float, float]]:
    """(start, end) of each fault inside the run; one still active at the end (end_s null) runs to it."""
    run_end = _run_end(r)
    spans = []
    for f in array(r.get("faults")):
        at, end = num(obj(f).get("at_s")), num(obj(f).get("end_s"))
        end = run_end if end is None else end if run_end is None else min(end, run_end)
        if at is not None and end is not None and end > at:
            spans.append((at, end))
    return spans


def draw_comparison(runs: Runs, out_dir: Path) -> list[Path]:
    """Overlaid charts: successful throughput per second, and p99 per second."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    checked = _checked(runs)
    labels = run_labels(checked)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for key, ylabel, name in (("ok", "successful requests per second", "compare_throughput.png"),
                              ("p99_ms", "p99 latency per second (ms)", "compare_p99.png")):
        fig, ax = plt.subplots(figsize=(9, 4.5))
        colours: dict[str, str] = {}
        for (_, r), label in zip(checked, labels, strict=True):
            (line,) = ax.step(*_steps(r, key), where="post", label=label.replace("$", r"\$"), linewidth=1.5)
            colours[label] = line.get_color()
        ends = _load_ends(checked, labels)
        if ends and len(ends) == len(checked) and len({e for _, e in ends}) == 1:
            ax.axvline(ends[0][1], color="#555555", linestyle=":", linewidth=1.2,
                       label=f"end of the load ({ends[0][1]:g} s)")
        else:
            for label, end in ends:
                ax.axvline(end, color=colours[label], linestyle=":", linewidth=1.2,
                           label=f"end of the load: {label} ({end:g} s)".replace("$", r"\$"))
        shown = set()
        for _, r in checked:
            for span in _fault_spans(r):
                if span not in shown:
                    ax.axvspan(*span, color="grey", alpha=0.15)
                    shown.add(span)
        ax.set_xlabel("time since load start (s)")
        ax.set_ylabel(ylabel)
        ax.set_title(ylabel.capitalize() + " — fault windows shaded")
        ax.set_ylim(bottom=0)  # from 0: a few ms between runs must not look like a doubling
        ax.grid(alpha=0.3)
        ax.legend()
        path = out_dir / name
        fig.savefig(path, format="png", metadata={"Software": None}, bbox_inches="tight")
        plt.close(fig)
        written.append(path)
    return written
