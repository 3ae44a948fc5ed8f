"""Which public key speaks for which node: chains verified once, cached per key id."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timezone

from cryptography import x509
from cryptography.x509.oid import NameOID

from certs.pki import verify_chain
from exchange.errors import ChainError, UnknownKeyError
from exchange.keys import PublicKey, key_id

__all__ = ["TrustStore", "VerifiedKey"]


@dataclass(frozen=True, slots=True)
class VerifiedKey:
    """A public key whose certificate chain verified to the national root."""

    keyid: str
    code: str
    public_key: PublicKey
    not_after_ns: int


#: The certificate profile (OU) each role's key must come from: a TLS key can
#: never sign messages, and a message key can never sign certificates.
_ROLE_OU = {"signing": "sign", "issuing authority": "ecert-issuer"}


def _ns(dt: datetime) -> int:
    return int(dt.timestamp()) * 1_000_000_000


class TrustStore:
    """Holds the national root and a cache of verified keys.

    A chain check costs hundreds of microseconds; a cache hit costs a dict
    lookup, so the per-message cost is one signature check. The cache key is
    (key id, node code, certificate bytes): a key vouched for one node is never
    accepted for another.
    """

    def __init__(self, root: x509.Certificate) -> None:
        self.root = root
        self._cache: dict[tuple[str, str, bytes], VerifiedKey] = {}
        self._lock = threading.Lock()
        self.chain_checks = 0

    def verified_key(
        self,
        *,
        code: str,
        keyid: str,
        cert_der: bytes,
        intermediate_der: bytes,
        now_ns: int,
        role: str = "signing",
    ) -> VerifiedKey:
        """The key of ``cert_der`` after checking it chains to the root for ``code``."""
        cache_key = (keyid, code + "/" + role, cert_der)
        hit = self._cache.get(cache_key)
        if hit is None:
            hit = self._verify(code=code, keyid=keyid, cert_der=cert_der,
                               intermediate_der=intermediate_der, now_ns=now_ns, role=role)
            with self._lock:
                self._cache[cache_key] = hit
        if now_ns > hit.not_after_ns:
            raise ChainError(
                f"{role} certificate of {code} (key {keyid[:12]}…) expired at "
                f"{datetime.fromtimestamp(hit.not_after_ns / 1e9, timezone.utc).isoformat()}"
            )
        return hit

    def _verify(self, *, code: str, keyid: str, cert_der: bytes, intermediate_der: bytes,
                now_ns: int, role: str) -> VerifiedKey:
        try:
            leaf = x509.load_der_x509_certificate(cert_der)
            intermediate = x509.load_der_x509_certificate(intermediate_der)
        except ValueError as e:
            raise ChainError(f"{role} certificate of {code}: expected DER X.509, found bytes that do not parse") from e
        at = datetime.fromtimestamp(now_ns / 1e9, timezone.utc)
        verify_chain(leaf, intermediate, self.root, at=at, expected_code=code)
        ou = [a.value for a in leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]
        want = _ROLE_OU[role]
        if ou != [want]:
            raise ChainError(f"{role} key of {code}: expected a certificate with OU={want}, found OU={ou}")
        public_key = leaf.public_key()
        found = key_id(public_key)  # type: ignore[arg-type]
        if found != keyid:
            raise UnknownKeyError(
                f"{role} key of {code}: directory lists key id {keyid[:12]}… but its certificate holds key {found[:12]}…"
            )
        self.chain_checks += 1
        return VerifiedKey(keyid=keyid, code=code, public_key=public_key,  # type: ignore[arg-type]
                           not_after_ns=_ns(leaf.not_valid_after_utc))
