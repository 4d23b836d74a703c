"""The emulator's control endpoints, declared once: the server routes and checks methods with
this table, and the banner, ``campaign emulator --help`` and the 405 answers describe it.

Also the client side: ``call`` talks to a running emulator's control endpoints over loopback
(the test handles and ``campaign emulator reply`` share it).
"""

from __future__ import annotations

import ipaddress
import json
import shlex
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

PREFIX = "/__emulator/"
DEFAULT_PORT = 8765
EXAMPLE_CHAT = "+15551230001"
# Loopback never goes through a proxy, whatever HTTP(S)_PROXY says.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Endpoint:
    method: str
    name: str
    body: dict[str, Any] | None  # an example JSON body (None: the endpoint takes none)
    fields: str  # what the body's fields mean ("" when there is no body)
    does: str

    @property
    def path(self) -> str:
        return PREFIX + self.name

    def curl(self, root_url: str) -> str:
        url = root_url + self.path
        if self.method == "GET":
            return f"curl -s {url}"
        return (
            f"curl -s -X POST {url} -H 'Content-Type: application/json' "
            f"-d {shlex.quote(json.dumps(self.body or {}))}"
        )

    def expected(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "path": self.path}
        if self.method == "POST":
            out["body"] = self.body or {}
            if self.fields:
                out["fields"] = self.fields
        return out


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "GET",
        "stats",
        None,
        "",
        "counters: requests, accepted, duplicates, errors, peak in-flight and 1-s rate",
    ),
    Endpoint(
        "GET",
        "messages",
        None,
        "",
        "every accepted send: chat, body, ids, from_number, statuses, automatic replies",
    ),
    Endpoint("GET", "config", None, "", "the settings in force"),
    Endpoint(
        "POST",
        "config",
        {"p_500": 0.1, "latency_ms": 50},
        "any --config-json field, e.g. reply_rate, reply_text, reply_after_s, reply_rules "
        "[{pattern, rate, text}]",
        "change settings while running; answers the new settings",
    ),
    Endpoint(
        "POST",
        "reply",
        {"chat": EXAMPLE_CHAT, "text": "STOP"},
        "optional: sender, the member writing in a group; to_number, default the number "
        "that last wrote to the chat",
        "a recipient answers (rehearse opt-outs: STOP)",
    ),
    Endpoint(
        "POST",
        "advance",
        {"seconds": 3600},
        "",
        "move the emulator's clock forward (delivery, automatic replies, reply windows)",
    ),
    Endpoint(
        "GET",
        "clock",
        None,
        "",
        "the emulator's clock: now_ms and now (ISO 8601); `send --now emulator` reads it",
    ),
    Endpoint(
        "POST",
        "groups",
        {"participants": [EXAMPLE_CHAT, "+15551230002"]},
        "phones and emails",
        "create a named group chat; answers its group_id",
    ),
    Endpoint("POST", "reset", {}, "", "forget every message, group and counter"),
)
NAMES: tuple[str, ...] = tuple(dict.fromkeys(e.name for e in ENDPOINTS))


def find(method: str, name: str) -> Endpoint | None:
    for endpoint in ENDPOINTS:
        if endpoint.method == method and endpoint.name == name:
            return endpoint
    return None


def allowed(name: str) -> list[Endpoint]:
    """The endpoints at ``name`` under any method (empty: no such endpoint)."""
    return [e for e in ENDPOINTS if e.name == name]


# -- words for people ----------------------------------------------------------------------


def endpoint_table(indent: str = "  ") -> list[str]:
    """Method, path and purpose of each endpoint; a POST's example body on the line below."""
    width = max(len(e.path) for e in ENDPOINTS)
    lines = []
    for e in ENDPOINTS:
        lines.append(f"{indent}{e.method:<4} {e.path:<{width}}  {e.does}")
        if e.method == "POST":
            fields = f"  ({e.fields})" if e.fields else ""
            lines.append(f"{indent}       body {json.dumps(e.body)}{fields}")
    return lines


def root_url(port: int | str, host: str = "127.0.0.1") -> str:
    return f"http://{host}:{port}"


def reply_examples(root: str, indent: str = "  ") -> list[str]:
    reply = find("POST", "reply")
    stats = find("GET", "stats")
    assert reply is not None and stats is not None
    return [
        f"{indent}campaign emulator reply --to {EXAMPLE_CHAT} --text STOP --url {root}",
        f"{indent}{reply.curl(root)}",
        f"{indent}{stats.curl(root)}",
    ]


def banner(port: int, api_key: str, pid: int, host: str = "127.0.0.1") -> str:
    """What a foreground emulator prints once it listens."""
    root = root_url(port, host)
    base = root + "/v2/api"
    lines = [
        f"Blooio emulator listening on {base} (PID {pid})",
        f"  export BLOOIO_BASE_URL={base}",
        f"  export BLOOIO_API_KEY={api_key}",
        f"Stop it with Ctrl-C; in the background, `kill {pid}` (or `kill %1` from the shell "
        "that started it with &).",
        "Control endpoints (loopback only, JSON in and out; POST bodies are examples):",
        *endpoint_table(),
        "Make a recipient answer STOP, then read the counters:",
        *reply_examples(root),
    ]
    return "\n".join(lines)


def help_text() -> str:
    """The control-endpoint part of ``campaign emulator --help`` (click keeps \\b blocks)."""
    root = root_url(DEFAULT_PORT)
    return "\n\n".join(
        [
            "\b\nControl endpoints (loopback only, JSON in and out; POST bodies are examples):\n"
            + "\n".join(endpoint_table()),
            "\b\nMake a recipient answer STOP (emulator on port 8765), then read the counters:\n"
            + "\n".join(reply_examples(root)),
        ]
    )


# -- the client ----------------------------------------------------------------------------


class ControlError(ValueError):
    """The emulator answered a control request with an error."""

    def __init__(self, name: str, status: int, message: str) -> None:
        super().__init__(f"emulator control {name}: {status} {message}")
        self.status = status
        self.message = message


def loopback_root(url: str) -> str:
    """``http://host:port`` of a URL that must point at this machine (ValueError otherwise).

    Accepts the root, the API base (``…/v2/api``) or any path under it.
    """
    parts = urlsplit(url.strip())
    host = parts.hostname
    if not host or parts.scheme not in ("http", "https"):
        raise ValueError(f"{url!r} is not an http://HOST:PORT URL")
    if host != "localhost":
        try:
            is_loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            is_loopback = False
        if not is_loopback:
            raise ValueError(
                f"{url} is not on this machine: the emulator listens on loopback only (127.0.0.1)"
            )
    if parts.scheme != "http":
        raise ValueError(f"{url} uses https: the emulator speaks plain http")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{url!r} has an invalid port") from None
    netloc = f"[{host}]" if ":" in host else host
    return f"http://{netloc}:{port}" if port else f"http://{netloc}"


def call(
    root: str, method: str, name: str, data: dict[str, Any] | None = None, timeout: float = 10.0
) -> Any:
    """One control request; ControlError if it is refused, OSError if nothing answers."""
    body = json.dumps(data).encode() if data is not None else None
    req = urllib.request.Request(
        root + PREFIX + name, data=body, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            detail = json.loads(raw or b"{}").get("message", "")
        except (ValueError, AttributeError):
            detail = raw.decode("utf-8", "replace")[:200]
        raise ControlError(name, err.code, detail) from None
