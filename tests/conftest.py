"""Shared fixtures: a PKI and a tiny world, made once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from certs.pki import init_pki
from tongban import runtime

# In-process nodes run gRPC as tongban's processes do; grpc reads this when it starts,
# so before any test module imports it (tongban/runtime.py).
assert runtime.apply(), "grpc was imported before tests/conftest.py: its polling setting came too late"

HUB = "000000"
NODES = ("000000", "110000", "120000", "440000", "510000")


@pytest.fixture(scope="session")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pki")
    init_pki(path, codes=NODES, overwrite=True)
    return path


@pytest.fixture(scope="session")
def world_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from nodes.world import generate_world

    path = tmp_path_factory.mktemp("world")
    generate_world(path, scale=2e-6, seed=7, codes=[c for c in NODES if c != HUB])
    return path
