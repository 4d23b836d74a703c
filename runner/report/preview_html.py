"""One recipient's conversation drawn as their phone shows it: one self-contained HTML page.

`campaign preview FILE --to ID --format html` answers "what will this person see?" before
anything is sent. The page has two phones side by side: the conversation over iMessage, and
what the same requests become for a recipient reachable by SMS only. It is made like the HTML
report (``html.py``): no scripts, nothing fetched (a ``default-src 'none'`` policy says so),
every value escaped; link previews are cards naming the image URL as text, attachments are
named tiles, so no URL of the campaign is ever loaded by opening the page.

Pure: the recipient's rendered steps in, a string out. A step is a list of bubbles, each with
an optional variant label: a step with variants shows the variant this recipient gets, named
on its label.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from runner.campaign.load import Step
from runner.contract import is_single_http_url
from runner.planning.request import PlannedRequest

# The API's effect names as the phone words them ("Sent with Invisible Ink").
_EFFECT_WORDS = {"invisible-ink": "Invisible Ink", "love": "Love"}


@dataclass(frozen=True, slots=True)
class Bubble:
    """One version of a step for this recipient: the request body the API would get."""

    body: dict[str, Any]
    variant: str | None = None  # the variant's id when the step has variants


@dataclass(frozen=True, slots=True)
class PreviewStep:
    id: str
    bubbles: Sequence[Bubble]  # empty when the step is skipped for this recipient
    skipped: str | None = None  # why: "when" | "reply_parent_skipped"
    delay_seconds: float | None = None  # due this long after the previous step was accepted
    reply_to_step: str | None = None  # an inline reply to this recipient's message of that step


def preview_steps(
    steps: Iterable[Step], requests: Iterable[PlannedRequest], skipped: dict[str, str]
) -> list[PreviewStep]:
    """The campaign's steps in order, each with this recipient's request bodies (the planner's
    `requests_for`) or why it is skipped (step id → reason)."""
    by_step: dict[str, list[Bubble]] = {}
    for req in requests:
        by_step.setdefault(req.step, []).append(Bubble(req.body, req.variant))
    return [
        PreviewStep(
            step.id,
            by_step.get(step.id, []),
            skipped.get(step.id),
            step.delay_seconds,
            step.reply_to_step,
        )
        for step in steps
    ]


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def effect_name(effect: str) -> str:
    return _EFFECT_WORDS.get(effect, effect.replace("-", " ").title())


def delay_words(seconds: float) -> str:
    """`2d` → "2 days later", `90m` → "1 hour 30 minutes later"."""
    left = int(seconds)
    words = []
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")):
        n, left = divmod(left, size)
        if n:
            words.append(f"{n} {unit}{'s' if n != 1 else ''}")
    return (" ".join(words[:2]) or "0 seconds") + " later"


def _host(url: str) -> str:
    return urlsplit(url.strip()).hostname or url


def _file_name(att: Any) -> tuple[str, str]:
    """(name shown, URL) of an attachment given as a URL or {url, name}."""
    if isinstance(att, dict):
        url = str(att.get("url", ""))
        name = att.get("name")
    else:
        url, name = str(att), None
    if not name:
        name = urlsplit(url).path.rstrip("/").rpartition("/")[2] or _host(url)
    return str(name), url


def _ext(name: str) -> str:
    m = re.search(r"\.([A-Za-z0-9]{1,5})$", name)
    return m.group(1).upper() if m else "FILE"


# -- the pieces of a bubble -----------------------------------------------------------------


def _text(text: str) -> str:
    return f'<div class="b txt">{_e(text)}</div>'


def _tile(att: Any, mms: bool = False) -> str:
    name, url = _file_name(att)
    kind = "MMS attachment" if mms else "attachment"
    return (
        f'<div class="b tile"><span class="ext">{_e(_ext(name))}</span>'
        f'<span class="fn"><b>{_e(name)}</b><small>{kind} · {_e(url)}</small></span></div>'
    )


def _card(url: str, preview: dict[str, Any] | None) -> str:
    preview = preview or {}
    image = preview.get("image_url")
    title = preview.get("title")
    pic = f"image: {_e(image)}" if image else "image from the page's Open Graph tags"
    head = (
        f"<b>{_e(title)}</b>" if title else '<b class="muted">title from the page (not fetched)</b>'
    )
    return (
        f'<div class="b card"><div class="pic">{pic}</div>'
        f'<div class="cap">{head}<small>{_e(_host(url))}</small></div></div>'
    )


def _note(text: str) -> str:
    return f'<div class="note">{_e(text)}</div>'


# -- what each column shows -----------------------------------------------------------------


def imessage_items(body: dict[str, Any]) -> list[str]:
    """The bubbles of one request on an iMessage phone."""
    items: list[str] = []
    parts = body.get("parts")
    text = body.get("text")
    if parts:
        if any(isinstance(p, dict) and p.get("link_preview") is not None for p in parts):
            # A URL-balloon batch: every part its own rich-link message, in order.
            items += [_card(str(p.get("text", "")), p.get("link_preview")) for p in parts]
        else:
            # Multipart: one bubble holding every part in order.
            inner = []
            for p in parts:
                if "url" in p:
                    inner.append(_tile(p))
                elif p.get("mention"):
                    # The API renders the whole text of a mention part as the mention.
                    inner.append(
                        f'<div class="b txt"><span class="at" title="mentions '
                        f'{_e(p["mention"])}">{_e(p.get("text", ""))}</span></div>'
                    )
                else:
                    inner.append(_text(str(p.get("text", ""))))
            items.append('<div class="group">' + "".join(inner) + "</div>")
    else:
        texts = text if isinstance(text, list) else ([text] if text is not None else [])
        for t in texts:
            t = str(t)
            if is_single_http_url(t.strip()):
                # Any lone URL becomes a rich link: the override, else the page's own tags.
                items.append(_card(t.strip(), body.get("link_preview")))
            else:
                items.append(_text(t))
        # Attachments ride in the same message as the (last) text.
        items += [_tile(a) for a in body.get("attachments") or []]
        effect = body.get("effect")
        if effect and items:
            fx = f'<div class="fx">Sent with {_e(effect_name(effect))}</div>'
            if isinstance(text, list):
                # Every message of a text list carries the effect (API: "every message in the
                # array is sent with the same effect").
                items = [i + fx for i in items]
            else:
                items[-1] += fx
    return items


def sms_items(body: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The messages of one request for an SMS-only recipient, and what it loses.

    What the API and the runner know of SMS/RCS delivery (contract notes §2 and §5):
    effects are iMessage-only ("delivered without the animation"); rich link previews, the
    typing indicator and inline replies are iMessage features, so a URL arrives as plain text
    and a reply as an ordinary message; a multipart bubble is an iMessage bubble, so its parts
    arrive one by one (attachments as MMS).
    """
    items: list[str] = []
    lost: list[str] = []
    parts = body.get("parts")
    text = body.get("text")
    if parts:
        batch = any(isinstance(p, dict) and p.get("link_preview") is not None for p in parts)
        for p in parts:
            items.append(_tile(p, mms=True) if "url" in p else _text(str(p.get("text", ""))))
        if batch:
            lost.append("link previews: plain URLs")
        elif len(parts) > 1:
            lost.append(f"one bubble: {len(parts)} separate messages")
    else:
        texts = text if isinstance(text, list) else ([text] if text is not None else [])
        for t in texts:
            items.append(_text(str(t).strip() if is_single_http_url(str(t).strip()) else str(t)))
        if body.get("link_preview") is not None or any(
            is_single_http_url(str(t).strip()) for t in texts
        ):
            lost.append("the link preview: a plain URL")
        items += [_tile(a, mms=True) for a in body.get("attachments") or []]
    if body.get("effect"):
        lost.append(f"the {effect_name(body['effect'])} effect")
    return items, lost


# -- the page -------------------------------------------------------------------------------


def _first_text(body: dict[str, Any]) -> str:
    text = body.get("text")
    if isinstance(text, list):
        text = text[0] if text else ""
    if text is None:
        text = next((str(p.get("text")) for p in body.get("parts") or [] if p.get("text")), "")
    if not text:
        names = [_file_name(a)[0] for a in body.get("attachments") or []]
        text = names[0] if names else "a message"
    return text if len(text) <= 60 else text[:57] + "…"


def _quote(step: PreviewStep, body: dict[str, Any], parents: dict[str, dict[str, Any]]) -> str:
    if step.reply_to_step is not None:
        parent = parents.get(step.reply_to_step)
        said = _first_text(parent) if parent is not None else f"step {step.reply_to_step}"
        return f'<div class="quote"><span>↩ reply to</span> {_e(said)}</div>'
    rt = body.get("reply_to")
    if isinstance(rt, dict):
        target = rt.get("message_id") or rt.get("guid")
        return f'<div class="quote"><span>↩ reply to message</span> {_e(target)}</div>'
    return ""


def _label(step: PreviewStep, bubble: Bubble, typing: bool) -> str:
    chip = (
        f' <span class="chip">variant {_e(bubble.variant)}</span>'
        if bubble.variant is not None
        else ""
    )
    # The typing indicator shows before the message and is gone once it arrives: said, not drawn.
    dots = ' <span class="typing">· typing…</span>' if typing else ""
    return f'<div class="step">{_e(step.id)}{chip}{dots}</div>'


def _column(steps: Sequence[PreviewStep], sms: bool, windowed: bool) -> str:
    out: list[str] = ['<div class="sep">Today</div>']
    if sms and any(b.body.get("use_typing_indicator") for s in steps for b in s.bubbles):
        out.append(_note("No typing indicator on SMS (an iMessage feature)."))
    parents: dict[str, dict[str, Any]] = {}
    for i, step in enumerate(steps):
        if step.delay_seconds and i:
            later = delay_words(step.delay_seconds)
            if windowed:
                later += ", inside the window"
            out.append(f'<div class="sep">{_e(later)}</div>')
        if not step.bubbles:
            why = {
                "when": "its when: is false for this recipient",
                "reply_parent_skipped": "the step it replies to is skipped",
            }.get(step.skipped or "", step.skipped or "")
            out.append(f'<div class="skip">{_e(step.id)}: not sent ({_e(why)})</div>')
            continue
        for bubble in step.bubbles:
            body = bubble.body
            out.append(_label(step, bubble, not sms and bool(body.get("use_typing_indicator"))))
            if sms:
                items, lost = sms_items(body)
                if step.reply_to_step is not None or isinstance(body.get("reply_to"), dict):
                    lost.append("the inline reply: an ordinary message")
                out += items
                if lost:
                    out.append(_note("SMS drops " + "; ".join(lost)))
            else:
                out.append(_quote(step, body, parents))
                out += imessage_items(body)
        parents.setdefault(step.id, step.bubbles[0].body)
    return "".join(out)


def _sender(steps: Iterable[PreviewStep]) -> str:
    for step in steps:
        for bubble in step.bubbles:
            number = bubble.body.get("from_number")
            if number:
                return str(number)
    return "your default number"


def _phone(title: str, chip: str, sender: str, inner: str) -> str:
    initials = "".join(ch for ch in sender if ch.isdigit())[-2:] or "#"
    return (
        f'<section class="col"><h2>{_e(title)} <span class="pill {chip}">{_e(chip)}</span></h2>'
        f'<div class="phone"><div class="screen"><div class="bar"><b>9:41</b><span>▮▮▮</span></div>'
        f'<div class="nav"><div class="av">{_e(initials)}</div><div>{_e(sender)}</div></div>'
        f'<div class="msgs">{inner}</div></div></div></section>'
    )


def _schedule_words(schedule: dict[str, Any] | None) -> str:
    if not schedule:
        return ""
    bits = []
    window = schedule.get("window")
    if isinstance(window, dict):
        days = window.get("days")
        bits.append(
            f"between {window.get('start')} and {window.get('end')}"
            + (f" ({schedule.get('timezone')})" if schedule.get("timezone") else "")
            + (f" on {', '.join(map(str, days))}" if days else "")
        )
    if schedule.get("timezone_var"):
        bits.append(f"in the recipient's own zone ({schedule['timezone_var']})")
    if schedule.get("not_before"):
        bits.append(f"not before {schedule['not_before']}")
    if schedule.get("not_after"):
        bits.append(f"expires at {schedule['not_after']}")
    return "Sent only " + "; ".join(bits) + "." if bits else ""


def render_preview_html(
    campaign: str,
    recipient: str,
    steps: Sequence[PreviewStep],
    *,
    schedule: dict[str, Any] | None = None,
) -> str:
    """The whole page: the recipient's conversation on iMessage and, beside it, on SMS only."""
    sender = _sender(steps)
    requests = sum(len(s.bubbles) for s in steps)
    windowed = bool(schedule and schedule.get("window"))
    imessage = _phone("iMessage", "imessage", sender, _column(steps, False, windowed))
    if "@" in recipient and "," not in recipient:
        sms_inner = (
            '<div class="skip">An email address is reached over iMessage only: '
            "without iMessage this recipient gets nothing.</div>"
        )
    elif "," in recipient or recipient.startswith("grp_"):
        sms_inner = (
            '<div class="skip">A group chat is an iMessage group: members without '
            "iMessage are left out of it.</div>"
        )
    else:
        sms_inner = _column(steps, True, windowed)
    sms = _phone("SMS only", "sms", sender, sms_inner)
    sched = _schedule_words(schedule)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Preview: {_e(campaign)} for {_e(recipient)}</title><style>{_CSS}</style></head>
<body><main>
<header><h1>Campaign <code>{_e(campaign)}</code> as <code>{_e(recipient)}</code> sees it</h1>
<p class="muted">{requests} request(s) in step order; delays are from the previous step's
acceptance. {_e(sched)} Nothing on this page is fetched: images are named, not shown.</p></header>
<div class="cols">{imessage}{sms}</div>
</main></body></html>
"""


_CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f2f3f5;color:#111;font:14px/1.35 -apple-system,BlinkMacSystemFont,
"Segoe UI",Roboto,Helvetica,Arial,sans-serif}
main{max-width:880px;margin:0 auto;padding:20px}
h1{font-size:19px;margin:0 0 4px}h2{font-size:15px;margin:0 0 10px;text-align:center}
code{background:#e4e7eb;border-radius:4px;padding:1px 5px;font-size:.92em}
.muted{color:#6b7280}header p{margin:0 0 18px;font-size:13px}
.cols{display:flex;gap:36px;justify-content:center;align-items:flex-start;flex-wrap:wrap}
.col{width:370px}
.pill{display:inline-block;font-size:11px;font-weight:600;border-radius:10px;padding:1px 8px;
color:#fff;vertical-align:middle}.pill.imessage{background:#0a84ff}.pill.sms{background:#30b94d}
.phone{background:#1c1c1e;border-radius:46px;padding:12px;box-shadow:0 8px 24px rgba(0,0,0,.18)}
.screen{background:#fff;border-radius:36px;overflow:hidden;min-height:560px}
.bar{display:flex;justify-content:space-between;padding:10px 26px 2px;font-size:13px}
.bar span{letter-spacing:-2px;font-size:10px}
.nav{text-align:center;font-size:12px;color:#333;padding:4px 0 8px;border-bottom:1px solid #e5e5ea;
background:#f9f9f9}
.av{width:40px;height:40px;border-radius:50%;margin:0 auto 3px;background:linear-gradient(#a5acb8,#858c99);
color:#fff;font-weight:600;line-height:40px;font-size:15px}
.msgs{padding:8px 12px 18px;display:flex;flex-direction:column;align-items:flex-start;gap:3px}
.sep{align-self:center;color:#8e8e93;font-size:11px;font-weight:600;margin:10px 0 4px}
.step{font-size:10px;color:#aeaeb2;text-transform:uppercase;letter-spacing:.04em;margin:6px 0 0 10px}
.chip{background:#eef2ff;color:#4f46e5;border-radius:8px;padding:0 6px;text-transform:none}
.b{background:#e9e9eb;border-radius:18px;max-width:78%;word-wrap:break-word;overflow-wrap:anywhere}
.txt{padding:7px 12px;white-space:pre-wrap}
.group{display:flex;flex-direction:column;gap:2px;max-width:78%}
.group .b{max-width:100%}
.tile{display:flex;gap:9px;align-items:center;padding:8px 12px 8px 8px;background:#f2f2f7;
border:1px solid #e5e5ea}
.ext{flex:none;width:38px;height:46px;border-radius:6px;background:#fff;border:1px solid #d1d1d6;
font-size:10px;font-weight:700;color:#636366;display:flex;align-items:center;justify-content:center}
.fn{display:flex;flex-direction:column;min-width:0}.fn small,.cap small{color:#8e8e93;font-size:10.5px}
.card{padding:0;overflow:hidden;width:240px}
.pic{height:96px;background:repeating-linear-gradient(135deg,#dfe3ea 0 10px,#e8ebf0 10px 20px);
color:#555;font:10.5px/1.3 ui-monospace,Menlo,Consolas,monospace;padding:10px;display:flex;
align-items:flex-end}
.cap{padding:7px 12px 8px;display:flex;flex-direction:column;background:#e9e9eb}
.fx{font-size:10.5px;color:#0a84ff;margin:1px 0 4px 12px}
.quote{font-size:11px;color:#8e8e93;border-left:2px solid #c7c7cc;margin:2px 0 0 14px;
padding:1px 0 1px 8px;max-width:70%}
.quote span{font-weight:600}
.at{color:#0a84ff;font-weight:600}
.typing{text-transform:none;letter-spacing:0;color:#0a84ff}
.note{font-size:10.5px;color:#b45309;margin:1px 0 4px 12px;max-width:85%}
.skip{align-self:stretch;text-align:center;color:#8e8e93;font-size:11.5px;font-style:italic;
border:1px dashed #d1d1d6;border-radius:10px;padding:6px 10px;margin:6px 0}
@media print{.phone{box-shadow:none}}
"""
