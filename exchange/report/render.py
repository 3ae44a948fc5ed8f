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
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exchange.geo import HUB_CODE, PROVINCE_CODES, PROVINCES
from exchange.metrics import fell_behind
from exchange.report._schema import SCHEMA_VERSION, load_report, obj, settings
from exchange.report._schema import counts as count_map
from exchange.report._schema import num as _num
from exchange.report._schema import array as _list
from exchange.report.charts import CHARTS, draw_charts

__all__ = ["SCHEMA_VERSION", "build_blocks", "load_report", "render_report", "to_html", "to_markdown"]

log = logging.getLogger(__name__)

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
    name = _NAMES.get(code) or obj(provinces.get(code)).get("name")
    return f"{code} {name}" if name else code


def _failed(flow: dict[str, Any]) -> int:
    return sum(int(_num(v) or 0) for v in obj(flow.get("failed_by_reason")).values())


def _flows_of(r: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(name): obj(f) for name, f in obj(r.get("flows")).items()}


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
    flows = _flows_of(r)
    total = sum(int(_num(f.get("count")) or 0) for f in flows.values())
    ok = sum(int(_num(f.get("ok")) or 0) for f in flows.values())
    rate = sum(_num(f.get("throughput_per_s")) or 0.0 for f in flows.values())
    worst = max(flows.items(), default=None,
                key=lambda kv: (_num(obj(kv[1].get("latency_ms")).get("p99")) or -1, kv[0]))
    summary = (f"**{total:,} requests**, {ok:,} ok ({_pct(ok, total)}), {total - ok:,} refused or failed; "
               f"{_rate(rate)} ok/s over {len(flows)} flow{'s' if len(flows) != 1 else ''}")
    if worst and _num(obj(worst[1].get("latency_ms")).get("p99")) is not None:
        summary += f"; worst p99 {_ms(worst[1]['latency_ms']['p99'])} ms (`{worst[0]}`)"
    out.append(Para(summary + "."))
    nodes = [str(n) for n in _list(sc.get("nodes"))]
    provs = [n for n in nodes if n != HUB_CODE]
    if provs and sorted(provs) == sorted(PROVINCE_CODES):
        which = "all 32 provincial nodes"
    elif provs:
        which = f"{len(provs)} provincial node{'s' if len(provs) != 1 else ''}: " + ", ".join(
            _node(n, obj(r.get("provinces"))) for n in provs[:12]) + (" …" if len(provs) > 12 else "")
    else:
        which = _DASH
    scenario_file = sc.get("file") or sc.get("path")  # "path" in reports written before 2026-12-08
    file_ = f" (`{scenario_file}`" + (f", sha256 `{str(sc['sha256'])[:16]}…`)" if sc.get("sha256") else ")") \
        if scenario_file else ""
    rows = [
        ("scenario", f"{name}{file_}"),
        ("started", str(r.get("started_at") or _DASH)),
        ("duration", (f"{_s(r.get('duration_s'))} measured; planned {_s(sc.get('duration_s'))} "
                      f"incl. {_s(sc.get('warmup_s') or 0)} warm-up")),
        ("seed / scale", " / ".join(_DASH if sc.get(k) is None else str(sc[k]) for k in ("seed", "scale"))),
        ("topology", f"{sc.get('topology') or _DASH}" + (f", hub {HUB_CODE} + {which}" if provs else "")),
        ("tongban", str(r.get("tongban_version") or _DASH)),
        ("status", "interrupted" if r.get("interrupted") else "completed"),
    ]
    out.append(Table(("", ""), tuple(rows), (False, False)))
    return out


def _flows(r: dict[str, Any]) -> list[Block]:
    flows = _flows_of(r)
    headers = ("flow", "count", "ok", "failed", "failed by reason", "results", "ok/s",
               "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms")
    rows = []
    for name, f in sorted(flows.items()):
        lat = obj(f.get("latency_ms"))
        rows.append((f"`{name}`", _int(f.get("count")), _int(f.get("ok")), f"{_failed(f):,}",
                     _reasons(f.get("failed_by_reason")), _reasons(f.get("results")),
                     _rate(f.get("throughput_per_s")),
                     *(_ms(lat.get(k)) for k in ("p50", "p90", "p99", "p999", "max"))))
    out: list[Block] = [Heading(2, "Flows")]
    if not rows:
        return [*out, Para("No request completed in this run.", "note")]
    out.append(Table(headers, tuple(rows), (False, True, True, True, False, False) + (True,) * 6))
    out.append(Para("count = ok + failed; latencies are of successful requests, from each request's planned "
                    f"send time, read from merged HDR histograms; ok/s = ok ÷ {_window(r)}.", "note"))
    return out


def _window(r: dict[str, Any]) -> str:
    """What ok/s divides by (the runner's counted seconds), with its length when the report has it."""
    duration, warmup = _num(r.get("duration_s")), _num(obj(r.get("scenario")).get("warmup_s")) or 0.0
    if duration is None:
        return "the measured window (the run's duration less its warm-up)"
    length = f"{max(duration - warmup, 0.0):.2f}".rstrip("0").rstrip(".")
    return f"the measured window (the run's duration less its warm-up, {length} s)"


def at_window_sentence(at_window: Any) -> str:
    """report.md's words for ``reconciliation.at_window`` ("" when there were none)."""
    counts = count_map(at_window)
    n = sum(counts.values())
    if not n:
        return ""
    text = (f" Not in these counts: {n:,} submission{'s' * (n != 1)} that failed at the asking province's "
            f"window ({', '.join(f'{k} {v:,}' for k, v in counts.items())}). A window that refused a "
            "submission, or could not be reached, sent nothing on, so no ledger has it")
    if "window_deadline_exceeded" in counts:
        text += "; one that did not answer in time may have sent it on, and then it is counted above"
    return text + "."


def _reconciliation(r: dict[str, Any]) -> list[Block]:
    rec = obj(r.get("reconciliation"))
    out: list[Block] = [Heading(2, "Reconciliation")]
    if not rec:
        return [*out, Para("No reconciliation in this report.", "note")]
    keys = ("sent", "delivered", "rejected", "failed", "lost")
    line = " · ".join(f"{k} **{_int(rec.get(k))}**" for k in keys if k in rec)
    extra = [f"{k} {_int(v)}" for k, v in sorted(rec.items()) if k not in (*keys, "at_window")]
    line += (" · " + " · ".join(extra)) if extra else ""
    lost = int(_num(rec.get("lost")) or 0)
    parts = [int(_num(rec.get(k)) or 0) for k in keys[1:]]
    verdict = "every request is accounted for." if lost == 0 else f"**{lost:,} requests lost.**"
    if "sent" in rec and all(k in rec for k in keys[1:]) and sum(parts) != int(_num(rec["sent"]) or 0):
        verdict += f" The parts add up to {sum(parts):,}, not {_int(rec['sent'])} sent."
    verdict += at_window_sentence(rec.get("at_window"))
    out.append(Para(f"{line}: {verdict}", "p" if lost == 0 else "alert"))
    ledgers = obj(r.get("ledgers"))
    if ledgers:
        rows_total = sum(int(_num(obj(v).get("rows")) or 0) for v in ledgers.values())
        bad = sorted(k for k, v in ledgers.items() if obj(v).get("verified") is not True)
        text = f"Ledgers: {len(ledgers) - len(bad)} of {len(ledgers)} hash chains verified, {rows_total:,} rows."
        if bad:
            text += " **Not verified: " + ", ".join(_node(k, obj(r.get("provinces"))) for k in bad) + ".**"
        out.append(Para(text, "alert" if bad else "p"))
    return out


def _load(r: dict[str, Any]) -> list[Block]:
    load = obj(r.get("load"))
    lag = obj(load.get("send_lag_ms"))
    fired = int(_num(obj(r.get("reconciliation")).get("fired")) or 0)
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
    links = obj(obj(r.get("load")).get("direct_links"))
    n, failed, error = int(_num(links.get("connected")) or 0), _list(links.get("failed")), links.get("error")
    if not (n or failed or error):
        return []
    text = (f"Before the load, the provinces connected {_int(n)} direct {'link' if n == 1 else 'links'} in "
            f"{_s(links.get('seconds'))}, as the hub connects to each province when it registers, so the load "
            "did not wait for those handshakes.")
    if failed:
        names = ", ".join(_node(code, obj(r.get("provinces"))) for code in failed)
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


_LATENCY_KEYS = ("p50", "p90", "p99", "p999", "max")
#: the request's way out, then its answer's way back; other hops follow by name
_HOP_PATH = ("origin_to_hub_ms", "hub_ms", "hub_to_target_ms", "target_ms", "target_to_hub_ms", "hub_to_origin_ms")


def _hops(r: dict[str, Any]) -> list[Block]:
    """Latency per hop, in path order; hops with no samples (count 0, or no latency at all) left out."""
    hops = {str(name): obj(h) for name, h in obj(r.get("hops")).items()}
    kept = {name: h for name, h in hops.items()
            if (_num(h.get("count")) or 0) > 0
            or ("count" not in h and any(_num(v) is not None for k, v in h.items() if k != "count"))}
    if not kept:
        return []
    present = {k for h in kept.values() for k, v in h.items() if k != "count" and _num(v) is not None}
    keys = [k for k in _LATENCY_KEYS if k in present] + sorted(present - set(_LATENCY_KEYS))
    counted = any("count" in h for h in kept.values())
    order = sorted(kept, key=lambda n: (_HOP_PATH.index(n) if n in _HOP_PATH else len(_HOP_PATH), n))
    rows = tuple((f"`{name}`", *(_ms(kept[name].get(k)) for k in keys),
                  *((_int(kept[name].get("count")),) if counted else ())) for name in order)
    headers = ("hop", *(f"{k.replace('p999', 'p99.9')} ms" for k in keys), *(("count",) if counted else ()))
    return [Heading(2, "Latency per hop"), Table(headers, rows, (False,) + (True,) * (len(headers) - 1))]


def _faults(r: dict[str, Any]) -> list[Block]:
    faults = [obj(f) for f in _list(r.get("faults"))]
    out: list[Block] = [Heading(2, "Faults")]
    if not faults:
        return [*out, Para("No fault was injected.", "note")]
    rows = []
    for i, f in enumerate(faults, 1):
        nodes = ", ".join(_node(n, obj(r.get("provinces"))) for n in _list(f.get("nodes"))) or _DASH
        end = _s(f.get("end_s")) if f.get("end_s") is not None else "end of run"
        rows.append((str(i), f"`{f.get('kind', '?')}`", nodes, _s(f.get("at_s")), end,
                     str(f.get("detail") or _DASH)))
    out.append(Table(("#", "kind", "nodes", "from", "to", "detail"), tuple(rows),
                     (True, False, False, True, True, False)))
    return out


def _provinces(r: dict[str, Any]) -> list[Block]:
    provs = {str(k): obj(v) for k, v in obj(r.get("provinces")).items()}
    if not provs:
        return []
    top = sorted(provs.items(), key=lambda kv: (-(_num(kv[1].get("sent")) or 0), kv[0]))[:10]
    rows = []
    for code, p in top:
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
    k = obj(r.get("kstb"))
    overall, seed = obj(k.get("overall")), obj(k.get("seed"))
    if not overall.get("count"):
        return []

    def pct(x: Any) -> str:
        v = _num(x)
        return _DASH if v is None else f"{100 * v:.2f} %"

    rows = [("**all items**", _int(overall.get("count")), pct(overall.get("zero_trip_rate")),
             pct(overall.get("at_most_once_rate")), _days(overall.get("mean_delay_days"))),
            ("seed report (2021)", _DASH, pct(seed.get("zero_trip_rate")), pct(seed.get("at_most_once_rate")), _DASH)]
    items = sorted(((n, obj(a)) for n, a in obj(k.get("items")).items()),
                   key=lambda kv: (-(_num(kv[1].get("count")) or 0), kv[0]))
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
    if obj(report.get("report")).get("charts", True) is False:
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


def render_report(run_dir: Path, report: dict[str, Any] | None = None) -> list[Path]:
    """Write report.md, report.html and charts/*.png into ``run_dir`` as ``report["report"]`` says.

    Reads ``run_dir/report.json`` when ``report`` is None. Returns the paths written,
    charts first. Raises ConfigError for a missing or unreadable report.json or an
    unknown schema_version.
    """
    run_dir = Path(run_dir)
    if report is None:
        report = load_report(run_dir)
    wanted = settings(report, run_dir / "report.json")
    written: list[Path] = []
    charts = []
    if wanted["charts"]:
        charts = draw_charts(report)
        (run_dir / "charts").mkdir(parents=True, exist_ok=True)
        for c in charts:
            path = run_dir / "charts" / c.name
            path.write_bytes(c.png)
            written.append(path)
    blocks = build_blocks(report, [(c.name, c.caption) for c in charts])
    if wanted["markdown"]:
        path = run_dir / "report.md"
        path.write_text(to_markdown(blocks), encoding="utf-8", newline="\n")
        written.append(path)
    if wanted["html"]:
        path = run_dir / "report.html"
        path.write_text(to_html(blocks, {c.name: c.png for c in charts}), encoding="utf-8", newline="\n")
        written.append(path)
    log.info("report rendered in %s: %s", run_dir, ", ".join(p.name for p in written))
    return written
