"""The report's PNG charts, drawn from the report dict with matplotlib (Agg, no pyplot).

Each ``draw_*`` function takes the report dict and returns PNG bytes, or ``None``
when the report holds no data for that chart (a run interrupted early). The
bytes are deterministic for the same input on the same machine: no timestamps,
no "Software" metadata, the same fonts.

Province labels are Chinese short names (广东) when a font with those glyphs is
installed, pinyin (Guangdong) otherwise; every other string drawn goes through
:meth:`Labels.safe`, which drops characters no available font can render, so a
chart never shows tofu boxes and matplotlib never warns "Glyph … missing".
matplotlib is imported inside the functions: importing this module costs nothing.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from exchange.geo import HUB_CODE, PROVINCES
from exchange.report._axes import MIN_SAMPLES, latency_gaps, plain_log_axis
from exchange.report._schema import array as _list
from exchange.report._schema import num as _num
from exchange.report._schema import obj

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["CHARTS", "Chart", "Labels", "draw_charts", "find_cjk_font", "load_end"]

#: Fonts tried first, best first; any other installed font that covers the probe
#: characters is used after these.
_CJK_PREFERRED = (
    "Noto Sans CJK SC", "Source Han Sans SC", "Source Han Sans CN", "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei", "Noto Sans SC", "Sarasa Gothic SC", "Droid Sans Fallback",
    "Microsoft YaHei", "SimHei", "PingFang SC", "Heiti SC", "Noto Sans CJK JP",
    "Noto Sans CJK TC", "AR PL UKai CN", "AR PL UMing CN", "Noto Serif CJK SC",
)
#: Every character of the province short names, and 总枢纽 (the hub).
_PROBE = "".join(sorted({ch for p in PROVINCES for ch in p.short_zh} | set("总枢纽")))
_LATIN_FONT = "DejaVu Sans"
_DPI = 100
_FAULT_COLOURS = {
    "node_down": "#d62728", "hub_down": "#8c1c13", "link_slow": "#ff7f0e",
    "link_loss": "#9467bd", "partition": "#8c564b", "key_revoked": "#7f7f7f",
}
_OTHER_COLOURS = ("#e377c2", "#bcbd22", "#17becf", "#1f77b4")
_FLOW_COLOURS = ("#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#e377c2")


@dataclass(frozen=True, slots=True)
class Chart:
    """One drawn chart: its file name under ``charts/``, a caption and the PNG bytes."""

    name: str
    caption: str
    png: bytes


def _charmap(family: str) -> frozenset[int]:
    from matplotlib import font_manager

    path = font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
    return frozenset(font_manager.get_font(path).get_charmap())


@functools.cache
def find_cjk_font() -> str | None:
    """The family name of an installed font with every province-name glyph, or None."""
    from matplotlib import font_manager

    installed = sorted({f.name for f in font_manager.fontManager.ttflist})
    others = [n for n in installed if n not in _CJK_PREFERRED and not n.startswith(("cm", "STIX", "DejaVu"))]
    for name in [n for n in _CJK_PREFERRED if n in installed] + others:
        try:
            chars = _charmap(name)
        except (OSError, RuntimeError, ValueError):
            continue
        if all(ord(ch) in chars for ch in _PROBE):
            return name
    return None


class Labels:
    """How text appears in charts: province names and safe strings for the fonts at hand.

    ``cjk`` is the CJK font family to use, or None for pinyin labels (pass
    ``cjk=None`` explicitly to force the fallback, as the tests do).
    """

    def __init__(self, *, cjk: str | None, provinces: dict[str, Any] | None = None) -> None:
        self.cjk = cjk
        self._provinces = provinces or {}
        chars = set(_charmap(_LATIN_FONT))
        if cjk is not None:
            chars |= _charmap(cjk)
        self._chars = frozenset(chars)

    @property
    def families(self) -> list[str]:
        return [_LATIN_FONT, self.cjk] if self.cjk else [_LATIN_FONT]

    def safe(self, text: str) -> str:
        """``text`` without the characters no font can draw, and with ``$`` escaped."""
        kept = "".join(ch for ch in text if ord(ch) in self._chars or ch in "\n\t")
        kept = " ".join(kept.split()) if kept != text else kept
        return kept.replace("$", r"\$")

    def province(self, code: str) -> str:
        """Short label for a node code: 广东 / Guangdong, 总枢纽 / hub, else the code."""
        if code == HUB_CODE:
            return "总枢纽" if self.cjk else "hub"
        for p in PROVINCES:
            if p.code == code:
                if self.cjk:
                    return p.short_zh
                if p.code == "660000":
                    return "Bingtuan (XPCC)"
                return p.pinyin.split(" (")[0]
        entry = obj(self._provinces.get(code))
        for key in ("name", "pinyin") if self.cjk else ("pinyin",):
            if entry.get(key) and self.safe(str(entry[key])) == str(entry[key]):
                return str(entry[key])
        return self.safe(str(code))


def _rc(labels: Labels) -> dict[str, Any]:
    return {
        "font.family": labels.families, "font.size": 10, "axes.titlesize": 12,
        "axes.titleweight": "bold", "axes.labelsize": 10, "legend.fontsize": 9,
        "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
        "axes.spines.right": False, "figure.dpi": _DPI, "savefig.dpi": _DPI,
        "path.simplify": True, "text.usetex": False, "axes.unicode_minus": True,
    }


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None}, bbox_inches="tight", pad_inches=0.15)
    return buf.getvalue()


def _sig(v: float) -> str:
    """About three significant figures, plain notation: 0.512, 5.12, 51.2, 512, 5,120."""
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}" if abs(v) >= 1 \
        else f"{v:.3g}"


def _cdf_points(flow: dict[str, Any]) -> tuple[list[tuple[float, float]], bool]:
    """(points, exact): the flow's CDF, or one rebuilt from its percentiles (exact=False)."""
    flow = obj(flow)
    lat = obj(flow.get("latency_ms"))
    raw = _list(flow.get("cdf")) or _list(lat.get("cdf"))
    pts = [(x, y) for x, y in ((_num(p[0]), _num(p[1])) for p in raw if isinstance(p, list) and len(p) == 2)
           if x is not None and y is not None and x > 0]
    if pts:
        return sorted(pts), True
    marks = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999), ("max", 1.0))
    pts = [(v, q) for k, q in marks if (v := _num(lat.get(k))) is not None and v > 0]
    return (sorted(pts), False) if flow.get("ok") and pts else ([], False)


def draw_latency_cdf(report: dict[str, Any], labels: Labels) -> bytes | None:
    """Latency CDF per flow (left) and its tail as 1 - F on a log scale (right)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator

    flows = {name: _cdf_points(f) for name, f in sorted(obj(report.get("flows")).items())}
    flows = {name: pts for name, pts in flows.items() if pts[0]}
    if not flows:
        return None
    fig = Figure(figsize=(12, 4.8))
    left, right = fig.subplots(1, 2, gridspec_kw={"wspace": 0.28})
    for i, (name, (pts, exact)) in enumerate(flows.items()):
        f = obj(report["flows"][name])
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        p99 = _num(obj(f.get("latency_ms")).get("p99"))
        label = f"{name} (n={int(_num(f.get('ok')) or 0):,}" + (f", p99 {_sig(p99)} ms)" if p99 else ")")
        label += "" if exact else " [from percentiles]"
        style = {"color": _FLOW_COLOURS[i % len(_FLOW_COLOURS)], "linewidth": 1.8,
                 "drawstyle": "steps-post" if exact else "default", "marker": None if exact else "o"}
        left.plot(xs, ys, label=labels.safe(label), **style)
        tail = [(x, 1.0 - y) for x, y in zip(xs, ys, strict=True) if 1.0 - y > 1e-6]
        if tail:
            right.plot([t[0] for t in tail], [t[1] for t in tail], **style)
    xs_all = [x for pts, _ in flows.values() for x, _ in pts]
    plain_log_axis((left, right), min(xs_all), max(xs_all))
    for ax in (left, right):
        ax.set_xlabel("latency (ms, log scale)")
    left.set_ylim(0, 1.01)
    left.set_ylabel("fraction of successful requests ≤ x")
    left.set_title("Latency CDF per flow")
    for q, name in ((0.5, "p50"), (0.9, "p90"), (0.99, "p99")):
        left.axhline(q, color="#999999", linewidth=0.7, linestyle=":")
        left.text(0.01, q, name, transform=left.get_yaxis_transform(), va="bottom", ha="left",
                  fontsize=8, color="#777777")
    right.set_yscale("log")
    right.set_ylim(bottom=1e-4, top=1.0)
    right.yaxis.set_major_locator(LogLocator(base=10))
    right.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    right.set_ylabel("fraction slower than x (log scale)")
    right.set_title("Tail: 1 − CDF")
    right.legend(*left.get_legend_handles_labels(), loc="lower left")
    right.yaxis.set_minor_locator(FixedLocator([]))
    return _png(fig)


def _fault_windows(report: dict[str, Any], t0: float, t_end: float,
                   province: Callable[[str], str]) -> list[tuple[float, float, str, str]]:
    """(start_s, end_s, kind, label) of each fault inside [t0, t_end]; open ends close at t_end."""
    out = []
    for f in map(obj, _list(report.get("faults"))):
        at = _num(f.get("at_s"))
        if at is None or at >= t_end:
            continue
        end = _num(f.get("end_s"))
        end = t_end if end is None else min(t_end, max(at + 0.5, end))
        at = max(at, t0)
        if end <= at:
            continue
        kind = str(f.get("kind") or "fault")
        nodes = [str(n) for n in _list(f.get("nodes"))]
        where = ", ".join(province(n) for n in nodes[:3]) + (f" +{len(nodes) - 3}" if len(nodes) > 3 else "")
        out.append((at, end, kind, f"{kind} {where}".strip()))
    return out


def _fault_colour(kind: str, kinds: Sequence[str]) -> str:
    if kind in _FAULT_COLOURS:
        return _FAULT_COLOURS[kind]
    others = sorted(k for k in kinds if k not in _FAULT_COLOURS)
    return _OTHER_COLOURS[others.index(kind) % len(_OTHER_COLOURS)]


def _shade(axes: Sequence[Axes], windows: list[tuple[float, float, str, str]], labels: Labels,
           warmup_s: float) -> None:
    kinds = sorted({w[2] for w in windows})
    for ax in axes:
        if warmup_s > 0:
            ax.axvspan(0, warmup_s, color="#bbbbbb", alpha=0.25, linewidth=0, zorder=0)
        for start, end, kind, _ in windows:
            ax.axvspan(start, end, color=_fault_colour(kind, kinds), alpha=0.15, linewidth=0, zorder=0)
    top = axes[0]
    if warmup_s > 0:
        top.text(warmup_s / 2, 0.98, "warm-up", transform=top.get_xaxis_transform(), ha="center",
                 va="top", fontsize=8, color="#555555")
    for i, (start, _, kind, text) in enumerate(windows):
        top.text(start, 0.98 - 0.09 * (i % 5), " " + labels.safe(text), transform=top.get_xaxis_transform(),
                 ha="left", va="top", fontsize=8, color=_fault_colour(kind, kinds), fontweight="bold",
                 bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "alpha": 0.7, "linewidth": 0})


def draw_timeseries(report: dict[str, Any], labels: Labels) -> bytes | None:
    """Throughput per second (ok and failed, stacked) above p99 per second, faults shaded."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    ts = obj(report.get("timeseries"))
    t = [_num(x) for x in _list(ts.get("t_s"))]
    if not t or any(x is None for x in t):
        return None
    n = len(t)
    tt = [float(x) for x in t if x is not None]

    def series(key: str) -> list[float]:
        vals = [_num(v) for v in _list(ts.get(key))][:n]
        return [math.nan if v is None else v for v in vals] + [math.nan] * (n - len(vals))

    ok, failed = series("ok"), series("failed")
    p99 = latency_gaps(ok, series("p99_ms"))  # no ok request that second: a gap, not 0 ms
    # Each value covers [t, t + 1): repeat the last one at t_end so the last second shows.
    tt, ok, failed, p99 = tt + [tt[-1] + 1], ok + ok[-1:], failed + failed[-1:], p99 + p99[-1:]
    ok0 = [0.0 if math.isnan(v) else v for v in ok]
    failed0 = [0.0 if math.isnan(v) else v for v in failed]
    fig = Figure(figsize=(12, 6.5))
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    top.stackplot(tt, ok0, failed0, colors=("#2ca02c", "#d62728"), alpha=0.8, step="post",
                  labels=("ok", "failed"))
    top.set_ylabel("requests completed per second")
    top.set_ylim(bottom=0, top=max(1.0, max(a + b for a, b in zip(ok0, failed0, strict=True))) * 1.3)
    top.set_title("Throughput and p99 latency per second")
    bottom.step(tt, p99, where="post", color="#1f77b4", linewidth=1.5, label="p99")
    if "p50_ms" in ts:
        p50 = latency_gaps(ok, series("p50_ms"))
        bottom.step(tt, p50 + p50[-1:], where="post", color="#1f77b4", linewidth=1, linestyle="--",
                    label="p50")
    bottom.set_ylabel("latency (ms)")
    bottom.set_xlabel("time since load started (s)")
    bottom.set_ylim(bottom=0)
    scenario = obj(report.get("scenario"))
    windows = _fault_windows(report, tt[0], tt[-1], labels.province)
    bottom.set_xlim(tt[0], tt[-1])
    _shade((top, bottom), windows, labels, min(_num(scenario.get("warmup_s")) or 0.0, tt[-1]))
    kinds = sorted({w[2] for w in windows})
    handles, names = top.get_legend_handles_labels()
    handles += [Patch(color=_fault_colour(k, kinds), alpha=0.3) for k in kinds]
    names += [labels.safe(f"fault: {k}") for k in kinds]
    end = load_end(report)
    if end is not None and tt[0] < end < tt[-1]:  # what completes after it is the load's tail, not an outage
        for ax in (top, bottom):
            ax.axvline(end, color="#555555", linestyle=":", linewidth=1.2)
        handles.append(top.lines[-1])
        names.append(f"end of the load ({end:g} s)")
    top.legend(handles, names, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    bottom.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _png(fig)


def load_end(report: dict[str, Any]) -> float | None:
    """Seconds since the load started at which it stopped sending: the planned duration, or
    the measured one when the run was interrupted earlier (None if the report has neither).
    Requests still in flight complete after it, so the time series' last seconds fall off."""
    planned = _num(obj(report.get("scenario")).get("duration_s"))
    measured = _num(report.get("duration_s"))
    if planned is None:
        return measured if report.get("interrupted") else None
    return min(planned, measured) if report.get("interrupted") and measured is not None else planned


def draw_matrix(report: dict[str, Any], labels: Labels) -> bytes | None:
    """Heat map of request volume, origins on y, targets on x (log colours when skewed)."""
    from matplotlib.colors import LogNorm, Normalize
    from matplotlib.figure import Figure

    m = obj(report.get("matrix"))
    origins, targets = [str(c) for c in _list(m.get("origins"))], [str(c) for c in _list(m.get("targets"))]
    counts = [[(_num(v) or 0.0) for v in _list(row)][: len(targets)] for row in _list(m.get("counts"))][: len(origins)]
    if not origins or not targets or len(counts) != len(origins) or any(len(r) != len(targets) for r in counts):
        return None
    positive = [v for row in counts for v in row if v > 0]
    if not positive:
        return None
    lo, hi = min(positive), max(positive)
    log = hi / lo > 50
    grid = [[(v if v > 0 else math.nan) if log else v for v in row] for row in counts]
    side = max(5.0, 0.3 * max(len(origins), len(targets)) + 2.5)
    fig = Figure(figsize=(side + 1.8, side))
    ax = fig.subplots()
    ax.grid(False)
    import matplotlib as mpl

    cmap = mpl.colormaps["YlOrRd"].with_extremes(bad="#f4f4f4")
    im = ax.imshow(grid, cmap=cmap, aspect="auto", interpolation="nearest",
                   norm=LogNorm(vmin=lo, vmax=hi) if log else Normalize(vmin=0, vmax=hi))
    ax.set_xticks(range(len(targets)), [labels.province(c) for c in targets], rotation=90)
    ax.set_yticks(range(len(origins)), [labels.province(c) for c in origins])
    ax.set_xlabel("target (province that served the request)")
    ax.set_ylabel("origin (province that sent the request)")
    total = int(sum(positive))
    ax.set_title(f"Request volume, origin × target ({total:,} requests)")
    if len(origins) * len(targets) <= 144:
        for i, row in enumerate(counts):
            for j, v in enumerate(row):
                ax.text(j, i, f"{int(v):,}", ha="center", va="center", fontsize=8,
                        color="white" if v > (lo * hi) ** 0.5 and log or v > hi * 0.6 else "black")
    cbar = fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    cbar.set_label("requests (count" + (", log scale)" if log else ")"))
    if log:
        from matplotlib.ticker import FuncFormatter, LogLocator

        cbar.ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        cbar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        cbar.ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    return _png(fig)


def draw_province_p99(report: dict[str, Any], labels: Labels) -> bytes | None:
    """p99 (bar) and p50 (marker) of requests each province originated, slowest on top."""
    from matplotlib.figure import Figure

    rows = []
    for code, p in sorted(obj(report.get("provinces")).items()):
        p = obj(p)
        p99, sent = _num(p.get("p99_ms")), int(_num(p.get("sent")) or 0)
        ok = _num(p.get("ok"))  # the p99's sample: the successful requests
        if p99 is not None and sent:
            rows.append((p99, _num(p.get("p50_ms")), str(code), sent, sent if ok is None else int(ok)))
    if not rows:
        return None
    rows.sort(key=lambda r: (-r[0], r[2]))
    fig = Figure(figsize=(10, max(3.0, 0.3 * len(rows) + 1.5)))
    ax = fig.subplots()
    ax.grid(axis="y", visible=False)
    y = range(len(rows))
    few = [r[4] < MIN_SAMPLES for r in rows]  # a p99 of 1 or 2 requests is no tail: drawn hatched grey
    for part, style in ((False, {"color": "#1f77b4", "label": "p99"}),
                        (True, {"color": "#c7c7c7", "hatch": "///", "edgecolor": "#7f7f7f",
                                "label": f"p99 of n<{MIN_SAMPLES} ok (unreliable)"})):
        if part in few:
            ax.barh([i for i in y if few[i] == part], [r[0] for r, f in zip(rows, few, strict=True) if f == part],
                    alpha=0.85, **style)
    p50 = [(i, r[1]) for i, r in enumerate(rows) if r[1] is not None]
    if p50:
        ax.plot([v for _, v in p50], [i for i, _ in p50], "|", color="black", markersize=12,
                markeredgewidth=2, label="p50")
    ax.set_yticks(list(y), [f"{labels.province(r[2])} ({r[4]:,} of {r[3]:,} ok)" for r in rows])
    ax.invert_yaxis()
    hi = max(r[0] for r in rows)
    for i, r in enumerate(rows):
        ax.text(r[0] + hi * 0.01, i, _sig(r[0]), va="center", fontsize=8)
    ax.set_xlim(0, hi * 1.12)
    ax.set_xlabel("latency (ms) of requests the province originated")
    ax.set_title("p99 latency per origin province (slowest first)")
    ax.legend(loc="lower right")
    return _png(fig)


#: (file name, caption, draw function) in report order.
CHARTS: tuple[tuple[str, str, Callable[[dict[str, Any], Labels], bytes | None]], ...] = (
    ("latency_cdf.png", "Latency CDF per flow", draw_latency_cdf),
    ("timeseries.png", "Throughput and p99 over time, fault windows shaded", draw_timeseries),
    ("matrix.png", "Request volume, origin × target", draw_matrix),
    ("province_p99.png", "p99 latency per origin province", draw_province_p99),
)


def draw_charts(report: dict[str, Any], *, cjk: str | None | bool = True) -> list[Chart]:
    """Every chart the report has data for, in :data:`CHARTS` order.

    ``cjk=True`` looks for an installed CJK font; ``None``/``False`` forces pinyin
    labels; a string names the font family to use.
    """
    import matplotlib as mpl

    font = find_cjk_font() if cjk is True else (cjk or None)
    labels = Labels(cjk=font, provinces=obj(report.get("provinces")))
    out = []
    with mpl.rc_context(_rc(labels)):  # type: ignore[arg-type]  # keys are checked at run time
        for name, caption, draw in CHARTS:
            png = draw(report, labels)
            if png is not None:
                out.append(Chart(name=name, caption=caption, png=png))
    return out
