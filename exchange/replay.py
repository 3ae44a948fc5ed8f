"""The replay window: message ids seen and not yet expired."""

from __future__ import annotations

from collections import deque

from exchange.errors import ReplayError

__all__ = ["ReplayWindow"]


class ReplayWindow:
    """Remembers each message id until its expiry (plus skew) has passed.

    Memory is bounded by the arrival rate times the maximum message lifetime,
    because the directory bounds every message's lifetime.
    """

    def __init__(self, seen: dict[str, int] | None = None) -> None:
        self._expiry: dict[str, int] = dict(seen or {})
        self._order: deque[tuple[int, str]] = deque(sorted((v, k) for k, v in self._expiry.items()))

    def __len__(self) -> int:
        return len(self._expiry)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._expiry

    def check_and_add(self, message_id: str, *, forget_after_ns: int, now_ns: int, sender: str = "") -> None:
        """Record ``message_id`` or raise ReplayError if it is still remembered."""
        self._prune(now_ns)
        if message_id in self._expiry:
            who = f" from {sender}" if sender else ""
            raise ReplayError(
                f"message {message_id[:64]}{who} was already received: expected a new message id, "
                f"found one seen inside the replay window"
            )
        self._expiry[message_id] = forget_after_ns
        self._order.append((forget_after_ns, message_id))

    def forget(self, message_id: str) -> None:
        """Let ``message_id`` in again: its first delivery failed before it was processed."""
        self._expiry.pop(message_id, None)

    def _prune(self, now_ns: int) -> None:
        order = self._order
        while order and order[0][0] < now_ns:
            exp, mid = order.popleft()
            if self._expiry.get(mid) == exp:
                del self._expiry[mid]
