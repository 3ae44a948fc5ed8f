"""Signing keys: ECDSA P-256 (default) and Ed25519, behind one small interface.

A key id is the lowercase hex SHA-256 of the public key's DER SubjectPublicKeyInfo,
so anyone holding the signer's certificate can recompute it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from exchange.errors import ConfigError, SignatureError

__all__ = [
    "PrivateKey",
    "PublicKey",
    "SignAlg",
    "Signer",
    "algorithm_of",
    "key_id",
    "load_private_key_pem",
    "verify_signature",
]

SignAlg = Literal["p256", "ed25519"]
PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

_ECDSA = ec.ECDSA(hashes.SHA256())


def key_id(public_key: PublicKey) -> str:
    """Hex SHA-256 of the DER SubjectPublicKeyInfo of ``public_key``."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def algorithm_of(public_key: object) -> SignAlg:
    """The signing algorithm name for a public key, or ConfigError for others."""
    if isinstance(public_key, ec.EllipticCurvePublicKey) and isinstance(
        public_key.curve, ec.SECP256R1
    ):
        return "p256"
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "ed25519"
    raise ConfigError(
        f"signing key must be ECDSA P-256 or Ed25519, found {type(public_key).__name__}"
    )


def load_private_key_pem(data: bytes, *, source: str = "<memory>") -> PrivateKey:
    """Load a PEM private key, refusing anything but P-256 or Ed25519."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{source}: expected an unencrypted PEM private key: {e}") from e
    if isinstance(key, (ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)):
        algorithm_of(key.public_key())
        return key
    raise ConfigError(
        f"{source}: expected an ECDSA P-256 or Ed25519 key, found {type(key).__name__}"
    )


@dataclass(frozen=True, slots=True)
class Signer:
    """A private signing key with its key id, as used to seal envelopes."""

    private_key: PrivateKey
    keyid: str

    @classmethod
    def from_private_key(cls, private_key: PrivateKey) -> Signer:
        return cls(private_key=private_key, keyid=key_id(private_key.public_key()))

    @property
    def algorithm(self) -> SignAlg:
        return algorithm_of(self.private_key.public_key())

    def sign(self, message: bytes) -> bytes:
        if isinstance(self.private_key, ec.EllipticCurvePrivateKey):
            return self.private_key.sign(message, _ECDSA)
        return self.private_key.sign(message)


def verify_signature(public_key: PublicKey, signature: bytes, message: bytes, *, what: str) -> None:
    """Verify or raise SignatureError naming ``what`` was being checked."""
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, message, _ECDSA)
        else:
            public_key.verify(signature, message)
    except InvalidSignature as e:
        raise SignatureError(f"{what}: signature does not verify") from e
