"""gRPC's polling in tongban's processes (tongban/runtime.py): set before grpc starts, in
every process tongban starts, never over a GRPC_EXPERIMENTS the user set; the bench's
baseline relay keeps grpcio's default."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from exchange._procs import Children
from tongban import runtime
from tongban.runtime import GRPC_EXPERIMENTS, LEGACY_POLLING

ROOT = Path(__file__).resolve().parents[2]


def test_the_older_polling_on_the_measured_grpcio_line_only() -> None:
    assert runtime.grpc_environment({}, version="1.85.3") == {GRPC_EXPERIMENTS: LEGACY_POLLING}
    assert runtime.grpc_environment({}, version="1.86.0") == {}
    assert runtime.grpc_environment({}, version="1.8.5") == {}


@pytest.mark.parametrize("theirs", ["", "-event_engine_client", "some_other_experiment"])
def test_a_grpc_experiments_already_set_is_left_alone(theirs: str) -> None:
    env = {GRPC_EXPERIMENTS: theirs}
    assert runtime.grpc_environment(env, version="1.85.3") == {}
    runtime.apply(env)
    assert env == {GRPC_EXPERIMENTS: theirs}


def test_apply_says_whether_it_came_in_time() -> None:
    import grpc  # noqa: F401 - imported here, as in every test process by now

    env: dict[str, str] = {}
    assert runtime.apply(env) is False
    assert env == runtime.grpc_environment({})


def test_apply_in_a_fresh_process_comes_before_grpc() -> None:
    code = ("import os, sys; from tongban import runtime; came = runtime.apply(); import grpc; "
            "print(came, os.environ.get('GRPC_EXPERIMENTS'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={"PATH": os.environ["PATH"]}, timeout=60)
    assert out.stdout.split() == ["True", LEGACY_POLLING]


def run_tongban(args: list[str], env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, "-m", "tongban", *args], cwd=ROOT, capture_output=True, text=True,
                         env={"PATH": os.environ["PATH"], **env}, timeout=60)
    return out.stdout


def test_the_tongban_command_runs_the_older_polling_and_doctor_says_so() -> None:
    version = runtime._grpcio_version()
    assert version is not None and version.startswith(runtime.MEASURED_GRPCIO)  # else the pin moved: re-measure
    polling = next(line for line in run_tongban(["doctor"], {}).splitlines() if "gRPC polling" in line)
    assert polling.split() == ["[", "ok", "]", "gRPC", "polling", "optional", "grpcio", f"{version}:", "its",
                               "older", "polling", f"(GRPC_EXPERIMENTS={LEGACY_POLLING})"]
    mine = next(line for line in run_tongban(["doctor"], {GRPC_EXPERIMENTS: ""}).splitlines()
                if "gRPC polling" in line)
    assert mine.endswith(f"grpcio {version}: GRPC_EXPERIMENTS='', as set in the environment (not tongban's choice)")
    assert mine.split()[:3] == ["[", "ok", "]"]


def child_grpc_experiments(tmp_path: Path, env: dict[str, str] | None) -> str | None:
    """GRPC_EXPERIMENTS as a process started by exchange._procs.Children sees it."""
    children = Children(tmp_path)
    show = "import os; print(repr(os.environ.get('GRPC_EXPERIMENTS')))"
    p = children.start([], "show", env=env, prefix=(sys.executable, "-c", show))
    out, _ = p.communicate(timeout=30)
    return ast.literal_eval(out.decode())


def test_every_process_tongban_starts_gets_the_polling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(GRPC_EXPERIMENTS, raising=False)
    assert child_grpc_experiments(tmp_path, None) == LEGACY_POLLING
    assert child_grpc_experiments(tmp_path, {GRPC_EXPERIMENTS: ""}) == ""  # the bench's baseline relay
    monkeypatch.setenv(GRPC_EXPERIMENTS, "-event_engine_client")
    assert child_grpc_experiments(tmp_path, None) == "-event_engine_client"


@pytest.mark.integration
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc/PID/environ")
def test_the_bench_relay_runs_grpcio_default_and_tongban_its_own(pki_dir: Path, world_dir: Path,
                                                                 tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.cluster import Cluster, NodeOptions, copy_world

    monkeypatch.delenv(GRPC_EXPERIMENTS, raising=False)
    data = copy_world(world_dir, tmp_path / "data", ["510000"])
    with Cluster(tmp_path / "relay") as a, Cluster(tmp_path / "tongban") as b, Cluster(tmp_path / "ee") as e:
        a.start_relay(pki=pki_dir, backend_code="510000", response_bytes=100)
        b.start_tongban(pki=pki_dir, data=data, groups=[["510000"]])
        e.start_tongban(pki=pki_dir, data=copy_world(world_dir, tmp_path / "data-ee", ["510000"]),
                        groups=[["510000"]], options=NodeOptions(grpc_event_engine=True))
        seen = {f"{who} {label}": c.grpc_experiments(label)
                for who, c in (("relay", a), ("tongban", b), ("event engine", e)) for label in c.node_pids}
    assert seen == {"relay backend": "", "relay relay": "", "tongban hub": LEGACY_POLLING,
                    "tongban provinces-0": LEGACY_POLLING, "event engine hub": "",
                    "event engine provinces-0": ""}
