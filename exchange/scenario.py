"""Scenario files (``scenarios/*.toml``): load and validate before anything starts.

This is the foundation's subset of the format (``[world]``, ``[topology]``,
``[load]``); unknown keys, wrong types and impossible values are refused with
the file, the key and the reason.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exchange.errors import ConfigError
from exchange.payloads import FLOWS

__all__ = ["FlowLoad", "Scenario", "load_scenario"]


@dataclass(frozen=True, kw_only=True)
class FlowLoad:
    """Open-loop (Poisson) arrivals of one flow."""

    flow: str
    rate_per_s: float


@dataclass(frozen=True, kw_only=True)
class Scenario:
    name: str
    path: Path
    sha256: str
    scale: float = 1e-5
    seed: int = 2021
    province_processes: int = 4
    duration_s: float = 20.0
    flows: tuple[FlowLoad, ...] = field(default_factory=tuple)
    identity_mismatch_ratio: float = 0.0
    request_timeout_s: float = 10.0


_SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "world": {"scale": (float, int), "seed": int},
    "topology": {"province_processes": int},
    "load": {"duration_s": (float, int), "flows": dict, "identity_mismatch_ratio": (float, int),
             "request_timeout_s": (float, int)},
}


def _fail(path: Path, key: str, reason: str) -> ConfigError:
    return ConfigError(f"{path}: {key}: {reason}")


def _check_table(path: Path, section: str, table: Any) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise _fail(path, section, f"expected a table, found {type(table).__name__}")
    allowed = _SCHEMA[section]
    for key, value in table.items():
        if key not in allowed:
            raise _fail(path, f"{section}.{key}", f"unknown key (expected one of: {', '.join(allowed)})")
        want = allowed[key]
        if isinstance(value, bool) or not isinstance(value, want):
            names = " or ".join(t.__name__ for t in (want if isinstance(want, tuple) else (want,)))
            raise _fail(path, f"{section}.{key}", f"expected {names}, found {type(value).__name__} {value!r}")
    return table


def _positive(path: Path, key: str, value: float, *, upper: float | None = None) -> float:
    if not value > 0 or (upper is not None and value > upper):
        bound = f" and at most {upper}" if upper is not None else ""
        raise _fail(path, key, f"expected a number greater than 0{bound}, found {value}")
    return float(value)


def load_scenario(path: Path, *, overrides: dict[str, Any] | None = None) -> Scenario:
    """Parse and validate a scenario file; ``overrides`` holds CLI values."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the scenario: {e.strerror}") from e
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from e
    for section in doc:
        if section not in _SCHEMA:
            raise _fail(path, section, f"unknown section (expected one of: {', '.join(_SCHEMA)})")
    world = _check_table(path, "world", doc.get("world", {}))
    topo = _check_table(path, "topology", doc.get("topology", {}))
    load = _check_table(path, "load", doc.get("load", {}))
    flows = []
    for name, spec in load.get("flows", {}).items():
        key = f"load.flows.{name}"
        if name not in FLOWS:
            raise _fail(path, key, f"unknown flow (expected one of: {', '.join(sorted(FLOWS))})")
        if not isinstance(spec, dict) or set(spec) != {"rate_per_s"}:
            raise _fail(path, key, f"expected a table with exactly rate_per_s, found {spec!r}")
        rate = spec["rate_per_s"]
        if isinstance(rate, bool) or not isinstance(rate, (int, float)):
            raise _fail(path, f"{key}.rate_per_s", f"expected a number, found {rate!r}")
        flows.append(FlowLoad(flow=name, rate_per_s=_positive(path, f"{key}.rate_per_s", rate, upper=100_000)))
    if not flows:
        raise _fail(path, "load.flows", "expected at least one flow with a rate_per_s, found none")
    o = overrides or {}
    seed = int(o.get("seed") if o.get("seed") is not None else world.get("seed", 2021))
    duration = float(o.get("duration_s") if o.get("duration_s") is not None else load.get("duration_s", 20.0))
    processes = int(topo.get("province_processes", 4))
    if not 1 <= processes <= 32:
        raise _fail(path, "topology.province_processes", f"expected 1 to 32, found {processes}")
    mismatch = float(load.get("identity_mismatch_ratio", 0.0))
    if not 0 <= mismatch <= 1:
        raise _fail(path, "load.identity_mismatch_ratio", f"expected a fraction from 0 to 1, found {mismatch}")
    return Scenario(
        name=path.stem,
        path=path,
        sha256=hashlib.sha256(raw).hexdigest(),
        scale=_positive(path, "world.scale", world.get("scale", 1e-5), upper=1.0),
        seed=seed,
        province_processes=processes,
        duration_s=_positive(path, "load.duration_s", duration, upper=24 * 3600),
        flows=tuple(flows),
        identity_mismatch_ratio=mismatch,
        request_timeout_s=_positive(path, "load.request_timeout_s", load.get("request_timeout_s", 10.0)),
    )
