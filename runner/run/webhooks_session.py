"""`campaign webhook create|list|delete|rotate`: the account's webhook subscriptions through
the API, with the one client, classifier and retry loop. The signing secret the API returns
once is written only where the user says (a file, mode 0600), never to the state or a log."""

from __future__ import annotations

import asyncio
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from runner.contract import WEBHOOKS
from runner.errors import CampaignError, Problem, StoppedEarly
from runner.http.classify import Disposition, Reading, read_exchange
from runner.http.client import ApiClient, ApiOptions
from runner.http.retry import retrying

TYPES = ("message", "status", "all")


@dataclass(frozen=True, slots=True)
class Subscription:
    webhook_id: str
    url: str
    type: str | None


def _subscription(doc: Any) -> Subscription:
    d = doc if isinstance(doc, dict) else {}
    return Subscription(
        str(d.get("webhook_id") or "?"),
        str(d.get("webhook_url") or "?"),
        d.get("webhook_type") if isinstance(d.get("webhook_type"), str) else None,
    )


async def _call(
    options: ApiOptions, api_key: str, method: str, path: str, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    content = json.dumps(body).encode() if body is not None else b""
    headers = ((b"Content-Type", b"application/json"),) if body is not None else ()
    async with ApiClient(
        options.base_url, api_key, timeout=30.0, concurrency=1, stack=options.http_stack
    ) as api:

        async def once(attempt: int) -> Reading:
            return read_exchange(await api.request(method, path, content, headers), WEBHOOKS, 0.0)

        reading = (await retrying(once, options, random.Random(), asyncio.sleep)).verdict
    if reading.disposition is Disposition.UNAUTHORIZED:
        raise StoppedEarly("the API refused the key (401)", hint="check BLOOIO_API_KEY")
    if reading.disposition is Disposition.GONE:
        raise CampaignError(Problem("no such webhook", hint="`campaign webhook list` shows them"))
    if reading.disposition is not Disposition.OK or reading.payload is None:
        raise CampaignError(
            Problem(
                f"the API answered {reading.why or 'nothing usable'}",
                hint="check the URL (a public https:// URL for the live API) and try again",
            )
        )
    return reading.payload


def _write_secret(path: Path, secret: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(secret + "\n")
        os.chmod(path, 0o600)
    except OSError as err:
        raise CampaignError(
            f"cannot write the signing secret to {path}: {err.strerror}",
            hint="choose a file in a folder you can write (keep it out of git)",
        ) from None


def create(
    options: ApiOptions, api_key: str, url: str, kind: str, secret_file: Path
) -> Subscription:
    if kind not in TYPES:
        raise CampaignError(Problem(f"--type must be one of {', '.join(TYPES)}"))
    doc = asyncio.run(
        _call(options, api_key, "POST", "/webhooks", {"webhook_url": url, "webhook_type": kind})
    )
    secret = doc.get("signing_secret")
    if isinstance(secret, str) and secret:
        _write_secret(secret_file, secret)
    return _subscription(doc)


def listing(options: ApiOptions, api_key: str) -> list[Subscription]:
    doc = asyncio.run(_call(options, api_key, "GET", "/webhooks"))
    items = doc.get("webhooks")
    return [_subscription(d) for d in items] if isinstance(items, list) else []


def delete(options: ApiOptions, api_key: str, webhook_id: str) -> None:
    asyncio.run(_call(options, api_key, "DELETE", f"/webhooks/{quote(webhook_id, safe='')}"))


def rotate(options: ApiOptions, api_key: str, webhook_id: str, secret_file: Path) -> None:
    doc = asyncio.run(
        _call(options, api_key, "POST", f"/webhooks/{quote(webhook_id, safe='')}/secret/rotate", {})
    )
    secret = doc.get("signing_secret")
    if not isinstance(secret, str) or not secret:
        raise CampaignError(Problem("the API returned no new secret"))
    _write_secret(secret_file, secret)
