"""certs.pki: layout, certificate profiles, openssl agreement, chain checks, loading."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certs import (
    HUB_CODE,
    NODE_CODES,
    PROVINCE_CODES,
    PkiPaths,
    certificate_pem,
    init_pki,
    issue_leaf,
    load_certificate_pem,
    load_client_credentials,
    load_node_credentials,
    load_pki_manifest,
    make_foreign_pki,
    node_code_of,
    verify_chain,
)
from exchange.errors import ChainError, ConfigError
from exchange.keys import key_id

SMALL = ("000000", "110000", "440000")
NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


@pytest.fixture(scope="module", params=["p256", "ed25519"])
def pki(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> PkiPaths:
    """A small PKI per signing algorithm, shared by read-only tests."""
    directory = tmp_path_factory.mktemp(f"pki-{request.param}")
    return init_pki(directory, codes=SMALL, sign_alg=request.param, now=NOW)


@pytest.fixture(scope="module")
def p256_pki(tmp_path_factory: pytest.TempPathFactory) -> PkiPaths:
    return init_pki(tmp_path_factory.mktemp("pki"), codes=SMALL, now=NOW)


# --- layout -----------------------------------------------------------------------


def test_constants_mirror_provinces_csv() -> None:
    assert len(PROVINCE_CODES) == 32 and len(set(PROVINCE_CODES)) == 32
    assert PROVINCE_CODES[0] == "110000" and PROVINCE_CODES[-2:] == ("650000", "660000")
    assert (HUB_CODE, *PROVINCE_CODES) == NODE_CODES
    csv = Path(__file__).parents[1] / "data" / "provinces.csv"  # the package must not read it; the test may
    rows = csv.read_text(encoding="utf-8").splitlines()[1:]
    assert tuple(r.split(",")[1] for r in rows if r) == PROVINCE_CODES


def test_layout_small(pki: PkiPaths) -> None:
    d = pki.root
    expected = {"ca/root.crt", "ca/root.key", "pki.json"}
    expected |= {"clients/window/tls.crt", "clients/window/tls.key", "clients/window/chain.pem"}
    for code in SMALL:
        expected |= {f"ca/{code}.crt", f"ca/{code}.key"}
        names = ["tls.crt", "tls.key", "sign.crt", "sign.key", "chain.pem"]
        if code != HUB_CODE:
            names += ["issuer.crt", "issuer.key"]
        expected |= {f"nodes/{code}/{n}" for n in names}
    found = {p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file()}
    assert found == expected
    manifest = load_pki_manifest(d)
    assert manifest["schema_version"] == 1
    assert manifest["codes"] == list(SMALL)
    assert manifest["sign_alg"] in ("p256", "ed25519")
    assert datetime.fromisoformat(manifest["created_at"]) == NOW


def test_all_33_nodes(tmp_path: Path) -> None:
    paths = init_pki(tmp_path / "pki")
    files = [p for p in paths.root.rglob("*") if p.is_file()]
    # ca: root + 33 intermediates (pairs); nodes: hub 5 + 32 provinces * 7; client 3; manifest
    assert len(files) == 2 + 33 * 2 + 5 + 32 * 7 + 3 + 1 == 301
    assert load_pki_manifest(paths.root)["codes"] == list(NODE_CODES)
    assert {p.name for p in (paths.root / "nodes").iterdir()} == set(NODE_CODES)


def test_private_keys_are_0600_and_key_dirs_private(pki: PkiPaths) -> None:
    keys = list(pki.root.rglob("*.key"))
    assert len(keys) == 1 + 3 + 3 * 2 + 2 + 1  # root, intermediates, tls+sign, issuers, client
    for key in keys:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    for directory in (pki.ca_dir, pki.node_dir("440000"), pki.client_dir()):
        assert stat.S_IMODE(directory.stat().st_mode) & 0o077 == 0, directory


def test_tls_certificate_profile(pki: PkiPaths) -> None:
    c = cert(pki.tls_cert("440000"))
    key = c.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)
    san = c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "node-440000.tongban.test"]
    assert ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["urn:tongban:node:440000"]
    eku = c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert c.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "tls"
    assert node_code_of(c) == "440000"


def test_sign_and_issuer_certificates_follow_sign_alg(pki: PkiPaths) -> None:
    alg = load_pki_manifest(pki.root)["sign_alg"]
    want = ed25519.Ed25519PublicKey if alg == "ed25519" else ec.EllipticCurvePublicKey
    for path in (pki.sign_cert("000000"), pki.sign_cert("110000"), pki.issuer_cert("440000")):
        c = cert(path)
        assert isinstance(c.public_key(), want), path
        ku = c.extensions.get_extension_for_class(x509.KeyUsage).value
        assert ku.digital_signature and ku.content_commitment and not ku.key_cert_sign
        assert not (ku.key_encipherment or ku.key_agreement or ku.data_encipherment)
        # key separation: an EKU naming document signing alone, so no TLS stack takes it
        eku = c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(eku) == [x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")], path  # id-kp-documentSigning
    uris = (
        cert(pki.issuer_cert("440000"))
        .extensions.get_extension_for_class(x509.SubjectAlternativeName)
        .value.get_values_for_type(x509.UniformResourceIdentifier)
    )
    assert uris == ["urn:tongban:issuer:440000"]
    # TLS stays P-256 whatever sign_alg is
    assert isinstance(cert(pki.tls_cert("110000")).public_key(), ec.EllipticCurvePublicKey)


def test_ca_profiles(p256_pki: PkiPaths) -> None:
    root = cert(p256_pki.root_cert)
    bc = root.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert bc.ca and bc.path_length == 1 and root.issuer == root.subject
    inter = cert(p256_pki.ca_cert("440000"))
    bc = inter.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert bc.ca and bc.path_length == 0
    assert inter.subject.rfc4514_string() == "CN=440000 intermediate CA,O=tongban"


def test_extra_hostnames_in_tls_san(tmp_path: Path) -> None:
    paths = init_pki(
        tmp_path, codes=("110000",), hostnames={"110000": ["bj.example", "10.0.0.7"]}, now=NOW
    )
    san = cert(paths.tls_cert("110000")).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value
    assert "bj.example" in san.get_values_for_type(x509.DNSName)
    assert ip_address("10.0.0.7") in san.get_values_for_type(x509.IPAddress)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"codes": ()}, "codes is empty"),
        ({"codes": ("44000",)}, "six ASCII digits, found '44000'"),
        ({"codes": ("440000", "440000")}, "duplicates ['440000']"),
        ({"sign_alg": "rsa"}, "found 'rsa'"),
        ({"codes": ("440000",), "hostnames": {"110000": ["x"]}}, "hostnames given for ['110000']"),
        ({"valid_days": 0}, "valid_days must be at least 1"),
    ],
)
def test_init_rejects_bad_arguments(
    tmp_path: Path, kwargs: dict[str, object], fragment: str
) -> None:
    with pytest.raises(ConfigError) as e:
        init_pki(tmp_path / "pki", **kwargs)  # type: ignore[arg-type]
    assert fragment in str(e.value)


# --- openssl agrees ---------------------------------------------------------------


def test_openssl_verifies_every_chain(pki: PkiPaths) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    leaves = [(pki.chain(c), pki.tls_cert(c)) for c in SMALL]
    leaves += [(pki.chain(c), pki.sign_cert(c)) for c in SMALL]
    leaves += [(pki.chain(c), pki.issuer_cert(c)) for c in SMALL if c != HUB_CODE]
    leaves.append((pki.client_dir() / "chain.pem", pki.client_dir() / "tls.crt"))
    for chain, leaf in leaves:
        # pin openssl's clock so the result does not depend on today's date
        argv = [openssl, "verify", "-attime", str(int(NOW.timestamp())),
                "-CAfile", str(pki.root_cert), "-untrusted", str(chain), str(leaf)]  # fmt: skip
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        assert result.returncode == 0 and result.stdout.strip() == f"{leaf}: OK", result


def test_openssl_takes_only_tls_certificates_for_tls(pki: PkiPaths) -> None:
    """Key separation, checked by OpenSSL itself: the tls and client leaves pass as TLS
    clients (tls also as servers); the signing and issuing-authority leaves pass neither."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")

    def verify(leaf: Path, chain: Path, purpose: str) -> str:
        argv = [openssl, "verify", "-attime", str(int(NOW.timestamp())), "-purpose", purpose,
                "-CAfile", str(pki.root_cert), "-untrusted", str(chain), str(leaf)]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        return done.stdout + done.stderr

    for purpose in ("sslclient", "sslserver"):
        assert verify(pki.tls_cert("440000"), pki.chain("440000"), purpose).strip() == (
            f"{pki.tls_cert('440000')}: OK")
        for leaf in (pki.sign_cert("000000"), pki.sign_cert("440000"), pki.issuer_cert("440000")):
            out = verify(leaf, pki.chain(node_code_of(cert(leaf))), purpose)
            assert "error 26 at 0 depth lookup: unsuitable certificate purpose" in out, (leaf, purpose, out)
    client = pki.client_dir() / "tls.crt"
    assert verify(client, pki.client_dir() / "chain.pem", "sslclient").strip() == f"{client}: OK"


def test_openssl_rejects_foreign_leaf(tmp_path: Path, p256_pki: PkiPaths) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    foreign = make_foreign_pki(tmp_path / "foreign", "440000", now=NOW)
    argv = [openssl, "verify", "-attime", str(int(NOW.timestamp())),
            "-CAfile", str(p256_pki.root_cert), "-untrusted", str(p256_pki.chain("440000")),
            str(foreign.tls_cert("440000"))]  # fmt: skip
    assert subprocess.run(argv, capture_output=True, check=False).returncode != 0


# --- verify_chain -----------------------------------------------------------------


def test_verify_chain_accepts_every_good_chain(pki: PkiPaths) -> None:
    root = cert(pki.root_cert)
    at = NOW + timedelta(days=30)
    for code in SMALL:
        inter = cert(pki.ca_cert(code))
        leaves = [pki.tls_cert(code), pki.sign_cert(code)]
        if code != HUB_CODE:
            leaves.append(pki.issuer_cert(code))
        for leaf in leaves:
            verify_chain(cert(leaf), inter, root, at=at, expected_code=code)
    verify_chain(cert(pki.client_dir() / "tls.crt"), cert(pki.ca_cert(HUB_CODE)), root, at=at)


@pytest.fixture(scope="module")
def attack(
    p256_pki: PkiPaths, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, x509.Certificate]:
    """Certificates for the attack table, all made at NOW."""
    tmp = tmp_path_factory.mktemp("attack")
    foreign = make_foreign_pki(tmp / "foreign", "440000", now=NOW)
    rogue = issue_leaf(p256_pki.root, "440000", "sign", issuer_code="110000", now=NOW,
                       out_dir=tmp / "rogue")  # fmt: skip
    return {
        "root": cert(p256_pki.root_cert),
        "gd_ca": cert(p256_pki.ca_cert("440000")),
        "bj_ca": cert(p256_pki.ca_cert("110000")),
        "gd_sign": cert(p256_pki.sign_cert("440000")),
        "bj_sign": cert(p256_pki.sign_cert("110000")),
        "rogue_sign": cert(rogue),
        "foreign_tls": cert(foreign.tls_cert("440000")),
        "foreign_ca": cert(foreign.ca_cert("440000")),
    }


LATER = NOW + timedelta(days=1)
_AFTER_EXPIRY = NOW + timedelta(days=826)


@pytest.mark.parametrize(
    ("leaf", "inter", "at", "code", "fragment"),
    [
        pytest.param("foreign_tls", "gd_ca", LATER, "440000",
                     "certificate CN=440000 OU=tls: signature does not verify with the key of "
                     "'CN=440000 intermediate CA'", id="foreign-leaf"),
        pytest.param("foreign_tls", "foreign_ca", LATER, "440000",
                     "certificate CN=440000 intermediate CA: signature does not verify with the "
                     "key of 'CN=tongban national root CA'", id="foreign-intermediate"),
        pytest.param("rogue_sign", "gd_ca", LATER, "440000",
                     "certificate CN=440000 OU=sign issued by 'CN=110000 intermediate CA', "
                     "expected issuer 'CN=440000 intermediate CA'", id="other-province-ca"),
        pytest.param("rogue_sign", "bj_ca", LATER, "440000",
                     "certificate CN=440000 OU=sign issued by 'CN=110000 intermediate CA', "
                     "expected issuer 'CN=440000 intermediate CA'",
                     id="other-province-ca-own-chain"),
        pytest.param("bj_sign", "bj_ca", LATER, "440000",
                     "certificate CN=110000 OU=sign belongs to node 110000, expected node 440000",
                     id="wrong-node"),
        pytest.param("gd_sign", "gd_sign", LATER, None,
                     "certificate CN=440000 OU=sign is not a CA", id="leaf-as-intermediate"),
        pytest.param("gd_ca", "gd_ca", LATER, None,
                     "certificate CN=440000 intermediate CA issued by "
                     "'CN=tongban national root CA', expected issuer 'CN=440000 intermediate CA'",
                     id="intermediate-as-leaf"),
        pytest.param("gd_sign", "gd_ca", _AFTER_EXPIRY, "440000",
                     "certificate CN=tongban national root CA expired at 2028-06-03T08:00:00+00:00,"
                     " checked at 2028-06-04T08:00:00+00:00", id="expired"),
        pytest.param("gd_sign", "gd_ca", NOW - timedelta(hours=1), "440000",
                     "certificate CN=tongban national root CA is not valid before "
                     "2026-03-01T07:55:00+00:00", id="not-yet-valid"),
    ],
)  # fmt: skip
def test_verify_chain_rejects(
    attack: dict[str, x509.Certificate],
    leaf: str,
    inter: str,
    at: datetime,
    code: str | None,
    fragment: str,
) -> None:
    with pytest.raises(ChainError) as e:
        verify_chain(attack[leaf], attack[inter], attack["root"], at=at, expected_code=code)
    assert fragment in str(e.value)


def test_verify_chain_expired_leaf_under_valid_ca(tmp_path: Path) -> None:
    paths = init_pki(tmp_path / "pki", codes=("440000",), now=NOW, valid_days=3650)
    issue_leaf(paths.root, "440000", "tls", now=NOW, valid_days=1)
    leaf = cert(paths.tls_cert("440000"))
    inter, root = cert(paths.ca_cert("440000")), cert(paths.root_cert)
    verify_chain(leaf, inter, root, at=NOW + timedelta(hours=23), expected_code="440000")
    with pytest.raises(ChainError) as e:
        verify_chain(leaf, inter, root, at=leaf.not_valid_after_utc + timedelta(seconds=1))
    assert "certificate CN=440000 OU=tls expired at 2026-03-02T08:00:00+00:00" in str(e.value)
    # the replaced leaf is what the node now loads
    creds = load_node_credentials(paths.root, "440000")
    assert load_certificate_pem(creds.tls_cert_pem, source="t") == leaf


def test_expired_pki_from_past_now(tmp_path: Path) -> None:
    past = datetime.now(UTC) - timedelta(days=10)
    paths = init_pki(tmp_path / "old", codes=("440000",), now=past, valid_days=1)
    leaf = cert(paths.tls_cert("440000"))
    assert leaf.not_valid_after_utc < datetime.now(UTC)
    with pytest.raises(ChainError, match="expired at"):
        verify_chain(leaf, cert(paths.ca_cert("440000")), cert(paths.root_cert),
                     at=datetime.now(UTC))  # fmt: skip


def test_verify_chain_needs_aware_time(p256_pki: PkiPaths) -> None:
    root = cert(p256_pki.root_cert)
    with pytest.raises(ValueError, match="timezone-aware"):
        verify_chain(cert(p256_pki.tls_cert("440000")), cert(p256_pki.ca_cert("440000")), root,
                     at=datetime(2026, 3, 2))  # fmt: skip


# --- loading ----------------------------------------------------------------------


def test_load_node_credentials(pki: PkiPaths) -> None:
    creds = load_node_credentials(pki.root, "440000")
    assert creds.code == "440000"
    assert creds.tls_cert_pem == pki.tls_cert("440000").read_bytes()
    assert creds.tls_key_pem == pki.tls_key("440000").read_bytes()
    chain = x509.load_pem_x509_certificates(creds.tls_chain_pem)
    assert [node_code_of(c) for c in chain] == ["440000", "440000 intermediate CA"]
    assert creds.root_pem == pki.root_cert.read_bytes()
    assert creds.sign_signer.keyid == key_id(creds.sign_cert.public_key())  # type: ignore[arg-type]
    assert creds.sign_signer.algorithm == load_pki_manifest(pki.root)["sign_alg"]
    assert creds.issuer_signer is not None and creds.issuer_cert is not None
    assert creds.issuer_signer.keyid == key_id(creds.issuer_cert.public_key())  # type: ignore[arg-type]
    assert creds.intermediate_cert == cert(pki.ca_cert("440000"))
    assert "PRIVATE KEY" not in repr(creds)
    hub = load_node_credentials(pki.root, HUB_CODE)
    assert hub.issuer_signer is None and hub.issuer_cert is None


def test_load_client_credentials(p256_pki: PkiPaths) -> None:
    chain_pem, key_pem, root_pem = load_client_credentials(p256_pki.root)
    chain = x509.load_pem_x509_certificates(chain_pem)
    assert [node_code_of(c) for c in chain] == ["window", "000000 intermediate CA"]
    assert key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert root_pem == certificate_pem(cert(p256_pki.root_cert))


@pytest.mark.parametrize("missing", ["nodes/440000/sign.key", "nodes/440000/issuer.crt",
                                     "nodes/440000/chain.pem", "ca/root.crt"])  # fmt: skip
def test_load_node_credentials_missing_file(
    tmp_path: Path, p256_pki: PkiPaths, missing: str
) -> None:
    copy = tmp_path / "pki"
    shutil.copytree(p256_pki.root, copy)
    (copy / missing).unlink()
    with pytest.raises(ConfigError) as e:
        load_node_credentials(copy, "440000")
    want = f"{copy / missing}: missing; create the PKI with `tongban pki init {copy}`"
    assert str(e.value) == want


def test_load_node_credentials_unknown_code(p256_pki: PkiPaths) -> None:
    with pytest.raises(ConfigError, match=r"nodes/650000/.*missing.*tongban pki init"):
        load_node_credentials(p256_pki.root, "650000")


def test_load_node_credentials_key_mismatch(tmp_path: Path, p256_pki: PkiPaths) -> None:
    copy = tmp_path / "pki"
    shutil.copytree(p256_pki.root, copy)
    shutil.copyfile(copy / "nodes/110000/tls.key", copy / "nodes/440000/tls.key")
    with pytest.raises(ConfigError, match=r"tls\.key: private key does not match .*tls\.crt"):
        load_node_credentials(copy, "440000")


def test_load_node_credentials_refuses_a_signing_certificate_as_tls(tmp_path: Path) -> None:
    """A sign.crt (and its key) copied over tls.crt: the node will not start with it."""
    pki = init_pki(tmp_path / "pki", codes=SMALL, now=NOW)
    for name in ("crt", "key"):
        shutil.copy(pki.node_dir("440000") / f"sign.{name}", pki.node_dir("440000") / f"tls.{name}")
    with pytest.raises(ConfigError) as e:
        load_node_credentials(pki.root, "440000")
    assert str(e.value) == (
        f"{pki.tls_cert('440000')}: certificate CN=440000 OU=sign is not a TLS certificate (extended key "
        "usage documentSigning), expected extended key usage serverAuth and clientAuth; "
        f"re-create the PKI with `tongban pki init {pki.root} --force`")
    shutil.copy(pki.node_dir("440000") / "issuer.crt", pki.client_dir() / "tls.crt")
    shutil.copy(pki.node_dir("440000") / "issuer.key", pki.client_dir() / "tls.key")
    with pytest.raises(ConfigError) as e:
        load_client_credentials(pki.root)
    assert str(e.value) == (
        f"{pki.client_dir() / 'tls.crt'}: certificate CN=440000 OU=ecert-issuer is not a TLS certificate "
        "(extended key usage documentSigning), expected extended key usage clientAuth; "
        f"re-create the PKI with `tongban pki init {pki.root} --force`")


def test_load_certificate_pem_rejects_garbage() -> None:
    with pytest.raises(ConfigError, match=r"^peer\.pem: expected a PEM certificate"):
        load_certificate_pem(b"not a certificate", source="peer.pem")


def test_manifest_missing_and_bad(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"pki\.json: missing"):
        load_pki_manifest(tmp_path)
    (tmp_path / "pki.json").write_text(json.dumps({"schema_version": 2}))
    with pytest.raises(ConfigError, match="schema_version 2, expected 1"):
        load_pki_manifest(tmp_path)


# --- overwrite --------------------------------------------------------------------


@pytest.fixture()
def existing(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "pki"
    init_pki(directory, codes=("110000", "440000"), now=NOW)
    yield directory


def test_refuses_to_overwrite(existing: Path) -> None:
    before = existing.joinpath("ca/root.crt").read_bytes()
    with pytest.raises(ConfigError) as e:
        init_pki(existing, codes=("110000",), now=NOW)
    assert str(existing) in str(e.value) and "not empty" in str(e.value)
    assert existing.joinpath("ca/root.crt").read_bytes() == before


def test_refuses_any_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        init_pki(tmp_path, codes=("110000",))


def test_overwrite_replaces_the_pki(existing: Path) -> None:
    before = existing.joinpath("ca/root.crt").read_bytes()
    (existing / "notes.txt").write_text("mine")
    init_pki(existing, codes=("110000",), now=NOW, overwrite=True)
    assert existing.joinpath("ca/root.crt").read_bytes() != before
    assert not existing.joinpath("nodes/440000").exists()  # no stale node from the old PKI
    assert existing.joinpath("notes.txt").read_text() == "mine"
    load_node_credentials(existing, "110000")
