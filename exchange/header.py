"""Headers: building them and checking their shape (not their signature)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from google.protobuf.timestamp_pb2 import Timestamp

from exchange.errors import HeaderError
from tongban.v1 import header_pb2

__all__ = [
    "MAX_PURPOSE_CHARS",
    "Audit",
    "check_header_shape",
    "iso_ns",
    "make_header",
    "new_trace_id",
]

#: 用证事由 is limited to 200 characters by the national sharing rules.
MAX_PURPOSE_CHARS = 200
_MAX_TEXT_CHARS = 512
_TRACE_ID = re.compile(r"[0-9a-f]{32}")
_NODE_CODE = re.compile(r"[0-9]{6}")
# google.protobuf.Timestamp's range: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z
_MIN_SECONDS, _MAX_SECONDS = -62_135_596_800, 253_402_300_799


@dataclass(frozen=True, kw_only=True, slots=True)
class Audit:
    """五要素: organisation, operator, item name, item code, business serial."""

    organisation: str = ""
    operator: str = ""
    item_name: str = ""
    item_code: str = ""
    business_serial: str = ""

    def to_pb(self) -> header_pb2.AuditContext:
        return header_pb2.AuditContext(
            organisation=self.organisation,
            operator=self.operator,
            item_name=self.item_name,
            item_code=self.item_code,
            business_serial=self.business_serial,
        )


def iso_ns(ns: int) -> str:
    """An instant in nanoseconds since the epoch as RFC 3339 text (for messages)."""
    t = Timestamp()
    t.FromNanoseconds(ns)
    return t.ToJsonString()


def new_trace_id() -> str:
    """A fresh W3C trace id (32 lowercase hex characters)."""
    return uuid.uuid4().hex


def make_header(
    *,
    sender: str,
    receiver: str,
    now_ns: int,
    lifetime_ms: int,
    purpose: str = "",
    audit: header_pb2.AuditContext | None = None,
    trace_id: str = "",
    request_digest: bytes = b"",
    holder_id: str = "",
    cert_type: str = "",
    message_id: str = "",
) -> header_pb2.Header:
    """A header issued at ``now_ns`` that expires ``lifetime_ms`` later."""
    h = header_pb2.Header(
        message_id=message_id or str(uuid.uuid4()),
        sender=sender,
        receiver=receiver,
        purpose=purpose,
        trace_id=trace_id or new_trace_id(),
        request_digest=request_digest,
        subject=header_pb2.Subject(holder_id=holder_id, cert_type=cert_type),
    )
    if audit is not None:
        h.audit.CopyFrom(audit)
    h.issued_at.FromNanoseconds(now_ns)
    h.expires_at.FromNanoseconds(now_ns + lifetime_ms * 1_000_000)
    return h


def _text(name: str, value: str, limit: int = _MAX_TEXT_CHARS) -> None:
    if len(value) > limit:
        raise HeaderError(f"header {name}: expected at most {limit} characters, found {len(value)}")


def check_header_shape(h: header_pb2.Header, *, is_request: bool) -> None:
    """Refuse headers with missing or out-of-bounds fields (HeaderError)."""
    if not h.message_id:
        raise HeaderError("header message_id: expected a message id, found an empty string")
    _text("message_id", h.message_id, 64)
    if not _NODE_CODE.fullmatch(h.sender):
        raise HeaderError(f"header sender: expected a six-digit node code, found {h.sender[:40]!r}")
    if h.receiver and not _NODE_CODE.fullmatch(h.receiver):
        raise HeaderError(f"header receiver: expected a six-digit node code or empty, found {h.receiver[:40]!r}")
    if not h.HasField("issued_at") or not h.HasField("expires_at"):
        raise HeaderError("header: expected issued_at and expires_at, found them missing")
    for name in ("issued_at", "expires_at"):
        ts = getattr(h, name)
        if not (_MIN_SECONDS <= ts.seconds <= _MAX_SECONDS and 0 <= ts.nanos < 1_000_000_000):
            raise HeaderError(f"header {name}: expected a time between years 1 and 9999, "
                              f"found seconds={ts.seconds} nanos={ts.nanos}")
    if not _TRACE_ID.fullmatch(h.trace_id):
        raise HeaderError(f"header trace_id: expected 32 lowercase hex characters, found {h.trace_id[:40]!r}")
    if len(h.purpose) > MAX_PURPOSE_CHARS:
        raise HeaderError(
            f"header purpose (用证事由): expected at most {MAX_PURPOSE_CHARS} characters, found {len(h.purpose)}"
        )
    for field in ("organisation", "operator", "item_name", "item_code", "business_serial"):
        _text(f"audit.{field}", getattr(h.audit, field))
    _text("subject.holder_id", h.subject.holder_id, 64)
    _text("subject.cert_type", h.subject.cert_type, 64)
    if is_request:
        if not h.purpose:
            raise HeaderError("header purpose (用证事由): expected a reason for the request, found an empty string")
        if h.request_digest:
            raise HeaderError("header request_digest: expected none on a request, found one")
    elif len(h.request_digest) != 32:
        raise HeaderError(
            f"header request_digest: expected the 32-byte SHA-256 of the request, found {len(h.request_digest)} bytes"
        )
