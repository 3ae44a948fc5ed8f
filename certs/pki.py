"""The tongban PKI on disk: create it (``tongban pki init DIR``) and load it back.

Layout of a PKI directory (PEM throughout; ``*.key`` files are created 0600)::

    DIR/pki.json                       manifest (written last): schema_version, sign_alg,
                                       codes, created_at
    DIR/ca/root.crt, root.key          national root CA (P-256, pathlen=1)
    DIR/ca/<code>.crt, <code>.key      intermediate CA of every node (pathlen=0); 000000 always
    DIR/nodes/<code>/tls.crt, tls.key  mTLS certificate (P-256 always: grpcio rejects Ed25519)
    DIR/nodes/<code>/sign.crt, sign.key    envelope signing key (p256 or ed25519 per sign_alg)
    DIR/nodes/<code>/issuer.crt, issuer.key  provinces only: e-certificate issuing authority
    DIR/nodes/<code>/chain.pem         the node's intermediate, then the root
    DIR/clients/window/tls.crt, tls.key, chain.pem   operator client (issued by ca/000000)

The pure parts (certificate profiles, :func:`verify_chain`) live in
:mod:`certs._x509`; this module generates keys and does the file I/O.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple

from cryptography import x509

from certs._x509 import (
    build_intermediate,
    build_leaf,
    build_root,
    certificate_pem,
    describe,
    load_certificate_pem,
    load_certificates_pem,
    new_private_key,
    node_code_of,
    private_key_pem,
    require_aware,
    require_tls_certificate,
    same_public_key,
    validity_window,
    verify_chain,
)
from exchange.errors import ConfigError
from exchange.keys import PrivateKey, SignAlg, Signer, load_private_key_pem

__all__ = [
    "CLIENT_NAME",
    "HUB_CODE",
    "NODE_CODES",
    "PKI_SCHEMA_VERSION",
    "PROVINCE_CODES",
    "ClientCredentials",
    "NodeCredentials",
    "NodeLeafKind",
    "PkiPaths",
    "certificate_pem",
    "init_pki",
    "issue_leaf",
    "load_certificate_pem",
    "load_certificates_pem",
    "load_client_credentials",
    "load_node_credentials",
    "load_pki_manifest",
    "make_foreign_pki",
    "node_code_of",
    "verify_chain",
]

HUB_CODE = "000000"
# The 31 provinces' adcode6 plus XPCC (660000), in the order of
# shared/data/provinces.csv. Copied, not read: the package must not depend on
# ../shared at run time. Keep the two in step.
PROVINCE_CODES: tuple[str, ...] = (
    "110000", "120000", "130000", "140000", "150000", "210000", "220000", "230000",
    "310000", "320000", "330000", "340000", "350000", "360000", "370000", "410000",
    "420000", "430000", "440000", "450000", "460000", "500000", "510000", "520000",
    "530000", "540000", "610000", "620000", "630000", "640000", "650000", "660000",
)  # fmt: skip
NODE_CODES: tuple[str, ...] = (HUB_CODE, *PROVINCE_CODES)
CLIENT_NAME = "window"
PKI_SCHEMA_VERSION = 1

NodeLeafKind = Literal["tls", "sign", "issuer"]
_SIGN_ALGS: tuple[SignAlg, ...] = ("p256", "ed25519")
_MANAGED = ("ca", "nodes", "clients", "pki.json")


@dataclass(frozen=True, slots=True)
class PkiPaths:
    """Where each file of the PKI rooted at directory ``root`` lives (no I/O)."""

    root: Path

    @property
    def manifest(self) -> Path:
        return self.root / "pki.json"

    @property
    def ca_dir(self) -> Path:
        return self.root / "ca"

    @property
    def root_cert(self) -> Path:
        return self.ca_dir / "root.crt"

    @property
    def root_key(self) -> Path:
        return self.ca_dir / "root.key"

    def ca_cert(self, code: str) -> Path:
        return self.ca_dir / f"{code}.crt"

    def ca_key(self, code: str) -> Path:
        return self.ca_dir / f"{code}.key"

    def node_dir(self, code: str) -> Path:
        return self.root / "nodes" / code

    def tls_cert(self, code: str) -> Path:
        return self.node_dir(code) / "tls.crt"

    def tls_key(self, code: str) -> Path:
        return self.node_dir(code) / "tls.key"

    def sign_cert(self, code: str) -> Path:
        return self.node_dir(code) / "sign.crt"

    def sign_key(self, code: str) -> Path:
        return self.node_dir(code) / "sign.key"

    def issuer_cert(self, code: str) -> Path:
        return self.node_dir(code) / "issuer.crt"

    def issuer_key(self, code: str) -> Path:
        return self.node_dir(code) / "issuer.key"

    def chain(self, code: str) -> Path:
        """``nodes/<code>/chain.pem``: intermediate then root."""
        return self.node_dir(code) / "chain.pem"

    def client_dir(self, name: str = CLIENT_NAME) -> Path:
        return self.root / "clients" / name


@dataclass(frozen=True, slots=True)
class NodeCredentials:
    """Everything one node needs from the PKI: its TLS identity and signing keys."""

    code: str
    tls_cert_pem: bytes
    """The TLS leaf certificate alone."""
    tls_key_pem: bytes = field(repr=False)
    tls_chain_pem: bytes
    """Leaf then intermediate: what a gRPC server or client presents."""
    root_pem: bytes
    """The national root: the only trust anchor for peers."""
    sign_signer: Signer = field(repr=False)
    sign_cert: x509.Certificate
    intermediate_cert: x509.Certificate
    issuer_signer: Signer | None = field(repr=False)
    """The province's e-certificate issuing authority; None for the hub."""
    issuer_cert: x509.Certificate | None


class ClientCredentials(NamedTuple):
    """A client's mTLS material, in the order grpc.ssl_channel_credentials wants it."""

    tls_chain_pem: bytes
    tls_key_pem: bytes
    root_pem: bytes

    def __repr__(self) -> str:
        return "ClientCredentials(tls_chain_pem=..., tls_key_pem=<hidden>, root_pem=...)"


# --- file helpers -----------------------------------------------------------------


def _mkdir(path: Path, mode: int) -> None:
    path.mkdir(mode=mode, parents=True, exist_ok=True)


def _write_public(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def _write_secret(path: Path, data: bytes) -> None:
    """Create ``path`` 0600 from the start (never chmod after the bytes are there)."""
    if path.exists():
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _write_pair(cert_path: Path, cert: x509.Certificate, key: PrivateKey) -> None:
    _write_public(cert_path, certificate_pem(cert))
    _write_secret(cert_path.with_suffix(".key"), private_key_pem(key))


def _missing(path: Path, pki_dir: Path) -> ConfigError:
    return ConfigError(f"{path}: missing; create the PKI with `tongban pki init {pki_dir}`")


def _read(path: Path, pki_dir: Path) -> bytes:
    try:
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError) as e:
        raise _missing(path, pki_dir) from e
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from e


def _load_pair(cert_path: Path, pki_dir: Path) -> tuple[x509.Certificate, PrivateKey, bytes]:
    """(certificate, private key, key PEM) with the key checked against the certificate."""
    key_path = cert_path.with_suffix(".key")
    cert = load_certificate_pem(_read(cert_path, pki_dir), source=str(cert_path))
    key_pem = _read(key_path, pki_dir)
    key = load_private_key_pem(key_pem, source=str(key_path))
    if not same_public_key(key.public_key(), cert.public_key()):
        raise ConfigError(
            f"{key_path}: private key does not match {cert_path} ({describe(cert)}), "
            "expected the key the certificate was issued for"
        )
    return cert, key, key_pem


# --- creating ---------------------------------------------------------------------


def _check_codes(codes: Sequence[str]) -> tuple[str, ...]:
    if isinstance(codes, str):
        raise ConfigError(f"codes must be a sequence of node codes, found the string {codes!r}")
    result = tuple(codes)
    if not result:
        raise ConfigError("codes is empty, expected at least one node code")
    for code in result:
        if not (isinstance(code, str) and len(code) == 6 and code.isascii() and code.isdigit()):
            raise ConfigError(f"node code must be six ASCII digits, found {code!r}")
    dupes = sorted({c for c in result if result.count(c) > 1})
    if dupes:
        raise ConfigError(f"node codes must be unique, found duplicates {dupes}")
    return result


def _prepare_directory(directory: Path, *, overwrite: bool) -> None:
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"{directory}: exists and is not a directory, expected a PKI directory")
    if directory.is_dir() and any(directory.iterdir()):
        if not overwrite:
            raise ConfigError(
                f"{directory}: directory is not empty; refusing to overwrite it "
                "(pass overwrite=True / --force to replace the PKI there)"
            )
        for entry in _MANAGED:
            target = directory / entry
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
    _mkdir(directory, 0o755)


def init_pki(
    directory: Path,
    *,
    codes: Sequence[str] = NODE_CODES,
    sign_alg: SignAlg = "p256",
    hostnames: Mapping[str, Sequence[str]] | None = None,
    now: datetime | None = None,
    valid_days: int = 825,
    overwrite: bool = False,
) -> PkiPaths:
    """Create a complete PKI for ``codes`` under ``directory`` (layout in the module doc).

    Every certificate is valid from ``now`` minus five minutes to ``now`` plus
    ``valid_days`` (``now`` defaults to the current UTC time, and must be
    timezone-aware): ``now`` in the past with ``valid_days=1`` gives an expired PKI.
    ``hostnames[code]`` adds DNS names or IP addresses to that node's TLS SANs.
    A non-empty ``directory`` is refused with ConfigError unless ``overwrite``; then
    only the PKI's own entries (ca/, nodes/, clients/, pki.json) are replaced.
    """
    code_list = _check_codes(codes)
    if sign_alg not in _SIGN_ALGS:
        raise ConfigError(f"sign_alg must be 'p256' or 'ed25519', found {sign_alg!r}")
    extra = dict(hostnames or {})
    unknown = sorted(set(extra) - set(code_list))
    if unknown:
        raise ConfigError(f"hostnames given for {unknown}, which are not among codes")
    when = datetime.now(UTC) if now is None else require_aware(now, what="now")
    nb, na = validity_window(when, valid_days)

    paths = PkiPaths(Path(directory))
    _prepare_directory(paths.root, overwrite=overwrite)
    _mkdir(paths.ca_dir, 0o700)
    _mkdir(paths.root / "nodes", 0o755)
    _mkdir(paths.root / "clients", 0o755)

    root_key = new_private_key("p256")
    root = build_root(root_key, not_before=nb, not_after=na)
    _write_pair(paths.root_cert, root, root_key)
    root_pem = certificate_pem(root)

    def intermediate(code: str) -> tuple[x509.Certificate, PrivateKey, bytes]:
        key = new_private_key("p256")
        cert = build_intermediate(
            code, key.public_key(), root=root, root_key=root_key, not_before=nb, not_after=na
        )
        _write_pair(paths.ca_cert(code), cert, key)
        return cert, key, certificate_pem(cert) + root_pem

    hub = intermediate(HUB_CODE)
    for code in code_list:
        ca_cert, ca_key, chain_pem = hub if code == HUB_CODE else intermediate(code)
        node_dir = paths.node_dir(code)
        _mkdir(node_dir, 0o700)
        _write_public(paths.chain(code), chain_pem)
        kinds: tuple[NodeLeafKind, ...] = ("tls", "sign") if code == HUB_CODE else (
            "tls", "sign", "issuer",
        )  # fmt: skip
        for kind in kinds:
            key = new_private_key("p256" if kind == "tls" else sign_alg)
            cert = build_leaf(
                kind, code, key.public_key(), issuer=ca_cert, issuer_key=ca_key,
                not_before=nb, not_after=na, hostnames=extra.get(code, ()),
            )  # fmt: skip
            _write_pair(node_dir / f"{kind}.crt", cert, key)

    client_dir = paths.client_dir(CLIENT_NAME)
    _mkdir(client_dir, 0o700)
    client_key = new_private_key("p256")
    client = build_leaf(
        "client", CLIENT_NAME, client_key.public_key(), issuer=hub[0], issuer_key=hub[1],
        not_before=nb, not_after=na,
    )  # fmt: skip
    _write_pair(client_dir / "tls.crt", client, client_key)
    _write_public(client_dir / "chain.pem", hub[2])

    manifest = {
        "schema_version": PKI_SCHEMA_VERSION,
        "sign_alg": sign_alg,
        "codes": list(code_list),
        "created_at": when.isoformat(),
    }
    _write_public(paths.manifest, (json.dumps(manifest, indent=2) + "\n").encode())
    return paths


def issue_leaf(
    pki_dir: Path,
    code: str,
    kind: NodeLeafKind = "tls",
    *,
    now: datetime | None = None,
    valid_days: int = 825,
    sign_alg: SignAlg | None = None,
    issuer_code: str | None = None,
    hostnames: Sequence[str] = (),
    out_dir: Path | None = None,
) -> Path:
    """Issue a fresh ``kind`` certificate + key for node ``code`` from an existing PKI.

    For test fixtures: an expired TLS certificate (``now`` in the past,
    ``valid_days=1``) or a certificate for ``code`` minted by another node's
    intermediate (``issuer_code``). Writes ``<kind>.crt``/``<kind>.key`` into
    ``out_dir`` (default: the node's own directory, replacing its files; its
    ``chain.pem`` is left alone) and, when ``out_dir`` is elsewhere, the issuing
    intermediate's ``chain.pem`` too. ``sign_alg`` defaults
    to the manifest's (``p256`` for TLS). Returns the certificate's path.
    """
    paths = PkiPaths(Path(pki_dir))
    ca_code = code if issuer_code is None else issuer_code
    if kind not in ("tls", "sign", "issuer"):
        raise ConfigError(f"kind must be tls, sign or issuer, found {kind!r}")
    if kind == "tls":
        alg: SignAlg = "p256"
    else:
        alg = sign_alg or load_pki_manifest(paths.root)["sign_alg"]
    ca_cert, ca_key, _ = _load_pair(paths.ca_cert(ca_code), paths.root)
    when = datetime.now(UTC) if now is None else require_aware(now, what="now")
    not_before, not_after = validity_window(when, valid_days)
    key = new_private_key(alg)
    cert = build_leaf(
        kind, code, key.public_key(), issuer=ca_cert, issuer_key=ca_key,
        not_before=not_before, not_after=not_after, hostnames=hostnames,
    )  # fmt: skip
    target = paths.node_dir(code) if out_dir is None else Path(out_dir)
    _mkdir(target, 0o700)
    _write_pair(target / f"{kind}.crt", cert, key)
    if target.resolve() != paths.node_dir(code).resolve():
        root_pem = _read(paths.root_cert, paths.root)
        _write_public(target / "chain.pem", certificate_pem(ca_cert) + root_pem)
    return target / f"{kind}.crt"


def make_foreign_pki(
    directory: Path,
    code: str,
    *,
    sign_alg: SignAlg = "p256",
    now: datetime | None = None,
    valid_days: int = 825,
    overwrite: bool = False,
) -> PkiPaths:
    """A separate PKI (own root) holding node ``code`` with the standard layout.

    Its names are identical to the real PKI's (same root CN, same intermediate CN
    for ``code``); only the keys differ, so only signature checks can tell them
    apart — the impostor a test of the trust rules needs.
    """
    return init_pki(
        directory, codes=(code,), sign_alg=sign_alg, now=now, valid_days=valid_days,
        overwrite=overwrite,
    )  # fmt: skip


# --- loading ----------------------------------------------------------------------


def load_pki_manifest(directory: Path) -> dict[str, Any]:
    """The parsed ``pki.json`` of ``directory``, checked for shape; ConfigError otherwise."""
    paths = PkiPaths(Path(directory))
    raw = _read(paths.manifest, paths.root)
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ConfigError(f"{paths.manifest}: expected JSON: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{paths.manifest}: expected a JSON object, found {type(data).__name__}")
    version = data.get("schema_version")
    if version != PKI_SCHEMA_VERSION:
        raise ConfigError(
            f"{paths.manifest}: schema_version {version!r}, expected {PKI_SCHEMA_VERSION}"
        )
    if data.get("sign_alg") not in _SIGN_ALGS:
        raise ConfigError(
            f"{paths.manifest}: sign_alg {data.get('sign_alg')!r}, expected 'p256' or 'ed25519'"
        )
    codes = data.get("codes")
    if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
        raise ConfigError(f"{paths.manifest}: codes {codes!r}, expected a list of node codes")
    if not isinstance(data.get("created_at"), str):
        raise ConfigError(f"{paths.manifest}: created_at missing, expected an ISO 8601 time")
    return data


def _intermediate_of(chain_path: Path, pki_dir: Path) -> x509.Certificate:
    return load_certificates_pem(_read(chain_path, pki_dir), source=str(chain_path))[0]


def load_node_credentials(pki_dir: Path, code: str) -> NodeCredentials:
    """Read node ``code``'s credentials from the PKI in ``pki_dir``.

    Checks each private key against its certificate and the TLS certificate's CN
    against ``code`` (not the chain: that is :func:`verify_chain`'s job, at a
    time the caller chooses). Missing files raise ConfigError naming the path.
    """
    paths = PkiPaths(Path(pki_dir))
    pki = paths.root
    root_pem = certificate_pem(
        load_certificate_pem(_read(paths.root_cert, pki), source=str(paths.root_cert))
    )
    intermediate = _intermediate_of(paths.chain(code), pki)
    tls_cert, _, tls_key_pem = _load_pair(paths.tls_cert(code), pki)
    if node_code_of(tls_cert) != code:
        raise ConfigError(
            f"{paths.tls_cert(code)}: {describe(tls_cert)}, expected CN={code}"
        )
    require_tls_certificate(tls_cert, server=True, source=str(paths.tls_cert(code)), pki_dir=pki)
    sign_cert, sign_key, _ = _load_pair(paths.sign_cert(code), pki)
    issuer_signer: Signer | None = None
    issuer_cert: x509.Certificate | None = None
    if code != HUB_CODE:
        issuer_cert, issuer_key, _ = _load_pair(paths.issuer_cert(code), pki)
        issuer_signer = Signer.from_private_key(issuer_key)
    tls_pem = certificate_pem(tls_cert)
    return NodeCredentials(
        code=code,
        tls_cert_pem=tls_pem,
        tls_key_pem=tls_key_pem,
        tls_chain_pem=tls_pem + certificate_pem(intermediate),
        root_pem=root_pem,
        sign_signer=Signer.from_private_key(sign_key),
        sign_cert=sign_cert,
        intermediate_cert=intermediate,
        issuer_signer=issuer_signer,
        issuer_cert=issuer_cert,
    )


def load_client_credentials(pki_dir: Path, name: str = CLIENT_NAME) -> ClientCredentials:
    """(tls_chain_pem, tls_key_pem, root_pem) of client ``name`` (default: the window)."""
    paths = PkiPaths(Path(pki_dir))
    client_dir = paths.client_dir(name)
    cert, _, key_pem = _load_pair(client_dir / "tls.crt", paths.root)
    require_tls_certificate(cert, server=False, source=str(client_dir / "tls.crt"), pki_dir=paths.root)
    intermediate = _intermediate_of(client_dir / "chain.pem", paths.root)
    root_pem = certificate_pem(
        load_certificate_pem(_read(paths.root_cert, paths.root), source=str(paths.root_cert))
    )
    return ClientCredentials(
        tls_chain_pem=certificate_pem(cert) + certificate_pem(intermediate),
        tls_key_pem=key_pem,
        root_pem=root_pem,
    )
