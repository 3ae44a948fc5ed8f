"""Child processes of a run: waiting for the lines they print (exchange._procs.Children)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from exchange._procs import Children
from exchange.errors import TongbanError

WHAT = "connecting the direct links"


@pytest.fixture
def children(tmp_path: Path) -> Iterator[Children]:
    kids = Children(tmp_path)
    try:
        yield kids
    finally:
        kids.stop()


def _child(children: Children, script: str) -> subprocess.Popen[bytes]:
    """A child that runs ``script`` (the module arguments Children.start adds are ignored)."""
    return children.start([], "child", prefix=(sys.executable, "-c", script))


def test_wait_event_skips_other_lines_and_returns_the_named_one(children: Children) -> None:
    p = _child(children, "import json, sys\n"
                         "print(json.dumps({'event': 'metrics', 'url': 'x'}))\n"
                         "print(json.dumps({'event': 'warm', 'links': 31, 'failed': [], 'seconds': 0.5}))\n"
                         "sys.stdout.flush(); sys.stdin.read()")
    assert children.wait_event(p, "warm", what=WHAT, timeout_s=30) == {
        "event": "warm", "links": 31, "failed": [], "seconds": 0.5}


def test_wait_event_names_the_exit_code_when_the_process_dies_first(children: Children, tmp_path: Path) -> None:
    p = _child(children, "import json, sys; print(json.dumps({'event': 'other'})); sys.exit(3)")
    want = f"node process exited with 3 before connecting the direct links (see {tmp_path})"
    with pytest.raises(TongbanError, match=re.escape(want)):
        children.wait_event(p, "warm", what=WHAT, timeout_s=30)


def test_wait_event_gives_up_after_its_timeout(children: Children, tmp_path: Path) -> None:
    p = _child(children, "import sys; sys.stdin.read()")
    want = f"connecting the direct links not done after 0.3 s (see {tmp_path})"
    with pytest.raises(TongbanError, match=re.escape(want)):
        children.wait_event(p, "warm", what=WHAT, timeout_s=0.3)


def test_wait_ready_still_names_the_nodes_that_never_got_ready(children: Children, tmp_path: Path) -> None:
    p = _child(children, "import json; print(json.dumps({'event': 'ready', 'code': '110000', 'endpoint': 'a:1'}))")
    want = f"node process for ['120000'] exited with 0 before it was ready (see {tmp_path})"
    with pytest.raises(TongbanError, match=re.escape(want)):
        children.wait_ready(p, ["110000", "120000"])
