"""Parameter sweeps and the capacity curve.

A sweep runs one scenario over the product of its axes (e.g. offered load x
topology). Each point's achieved throughput and p50/p99 are plotted against the
offered load, one curve per value of the other axes; the knee of a curve is the
highest offered load whose p99 stays under the latency budget (and that lost and
failed nothing).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exchange import api
from exchange.errors import ConfigError
from exchange.scenario import Scenario

__all__ = ["SweepResult", "parse_axis", "sweep"]

_RANGE = re.compile(r"^(?P<start>-?[0-9.]+)\.\.(?P<stop>-?[0-9.]+):(?P<step>[0-9.]+)$")


def parse_axis(spec: str) -> tuple[str, list[Any]]:
    """``KEY=START..STOP:STEP`` (inclusive) or ``KEY=a,b,c``."""
    key, sep, values = spec.partition("=")
    if not sep or key not in api.KEYS:
        raise ConfigError(f"--set {spec!r}: expected KEY=START..STOP:STEP or KEY=a,b,c with KEY one of: "
                          f"{', '.join(api.KEYS)}")
    m = _RANGE.match(values)
    if m:
        start, stop, step = float(m["start"]), float(m["stop"]), float(m["step"])
        if step <= 0 or stop < start:
            raise ConfigError(f"--set {spec!r}: expected START <= STOP and STEP > 0")
        n = int(round((stop - start) / step)) + 1
        return key, [round(start + i * step, 6) for i in range(n)]
    return key, [v.strip() for v in values.split(",") if v.strip()]


@dataclass
class SweepResult:
    budget_ms: float
    axes: dict[str, list[Any]]
    points: list[dict[str, Any]] = field(default_factory=list)

    def series(self) -> dict[str, list[dict[str, Any]]]:
        """Points grouped by every axis but the offered load, each sorted by load."""
        out: dict[str, list[dict[str, Any]]] = {}
        for p in self.points:
            label = ", ".join(f"{k}={v}" for k, v in p["values"].items() if k != "load.rate_per_s") or "all"
            out.setdefault(label, []).append(p)
        for pts in out.values():
            pts.sort(key=lambda p: p["offered_per_s"])
        return out

    def knees(self) -> dict[str, float | None]:
        """Per series: the highest offered load within the budget, with nothing lost or failed."""
        knees: dict[str, float | None] = {}
        for label, pts in self.series().items():
            ok = [p["offered_per_s"] for p in pts
                  if p["p99_ms"] <= self.budget_ms and p["failed"] == 0 and p["lost"] == 0]
            knees[label] = max(ok) if ok else None
        return knees

    def knee_bounds(self) -> dict[str, str]:
        """Per series, what its knee says: ``"found"`` (a higher load tried broke the budget),
        ``"above_range"`` (no load tried broke it: the knee is at least the highest load) or
        ``"below_range"`` (even the lowest load broke it)."""
        out: dict[str, str] = {}
        knees = self.knees()
        for label, pts in self.series().items():
            knee = knees[label]
            out[label] = ("below_range" if knee is None else
                          "above_range" if knee == pts[-1]["offered_per_s"] else "found")
        return out

    def describe_knee(self, label: str) -> str:
        """The knee of series ``label`` in words, e.g. "500 req/s" or "at least 800 req/s
        (no load tried broke the budget)"."""
        knee, bound = self.knees()[label], self.knee_bounds()[label]
        if bound == "below_range":
            lowest = self.series()[label][0]["offered_per_s"]
            return f"below {lowest:g} req/s (even the lowest load tried broke the budget)"
        assert knee is not None
        if bound == "above_range":
            return f"at least {knee:g} req/s (no load tried broke the budget)"
        return f"{knee:g} req/s"

    def to_json(self) -> dict[str, Any]:
        return {"schema_version": 1, "budget_ms": self.budget_ms, "axes": self.axes, "points": self.points,
                "knees": self.knees(), "knee_bounds": self.knee_bounds()}

    def write(self, out_dir: Path) -> list[Path]:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "sweep.json").write_text(json.dumps(self.to_json(), ensure_ascii=False, indent=1) + "\n",
                                            encoding="utf-8")
        return [out_dir / "sweep.json", self._chart(out_dir / "sweep.png")]

    def _chart(self, path: Path) -> Path:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
        knees = self.knees()
        for label, pts in self.series().items():
            x = [p["offered_per_s"] for p in pts]
            line = ax1.plot(x, [p["throughput_per_s"] for p in pts], marker="o", label=label)[0]
            ax2.plot(x, [p["p99_ms"] for p in pts], marker="o", color=line.get_color(), label=f"{label} p99")
            ax2.plot(x, [p["p50_ms"] for p in pts], linestyle="--", color=line.get_color(), label=f"{label} p50")
            if knees[label] is not None:
                for ax in (ax1, ax2):
                    ax.axvline(knees[label], color=line.get_color(), alpha=0.4, linestyle=":")
        lim = max((p["offered_per_s"] for p in self.points), default=1)
        ax1.plot([0, lim], [0, lim], color="grey", linewidth=0.8, label="achieved = offered")
        ax2.axhline(self.budget_ms, color="red", alpha=0.5, label=f"budget {self.budget_ms:g} ms")
        ax1.set(xlabel="offered load (requests/s)", ylabel="achieved throughput (ok/s)", title="Capacity curve")
        ax2.set(xlabel="offered load (requests/s)", ylabel="latency (ms)", yscale="log",
                title="Latency (knee: dotted line)")
        for ax in (ax1, ax2):
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, format="png", metadata={"Software": None})
        plt.close(fig)
        return path


def sweep(base: Scenario, axes: Sequence[tuple[str, list[Any]]], *, out_dir: Path,
          budget_ms: float | None = None, cache_dir: Path = Path("runs/.cache")) -> SweepResult:
    """Run ``base`` at every combination of the axes; returns (and writes) the result."""
    budget = float(budget_ms if budget_ms is not None else base.report.latency_budget_ms)
    result = SweepResult(budget_ms=budget, axes={k: list(v) for k, v in axes})
    keys = [k for k, _ in axes]
    for i, combo in enumerate(itertools.product(*(v for _, v in axes))):
        sc = base
        for key, value in zip(keys, combo, strict=True):
            sc = api.set_value(sc, key, value)
        report = api.run(sc, out_dir=out_dir / f"point-{i:03d}", cache_dir=cache_dir)
        rec = report.reconciliation
        result.points.append({
            "values": dict(zip(keys, combo, strict=True)),
            "offered_per_s": round(sum(f.rate_per_s for f in sc.flows), 3),
            "throughput_per_s": report.throughput_per_s, "p50_ms": report.p50_ms, "p99_ms": report.p99_ms,
            "count": report.count, "failed": report.count - report.ok, "lost": rec["lost"],
            "run_dir": str(report.run_dir),
        })
    result.write(out_dir)
    return result
