"""Scenario files: every refusal names the file, the dotted key and the reason; good files resolve."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from exchange.errors import ConfigError
from exchange.geo import PROVINCE_CODES
from exchange.payloads import LOAD_FLOWS as FLOWS
from exchange.planning import link_delays
from exchange.scenario import Fault, FlowLoad, LinkSpec, Ramp, ReportSpec, Scenario, load_scenario

ROOT = Path(__file__).resolve().parents[2]
FLOW = '[load.flows."identity.verify"]\nrate_per_s = 10\n'
UNKNOWN = "(expected one of the 32 node codes, e.g. 110000, 440000)"
FLOW_NAMES = ", ".join(sorted(FLOWS))
FAULT_KEYS = "at_s, delay_ms, duration_s, jitter_ms, kind, loss, nodes"


def _write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# (id, file text, message after "<path>: ")
BAD: list[tuple[str, str, str]] = [
    ("unknown section", "[wrld]\nscale = 1\n" + FLOW,
     "wrld: unknown section (expected one of: faults, load, report, topology, world)"),
    ("section not a table", "world = 3\n" + FLOW, "world: expected a table, found 3"),
    ("unknown world key", "[world]\nsead = 1\n" + FLOW, "world.sead: unknown key (expected one of: scale, seed)"),
    ("unknown topology key", '[topology]\nhub = "110000"\n' + FLOW,
     "topology.hub: unknown key (expected one of: cohost, delay, distance_base_ms, distance_route_factor, hub_at, "
     "jitter_ms, kind, links, loss, nodes, province_processes)"),
    ("cohost not a boolean", "[topology]\ncohost = 1\n" + FLOW, "topology.cohost: expected true or false, found 1"),
    ("unknown load key", "[load]\nduration_s = 3\nrate = 5\n" + FLOW,
     "load.rate: unknown key (expected one of: apply, duration_s, flows, gravity_exponent, identity_mismatch_ratio, "
     "loadgen_processes, matrix, ramps, request_timeout_s, selection, warmup_s)"),
    ("unknown report key", FLOW + "[report]\npdf = true\n",
     "report.pdf: unknown key (expected one of: charts, html, latency_budget_ms, markdown)"),
    ("unknown link key", FLOW + '[topology.links."540000"]\ndelay = 5\n',
     "topology.links.540000.delay: unknown key (expected one of: delay_ms, jitter_ms, loss)"),
    ("unknown ramp key", FLOW + "[[load.ramps]]\nat_s = 1\nduration_s = 1\nfactor = 2\nuntil_s = 3\n",
     "load.ramps[0].until_s: unknown key (expected one of: at_s, duration_s, factor)"),
    ("unknown fault key", FLOW + '[[faults]]\nkind = "hub_down"\nat = 1\n',
     f"faults[0].at: unknown key (expected one of: {FAULT_KEYS})"),
    ("unknown flow key", '[load.flows."ecert.fetch"]\nrps = 3\n',
     "load.flows.ecert.fetch.rps: unknown key (expected one of: rate_per_s)"),
    ("string as number", '[world]\nscale = "big"\n' + FLOW,
     "world.scale: expected a number greater than 0 and at most 1, found string 'big'"),
    ("scale above 1", "[world]\nscale = 2\n" + FLOW, "world.scale: expected a number greater than 0 and at most 1, found 2"),
    ("bool as number", "[load]\nduration_s = true\n" + FLOW,
     "load.duration_s: expected a number greater than 0 and at most 86400, found boolean true"),
    ("float seed", "[world]\nseed = 1.5\n" + FLOW, "world.seed: expected an integer, found 1.5"),
    ("processes 0", "[topology]\nprovince_processes = 0\n" + FLOW,
     "topology.province_processes: expected an integer from 1 to 32, found 0"),
    ("processes float", "[topology]\nprovince_processes = 4.0\n" + FLOW,
     "topology.province_processes: expected an integer from 1 to 32, found 4.0"),
    ("too many loadgens", "[load]\nloadgen_processes = 9\n" + FLOW,
     "load.loadgen_processes: expected an integer from 1 to 8, found 9"),
    ("negative rate", '[load.flows."ecert.fetch"]\nrate_per_s = -3\n',
     "load.flows.ecert.fetch.rate_per_s: expected a number greater than 0, found -3"),
    ("missing rate", '[load.flows."ecert.fetch"]\n',
     "load.flows.ecert.fetch.rate_per_s: required key missing (expected a number greater than 0)"),
    ("unknown flow", '[load.flows."tax.pay"]\nrate_per_s = 1\n',
     f"load.flows.tax.pay: unknown flow (expected one of: {FLOW_NAMES})"),
    ("unquoted dotted flow", "[load.flows.identity.verify]\nrate_per_s = 1\n",
     f'load.flows.identity: unknown flow (expected one of: {FLOW_NAMES}); quote a dotted name: '
     '[load.flows."identity.verify"]'),
    ("no flows", "[load]\nduration_s = 5\n",
     'load.flows: expected at least one flow, e.g. [load.flows."identity.verify"] with rate_per_s, found none'),
    ("duration too long", "[load]\nduration_s = 90000\n" + FLOW,
     "load.duration_s: expected a number greater than 0 and at most 86400, found 90000"),
    ("warmup = duration", "[load]\nduration_s = 10\nwarmup_s = 10\n" + FLOW,
     "load.warmup_s: expected a number at least 0 and less than load.duration_s (10), found 10"),
    ("timeout 0", "[load]\nrequest_timeout_s = 0\n" + FLOW,
     "load.request_timeout_s: expected a number greater than 0, found 0"),
    ("mismatch above 1", "[load]\nidentity_mismatch_ratio = 1.5\n" + FLOW,
     "load.identity_mismatch_ratio: expected a number from 0 to 1, found 1.5"),
    ("unknown selection", '[load]\nselection = "random"\n' + FLOW,
     "load.selection: expected one of: population, gravity, matrix; found string 'random'"),
    ("gravity exponent without gravity", "[load]\ngravity_exponent = 2\n" + FLOW,
     'load.gravity_exponent: only meaningful with selection = "gravity", found selection = "population"'),
    ("gravity exponent 0", '[load]\nselection = "gravity"\ngravity_exponent = 0\n' + FLOW,
     "load.gravity_exponent: expected a number greater than 0, found 0"),
    ("nodes word", '[topology]\nnodes = "some"\n' + FLOW,
     "topology.nodes: expected \"all\" or an array of province codes, found string 'some'"),
    ("unknown node", '[topology]\nnodes = ["110000", "999999"]\n' + FLOW,
     f"topology.nodes[1]: unknown province code '999999' {UNKNOWN}"),
    ("node as integer", '[topology]\nnodes = ["110000", 440000]\n' + FLOW,
     'topology.nodes[1]: expected a six-digit province code as a string, e.g. "440000", found 440000'),
    ("one node", '[topology]\nnodes = ["110000"]\n' + FLOW,
     "topology.nodes: expected at least 2 province codes, found an array of 1 item"),
    ("duplicate node", '[topology]\nnodes = ["110000", "440000", "110000"]\n' + FLOW,
     "topology.nodes[2]: duplicate province code '110000' (expected each code once)"),
    ("hub at the hub code", '[topology]\nhub_at = "000000"\n' + FLOW,
     f"topology.hub_at: unknown province code '000000' {UNKNOWN}"),
    ("delay word", '[topology]\ndelay = "far"\n' + FLOW,
     "topology.delay: expected \"distance\" or a one-way delay in ms (a number at least 0), found string 'far'"),
    ("distance constant with fixed delay", "[topology]\ndelay = 30\ndistance_base_ms = 2\n" + FLOW,
     'topology.distance_base_ms: only meaningful with delay = "distance", found delay = 30'),
    ("route factor below 1", "[topology]\ndistance_route_factor = 0.5\n" + FLOW,
     "topology.distance_route_factor: expected a number at least 1, found 0.5"),
    ("loss 1", "[topology]\nloss = 1\n" + FLOW, "topology.loss: expected a number at least 0 and less than 1, found 1"),
    ("negative jitter", "[topology]\njitter_ms = -1\n" + FLOW, "topology.jitter_ms: expected a number at least 0, found -1"),
    ("unknown link province", FLOW + '[topology.links."999999"]\ndelay_ms = 5\n',
     f"topology.links.999999: unknown province code '999999' {UNKNOWN}"),
    ("link province not in nodes", '[topology]\nnodes = ["110000", "440000"]\n' + FLOW
     + '[topology.links."540000"]\ndelay_ms = 5\n',
     "topology.links.540000: province 540000 is not in topology.nodes (expected one of: 110000, 440000)"),
    ("empty link override", FLOW + '[topology.links."540000"]\n',
     "topology.links.540000: expected at least one of: delay_ms, jitter_ms, loss; found an empty table"),
    ("link loss above 1", FLOW + '[topology.links."540000"]\nloss = 2\n',
     "topology.links.540000.loss: expected a number at least 0 and less than 1, found 2"),
    ("matrix missing", '[load]\nselection = "matrix"\n' + FLOW,
     'load.matrix: required with selection = "matrix" (expected a table of origin code -> '
     "{target code -> weight}), found none"),
    ("matrix without matrix selection", FLOW + '[load.matrix."440000"]\n"110000" = 1\n',
     'load.matrix: only meaningful with selection = "matrix", found selection = "population"'),
    ("matrix unknown target", '[load]\nselection = "matrix"\n' + FLOW + '[load.matrix."440000"]\n"999999" = 1\n',
     f"load.matrix.440000.999999: unknown province code '999999' {UNKNOWN}"),
    ("matrix unknown origin", '[load]\nselection = "matrix"\n' + FLOW + '[load.matrix."44"]\n"110000" = 1\n',
     f"load.matrix.44: unknown province code '44' {UNKNOWN}"),
    ("matrix self pair", '[load]\nselection = "matrix"\n' + FLOW + '[load.matrix."440000"]\n"440000" = 1\n',
     "load.matrix.440000.440000: expected a target other than the origin 440000, found the origin itself"),
    ("matrix negative weight", '[load]\nselection = "matrix"\n' + FLOW + '[load.matrix."440000"]\n"110000" = -1\n',
     "load.matrix.440000.110000: expected a number at least 0, found -1"),
    ("matrix all zero", '[load]\nselection = "matrix"\n' + FLOW + '[load.matrix."440000"]\n"110000" = 0\n',
     "load.matrix: expected at least one positive weight, found none"),
    ("ramp missing factor", FLOW + "[[load.ramps]]\nat_s = 1\nduration_s = 1\n",
     "load.ramps[0].factor: required key missing (expected a number at least 0)"),
    ("ramp after the end", FLOW + "[[load.ramps]]\nat_s = 20\nduration_s = 1\nfactor = 2\n",
     "load.ramps[0].at_s: expected a number at least 0 and less than load.duration_s (20), found 20"),
    ("ramps as a table", FLOW + "[load.ramps]\nat_s = 1\n",
     "load.ramps: expected an array of tables ([[load.ramps]]), found a table"),
    ("faults as a table", FLOW + "[faults]\nkind = \"hub_down\"\n",
     "faults: expected an array of tables ([[faults]]), found a table"),
    ("fault without kind", FLOW + "[[faults]]\nat_s = 1\n",
     "faults[0].kind: required key missing (expected one of: node_down, hub_down, link_slow, link_loss, "
     "partition, key_revoked, node_crash, hub_crash)"),
    ("unknown fault kind", FLOW + '[[faults]]\nkind = "meteor"\nat_s = 1\n',
     "faults[0].kind: expected one of: node_down, hub_down, link_slow, link_loss, partition, key_revoked, node_crash, hub_crash; "
     "found string 'meteor'"),
    ("key_revoked with two nodes", FLOW + '[[faults]]\nkind = "key_revoked"\nat_s = 1\nnodes = ["110000", "440000"]\n',
     "faults[0].nodes: expected exactly one province code for key_revoked, found 2"),
    ("hub_down with nodes", FLOW + '[[faults]]\nkind = "hub_down"\nat_s = 1\nduration_s = 2\nnodes = ["110000"]\n',
     "faults[0].nodes: not used by a hub_down fault (expected only: at_s, duration_s, kind)"),
    ("link_slow without delay", FLOW + '[[faults]]\nkind = "link_slow"\nat_s = 1\nduration_s = 2\nnodes = ["110000"]\n',
     "faults[0].delay_ms: required key missing (expected a number greater than 0)"),
    ("delay on link_loss", FLOW + '[[faults]]\nkind = "link_loss"\nat_s = 1\nduration_s = 2\nnodes = ["110000"]\n'
     "loss = 0.3\ndelay_ms = 200\n",
     "faults[0].delay_ms: not used by a link_loss fault (expected only: at_s, duration_s, kind, loss, nodes)"),
    ("link_loss of 0", FLOW + '[[faults]]\nkind = "link_loss"\nat_s = 1\nduration_s = 2\nnodes = ["110000"]\nloss = 0\n',
     "faults[0].loss: expected a number greater than 0 and less than 1, found 0"),
    ("fault after the end", FLOW + '[[faults]]\nkind = "hub_down"\nat_s = 25\nduration_s = 2\n',
     "faults[0].at_s: expected a number at least 0 and less than load.duration_s (20), found 25"),
    ("node_down without duration", FLOW + '[[faults]]\nkind = "node_down"\nat_s = 1\nnodes = ["110000"]\n',
     "faults[0].duration_s: required key missing (expected a number greater than 0)"),
    ("node_down without nodes", FLOW + '[[faults]]\nkind = "node_down"\nat_s = 1\nduration_s = 1\n',
     "faults[0].nodes: required key missing (expected an array of province codes)"),
    ("fault unknown province", FLOW + '[[faults]]\nkind = "partition"\nat_s = 1\nduration_s = 1\nnodes = ["999999"]\n',
     f"faults[0].nodes[0]: unknown province code '999999' {UNKNOWN}"),
    ("fault province not in nodes", '[topology]\nnodes = ["110000", "440000"]\n' + FLOW
     + '[[faults]]\nkind = "node_down"\nat_s = 1\nduration_s = 1\nnodes = ["510000"]\n',
     "faults[0].nodes[0]: province 510000 is not in topology.nodes (expected one of: 110000, 440000)"),
    ("second fault", FLOW + '[[faults]]\nkind = "hub_down"\nat_s = 1\nduration_s = 1\n'
     '[[faults]]\nkind = "node_down"\nat_s = 1\nduration_s = -1\nnodes = ["110000"]\n',
     "faults[1].duration_s: expected a number greater than 0, found -1"),
    ("report not boolean", FLOW + "[report]\nhtml = 1\n", "report.html: expected true or false, found 1"),
    ("syntax error", "[world]\nscale = \n" + FLOW, "line 2, column 9: not valid TOML: invalid value"),
    ("table twice", FLOW + "[world]\nseed = 1\n[world]\nscale = 1\n",
     "line 5, column 7: not valid TOML: cannot declare ('world',) twice"),
    ("unterminated string", FLOW + '[world]\nseed = "1\n',
     "line 4, column 10: not valid TOML: illegal character '\\n'"),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_scenarios_are_refused_naming_file_key_and_reason(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_scenario(path)
    assert str(e.value) == f"{path}: {expected}"


def test_unreadable_and_non_utf8_files_are_refused(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=re.escape(f"{missing}: cannot read the scenario: No such file")):
        load_scenario(missing)
    bad = tmp_path / "latin.toml"
    bad.write_bytes(b"# caf\xe9\n")
    with pytest.raises(ConfigError) as e:
        load_scenario(bad)
    assert str(e.value) == f"{bad}: byte 5: not valid UTF-8 (expected a UTF-8 TOML file)"


def test_defaults(tmp_path: Path) -> None:
    s = load_scenario(_write(tmp_path, FLOW, "tiny.toml"))
    assert (s.name, s.description, s.scale, s.seed) == ("tiny", "", 1e-5, 2021)
    assert s.nodes == PROVINCE_CODES and s.province_processes == 4 and s.hub_at == "110000" and s.cohost is False
    assert (s.duration_s, s.warmup_s, s.selection, s.gravity_exponent) == (20.0, 0.0, "population", 1.0)
    assert s.flows == (FlowLoad(flow="identity.verify", rate_per_s=10.0),)
    assert (s.matrix, s.ramps, s.faults) == (None, (), ())
    assert (s.loadgen_processes, s.request_timeout_s, s.identity_mismatch_ratio) == (1, 10.0, 0.0)
    assert s.report == ReportSpec(markdown=True, html=True, charts=True)
    expected = link_delays(PROVINCE_CODES, "110000", base_ms=1.0, route_factor=1.5)
    assert s.links == {c: LinkSpec(delay_ms=expected[c], jitter_ms=0.0, loss=0.0) for c in PROVINCE_CODES}
    assert s.links["110000"].delay_ms == 1.0 and 18 < s.links["650000"].delay_ms < 20
    assert len(s.sha256) == 64 and s.path == tmp_path / "tiny.toml"


def test_links_resolve_distance_global_values_and_overrides(tmp_path: Path) -> None:
    s = load_scenario(_write(tmp_path, (
        '[topology]\nnodes = ["650000", "110000", "540000", "440000"]\nhub_at = "440000"\n'
        "jitter_ms = 0.5\nloss = 0.001\ndistance_base_ms = 2\ndistance_route_factor = 1.2\n"
        '[topology.links."540000"]\ndelay_ms = 200\nloss = 0.02\n' + FLOW)))
    assert s.nodes == ("110000", "440000", "540000", "650000")  # code order
    d = link_delays(s.nodes, "440000", base_ms=2.0, route_factor=1.2)
    assert s.links["440000"] == LinkSpec(delay_ms=2.0, jitter_ms=0.5, loss=0.001)
    assert s.links["110000"] == LinkSpec(delay_ms=d["110000"], jitter_ms=0.5, loss=0.001)
    assert s.links["540000"] == LinkSpec(delay_ms=200.0, jitter_ms=0.5, loss=0.02)
    assert s.links["650000"].delay_ms == d["650000"] and set(s.links) == set(s.nodes)


def test_a_fixed_delay_applies_to_every_link(tmp_path: Path) -> None:
    s = load_scenario(_write(tmp_path, '[topology]\ndelay = 30\n' + FLOW + '[topology.links."110000"]\njitter_ms = 3\n'))
    assert {link.delay_ms for link in s.links.values()} == {30.0}
    assert s.links["110000"] == LinkSpec(delay_ms=30.0, jitter_ms=3.0, loss=0.0)


def test_description_is_the_first_comment_line(tmp_path: Path) -> None:
    s = load_scenario(_write(tmp_path, "\n## surge: what if everyone asks at once?\n# more words\n" + FLOW))
    assert s.description == "surge: what if everyone asks at once?"
    assert load_scenario(_write(tmp_path, FLOW + "# trailing comment\n")).description == ""


def test_overrides_replace_seed_and_duration_and_are_validated(tmp_path: Path) -> None:
    path = _write(tmp_path, "[world]\nseed = 5\n[load]\nduration_s = 60\n" + FLOW
                  + '[[faults]]\nkind = "hub_down"\nat_s = 30\nduration_s = 5\n')
    s = load_scenario(path, overrides={"seed": 9, "duration_s": 45.0})
    assert (s.seed, s.duration_s) == (9, 45.0)
    s = load_scenario(path, overrides={"seed": None, "duration_s": None})
    assert (s.seed, s.duration_s) == (5, 60.0)
    with pytest.raises(ConfigError) as e:
        load_scenario(path, overrides={"duration_s": 10.0})
    assert str(e.value) == (f"{path}: faults[0].at_s: expected a number at least 0 and less than "
                            "load.duration_s (10), found 30")
    with pytest.raises(ConfigError) as e:
        load_scenario(path, overrides={"duration_s": -1.0})
    assert str(e.value) == f"{path}: load.duration_s: expected a number greater than 0 and at most 86400, found -1.0"
    with pytest.raises(ConfigError) as e:
        load_scenario(path, overrides={"rate": 3})
    assert str(e.value) == f"{path}: overrides.rate: unknown override (expected one of: duration_s, seed)"


def test_faults_ramps_and_matrix_load(tmp_path: Path) -> None:
    s = load_scenario(_write(tmp_path, (
        '[load]\nselection = "matrix"\n' + FLOW + '[load.matrix."440000"]\n"110000" = 3\n"310000" = 1.5\n'
        "[[load.ramps]]\nat_s = 10\nduration_s = 5\nfactor = 2\n"
        '[[faults]]\nkind = "link_slow"\nat_s = 5\nduration_s = 5\nnodes = ["440000", "540000"]\ndelay_ms = 200\n'
        '[[faults]]\nkind = "key_revoked"\nat_s = 12\nnodes = ["310000"]\n'
        '[[faults]]\nkind = "link_loss"\nat_s = 0\nduration_s = 50\nnodes = ["650000"]\nloss = 0.3\n')))
    assert s.matrix == {"440000": {"110000": 3.0, "310000": 1.5}}
    assert s.ramps == (Ramp(at_s=10.0, duration_s=5.0, factor=2.0),)
    slow, revoked, lossy = s.faults
    assert slow == Fault(kind="link_slow", at_s=5.0, duration_s=5.0, nodes=("440000", "540000"), delay_ms=200.0,
                         jitter_ms=0.0)
    assert slow.loss is None and slow.end_s == 10.0
    assert [slow.active(t) for t in (4.99, 5, 9.99, 10)] == [False, True, True, False]
    assert revoked.duration_s is None and revoked.end_s is None and revoked.active(1e9) and not revoked.active(11)
    assert lossy.loss == 0.3 and lossy.delay_ms is None and lossy.end_s == 50.0


def test_to_dict_is_json_serialisable(tmp_path: Path) -> None:
    s = load_scenario(_write(tmp_path, "# purpose\n" + FLOW + '[[faults]]\nkind = "hub_down"\nat_s = 1\nduration_s = 2\n'))
    d = json.loads(json.dumps(s.to_dict()))
    assert d["name"] == "s" and d["file"] == str(s.path) and d["description"] == "purpose"
    assert "path" not in d and d["sha256"] == s.sha256
    assert d["nodes"] == list(PROVINCE_CODES) and d["links"]["110000"] == {"delay_ms": 1.0, "jitter_ms": 0.0, "loss": 0.0}
    assert d["flows"] == [{"flow": "identity.verify", "rate_per_s": 10.0}]
    assert d["faults"] == [{"kind": "hub_down", "at_s": 1.0, "duration_s": 2.0, "nodes": [], "delay_ms": None,
                            "jitter_ms": None, "loss": None}]
    assert d["report"] == {"markdown": True, "html": True, "charts": True, "latency_budget_ms": 3000.0}
    assert d["matrix"] is None


def test_replace_revalidates(tmp_path: Path) -> None:
    path = _write(tmp_path, FLOW)
    s = load_scenario(path)
    assert s.replace(seed=7).seed == 7 and s.replace(duration_s=5.0).duration_s == 5.0
    with pytest.raises(ConfigError) as e:
        s.replace(warmup_s=30.0)
    assert str(e.value) == f"{path}: load.warmup_s: expected a number at least 0 and less than load.duration_s (20), found 30.0"
    with pytest.raises(ConfigError) as e:
        s.replace(selection="matrix")
    assert str(e.value) == f'{path}: load.matrix: expected a matrix iff selection = "matrix", found selection = "matrix" and no matrix'
    with pytest.raises(ConfigError) as e:
        s.replace(selection="matrix", matrix={"110000": {"440000": 0.0}})
    assert str(e.value) == f"{path}: load.matrix: expected at least one positive weight, found none"
    with pytest.raises(ConfigError) as e:
        s.replace(nodes=("110000", "440000"))
    assert str(e.value).startswith(f"{path}: topology.links: expected one resolved link per node (110000, 440000), found")
    with pytest.raises(ConfigError, match="faults\\[0\\].nodes\\[0\\]: province 510000 is not in topology.nodes"):
        s.replace(nodes=("110000", "440000"), links={c: s.links[c] for c in ("110000", "440000")},
                  faults=(Fault(kind="node_down", at_s=1.0, duration_s=1.0, nodes=("510000",)),))


def test_a_scenario_can_be_built_in_code_with_defaults() -> None:
    s = Scenario(name="x", path=Path("x.toml"), sha256="")
    assert s.nodes == PROVINCE_CODES and set(s.links) == set(PROVINCE_CODES) and s.flows == ()


def test_readme_example_loads(tmp_path: Path) -> None:
    readme = (ROOT / "scenarios" / "README.md").read_text(encoding="utf-8")
    example = re.search(r"## Full example\n\n```toml\n(.*?)```", readme, re.DOTALL)
    assert example is not None
    s = load_scenario(_write(tmp_path, example[1], "slow-tibet.toml"))
    assert s.description.startswith("slow-tibet:")
    assert s.links["540000"] == LinkSpec(delay_ms=200.0, jitter_ms=0.5, loss=0.02)
    assert [f.kind for f in s.faults] == ["node_down", "link_slow", "key_revoked"]
    assert s.selection == "gravity" and s.warmup_s == 5.0 and len(s.flows) == 2


@pytest.mark.parametrize("path", sorted((ROOT / "scenarios").glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_scenario_validates(path: Path) -> None:
    s = load_scenario(path)
    assert s.flows and s.description
    json.dumps(s.to_dict())


def test_quickstart_loads_from_a_string_path() -> None:
    s = load_scenario(str(ROOT / "scenarios" / "quickstart.toml"))
    assert s.name == "quickstart" and len(s.nodes) == 32
