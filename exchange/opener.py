"""Opening an envelope: every check a node makes before it believes a message.

Order matters: nothing from an envelope is remembered (replay window) or acted on
until its signature has verified with a key the directory vouches for.

1. size and payload type          -> MessageTooLargeError, PayloadTypeError
2. exactly one signature          -> SignatureError
3. header parses and is well-formed -> MalformedError, HeaderError
4. key vouched for the sender, not revoked, chain to the root -> Unknown/Revoked/ChainError
5. signature over the PAE          -> SignatureError
6. addressed to this node          -> ReceiverMismatchError
7. fresh                           -> FreshnessError
8. not seen before                 -> ReplayError
9. full payload parses             -> MalformedError
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import Message

from exchange import payloads
from exchange.directory import DirectoryView
from exchange.dsse import DsseEnvelope
from exchange.errors import (
    BindingError,
    MalformedError,
    FreshnessError,
    HeaderError,
    MessageTooLargeError,
    PayloadTypeError,
    ReceiverMismatchError,
    SignatureError,
)
from exchange.header import check_header_shape, iso_ns
from exchange.keys import verify_signature
from exchange.replay import ReplayWindow
from exchange.trust import TrustStore
from tongban.v1 import header_pb2

__all__ = ["Opened", "addressed_to", "check_binding", "open_envelope", "peek_header"]


@dataclass(frozen=True, slots=True)
class Opened:
    """An envelope that passed every check, with its parsed parts."""

    envelope: DsseEnvelope
    spec: payloads.PayloadSpec
    header: header_pb2.Header
    message: Message
    keyid: str
    receiver: str  # resolved: header.receiver, or the node its subject routes to


def peek_header(envelope: DsseEnvelope) -> header_pb2.Header | None:
    """Best-effort header for ledgers and errors; None if it does not parse."""
    try:
        return payloads.parse_routed(envelope.payload_type, envelope.payload).header
    except Exception:  # noqa: BLE001 - used only to describe a rejected envelope
        return None




def addressed_to(header: header_pb2.Header, directory: DirectoryView, *, request: bool) -> str:
    """The member an envelope is for: its header's receiver, or, for a request that names
    none, the node its subject routes to (a response must name its requester)."""
    if header.receiver:
        directory.member(header.receiver)
        return header.receiver
    if request:
        return directory.route_subject(header.subject.holder_id, header.subject.cert_type)
    raise HeaderError("header receiver: expected the requester's node code on a response, found an empty string")


def open_envelope(
    envelope: DsseEnvelope,
    *,
    directory: DirectoryView,
    trust: TrustStore,
    me: str,
    now_ns: int,
    expect: payloads.PayloadKind,
    replay: ReplayWindow | None,
    relay: bool = False,
    size_bytes: int = 0,
) -> Opened:
    """Run every check on ``envelope`` received by node ``me`` at ``now_ns``.

    ``relay`` is the hub's mode: the envelope need not be addressed to ``me``,
    but its receiver must resolve to a member.
    """
    policy = directory.policy
    if size_bytes > policy.max_message_bytes:
        raise MessageTooLargeError(
            f"envelope of {size_bytes} bytes, expected at most {policy.max_message_bytes} bytes"
        )
    spec = payloads.spec_of(envelope.payload_type)
    if spec.kind != expect:
        raise PayloadTypeError(
            f"expected a {expect} payload type, found {envelope.payload_type} (a {spec.kind})"
        )
    if len(envelope.signatures) != 1:
        raise SignatureError(
            f"envelope of type {envelope.payload_type}: expected exactly one signature, found {len(envelope.signatures)}"
        )
    header = payloads.parse_routed(envelope.payload_type, envelope.payload).header
    check_header_shape(header, is_request=expect == "request")
    sig = envelope.signatures[0]
    key = directory.sender_key(trust, sender=header.sender, keyid=sig.keyid, now_ns=now_ns)
    verify_signature(key.public_key, sig.sig, envelope.pae(),
                     what=f"envelope {header.message_id} from {header.sender} (key {sig.keyid[:12]}…)")

    receiver = addressed_to(header, directory, request=expect == "request")
    if not relay and receiver != me:
        raise ReceiverMismatchError(
            f"envelope {header.message_id} from {header.sender} is addressed to {receiver}, expected {me}"
        )

    skew_ns = policy.max_clock_skew_ms * 1_000_000
    issued_ns = header.issued_at.ToNanoseconds()
    expires_ns = header.expires_at.ToNanoseconds()
    if issued_ns > now_ns + skew_ns:
        raise FreshnessError(
            f"envelope {header.message_id} from {header.sender} issued at {iso_ns(issued_ns)}, in the future: "
            f"expected no later than {iso_ns(now_ns + skew_ns)} (clock skew {policy.max_clock_skew_ms} ms)"
        )
    if now_ns > expires_ns + skew_ns:
        raise FreshnessError(
            f"envelope {header.message_id} from {header.sender} expired at {iso_ns(expires_ns)}: "
            f"expected an unexpired message, it is now {iso_ns(now_ns)} (clock skew {policy.max_clock_skew_ms} ms)"
        )
    lifetime_ms = (expires_ns - issued_ns) // 1_000_000
    if not 0 < lifetime_ms <= policy.max_message_lifetime_ms:
        raise FreshnessError(
            f"envelope {header.message_id} from {header.sender} lives {lifetime_ms} ms, expected between "
            f"1 and {policy.max_message_lifetime_ms} ms"
        )
    if replay is not None:
        replay.check_and_add(header.message_id, forget_after_ns=expires_ns + skew_ns, now_ns=now_ns,
                             sender=header.sender)
    message = payloads.parse_payload(envelope.payload_type, envelope.payload)
    _check_text(message)
    return Opened(envelope=envelope, spec=spec, header=header, message=message, keyid=sig.keyid, receiver=receiver)


#: Longest text any payload field may carry (header fields have their own, tighter limits).
MAX_PAYLOAD_TEXT_CHARS = 1024


def _check_text(message: Message) -> None:
    """Refuse oversized text anywhere in a payload (the header was checked already)."""
    for field, value in message.ListFields():
        if field.name == "header":
            continue
        is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
        if field.type == field.TYPE_STRING:
            for v in (value if field.is_repeated else [value]):
                if len(v) > MAX_PAYLOAD_TEXT_CHARS:
                    raise MalformedError(f"payload {field.name}: expected at most {MAX_PAYLOAD_TEXT_CHARS} "
                                         f"characters, found {len(v)}")
        elif field.type == field.TYPE_MESSAGE and not is_map:
            for v in (value if field.is_repeated else [value]):
                _check_text(v)
        elif is_map:
            for k, v in value.items():
                if len(str(k)) > MAX_PAYLOAD_TEXT_CHARS or len(str(v)) > MAX_PAYLOAD_TEXT_CHARS:
                    raise MalformedError(f"payload {field.name}: expected entries of at most "
                                         f"{MAX_PAYLOAD_TEXT_CHARS} characters")


def check_binding(response: Opened, *, request: DsseEnvelope, requester: str, responder: str) -> None:
    """A response must be of the request's response type, come from the node asked,
    go to the asker, and name the request by its digest."""
    want_type = payloads.spec_of(request.payload_type).response_type
    if response.envelope.payload_type != want_type:
        raise BindingError(
            f"response of type {response.envelope.payload_type}, expected {want_type} for a "
            f"{request.payload_type} request")
    header = response.header
    if header.sender != responder:
        raise BindingError(f"response signed by {header.sender}, expected the receiver {responder}")
    if header.receiver != requester:
        raise BindingError(f"response addressed to {header.receiver}, expected the requester {requester}")
    want = request.digest()
    if header.request_digest != want:
        raise BindingError(
            f"response carries request digest {header.request_digest.hex()[:16]}…, expected "
            f"{want.hex()[:16]}… of the request it answers"
        )
