"""`campaign preview FILE --to ID`: the exact requests one recipient would get (no network);
`--format html` draws them as the recipient's phone shows them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from runner.audience.chatids import ChatIdError, normalize_chat
from runner.campaign.load import load_campaign
from runner.cli._base import emit, user_errors
from runner.contract import DEFAULT_BASE_URL
from runner.errors import CampaignError, Problem
from runner.planning.planner import Planner
from runner.report.preview_html import preview_steps, render_preview_html


@click.command(
    epilog="""\b
Exit codes:
  0  shown
  1  invalid campaign, --to is not a recipient of it, or it is suppressed (nothing would be
     sent, nothing is written)
"""
)
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--to", "to", required=True, help="the recipient's chat id (phone, email, grp_..., or a,b list)"
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "html"]),
    default="text",
    show_default=True,
    help="html: the conversation as the phone shows it, iMessage "
    "and SMS-only side by side (one self-contained page)",
)
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the preview to this file instead of stdout.",
)
@click.option(
    "--base-url",
    envvar="BLOOIO_BASE_URL",
    default=DEFAULT_BASE_URL,
    metavar="URL",
    help="the API base URL shown in the requests [default: BLOOIO_BASE_URL if set, "
    f"else {DEFAULT_BASE_URL}]",
)
@user_errors()
def preview(file: str, to: str, fmt: str, out_file: Path | None, base_url: str) -> None:
    """Show the exact requests one recipient would get (no network, no API key)."""
    campaign = load_campaign(file)
    try:
        chat = normalize_chat(to, campaign.source.region)  # --to as the recipients file writes it
    except ChatIdError as err:
        raise CampaignError(Problem(f"--to: {err}", hint=err.hint)) from None
    planner = Planner(campaign, previews=0)
    if chat in planner.suppression:
        # Nothing is written to --out (there is no conversation to draw), so not a success: a
        # script that then opens the file must not find it missing without a word.
        raise CampaignError(
            Problem(
                f"{chat} is suppressed (opted out or excluded): nothing would be sent, so there is "
                "nothing to preview",
                file=file,
                hint="preview another recipient, or remove it from the suppression file if it is there by mistake",
            )
        )
    for rec, rendered in planner.recipients():
        if rec.chat == chat:
            reqs = planner.requests_for(rec, rendered)
            skipped = [r for r in rendered if r.body is None]
            break
    else:
        errors = [p for p in planner.problems if p.severity == "error"]
        if errors:
            raise CampaignError(errors)
        raise CampaignError(
            Problem(
                f"{chat} is not a recipient of this campaign",
                file=file,
                hint="use the phone/email as it appears in the recipients (any spacing or case)",
            )
        )
    if fmt == "html":
        steps = preview_steps(campaign.steps, reqs, {r.step.id: r.skipped or "" for r in skipped})
        emit(
            render_preview_html(campaign.id, chat, steps, schedule=campaign.schedule),
            out_file,
            "the preview",
        )
        return
    base = base_url.rstrip("/")
    docs: list[dict[str, Any]] = [
        {
            "step": r.step,
            "method": r.method,
            "url": base + r.path,
            "headers": {
                "Authorization": "Bearer $BLOOIO_API_KEY",
                "Content-Type": "application/json",
                "Idempotency-Key": r.key,
            },
            "body": r.body,
            "messages": r.messages,
            **({"reply_to_step": r.reply_to_step} if r.reply_to_step else {}),
            **({"variant": r.variant} if r.variant is not None else {}),
        }
        for r in reqs
    ]
    if fmt == "json":
        emit(
            json.dumps(
                {
                    "recipient": chat,
                    "requests": docs,
                    "skipped": [{"step": r.step.id, "reason": r.skipped} for r in skipped],
                },
                indent=2,
                ensure_ascii=False,
            )
            + "\n",
            out_file,
            "the preview",
        )
        return
    styled = out_file is None
    lines = [
        f"{len(docs)} request(s) for {chat}"
        + (f", {len(skipped)} step(s) skipped" if skipped else "")
    ]
    for d in docs:
        lines.append("")
        head = f"# step {d['step']}" + (f" (variant {d['variant']})" if "variant" in d else "")
        lines.append(
            (click.style(head, bold=True) if styled else head)
            + (f" ({d['messages']} messages)" if d["messages"] > 1 else "")
        )
        lines.append(f"{d['method']} {d['url']}")
        lines += [f"{k}: {v}" for k, v in d["headers"].items()]
        lines.append("")
        lines.append(json.dumps(d["body"], indent=2, ensure_ascii=False))
        if d.get("reply_to_step"):
            lines.append(
                f"(reply_to: the message_id of step '{d['reply_to_step']}', filled in at send time)"
            )
    for r in skipped:
        lines.append(f"\n# step {r.step.id}: skipped ({r.skipped})")
    emit("\n".join(lines) + "\n", out_file, "the preview", styled=styled)
