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
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exchange import api
from exchange.errors import ConfigError
from exchange.scenario import TOPOLOGIES, Scenario

__all__ = ["MAX_POINTS", "SweepResult", "build_points", "parse_axis", "sweep"]

#: The most values one axis, and the most points one sweep, may have (each point is a whole run).
MAX_POINTS = 1000

_NUMBER = r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
_RANGE = re.compile(rf"^(?P<start>{_NUMBER})\.\.(?P<stop>{_NUMBER}):(?P<step>{_NUMBER})$")
#: How far (in steps) STOP may fall short of the last value and still include it: 0.1..0.3:0.1 has 3 values.
_TOLERANCE = 1e-9


def _bad_key(spec: str) -> ConfigError:
    return ConfigError(f"--set {spec!r}: expected KEY=START..STOP:STEP or KEY=a,b,c with KEY one of: "
                       f"{', '.join(api.KEYS)}")


def _expected(key: str) -> str:
    """What ``--set KEY=`` takes, in words."""
    if key in api.NUMBER_KEYS:
        return f"{'an integer' if api.NUMBER_KEYS[key].integer else 'a number'} or START..STOP:STEP"
    if key == "topology.kind":
        return f"one of: {', '.join(TOPOLOGIES)}"
    return "a province code, e.g. 110000"


def _nothing(key: str) -> ConfigError:
    sep = ";" if key == "topology.kind" else ","  # after a list, as the scenario checks word it
    return ConfigError(f"--set {key}: expected {_expected(key)}{sep} found nothing")


def _checked(key: str, value: Any, context: str = "") -> Any:
    """``value`` as the sweep uses it (a float, or an int for an integer key), or a ConfigError
    ``"--set KEY: expected ..., found ..."`` (``context`` says which range it came from)."""
    try:
        v = api.check_value(key, value)
    except ConfigError as e:  # "KEY: expected ..., found ..."
        raise ConfigError(f"--set {e}{context}") from e
    if key in api.NUMBER_KEYS and not api.NUMBER_KEYS[key].integer:
        v = float(v)
    return v


def _range(key: str, text: str, m: re.Match[str]) -> list[Any]:
    start, stop, step = float(m["start"]), float(m["stop"]), float(m["step"])
    if not all(map(math.isfinite, (start, stop, step))):
        raise ConfigError(f"--set {key}: expected finite numbers in START..STOP:STEP, found {text!r}")
    if step <= 0:
        raise ConfigError(f"--set {key}: expected START..STOP:STEP with STEP greater than 0, found {text!r}")
    if stop < start:
        raise ConfigError(f"--set {key}: expected START..STOP:STEP with START at most STOP, found {text!r}")
    steps = (stop - start) / step + _TOLERANCE
    if not steps < MAX_POINTS:
        many = f"{math.floor(steps) + 1:,} values" if math.isfinite(steps) else "more"
        raise ConfigError(f"--set {key}: expected at most {MAX_POINTS} values, found {text!r} ({many})")
    # start, start + step, ... never above STOP (inclusive), without float noise (0.1 + 2 * 0.1 is 0.3)
    values = [min(float(f"{start + i * step:.12g}"), stop) for i in range(math.floor(steps) + 1)]
    return [_checked(key, v, f" (from {text})") for v in values]


def parse_axis(spec: str) -> tuple[str, list[Any]]:
    """``KEY=START..STOP:STEP`` (inclusive: start, start + step, ... up to STOP, never above it)
    or ``KEY=a,b,c``. Every value is checked (:func:`exchange.api.check_value`); a bad one is a
    ConfigError ``"--set KEY: expected ..., found ..."``."""
    key, sep, text = spec.partition("=")
    key, text = key.strip(), text.strip()
    if not sep or key not in api.KEYS:
        raise _bad_key(spec)
    m = _RANGE.match(text)
    if m and key in api.NUMBER_KEYS:
        return key, _range(key, text, m)
    items = [v.strip() for v in text.split(",") if v.strip()]
    if not items:
        raise _nothing(key)
    if len(items) > MAX_POINTS:
        raise ConfigError(f"--set {key}: expected at most {MAX_POINTS} values, found {len(items):,}")
    values = []
    for item in items:
        if key in api.NUMBER_KEYS:
            try:
                float(item)
            except ValueError:
                raise ConfigError(f"--set {key}: expected {_expected(key)}, found {item!r}") from None
        values.append(_checked(key, item))
    return key, values


def build_points(base: Scenario, axes: Sequence[tuple[str, Sequence[Any]]]) -> list[tuple[dict[str, Any], Scenario]]:
    """Every point of a sweep, built and validated before any runs: ``(values, scenario)``
    per combination of the axes, in run order. A bad axis or value, or a combination the
    scenario's checks refuse, is a ConfigError naming the ``--set`` axis."""
    keys = [k for k, _ in axes]
    checked: list[list[Any]] = []
    for key, values in axes:
        if key not in api.KEYS:
            raise _bad_key(key)
        if keys.count(key) > 1:
            raise ConfigError(f"--set {key}: expected each KEY once, found it {keys.count(key)} times")
        if not values:
            raise _nothing(key)
        checked.append([_checked(key, v) for v in values])
    total = math.prod(len(v) for v in checked)
    if total > MAX_POINTS:
        raise ConfigError(f"--set: expected at most {MAX_POINTS} points in all, found {total:,} "
                          f"({' x '.join(str(len(v)) for v in checked)})")
    points = []
    for combo in itertools.product(*checked):
        sc = base
        for key, value in zip(keys, combo, strict=True):
            try:
                sc = api.set_value(sc, key, value)
            except ConfigError as e:  # a scenario check: "<file>: <dotted key>: expected ..., found ..."
                shown = f"{value:g}" if isinstance(value, float) else value
                raise ConfigError(f"--set {key}={shown}: {e}") from e
        points.append((dict(zip(keys, combo, strict=True)), sc))
    return points


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
    """Run ``base`` at every combination of the axes; returns (and writes) the result.

    Every combination is built and checked first (:func:`build_points`): a bad value
    fails before any point runs."""
    points = build_points(base, axes)  # every value checked before the first point runs
    budget = float(budget_ms if budget_ms is not None else base.report.latency_budget_ms)
    result = SweepResult(budget_ms=budget, axes={k: list(v) for k, v in axes})
    for i, (values, sc) in enumerate(points):
        report = api.run(sc, out_dir=out_dir / f"point-{i:03d}", cache_dir=cache_dir)
        rec = report.reconciliation
        result.points.append({
            "values": values,
            "offered_per_s": round(sum(f.rate_per_s for f in sc.flows), 3),
            "throughput_per_s": report.throughput_per_s, "p50_ms": report.p50_ms, "p99_ms": report.p99_ms,
            "count": report.count, "failed": report.count - report.ok, "lost": rec["lost"],
            "run_dir": str(report.run_dir),
        })
    result.write(out_dir)
    return result
