"""Fixtures of the security suite: a running country on loopback per module.

The same small country as the integration tests (hub + 110000, 440000, 510000,
real gRPC over mTLS on port 0, servers on a background event loop); the session
fixtures ``pki_dir`` and ``world_dir`` come from ``tests/conftest.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Country, copy_world, running


@pytest.fixture(scope="module")
def country(pki_dir: Path, world_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Country]:
    yield from running(Country(pki_dir, copy_world(world_dir, tmp_path_factory.mktemp("data"))))
