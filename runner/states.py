"""A request's status: what the journal stores, the planner reads back (through a protocol, it
never imports the journal), the sender decides and the report counts. One enum for all of them,
in a module of its own so the pure core and the store share it without importing each other.
"""

from __future__ import annotations

from enum import StrEnum


class RequestStatus(StrEnum):
    """A request row's status, stored as these exact strings."""

    SENDING = "sending"  # attempt committed, outcome unknown: in flight, or the process died
    ACCEPTED = "accepted"
    FAILED = "failed"  # for good (4xx, 2xx with status "failed", unresolvable reply parent)
    PENDING = "pending"  # not confirmed and retryable by a later run (retries exhausted, stopped)
    SCHEDULED = "scheduled"  # not due yet (window, delay, not_before): sent by a later run
    EXPIRED = "expired"  # not_after passed before it was due: never sent
