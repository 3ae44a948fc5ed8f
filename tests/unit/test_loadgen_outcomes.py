"""What the load generator counts when a window submission fails, on the stream or on the
unary fallback: a refusal as its status, no answer in time as ``deadline_exceeded``, and
anything else that kept it from getting through (the stream or the connection broke, the
server went away mid-call: a unary caller saw CANCELLED) as ``unavailable``."""

from __future__ import annotations

import pytest

from exchange.errors import OverloadedError, PeerUnavailableError, RemoteError, TimedOutError, TongbanError
from exchange.loadgen import _status
from nodes._status import error_from_status


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (TimedOutError("window service of 110000 timed out: no answer within 10 s"), "deadline_exceeded"),
        (PeerUnavailableError("window service of 110000 unavailable: it closed the stream"), "unavailable"),
        (RemoteError("window service of 110000 refused: …", status="UNAUTHENTICATED", code="peer_identity"),
         "unauthenticated"),
        (OverloadedError("node at capacity"), "resource_exhausted"),
        (error_from_status("DEADLINE_EXCEEDED", "Deadline Exceeded", "", hop="window"), "deadline_exceeded"),
        (error_from_status("UNAVAILABLE", "failed to connect", "", hop="window"), "unavailable"),
        (error_from_status("CANCELLED", "server stopped", "", hop="window"), "unavailable"),
        (error_from_status("INVALID_ARGUMENT", "unknown flow", "payload_type", hop="window"), "invalid_argument"),
    ],
)
def test_a_failed_submission_counts_as_the_status_a_unary_caller_saw(error: TongbanError, outcome: str) -> None:
    assert _status(error) == outcome


def test_a_deadline_is_a_timeout_and_still_unavailable_to_the_ledger() -> None:
    e = error_from_status("DEADLINE_EXCEEDED", "Deadline Exceeded", "", hop="hub at 127.0.0.1:1")
    assert isinstance(e, TimedOutError) and isinstance(e, PeerUnavailableError)
    assert (e.code, str(e)) == ("unavailable", "hub at 127.0.0.1:1 timed out: Deadline Exceeded")
