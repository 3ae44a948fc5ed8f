"""Validation helpers of scenario files: typed checks whose errors name the file,
the dotted key and what was expected and found. Used by ``exchange.scenario``."""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exchange.errors import ConfigError
from exchange.geo import PROVINCE_CODES


def _fmt(x: float) -> str:
    return str(int(x)) if isinstance(x, float) and x.is_integer() else repr(x)


def _show(v: Any) -> str:
    """How a found value is named in a message."""
    if isinstance(v, bool):
        return f"boolean {str(v).lower()}"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return f"string {v[:60]!r}"
    if isinstance(v, dict):
        return "a table"
    if isinstance(v, list):
        return f"an array of {len(v)} item{'' if len(v) == 1 else 's'}"
    return f"{type(v).__name__} {v}"


@dataclass(frozen=True)
class _Range:
    """Allowed numbers: optional bounds; ``lt_name`` names a bound taken from another key."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    integer: bool = False
    lt_name: str = ""

    def ok(self, v: Any) -> bool:
        if isinstance(v, bool) or not isinstance(v, int if self.integer else (int, float)):
            return False
        return (math.isfinite(v) and (self.gt is None or v > self.gt) and (self.ge is None or v >= self.ge)
                and (self.lt is None or v < self.lt) and (self.le is None or v <= self.le))

    def describe(self) -> str:
        what = "an integer" if self.integer else "a number"
        if self.ge is not None and self.le is not None:
            return f"{what} from {_fmt(self.ge)} to {_fmt(self.le)}"
        parts = [f"greater than {_fmt(self.gt)}" if self.gt is not None else "",
                 f"at least {_fmt(self.ge)}" if self.ge is not None else "",
                 (f"less than {self.lt_name} ({_fmt(self.lt)})" if self.lt_name else f"less than {_fmt(self.lt)}")
                 if self.lt is not None else "",
                 f"at most {_fmt(self.le)}" if self.le is not None else ""]
        return " and ".join([what] + [p for p in parts if p]).replace(" and ", " ", 1)


_POSITIVE = _Range(gt=0)
_NON_NEGATIVE = _Range(ge=0)
_PROBABILITY = _Range(ge=0, lt=1)
# Scalar attributes of Scenario -> (dotted key, allowed values); shared by loader and invariants.
_SCALARS: dict[str, tuple[str, _Range]] = {
    "scale": ("world.scale", _Range(gt=0, le=1)),
    "province_processes": ("topology.province_processes", _Range(ge=1, le=32, integer=True)),
    "duration_s": ("load.duration_s", _Range(gt=0, le=86400)),
    "warmup_s": ("load.warmup_s", _NON_NEGATIVE),
    "gravity_exponent": ("load.gravity_exponent", _POSITIVE),
    "loadgen_processes": ("load.loadgen_processes", _Range(ge=1, le=8, integer=True)),
    "request_timeout_s": ("load.request_timeout_s", _POSITIVE),
    "identity_mismatch_ratio": ("load.identity_mismatch_ratio", _Range(ge=0, le=1)),
}


def _unknown_code(code: Any) -> str:
    if not isinstance(code, str):
        return f'expected a six-digit province code as a string, e.g. "440000", found {_show(code)}'
    return f"unknown province code {code[:60]!r} (expected one of the 32 node codes, e.g. 110000, 440000)"


class _Checker:
    """Type and value checks that raise ConfigError naming the file and the dotted key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, reason: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key}: {reason}")

    def table(self, key: str, v: Any, allowed: Sequence[str] | None = None) -> dict[str, Any]:
        if not isinstance(v, dict):
            raise self.fail(key, f"expected a table, found {_show(v)}")
        for k in v:
            if allowed is not None and k not in allowed:
                raise self.fail(f"{key}.{k}", f"unknown key (expected one of: {', '.join(allowed)})")
        return v

    def tables(self, key: str, v: Any, example: str) -> list[dict[str, Any]]:
        if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
            raise self.fail(key, f"expected an array of tables ({example}), found {_show(v)}")
        return v

    def need(self, key: str, t: Mapping[str, Any], name: str, expected: str) -> Any:
        if name not in t:
            raise self.fail(f"{key}.{name}", f"required key missing (expected {expected})")
        return t[name]

    def number(self, key: str, v: Any, rng: _Range) -> float:
        if not rng.ok(v):
            raise self.fail(key, f"expected {rng.describe()}, found {_show(v)}")
        return v if rng.integer else float(v)

    def scalar(self, attr: str, v: Any) -> Any:
        key, rng = _SCALARS[attr]
        return self.number(key, v, rng)

    def boolean(self, key: str, v: Any) -> bool:
        if not isinstance(v, bool):
            raise self.fail(key, f"expected true or false, found {_show(v)}")
        return v

    def choice(self, key: str, v: Any, choices: Sequence[str]) -> str:
        if v not in choices or not isinstance(v, str):
            raise self.fail(key, f"expected one of: {', '.join(choices)}; found {_show(v)}")
        return v

    def code(self, key: str, v: Any, within: Sequence[str] | None = None) -> str:
        if v not in PROVINCE_CODES or not isinstance(v, str):
            raise self.fail(key, _unknown_code(v))
        if within is not None and v not in within:
            raise self.fail(key, f"province {v} is not in topology.nodes (expected one of: {', '.join(within)})")
        return v

    def codes(self, key: str, v: Any, within: Sequence[str] | None, *, least: int) -> tuple[str, ...]:
        if not isinstance(v, list):
            raise self.fail(key, f"expected an array of province codes, found {_show(v)}")
        if len(v) < least:
            raise self.fail(key, f"expected at least {least} province code{'s' if least > 1 else ''}, "
                                 f"found {_show(v)}")
        seen: list[str] = []
        for i, c in enumerate(v):
            if self.code(f"{key}[{i}]", c, within) in seen:
                raise self.fail(f"{key}[{i}]", f"duplicate province code {c!r} (expected each code once)")
            seen.append(c)
        return tuple(seen)


# ---------------------------------------------------------------- loading


def _parse_toml(path: Path, raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: byte {e.start}: not valid UTF-8 (expected a UTF-8 TOML file)") from e
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.fullmatch(r"(.*) \(at (?:line (\d+), column (\d+)|end of document)\)", str(e), re.DOTALL)
        if m is None:
            raise ConfigError(f"{path}: not valid TOML: {e}") from e
        where = f"line {m[2]}, column {m[3]}" if m[2] else f"line {text.count(chr(10)) + 1} (end of file)"
        raise ConfigError(f"{path}: {where}: not valid TOML: {m[1][:1].lower()}{m[1][1:]}") from e


def _description(raw: bytes) -> str:
    for line in raw.decode("utf-8").splitlines():
        if line.strip():
            return line.strip().lstrip("#").strip() if line.lstrip().startswith("#") else ""
    return ""
