"""Scenario files (``scenarios/*.toml``): load and validate before anything starts.

A scenario has the sections ``[world]``, ``[topology]``, ``[load]``, ``[[faults]]``
and ``[report]``; ``scenarios/README.md`` documents every key, its unit, default
and allowed values. Unknown sections or keys, wrong types (a boolean is not a
number), impossible values, unknown flows or province codes, and keys that mean
nothing in their context are refused with a :class:`~exchange.errors.ConfigError`
whose message is ``"<file>: <dotted key>: <expected ..., found ...>"``.

Links are resolved at load time: with ``delay = "distance"`` each node's one-way
delay to the hub is ``distance_base_ms + distance_route_factor * d_km / 200``
(``d_km`` the haversine great-circle distance, R = 6371 km, between the node's
capital and the ``hub_at`` province's capital; light in fibre covers ~200 km per
ms), then the global ``jitter_ms``/``loss`` and the per-node ``[topology.links]``
overrides apply. See :mod:`exchange.planning` for the pure helpers.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exchange._scenario_check import (
    _NON_NEGATIVE,
    _POSITIVE,
    _PROBABILITY,
    _SCALARS,
    _Checker,
    _description,
    _parse_toml,
    _Range,
    _show,
)
from exchange.errors import ConfigError
from exchange.geo import PROVINCE_CODES
from exchange.payloads import LOAD_FLOWS as FLOWS
from exchange.planning import link_delays

__all__ = ["ApplySpec", "DEFAULT_HUB_AT", "FAULT_KINDS", "SELECTIONS", "TOPOLOGIES", "Fault", "FlowLoad", "LinkSpec", "PathModel",
           "Ramp", "ReportSpec",
           "Scenario", "load_scenario"]

DEFAULT_HUB_AT = "110000"
"""The hub sits at Beijing's capital unless ``topology.hub_at`` says otherwise."""

SELECTIONS = ("population", "gravity", "matrix")
"""How origins and targets are chosen (``load.selection``)."""

FAULT_KINDS = ("node_down", "hub_down", "link_slow", "link_loss", "partition", "key_revoked", "node_crash",
               "hub_crash")
"""The ``[[faults]]`` kinds."""

# Keys each fault kind accepts (sorted, as shown in messages).
_FAULT_KEYS: dict[str, tuple[str, ...]] = {
    "node_down": ("at_s", "duration_s", "kind", "nodes"),
    "hub_down": ("at_s", "duration_s", "kind"),
    "hub_crash": ("at_s", "duration_s", "kind"),
    "node_crash": ("at_s", "duration_s", "kind", "nodes"),
    "link_slow": ("at_s", "delay_ms", "duration_s", "jitter_ms", "kind", "nodes"),
    "link_loss": ("at_s", "duration_s", "kind", "loss", "nodes"),
    "partition": ("at_s", "duration_s", "kind", "nodes"),
    "key_revoked": ("at_s", "duration_s", "kind", "nodes"),
}
_SECTIONS = ("faults", "load", "report", "topology", "world")
_TOPOLOGY_KEYS = ("cohost", "delay", "distance_base_ms", "distance_route_factor", "hub_at", "jitter_ms", "kind",
                  "links", "loss", "nodes", "province_processes")
TOPOLOGIES = ("star", "regional", "direct")
_LOAD_KEYS = ("apply", "duration_s", "flows", "gravity_exponent", "identity_mismatch_ratio", "loadgen_processes",
              "matrix", "ramps", "request_timeout_s", "selection", "warmup_s")
_LINK_KEYS = ("delay_ms", "jitter_ms", "loss")


@dataclass(frozen=True, kw_only=True)
class PathModel:
    """How the delay of a direct province-to-province path is derived (topologies
    regional and direct): the same distance model over the two capitals, or the
    same fixed delay as every link."""

    mode: str = "distance"
    delay_ms: float = 0.0
    base_ms: float = 1.0
    route_factor: float = 1.5


@dataclass(frozen=True, kw_only=True)
class LinkSpec:
    """One province's link to the hub: one-way delay and jitter in ms, loss probability."""

    delay_ms: float
    jitter_ms: float
    loss: float


@dataclass(frozen=True, kw_only=True)
class FlowLoad:
    """Open-loop (Poisson) arrivals of one flow, before ramps."""

    flow: str
    rate_per_s: float


@dataclass(frozen=True, kw_only=True)
class Ramp:
    """Every flow's rate is multiplied by ``factor`` during ``[at_s, at_s + duration_s)``."""

    at_s: float
    duration_s: float
    factor: float


@dataclass(frozen=True, kw_only=True)
class Fault:
    """One entry of the fault timeline, active during ``[at_s, end_s)``.

    ``duration_s`` is None only for ``key_revoked`` without one (a revocation is
    permanent either way; a duration only bounds the window shown as active).
    ``delay_ms`` and ``jitter_ms`` (0 unless given) are set for ``link_slow`` only,
    ``loss`` for ``link_loss`` only; ``nodes`` is empty for ``hub_down``.
    """

    kind: str
    at_s: float
    duration_s: float | None
    nodes: tuple[str, ...]
    delay_ms: float | None = None
    jitter_ms: float | None = None
    loss: float | None = None

    @property
    def end_s(self) -> float | None:
        """When the fault ends (exclusive), or None if it lasts to the end of the run."""
        return None if self.duration_s is None else self.at_s + self.duration_s

    def active(self, t: float) -> bool:
        """Whether the fault is in effect at run time ``t`` seconds."""
        end = self.end_s
        return self.at_s <= t and (end is None or t < end)


@dataclass(frozen=True, kw_only=True)
class ApplySpec:
    """``[load.apply]``: how 跨省通办 applications (flow tongban.apply) are drawn."""

    include_unverified: bool = False  # also draw items no public source confirmed
    online_share: float = 0.6  # share of applicants who apply online where 全程网办 is offered


@dataclass(frozen=True, kw_only=True)
class ReportSpec:
    """Which report files to write besides ``report.json`` (always written)."""

    markdown: bool = True
    html: bool = True
    charts: bool = True
    #: the p99 a provincial client accepts for a national call; sweeps mark the knee by it
    latency_budget_ms: float = 3000.0


def _default_links() -> dict[str, LinkSpec]:
    delays = link_delays(PROVINCE_CODES, DEFAULT_HUB_AT, base_ms=1.0, route_factor=1.5)
    return {c: LinkSpec(delay_ms=d, jitter_ms=0.0, loss=0.0) for c, d in delays.items()}


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """A validated scenario. Construction (and :meth:`replace`) re-checks the invariants.

    ``links`` is resolved: one :class:`LinkSpec` per node in ``nodes``.
    ``matrix`` is set iff ``selection == "matrix"``.
    """

    name: str
    path: Path
    sha256: str
    description: str = ""
    scale: float = 1e-5
    seed: int = 2021
    nodes: tuple[str, ...] = PROVINCE_CODES
    province_processes: int = 4
    #: the provinces of each process exchange over one connection each way (``tongban node province --cohost``)
    cohost: bool = False
    hub_at: str = DEFAULT_HUB_AT
    topology: str = "star"
    links: dict[str, LinkSpec] = field(default_factory=_default_links)
    paths: PathModel = PathModel()
    duration_s: float = 20.0
    warmup_s: float = 0.0
    flows: tuple[FlowLoad, ...] = ()
    selection: str = "population"
    gravity_exponent: float = 1.0
    matrix: dict[str, dict[str, float]] | None = None
    ramps: tuple[Ramp, ...] = ()
    loadgen_processes: int = 1
    request_timeout_s: float = 10.0
    identity_mismatch_ratio: float = 0.0
    apply: ApplySpec = ApplySpec()
    faults: tuple[Fault, ...] = ()
    report: ReportSpec = ReportSpec()

    def __post_init__(self) -> None:
        _check_invariants(self)

    def replace(self, **changes: Any) -> Scenario:
        """A copy with ``changes`` applied, validated again (ConfigError if inconsistent)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable view (for ``report.json``'s ``scenario`` key)."""
        out = _jsonable(dataclasses.asdict(self))
        assert isinstance(out, dict)
        out["file"] = out.pop("path")  # docs/report-schema.md's name, which report.md reads
        return out


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, Path):
        return str(v)
    return v


# ---------------------------------------------------------------- value checks


def load_scenario(path: Path | str, *, overrides: Mapping[str, Any] | None = None) -> Scenario:
    """Read, parse and validate a scenario file.

    ``overrides`` holds command-line values: ``duration_s`` and ``seed`` (None
    means "not given"); they are validated like the file's own values.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the scenario: {e.strerror}") from e
    doc = _parse_toml(path, raw)
    c = _Checker(path)
    for section in doc:
        if section not in _SECTIONS:
            raise c.fail(section, f"unknown section (expected one of: {', '.join(_SECTIONS)})")
    o = {k: v for k, v in (overrides or {}).items() if v is not None}
    for k in o:
        if k not in ("duration_s", "seed"):
            raise c.fail(f"overrides.{k}", "unknown override (expected one of: duration_s, seed)")

    world = c.table("world", doc.get("world", {}), ("scale", "seed"))
    seed = o.get("seed", world.get("seed", 2021))
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise c.fail("world.seed", f"expected an integer, found {_show(seed)}")

    topo = c.table("topology", doc.get("topology", {}), _TOPOLOGY_KEYS)
    nodes_raw = topo.get("nodes", "all")
    if nodes_raw == "all":
        nodes = PROVINCE_CODES
    elif isinstance(nodes_raw, list):
        listed = c.codes("topology.nodes", nodes_raw, None, least=2)
        nodes = tuple(p for p in PROVINCE_CODES if p in listed)
    else:
        raise c.fail("topology.nodes", f'expected "all" or an array of province codes, found {_show(nodes_raw)}')
    hub_at = c.code("topology.hub_at", topo.get("hub_at", DEFAULT_HUB_AT))
    links = _links(c, topo, nodes, hub_at)

    load = c.table("load", doc.get("load", {}), _LOAD_KEYS)
    duration = c.scalar("duration_s", o.get("duration_s", load.get("duration_s", 20.0)))
    before_end = _Range(ge=0, lt=duration, lt_name="load.duration_s")
    selection = c.choice("load.selection", load.get("selection", "population"), SELECTIONS)
    if "gravity_exponent" in load and selection != "gravity":
        raise c.fail("load.gravity_exponent", f'only meaningful with selection = "gravity", '
                                              f'found selection = "{selection}"')
    flows = []
    for name, spec in c.table("load.flows", load.get("flows", {})).items():
        key = f"load.flows.{name}"
        if name not in FLOWS:
            dotted = [f for f in sorted(FLOWS) if f.startswith(f"{name}.")]
            hint = f'; quote a dotted name: [load.flows."{dotted[0]}"]' if dotted else ""
            raise c.fail(key, f"unknown flow (expected one of: {', '.join(sorted(FLOWS))}){hint}")
        spec = c.table(key, spec, ("rate_per_s",))
        rate = c.need(key, spec, "rate_per_s", _POSITIVE.describe())
        flows.append(FlowLoad(flow=name, rate_per_s=c.number(f"{key}.rate_per_s", rate, _POSITIVE)))
    if not flows:
        raise c.fail("load.flows", 'expected at least one flow, e.g. [load.flows."identity.verify"] '
                                   "with rate_per_s, found none")
    ramps = []
    for i, r in enumerate(c.tables("load.ramps", load.get("ramps", []), "[[load.ramps]]")):
        key = f"load.ramps[{i}]"
        r = c.table(key, r, ("at_s", "duration_s", "factor"))
        ramps.append(Ramp(
            at_s=c.number(f"{key}.at_s", c.need(key, r, "at_s", before_end.describe()), before_end),
            duration_s=c.number(f"{key}.duration_s", c.need(key, r, "duration_s", _POSITIVE.describe()), _POSITIVE),
            factor=c.number(f"{key}.factor", c.need(key, r, "factor", _NON_NEGATIVE.describe()), _NON_NEGATIVE)))

    report = c.table("report", doc.get("report", {}), ("charts", "html", "latency_budget_ms", "markdown"))
    return Scenario(
        name=path.stem,
        path=path,
        sha256=hashlib.sha256(raw).hexdigest(),
        description=_description(raw),
        scale=c.scalar("scale", world.get("scale", 1e-5)),
        seed=seed,
        nodes=nodes,
        province_processes=c.scalar("province_processes", topo.get("province_processes", 4)),
        cohost=c.boolean("topology.cohost", topo.get("cohost", False)),
        hub_at=hub_at,
        topology=_topology_kind(c, topo),
        links=links,
        paths=_paths(topo),
        duration_s=duration,
        warmup_s=c.number("load.warmup_s", load.get("warmup_s", 0.0), before_end),
        flows=tuple(flows),
        selection=selection,
        gravity_exponent=c.scalar("gravity_exponent", load.get("gravity_exponent", 1.0)),
        matrix=_matrix(c, load, selection, nodes),
        ramps=tuple(ramps),
        loadgen_processes=c.scalar("loadgen_processes", load.get("loadgen_processes", 1)),
        request_timeout_s=c.scalar("request_timeout_s", load.get("request_timeout_s", 10.0)),
        identity_mismatch_ratio=c.scalar("identity_mismatch_ratio", load.get("identity_mismatch_ratio", 0.0)),
        apply=_apply(c, load),
        faults=tuple(_fault(c, f"faults[{i}]", f, nodes, before_end)
                     for i, f in enumerate(c.tables("faults", doc.get("faults", []), "[[faults]]"))),
        report=ReportSpec(**{k: (c.number(f"report.{k}", v, _POSITIVE) if k == "latency_budget_ms"
                                 else c.boolean(f"report.{k}", v)) for k, v in report.items()}),
    )


def _apply(c: _Checker, load: dict[str, Any]) -> ApplySpec:
    spec = c.table("load.apply", load.get("apply", {}), ("include_unverified", "online_share"))
    out = ApplySpec()
    if "include_unverified" in spec:
        out = dataclasses.replace(out, include_unverified=c.boolean("load.apply.include_unverified",
                                                                     spec["include_unverified"]))
    if "online_share" in spec:
        out = dataclasses.replace(out, online_share=c.number("load.apply.online_share", spec["online_share"],
                                                             _PROBABILITY))
    return out


def _topology_kind(c: _Checker, topo: dict[str, Any]) -> str:
    kind = topo.get("kind", "star")
    if kind not in TOPOLOGIES:
        raise c.fail("topology.kind", f"expected one of: {', '.join(TOPOLOGIES)}, found {_show(kind)}")
    return str(kind)


def _paths(topo: dict[str, Any]) -> PathModel:
    """The direct-path model (values already checked by ``_links``)."""
    delay = topo.get("delay", "distance")
    if delay == "distance":
        return PathModel(mode="distance", base_ms=float(topo.get("distance_base_ms", 1.0)),
                         route_factor=float(topo.get("distance_route_factor", 1.5)))
    return PathModel(mode="fixed", delay_ms=float(delay))


def _links(c: _Checker, topo: dict[str, Any], nodes: tuple[str, ...], hub_at: str) -> dict[str, LinkSpec]:
    """Resolve every node's link: distance model or fixed delay, global jitter/loss, overrides."""
    delay = topo.get("delay", "distance")
    if delay == "distance":
        base = c.number("topology.distance_base_ms", topo.get("distance_base_ms", 1.0), _NON_NEGATIVE)
        factor = c.number("topology.distance_route_factor", topo.get("distance_route_factor", 1.5), _Range(ge=1))
        delays = link_delays(nodes, hub_at, base_ms=base, route_factor=factor)
    elif _NON_NEGATIVE.ok(delay):
        for k in ("distance_base_ms", "distance_route_factor"):
            if k in topo:
                raise c.fail(f"topology.{k}", f'only meaningful with delay = "distance", found delay = {_show(delay)}')
        delays = dict.fromkeys(nodes, float(delay))
    else:
        raise c.fail("topology.delay", f'expected "distance" or a one-way delay in ms (a number at least 0), '
                                       f"found {_show(delay)}")
    jitter = c.number("topology.jitter_ms", topo.get("jitter_ms", 0.0), _NON_NEGATIVE)
    loss = c.number("topology.loss", topo.get("loss", 0.0), _PROBABILITY)
    links = {n: LinkSpec(delay_ms=delays[n], jitter_ms=jitter, loss=loss) for n in nodes}
    for code, spec in c.table("topology.links", topo.get("links", {})).items():
        key = f"topology.links.{code}"
        c.code(key, code, nodes)
        spec = c.table(key, spec, _LINK_KEYS)
        if not spec:
            raise c.fail(key, f"expected at least one of: {', '.join(_LINK_KEYS)}; found an empty table")
        ranges = {"delay_ms": _NON_NEGATIVE, "jitter_ms": _NON_NEGATIVE, "loss": _PROBABILITY}
        links[code] = dataclasses.replace(
            links[code], **{k: c.number(f"{key}.{k}", v, ranges[k]) for k, v in spec.items()})
    return links


def _matrix(c: _Checker, load: dict[str, Any], selection: str,
            nodes: tuple[str, ...]) -> dict[str, dict[str, float]] | None:
    """``[load.matrix]``: required iff selection is "matrix"; origin -> target -> weight."""
    if selection != "matrix":
        if "matrix" in load:
            raise c.fail("load.matrix", f'only meaningful with selection = "matrix", found selection = "{selection}"')
        return None
    if "matrix" not in load:
        raise c.fail("load.matrix", 'required with selection = "matrix" (expected a table of origin code -> '
                                    "{target code -> weight}), found none")
    matrix: dict[str, dict[str, float]] = {}
    for origin, row in c.table("load.matrix", load["matrix"]).items():
        okey = f"load.matrix.{origin}"
        c.code(okey, origin, nodes)
        matrix[origin] = {}
        for target, weight in c.table(okey, row).items():
            tkey = f"{okey}.{target}"
            c.code(tkey, target, nodes)
            if target == origin:
                raise c.fail(tkey, f"expected a target other than the origin {origin}, found the origin itself")
            matrix[origin][target] = c.number(tkey, weight, _NON_NEGATIVE)
    if not any(w > 0 for row in matrix.values() for w in row.values()):
        raise c.fail("load.matrix", "expected at least one positive weight, found none")
    return matrix


def _fault(c: _Checker, key: str, f: dict[str, Any], nodes: tuple[str, ...], before_end: _Range) -> Fault:
    """One ``[[faults]]`` table, with the keys its kind allows and requires."""
    all_keys = sorted({k for keys in _FAULT_KEYS.values() for k in keys})
    c.table(key, f, all_keys)
    kind = c.choice(f"{key}.kind", c.need(key, f, "kind", f"one of: {', '.join(FAULT_KINDS)}"), FAULT_KINDS)
    for k in f:
        if k not in _FAULT_KEYS[kind]:
            raise c.fail(f"{key}.{k}", f"not used by a {kind} fault (expected only: {', '.join(_FAULT_KEYS[kind])})")
    at = c.number(f"{key}.at_s", c.need(key, f, "at_s", before_end.describe()), before_end)
    if kind == "key_revoked" and "duration_s" not in f:
        duration = None
    else:
        duration = c.number(f"{key}.duration_s", c.need(key, f, "duration_s", _POSITIVE.describe()), _POSITIVE)
    codes: tuple[str, ...] = ()
    if kind not in ("hub_down", "hub_crash"):
        codes = c.codes(f"{key}.nodes", c.need(key, f, "nodes", "an array of province codes"), nodes, least=1)
        if kind == "key_revoked" and len(codes) != 1:
            raise c.fail(f"{key}.nodes", f"expected exactly one province code for key_revoked, found {len(codes)}")
    extra: dict[str, float] = {}
    if kind == "link_slow":
        extra["delay_ms"] = c.number(f"{key}.delay_ms", c.need(key, f, "delay_ms", _POSITIVE.describe()), _POSITIVE)
        extra["jitter_ms"] = c.number(f"{key}.jitter_ms", f.get("jitter_ms", 0.0), _NON_NEGATIVE)
    if kind == "link_loss":
        rng = _Range(gt=0, lt=1)
        extra["loss"] = c.number(f"{key}.loss", c.need(key, f, "loss", rng.describe()), rng)
    return Fault(kind=kind, at_s=at, duration_s=duration, nodes=codes, **extra)


# ---------------------------------------------------------------- invariants


def _check_invariants(s: Scenario) -> None:
    """Cross-field rules, re-checked on every construction (so also after replace())."""
    c = _Checker(s.path)
    for attr in _SCALARS:
        c.scalar(attr, getattr(s, attr))
    if isinstance(s.seed, bool) or not isinstance(s.seed, int):
        raise c.fail("world.seed", f"expected an integer, found {_show(s.seed)}")
    c.codes("topology.nodes", list(s.nodes), None, least=2)
    c.code("topology.hub_at", s.hub_at)
    if sorted(s.links) != sorted(s.nodes):
        raise c.fail("topology.links", f"expected one resolved link per node ({', '.join(s.nodes)}), "
                                       f"found links for: {', '.join(s.links) or 'none'}")
    before_end = _Range(ge=0, lt=s.duration_s, lt_name="load.duration_s")
    c.number("load.warmup_s", s.warmup_s, before_end)
    for f in s.flows:
        if f.flow not in FLOWS:
            raise c.fail(f"load.flows.{f.flow}", f"unknown flow (expected one of: {', '.join(sorted(FLOWS))})")
        c.number(f"load.flows.{f.flow}.rate_per_s", f.rate_per_s, _POSITIVE)
    c.choice("load.selection", s.selection, SELECTIONS)
    if (s.matrix is not None) != (s.selection == "matrix"):
        raise c.fail("load.matrix", f'expected a matrix iff selection = "matrix", found selection = '
                                    f'"{s.selection}" and {"a" if s.matrix is not None else "no"} matrix')
    for origin, row in (s.matrix or {}).items():
        c.code(f"load.matrix.{origin}", origin, s.nodes)
        for target in row:
            c.code(f"load.matrix.{origin}.{target}", target, s.nodes)
    if s.matrix is not None and not any(w > 0 for row in s.matrix.values() for w in row.values()):
        raise c.fail("load.matrix", "expected at least one positive weight, found none")
    for i, r in enumerate(s.ramps):
        c.number(f"load.ramps[{i}].at_s", r.at_s, before_end)
    for i, f in enumerate(s.faults):
        c.choice(f"faults[{i}].kind", f.kind, FAULT_KINDS)
        c.number(f"faults[{i}].at_s", f.at_s, before_end)
        for j, code in enumerate(f.nodes):
            c.code(f"faults[{i}].nodes[{j}]", code, s.nodes)
