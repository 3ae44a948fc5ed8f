"""Proto hygiene with buf (npm package @bufbuild/buf, installed into tools/):
`buf lint` with the STANDARD rules, and `buf breaking` against tongban.v1 as
first released. tools/lint.sh (`make lint`) runs the same two checks."""

from __future__ import annotations

import subprocess

import pytest

from tests.interop.conftest import REPO, find_tool, npm_install

pytestmark = pytest.mark.interop

TOOLS = REPO / "tools"


@pytest.fixture(scope="module")
def buf() -> str:
    found = find_tool("buf", TOOLS / "node_modules" / ".bin")
    if found is None:
        npm_install(TOOLS)
        found = find_tool("buf", TOOLS / "node_modules" / ".bin")
    if found is None:
        pytest.skip("buf not found and not installable from npm (@bufbuild/buf)")
    return found


def test_buf_lint_is_clean(buf: str) -> None:
    done = subprocess.run([buf, "lint"], cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"buf lint findings:\n{done.stdout}{done.stderr}"


def test_lint_script_runs_lint_and_breaking(buf: str) -> None:
    done = subprocess.run(["bash", str(TOOLS / "lint.sh")], cwd=REPO, capture_output=True, text=True,
                          timeout=180, check=False, env={"PATH": "/usr/bin:/bin", "BUF": buf})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "buf lint clean" in done.stdout
    if "SKIPPED buf breaking" in done.stderr:
        pytest.skip(done.stderr.strip().splitlines()[-1])
    assert "no breaking change against" in done.stdout
