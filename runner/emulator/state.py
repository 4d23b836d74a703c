"""The emulated organisation: chats, groups, messages, idempotency records, caps and stats.

Pure logic with no I/O: the HTTP layer parses requests and calls these methods, which return
JSON-ready dicts or raise ``ApiError``. Time comes from the injected clock plus an offset that
tests can advance, so the delivery lifecycle can be walked through without sleeping.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, overload

from runner.emulator.config import EmulatorConfig
from runner.emulator.lifecycle import Fate, Reach, contact_reach, message_fate
from runner.emulator.replies import ReplyPlan
from runner.emulator.validation import (
    ApiError,
    ChatRef,
    bad,
    check_send_body,
    contact_kind,
    parse_chat_id,
)

REPLY_WINDOW_S = 30 * 24 * 3600
DIRECTIONS = ("inbound", "outbound")


@dataclass(slots=True)
class Message:
    message_id: str
    guid: str
    chat_id: str
    direction: str
    text: str | None
    from_number: str
    sender: str | None
    t0: float  # emulator seconds when accepted (outbound) or received (inbound)
    fate: Fate | None  # None for inbound messages
    reply_to: dict[str, Any] | None = None
    protocol: str = "imessage"  # inbound messages only (outbound ones have it in ``fate``)

    def status_at(self, now: float) -> tuple[str, str, float | None, str | None]:
        """(status, protocol, time_delivered seconds, error) at emulator time ``now``."""
        fate = self.fate
        if fate is None:  # inbound: arrived, nothing more to happen
            return "delivered", self.protocol, self.t0, None
        if now < fate.sent_at:
            return "queued", "pending", None, None
        if now < fate.done_at:
            # An unreachable recipient's protocol stays unresolved until it fails.
            return "sent", "pending" if fate.protocol == "unknown" else fate.protocol, None, None
        if fate.outcome == "delivered":
            return "delivered", fate.protocol, fate.done_at, None
        return "failed", fate.protocol, None, fate.error


@dataclass(slots=True)
class Commit:
    key: str | None
    chat_id: str
    body: dict[str, Any]
    ids: list[str]
    accepted_at: float
    from_number: str
    response: dict[str, Any]
    # Automatic replies this request's messages will get: {"index", "text", "due_ms"}.
    replies: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Stats:
    requests: int = 0
    send_requests: int = 0
    accepted_requests: int = 0
    messages_accepted: int = 0
    replays: int = 0
    duplicates: int = 0
    drops: int = 0
    slow: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    in_flight: int = 0
    peak_in_flight: int = 0
    peak_rate_1s: int = 0
    accept_times: deque = field(default_factory=deque)

    def note_accept(self, t: float) -> None:
        times = self.accept_times
        times.append(t)
        while t - times[0] >= 1.0:
            times.popleft()
        if len(times) > self.peak_rate_1s:
            self.peak_rate_1s = len(times)


def _ms(t: float) -> int:
    return int(t * 1000)


class State:
    def __init__(self, config: EmulatorConfig, clock: Callable[[], float] | None = None) -> None:
        self.config = config
        self._clock = clock or config.clock or time.time
        self._replies = _reply_plan(config)
        self.reset()

    # -- time and identity -------------------------------------------------------------

    def reset(self) -> None:
        self.offset = 0.0
        self.stats = Stats()
        self.messages: dict[str, Message] = {}
        self.guids: dict[str, str] = {}
        self.chats: dict[str, list[Message]] = {}
        self.groups: dict[str, tuple[str, ...]] = {}
        self.group_by_members: dict[tuple[str, ...], str] = {}
        self.commits: list[Commit] = []
        self.by_key: dict[str, Commit] = {}
        self.fingerprints: set[str] = set()
        self.contacts_messaged: set[str] = set()
        self.chats_started: set[str] = set()
        self.extra_numbers: list[str] = []
        self._reach: dict[str, Reach] = {}
        self._counter = 0
        # Automatic replies not arrived yet: (due, order, chat, text, to_number), earliest first.
        self._due: list[tuple[float, int, str, str, str]] = []
        for past in self.config.history:
            self._remember(past)

    def _remember(self, past: dict[str, Any]) -> None:
        """A message sent before the emulator started, so replies can target it."""
        mid = str(past["message_id"])
        chat = str(past["chat"])
        numbers = self.config.numbers
        msg = Message(
            message_id=mid,
            guid=str(past.get("guid") or f"p:0/{mid}"),
            chat_id=chat,
            direction="outbound",
            text=past.get("text"),
            from_number=str(past.get("from_number") or (numbers[0] if numbers else "+15551234567")),
            sender=None,
            t0=self.now(),
            fate=None,
        )
        self.messages[mid] = msg
        self.guids[msg.guid] = mid
        self.chats.setdefault(chat, []).append(msg)

    def now(self) -> float:
        return self._clock() + self.offset

    def advance(self, seconds: float) -> float:
        self.offset += seconds
        return self.now()

    def _new_id(self, prefix: str) -> tuple[str, str]:
        self._counter += 1
        h = hashlib.blake2b(f"{self.config.seed}|{self._counter}".encode(), digest_size=16)
        hx = h.hexdigest()
        guid = f"{hx[:8]}-{hx[8:12]}-{hx[12:16]}-{hx[16:20]}-{hx[20:32]}".upper()
        return prefix + hx[:20], guid

    def reach(self, contact: str) -> Reach:
        r = self._reach.get(contact)
        if r is None:
            r = contact_reach(self.config, contact, contact_kind(contact) or "phone")
            self._reach[contact] = r
        return r

    def configure(self, config: EmulatorConfig) -> None:
        self.config = config
        self._replies = _reply_plan(config)
        self._reach.clear()  # shares or unreachable lists may have changed
        for past in config.history:
            if str(past["message_id"]) not in self.messages:
                self._remember(past)

    # -- chats -------------------------------------------------------------------------

    def knows_group(self, group_id: str) -> bool:
        """Groups made for participant lists, and the named ones the account is set up with."""
        named = self.config.groups
        return group_id in self.groups or group_id in named or "*" in named

    def members(self, chat_id: str) -> tuple[str, ...]:
        return self.groups.get(chat_id) or (chat_id,)

    def _group_for(self, members: tuple[str, ...], create: bool) -> tuple[str | None, bool]:
        gid = self.group_by_members.get(members)
        if gid is not None or not create:
            return gid, False
        h = hashlib.blake2b(f"{self.config.seed}|grp|{','.join(members)}".encode(), digest_size=8)
        gid = "grp_" + h.hexdigest()
        self.group_by_members[members] = gid
        self.groups[gid] = members
        return gid, True

    def create_group(self, participants: list[str]) -> dict[str, Any]:
        ref = parse_chat_id(",".join(participants))
        if ref.kind != "participants":
            raise bad("a group needs at least two distinct phones/emails")
        gid, created = self._group_for(ref.participants, True)
        return {"group_id": gid, "group_created": created, "participants": list(ref.participants)}

    def resolve(self, raw: str, create: bool = False) -> tuple[str, ChatRef, bool]:
        """(chat id, parsed ref, group created?) for a decoded path chat id."""
        ref = parse_chat_id(raw)
        if ref.kind == "contact":
            return ref.value, ref, False
        if ref.kind == "group":
            if not self.knows_group(ref.value):
                raise ApiError(404, f"Chat not found: {ref.value}")
            return ref.value, ref, False
        gid, created = self._group_for(ref.participants, create)
        if gid is None:
            raise ApiError(404, "Chat not found: no group with these participants")
        return gid, ref, created

    # -- sending -----------------------------------------------------------------------

    def replay(self, key: str) -> Commit | None:
        return self.by_key.get(key)

    def send(self, raw_chat: str, body: Any, key: str | None) -> dict[str, Any]:
        """Accept a send or raise ApiError; returns the 202 body (already recorded)."""
        self.settle()
        cfg = self.config
        ref = parse_chat_id(raw_chat)
        shape = check_send_body(body)
        if ref.kind == "group" and not self.knows_group(ref.value):
            raise ApiError(404, f"Chat not found: {ref.value}")
        members = ref.participants if ref.kind == "participants" else None
        known_group = self.group_by_members.get(members) if members else None
        chat_id = ref.value if ref.kind != "participants" else known_group
        from_number = shape.from_number or (cfg.numbers[0] if cfg.numbers else "+15551234567")
        if from_number not in cfg.numbers and from_number not in self.extra_numbers:
            if cfg.strict_numbers:
                raise bad(f"from_number {from_number} is not assigned to this API key")
        if shape.share_contact and not cfg.share_contact_allowed:
            raise ApiError(
                403,
                "share_contact is only available on Dedicated Commercial and "
                "Dedicated Enterprise plans",
            )
        now = self.now()
        parent_unresolved = False
        reply_info = None
        if shape.reply_to is not None:
            parent_unresolved, reply_info = self._check_reply(
                shape.reply_to, chat_id, from_number, now
            )
        history = self.chats.get(chat_id) if chat_id else None
        if from_number in cfg.inbound_only_numbers and not any(
            m.direction == "inbound" for m in history or ()
        ):
            raise ApiError(
                403,
                "This number is on the Inbound plan and the recipient has not messaged it first",
                "inbound_only_no_prior_inbound",
                allocation_id="alloc_" + from_number.lstrip("+"),
                external_id=chat_id or ",".join(members or ()),
            )
        if members:
            contacts = members
        else:
            assert chat_id is not None  # not a participants list: the chat was named
            contacts = self.members(chat_id)
        self._check_caps(chat_id, contacts)

        # Commit from here on: nothing below may fail.
        group_created = False
        if members:
            chat_id, group_created = self._group_for(members, True)
        assert chat_id is not None  # _group_for creates the group when asked to
        if from_number not in cfg.numbers and from_number not in self.extra_numbers:
            self.extra_numbers.append(from_number)
        protocol = self._protocol(chat_id, contacts)
        rejected = protocol is None and all(contact_kind(c) == "email" for c in contacts)
        ids = []
        replies: list[dict[str, Any]] = []
        chat = self.chats.setdefault(chat_id, [])
        for index, text in enumerate(shape.texts):
            mid, guid = self._new_id("msg_")
            fate = message_fate(cfg, mid, now, protocol)
            if rejected:  # an email nobody can reach over iMessage: refused before dispatch
                fate = Fate(now, now, "failed", "unknown", fate.error)
            answer = self._replies.reply_to(chat_id, key, index, text) if self._replies else None
            if answer is not None and fate.outcome == "delivered":  # nobody answers the unseen
                due = fate.done_at + cfg.reply_after_s
                heapq.heappush(self._due, (due, self._counter, chat_id, answer, from_number))
                replies.append({"index": index, "text": answer, "due_ms": _ms(due)})
            msg = Message(
                mid, guid, chat_id, "outbound", text, from_number, None, now, fate, reply_info
            )
            self.messages[mid] = msg
            self.guids[guid] = mid
            chat.append(msg)
            ids.append(mid)
        resp: dict[str, Any] = {}
        if shape.kind == "single":
            resp["message_id"] = ids[0]
        else:
            resp["message_ids"] = ids
            if shape.kind == "batch":
                resp["count"] = len(ids)
        resp["status"] = "failed" if rejected else "queued"
        if members:
            resp["group_id"] = chat_id
            resp["group_created"] = group_created
            resp["participants"] = list(members)
        if parent_unresolved:
            resp["parent_unresolved"] = True

        st = self.stats
        fp = chat_id + "\x00" + json.dumps(body, sort_keys=True, separators=(",", ":"))
        if fp in self.fingerprints:
            st.duplicates += 1
        else:
            self.fingerprints.add(fp)
        commit = Commit(key, chat_id, body, ids, now, from_number, resp, replies)
        self.commits.append(commit)
        if key is not None:
            self.by_key[key] = commit
        self.contacts_messaged.update(contacts)
        self.chats_started.add(chat_id)
        st.accepted_requests += 1
        st.messages_accepted += len(ids)
        st.note_accept(time.monotonic())
        return resp

    def _protocol(self, chat_id: str, contacts: tuple[str, ...]) -> str | None:
        if chat_id.startswith("grp_"):
            return "imessage"  # groups are iMessage chats
        return self.reach(contacts[0]).protocol

    def _check_reply(
        self, reply_to: dict[str, Any], chat_id: str | None, from_number: str, now: float
    ) -> tuple[bool, dict[str, Any]]:
        mid = reply_to.get("message_id")
        index = reply_to.get("part_index", 0)
        if mid:
            parent = self.messages.get(mid) if isinstance(mid, str) else None
            if parent is None:
                raise ApiError(404, f"Reply target {mid} not found", "reply_target_not_found")
        else:
            guid = reply_to.get("guid")
            found = self.guids.get(guid) if isinstance(guid, str) else None
            if found is None:
                return True, {"message_id": None, "guid": reply_to.get("guid"), "part_index": index}
            parent = self.messages[found]
        if parent.chat_id != chat_id:
            raise bad("The reply target belongs to a different chat", "reply_target_chat_mismatch")
        if parent.from_number != from_number:
            raise bad(
                "The reply target was sent or received on a different line; switch the "
                "from-number to match",
                "reply_target_device_mismatch",
            )
        if now - parent.t0 > REPLY_WINDOW_S:
            raise bad(
                "You can only reply to messages from the last 30 days", "reply_target_expired"
            )
        return False, {"message_id": parent.message_id, "guid": parent.guid, "part_index": index}

    def _check_caps(self, chat_id: str | None, contacts: tuple[str, ...]) -> None:
        cfg = self.config
        if cfg.outbound_limit is not None:
            new = [c for c in contacts if c not in self.contacts_messaged]
            current = len(self.contacts_messaged)
            if new and current + len(new) > cfg.outbound_limit:
                raise ApiError(
                    429,
                    "Outbound new-contact limit reached",
                    "outbound_limit_reached",
                    limit=cfg.outbound_limit,
                    current=current,
                    mode="org",
                )
        if cfg.new_conversation_cap is not None and (
            chat_id is None or (chat_id not in self.chats_started and chat_id not in self.chats)
        ):
            current = len(self.chats_started)
            if current >= cfg.new_conversation_cap:
                raise ApiError(
                    429,
                    "Daily new-conversation limit reached",
                    "new_conversation_limit_reached",
                    plan_id=cfg.plan_id,
                    cap=cfg.new_conversation_cap,
                    current=current,
                )

    # -- inbound -----------------------------------------------------------------------

    def receive(
        self, raw_chat: str, text: str, sender: str | None = None, to_number: str | None = None
    ) -> dict[str, Any]:
        """A recipient writes to the organisation (control endpoint for opt-out tests)."""
        if not isinstance(text, str):
            raise bad("text must be a string")
        self.settle()
        return self._inbound(raw_chat, text, sender, to_number, self.now())

    def settle(self) -> None:
        """Let the automatic replies due by now arrive, in the order they are due, exactly as
        if POST /__emulator/reply had been called at their time (every read settles first)."""
        due = self._due
        now = self.now()
        while due and due[0][0] <= now:
            at, _, chat_id, text, number = heapq.heappop(due)
            self._inbound(chat_id, text, None, number, at)

    def _inbound(
        self, raw_chat: str, text: str, sender: str | None, to_number: str | None, now: float
    ) -> dict[str, Any]:
        chat_id, ref, _ = self.resolve(raw_chat, create=True)
        members = self.members(chat_id)
        if chat_id in self.groups:
            sender = sender.strip().lower() if sender and "@" in sender else (sender or members[0])
            if sender not in members:
                raise bad(f"sender {sender} is not a member of {chat_id}")
            protocol = "imessage"
        else:
            sender = None
            protocol = self.reach(chat_id).protocol or "sms"
        number = to_number or self._last_sender(chat_id)
        mid, guid = self._new_id("msg_")
        msg = Message(
            mid, guid, chat_id, "inbound", text, number, sender, now, None, protocol=protocol
        )
        self.messages[mid] = msg
        self.guids[guid] = mid
        self.chats.setdefault(chat_id, []).append(msg)
        return {"message_id": mid, "chat_id": chat_id, "time_sent": _ms(now), "internal_id": number}

    def _last_sender(self, chat_id: str) -> str:
        """The number a reply goes to: the one the campaign last wrote to this chat from."""
        for msg in reversed(self.chats.get(chat_id, ())):
            if msg.direction == "outbound":
                return msg.from_number
        return self.config.numbers[0] if self.config.numbers else "+15551234567"

    # -- reading -----------------------------------------------------------------------

    def _message_in(self, raw_chat: str, message_id: str) -> Message:
        self.settle()
        chat_id, _, _ = self.resolve(raw_chat)
        msg = self.messages.get(message_id)
        if msg is None or msg.chat_id != chat_id:
            raise ApiError(404, f"Message not found: {message_id}")
        return msg

    def message_status(self, raw_chat: str, message_id: str) -> dict[str, Any]:
        msg = self._message_in(raw_chat, message_id)
        status, protocol, delivered, error = msg.status_at(self.now())
        return {
            "message_id": msg.message_id,
            "chat_id": msg.chat_id,
            "direction": msg.direction,
            "status": status,
            "protocol": protocol,
            "time_sent": _ms(msg.t0),
            "time_delivered": _ms(delivered) if delivered is not None else None,
            "error": error,
        }

    def _message_obj(self, msg: Message, now: float) -> dict[str, Any]:
        status, protocol, delivered, error = msg.status_at(now)
        return {
            "message_id": msg.message_id,
            "direction": msg.direction,
            "external_id": msg.chat_id,
            "internal_id": msg.from_number,
            "text": msg.text,
            "attachments": [],
            "sender": msg.sender,
            "reactions": [],
            "time_sent": _ms(msg.t0),
            "time_delivered": _ms(delivered) if delivered is not None else None,
            "status": status,
            "protocol": protocol,
        }

    def message_detail(self, raw_chat: str, message_id: str) -> dict[str, Any]:
        msg = self._message_in(raw_chat, message_id)
        out = self._message_obj(msg, self.now())
        out["chat_id"] = out.pop("external_id")
        out["error"] = msg.status_at(self.now())[3]
        if msg.reply_to:
            out["reply_to"] = msg.reply_to
        return out

    def list_messages(self, raw_chat: str, query: dict[str, str]) -> dict[str, Any]:
        self.settle()
        chat_id, _, _ = self.resolve(raw_chat)
        direction = query.get("direction")
        if direction is not None and direction not in DIRECTIONS:
            raise bad("direction must be inbound or outbound")
        sort = query.get("sort", "desc")
        if sort not in ("asc", "desc"):
            raise bad("sort must be asc or desc")
        limit = _int_param(query, "limit", 50, 1, 200)
        offset = _int_param(query, "offset", 0, 0, None)
        since = _int_param(query, "since", None, None, None)
        until = _int_param(query, "until", None, None, None)
        now = self.now()
        rows = [
            m
            for m in self.chats.get(chat_id, ())
            if (direction is None or m.direction == direction)
            and (since is None or _ms(m.t0) > since)
            and (until is None or _ms(m.t0) < until)
        ]
        # Arrival order breaks ties between equal timestamps, both ways.
        if sort == "desc":
            rows.reverse()
        page = rows[offset : offset + limit]
        return {
            "chat_id": chat_id,
            "messages": [self._message_obj(m, now) for m in page],
            "pagination": {"limit": limit, "offset": offset, "total": len(rows)},
        }

    def capabilities(self, raw_contact: str) -> dict[str, Any]:
        value = raw_contact.strip()
        kind = contact_kind(value)
        if kind is None:
            raise bad(f"Invalid contact: {raw_contact!r} is not an E.164 phone number or email")
        contact = value.lower() if kind == "email" else value
        r = self.reach(contact)
        return {
            "contact": contact,
            "type": kind,
            "capabilities": {"imessage": r.imessage, "sms": r.sms, "facetime": r.imessage},
            "last_checked": _ms(self.now()),
        }

    def numbers(self) -> dict[str, Any]:
        cfg = self.config
        out = []
        for number in [*cfg.numbers, *self.extra_numbers]:
            kind = "inbound" if number in cfg.inbound_only_numbers else "dedicated"
            out.append(
                {"phone_number": number, "is_active": True, "last_active": None, "plan_kind": kind}
            )
        return {"numbers": out}

    # -- ground truth for tests --------------------------------------------------------

    def stats_dict(self) -> dict[str, Any]:
        self.settle()
        st = self.stats
        now = self.now()
        by_status: dict[str, int] = {}
        by_protocol: dict[str, int] = {}
        for msg in self.messages.values():
            if msg.fate is None:
                continue
            status, protocol, _, _ = msg.status_at(now)
            by_status[status] = by_status.get(status, 0) + 1
            by_protocol[protocol] = by_protocol.get(protocol, 0) + 1
        return {
            "requests": st.requests,
            "send_requests": st.send_requests,
            "accepted_requests": st.accepted_requests,
            "messages_accepted": st.messages_accepted,
            "replays": st.replays,
            "duplicates": st.duplicates,
            "drops": st.drops,
            "slow": st.slow,
            "errors": dict(sorted(st.errors.items())),
            "in_flight": st.in_flight,
            "peak_in_flight": st.peak_in_flight,
            "peak_rate_1s": st.peak_rate_1s,
            "delivered": by_status.get("delivered", 0),
            "failed": by_status.get("failed", 0),
            "by_status": by_status,
            "by_protocol": by_protocol,
            "inbound": sum(1 for m in self.messages.values() if m.fate is None),
            "replies_due": len(self._due),
            "groups": len(self.groups),
            "now_ms": _ms(now),
        }

    def messages_dump(self) -> list[dict[str, Any]]:
        self.settle()
        now = self.now()
        out = []
        for c in self.commits:
            views = [self.messages[i].status_at(now) for i in c.ids]
            out.append(
                {
                    "chat": c.chat_id,
                    "key": c.key,
                    "body": c.body,
                    "ids": c.ids,
                    "accepted_at": c.accepted_at,
                    "from_number": c.from_number,
                    "status": views[0][0],
                    "protocol": views[0][1],
                    "statuses": [v[0] for v in views],
                    "response": c.response,
                    "replies": c.replies,
                }
            )
        return out


def _reply_plan(config: EmulatorConfig) -> ReplyPlan | None:
    plan = ReplyPlan(config.seed, config.reply_rate, config.reply_text, config.reply_rules)
    return plan if plan.active else None


@overload
def _int_param(
    query: dict[str, str], name: str, default: int, low: int | None, high: int | None
) -> int: ...
@overload
def _int_param(
    query: dict[str, str], name: str, default: None, low: int | None, high: int | None
) -> int | None: ...
def _int_param(
    query: dict[str, str], name: str, default: int | None, low: int | None, high: int | None
) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad(f"{name} must be an integer") from None
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f">= {low}"
        raise bad(f"{name} must be {bounds}")
    return value
