"""tongban as a library: load a scenario, change it in code, run it, read the report.

Nothing here prints or exits; the ``tongban`` CLI is a thin shell over it, and
``tongban run script.py`` runs a Python scenario script that uses it::

    from exchange import api

    sc = api.load("scenarios/quickstart.toml")
    sc = api.set_value(sc, "load.rate_per_s", 60)        # total offered load, flows in proportion
    sc = api.set_value(sc, "topology.kind", "direct")
    report = api.run(sc)                                   # a Report: the same data as report.json
    print(report.throughput_per_s, report.p99_ms, report.reconciliation["lost"])

Runs are reproducible: the same file and seed give the same world, the same
arrival schedule and the same fault timeline (``api.plan`` exposes the schedule).
"""

from __future__ import annotations

import contextvars
import dataclasses
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from exchange._scenario_check import _NON_NEGATIVE, _POSITIVE, _SCALARS, _Range
from exchange.errors import ConfigError
from exchange.geo import PROVINCE_CODES
from exchange.scenario import TOPOLOGIES, LinkSpec, PathModel, Scenario, load_scenario

__all__ = ["KEYS", "NUMBER_KEYS", "Report", "check_value", "load", "next_run_dir", "plan", "run", "run_dir_context",
           "set_value"]

#: Keys ``set_value`` (and ``tongban sweep --set``) understand.
KEYS = ("load.rate_per_s", "load.duration_s", "topology.kind", "topology.delay", "topology.hub_at", "world.seed")

#: The numeric keys and the values each allows (the others take a topology kind or a province code).
NUMBER_KEYS: dict[str, _Range] = {
    "load.rate_per_s": _POSITIVE,  # total offered load, requests/s
    "load.duration_s": _SCALARS["duration_s"][1],
    "topology.delay": _NON_NEGATIVE,  # one-way delay of every link, ms
    "world.seed": _Range(integer=True),
}

#: Where runs land when a script is run by ``tongban run script.py``.
_RUN_DIR: contextvars.ContextVar[Path | None] = contextvars.ContextVar("tongban_run_dir", default=None)


def run_dir_context(path: Path) -> contextvars.Token[Path | None]:
    """Make ``path`` the directory the next runs land in (used by the CLI for scripts)."""
    return _RUN_DIR.set(path)


@dataclasses.dataclass(frozen=True)
class Report:
    """The outcome of a run: ``data`` is exactly what ``report.json`` holds."""

    data: dict[str, Any]
    run_dir: Path

    @classmethod
    def load(cls, run_dir: Path) -> Report:
        path = Path(run_dir) / "report.json"
        from exchange.report._schema import expect_report

        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ConfigError(f"{path}: expected a report.json written by a tongban run: {e}") from e
        return cls(expect_report(doc, path), Path(run_dir))

    @property
    def flows(self) -> dict[str, dict[str, Any]]:
        return dict(self.data["flows"])

    @property
    def reconciliation(self) -> dict[str, int]:
        return dict(self.data["reconciliation"])

    @property
    def count(self) -> int:
        return sum(int(f["count"]) for f in self.data["flows"].values())

    @property
    def ok(self) -> int:
        return sum(int(f["ok"]) for f in self.data["flows"].values())

    @property
    def throughput_per_s(self) -> float:
        """Successful requests per second over the measured window, all flows."""
        return round(sum(float(f["throughput_per_s"]) for f in self.data["flows"].values()), 2)

    @property
    def p50_ms(self) -> float:
        """The worst flow's p50 (percentiles are never averaged across flows)."""
        return max((float(f["latency_ms"]["p50"]) for f in self.data["flows"].values()), default=0.0)

    @property
    def p99_ms(self) -> float:
        """The worst flow's p99."""
        return max((float(f["latency_ms"]["p99"]) for f in self.data["flows"].values()), default=0.0)


def load(path: str | Path, **overrides: Any) -> Scenario:
    """A validated scenario from a TOML file (overrides: ``duration_s``, ``seed``)."""
    return load_scenario(Path(path), overrides=overrides or None)


def _scale_rates(sc: Scenario, total: float) -> Scenario:
    now = sum(f.rate_per_s for f in sc.flows)
    flows = tuple(dataclasses.replace(f, rate_per_s=f.rate_per_s * total / now) for f in sc.flows)
    return sc.replace(flows=flows)


def _found(v: Any) -> str:
    """How a value given to ``set_value`` is named in a message: 20 for 20.0, 'abc' for a string."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return repr(v)


def _number(value: Any, integer: bool) -> int | float | None:
    """``value`` (a number, or a string of one) as an int or a float; None when it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            value = float(text)
        except ValueError:
            return None
    if isinstance(value, float) and integer and value.is_integer():
        return int(value)  # 7.0 from a range START..STOP:STEP is the integer 7
    return value if isinstance(value, (int, float)) else None


def check_value(key: str, value: Any) -> Any:
    """``value`` as ``set_value`` uses it for ``key`` (numbers from strings, an int for
    ``world.seed``); a ConfigError ``"<key>: expected ..., found ..."`` if ``key`` cannot take it."""
    if key in NUMBER_KEYS:
        rng = NUMBER_KEYS[key]
        v = _number(value, rng.integer)
        if v is None or not rng.ok(v):
            what = rng.describe()
            if key == "topology.delay":  # worded as the scenario file's topology.delay
                what = f"a one-way delay in ms ({what})"
            raise ConfigError(f"{key}: expected {what}, found {_found(value)}")
        return v
    if key == "topology.kind":
        if value not in TOPOLOGIES or not isinstance(value, str):
            raise ConfigError(f"topology.kind: expected one of: {', '.join(TOPOLOGIES)}; found {_found(value)}")
        return value
    if key == "topology.hub_at":
        if value not in PROVINCE_CODES or not isinstance(value, str):
            raise ConfigError(f"topology.hub_at: expected a province code, one of the 32 node codes "
                              f"(e.g. 110000, 440000), found {_found(value)}")
        return value
    raise ConfigError(f"cannot set {key!r}: expected one of: {', '.join(KEYS)}")


def set_value(sc: Scenario, key: str, value: Any) -> Scenario:
    """A copy of ``sc`` with one of ``KEYS`` changed (and links re-derived when needed).

    ``value`` is checked first (:func:`check_value`), then the changed scenario is
    validated again like a scenario file; either refuses with a ConfigError."""
    from exchange.planning import link_delays

    value = check_value(key, value)
    if key == "load.rate_per_s":
        return _scale_rates(sc, float(value))
    if key == "load.duration_s":
        d = float(value)  # a shorter run keeps at most a quarter of itself as warm-up
        return sc.replace(duration_s=d, warmup_s=min(sc.warmup_s, d / 4))
    if key == "world.seed":
        return sc.replace(seed=int(value))
    if key == "topology.kind":
        return sc.replace(topology=str(value))
    if key == "topology.delay":
        d = float(value)
        links = {c: dataclasses.replace(l, delay_ms=d) for c, l in sc.links.items()}
        return sc.replace(links=links, paths=PathModel(mode="fixed", delay_ms=d))
    if key == "topology.hub_at":
        hub_at = str(value)
        p = sc.paths if sc.paths.mode == "distance" else PathModel()
        delays = link_delays(sc.nodes, hub_at, base_ms=p.base_ms, route_factor=p.route_factor)
        links = {c: LinkSpec(delay_ms=delays[c], jitter_ms=l.jitter_ms, loss=l.loss) for c, l in sc.links.items()}
        return sc.replace(hub_at=hub_at, links=links, paths=p)
    raise ConfigError(f"cannot set {key!r}: expected one of: {', '.join(KEYS)}")


def next_run_dir(name: str) -> Path:
    """Where the next run (or sweep) named ``name`` lands: inside the script's run
    directory when ``tongban run script.py`` runs it, else ``runs/<name>-<time>``."""
    return _next_dir(name)


def _next_dir(name: str) -> Path:
    base = _RUN_DIR.get()
    if base is None:
        return Path("runs") / f"{name}-{datetime.now():%Y%m%d-%H%M%S-%f}"
    if not base.exists() or not any(base.iterdir()):
        return base
    k = 2
    while (base / f"{name}-{k}").exists():
        k += 1
    return base / f"{name}-{k}"


def run(sc: Scenario, *, out_dir: Path | None = None, cache_dir: Path = Path("runs/.cache"),
        progress: Any = None) -> Report:
    """Run a scenario end to end and return its report (also written to ``out_dir``)."""
    from exchange.runner import run_scenario

    out = Path(out_dir) if out_dir is not None else _next_dir(sc.name)
    run_scenario(sc, out_dir=out, cache_dir=cache_dir, progress=progress)
    return Report.load(out)


def plan(sc: Scenario, *, cache_dir: Path = Path("runs/.cache")) -> list[dict[str, Any]]:
    """The arrival schedule a run of ``sc`` would drive (deterministic for its seed)."""
    from exchange.cache import ensure_world
    from exchange.plan import plan_requests

    return plan_requests(sc, ensure_world(cache_dir, scale=sc.scale, seed=sc.seed))
