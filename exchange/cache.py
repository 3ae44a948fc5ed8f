"""PKI and synthetic worlds, built once and reused while what defines them is unchanged."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from certs.pki import PROVINCE_CODES, init_pki, load_pki_manifest

__all__ = ["ensure_pki", "ensure_world"]

#: Bump when the PKI layout or the world generator changes meaning.
_CACHE_VERSION = 1
#: Bump when the certificate profiles change, to rebuild cached PKIs only (not worlds).
#: 2: signing and issuing-authority certificates carry EKU documentSigning, so TLS refuses them.
_PKI_VERSION = 2


def _hash(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def _build_once(path: Path, marker: str, build: Callable[[Path], object]) -> Path:
    """Build into a temporary sibling and rename, so a half-built cache is never used."""
    if not (path / marker).exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        build(tmp)
        shutil.rmtree(path, ignore_errors=True)
        tmp.rename(path)
    return path


def ensure_pki(cache: Path, *, sign_alg: str = "p256") -> Path:
    """A PKI for the hub and 32 provinces (``pki-<hash>`` under ``cache``)."""
    path = cache / f"pki-{_hash(_CACHE_VERSION, _PKI_VERSION, sign_alg, PROVINCE_CODES)}"
    _build_once(path, "pki.json", lambda p: init_pki(p, sign_alg=sign_alg))  # type: ignore[arg-type]
    load_pki_manifest(path)
    return path


def ensure_world(cache: Path, *, scale: float, seed: int) -> Path:
    """A synthetic world of all 32 provinces (``world-<hash>`` under ``cache``)."""
    from nodes.world import GENERATOR_VERSION, generate_world

    path = cache / f"world-{_hash(_CACHE_VERSION, GENERATOR_VERSION, scale, seed)}"
    return _build_once(path, "world.json", lambda p: generate_world(p, scale=scale, seed=seed))
