"""report.json → report.md, one self-contained report.html and charts/*.png.

The content is built once as a list of blocks (headings, paragraphs, tables,
images) and written twice, as Markdown and as HTML, so the two never disagree.
Everything is a pure function of the report dict: the same JSON gives the same
bytes (no clock, no environment, sorted keys). ``docs/report-schema.md`` documents
every key read here; sections that a short or interrupted run lacks are skipped.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exchange.errors import ConfigError
from exchange.geo import HUB_CODE, PROVINCE_CODES, PROVINCES
from exchange.metrics import fell_behind
from exchange.report.charts import CHARTS, draw_charts

__all__ = ["SCHEMA_VERSION", "build_blocks", "load_report", "render_report", "to_html", "to_markdown"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
"""The report.json schema version this renderer reads (``schema_version``)."""

_NAMES = {p.code: p.name_zh for p in PROVINCES}
_DASH = "–"


# -- blocks ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True, slots=True)
class Para:
    """A paragraph; inline ``**bold**`` and ```code``` are honoured; kind alert/note styles it."""

    text: str
    kind: str = "p"


@dataclass(frozen=True, slots=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...]


@dataclass(frozen=True, slots=True)
class Image:
    caption: str
    name: str


Block = Heading | Para | Table | Image


# -- formatting -----------------------------------------------------------------------------


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float) or math.isnan(x):
        return None
    return float(x)


def _int(x: Any) -> str:
    v = _num(x)
    return _DASH if v is None else f"{round(v):,}"


def _ms(x: Any) -> str:
    """Latency in ms: 3 significant figures or so, never scientific notation."""
    v = _num(x)
    if v is None:
        return _DASH
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"


def _rate(x: Any) -> str:
    v = _num(x)
    return _DASH if v is None else f"{v:,.1f}"


def _pct(part: float, whole: float) -> str:
    return _DASH if whole <= 0 else f"{100.0 * part / whole:.1f} %"


def _s(x: Any) -> str:
    v = _num(x)
    return _DASH if v is None else f"{v:g} s"


def _reasons(d: Any) -> str:
    if not isinstance(d, dict) or not d:
        return _DASH
    return ", ".join(f"{k} {_int(v)}" for k, v in sorted(d.items(), key=lambda kv: (-(_num(kv[1]) or 0), kv[0])))


def _node(code: Any, provinces: dict[str, Any]) -> str:
    code = str(code)
    if code == HUB_CODE:
        return f"{code} 总枢纽 (hub)"
    name = _NAMES.get(code) or (provinces.get(code) or {}).get("name")
    return f"{code} {name}" if name else code


def _failed(flow: dict[str, Any]) -> int:
    return sum(int(_num(v) or 0) for v in (flow.get("failed_by_reason") or {}).values())


# -- content --------------------------------------------------------------------------------


def _headline(r: dict[str, Any]) -> list[Block]:
    raw = r.get("scenario")
    sc: dict[str, Any] = raw if isinstance(raw, dict) else {"name": raw}
    name = str(sc.get("name") or "unnamed scenario")
    out: list[Block] = [Heading(1, f"tongban run report: {name}")]
    if r.get("interrupted"):
        out.append(Para(f"**INTERRUPTED**: this run was stopped before the end; the figures cover "
                        f"{_s(r.get('duration_s'))} of the planned {_s(sc.get('duration_s'))}.", "alert"))
    if sc.get("description"):
        out.append(Para(str(sc["description"]).strip()))
    flows = r.get("flows") or {}
    total = sum(int(_num(f.get("count")) or 0) for f in flows.values())
    ok = sum(int(_num(f.get("ok")) or 0) for f in flows.values())
    rate = sum(_num(f.get("throughput_per_s")) or 0.0 for f in flows.values())
    worst = max(flows.items(), default=None,
                key=lambda kv: (_num((kv[1].get("latency_ms") or {}).get("p99")) or -1, kv[0]))
    summary = (f"**{total:,} requests**, {ok:,} ok ({_pct(ok, total)}), {total - ok:,} failed; "
               f"{_rate(rate)} ok/s over {len(flows)} flow{'s' if len(flows) != 1 else ''}")
    if worst and _num((worst[1].get("latency_ms") or {}).get("p99")) is not None:
        summary += f"; worst p99 {_ms(worst[1]['latency_ms']['p99'])} ms (`{worst[0]}`)"
    out.append(Para(summary + "."))
    nodes = [str(n) for n in sc.get("nodes") or []]
    provs = [n for n in nodes if n != HUB_CODE]
    if provs and sorted(provs) == sorted(PROVINCE_CODES):
        which = "all 32 provincial nodes"
    elif provs:
        which = f"{len(provs)} provincial node{'s' if len(provs) != 1 else ''}: " + ", ".join(
            _node(n, r.get("provinces") or {}) for n in provs[:12]) + (" …" if len(provs) > 12 else "")
    else:
        which = _DASH
    file_ = f" (`{sc['file']}`" + (f", sha256 `{str(sc['sha256'])[:16]}…`)" if sc.get("sha256") else ")") \
        if sc.get("file") else ""
    rows = [
        ("scenario", f"{name}{file_}"),
        ("started", str(r.get("started_at") or _DASH)),
        ("duration", (f"{_s(r.get('duration_s'))} measured; planned {_s(sc.get('duration_s'))} "
                      f"incl. {_s(sc.get('warmup_s') or 0)} warm-up")),
        ("seed / scale", f"{sc.get('seed', _DASH)} / {sc.get('scale', _DASH)}"),
        ("topology", f"{sc.get('topology') or _DASH}" + (f", hub {HUB_CODE} + {which}" if provs else "")),
        ("tongban", str(r.get("tongban_version") or _DASH)),
        ("status", "interrupted" if r.get("interrupted") else "completed"),
    ]
    out.append(Table(("", ""), tuple(rows), (False, False)))
    return out


def _flows(r: dict[str, Any]) -> list[Block]:
    flows = r.get("flows") or {}
    headers = ("flow", "count", "ok", "failed", "failed by reason", "results", "ok/s",
               "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms")
    rows = []
    for name, f in sorted(flows.items()):
        lat = f.get("latency_ms") or {}
        rows.append((f"`{name}`", _int(f.get("count")), _int(f.get("ok")), f"{_failed(f):,}",
                     _reasons(f.get("failed_by_reason")), _reasons(f.get("results")),
                     _rate(f.get("throughput_per_s")),
                     *(_ms(lat.get(k)) for k in ("p50", "p90", "p99", "p999", "max"))))
    out: list[Block] = [Heading(2, "Flows")]
    if not rows:
        return [*out, Para("No request completed in this run.", "note")]
    out.append(Table(headers, tuple(rows), (False, True, True, True, False, False) + (True,) * 6))
    out.append(Para("count = ok + failed; latencies are of successful requests, from each request's planned "
                    "send time, read from merged HDR histograms; ok/s = ok ÷ measured duration.", "note"))
    return out


def _reconciliation(r: dict[str, Any]) -> list[Block]:
    rec = r.get("reconciliation") or {}
    out: list[Block] = [Heading(2, "Reconciliation")]
    if not rec:
        return [*out, Para("No reconciliation in this report.", "note")]
    keys = ("sent", "delivered", "rejected", "failed", "lost")
    line = " · ".join(f"{k} **{_int(rec.get(k))}**" for k in keys if k in rec)
    extra = [f"{k} {_int(v)}" for k, v in sorted(rec.items()) if k not in keys]
    line += (" · " + " · ".join(extra)) if extra else ""
    lost = int(_num(rec.get("lost")) or 0)
    parts = [int(_num(rec.get(k)) or 0) for k in keys[1:]]
    verdict = "every request is accounted for." if lost == 0 else f"**{lost:,} requests lost.**"
    if "sent" in rec and all(k in rec for k in keys[1:]) and sum(parts) != int(_num(rec["sent"]) or 0):
        verdict += f" The parts add up to {sum(parts):,}, not {_int(rec['sent'])} sent."
    out.append(Para(f"{line}: {verdict}", "p" if lost == 0 else "alert"))
    ledgers = r.get("ledgers") or {}
    if ledgers:
        rows_total = sum(int(_num((v or {}).get("rows")) or 0) for v in ledgers.values())
        bad = sorted(k for k, v in ledgers.items() if not (v or {}).get("verified"))
        text = f"Ledgers: {len(ledgers) - len(bad)} of {len(ledgers)} hash chains verified, {rows_total:,} rows."
        if bad:
            text += " **Not verified: " + ", ".join(_node(k, r.get("provinces") or {}) for k in bad) + ".**"
        out.append(Para(text, "alert" if bad else "p"))
    return out


def _load(r: dict[str, Any]) -> list[Block]:
    load = r.get("load") or {}
    lag = load.get("send_lag_ms") or {}
    fired = int(_num((r.get("reconciliation") or {}).get("fired")) or 0)
    if not lag or not fired:
        return []
    late = int(_num(load.get("sent_late")) or 0)
    text = (f"Requests went out p50 {_ms(lag.get('p50'))} ms, p99 {_ms(lag.get('p99'))} ms and at most "
            f"{_ms(lag.get('max'))} ms behind their planned time; {late:,} of {fired:,} ({_pct(late, fired)}) "
            f"{_num(load.get('late_ms')) or 10:g} ms or more. Latencies run from the planned time, so they include "
            "this wait." + _cpu_sentence(load))
    if fell_behind(late, fired):  # the offered load was not what the scenario asked for
        return [Para("**The load generator fell behind its plan**: this machine could not keep up with the "
                     "offered load, and the arrivals came later and more bunched than planned. " + text, "alert")]
    return [Para("Load generator: " + text[0].lower() + text[1:], "note")]


def _direct_links(r: dict[str, Any]) -> list[Block]:
    """How the direct links were connected before the load (regional and direct topologies)."""
    links = (r.get("load") or {}).get("direct_links") or {}
    n, failed, error = int(_num(links.get("connected")) or 0), links.get("failed") or [], links.get("error")
    if not (n or failed or error):
        return []
    text = (f"Before the load, the provinces connected {_int(n)} direct {'link' if n == 1 else 'links'} in "
            f"{_s(links.get('seconds'))}, as the hub connects to each province when it registers, so the load "
            "did not wait for those handshakes.")
    if failed:
        names = ", ".join(_node(code, r.get("provinces") or {}) for code in failed)
        text += (f" **{len(failed)} {'peer' if len(failed) == 1 else 'peers'} did not answer in time** ({names}): "
                 "requests to them connected on first use.")
    if error:
        text += f" **Connecting the links failed**: {error}. The links not connected then connected on first use."
    return [Para(text, "alert" if failed or error else "note")]


def _cpu_sentence(load: dict[str, Any]) -> str:
    """" During the load, N of this machine's C cores were busy on average, L of them the load
    generator's." (nothing when the run did not measure it)"""
    cores, busy, lg = _num(load.get("cores")), _num(load.get("busy_cores")), _num(load.get("load_generator_cores"))
    if cores is None or busy is None:
        return ""
    lg_part = f", {lg:.2f} of them the load generator's" if lg is not None else ""
    return f" During the load, {busy:.2f} of this machine's {cores:g} cores were busy on average{lg_part}."


def _hops(r: dict[str, Any]) -> list[Block]:
    hops = r.get("hops") or {}
    if not hops:
        return []
    keys = sorted({k for h in hops.values() for k in (h or {})},
                  key=lambda k: (["p50", "p90", "p99", "p999", "max"] + [k]).index(k))
    path = ["origin_to_hub_ms", "hub_ms", "hub_to_target_ms", "target_ms"]
    order = sorted(hops, key=lambda n: (path.index(n) if n in path else len(path), n))
    rows = tuple((f"`{name}`", *(_ms((hops[name] or {}).get(k)) for k in keys)) for name in order)
    return [Heading(2, "Latency per hop"),
            Table(("hop", *(f"{k.replace('p999', 'p99.9')} ms" for k in keys)), rows, (False,) + (True,) * len(keys))]


def _faults(r: dict[str, Any]) -> list[Block]:
    faults = r.get("faults") or []
    out: list[Block] = [Heading(2, "Faults")]
    if not faults:
        return [*out, Para("No fault was injected.", "note")]
    rows = []
    for i, f in enumerate(faults, 1):
        nodes = ", ".join(_node(n, r.get("provinces") or {}) for n in f.get("nodes") or []) or _DASH
        end = _s(f.get("end_s")) if f.get("end_s") is not None else "end of run"
        rows.append((str(i), f"`{f.get('kind', '?')}`", nodes, _s(f.get("at_s")), end,
                     str(f.get("detail") or _DASH)))
    out.append(Table(("#", "kind", "nodes", "from", "to", "detail"), tuple(rows),
                     (True, False, False, True, True, False)))
    return out


def _provinces(r: dict[str, Any]) -> list[Block]:
    provs = r.get("provinces") or {}
    if not provs:
        return []
    top = sorted(provs.items(), key=lambda kv: (-(_num((kv[1] or {}).get("sent")) or 0), kv[0]))[:10]
    rows = []
    for code, p in top:
        p = p or {}
        sent, ok = _num(p.get("sent")) or 0.0, _num(p.get("ok")) or 0.0
        name = p.get("name") or _NAMES.get(code, "")
        pinyin = p.get("pinyin") or ""
        rows.append((code, f"{name} {pinyin}".strip() or code, _int(sent), _int(ok), _pct(ok, sent),
                     _ms(p.get("p50_ms")), _ms(p.get("p99_ms")), _int(p.get("served"))))
    return [Heading(2, f"Provinces (top {len(rows)} of {len(provs)} by requests sent)"),
            Table(("code", "province", "sent", "ok", "ok %", "p50 ms", "p99 ms", "served"), tuple(rows),
                  (False, False, True, True, True, True, True, True)),
            Para("sent, ok, p50 and p99 are of requests the province originated; served counts "
                 "requests it answered as target.", "note")]


def _days(x: Any) -> str:
    v = _num(x)
    return _DASH if v is None else f"{v:.1f}"


def _kstb(r: dict[str, Any]) -> list[Block]:
    k = r.get("kstb") or {}
    overall, seed = k.get("overall") or {}, k.get("seed") or {}
    if not overall.get("count"):
        return []

    def pct(x: Any) -> str:
        v = _num(x)
        return _DASH if v is None else f"{100 * v:.2f} %"

    rows = [("**all items**", _int(overall.get("count")), pct(overall.get("zero_trip_rate")),
             pct(overall.get("at_most_once_rate")), _days(overall.get("mean_delay_days"))),
            ("seed report (2021)", _DASH, pct(seed.get("zero_trip_rate")), pct(seed.get("at_most_once_rate")), _DASH)]
    items = sorted((k.get("items") or {}).items(), key=lambda kv: (-(kv[1].get("count") or 0), kv[0]))
    rows += [(name, _int(a.get("count")), pct(a.get("zero_trip_rate")), pct(a.get("at_most_once_rate")),
              _days(a.get("mean_delay_days"))) for name, a in items]
    return [Heading(2, "跨省通办 applications"),
            Table(("item", "applications", "零跑动率", "最多跑一次", "mean 代收代办 days"), tuple(rows),
                  (False, True, True, True, True)),
            Para("零跑动: completed online, 0 trips; 最多跑一次: at most 1 trip. Days of 代收代办 forwarding are "
                 "modelled and reported apart from network latency.", "note")]


def build_blocks(report: dict[str, Any], charts: Sequence[tuple[str, str]]) -> list[Block]:
    """The report's content; ``charts`` = (file name, caption) of the charts drawn."""
    blocks = [*_headline(report), *_flows(report), *_reconciliation(report), *_load(report), *_direct_links(report),
              *_hops(report), *_kstb(report), *_faults(report), *_provinces(report)]
    if (report.get("report") or {}).get("charts", True) is False:
        return blocks
    blocks.append(Heading(2, "Charts"))
    blocks += [Image(caption, name) for name, caption in charts]
    drawn = {name for name, _ in charts}
    missing = [caption for name, caption, _ in CHARTS if name not in drawn]
    if missing:
        blocks.append(Para("Not drawn, no data in this report: " + "; ".join(missing) + ".", "note"))
    return blocks


# -- writers --------------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: Sequence[Block]) -> str:
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"{'#' * b.level} {b.text}")
        elif isinstance(b, Para):
            out.append(f"> {b.text}" if b.kind == "alert" else f"_{b.text}_" if b.kind == "note" else b.text)
        elif isinstance(b, Table):
            lines = ["| " + " | ".join(_md_cell(h) for h in b.headers) + " |",
                     "|" + "|".join("---:" if n else "---" for n in b.numeric) + "|"]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b.rows]
            out.append("\n".join(lines))
        else:
            out.append(f"![{b.caption}](charts/{b.name})")
    return "\n\n".join(out) + "\n"


_INLINE = re.compile(r"\*\*(.+?)\*\*|`([^`]+)`")


def _inline(text: str) -> str:
    parts, pos = [], 0
    for m in _INLINE.finditer(text):
        parts.append(html.escape(text[pos:m.start()]))
        parts.append(f"<strong>{_inline(m[1])}</strong>" if m[1] is not None else f"<code>{html.escape(m[2])}</code>")
        pos = m.end()
    return "".join(parts) + html.escape(text[pos:])


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI","Noto Sans CJK SC","WenQuanYi Micro Hei",
"PingFang SC","Microsoft YaHei",sans-serif;color:#1d1d1f;background:#fff;margin:0 auto;
max-width:1280px;padding:24px 32px;line-height:1.45;font-size:15px}
h1{font-size:26px;margin:0 0 12px}h2{font-size:19px;margin:28px 0 8px;padding-bottom:4px;
border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0;font-size:13.5px}
th,td{border:1px solid #ddd;padding:4px 9px;vertical-align:top}th{background:#f3f5f7;text-align:left}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}tr:nth-child(even) td{background:#fafbfc}
table.kv th{display:none}table.kv td:first-child{font-weight:600;background:#f3f5f7}
code{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:90%;background:#f1f1f1;
padding:0 3px;border-radius:3px}
.alert{background:#fdecea;border-left:6px solid #c62828;padding:10px 14px;font-size:17px}
.note{color:#555;font-size:13px}
figure{margin:16px 0}figure img{max-width:100%;border:1px solid #e5e5e5}
figcaption{color:#555;font-size:13px}
"""


def to_html(blocks: Sequence[Block], images: dict[str, bytes]) -> str:
    """One self-contained page: inline CSS, the PNGs as data: URIs, nothing fetched."""
    title = next((b.text for b in blocks if isinstance(b, Heading)), "tongban report")
    out = ["<!DOCTYPE html>", '<html lang="zh-CN">', "<head>", '<meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{html.escape(title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>"]
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"<h{b.level}>{_inline(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            cls = f' class="{b.kind}"' if b.kind != "p" else ""
            out.append(f"<p{cls}>{_inline(b.text)}</p>")
        elif isinstance(b, Table):
            kv = ' class="kv"' if not any(b.headers) else ""
            out.append(f"<table{kv}><thead><tr>" + "".join(
                f'<th{" class=n" if n else ""}>{_inline(h)}</th>' for h, n in zip(b.headers, b.numeric, strict=True))
                + "</tr></thead><tbody>")
            for row in b.rows:
                out.append("<tr>" + "".join(f'<td{" class=n" if n else ""}>{_inline(c)}</td>'
                                            for c, n in zip(row, b.numeric, strict=True)) + "</tr>")
            out.append("</tbody></table>")
        else:
            data = base64.b64encode(images[b.name]).decode("ascii")
            out.append(f'<figure id="{html.escape(b.name.removesuffix(".png"))}">'
                       f'<img alt="{html.escape(b.caption)}" src="data:image/png;base64,{data}">'
                       f"<figcaption>{html.escape(b.caption)} ({html.escape(b.name)})</figcaption></figure>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


# -- entry point ----------------------------------------------------------------------------


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
    if not isinstance(report, dict):
        raise ConfigError(f"{path}: expected a JSON object, found {type(report).__name__}")
    return report


def _check(report: dict[str, Any], where: str) -> dict[str, bool]:
    version = report.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ConfigError(f"{where}: schema_version {version!r}, this tongban renders "
                          f"schema_version {SCHEMA_VERSION}")
    settings = report.get("report") or {}
    out = {}
    for key in ("markdown", "html", "charts"):
        value = settings.get(key, True)
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: report.{key} must be true or false, found {value!r}")
        out[key] = value
    return out


def render_report(run_dir: Path, report: dict[str, Any] | None = None) -> list[Path]:
    """Write report.md, report.html and charts/*.png into ``run_dir`` as ``report["report"]`` says.

    Reads ``run_dir/report.json`` when ``report`` is None. Returns the paths written,
    charts first. Raises ConfigError for a missing or unreadable report.json or an
    unknown schema_version.
    """
    run_dir = Path(run_dir)
    if report is None:
        report = load_report(run_dir)
    settings = _check(report, str(run_dir / "report.json"))
    written: list[Path] = []
    charts = []
    if settings["charts"]:
        charts = draw_charts(report)
        (run_dir / "charts").mkdir(parents=True, exist_ok=True)
        for c in charts:
            path = run_dir / "charts" / c.name
            path.write_bytes(c.png)
            written.append(path)
    blocks = build_blocks(report, [(c.name, c.caption) for c in charts])
    if settings["markdown"]:
        path = run_dir / "report.md"
        path.write_text(to_markdown(blocks), encoding="utf-8", newline="\n")
        written.append(path)
    if settings["html"]:
        path = run_dir / "report.html"
        path.write_text(to_html(blocks, {c.name: c.png for c in charts}), encoding="utf-8", newline="\n")
        written.append(path)
    log.info("report rendered in %s: %s", run_dir, ", ".join(p.name for p in written))
    return written
