"""Routing, auth, faults and idempotency in flight: the async glue between HTTP and State.

``App.handle`` takes a parsed request and returns ``(status, body, headers)`` or ``DROP``
(close the connection without answering). Everything that must wait (latency, a slow answer,
a request whose Idempotency-Key is still being processed) waits here, never in ``State``.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

from runner.emulator import control
from runner.emulator.config import EmulatorConfig
from runner.emulator.faults import Faults
from runner.emulator.state import State
from runner.emulator.validation import ApiError
from runner.emulator.webhooks import Webhooks
from runner.http.server import DROP, Drop

Response = tuple[int, Any, list[tuple[str, str]] | None]

LOOPBACK = ("127.0.0.1", "::1", "localhost")
MAX_KEY_WAITS = 1000  # same-key attempts one request may wait behind before giving up


def error(status: int, message: str, code: str | None = None) -> Response:
    return status, ApiError(status, message, code).body(), None


def _wrong_method(method: str, name: str) -> Response:
    """404 for an unknown endpoint; 405 naming the method and body a known one expects."""
    expected = control.allowed(name)
    if not expected:
        return error(
            404,
            f"no control endpoint {name}; the endpoints are "
            + ", ".join(control.PREFIX + n for n in control.NAMES),
        )
    how = " or ".join(
        f"{e.method}"
        + (f" with a JSON body like {json.dumps(e.body)}" if e.method == "POST" else "")
        for e in expected
    )
    status, body, _ = error(405, f"{method} {control.PREFIX}{name} is not allowed: use {how}")
    body["expected"] = [e.expected() for e in expected]
    return status, body, [("Allow", ", ".join(e.method for e in expected))]


def _retry_after(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


class App:
    def __init__(self, config: EmulatorConfig) -> None:
        config.check()
        self.config = config
        self.state = State(config)
        self.faults = Faults(config)
        self.inflight: dict[str, asyncio.Future] = {}
        self._auth = "Bearer " + config.api_key
        self.webhooks = Webhooks(
            self.state,
            url=config.webhook_url,
            secret=config.webhook_secret,
            duplicate_rate=config.webhook_duplicate_rate,
            seed=config.seed,
        )

    # -- entry -------------------------------------------------------------------------

    async def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes, peer: str
    ) -> Response | Drop:
        path, _, query = target.partition("?")
        if path.startswith("/v2/api/"):
            st = self.state.stats
            st.requests += 1
            st.in_flight += 1
            if st.in_flight > st.peak_in_flight:
                st.peak_in_flight = st.in_flight
            try:
                resp = await self._api(method, path[8:], query, headers, body)
            finally:
                st.in_flight -= 1
            if resp is not DROP and resp[0] >= 400:
                key = str(resp[0])
                st.errors[key] = st.errors.get(key, 0) + 1
            return resp
        if path.startswith("/__emulator/"):
            if peer not in LOOPBACK:
                return error(403, "control endpoints answer loopback clients only")
            try:
                return self._control(method, path[12:], query, body)
            except (ApiError, ValueError) as exc:
                if isinstance(exc, ApiError):
                    return exc.status, exc.body(), None
                return error(400, str(exc))
        return error(404, "Not found")

    # -- the API -----------------------------------------------------------------------

    async def _api(
        self, method: str, path: str, query: str, headers: dict[str, str], body: bytes
    ) -> Response | Drop:
        if headers.get("authorization") != self._auth:
            return error(401, "Authentication required or invalid")
        segs = path.split("/")
        n = len(segs)
        if n == 3 and segs[0] == "chats" and segs[2] == "messages" and method == "POST":
            self.state.stats.send_requests += 1
            key = headers.get("idempotency-key") or None  # an empty key is no key
            return await self._send(unquote(segs[1]), key, body)
        fault, delay = self.faults.draw(False)
        if delay:
            await asyncio.sleep(delay)
        if fault is not None:
            resp = await self._fault(fault)
            if resp is not None:
                return resp
        st = self.state
        try:
            if segs[0] == "webhooks":
                return self._webhooks(method, segs, body)
            if method != "GET":
                return error(405, f"Method {method} not allowed here")
            if n == 3 and segs[0] == "chats" and segs[2] == "messages":
                return 200, st.list_messages(unquote(segs[1]), dict(parse_qsl(query))), None
            if n == 5 and segs[0] == "chats" and segs[2] == "messages" and segs[4] == "status":
                return 200, st.message_status(unquote(segs[1]), unquote(segs[3])), None
            if n == 4 and segs[0] == "chats" and segs[2] == "messages":
                return 200, st.message_detail(unquote(segs[1]), unquote(segs[3])), None
            if n == 3 and segs[0] == "contacts" and segs[2] == "capabilities":
                return 200, st.capabilities(unquote(segs[1])), None
            if segs == ["me", "numbers"]:
                return 200, st.numbers(), None
        except ApiError as exc:
            return exc.status, exc.body(), None
        return error(404, "Not found")

    def _webhooks(self, method: str, segs: list[str], body: bytes) -> Response:
        hooks = self.webhooks
        if segs == ["webhooks"] and method == "POST":
            try:
                doc = json.loads(body or b"{}")
            except ValueError:
                return error(400, "the body is not JSON")
            return 201, hooks.create(doc), None
        if segs == ["webhooks"] and method == "GET":
            return 200, hooks.listing(), None
        if len(segs) == 2 and method == "DELETE":
            return 200, hooks.delete(unquote(segs[1])), None
        if len(segs) == 4 and segs[2:] == ["secret", "rotate"] and method == "POST":
            return 200, hooks.rotate(unquote(segs[1])), None
        return error(404, "Not found")

    async def _fault(self, fault: str) -> Response | Drop | None:
        """The answer a fault forces before any state is touched (None: answer normally)."""
        cfg = self.config
        if fault == "500" or fault == "accept_then_500":
            return error(500, "Internal server error")
        if fault == "503":
            return error(503, "No active number available")
        if fault == "429":
            headers = None
            if cfg.retry_after_s is not None:
                headers = [("Retry-After", _retry_after(cfg.retry_after_s))]
            return 429, ApiError(429, "Too many requests").body(), headers
        if fault == "drop":
            self.state.stats.drops += 1
            return DROP
        if fault == "slow":
            self.state.stats.slow += 1
            await asyncio.sleep(cfg.slow_ms / 1000.0)
        return None

    async def _send(self, raw_chat: str, key: str | None, body: bytes) -> Response | Drop:
        fault, delay = self.faults.draw(True)
        state = self.state
        mine: asyncio.Future | None = None
        if key is not None:
            for _ in range(MAX_KEY_WAITS):
                if key in state.by_key:
                    break
                other = self.inflight.get(key)
                if other is None:
                    mine = self.inflight[key] = asyncio.get_running_loop().create_future()
                    break
                # shield: a waiter whose client hung up must not cancel the first request.
                await asyncio.shield(other)
            else:
                return error(503, "Too many concurrent requests with this Idempotency-Key")
        try:
            if delay:
                await asyncio.sleep(delay)
            committing_slow = fault == "slow" and self.config.slow_commits
            if fault is not None and fault != "accept_then_500" and not committing_slow:
                faulted = await self._fault(fault)
                if faulted is not None:
                    return faulted
                return error(504, "Upstream timeout: the message was not sent")
            done = state.by_key.get(key) if key is not None else None
            if done is not None:
                if committing_slow:
                    state.stats.slow += 1
                    await asyncio.sleep(self.config.slow_ms / 1000.0)
                if fault == "accept_then_500":
                    return error(500, "Internal server error")
                state.stats.replays += 1
                return 200, done.response, None
            try:
                data = json.loads(body) if body else None
            except (ValueError, UnicodeDecodeError):
                return error(400, "Request body is not valid JSON")
            try:
                accepted = state.send(raw_chat, data, key)
            except ApiError as exc:
                return exc.status, exc.body(), None
            if committing_slow:
                self._release(key, mine)
                mine = None
                state.stats.slow += 1
                await asyncio.sleep(self.config.slow_ms / 1000.0)
            if fault == "accept_then_500":
                return error(500, "Internal server error")
            return 202, accepted, None
        finally:
            if mine is not None:
                self._release(key, mine)

    def _release(self, key: str | None, fut: asyncio.Future | None) -> None:
        if key is not None and self.inflight.get(key) is fut:
            del self.inflight[key]
        if fut is not None and not fut.done():
            fut.set_result(None)

    # -- control endpoints -------------------------------------------------------------

    def _control(self, method: str, name: str, query: str, body: bytes) -> Response:
        if control.find(method, name) is None:
            return _wrong_method(method, name)
        state = self.state
        data: Any = {}
        if method == "POST" and body:
            try:
                data = json.loads(body)
            except ValueError:
                return error(400, "body is not valid JSON")
            if not isinstance(data, dict):
                return error(400, "body must be a JSON object")
        if method == "GET" and name == "stats":
            return 200, state.stats_dict(), None
        if method == "GET" and name == "messages":
            return 200, {"messages": state.messages_dump()}, None
        if method == "GET" and name == "config":
            return 200, self.config.to_dict(), None
        if method == "GET" and name == "clock":
            now = state.now()
            iso = (
                datetime.fromtimestamp(now, UTC)
                .isoformat(timespec="seconds")
                .replace("+00:00", "Z")
            )
            return 200, {"now_ms": int(now * 1000), "now": iso}, None
        if name == "reply":
            for field in ("chat", "text"):
                if not isinstance(data.get(field), str):
                    raise ValueError(f"{field} must be a string")
            return (
                200,
                state.receive(
                    data["chat"], data["text"], data.get("sender"), data.get("to_number")
                ),
                None,
            )
        if name == "config":
            self.configure(data)
            return 200, self.config.to_dict(), None
        if name == "reset":
            self.reset()
            return 200, {"reset": True}, None
        if name == "advance":
            seconds = data.get("seconds")
            if not isinstance(seconds, int | float) or isinstance(seconds, bool):
                raise ValueError("seconds must be a number")
            return 200, {"now_ms": int(state.advance(seconds) * 1000)}, None
        if name == "groups":
            members = data.get("participants")
            if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
                raise ValueError("participants must be a list of phones/emails")
            return 200, state.create_group(members), None
        return error(404, f"no control endpoint {name}")  # in the table but not routed here

    def configure(self, changes: dict[str, Any]) -> None:
        new = self.config.updated(changes)
        self.config = new
        self.faults.configure(new, reseed="seed" in changes, rescript="fault_script" in changes)
        self.state.configure(new)
        self._auth = "Bearer " + new.api_key

    def reset(self) -> None:
        self.state.reset()
        self.faults.configure(self.config, reseed=True)
