"""What the real API rejects before it looks at any state: chat ids and send bodies.

Pure functions; each failure is an ``ApiError`` carrying the HTTP status, message and (only
where the contract names one) ``code``, so the HTTP layer can answer it verbatim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

E164 = re.compile(r"^\+[1-9][0-9]{7,14}$")
EMAIL = re.compile(r"^[^@\s,;<>()\"]+@[^@\s,;<>()\"]+\.[A-Za-z0-9-]{2,}$")
GROUP = re.compile(r"^grp_[A-Za-z0-9_-]+$")
SINGLE_URL = re.compile(r"^https?://\S+$", re.IGNORECASE)

EFFECTS = frozenset(
    {
        "slam",
        "loud",
        "gentle",
        "invisible-ink",
        "echo",
        "spotlight",
        "balloons",
        "confetti",
        "love",
        "lasers",
        "fireworks",
        "celebration",
        "none",
    }
)
TITLE_MAX = 200


class ApiError(Exception):
    """An error answer of the API: ``{"error": "ApiError", "message", "status", "code"?}``."""

    def __init__(self, status: int, message: str, code: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.extra = extra

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": "ApiError", "message": self.message, "status": self.status}
        if self.code is not None:
            out["code"] = self.code
        out.update(self.extra)
        return out


def bad(message: str, code: str | None = None) -> ApiError:
    return ApiError(400, message, code)


@dataclass(frozen=True, slots=True)
class ChatRef:
    """A parsed path chat id: one contact, an explicit group, or a participant set."""

    kind: str  # "contact" | "group" | "participants"
    value: str  # the contact, the grp_ id, or "" for participants
    participants: tuple[str, ...] = ()  # sorted, normalised (participants only)


def contact_kind(value: str) -> str | None:
    """'phone', 'email' or None, for an already stripped value."""
    if E164.match(value):
        return "phone"
    if EMAIL.match(value):
        return "email"
    return None


def normalize_contact(raw: str) -> str:
    value = raw.strip()
    kind = contact_kind(value)
    if kind == "email":
        return value.lower()
    if kind == "phone":
        return value
    raise bad(f"Invalid recipient: {raw!r} is not an E.164 phone number or an email address")


def parse_chat_id(raw: str) -> ChatRef:
    """Parse an already URL-decoded chat id, the way the send endpoint accepts it."""
    value = raw.strip()
    if not value:
        raise bad("Invalid recipient: empty chat id")
    if "," in value:
        members = sorted({normalize_contact(p) for p in value.split(",") if p.strip()})
        if not members:
            raise bad("Invalid recipient: the participant list is empty")
        if len(members) == 1:
            return ChatRef("contact", members[0])
        return ChatRef("participants", "", tuple(members))
    if value.startswith("grp_"):
        if not GROUP.match(value):
            raise bad(f"Invalid recipient: {raw!r} is not a valid group id")
        return ChatRef("group", value)
    return ChatRef("contact", normalize_contact(value))


@dataclass(frozen=True, slots=True)
class SendShape:
    """What a valid send body asks for."""

    kind: str  # "single" | "text_list" | "batch"
    texts: tuple[str | None, ...]  # one entry per message to create
    effect: str | None
    reply_to: dict[str, Any] | None
    from_number: str | None
    share_contact: bool


def normalize_effect(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad("effect must be a string")
    name = "-".join(value.strip().lower().replace("_", " ").replace("-", " ").split())
    if name not in EFFECTS:
        raise bad(f"Invalid effect {value!r}; expected one of: " + ", ".join(sorted(EFFECTS)))
    return None if name == "none" else name


def _check_link_preview(lp: Any, where: str) -> None:
    if lp is None:
        return
    if not isinstance(lp, dict):
        raise bad(f"{where} must be an object")
    title = lp.get("title")
    if title is not None:
        if not isinstance(title, str):
            raise bad(f"{where}.title must be a string")
        if len(title) > TITLE_MAX:
            raise bad(f"{where}.title must be at most {TITLE_MAX} characters")
    image = lp.get("image_url")
    if image is not None and (not isinstance(image, str) or "://" not in image):
        raise bad(f"{where}.image_url must be a URL")


def _check_attachments(att: Any) -> bool:
    if att is None:
        return False
    if not isinstance(att, list):
        raise bad("attachments must be an array")
    for i, item in enumerate(att):
        if isinstance(item, str):
            continue
        if isinstance(item, dict) and isinstance(item.get("url"), str):
            name = item.get("name")
            if name is not None and not isinstance(name, str):
                raise bad(f"attachments[{i}].name must be a string")
            continue
        raise bad(f"attachments[{i}] must be a URL string or an object with a url")
    return bool(att)


def _check_parts(parts: list[Any]) -> bool:
    """Check every part; True when the parts form a URL-balloon batch."""
    batch = any(isinstance(p, dict) and p.get("link_preview") is not None for p in parts)
    for i, part in enumerate(parts):
        if not isinstance(part, dict):
            raise bad(f"parts[{i}] must be an object")
        text, url = part.get("text"), part.get("url")
        for name in ("text", "mention", "url", "name"):
            if part.get(name) is not None and not isinstance(part[name], str):
                raise bad(f"parts[{i}].{name} must be a string")
        if (text is None) == (url is None):
            raise bad(f"parts[{i}] must have exactly one of text or url")
        if part.get("mention") is not None and text is None:
            raise bad(f"parts[{i}].mention is only valid with text")
        if part.get("name") is not None and url is None:
            raise bad(f"parts[{i}].name is only valid with url")
        _check_link_preview(part.get("link_preview"), f"parts[{i}].link_preview")
        if batch and (
            url is not None or part.get("mention") is not None or not SINGLE_URL.match(text or "")
        ):
            raise bad(
                f"parts[{i}]: in URL-balloon batch mode (a part has link_preview) every part "
                "must be text-only and its text a single http(s) URL"
            )
    return batch


def check_send_body(body: Any) -> SendShape:
    """Validate a send body like the real API does; raise ApiError on the first problem."""
    if not isinstance(body, dict):
        raise bad("Request body must be a JSON object")
    text = body.get("text")
    parts = body.get("parts")
    if text is not None and not isinstance(text, str):
        if not isinstance(text, list) or not all(isinstance(t, str) for t in text):
            raise bad("text must be a string or an array of strings")
    if parts is not None and not isinstance(parts, list):
        raise bad("parts must be an array")
    has_attachments = _check_attachments(body.get("attachments"))
    has_text = bool(text) if isinstance(text, str) else bool(text and any(text))
    if not has_text and not parts and not has_attachments:
        raise bad("Message content is required: text, parts or attachments")
    effect = normalize_effect(body.get("effect"))
    if effect is not None and parts:
        raise bad("effect is not supported with parts (multipart bubbles cannot carry an effect)")
    batch = _check_parts(parts) if parts else False
    _check_link_preview(body.get("link_preview"), "link_preview")
    from_number = body.get("from_number")
    if from_number is not None and (
        not isinstance(from_number, str) or not E164.match(from_number)
    ):
        raise bad("from_number must be an E.164 phone number")
    for flag in ("use_typing_indicator", "share_contact"):
        if body.get(flag) is not None and not isinstance(body[flag], bool):
            raise bad(f"{flag} must be a boolean")

    if batch and parts:
        kind, texts = "batch", tuple(p["text"] for p in parts)
    elif isinstance(text, list) and text:
        kind, texts = "text_list", tuple(text)
    elif parts:
        joined = "".join(p.get("text") or "" for p in parts)
        kind, texts = "single", (joined or None,)
    else:
        kind, texts = "single", (text or None,)

    reply_to = body.get("reply_to")
    if reply_to is not None:
        if not isinstance(reply_to, dict) or not (
            reply_to.get("message_id") or reply_to.get("guid")
        ):
            raise bad("reply_to needs a message_id or a guid", "reply_target_invalid")
        index = reply_to.get("part_index", 0)
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise bad("reply_to.part_index must be an integer >= 0")
        if kind != "single":
            raise bad(
                "reply_to is not supported on multi-message fan-outs (text array or URL-balloon "
                "batch)",
                "reply_target_not_supported",
            )
    return SendShape(kind, texts, effect, reply_to, from_number, bool(body.get("share_contact")))
