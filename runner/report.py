"""The run report: what the journal says about a campaign, as text, markdown or versioned JSON.

Built from the journal alone (the plan's per-step totals are stored with each run), so
``campaign report`` needs neither the network nor a re-render of 100k recipients. Recipients
are masked unless the caller asks to show them.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from runner.errors import CampaignError
from runner.journal import ACCEPTED, FAILED, Journal
from runner.mask import display_chat

REPORT_SCHEMA_VERSION = 1
EXAMPLES = 5  # recipients named per failure reason


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _reason(code: str | None, http_status: int | None) -> str:
    if code:
        return code
    return f"http_{http_status}" if http_status else "unknown"


def build_report(
    journal: Journal,
    *,
    show_recipients: bool = False,
    now: float | None = None,
) -> dict[str, Any]:
    """The report document for the journal's last run (its revision's requests)."""
    run = journal.last_run()
    if run is None:
        raise CampaignError(
            "no run has been recorded for this campaign yet",
            file=str(journal.path),
            hint="send it first: campaign send FILE",
        )
    revision = run["revision"]
    plan = run.get("plan") or {}
    planned_steps: dict[str, dict[str, int]] = plan.get("steps") or {}

    steps: dict[str, dict[str, int]] = {
        name: {"requests": c.get("requests", 0), "messages": c.get("messages", 0),
               "accepted": 0, "failed": 0, "pending": 0, "messages_accepted": 0}
        for name, c in planned_steps.items()
    }
    failures: dict[str, dict[str, Any]] = {}
    pending_reasons: Counter = Counter()
    seen: Counter = Counter()
    for e in journal.entries(revision):
        step = steps.setdefault(
            e.step, {"requests": 0, "messages": 0, "accepted": 0, "failed": 0, "pending": 0,
                     "messages_accepted": 0},
        )
        seen[e.step] += 1
        if e.status == ACCEPTED:
            step["accepted"] += 1
            step["messages_accepted"] += len(e.message_ids) if e.message_ids else e.messages
        elif e.status == FAILED:
            step["failed"] += 1
            reason = _reason(e.error_code, e.http_status)
            group = failures.setdefault(reason, {
                "reason": reason, "count": 0, "http_status": e.http_status,
                "message": e.error_message, "steps": Counter(), "examples": [],
            })
            group["count"] += 1
            group["steps"][e.step] += 1
            shown = display_chat(e.chat, show_recipients)
            if len(group["examples"]) < EXAMPLES and shown not in group["examples"]:
                group["examples"].append(shown)
        else:
            # Tried and unconfirmed: its last error says why (none = the process stopped).
            pending_reasons[_reason(e.error_code, e.http_status) if e.error_code or e.http_status
                            else "unconfirmed"] += 1
    not_tried = 0
    for name, step in steps.items():
        # Requests of the plan with no row yet were never tried: pending too.
        step["requests"] = max(step["requests"], seen[name])
        step["pending"] = step["requests"] - step["accepted"] - step["failed"]
        not_tried += step["requests"] - seen[name]
    if not_tried:
        pending_reasons["not_attempted"] += not_tried

    totals = {
        "requests": sum(s["requests"] for s in steps.values()),
        "messages": sum(s["messages"] for s in steps.values()),
        "accepted": sum(s["accepted"] for s in steps.values()),
        "failed": sum(s["failed"] for s in steps.values()),
        "pending": sum(s["pending"] for s in steps.values()),
        "messages_accepted": sum(s["messages_accepted"] for s in steps.values()),
    }
    counts = run.get("counts") or {}
    duration = counts.get("duration_s")
    if duration is None and run.get("ended_at"):
        duration = run["ended_at"] - run["started_at"]
    sent = counts.get("http_requests")
    run_doc = {
        "id": run["id"],
        "started_at": _iso(run["started_at"]),
        "ended_at": _iso(run.get("ended_at")),
        "finished": run.get("ended_at") is not None,
        "duration_s": round(duration, 3) if duration is not None else None,
        "exit_code": run.get("exit_code"),
        "stop_reason": run.get("stop_reason"),
        "options": run.get("options") or {},
        "http_requests": sent,
        "accepted_this_run": (counts.get("accepted", 0) - counts.get("already_accepted", 0))
        if counts else None,
        "achieved_rate": round(sent / duration, 2) if sent and duration else None,
    }
    if counts.get("cap"):
        run_doc["cap"] = counts["cap"]
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "generated_at": _iso(now if now is not None else datetime.now(UTC).timestamp()),
        "campaign": run["campaign"],
        "revision": revision,
        "runs": len(journal.runs()),
        "run": run_doc,
        "totals": totals,
        "steps": steps,
        "failures": sorted(
            ({**g, "steps": dict(g["steps"])} for g in failures.values()),
            key=lambda g: (-g["count"], g["reason"]),
        ),
        "pending": [{"reason": r, "count": n}
                    for r, n in sorted(pending_reasons.items(), key=lambda x: (-x[1], x[0]))],
        "recipients_masked": not show_recipients,
    }


# -- rendering -----------------------------------------------------------------------------
_STOP_WORDS = {
    None: "finished",
    "interrupted": "stopped by Ctrl-C (resumable: run send again)",
    "unauthorized": "stopped: the API key was refused (401); nothing was marked failed",
    "outbound_limit_reached": "stopped: the account's outbound limit was reached (resumable)",
    "new_conversation_limit_reached":
        "new conversations stopped at the plan's cap; existing ones continued (resumable)",
    "retries_exhausted": "some requests are still unconfirmed after retries (resumable)",
}


def _stop_text(run: dict[str, Any]) -> str:
    if not run["finished"]:
        return "did not finish (the process stopped); run send again to resume"
    return _STOP_WORDS.get(run["stop_reason"], f"stopped: {run['stop_reason']}")


def render_text(report: dict[str, Any]) -> str:
    r, t = report["run"], report["totals"]
    lines = [
        f"Campaign {report['campaign']} (revision {report['revision']}), run #{r['id']} "
        f"started {r['started_at']}: {_stop_text(r)}",
        f"  requests {t['requests']:,}: {t['accepted']:,} accepted, {t['failed']:,} failed, "
        f"{t['pending']:,} pending; messages accepted {t['messages_accepted']:,} "
        f"of {t['messages']:,}",
    ]
    if r["duration_s"] is not None:
        rate = f", {r['achieved_rate']:,} requests/s" if r["achieved_rate"] else ""
        lines.append(f"  this run: {r['http_requests'] or 0:,} HTTP requests in "
                     f"{r['duration_s']:,} s{rate}")
    if r.get("cap"):
        cap = r["cap"]
        extra = ", ".join(f"{k} {cap[k]}" for k in ("limit", "cap", "current") if k in cap)
        lines.append(f"  cap: {cap.get('code')}" + (f" ({extra})" if extra else ""))
    width = max([len(s) for s in report["steps"]] + [4])
    lines.append("Steps:")
    for name, s in report["steps"].items():
        lines.append(f"  {name:<{width}}  {s['requests']:>7,} requests  {s['accepted']:>7,} "
                     f"accepted  {s['failed']:>5,} failed  {s['pending']:>5,} pending")
    if report["failures"]:
        lines.append("Failures by reason:")
        for g in report["failures"]:
            status = f" (HTTP {g['http_status']})" if g["http_status"] else ""
            msg = f": {g['message']}" if g["message"] else ""
            lines.append(f"  {g['count']:>6,} × {g['reason']}{status}{msg}")
            lines.append(f"         e.g. {', '.join(g['examples'])}")
    if report["pending"]:
        lines.append("Pending by reason: " + ", ".join(
            f"{p['reason']} {p['count']:,}" for p in report["pending"]))
    return "\n".join(lines) + "\n"


def render_markdown(report: dict[str, Any]) -> str:
    r, t = report["run"], report["totals"]
    out = [
        f"## Campaign `{report['campaign']}` — revision {report['revision']}, run #{r['id']}",
        "",
        f"{_stop_text(r)[:1].upper()}{_stop_text(r)[1:]}. Started {r['started_at']}"
        + (f", {r['duration_s']} s, {r['achieved_rate']} requests/s." if r["achieved_rate"]
           else "."),
        "",
        "| | requests | accepted | failed | pending |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, s in report["steps"].items():
        out.append(f"| `{name}` | {s['requests']:,} | {s['accepted']:,} | {s['failed']:,} "
                   f"| {s['pending']:,} |")
    out.append(f"| **total** | {t['requests']:,} | {t['accepted']:,} | {t['failed']:,} "
               f"| {t['pending']:,} |")
    if report["failures"]:
        out += ["", "### Failures by reason", "", "| reason | HTTP | count | message | e.g. |",
                "|---|---:|---:|---|---|"]
        for g in report["failures"]:
            msg = (g["message"] or "").replace("|", "\\|")
            out.append(f"| `{g['reason']}` | {g['http_status'] or ''} | {g['count']:,} | {msg} "
                       f"| {', '.join(g['examples'])} |")
    if report["pending"]:
        out += ["", "Pending: " + ", ".join(f"`{p['reason']}` {p['count']:,}"
                                           for p in report["pending"])]
    return "\n".join(out) + "\n"


def render(report: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(report, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
    if fmt == "markdown":
        return render_markdown(report)
    return render_text(report)
