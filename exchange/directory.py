"""The signed directory: building it (hub), verifying it and asking it questions.

Pure: callers pass certificates as DER bytes and the time as ``now_ns``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from certs.identifiers import (
    USCC_ALPHABET,
    citizen_id_check,
    is_valid_citizen_id,
    is_valid_uscc,
    uscc_check,
    uscc_division,
)
from exchange import payloads
from exchange.dsse import DsseEnvelope, seal
from exchange.errors import (
    AccessDeniedError,
    DirectoryError,
    HeaderError,
    MalformedError,
    PayloadTypeError,
    RevokedKeyError,
    RoutingError,
    SignatureError,
    TrustError,
    UnknownKeyError,
)
from exchange.header import iso_ns, make_header
from exchange.keys import Signer, verify_signature
from exchange.trust import TrustStore, VerifiedKey
from tongban.v1 import directory_pb2

__all__ = [
    "DEFAULT_POLICY",
    "REGIONS",
    "DirectoryContent",
    "DirectoryView",
    "MemberInfo",
    "build_directory",
    "seal_directory",
    "verify_directory",
]

#: Clock skew 5 s, message lifetime 60 s, messages up to 4 MiB.
DEFAULT_POLICY = directory_pb2.Policy(
    max_clock_skew_ms=5_000, max_message_lifetime_ms=60_000, max_message_bytes=4 * 1024 * 1024
)


@dataclass(frozen=True, kw_only=True)
class MemberInfo:
    """What the hub knows of one member when it builds a directory."""

    code: str
    name: str
    kind: int
    endpoint: str
    intermediate_der: bytes
    signing_keys: tuple[tuple[str, bytes], ...]  # (keyid, certificate DER)
    issuer_der: bytes = b""
    host: str = ""  # co-hosting: the province whose connections carry this member's exchanges


@dataclass(frozen=True, kw_only=True)
class DirectoryContent:
    """Inputs of one directory version (everything but the signature)."""

    version: int
    hub: str
    members: Sequence[MemberInfo]
    catalogue: Sequence[tuple[str, str, Sequence[str]]]  # (type, name, issuers)
    division_routes: dict[str, str]
    access_rules: Sequence[tuple[str, str, Sequence[str]]]  # (sender, flow, cert types)
    revocations: Sequence[tuple[str, int, str]] = ()  # (keyid, revoked_at_ns, reason)
    policy: directory_pb2.Policy = field(default_factory=lambda: DEFAULT_POLICY)
    topology: str = "star"
    regions: dict[str, Sequence[str]] = field(default_factory=dict)


_TOPOLOGY_KINDS = {"star": directory_pb2.TOPOLOGY_KIND_STAR, "regional": directory_pb2.TOPOLOGY_KIND_REGIONAL,
                   "direct": directory_pb2.TOPOLOGY_KIND_DIRECT}

#: 跨省 cooperation regions whose members exchange directly in the regional
#: topology. 粤港澳大湾区 lists only its mainland province (广东); Hong Kong and
#: Macao are not nodes of the national platform.
REGIONS: dict[str, tuple[str, ...]] = {
    "京津冀": ("110000", "120000", "130000"),
    "长三角": ("310000", "320000", "330000", "340000"),
    "粤港澳": ("440000",),
    "川渝": ("500000", "510000"),
}


def build_directory(content: DirectoryContent, *, now_ns: int, validity_s: int) -> directory_pb2.Directory:
    """A Directory message valid from ``now_ns`` for ``validity_s`` seconds."""
    if not content.access_rules:
        raise DirectoryError("directory: expected at least one access rule, found none (an empty rule set denies everything)")
    d = directory_pb2.Directory(
        header=make_header(sender=content.hub, receiver="", now_ns=now_ns, lifetime_ms=validity_s * 1000),
        version=content.version,
        hub=content.hub,
        policy=content.policy,
    )
    d.valid_from.FromNanoseconds(now_ns)
    d.valid_until.FromNanoseconds(now_ns + validity_s * 1_000_000_000)
    for m in content.members:
        d.members.add(
            code=m.code, name=m.name, kind=m.kind, endpoint=m.endpoint, host=m.host,  # type: ignore[arg-type]
            intermediate_certificate=m.intermediate_der, issuer_certificate=m.issuer_der,
            signing_keys=[directory_pb2.SigningKey(keyid=k, certificate=c) for k, c in m.signing_keys],
        )
    for cert_type, name, issuers in content.catalogue:
        d.catalogue.add(cert_type=cert_type, cert_type_name=name, issuers=list(issuers))
    for prefix, node in sorted(content.division_routes.items()):
        d.division_routes.add(prefix=prefix, node=node)
    for sender, flow, types in content.access_rules:
        d.access_rules.add(sender=sender, flow=flow, cert_types=list(types))
    d.topology.kind = _TOPOLOGY_KINDS[content.topology]
    if content.topology == "regional":
        for name, members in content.regions.items():
            d.topology.regions.add(name=name, members=list(members))
    for keyid, at_ns, reason in content.revocations:
        r = d.revocations.add(keyid=keyid, reason=reason)
        r.revoked_at.FromNanoseconds(at_ns)
    return d


def seal_directory(directory: directory_pb2.Directory, signer: Signer) -> DsseEnvelope:
    """Sign a directory with the hub's signing key."""
    return seal(payloads.DIRECTORY, directory.SerializeToString(), signer)


class DirectoryView:
    """A verified directory with indexes for the questions nodes ask per message."""

    def __init__(self, pb: directory_pb2.Directory, envelope: DsseEnvelope) -> None:
        self.pb = pb
        self.envelope = envelope
        self.version = pb.version
        self.hub = pb.hub
        self.policy = pb.policy
        self.valid_until_ns = pb.valid_until.ToNanoseconds()
        self.members = {m.code: m for m in pb.members}
        self._keys = {(m.code, k.keyid): k for m in pb.members for k in m.signing_keys}
        self._revoked = {r.keyid: r for r in pb.revocations}
        self._issuers = {c.cert_type: frozenset(c.issuers) for c in pb.catalogue}
        self._type_names = {c.cert_type: c.cert_type_name for c in pb.catalogue}
        self._routes = {r.prefix: r.node for r in pb.division_routes}
        self._route_lengths = sorted({len(p) for p in self._routes}, reverse=True)
        self.topology = {directory_pb2.TOPOLOGY_KIND_REGIONAL: "regional",
                         directory_pb2.TOPOLOGY_KIND_DIRECT: "direct"}.get(pb.topology.kind, "star")
        self._region_of = {m: r.name for r in pb.topology.regions for m in r.members}
        self._rules: dict[tuple[str, str], frozenset[str]] = {}
        for rule in pb.access_rules:
            key = (rule.sender, rule.flow)
            self._rules[key] = self._rules.get(key, frozenset()) | frozenset(rule.cert_types)

    # -- trust -------------------------------------------------------------
    def member(self, code: str) -> directory_pb2.Member:
        m = self.members.get(code)
        if m is None:
            raise RoutingError(f"node {code[:40]!r} is not a member of directory v{self.version}")
        return m

    def _check_revoked(self, keyid: str, now_ns: int, what: str) -> None:
        revoked = self._revoked.get(keyid)
        if revoked is not None and revoked.revoked_at.ToNanoseconds() <= now_ns:
            raise RevokedKeyError(
                f"{what} signed by key {keyid[:12]}…, which directory v{self.version} "
                f"revoked ({revoked.reason or 'no reason given'}): expected a key in force"
            )

    def sender_key(self, trust: TrustStore, *, sender: str, keyid: str, now_ns: int) -> VerifiedKey:
        """The verified key ``keyid`` of ``sender``, or the reason it is not trusted."""
        self._check_revoked(keyid, now_ns, f"envelope from {sender[:40]}")
        entry = self._keys.get((sender, keyid))
        if entry is None:
            known = ", ".join(k[:12] + "…" for (c, k) in self._keys if c == sender) or "none"
            raise UnknownKeyError(
                f"envelope from {sender[:40]} signed by key {keyid[:16]}…, expected one of the directory's "
                f"keys for {sender[:40]} (directory v{self.version}: {known})"
            )
        member = self.members[sender]
        return trust.verified_key(code=sender, keyid=keyid, cert_der=entry.certificate,
                                  intermediate_der=member.intermediate_certificate, now_ns=now_ns)

    def issuer_key(self, trust: TrustStore, *, node: str, keyid: str, now_ns: int) -> VerifiedKey:
        """The verified e-certificate issuing authority key of province ``node``."""
        self._check_revoked(keyid, now_ns, f"certificate issued by {node[:40]}")
        member = self.member(node)
        if not member.issuer_certificate:
            raise UnknownKeyError(f"node {node} has no e-certificate issuing authority in directory v{self.version}")
        return trust.verified_key(code=node, keyid=keyid, cert_der=member.issuer_certificate,
                                  intermediate_der=member.intermediate_certificate, now_ns=now_ns,
                                  role="issuing authority")

    # -- routing -----------------------------------------------------------
    def route_division(self, division: str) -> str:
        for n in self._route_lengths:
            node = self._routes.get(division[:n])
            if node is not None:
                return node
        raise RoutingError(f"no node serves division {division[:12]!r} in directory v{self.version}")

    def route_subject(self, holder_id: str, cert_type: str) -> str:
        """The node that holds ``holder_id``'s records (of ``cert_type``, if given)."""
        division = _division_of(holder_id)
        if division is None:
            wrong = _wrong_check(holder_id)
            if wrong:  # a client's typo, not a holder no node serves
                raise HeaderError(f"holder {holder_id!r}: {wrong}")
            raise RoutingError(
                f"cannot route by holder {holder_id[:40]!r}: expected an 18-digit 公民身份号码 or 统一社会信用代码"
            )
        node = self.route_division(division)
        if cert_type:
            issuers = self._issuers.get(cert_type)
            if issuers is None:
                raise RoutingError(f"certificate type {cert_type[:40]!r} is not in the catalogue of directory v{self.version}")
            if node not in issuers:
                raise RoutingError(f"holder's home node {node} does not issue certificate type {cert_type}")
        return node

    def endpoint(self, node: str) -> str:
        m = self.member(node)
        if not m.endpoint:
            raise RoutingError(f"node {node} has not registered an endpoint (directory v{self.version})")
        return m.endpoint

    def carrier(self, node: str) -> str:
        """Whose connections carry ``node``'s exchanges: its host when it is co-hosted
        (``Member.host``), else ``node`` itself."""
        return self.member(node).host or node

    def direct(self, a: str, b: str) -> bool:
        """Do ``a`` and ``b`` exchange directly (not through the hub) in this topology?"""
        if self.topology == "direct":
            return True
        if self.topology == "regional":
            region = self._region_of.get(a)
            return region is not None and region == self._region_of.get(b)
        return False

    def cert_type_name(self, cert_type: str) -> str:
        return self._type_names.get(cert_type, "")

    # -- access ------------------------------------------------------------
    def check_access(self, *, sender: str, flow: str, cert_type: str) -> None:
        """Allow or raise AccessDeniedError; anything not allowed is denied."""
        for who in (sender, "*"):
            types = self._rules.get((who, flow))
            if types is None:
                continue
            if not types or "*" in types or cert_type in types:
                if types and not cert_type:
                    raise AccessDeniedError(
                        f"access rules of directory v{self.version} allow {flow} only for listed certificate "
                        f"types: expected a certificate type, found none")
                return
        what = f"{flow} of certificate type {cert_type}" if cert_type else flow
        raise AccessDeniedError(
            f"access rules of directory v{self.version} do not allow {sender} to request {what}"
        )


def _division_of(holder_id: str) -> str | None:
    """The 户籍 / registration division of a citizen ID or USCC, if it is one."""
    if len(holder_id) == 18:
        if is_valid_citizen_id(holder_id):
            return holder_id[:6]
        if is_valid_uscc(holder_id):
            return uscc_division(holder_id)
    return None


def _wrong_check(holder_id: str) -> str:
    """What is wrong with an 18-character ID whose only fault is its check character, else ""."""
    if len(holder_id) != 18 or not holder_id.isascii():
        return ""
    body, last = holder_id[:17], holder_id[17]
    if body.isdigit() and (last.isdigit() or last == "X"):
        expected = citizen_id_check(body)
        if is_valid_citizen_id(body + expected):  # a real birth date: only the check digit is wrong
            return f"公民身份号码 check digit: expected {expected}, found {last}"
        return ""
    try:
        expected = uscc_check(body)
    except MalformedError:
        return ""
    return f"统一社会信用代码 check character: expected {expected}, found {last}" if last in USCC_ALPHABET else ""


def verify_directory(
    envelope: DsseEnvelope,
    trust: TrustStore,
    *,
    now_ns: int,
    hub: str = "000000",
    min_version: int = 0,
    current: DirectoryView | None = None,
) -> DirectoryView:
    """Check a directory envelope: hub's key, chain to the root, version and validity."""
    if envelope.payload_type != payloads.DIRECTORY:
        raise PayloadTypeError(f"expected a directory of type {payloads.DIRECTORY}, found {envelope.payload_type[:80]!r}")
    if len(envelope.signatures) != 1:
        raise SignatureError(f"directory: expected exactly one signature, found {len(envelope.signatures)}")
    pb = payloads.parse_payload(envelope.payload_type, envelope.payload)
    assert isinstance(pb, directory_pb2.Directory)
    view = DirectoryView(pb, envelope)
    if pb.hub != hub:
        raise DirectoryError(f"directory names hub {pb.hub!r}, expected {hub!r}")
    sig = envelope.signatures[0]
    try:
        key = view.sender_key(trust, sender=hub, keyid=sig.keyid, now_ns=now_ns)
    except TrustError as e:
        raise DirectoryError(f"directory v{pb.version} is not signed by a key of hub {hub}: {e}") from e
    verify_signature(key.public_key, sig.sig, envelope.pae(), what=f"directory v{pb.version} from hub {hub}")
    if pb.version < min_version:
        raise DirectoryError(f"directory v{pb.version} is older than the v{min_version} this node already has")
    if current is not None and pb.version == current.version and envelope != current.envelope:
        raise DirectoryError(f"directory v{pb.version} differs from the v{pb.version} this node already has: "
                             "expected a higher version for any change")
    skew = pb.policy.max_clock_skew_ms * 1_000_000
    if not pb.valid_from.ToNanoseconds() - skew <= now_ns <= view.valid_until_ns + skew:
        raise DirectoryError(
            f"directory v{pb.version} is valid from {pb.valid_from.ToJsonString()} until "
            f"{pb.valid_until.ToJsonString()}, and it is now {iso_ns(now_ns)}"
        )
    return view

