"""Axis and series helpers shared by the run report's charts and ``tongban compare``.

matplotlib is imported inside the functions: importing this module costs nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["MIN_SAMPLES", "latency_gaps", "plain_log_axis"]

#: Fewer successful samples than this and a p99 is one or two requests' latency, not a tail.
MIN_SAMPLES = 10

#: Mantissas of the labelled ticks of a log axis, by how many decades it spans (at most).
_SUBS = ((1.5, (1.0, 2.0, 3.0, 5.0)), (3.5, (1.0, 2.0, 5.0)), (math.inf, (1.0,)))


def latency_gaps(ok: Sequence[float], values: Sequence[float]) -> list[float]:
    """``values`` with NaN (a gap in the line) for each second with no successful request.

    Older report.json files hold ``p99_ms`` 0.0 for such a second, newer ones null; drawn
    as 0 it reads as zero latency during an outage, when there was no latency to measure.
    """
    return [math.nan if i < len(ok) and ok[i] == 0 else v for i, v in enumerate(values)]


def _ticks(lo: float, hi: float, subs: Sequence[float]) -> list[float]:
    return [m * 10.0 ** e for e in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 2)
            for m in subs]


def plain_log_axis(axes: Sequence[Axes], lo: float, hi: float) -> None:
    """Log x axes over [lo, hi] (both > 0) widened to the nearest labelled ticks, labelled in
    plain numbers (10, 20, 50, 100, 200) spaced so they never run together; minor ticks unlabelled."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    decades = math.log10(hi / lo) if hi > lo else 0.0
    subs = next(s for most, s in _SUBS if decades <= most)
    ticks = _ticks(lo, hi, subs)
    left = max(t for t in ticks if t <= lo * (1 + 1e-9))
    right = min(t for t in ticks if t >= hi * (1 - 1e-9))
    if right <= left:
        right = min(t for t in ticks if t > left)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlim(left, right)
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
        ax.xaxis.set_minor_locator(LogLocator(base=10, subs=tuple(range(1, 10))))
        ax.xaxis.set_minor_formatter(NullFormatter())
