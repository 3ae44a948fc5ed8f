"""The machine and software a benchmark ran on: numbers mean little without them."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from bench.cluster import GRPC_DEFAULT
from tongban.runtime import describe

__all__ = ["environment"]

_PACKAGES = ("grpcio", "protobuf", "cryptography", "sqlite-utils", "hdrhistogram", "uvloop", "py-spy", "tongban")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_commit(repo: Path) -> str:
    """HEAD of the work tree (``git rev-parse``, read-only: uncommitted changes are not seen)."""
    try:
        return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _packages() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def environment(repo: Path) -> dict[str, Any]:
    import sqlite3

    return {
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "packages": _packages(),
        "git_commit": _git_commit(repo),
        # tongban's processes (nodes, and the load generator as province A) and the relay's
        "grpc_polling": {"tongban": describe()[1], "relay": "grpcio's default ("
                         + ", ".join(f"{k}={v!r}" for k, v in GRPC_DEFAULT.items()) + ")"},
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }
