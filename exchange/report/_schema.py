"""Reading report.json: is this document a report this tongban can render, and which files to write.

Shared by ``tongban report`` (:func:`exchange.report.render_report`), ``tongban compare``
(:mod:`exchange.report.compare`) and the run summary, so the three accept and refuse
the same documents with the same words. Only ``schema_version`` is required
(``docs/report-schema.md``); every other key may be missing, null or of the wrong kind,
and the readers use :func:`obj` and :func:`num` to treat those as absent.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from exchange.errors import ConfigError

__all__ = ["SCHEMA_VERSION", "array", "counts", "expect_report", "load_report", "num", "obj", "settings"]

SCHEMA_VERSION = 1
"""The report.json schema version this tongban reads (``schema_version``)."""

_JSON_KINDS = {list: "a JSON array", str: "a JSON string", bool: "a JSON boolean", int: "a JSON number",
               float: "a JSON number", type(None): "JSON null"}


def obj(x: Any) -> dict[str, Any]:
    """``x`` when it is a JSON object, else an empty one (a missing or null section)."""
    return x if isinstance(x, dict) else {}


def array(x: Any) -> list[Any]:
    """``x`` when it is a JSON array, else an empty one."""
    return x if isinstance(x, list) else []


def num(x: Any) -> float | None:
    """A finite number as a float, or None for null / NaN / a string / a bool."""
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        return None
    return float(x)


def counts(x: Any) -> dict[str, int]:
    """A JSON object of counts (e.g. ``reconciliation.at_window``), by key, without the zero,
    null or non-numeric ones."""
    return {str(k): int(v) for k, v in sorted((k, num(v)) for k, v in obj(x).items()) if v}


def _found(doc: Any) -> str:
    if not isinstance(doc, dict):
        return _JSON_KINDS.get(type(doc), type(doc).__name__)
    if "schema_version" not in doc:
        return "an object without schema_version"
    return f"schema_version {json.dumps(doc['schema_version'])}"


def expect_report(doc: Any, where: str | Path) -> dict[str, Any]:
    """``doc`` itself when it is a report.json this tongban reads; else ConfigError naming ``where``.

    The message says what was expected and what was found, e.g. ``runs/x/report.json: expected
    a tongban report.json (an object with schema_version 1), found schema_version 99``.
    """
    if not isinstance(doc, dict) or type(doc.get("schema_version")) is not int \
            or doc["schema_version"] != SCHEMA_VERSION:
        raise ConfigError(f"{where}: expected a tongban report.json (an object with schema_version "
                          f"{SCHEMA_VERSION}), found {_found(doc)}")
    return doc


def load_report(run_dir: Path) -> dict[str, Any]:
    """``run_dir/report.json``, checked for a readable schema version."""
    path = Path(run_dir) / "report.json"
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no report.json here; expected a run directory written by "
                          "`tongban run`") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: cannot read the report: {e}") from e
    return expect_report(report, path)


def settings(report: Any, where: str | Path) -> dict[str, bool]:
    """Which files to write (``report.markdown``, ``.html``, ``.charts``), once ``report`` is checked."""
    report = expect_report(report, where)
    out = {}
    for key in ("markdown", "html", "charts"):
        value = obj(report.get("report")).get(key, True)
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: report.{key} must be true or false, found {value!r}")
        out[key] = value
    return out
