"""The run report as data: one typed model that every reporter renders (text, markdown, JSON,
HTML; runner.report.reporters). Built from the journal and the consent ledger by
runner.report.build; it holds counts, never a row per message, so a million-message campaign
reports in bounded memory.

The field names are the JSON reporter's keys (report ``schema_version`` 6,
schemas/report.schema.json): the model is the JSON document with types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from runner.report.stats import Comparison

REPORT_SCHEMA_VERSION = 6

# A free-form JSON object recorded by the runner that sent (a run's options, a cap's figures,
# the audit's dirty files): carried through as the send wrote it.
JsonObject = Mapping[str, object]


class RunStateName(StrEnum):
    """Where the campaign stands, in one word a person (or a dashboard) can act on."""

    RUNNING = "running"
    STOPPED = "stopped"
    WAITING = "waiting"
    FAILED = "failed"
    FINISHED = "finished"


class Verdict(StrEnum):
    TOO_SMALL = "too_small"
    NO_CLEAR_DIFFERENCE = "no_clear_difference"
    A_HIGHER = "a_higher"
    B_HIGHER = "b_higher"


PROTOCOLS = ("imessage", "sms", "rcs", "unknown", "pending")


@dataclass(frozen=True, slots=True)
class Audit:
    """Who sent the run from which commit (runner.store.audit); None for older runners."""

    git_commit: str | None
    dirty: JsonObject | None
    plan_digest: str | None
    user: str | None


@dataclass(frozen=True, slots=True)
class RunInfo:
    id: int
    started_at: str | None
    ended_at: str | None
    finished: bool
    duration_s: float | None
    exit_code: int | None
    stop_reason: str | None
    options: JsonObject
    http_requests: int | None
    accepted_this_run: int | None
    achieved_rate: float | None
    rate_limit: float | None
    audit: Audit
    cap: JsonObject | None = None  # said only when a cap stopped new conversations
    next_due: str | None = None  # said only when something waits on the schedule


@dataclass(frozen=True, slots=True)
class Totals:
    requests: int
    messages: int
    accepted: int
    failed: int
    pending: int
    scheduled: int
    expired: int
    suppressed_recipients: int
    messages_accepted: int
    held_by_law: int = 0  # said only when non-zero
    capped: int = 0  # said only when non-zero
    excluded_recipients: int = 0  # said only when non-zero
    excluded_by: str = ""


@dataclass(frozen=True, slots=True)
class OutsidePlan:
    """Journal rows the current plan no longer holds."""

    requests: int
    accepted: int
    messages_accepted: int
    suppressed: int
    removed: int


@dataclass(frozen=True, slots=True)
class StepReport:
    """One step's requests (what the API accepted) and messages (what became of them)."""

    name: str
    requests: int
    messages: int
    accepted: int
    failed: int
    pending: int
    scheduled: int
    expired: int
    messages_accepted: int
    delivered: int
    failed_delivery: int
    cancelled: int
    in_flight: int
    never_accepted: int
    untracked: int


@dataclass(frozen=True, slots=True)
class StepCount:
    step: str
    count: int


@dataclass(frozen=True, slots=True)
class FailureGroup:
    """Requests the API refused, by reason."""

    reason: str
    count: int
    http_status: int | None
    message: str | None
    steps: tuple[StepCount, ...]
    examples: tuple[str, ...]  # masked unless asked


@dataclass(frozen=True, slots=True)
class PendingGroup:
    reason: str
    count: int
    most: str | None = None  # the commonest network error text, for network_error


@dataclass(frozen=True, slots=True)
class MessageCounts:
    planned: int
    accepted: int
    delivered: int
    failed: int
    cancelled: int
    in_flight: int
    never_accepted: int
    untracked: int
    outside_plan: int


@dataclass(frozen=True, slots=True)
class Histogram:
    bin_s: float | None
    counts: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Latency:
    """Time from sent to delivered (API clock), over the delivered messages."""

    count: int
    p50: float | None
    p95: float | None
    max: float | None
    histogram: Histogram


@dataclass(frozen=True, slots=True)
class ProtocolCount:
    protocol: str
    count: int


@dataclass(frozen=True, slots=True)
class DeliveryFailure:
    error: str
    count: int
    protocols: tuple[ProtocolCount, ...]
    steps: tuple[StepCount, ...]
    examples: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    tracked: bool
    last_polled_at: str | None
    messages: MessageCounts
    protocols: tuple[ProtocolCount, ...]  # every name of PROTOCOLS, in that order
    time_to_delivery_s: Latency
    failures: tuple[DeliveryFailure, ...]


@dataclass(frozen=True, slots=True)
class ReplyPassInfo:
    number: int
    started_at: str | None
    ended_at: str | None
    finished: bool
    stop_reason: str | None
    chats: int
    chats_read: int
    chats_failed: int
    chats_not_read: int
    requests: int
    replies_new: int
    complete: bool


@dataclass(frozen=True, slots=True)
class VariantReplies:
    """Replies to one step's variant; the reply counts are None while replies were never read."""

    variant: str | None
    delivered: int
    replied: int | None
    opted_out: int | None
    reply_rate: float | None
    reply_rate_ci95: tuple[float, float] | None
    opt_out_rate: float | None
    median_time_to_reply_s: float | None
    sent_after_last_read: int | None


@dataclass(frozen=True, slots=True)
class StepReplies:
    step: str
    variants: tuple[VariantReplies, ...]
    comparisons: tuple[Comparison, ...]


@dataclass(frozen=True, slots=True)
class RepliesReport:
    read: bool
    last_read_at: str | None
    passes: int
    last_read_pass: int | None
    last_pass: ReplyPassInfo | None
    replies_stored: int
    chats_replied: int | None
    min_delivered_to_compare: int
    steps: tuple[StepReplies, ...]


@dataclass(frozen=True, slots=True)
class HeldChat:
    """A chat the consent ledger holds until a person decides (its reply is hostile text)."""

    id: int
    chat: str
    word: str | None
    at: str | None
    text: str | None
    campaign: str | None
    step: str | None


@dataclass(frozen=True, slots=True)
class ConsentReport:
    ledger: str
    opted_out: int
    held: tuple[HeldChat, ...]
    review: str | None
    help_answered: int
    optouts_confirmed: int


@dataclass(frozen=True, slots=True)
class RunState:
    name: RunStateName
    next_due: str | None
    pid: int | None  # said only when running
    scheduled: int
    expired: int
    suppressed_recipients: int
    suppressed_after_sending: int


@dataclass(frozen=True, slots=True)
class Report:
    """A campaign's last run, as the journal (and the consent ledger) tell it."""

    schema_version: int
    generated_at: str | None
    campaign: str
    revision: int
    runs: int
    run: RunInfo
    totals: Totals
    outside_plan: OutsidePlan | None
    steps: tuple[StepReport, ...]
    failures: tuple[FailureGroup, ...]
    pending: tuple[PendingGroup, ...]
    delivery: DeliveryReport
    replies: RepliesReport
    consent: ConsentReport | None
    recipients_masked: bool
    state: RunState

    def step(self, name: str) -> StepReport:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)
