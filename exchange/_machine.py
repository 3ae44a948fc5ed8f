"""How busy the whole machine was over a stretch of time, from ``/proc/stat`` (Linux).

A run's report says how many of the machine's cores were busy during the load: on a
laptop the nodes, the load generators and everything else share the cores, and when
they are all busy the load generator falls behind its plan and every latency grows.
The bench uses the same count for "others on the machine".
"""

from __future__ import annotations

import os
import time
from pathlib import Path

__all__ = ["BusyMeter", "busy_ticks", "ticks_per_s"]

PROC_STAT = Path("/proc/stat")


def busy_ticks(stat: Path = PROC_STAT) -> int | None:
    """Clock ticks all CPUs have spent busy since boot (everything but idle and iowait),
    or None where ``stat`` cannot be read or is not in /proc/stat's form."""
    try:
        with open(stat, "rb") as f:
            first = f.readline().split()
        if first[:1] != [b"cpu"]:
            return None
        v = [int(x) for x in first[1:9]]
    except (OSError, ValueError):
        return None
    if len(v) < 5:
        return None
    return sum(v) - v[3] - v[4]


def ticks_per_s() -> int:
    return os.sysconf("SC_CLK_TCK")


class BusyMeter:
    """Average busy cores between ``start()`` and ``stop()``; None if unmeasured."""

    def __init__(self, stat: Path = PROC_STAT) -> None:
        self._stat = stat
        self._t0: float | None = None
        self._b0: int | None = None

    @property
    def started(self) -> bool:
        return self._t0 is not None

    def start(self) -> None:
        self._t0, self._b0 = time.monotonic(), busy_ticks(self._stat)

    def stop(self) -> float | None:
        if self._t0 is None or self._b0 is None:
            return None
        b1, elapsed = busy_ticks(self._stat), time.monotonic() - self._t0
        if b1 is None or elapsed <= 0:
            return None
        return max(0.0, (b1 - self._b0) / ticks_per_s() / elapsed)
