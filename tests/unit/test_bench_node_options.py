"""bench/_node.py's --grpc-event-engine (set before gRPC starts, or refused) and --gate-over-tcp."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench import _node
from bench.cluster import NodeOptions

ROOT = Path(__file__).resolve().parents[2]


def test_the_option_is_passed_to_the_node_process() -> None:
    assert NodeOptions(grpc_event_engine=True).args() == ["--grpc-event-engine"]
    assert NodeOptions(grpc_event_engine=True).grpc_env() == {"GRPC_EXPERIMENTS": ""}
    assert NodeOptions().grpc_env() == {}
    assert NodeOptions(gate_over_tcp=True).args() == ["--gate-over-tcp"]
    assert NodeOptions().args() == []


def last_line_after_node_main(node_args: list[str], before: str, after: str) -> str:
    """Run bench._node.main(node_args + ['--', '--help']) in a fresh interpreter, between
    ``before`` and ``after`` (Python statements; ``after`` prints); returns the last line."""
    code = (f"{before}\nfrom bench import _node\ntry:\n    _node.main({node_args!r} + ['--', '--help'])\n"
            f"except SystemExit:\n    pass\n{after}\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin"})
    return out.stdout.strip().splitlines()[-1]


def test_gate_over_tcp_puts_the_gates_hop_back_on_loopback_tcp() -> None:
    last = last_line_after_node_main(["--gate-over-tcp"], "import nodes._grpc as g; before = g.GATE_OVER_UNIX_SOCKET",
                                     "print(before, g.GATE_OVER_UNIX_SOCKET)")
    assert last == f"{sys.platform.startswith('linux')} False"


def test_a_fresh_node_process_empties_grpc_experiments_before_grpc_is_imported() -> None:
    last = last_line_after_node_main(["--grpc-event-engine"], "import os",
                                     "print(repr(os.environ.get('GRPC_EXPERIMENTS')))")
    assert last == "''"  # and tongban's own CLI leaves a GRPC_EXPERIMENTS that is set alone


def test_the_option_is_refused_once_grpc_is_imported() -> None:
    import grpc  # noqa: F401 - what the guard looks for

    with pytest.raises(SystemExit, match="--grpc-event-engine: expected grpc not yet imported, found it imported"):
        _node.main(["--grpc-event-engine", "--", "--help"])
