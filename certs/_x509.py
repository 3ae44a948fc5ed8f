"""Pure X.509 pieces of the tongban PKI: names, certificate builders, chain checks.

Nothing here touches the disk or the clock: every time comes in as an argument
(``now``, ``at``). :mod:`certs.pki` is the shell that generates the keys, writes the
files and reads them back; it re-exports the public names defined here.

Profiles (all names carry ``O=tongban``)::

    root          CN=tongban national root CA     CA, pathlen=1, keyCertSign+cRLSign
    intermediate  CN=<code> intermediate CA       CA, pathlen=0, keyCertSign+cRLSign
    tls leaf      CN=<code>, OU=tls               P-256, serverAuth+clientAuth, DNS/IP/URI SANs
    sign leaf     CN=<code>, OU=sign              P-256 or Ed25519,
                                                  digitalSignature+contentCommitment,
                                                  EKU documentSigning only (never TLS)
    issuer leaf   CN=<code>, OU=ecert-issuer      as sign, SAN urn:tongban:issuer:<code>
    client leaf   CN=<name>, OU=client            P-256, clientAuth

Key separation (docs/security.md): only the tls and client leaves may authenticate a
TLS connection. A certificate without an ExtendedKeyUsage extension is good for any
purpose (RFC 5280 4.2.1.12; OpenSSL accepts it as a TLS client or server), so the
sign and issuer leaves carry one that names their single purpose instead of none.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from exchange.errors import ChainError, ConfigError
from exchange.keys import PrivateKey, PublicKey, SignAlg

__all__ = [
    "BACKDATE",
    "DOCUMENT_SIGNING",
    "ORGANIZATION",
    "ROOT_CN",
    "LeafKind",
    "build_intermediate",
    "build_leaf",
    "build_root",
    "certificate_pem",
    "describe",
    "intermediate_cn",
    "load_certificate_pem",
    "load_certificates_pem",
    "new_private_key",
    "node_code_of",
    "private_key_pem",
    "require_aware",
    "require_tls_certificate",
    "same_public_key",
    "validity_window",
    "verify_chain",
]

LeafKind = Literal["tls", "sign", "issuer", "client"]
"""Which leaf profile to build; the value is also the certificate's OU (bar issuer)."""

ORGANIZATION = "tongban"
ROOT_CN = "tongban national root CA"
BACKDATE = timedelta(minutes=5)
"""``not_valid_before`` is set this far before ``now`` to absorb clock skew between hosts."""

_OU = {"tls": "tls", "sign": "sign", "issuer": "ecert-issuer", "client": "client"}

#: id-kp-documentSigning (RFC 9336): the EKU of the sign and issuer leaves. Both keys sign
#: documents (DSSE envelopes; e-certificates) and nothing else. Not serverAuth/clientAuth
#: (TLS must refuse them), nor codeSigning, emailProtection or timeStamping, which promise
#: uses these keys do not have; an EKU present without clientAuth/serverAuth (and without
#: anyExtendedKeyUsage) is what makes OpenSSL (the TLS gate) and BoringSSL (grpcio) refuse
#: the certificate for TLS ("unsuitable/unsupported certificate purpose"), where none at all
#: would pass. Key usage stays digitalSignature+contentCommitment, never keyEncipherment.
DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")


def intermediate_cn(code: str) -> str:
    """The CN of node ``code``'s intermediate CA."""
    return f"{code} intermediate CA"


def require_aware(when: datetime, *, what: str) -> datetime:
    """Return ``when`` if it carries a timezone, else raise ValueError naming ``what``."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (e.g. datetime.now(UTC)), got {when!r}")
    return when


def validity_window(now: datetime, valid_days: int) -> tuple[datetime, datetime]:
    """(not_before, not_after) for a certificate made at ``now``: backdated by BACKDATE."""
    require_aware(now, what="now")
    if valid_days < 1:
        raise ConfigError(f"valid_days must be at least 1, found {valid_days}")
    return now - BACKDATE, now + timedelta(days=valid_days)


def new_private_key(alg: SignAlg) -> PrivateKey:
    """A fresh key: ECDSA P-256 for ``"p256"``, Ed25519 for ``"ed25519"``."""
    if alg == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ConfigError(f"sign_alg must be 'p256' or 'ed25519', found {alg!r}")


def private_key_pem(key: PrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM of ``key``."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def same_public_key(a: PublicKey, b: object) -> bool:
    """True when ``b`` is the same public key as ``a`` (compared as DER SPKI)."""
    if not isinstance(b, (ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey)):
        return False
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return a.public_bytes(*fmt) == b.public_bytes(*fmt)


def _name(cn: str, ou: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION)]
    if ou is not None:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _hash_for(key: PrivateKey) -> hashes.SHA256 | None:
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def _key_usage(*, signing: bool, ca: bool, commitment: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signing,
        content_commitment=commitment,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _build(
    *,
    subject: x509.Name,
    public_key: PublicKey,
    issuer_name: x509.Name,
    issuer_key: PrivateKey,
    not_before: datetime,
    not_after: datetime,
    path_length: int | None,
    ca: bool,
    key_usage: x509.KeyUsage,
    eku: Sequence[x509.ObjectIdentifier] = (),
    san: Sequence[x509.GeneralName] = (),
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
        .add_extension(key_usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(san)), critical=False)
    return builder.sign(issuer_key, _hash_for(issuer_key))


def build_root(
    key: PrivateKey, *, not_before: datetime, not_after: datetime, cn: str = ROOT_CN
) -> x509.Certificate:
    """The self-signed national root CA (pathlen=1)."""
    name = _name(cn)
    return _build(
        subject=name,
        public_key=key.public_key(),
        issuer_name=name,
        issuer_key=key,
        not_before=not_before,
        not_after=not_after,
        ca=True,
        path_length=1,
        key_usage=_key_usage(signing=False, ca=True),
    )


def build_intermediate(
    code: str,
    public_key: PublicKey,
    *,
    root: x509.Certificate,
    root_key: PrivateKey,
    not_before: datetime,
    not_after: datetime,
) -> x509.Certificate:
    """Node ``code``'s intermediate CA (pathlen=0), issued by ``root``."""
    return _build(
        subject=_name(intermediate_cn(code)),
        public_key=public_key,
        issuer_name=root.subject,
        issuer_key=root_key,
        not_before=not_before,
        not_after=not_after,
        ca=True,
        path_length=0,
        key_usage=_key_usage(signing=False, ca=True),
    )


def _dedupe(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _tls_san(code: str, hostnames: Sequence[str]) -> list[x509.GeneralName]:
    san: list[x509.GeneralName] = []
    ips = [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    for host in _dedupe(["localhost", f"node-{code}.tongban.test", *hostnames]):
        try:
            ips.append(ipaddress.ip_address(host))
        except ValueError:
            san.append(x509.DNSName(host))
    san.extend(x509.IPAddress(ip) for ip in dict.fromkeys(ips))
    san.append(x509.UniformResourceIdentifier(f"urn:tongban:node:{code}"))
    return san


def build_leaf(
    kind: LeafKind,
    name: str,
    public_key: PublicKey,
    *,
    issuer: x509.Certificate,
    issuer_key: PrivateKey,
    not_before: datetime,
    not_after: datetime,
    hostnames: Sequence[str] = (),
) -> x509.Certificate:
    """An end-entity certificate of profile ``kind`` for node (or client) ``name``.

    ``hostnames`` (extra DNS names or IP addresses) only apply to ``kind="tls"``.
    """
    if kind == "tls":
        key_usage = _key_usage(signing=True, ca=False)
        eku = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        san = _tls_san(name, hostnames)
    elif kind == "client":
        key_usage = _key_usage(signing=True, ca=False)
        eku = [ExtendedKeyUsageOID.CLIENT_AUTH]
        san = [x509.UniformResourceIdentifier(f"urn:tongban:client:{name}")]
    elif kind in ("sign", "issuer"):
        key_usage = _key_usage(signing=True, ca=False, commitment=True)
        eku = [DOCUMENT_SIGNING]  # not TLS: see DOCUMENT_SIGNING
        role = "node" if kind == "sign" else "issuer"
        san = [x509.UniformResourceIdentifier(f"urn:tongban:{role}:{name}")]
    else:
        raise ConfigError(f"leaf kind must be tls, sign, issuer or client, found {kind!r}")
    return _build(
        subject=_name(name, _OU[kind]),
        public_key=public_key,
        issuer_name=issuer.subject,
        issuer_key=issuer_key,
        not_before=not_before,
        not_after=not_after,
        ca=False,
        path_length=None,
        key_usage=key_usage,
        eku=eku,
        san=san,
    )


# --- PEM -------------------------------------------------------------------------


def certificate_pem(cert: x509.Certificate) -> bytes:
    """The PEM encoding of ``cert``."""
    return cert.public_bytes(serialization.Encoding.PEM)


def load_certificate_pem(data: bytes, *, source: str) -> x509.Certificate:
    """The first certificate in PEM ``data``; ConfigError naming ``source`` otherwise."""
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as e:
        raise ConfigError(f"{source}: expected a PEM certificate: {e}") from e


def load_certificates_pem(data: bytes, *, source: str) -> list[x509.Certificate]:
    """Every certificate in PEM ``data`` (at least one), in file order."""
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as e:
        raise ConfigError(f"{source}: expected one or more PEM certificates: {e}") from e


# --- chain checks ----------------------------------------------------------------


def _attr(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    values = name.get_attributes_for_oid(oid)
    if len(values) != 1:
        return None
    value = values[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _short(name: x509.Name) -> str:
    parts = []
    for label, oid in (("CN", NameOID.COMMON_NAME), ("OU", NameOID.ORGANIZATIONAL_UNIT_NAME)):
        value = _attr(name, oid)
        if value is not None:
            parts.append(f"{label}={value}")
    return " ".join(parts) or name.rfc4514_string() or "<empty name>"


def _pair(found: x509.Name, expected: x509.Name) -> tuple[str, str]:
    """Short forms of two names, or full RFC 4514 forms if the short ones collide."""
    a, b = _short(found), _short(expected)
    if a == b and found != expected:
        return found.rfc4514_string(), expected.rfc4514_string()
    return a, b


def describe(cert: x509.Certificate) -> str:
    """``"certificate CN=440000 OU=sign"``: how messages name a certificate."""
    return f"certificate {_short(cert.subject)}"


_EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.CODE_SIGNING: "codeSigning",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping",
    DOCUMENT_SIGNING: "documentSigning",
}


def require_tls_certificate(cert: x509.Certificate, *, server: bool, source: str, pki_dir: object) -> None:
    """Key separation: raise ConfigError unless ``cert`` is a TLS certificate, with extended
    key usage clientAuth (and serverAuth too with ``server``): a sign.crt copied over
    tls.crt is not. ``source`` names the file, ``pki_dir`` the PKI to re-create."""
    try:
        eku = list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        eku = []
    need = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH][0 if server else 1:]
    missing = [_EKU_NAMES[oid] for oid in need if oid not in eku]
    if missing:
        found = ", ".join(_EKU_NAMES.get(oid, oid.dotted_string) for oid in eku)
        raise ConfigError(
            f"{source}: {describe(cert)} is not a TLS certificate "
            f"({f'extended key usage {found}' if eku else 'no extended key usage'}), expected extended "
            f"key usage {' and '.join(_EKU_NAMES[oid] for oid in need)}; "
            f"re-create the PKI with `tongban pki init {pki_dir} --force`"
        )


def node_code_of(cert: x509.Certificate) -> str:
    """The node code (or client name) a certificate belongs to: its subject CN."""
    cn = _attr(cert.subject, NameOID.COMMON_NAME)
    if not cn:
        raise ChainError(
            f"certificate with subject '{cert.subject.rfc4514_string()}' has no single CN, "
            "expected CN=<node code>"
        )
    return cn


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    return bc.ca


def _check_issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> None:
    if cert.issuer != issuer.subject:
        found, expected = _pair(cert.issuer, issuer.subject)
        raise ChainError(f"{describe(cert)} issued by '{found}', expected issuer '{expected}'")
    try:
        cert.verify_directly_issued_by(issuer)
    except InvalidSignature as e:
        raise ChainError(
            f"{describe(cert)}: signature does not verify with the key of "
            f"'{_short(issuer.subject)}' (same issuer name, different key: "
            "a certificate from another CA)"
        ) from e
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise ChainError(
            f"{describe(cert)}: cannot check its signature with the key of "
            f"'{_short(issuer.subject)}': {e}"
        ) from e


def _check_validity(cert: x509.Certificate, at: datetime) -> None:
    if at < cert.not_valid_before_utc:
        raise ChainError(
            f"{describe(cert)} is not valid before {cert.not_valid_before_utc.isoformat()}, "
            f"checked at {at.isoformat()}"
        )
    if at > cert.not_valid_after_utc:
        raise ChainError(
            f"{describe(cert)} expired at {cert.not_valid_after_utc.isoformat()}, "
            f"checked at {at.isoformat()}"
        )


def verify_chain(
    leaf: x509.Certificate,
    intermediate: x509.Certificate,
    root: x509.Certificate,
    *,
    at: datetime,
    expected_code: str | None = None,
) -> None:
    """Check ``leaf`` ← ``intermediate`` ← ``root`` at time ``at``, or raise ChainError.

    ``root`` is the trust anchor and is only checked for validity at ``at``. Checks,
    in order: the intermediate is a CA issued and signed by root; the leaf is issued
    and signed by the intermediate and is not a CA; all three are valid at ``at``;
    and, with ``expected_code``, the leaf's CN is that code and the intermediate is
    that code's intermediate CA. Pure: no I/O, no clock.
    """
    require_aware(at, what="at")
    if not _is_ca(intermediate):
        raise ChainError(
            f"{describe(intermediate)} is not a CA (no BasicConstraints CA=true), "
            "expected an intermediate CA"
        )
    _check_issued_by(intermediate, root)
    _check_issued_by(leaf, intermediate)
    if _is_ca(leaf):
        raise ChainError(f"{describe(leaf)} is a CA, expected an end-entity certificate")
    for cert in (root, intermediate, leaf):
        _check_validity(cert, at)
    if expected_code is not None:
        found = node_code_of(leaf)
        if found != expected_code:
            raise ChainError(
                f"{describe(leaf)} belongs to node {found}, expected node {expected_code}"
            )
        wanted = intermediate_cn(expected_code)
        if _attr(intermediate.subject, NameOID.COMMON_NAME) != wanted:
            raise ChainError(
                f"{describe(leaf)} issued by '{_short(intermediate.subject)}', "
                f"expected issuer 'CN={wanted}'"
            )
