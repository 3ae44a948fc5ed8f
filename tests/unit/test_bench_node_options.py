"""bench/_node.py's --grpc-legacy-polling (set before gRPC starts, or refused) and --gate-over-tcp."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench import _node
from bench.cluster import NodeOptions

ROOT = Path(__file__).resolve().parents[2]


def test_the_option_is_passed_to_the_node_process() -> None:
    assert NodeOptions(grpc_legacy_polling=True).args() == ["--grpc-legacy-polling"]
    assert NodeOptions(gate_over_tcp=True).args() == ["--gate-over-tcp"]
    assert NodeOptions().args() == []


def test_gate_over_tcp_puts_the_gates_hop_back_on_loopback_tcp() -> None:
    code = (
        "import nodes._grpc as g\n"
        "from bench import _node\n"
        "before = g.GATE_OVER_UNIX_SOCKET\n"
        "try:\n"
        "    _node.main(['--gate-over-tcp', '--', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(before, g.GATE_OVER_UNIX_SOCKET)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin"})
    assert out.stdout.strip().splitlines()[-1] == f"{sys.platform.startswith('linux')} False"


def test_a_fresh_node_process_sets_grpc_experiments_before_grpc_is_imported() -> None:
    code = (
        "import os, sys\n"
        "from bench import _node\n"
        "try:\n"
        "    _node.main(['--grpc-legacy-polling', '--', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(os.environ.get('GRPC_EXPERIMENTS'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin"})
    assert out.stdout.strip().splitlines()[-1] == _node.LEGACY_POLLING


def test_the_option_is_refused_once_grpc_is_imported() -> None:
    import grpc  # noqa: F401 - what the guard looks for

    with pytest.raises(SystemExit, match="expected grpc not yet imported, found it imported"):
        _node.main(["--grpc-legacy-polling", "--", "--help"])
