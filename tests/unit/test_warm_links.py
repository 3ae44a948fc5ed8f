"""Connecting the direct links before the load: a node process's ``warm`` command and
the runner waiting for it (the links themselves: tests/integration/test_topologies.py)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from exchange._procs import Children
from exchange.errors import RoutingError
from exchange.progress import LiveProgress
from exchange.runner import _warm_links
from nodes.link import LinkShim
from nodes.process import _apply


class _Province:
    """What ``_apply`` needs of a ProvinceNode for ``{"op": "warm"}``."""

    def __init__(self, links: tuple[int, list[str]] | Exception, refresh: Exception | None = None) -> None:
        self.links, self.refresh, self.refreshed, self.warmed = links, refresh, False, False

    async def refresh_directory(self) -> int:
        self.refreshed = True
        if self.refresh is not None:
            raise self.refresh
        return 7

    async def warm_links(self) -> tuple[int, list[str]]:
        assert self.refreshed, "links connect after the directory refresh"
        self.warmed = True
        if isinstance(self.links, Exception):
            raise self.links
        return self.links


def _warm(nodes: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    asyncio.run(_apply({"op": "warm"}, nodes, LinkShim()))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    return json.loads(lines[0])


def test_warm_sums_the_links_of_every_province_of_the_process(capsys: pytest.CaptureFixture[str]) -> None:
    nodes = {"110000": _Province((31, [])), "120000": _Province((30, ["540000"])),
             "130000": _Province((29, ["540000", "650000"]), refresh=RoutingError("hub unreachable"))}
    event = _warm(nodes, capsys)
    assert all(n.warmed for n in nodes.values())  # a failed refresh still connects the directory it holds
    assert {k: v for k, v in event.items() if k != "seconds"} == {
        "event": "warm", "links": 90, "failed": ["540000", "650000"]}
    assert event["seconds"] >= 0


def test_warm_says_what_failed_and_still_prints_its_line(capsys: pytest.CaptureFixture[str]) -> None:
    event = _warm({"110000": _Province((31, [])), "120000": _Province(RuntimeError("channel closed"))}, capsys)
    assert (event["links"], event["failed"], event["error"]) == (31, [], "RuntimeError: channel closed")


def test_the_runner_reports_a_warm_up_that_did_not_finish_and_goes_on(tmp_path: Path) -> None:
    children = Children(tmp_path)
    ok = "import json, sys; sys.stdin.readline(); print(json.dumps({'event': 'warm', 'links': 8, 'failed': []," \
         " 'seconds': 0.1, 'error': 'RuntimeError: x'}), flush=True); sys.stdin.read()"
    dies = "import sys; sys.stdin.readline(); sys.exit(2)"
    try:
        procs = [children.start([], f"p{i}", prefix=(sys.executable, "-c", s)) for i, s in enumerate((ok, dies))]
        got = _warm_links(children, procs, [["110000", "120000"], ["440000"]],
                          LiveProgress(total_s=1, enabled=False))
    finally:
        children.stop()
    assert {k: v for k, v in got.items() if k != "seconds"} == {
        "connected": 8, "failed": [],
        "error": "provinces 110000, 120000: RuntimeError: x; node process exited with 2 before provinces 440000 "
                 f"connecting their direct links (see {tmp_path})"}
