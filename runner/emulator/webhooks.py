"""The emulator's webhooks: subscriptions (POST/GET/DELETE /webhooks, secret rotation) and
their deliveries, signed as Blooio signs them, so rehearsals and tests use the real path.

Every ``TICK_S`` the deliverer looks at what happened since the last look, on the emulator's
clock (an ``advance`` plays out at the next tick): a new inbound message is a
``message.received``; an outbound message reaching sent, delivered or failed is that event.
Each subscription gets the events of its type (message: received; status: the others; all),
POSTed to its URL with ``X-Blooio-Signature: t=…,v1=…`` (HMAC-SHA256 over ``{t}.{body}``),
retried with backoff until a 2xx or ``ATTEMPTS`` tries; ``webhook_duplicate_rate`` sends a
share twice, the second with ``X-Blooio-Replay: true``, to rehearse an idempotent receiver.
URLs must be http:// on a loopback address: the emulator never posts anywhere else.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from runner.emulator.state import State
from runner.emulator.validation import ApiError

TICK_S = 0.05
ATTEMPTS = 5
TYPES = ("message", "status", "all")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class Subscription:
    webhook_id: str
    url: str
    type: str
    secret: str
    created_at: int

    def doc(self) -> dict[str, Any]:
        return {
            "webhook_id": self.webhook_id,
            "webhook_url": self.url,
            "webhook_type": self.type,
            "scope": "api_key",
            "created_at": self.created_at,
        }

    def wants(self, event: str) -> bool:
        return self.type == "all" or (event == "message.received") == (self.type == "message")


def check_url(url: object) -> str:
    if not isinstance(url, str) or not url:
        raise ApiError(400, "webhook_url is required")
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in _LOOPBACK or not parts.port:
        raise ApiError(400, "the emulator posts webhooks to http://127.0.0.1:PORT/... only")
    return url


class Webhooks:
    def __init__(
        self,
        state: State,
        *,
        url: str | None = None,
        secret: str | None = None,
        duplicate_rate: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.state = state
        self.subs: dict[str, Subscription] = {}
        self.duplicate_rate = duplicate_rate
        self._rng = random.Random(seed)
        self._seen = 0  # messages looked at (the state's dict keeps arrival order)
        self._open: dict[str, str] = {}  # outbound message -> last status reported
        self.delivered = 0  # deliveries answered 2xx
        self.failed = 0  # deliveries given up after ATTEMPTS
        if url:
            self._add(check_url(url), "all", secret or self._secret())

    # -- subscriptions (the API) ---------------------------------------------------------
    def _secret(self) -> str:
        return "whsec_" + hashlib.blake2b(self._rng.randbytes(16), digest_size=16).hexdigest()

    def _add(self, url: str, kind: str, secret: str) -> Subscription:
        sid = f"wh_{len(self.subs) + 1:04d}"
        sub = Subscription(sid, url, kind, secret, int(time.time() * 1000))
        self.subs[sid] = sub
        return sub

    def create(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object")
        kind = body.get("webhook_type", "message")
        if kind not in TYPES:
            raise ApiError(400, f"webhook_type must be one of {', '.join(TYPES)}")
        if len(self.subs) >= 64:
            raise ApiError(409, "at most 64 webhooks per organization", "webhook_limit_reached")
        sub = self._add(check_url(body.get("webhook_url")), kind, self._secret())
        return {**sub.doc(), "signing_secret": sub.secret}

    def listing(self) -> dict[str, Any]:
        return {"webhooks": [s.doc() for s in self.subs.values()]}

    def delete(self, sid: str) -> dict[str, Any]:
        if self.subs.pop(sid, None) is None:
            raise ApiError(404, "Webhook not found")
        return {"success": True, "message": "Webhook deleted"}

    def rotate(self, sid: str) -> dict[str, Any]:
        sub = self.subs.get(sid)
        if sub is None:
            raise ApiError(404, "Webhook not found")
        sub.secret = self._secret()
        return {
            "webhook_id": sid,
            "signing_secret": sub.secret,
            "rotated_at": int(time.time() * 1000),
        }

    # -- deliveries ----------------------------------------------------------------------
    def due(self) -> list[dict[str, Any]]:
        """The events since the last look (state settled first: automatic replies arrive)."""
        st = self.state
        st.settle()
        now = st.now()
        events: list[dict[str, Any]] = []
        ids = list(st.messages)
        for mid in ids[self._seen :]:
            msg = st.messages[mid]
            if msg.direction == "inbound":
                events.append(
                    {
                        "event": "message.received",
                        "message_id": mid,
                        "external_id": msg.sender or msg.chat_id,
                        "text": msg.text,
                        "protocol": msg.protocol,
                        "received_at": int(msg.t0 * 1000),
                        "timestamp": int(now * 1000),
                    }
                )
            elif msg.fate is not None:
                self._open[mid] = ""
        self._seen = len(ids)
        for mid, last in list(self._open.items()):
            msg = st.messages[mid]
            status, protocol, delivered_at, error = msg.status_at(now)
            if status in ("sent", "delivered", "failed") and status != last:
                doc: dict[str, Any] = {
                    "event": f"message.{status}",
                    "message_id": mid,
                    "external_id": msg.chat_id,
                    "protocol": protocol,
                    "timestamp": int(now * 1000),
                }
                if error:
                    doc["error"] = error
                events.append(doc)
                self._open[mid] = status
            if status in ("delivered", "failed"):
                del self._open[mid]
        return events

    async def run(self) -> None:
        """Deliver for ever (the caller cancels it)."""
        while True:
            await asyncio.sleep(TICK_S)
            if not self.subs:
                continue
            events = self.due()
            posts = [
                self._post(sub, e)
                for e in events
                for sub in list(self.subs.values())
                if sub.wants(e["event"])
            ]
            if posts:
                await asyncio.gather(*posts)

    async def _post(self, sub: Subscription, event: dict[str, Any]) -> None:
        body = json.dumps(event).encode()
        copies = 2 if self._rng.random() < self.duplicate_rate else 1
        for copy in range(copies):
            for attempt in range(ATTEMPTS):
                t = int(time.time())
                sig = hmac.new(
                    sub.secret.encode(), f"{t}.".encode() + body, hashlib.sha256
                ).hexdigest()
                headers = {
                    "X-Blooio-Event": event["event"],
                    "X-Blooio-Message-Id": event["message_id"],
                    "X-Blooio-Signature": f"t={t},v1={sig}",
                }
                if copy:
                    headers |= {
                        "X-Blooio-Replay": "true",
                        "X-Original-Event-Id": event["message_id"],
                    }
                if await _http_post(sub.url, body, headers):
                    self.delivered += 1
                    break
                await asyncio.sleep(0.05 * 2**attempt)
            else:
                self.failed += 1


async def _http_post(url: str, body: bytes, headers: dict[str, str]) -> bool:
    """One POST over a fresh loopback connection; True on a 2xx answer."""
    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(parts.hostname, parts.port), 2
        )
    except (OSError, TimeoutError):
        return False
    try:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        writer.write(
            (
                f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: "
                f"application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n"
                f"{head}\r\n"
            ).encode("latin-1")
            + body
        )
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10)
        parts_ = status_line.split()
        return len(parts_) >= 2 and parts_[1].startswith(b"2")
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        return False
    finally:
        writer.close()
