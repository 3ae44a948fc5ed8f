"""What hub and provinces share: identity, trust, directory, replay window, ledger."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import grpc

from exchange.directory import DirectoryView, verify_directory
from exchange.dsse import DsseEnvelope, pae_digest
from exchange.errors import DirectoryError, LedgerError, PeerUnavailableError, TongbanError
from exchange.ledger import Ledger, LedgerEntry, load_unexpired_message_ids, unanswered_requests
from exchange.opener import Opened, open_envelope, peek_header
from exchange.payloads import PayloadKind, spec_of
from exchange.replay import ReplayWindow
from exchange.trust import TrustStore
from certs.pki import NodeCredentials, load_node_credentials
from nodes._grpc import TlsMaterial, channel_credentials
from nodes.admission import Admission, Ticket
from tongban.v1 import envelope_pb2, header_pb2

__all__ = ["Clock", "NodeCore", "Observer"]

log = logging.getLogger(__name__)

Clock = Callable[[], int]

#: Upper bound on directory.policy.max_clock_skew_ms, used when seeding the replay window.
_MAX_SKEW_NS = 60 * 1_000_000_000


def _expires_ns(header: header_pb2.Header) -> int:
    """The header's expiry for the ledger; 0 when absent or out of range (unverified input)."""
    if not header.HasField("expires_at"):
        return 0
    try:
        return max(0, min(header.expires_at.ToNanoseconds(), 2**63 - 1))
    except (ValueError, OverflowError):
        return 0


def _request_digest(pb: envelope_pb2.Envelope, header: header_pb2.Header, flow: str) -> str:
    """The PAE digest of the request a row is about: a response's ``request_digest``,
    or a request's own, so a request and its outcome rows share one key."""
    if header.request_digest:
        return header.request_digest.hex()
    if flow and spec_of(pb.payload_type).kind == "request":
        return pae_digest(pb.payload_type, pb.payload).hex()
    return ""


class Observer(Protocol):
    """Watches what a node does (metrics exporters implement this)."""

    def envelope(self, *, node: str, direction: str, flow: str, outcome: str, size_bytes: int) -> None: ...

    def exchange(self, *, node: str, flow: str, outcome: str, seconds: float) -> None: ...


class NodeCore:
    """Identity, trust and bookkeeping of one node; no sockets of its own."""

    #: Optional observer of every ledgered envelope and every originated exchange.
    observer: Observer | None = None

    def __init__(self, *, code: str, pki_dir: Path, data_dir: Path, clock: Clock = time.time_ns) -> None:
        self.code = code
        self.clock = clock
        self.creds: NodeCredentials = load_node_credentials(pki_dir, code)
        self.trust = TrustStore(self._root())
        self.db_path = data_dir / f"{code}.sqlite"
        # The first write to the data dir: the ledger's lock refuses a second node on it
        # (ConfigError) before that node changes anything there.
        self.ledger = Ledger(self.db_path, node_code=code)
        try:
            # Seeded from the ledger after a restart, each id kept as long as a live window
            # would keep it: its expiry plus the largest clock skew any directory allows.
            seen = load_unexpired_message_ids(self.db_path, now_ns=clock() - _MAX_SKEW_NS)
            self.replay = ReplayWindow({mid: exp + _MAX_SKEW_NS for mid, exp in seen.items()})
            self.admission = Admission(self.replay)
            self._facts: OrderedDict[int, tuple[envelope_pb2.Envelope, bytes, int]] = OrderedDict()
            self._close_interrupted()
        except BaseException:
            with contextlib.suppress(LedgerError):  # the error in flight says more
                self.ledger.close()
            raise
        self.directory: DirectoryView | None = None
        self.signer = self.creds.sign_signer

    def _root(self):  # type: ignore[no-untyped-def]
        from cryptography import x509

        return x509.load_pem_x509_certificate(self.creds.root_pem)

    # -- credentials -------------------------------------------------------
    def tls_material(self) -> TlsMaterial:
        c = self.creds
        return TlsMaterial(key_pem=c.tls_key_pem, chain_pem=c.tls_chain_pem, root_pem=c.root_pem)

    def channel_creds(self) -> grpc.ChannelCredentials:
        c = self.creds
        return channel_credentials(key_pem=c.tls_key_pem, chain_pem=c.tls_chain_pem, root_pem=c.root_pem)

    # -- directory ---------------------------------------------------------
    def accept_directory(self, envelope: DsseEnvelope) -> DirectoryView:
        """Verify and install a directory if it is newer than ours."""
        current = self.directory.version if self.directory else 0
        view = verify_directory(envelope, self.trust, now_ns=self.clock(), min_version=current,
                                current=self.directory)
        self.directory = view
        return view

    def current_directory(self) -> DirectoryView:
        d = self.directory
        if d is None:
            raise DirectoryError(f"node {self.code} has no directory yet: expected one from the hub")
        now = self.clock()
        if now > d.valid_until_ns:
            raise DirectoryError(
                f"node {self.code} holds directory v{d.version}, valid until "
                f"{d.pb.valid_until.ToJsonString()}: expected a directory in force"
            )
        return d

    # -- opening and recording ---------------------------------------------
    def ensure_recording(self) -> None:
        """Refuse work (PeerUnavailableError: UNAVAILABLE) once the ledger has failed: a
        node that cannot record an exchange must not take part in it."""
        failure = self.ledger.failure()
        if failure is not None:
            raise self._unrecordable(failure)

    def _unrecordable(self, failure: LedgerError) -> PeerUnavailableError:
        error = PeerUnavailableError(f"node {self.code} is not accepting work: its ledger cannot record it: {failure}")
        error.__cause__ = failure
        return error

    def _append(self, entry: LedgerEntry) -> None:
        try:
            self.ledger.append(entry)
        except LedgerError as e:
            raise self._unrecordable(e) from e

    def open(self, pb: envelope_pb2.Envelope, *, expect: PayloadKind, relay: bool = False,
             replay: bool = True) -> Opened:
        self.ensure_recording()
        return open_envelope(
            DsseEnvelope.from_pb(pb), directory=self.current_directory(), trust=self.trust, me=self.code,
            now_ns=self.clock(), expect=expect, replay=self.replay if replay else None, relay=relay,
            size_bytes=pb.ByteSize(),
        )

    def _close_interrupted(self) -> None:
        """After a crash: every request this node sent whose answer or failure never
        reached its ledger gets its terminal row now, so nothing is unaccounted for."""
        for row in unanswered_requests(self.db_path, node_code=self.code):
            e = row.entry
            self.ledger.append(LedgerEntry(**{
                **{f: getattr(e, f) for f in LedgerEntry.__dataclass_fields__},
                "at_ns": self.clock(), "direction": "rejected", "outcome": "interrupted",
                "reason": f"node {self.code} restarted before the answer to {e.message_id} arrived"}))

    def facts(self, pb: envelope_pb2.Envelope) -> tuple[bytes, int]:
        """SHA-256 and size of ``pb``'s serialised bytes, computed once per envelope
        object however many ledger rows and admission checks it takes part in."""
        hit = self._facts.get(id(pb))
        if hit is None or hit[0] is not pb:
            raw = pb.SerializeToString()
            hit = (pb, hashlib.sha256(raw).digest(), len(raw))
            self._facts[id(pb)] = hit  # the entry holds pb, so its id cannot be reused while cached
            if len(self._facts) > 256:
                self._facts.popitem(last=False)
        return hit[1], hit[2]

    def retry_of(self, pb: envelope_pb2.Envelope, peer: str) -> Any:
        """The recorded answer's future if ``pb`` is an exact retry (see nodes.admission)."""
        self.ensure_recording()
        return self.admission.retry_of(pb, peer, self.clock(), digest=self.facts(pb)[0])

    def admit(self, pb: envelope_pb2.Envelope, opened: Opened, *, peer: str, target: str = "") -> Ticket:
        """Admit a verified request (sheds load when at capacity), recording a refusal."""
        skew_ns = self.current_directory().policy.max_clock_skew_ms * 1_000_000
        try:
            return self.admission.admit(pb, message_id=opened.header.message_id, peer=peer,
                                        expires_ns=opened.header.expires_at.ToNanoseconds() + skew_ns, target=target,
                                        digest=self.facts(pb)[0])
        except TongbanError as e:
            self.record("rejected", pb, peer=peer, header=opened.header, error=e)
            raise

    def record(
        self,
        direction: str,
        pb: envelope_pb2.Envelope,
        *,
        peer: str,
        header: header_pb2.Header | None = None,
        error: TongbanError | None = None,
        outcome: str = "ok",
    ) -> None:
        """Append one ledger row for an envelope sent, received, forwarded or rejected;
        PeerUnavailableError (naming the ledger's failure) if it cannot be recorded."""
        sha256, size = self.facts(pb)
        if header is None:
            header = peek_header(DsseEnvelope.from_pb(pb)) or header_pb2.Header()
        try:
            flow = spec_of(pb.payload_type).flow
        except TongbanError:
            flow = ""
        if self.observer is not None:
            self.observer.envelope(node=self.code, direction=direction, flow=flow,
                                   outcome=error.code if error is not None else outcome, size_bytes=size)
        self._append(LedgerEntry(
            at_ns=self.clock(),
            direction=direction,
            message_id=header.message_id,
            payload_type=pb.payload_type if flow else "",
            flow=flow,
            sender=header.sender,
            receiver=header.receiver,
            peer=peer,
            envelope_sha256=sha256.hex(),
            size_bytes=size,
            expires_at_ns=_expires_ns(header),
            outcome=error.code if error is not None else outcome,
            reason=str(error) if error is not None else "",
            trace_id=header.trace_id,
            request_digest=_request_digest(pb, header, flow),
        ))

    def _record_headless(self, *, peer: str, outcome: str, reason: str, sha256: str = "", size: int = 0) -> None:
        """A rejected row with no envelope header to read it from."""
        self._append(LedgerEntry(
            at_ns=self.clock(), direction="rejected", message_id="", payload_type="", flow="", sender="",
            receiver="", peer=peer, envelope_sha256=sha256, size_bytes=size, expires_at_ns=0, outcome=outcome,
            reason=reason, trace_id="", request_digest=""))

    def record_undecodable(self, raw: bytes, peer: str, error: TongbanError) -> None:
        """Ledger a request body that did not even decode (no header to read)."""
        self._record_headless(peer=peer, outcome=error.code, reason=str(error),
                              sha256=hashlib.sha256(raw).hexdigest(), size=len(raw))

    def record_handshake_refusal(self, address: str, reason: str, message: str) -> None:
        """Ledger a connection refused during the mTLS handshake (no envelope was
        ever read from it): the peer is its network address, the outcome the reason. A node
        whose ledger failed cannot keep it: logged once per refusal, without a traceback."""
        if self.ledger.failure() is not None:
            log.warning("node %s: refused handshake not ledgered (the ledger failed): %s", self.code, message)
            return
        self._record_headless(peer=address, outcome=reason, reason=message)

    def close(self) -> None:
        self.ledger.close()
