"""What a developer or student meets first on the command line: help with
examples, one-line errors, and `tongban doctor`."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.interop.conftest import REPO, Trace
from tongban.cli import main

pytestmark = pytest.mark.interop

COMMANDS = [["pki", "init"], ["world", "generate"], ["node", "hub"], ["node", "province"], ["run"], ["report"],
            ["scenarios"], ["compare"], ["trace"], ["ledger", "verify"], ["doctor"]]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_help_shows_examples(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "examples:\n" in out
    assert f"tongban {' '.join(command)}" in out.split("examples:", 1)[1]


def test_top_level_help_lists_doctor(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "doctor" in out and "tongban doctor" in out


def test_metrics_port_is_validated(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["node", "hub", "--pki", "p", "--data", "d", "--metrics-port", "70000"])
    assert exit_info.value.code == 2
    assert "--metrics-port: expected a port number 0-65535, found 70000" in capsys.readouterr().err


def test_doctor_prints_a_checklist_and_passes_here(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "tongban", "doctor"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "tongban doctor"
    for what in ("Python", "loopback port", "write access .", "write access runs/", "openssl", "node",
                 "grpcurl", "buf", "chromium"):
        assert any(line.split("]", 1)[1].strip().startswith(what) for line in lines[1:-1]), what
    assert "[ ok ] Python" in done.stdout
    assert f"{tmp_path / 'runs'} (will be created)" in done.stdout
    assert not (tmp_path / "runs").exists(), "doctor must not create runs/"
    assert lines[-1].startswith("required checks passed")


def test_doctor_fails_without_write_access() -> None:
    """/proc refuses new files even to root: the required check fails and says so."""
    done = subprocess.run([sys.executable, "-m", "tongban", "doctor"], cwd="/proc", capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stdout
    assert "[FAIL] write access ." in done.stdout
    assert done.stdout.splitlines()[-1].startswith("FAILED: write access ., write access runs/")


def test_a_port_in_use_is_one_line_not_a_traceback(trace: Trace, tmp_path: Path) -> None:
    shutil.copy(trace.world / "world.json", tmp_path / "world.json")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "tongban", "node", "hub", "--pki", str(trace.pki),
                               "--data", str(tmp_path), "--listen", f"127.0.0.1:{port}"],
                              capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"tongban: error: Failed to bind to address 127.0.0.1:{port}: expected a free port"), last


DOCS = ["README.md", "docs/how-it-works.md", "docs/scenarios.md", "examples/node/README.md",
        "examples/report/README.md"]


@pytest.mark.parametrize("doc", DOCS)
def test_relative_links_in_the_docs_resolve(doc: str) -> None:
    path = REPO / doc
    text = path.read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if "://" not in link]
    for link in local:
        assert (path.parent / link).exists(), f"{doc}: link {link} points nowhere"
