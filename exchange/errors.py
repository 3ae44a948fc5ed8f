"""The one exception tree of tongban.

Every failure a node, the CLI or the runner can report is one of these. Messages
say what was expected and what was found. Foreign exceptions are translated at the
boundary (``raise SignatureError(...) from e``); nothing below swallows
``cryptography.exceptions.InvalidSignature``.

::

    TongbanError
    ├── ConfigError                   bad CLI, scenario or file input
    ├── TrustError                    who signed it, and can we believe them
    │   ├── ChainError                certificate chain does not verify to the root
    │   ├── DirectoryError            directory bad signature / stale / past validity
    │   ├── UnknownKeyError           key id not vouched for the sender by the directory
    │   ├── RevokedKeyError           key id revoked by the directory
    │   ├── SignatureError            missing, duplicated or invalid signature
    │   └── PeerIdentityError         TLS peer is not the envelope's sender
    ├── EnvelopeError                 the bytes are not an acceptable envelope
    │   ├── MalformedError            not a parseable protobuf / not UTF-8 text
    │   ├── PayloadTypeError          payload type unknown or not the one expected
    │   ├── HeaderError               header field missing or out of bounds
    │   └── MessageTooLargeError      over the configured maximum size
    ├── FreshnessError                expired, or issued in the future beyond the skew
    ├── ReplayError                   message id already seen inside the window
    ├── ReceiverMismatchError         the envelope is addressed to another node
    ├── AccessDeniedError             the directory's access rules forbid this flow
    ├── RoutingError                  no node serves this receiver / holder / type
    ├── BindingError                  response does not answer the request it claims to
    ├── PeerUnavailableError          next hop down, timed out or refused the call
    │   └── TimedOutError             no answer in time (same code: a caller may tell them apart)
    ├── OverloadedError               this node (or its path to a target) is at capacity
    ├── RemoteError                   a later hop refused; carries its status and reason
    └── LedgerError                   ledger cannot be written or read
        └── LedgerChainError          hash chain broken (names the first bad row)

Each class carries ``code``: the short, stable reason string used in ledgers and
reports (``failed_by_reason``). The mapping to gRPC status codes lives in one place,
``nodes._status``, so this module stays free of I/O and of grpc.
"""

from __future__ import annotations

__all__ = [
    "AccessDeniedError",
    "BindingError",
    "ChainError",
    "ConfigError",
    "DirectoryError",
    "EnvelopeError",
    "FreshnessError",
    "HeaderError",
    "LedgerChainError",
    "LedgerError",
    "MalformedError",
    "MessageTooLargeError",
    "OverloadedError",
    "PayloadTypeError",
    "PeerIdentityError",
    "PeerUnavailableError",
    "ReceiverMismatchError",
    "RemoteError",
    "ReplayError",
    "RevokedKeyError",
    "RoutingError",
    "SignatureError",
    "TimedOutError",
    "TongbanError",
    "TrustError",
    "UnknownKeyError",
]


class TongbanError(Exception):
    """Root of every tongban error."""

    code = "error"


class ConfigError(TongbanError):
    """A CLI argument, scenario, PKI or world file is missing or invalid."""

    code = "config"


class TrustError(TongbanError):
    """The signer or its certificate cannot be trusted."""

    code = "untrusted"


class ChainError(TrustError):
    """A certificate does not chain to the national root (or is out of validity)."""

    code = "bad_chain"


class DirectoryError(TrustError):
    """The directory is not signed by the hub, is older than ours, or has expired."""

    code = "bad_directory"


class UnknownKeyError(TrustError):
    """The signing key id is not one the directory vouches for the sender."""

    code = "unknown_key"


class RevokedKeyError(TrustError):
    """The signing key id is on the directory's revocation list."""

    code = "revoked_key"


class SignatureError(TrustError):
    """A signature is missing, duplicated, extra, or does not verify."""

    code = "bad_signature"


class PeerIdentityError(TrustError):
    """The mTLS peer certificate does not belong to the node named as sender."""

    code = "peer_identity"


class EnvelopeError(TongbanError):
    """The envelope or its payload is not acceptable."""

    code = "bad_envelope"


class MalformedError(EnvelopeError):
    """Bytes that do not parse as the expected protobuf, or text that is not UTF-8."""

    code = "malformed"


class PayloadTypeError(EnvelopeError):
    """The payload type is unknown, or not the one this call expects."""

    code = "payload_type"


class HeaderError(EnvelopeError):
    """A header field is missing, empty or out of its bounds."""

    code = "bad_header"


class MessageTooLargeError(EnvelopeError):
    """The message is larger than the configured maximum."""

    code = "too_large"


class FreshnessError(TongbanError):
    """The header has expired, or was issued in the future beyond the allowed skew."""

    code = "stale"


class ReplayError(TongbanError):
    """The message id was already seen inside the replay window."""

    code = "replay"


class ReceiverMismatchError(TongbanError):
    """The envelope is addressed to a node other than the one that received it."""

    code = "wrong_receiver"


class AccessDeniedError(TongbanError):
    """The directory's access rules do not allow this sender this flow."""

    code = "access_denied"


class RoutingError(TongbanError):
    """No node in the directory serves the requested receiver, holder or type."""

    code = "no_route"


class BindingError(TongbanError):
    """A response's request digest does not match the request it claims to answer."""

    code = "bad_binding"


class PeerUnavailableError(TongbanError):
    """The next hop is down, timed out, or refused the call."""

    code = "unavailable"


class TimedOutError(PeerUnavailableError):
    """No answer came back in time; reported as ``unavailable`` like every failure to get through."""


class OverloadedError(TongbanError):
    """The node is at capacity: it sheds the request instead of queueing it."""

    code = "overloaded"


class RemoteError(TongbanError):
    """A later hop refused the message; ``status`` and ``code`` are that hop's."""

    def __init__(self, message: str, *, status: str, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class LedgerError(TongbanError):
    """The ledger cannot be written or read."""

    code = "ledger"


class LedgerChainError(LedgerError):
    """The ledger's hash chain is broken; the message names the first bad row."""

    code = "ledger_chain"
