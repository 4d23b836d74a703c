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


class Wait(StrEnum):
    """Whether one message may go at an instant, and if not what it waits for (the schedule's
    answer; `plan`'s schedule counts are keyed by these exact strings). Its EXPIRED is the
    schedule's (not_after has passed); the journal then stores RequestStatus.EXPIRED."""

    DUE = "due"
    WINDOW = "window"  # outside the recipient's local window
    DELAY = "delay"  # the step's delay since the previous step has not passed
    PREVIOUS = "previous"  # the previous step is not accepted yet
    START = "not_before"  # the campaign has not started
    LAW = "law"  # outside the legal (or the team policy's) hours at the recipient's place
    CAP = "capped"  # the chat had its policy's or state's number of messages in the period
    EXPIRED = "expired"  # not_after has passed: never sent
