"""Certificates as a PKI made before the signing profiles carried an extended key usage.

Until then ``sign.crt`` and ``issuer.crt`` had no ExtendedKeyUsage extension, which RFC
5280 reads as "any purpose": OpenSSL took them as TLS client certificates. A developer's
PKI, or a run cache, may still hold such certificates; these helpers re-issue a current
one exactly as it was then (same key, names, validity and extensions, minus the EKU).
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519

from certs.pki import PkiPaths, certificate_pem
from exchange.keys import load_private_key_pem


def without_eku(pki_dir: Path, code: str, kind: str) -> tuple[bytes, bytes, bytes]:
    """(leaf PEM, leaf + chain.pem PEM, key PEM) of node ``code``'s ``kind`` certificate
    (``sign`` or ``issuer``), re-issued by its intermediate without the EKU extension."""
    paths = PkiPaths(pki_dir)
    cert = x509.load_pem_x509_certificate((paths.node_dir(code) / f"{kind}.crt").read_bytes())
    ca_key = load_private_key_pem(paths.ca_key(code).read_bytes(), source=str(paths.ca_key(code)))
    builder = (x509.CertificateBuilder().subject_name(cert.subject).issuer_name(cert.issuer)
               .public_key(cert.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(cert.not_valid_before_utc).not_valid_after(cert.not_valid_after_utc))
    for ext in cert.extensions:
        if not isinstance(ext.value, x509.ExtendedKeyUsage):
            builder = builder.add_extension(ext.value, critical=ext.critical)
    old = builder.sign(ca_key, None if isinstance(ca_key, ed25519.Ed25519PrivateKey) else hashes.SHA256())
    assert old.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    pem = certificate_pem(old)
    key = (paths.node_dir(code) / f"{kind}.key").read_bytes()
    return pem, pem + paths.chain(code).read_bytes(), key
