"""`campaign listen`'s request handler: verify, read, then acknowledge only once written.

Order matters: the signature is checked over the raw body before anything parses it; a refused
delivery (401 unsigned, forged, stale or future; 413 over 1 MiB, by the server; 400 not JSON;
202 an event the runner does not store) changes nothing and is logged with its reason. An
accepted event joins the current batch; the answer (200) waits until the batch is committed, so
a listener killed mid-stream never acknowledges what it did not store: the sender retries it.
Batches are written by one task, as many events as arrived while the last batch was written.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from runner.http.server import Response
from runner.webhooks.events import Refusal, WebhookEvent, parse
from runner.webhooks.sink import WebhookSink
from runner.webhooks.verify import SIGNATURE_HEADERS, Check, verify

MAX_BODY = 1024 * 1024
DEFAULT_PATH = "/webhooks/blooio"


@dataclass
class ListenStats:
    accepted: int = 0
    refused: int = 0  # 401 and 400
    ignored: int = 0  # 202: an event not stored
    batches: int = 0


class Listener:
    """A ``runner.http.server.Handler`` writing into ``sink``."""

    def __init__(
        self,
        sink: WebhookSink,
        secrets: Sequence[str],
        *,
        path: str = DEFAULT_PATH,
        clock: Callable[[], float] = time.time,
        log: Callable[[str], None] = lambda line: None,
    ) -> None:
        if not any(secrets):
            raise ValueError("at least one signing secret is needed")
        self.sink = sink
        self.secrets = [s for s in secrets if s]
        self.path = path
        self.max_body = MAX_BODY
        self.stats = ListenStats()
        self._clock = clock
        self._log = log
        self._batch: list[tuple[WebhookEvent, asyncio.Future[None]]] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    async def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes, peer: str
    ) -> Response:
        if target.split("?", 1)[0] != self.path:
            return 404, {"error": "not found"}, None
        if method != "POST":
            return 405, {"error": "POST only"}, [("Allow", "POST")]
        header = next((headers[h] for h in SIGNATURE_HEADERS if h in headers), None)
        check = verify(header, body, self.secrets, self._clock())
        if check is not Check.OK:
            self.stats.refused += 1
            self._log(f"refused from {peer}: {check.value}")
            return 401, {"error": str(check.value)}, None
        parsed = parse(body)
        if isinstance(parsed, Refusal):
            if parsed.status >= 400:
                self.stats.refused += 1
            else:
                self.stats.ignored += 1
            self._log(f"{parsed.status} from {peer}: {parsed.reason}")
            return parsed.status, {"error" if parsed.status >= 400 else "note": parsed.reason}, None
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._batch.append((parsed, done))
        self._start()
        assert self._wake is not None
        self._wake.set()
        try:
            await done
        except Exception as exc:  # the state could not be written: the sender retries
            self._log(f"503: the state could not be written: {exc}")
            return 503, {"error": "not stored; retry"}, [("Retry-After", "1")]
        self.stats.accepted += 1
        return 200, {"ok": True}, None

    def _start(self) -> None:
        if self._task is None:
            self._wake = asyncio.Event()
            self._task = asyncio.create_task(self._writer(), name="webhook-writer")

    async def _writer(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(0)  # one loop round: the deliveries arriving now share a commit
            batch, self._batch = self._batch, []
            if not batch:
                continue
            error: Exception | None = None
            try:
                self.sink.apply([e for e, _ in batch], self._clock())
                self.stats.batches += 1
            except Exception as exc:
                error = exc
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(error) if error else fut.set_result(None)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
