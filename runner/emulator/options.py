"""The command-line settings of the emulator, declared once for argparse and click alike."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from runner.emulator.config import EmulatorConfig
from runner.emulator.replies import parse_rule


@dataclass(frozen=True)
class Option:
    flag: str
    field: str
    kind: str  # "float" | "fraction" (0..1) | "int" | "str" | "list" | "flag" | "optfloat" | "rules" (repeatable)
    help: str


OPTIONS: tuple[Option, ...] = (
    Option("--api-key", "api_key", "str", "bearer key clients must send (default test-key)"),
    Option("--seed", "seed", "int", "seed of every random draw (default 0)"),
    Option("--latency-ms", "latency_ms", "float", "base latency of every API answer"),
    Option("--jitter-ms", "jitter_ms", "float", "extra random latency, uniform 0..N ms"),
    Option(
        "--fault-500", "p_500", "fraction", "share of requests answered 500, a fraction (0.1 = 10%)"
    ),
    Option("--fault-503", "p_503", "fraction", "share answered 503 No active number available"),
    Option("--fault-429", "p_429", "fraction", "share answered a plain 429 with Retry-After"),
    Option("--fault-slow", "p_slow", "fraction", "share answered only after --slow-ms"),
    Option("--fault-drop", "p_drop", "fraction", "share whose connection is closed unanswered"),
    Option(
        "--fault-accept-then-500",
        "p_accept_then_500",
        "fraction",
        "share of sends committed and then answered 500",
    ),
    Option(
        "--retry-after",
        "retry_after_s",
        "optfloat",
        "Retry-After seconds on plain 429s (fractions allowed; 'none' = no header)",
    ),
    Option("--slow-ms", "slow_ms", "float", "how late a slow answer comes (default 2000)"),
    Option("--slow-commits", "slow_commits", "flag", "slow sends are committed before answering"),
    Option("--fault-scope", "fault_scope", "str", "'all' API requests (default) or only 'send'"),
    Option("--outbound-limit", "outbound_limit", "int", "cap on distinct contacts messaged"),
    Option(
        "--new-conversation-cap", "new_conversation_cap", "int", "cap on new conversations started"
    ),
    Option("--numbers", "numbers", "list", "comma-separated from-numbers of the organisation"),
    Option("--strict-numbers", "strict_numbers", "flag", "reject from_numbers not in --numbers"),
    Option(
        "--groups",
        "groups",
        "list",
        "named group chats (grp_...) the account has, comma-separated; * = any",
    ),
    Option("--sent-after-ms", "sent_after_ms", "float", "queued -> sent delay (default 50)"),
    Option(
        "--delivered-after-ms",
        "delivered_after_ms",
        "float",
        "queued -> delivered/failed delay (default 200)",
    ),
    Option("--delivery-jitter-ms", "delivery_jitter_ms", "float", "random extra delivery delay"),
    Option(
        "--p-delivery-failed",
        "p_delivery_failed",
        "fraction",
        "share of accepted messages that fail to deliver",
    ),
    Option("--share-imessage", "share_imessage", "fraction", "share of phones on iMessage"),
    Option("--share-sms", "share_sms", "fraction", "share of phones on SMS only"),
    Option("--share-rcs", "share_rcs", "fraction", "share of phones on RCS"),
    Option("--p-unreachable", "p_unreachable", "fraction", "share of contacts nobody can reach"),
    Option("--unreachable", "unreachable", "list", "comma-separated unreachable contacts"),
    Option(
        "--reply-rate",
        "reply_rate",
        "float",
        "share of accepted messages the recipient answers (drawn from the seed; default 0)",
    ),
    Option("--reply-text", "reply_text", "str", "what they answer (default 'Yes please')"),
    Option(
        "--reply-after",
        "reply_after_s",
        "float",
        "seconds after delivery the answer arrives, emulator clock (default 60)",
    ),
    Option(
        "--reply-rule",
        "reply_rules",
        "rules",
        "REGEX=RATE:TEXT, repeatable: messages whose text matches REGEX (e.g. a variant's "
        "wording) are answered TEXT at RATE instead; the first matching rule wins",
    ),
    Option(
        "--webhook",
        "webhook_url",
        "str",
        "post signed webhooks (received, sent, delivered, failed) to this http://127.0.0.1 URL",
    ),
    Option(
        "--webhook-secret",
        "webhook_secret",
        "str",
        "the signing secret of --webhook (default: one is made and shown)",
    ),
    Option(
        "--webhook-duplicates",
        "webhook_duplicate_rate",
        "fraction",
        "share of webhooks delivered twice, the second as a replay",
    ),
)


METAVARS = {
    "float": "a number",
    "fraction": "a fraction between 0 and 1 (0.1 = 10%)",
    "int": "an integer",
    "str": "a text",
    "list": "a comma-separated list",
    "optfloat": "seconds or 'none'",
    "flag": "",
    "rules": "REGEX=RATE:TEXT",
}
CLICK_METAVARS = {
    "float": "N",
    "fraction": "0..1",
    "int": "N",
    "str": "TEXT",
    "list": "A,B",
    "optfloat": "SECONDS",
    "rules": "REGEX=RATE:TEXT",
}


def convert(option: Option, raw: Any) -> Any:
    """Turn a raw command-line value into the config field's type (ValueError if it can't)."""
    if option.kind == "flag":
        return bool(raw)
    if option.kind == "rules":
        return [parse_rule(str(r)) for r in ([raw] if isinstance(raw, str) else raw)]
    if option.kind == "list":
        return [x.strip() for x in str(raw).split(",") if x.strip()]
    if option.kind == "optfloat":
        return None if str(raw).lower() in ("none", "") else float(raw)
    if option.kind == "int":
        return int(raw)
    if option.kind in ("float", "fraction"):
        return float(raw)
    return str(raw)


def build_config(
    values: dict[str, Any], port: int = 0, config_json: str | None = None
) -> EmulatorConfig:
    """A checked config from ``{field: raw value or None}`` plus an optional JSON object."""
    changes: dict[str, Any] = {"port": port}
    if config_json:
        extra = json.loads(config_json)
        if not isinstance(extra, dict):
            raise ValueError("--config-json must be a JSON object")
        changes.update(extra)
    by_field = {o.field: o for o in OPTIONS}
    for name, raw in values.items():
        opt = by_field[name]
        if raw is None or (opt.kind in ("flag", "rules") and not raw):
            continue
        try:
            changes[name] = convert(opt, raw)
        except ValueError as err:
            if opt.kind == "rules":
                raise ValueError(f"{opt.flag}: {err}") from None
            raise ValueError(f"{opt.flag} expects {METAVARS[opt.kind]}, got {raw!r}") from None
    return EmulatorConfig().updated(changes)
