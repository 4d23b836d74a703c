"""The dry run: `campaign plan` and `campaign preview`.

Golden files pin the exact requests of every example campaign byte for byte (regenerate with
UPDATE_GOLDEN=1, then read the diff: the goldens are checked against the API contract below
independently of the runner's code). The other tests pin behaviour users rely on: `when`
skipping, duplicate recipients, chat id normalisation, the output shapes of the design page,
the journal overlay, and that no API key ever reaches the output.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from click.testing import CliRunner

from runner.campaign.load import load_campaign
from runner.cli import main
from runner.errors import CampaignError
from runner.planning.keys import content_hash
from runner.planning.planner import Planner, iter_plan
from runner.store.journal import (
    ACCEPTED,
    FAILED,
    Attempt,
    Journal,
    Outcome,
)
from runner.store.paths import journal_path

ROOT = Path(__file__).resolve().parent.parent
CAMPAIGNS = ROOT / "campaigns"
GOLDEN = Path(__file__).resolve().parent / "golden"
EXAMPLES = sorted(CAMPAIGNS.glob("*.yaml"))
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"

# What the API accepts (read off the send-message contract; the runner must not be the source).
EFFECTS = {
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
}
BODY_FIELDS = {
    "text",
    "attachments",
    "use_typing_indicator",
    "from_number",
    "share_contact",
    "parts",
    "link_preview",
    "effect",
    "reply_to",
}
LINE_FIELDS = {"recipient", "step", "key", "method", "path", "body", "messages"}
KEY = re.compile(r"^[\x21-\x7e]{1,64}$")
SECRET = "sk_live_DO_NOT_PRINT_7f3a9c2e1b4d"


def cli(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def plan_out(path: Path, out: Path, *extra: str) -> bytes:
    result = cli("plan", str(path), "--out", str(out), "--state", str(out.parent / "state"), *extra)
    assert result.exit_code == 0, result.output
    return out.read_bytes()


def lines_of(data: bytes) -> list[dict[str, Any]]:
    """The request lines of a plan file (the first line is its header, see test_planfile.py)."""
    head, *lines = [json.loads(ln) for ln in data.decode("utf-8").splitlines()]
    assert head["plan_format"] == 1
    return lines


# --- golden files: every example campaign, byte for byte ------------------------------------


def test_every_example_campaign_has_a_golden_and_no_golden_is_orphaned() -> None:
    assert EXAMPLES, "no example campaigns found"
    if UPDATE:
        pytest.skip("regenerating goldens")
    assert sorted(p.stem for p in GOLDEN.glob("*.jsonl")) == sorted(p.stem for p in EXAMPLES)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_plan_out_matches_golden_byte_for_byte(example: Path, tmp_path: Path) -> None:
    got = plan_out(example, tmp_path / "plan.jsonl")
    golden = GOLDEN / f"{example.stem}.jsonl"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        golden.write_bytes(got)
    assert golden.is_file(), f"no golden for {example.name}: run with UPDATE_GOLDEN=1 and read it"
    assert got == golden.read_bytes()


def _goldens() -> list[Path]:
    return sorted(GOLDEN.glob("*.jsonl"))


def _no_nulls(value: Any, where: str) -> None:
    assert value is not None, f"null at {where} (strict OpenAPI 3.0 readers reject null)"
    if isinstance(value, dict):
        for k, v in value.items():
            _no_nulls(v, f"{where}.{k}")
    elif isinstance(value, list):
        for j, v in enumerate(value):
            _no_nulls(v, f"{where}[{j}]")


def _expected_messages(body: dict[str, Any]) -> int:
    if isinstance(body.get("text"), list):
        return len(body["text"])
    parts = body.get("parts") or []
    if any("link_preview" in p for p in parts):
        return len(parts)
    return 1


@pytest.mark.parametrize("golden", _goldens(), ids=lambda p: p.stem)
def test_golden_obeys_the_api_contract(golden: Path) -> None:
    raw = golden.read_bytes()
    assert raw.endswith(b"\n") and b"\r" not in raw
    keys: set[str] = set()
    sent: dict[str, list[str]] = {}
    head, *lines = raw.decode("utf-8").splitlines(keepends=True)
    assert json.loads(head)["requests"] == len(lines)
    for line in lines:
        obj = json.loads(line)
        # Canonical form: keys sorted, compact, UTF-8, one object a line.
        assert (
            line
            == json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n"
        )
        assert LINE_FIELDS <= set(obj) <= LINE_FIELDS | {"reply_to_step", "variant"}
        assert "variant" not in obj or isinstance(obj["variant"], str) and obj["variant"]
        body, chat = obj["body"], obj["recipient"]
        assert obj["method"] == "POST"
        assert set(body) <= BODY_FIELDS, set(body) - BODY_FIELDS
        _no_nulls(body, "body")
        # chat ids: normalised, then url-encoded with + @ , escaped
        assert obj["path"] == f"/chats/{quote(chat, safe='')}/messages"
        assert not set(obj["path"][len("/chats/") : -len("/messages")]) & set("+@,")
        members = chat.split(",")
        assert members == sorted(members) and len(set(members)) == len(members)
        assert all(m == m.strip() and ("@" not in m or m == m.lower()) for m in members)
        # effects: the API's spelling, never "none", never with parts
        if "effect" in body:
            assert body["effect"] in EFFECTS
            assert "parts" not in body
        assert obj["messages"] == _expected_messages(body)
        if isinstance(body.get("text"), list) or obj["messages"] > 1:
            assert "reply_to" not in body and "reply_to_step" not in obj
        if "reply_to_step" in obj:
            assert "reply_to" not in body, "reply_to is filled in at send time"
            assert obj["reply_to_step"] in sent.get(chat, []), "a reply's parent comes earlier"
        if "reply_to" in body:
            assert set(body["reply_to"]) in ({"message_id"}, {"guid", "part_index"}, {"guid"})
        lp = body.get("link_preview")
        if lp is not None:
            assert isinstance(body.get("text"), str) and re.fullmatch(r"https?://\S+", body["text"])
        for part in body.get("parts") or []:
            assert ("text" in part) != ("url" in part)
            assert "mention" not in part or "text" in part
            assert "name" not in part or "url" in part
            if obj["messages"] > 1:
                assert set(part) <= {"text", "link_preview"}
                assert re.fullmatch(r"https?://\S+", part["text"])
            if "link_preview" in part:
                assert len(part["link_preview"].get("title", "")) <= 200
                assert part["link_preview"].get("image_url", "https://").startswith("https://")
        assert KEY.match(obj["key"]) and obj["key"] not in keys
        keys.add(obj["key"])
        sent.setdefault(chat, []).append(obj["step"])


def _golden_lines(stem: str) -> list[dict[str, Any]]:
    path = GOLDEN / f"{stem}.jsonl"
    if not path.is_file():
        pytest.fail(f"missing golden {path.name}")
    return lines_of(path.read_bytes())


def _by(lines: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["recipient"], o["step"]): o for o in lines}


def test_golden_spring_sale_features() -> None:
    g = _by(_golden_lines("spring-sale"))
    hello = g[("+15551230001", "hello")]["body"]
    assert hello["effect"] == "invisible-ink"  # written "Invisible Ink"
    assert hello["attachments"] == ["https://cdn.example.com/spring/banner.jpg"]
    assert hello["from_number"] == "+15551234567" and hello["share_contact"] is False
    assert hello["use_typing_indicator"] is True
    multi = "+15551230002,bob@example.com"
    assert g[(multi, "hello")]["path"] == "/chats/%2B15551230002%2Cbob%40example.com/messages"
    assert g[("carol@example.org", "hello")]["path"] == "/chats/carol%40example.org/messages"
    # `when: code != ""` is false for Carol: no request, nothing else lost
    assert ("carol@example.org", "code") not in g
    assert {s for (c, s) in g if c == "carol@example.org"} == {
        "hello",
        "shop",
        "picks",
        "last-call",
    }
    code = g[("grp_7f3a9c2e1b4d", "code")]["body"]
    assert code["parts"] == [
        {"text": "Your personal code: CREW10"},
        {"url": "https://cdn.example.com/codes/CREW10.png", "name": "CREW10.png"},
    ]
    picks = g[("+15551230001", "picks")]
    assert picks["messages"] == 2 and "effect" not in picks["body"]
    last = g[("+15551230001", "last-call")]
    assert last["reply_to_step"] == "hello" and "reply_to" not in last["body"]
    assert g[("+15551230001", "shop")]["body"]["link_preview"] == {
        "title": "Spring sale: 20% off everything",
        "image_url": "https://cdn.example.com/spring/hero.png",
    }
    assert len(g) == 19 and sum(o["messages"] for o in g.values()) == 23


def test_golden_store_opening_features() -> None:
    g = _by(_golden_lines("store-opening-staff"))
    brief = g[("grp_a1b2c3d4e5f6", "briefing")]["body"]
    assert "effect" not in brief  # `effect: none` is omitted, not sent as "none" or null
    assert brief["parts"][0] == {"text": "@Dana", "mention": "+15554000001"}
    assert brief["parts"][2] == {
        "url": "https://ops.example.com/rota/riverside.pdf",
        "name": "Riverside rota.pdf",
    }
    assert g[("grp_c3d4e5f6a1b2", "briefing")]["body"]["parts"][2]["url"].endswith("/old-town.pdf")
    assert g[("grp_a1b2c3d4e5f6", "kickoff-thread")]["body"]["reply_to"] == {
        "message_id": "msg_5b0e7c1d2a3f"
    }
    floor = g[("grp_a1b2c3d4e5f6", "floorplan-thread")]["body"]
    assert floor["reply_to"] == {
        "guid": "p:0/0F6E2B9A-4C1D-4E7B-8A3F-2D5C6B7A8E91",
        "part_index": 0,
    }
    assert floor["attachments"][1] == {
        "url": "https://ops.example.com/handbook/opening-day.pdf",
        "name": "Opening-day handbook.pdf",
    }
    assert g[("grp_a1b2c3d4e5f6", "good-luck")]["body"]["effect"] == "fireworks"
    assert all(o["path"] == f"/chats/{o['recipient']}/messages" for o in g.values())


def test_golden_vip_drop_features() -> None:
    g = _by(_golden_lines("vip-midnight-drop"))
    chats = {c for c, _ in g}
    assert len(chats) == 18 and not chats & {"+15552000007", "+15552000013"}  # suppressed
    teaser = g[("+15552000001", "teaser")]
    assert teaser["messages"] == 2 and teaser["body"]["effect"] == "spotlight"
    assert teaser["body"]["text"] == [
        "Ada, the Midnight Runner drops tonight.",
        "Northwind Running VIPs get first pick, in your size (9).",
    ]
    # an empty CSV cell is "": `size or 'any size'` falls back
    assert g[("+15552000004", "teaser")]["body"]["text"][1].endswith("(any size).")
    # braces-style `when`: gold tier with a code only
    gold = {c for c, s in g if s == "gold-code"}
    assert gold == {
        "+15552000001",
        "+15552000003",
        "+15552000005",
        "+15552000009",
        "+15552000011",
        "+15552000015",
        "+15552000017",
        "+15552000019",
    }
    assert g[("+15552000001", "last-pairs")]["reply_to_step"] == "drop"
    assert (
        g[("+15552000001", "drop")]["body"]["text"]
        == "https://shop.example.com/drops/midnight-runner?ref=vip"
    )
    # the pool: one number per chat, the same for every step of that chat
    pool = {"+15551234567", "+15551234568", "+15551234569"}
    for chat in chats:
        numbers = {o["body"]["from_number"] for (c, _), o in g.items() if c == chat}
        assert len(numbers) == 1 and numbers <= pool
    assert len({o["body"]["from_number"] for o in g.values()}) > 1


def test_golden_members_renewal_features() -> None:
    g = _by(_golden_lines("members-renewal"))
    chats = [o["recipient"] for o in _golden_lines("members-renewal") if o["step"] == "reminder"]
    # the blank JSONL line is skipped; the opted-out email is never messaged
    assert chats == [
        "+15553000001",
        "jordan.lee@example.com",
        "+15553000003,+15553000004",
        "+15553000005",
        "+15553000007",
    ]
    alex = g[("+15553000001", "reminder")]["body"]
    assert alex["text"].startswith(
        "Hi Alex, your Harbor Fitness Plus membership ($49/month) renews May 1."
    )
    assert alex["use_typing_indicator"] is False and alex["from_number"] == "+15551234570"
    assert g[("+15553000001", "follow-up")]["body"]["use_typing_indicator"] is True  # step wins
    # `when: renews_on is defined`: Morgan has none; invoice only where there is an invoice id
    assert ("+15553000005", "follow-up") not in g
    assert {c for c, s in g if s == "invoice"} == {"+15553000007"}
    inv = g[("+15553000007", "invoice")]["body"]
    assert inv["attachments"] == [
        {
            "url": "https://billing.example.org/invoices/INV-2026-0412.pdf",
            "name": "INV-2026-0412.pdf",
        }
    ]


# --- determinism ----------------------------------------------------------------------------


def test_second_out_is_byte_identical(tmp_path: Path) -> None:
    src = CAMPAIGNS / "spring-sale.yaml"
    first = plan_out(src, tmp_path / "a.jsonl")
    second = plan_out(src, tmp_path / "a.jsonl")  # overwrite in place
    third = plan_out(src, tmp_path / "b.jsonl", "--format", "json")
    assert first == second == third
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")], "temp files left"


def test_real_subprocess_with_another_hash_seed_gives_the_same_bytes(tmp_path: Path) -> None:
    """A different process (another PYTHONHASHSEED, as on another machine) writes the same file."""
    example = CAMPAIGNS / "vip-midnight-drop.yaml"
    in_process = plan_out(example, tmp_path / "in.jsonl")
    env = {k: v for k, v in os.environ.items() if k != "BLOOIO_API_KEY"}
    env.update(PYTHONHASHSEED="12345", BLOOIO_BASE_URL="http://127.0.0.1:9")
    out = tmp_path / "sub.jsonl"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "runner",
            "plan",
            str(example),
            "--out",
            str(out),
            "--state",
            str(tmp_path / "state"),
            "--format",
            "markdown",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert out.read_bytes() == in_process
    assert proc.stdout.startswith("### Campaign plan: `vip-midnight-drop`")
    assert not (tmp_path / ".runner").exists(), "a dry run creates no state"


# --- summaries: text, markdown, json --------------------------------------------------------


def test_json_summary_has_the_design_page_shape() -> None:
    result = cli(
        "plan", str(CAMPAIGNS / "spring-sale.yaml"), "--format", "json", "--state", "/nonexistent"
    )
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert {
        "campaign",
        "recipients",
        "requests",
        "messages",
        "skipped",
        "steps",
        "warnings",
        "previews",
    } <= set(doc)
    assert (
        doc["campaign"],
        doc["recipients"],
        doc["requests"],
        doc["messages"],
        doc["skipped"],
    ) == ("spring-sale-2026", 4, 19, 23, 1)
    assert doc["steps"] == {
        "hello": {"requests": 4, "messages": 4, "skipped": 0},
        "shop": {"requests": 4, "messages": 4, "skipped": 0},
        "code": {"requests": 3, "messages": 3, "skipped": 1},
        "picks": {"requests": 4, "messages": 8, "skipped": 0},
        "last-call": {"requests": 4, "messages": 4, "skipped": 0},
    }
    assert list(doc["steps"]) == ["hello", "shop", "code", "picks", "last-call"]  # campaign order
    assert all(isinstance(w, str) for w in doc["warnings"])
    assert any("email" in w for w in doc["warnings"])
    assert len(doc["previews"]) == 3
    first = doc["previews"][0]
    assert first["recipient"] == "+1555•••0001"  # masked by default
    assert [s["step"] for s in first["steps"]] == ["hello", "shop", "code", "picks", "last-call"]
    assert first["steps"][0]["body"]["effect"] == "invisible-ink"
    carol = doc["previews"][2]
    assert {"step": "code", "skipped": "when"} in carol["steps"]
    assert "carol" not in result.stdout  # the email is masked too


def test_markdown_summary_fits_a_pull_request_comment() -> None:
    result = cli(
        "plan",
        str(CAMPAIGNS / "spring-sale.yaml"),
        "--format",
        "markdown",
        "--state",
        "/nonexistent",
    )
    assert result.exit_code == 0
    md = result.stdout
    assert md.startswith("### Campaign plan: `spring-sale-2026` (revision 1)\n")
    assert "| recipients | 4 |" in md and "| requests | 19 |" in md and "| messages | 23 |" in md
    assert "| step | requests | messages | skipped | effect |" in md
    assert "| `code` | 3 | 3 | 1 | — |" in md
    assert "| `picks` | 4 | 8 | 0 | — |" in md
    assert "| `hello` | 4 | 4 | 0 | invisible-ink |" in md
    assert "**Warnings**" in md and "<details>" in md and md.rstrip().endswith("</details>")
    # every row of a table has the column count of its header (blank lines separate tables)
    for block in md.split("\n\n"):
        rows = [ln for ln in block.splitlines() if ln.startswith("|")]
        if rows:
            assert all(r.endswith("|") for r in rows)
            widths = {len(re.split(r"(?<!\\)\|", r)) for r in rows}
            assert len(widths) == 1, rows
    assert "+15551230001" not in md and "bob@example.com" not in md
    assert "<summary>" in md


def test_markdown_escapes_what_would_break_a_table_or_inject_html(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.yaml",
        """
        version: 1
        id: md-escape
        recipients:
          - to: "+15551230001"
            vars: {name: "A|B <img src=x onerror=alert(1)>"}
        steps:
          - id: s
            text: "Hi {{ name }}"
        """,
    )
    md = cli("plan", str(path), "--format", "markdown", "--state", str(tmp_path)).stdout
    assert "<img" not in md and "&lt;img src=x onerror=alert(1)&gt;" in md
    assert "A\\|B" in md


def test_text_summary_and_show_recipients() -> None:
    masked = cli("plan", str(CAMPAIGNS / "spring-sale.yaml"), "--state", "/nonexistent")
    assert masked.exit_code == 0
    assert "Plan for spring-sale-2026 (revision 1)" in masked.stdout
    assert "+15551230001" not in masked.stdout and "+1555•••0001" in masked.stdout
    shown = cli(
        "plan", str(CAMPAIGNS / "spring-sale.yaml"), "--show-recipients", "--state", "/nonexistent"
    )
    assert "+15551230001" in shown.stdout
    none = cli("plan", str(CAMPAIGNS / "spring-sale.yaml"), "--previews", "0", "--format", "json")
    assert json.loads(none.stdout)["previews"] == []


def test_from_number_pool_is_shown(tmp_path: Path) -> None:
    example = CAMPAIGNS / "vip-midnight-drop.yaml"
    doc = json.loads(cli("plan", str(example), "--format", "json", "--state", str(tmp_path)).stdout)
    pool = doc["from_numbers"]
    assert set(pool) <= {"+15551234567", "+15551234568", "+15551234569"}
    assert sum(pool.values()) == doc["recipients"] == 18
    assert doc["suppressed"] == 2
    text = cli("plan", str(example), "--state", str(tmp_path)).stdout
    assert "from-number pool" in text


# --- behaviour users rely on ----------------------------------------------------------------


def test_when_bare_and_braced_and_reply_to_a_skipped_step(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.yaml",
        """
        version: 1
        id: when-test
        recipients:
          - to: "+15551230001"
            vars: {vip: true, code: A1}
          - to: "+15551230002"
            vars: {vip: false}
          - to: "+15551230003"
            vars: {vip: true, code: ""}
        steps:
          - id: hello
            text: "Hi"
          - id: vip
            when: vip
            text: "VIP only"
          - id: code
            when: "{{ code is defined and code }}"
            text: "Code {{ code }}"
          - id: thanks
            text: "Thanks for using your code"
            reply_to: {step: code}
        """,
    )
    doc = json.loads(cli("plan", str(path), "--format", "json", "--state", str(tmp_path)).stdout)
    assert doc["steps"]["vip"] == {"requests": 2, "messages": 2, "skipped": 1}
    assert doc["steps"]["code"] == {"requests": 1, "messages": 1, "skipped": 2}
    assert doc["steps"]["thanks"] == {"requests": 1, "messages": 1, "skipped": 2}
    assert doc["skipped"] == 5 and doc["requests"] == 7
    second = doc["previews"][1]["steps"]
    assert {"step": "thanks", "skipped": "reply_parent_skipped"} in second
    assert {"step": "code", "skipped": "when"} in second
    lines = lines_of(plan_out(path, tmp_path / "o.jsonl"))
    assert [(o["recipient"][-1], o["step"]) for o in lines] == [
        ("1", "hello"),
        ("1", "vip"),
        ("1", "code"),
        ("1", "thanks"),
        ("2", "hello"),
        ("3", "hello"),
        ("3", "vip"),
    ]


def test_bare_and_braced_when_mean_the_same(tmp_path: Path) -> None:
    template = """
        version: 1
        id: when-forms
        recipients:
          - {{to: "+15551230001", vars: {{n: 1}}}}
          - {{to: "+15551230002", vars: {{n: 5}}}}
          - {{to: "+15551230003"}}
        steps:
          - id: big
            when: {cond}
            text: "n is big"
        """
    bare = write(tmp_path / "bare" / "c.yaml", template.format(cond="n is defined and n > 2"))
    braced = write(
        tmp_path / "braced" / "c.yaml", template.format(cond='"{{ n is defined and n > 2 }}"')
    )
    a = plan_out(bare, tmp_path / "bare" / "o.jsonl")
    b = plan_out(braced, tmp_path / "braced" / "o.jsonl")
    # The requests are the same; the headers differ only in the campaign file's digest.
    assert lines_of(a) == lines_of(b) and [o["recipient"] for o in lines_of(a)] == ["+15551230002"]


def test_duplicates_are_warned_and_sent_once_first_row_wins(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.yaml",
        """
        version: 1
        id: dup-test
        recipients:
          - to: "Ada@Example.com"
            vars: {name: first}
          - to: "+15551230002"
            vars: {name: other}
          - to: " ada@example.COM "
            vars: {name: second}
          - to: ["+15551230009", "bob@example.com"]
            vars: {name: group-first}
          - to: "BOB@example.com,+15551230009"
            vars: {name: group-second}
        steps:
          - id: s
            text: "Hi {{ name }}"
        """,
    )
    result = cli("plan", str(path), "--format", "json", "--state", str(tmp_path))
    doc = json.loads(result.stdout)
    assert doc["recipients"] == 3 and doc["duplicates"] == 2 and doc["requests"] == 3
    warning = next(w for w in doc["warnings"] if "repeat" in w)
    assert "c.yaml:8" in warning and "first row's variables win" in warning
    lines = lines_of(plan_out(path, tmp_path / "o.jsonl"))
    assert [(o["recipient"], o["body"]["text"]) for o in lines] == [
        ("ada@example.com", "Hi first"),
        ("+15551230002", "Hi other"),
        ("+15551230009,bob@example.com", "Hi group-first"),
    ]
    assert lines[2]["path"] == "/chats/%2B15551230009%2Cbob%40example.com/messages"
    md = cli("plan", str(path), "--format", "markdown", "--state", str(tmp_path)).stdout
    assert "| duplicate rows (sent once) | 2 |" in md


def test_csv_duplicates_and_suppression_are_counted(tmp_path: Path) -> None:
    write(
        tmp_path / "list.csv",
        """
        phone,name
        +15551230001,Ada
        +15551230002,Ben
        +15551230001,Ada again
        +15551230003,Cy
        """,
    )
    write(
        tmp_path / "stop.txt",
        """
        # opted out
        +15551230002
        """,
    )
    path = write(
        tmp_path / "c.yaml",
        """
        version: 1
        id: csv-test
        recipients: {file: list.csv, to: phone}
        suppress: [stop.txt]
        steps:
          - id: s
            text: "Hi {{ name }}"
        """,
    )
    doc = json.loads(cli("plan", str(path), "--format", "json", "--state", str(tmp_path)).stdout)
    assert (doc["recipients"], doc["duplicates"], doc["suppressed"], doc["requests"]) == (
        2,
        1,
        1,
        2,
    )
    lines = lines_of(plan_out(path, tmp_path / "o.jsonl"))
    assert [o["body"]["text"] for o in lines] == ["Hi Ada", "Hi Cy"]


def test_invalid_campaign_exits_1_without_a_traceback(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.yaml",
        """
        version: 1
        id: bad
        recipients:
          - to: "+15551230001"
            vars: {name: A}
          - to: "+15551230002"
        steps:
          - id: s
            text: "Hi {{ name }}"
        """,
    )
    result = cli("plan", str(path), "--state", str(tmp_path))
    assert result.exit_code == 1
    assert "'name' is undefined" in result.output and not isinstance(result.exception, Exception)
    unquoted = write(
        tmp_path / "n.yaml",
        """
        version: 1
        id: bad
        recipients:
          - to: +15551230001
        steps:
          - {id: s, text: Hi}
        """,
    )
    result = cli("plan", str(unquoted), "--state", str(tmp_path))
    assert result.exit_code == 1 and "quote" in result.output


def test_invalid_campaign_leaves_no_plan_file(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.yaml",
        """
        version: 1
        id: bad
        recipients:
          - to: "+15551230001"
            vars: {name: A}
          - to: "+15551230002"
        steps:
          - id: s
            text: "Hi {{ name }}"
        """,
    )
    out = tmp_path / "plan.jsonl"
    result = cli("plan", str(path), "--out", str(out), "--state", str(tmp_path))
    assert result.exit_code == 1
    assert not out.exists()


def test_plan_is_streamed_one_recipient_at_a_time(tmp_path: Path) -> None:
    """The first request comes out before later rows are read: a broken row far down the file
    is only found when the stream gets there."""
    rows = ["to,name"] + [f"+1555{i:07d},n{i}" for i in range(1, 2001)] + ["+15559999999,a,b"]
    (tmp_path / "r.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    path = write(
        tmp_path / "c.yaml",
        """
        version: 1
        id: stream
        recipients: {file: r.csv}
        steps:
          - {id: s, text: "Hi {{ name }}"}
        """,
    )
    planner = Planner(load_campaign(path), previews=0, suppression=None)
    stream = planner.requests()
    first = next(stream)
    assert first.recipient == "+15550000001" and planner.summary.rows == 1
    assert planner.problems == []
    assert sum(1 for _ in stream) == 1999
    assert "cells" in planner.problems[0].message
    with pytest.raises(CampaignError):
        list(iter_plan(load_campaign(path)))


def test_plan_memory_does_not_grow_with_the_recipient_count(tmp_path: Path) -> None:
    def peak(n: int) -> int:
        d = tmp_path / str(n)
        d.mkdir()
        (d / "r.csv").write_text("to,name\n" + "".join(f"+1555{i:07d},n{i}\n" for i in range(n)))
        path = write(
            d / "c.yaml",
            """
            version: 1
            id: mem
            recipients: {file: r.csv}
            steps:
              - {id: a, text: "Hi {{ name }}, this is a message of moderate length."}
              - {id: b, text: ["one {{ name }}", "two {{ name }}"]}
            """,
        )
        campaign = load_campaign(path)
        tracemalloc.start()
        try:
            with open(d / "o.jsonl", "w", encoding="utf-8") as fh:
                from runner.planning.planner import dump_line

                for req in iter_plan(campaign, previews=0):
                    fh.write(dump_line(req))
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(300), peak(2_000)
    # Keeping the requests would cost ~1 KB each (3,400 more of them: ~3 MB); the dedup set of
    # hashes costs well under 100 bytes a row.
    assert large - small < 500_000, (small, large)


# --- preview --------------------------------------------------------------------------------


def test_preview_prints_the_exact_requests_and_never_the_api_key(tmp_path: Path) -> None:
    env = {"BLOOIO_API_KEY": SECRET}
    result = cli(
        "preview",
        str(CAMPAIGNS / "spring-sale.yaml"),
        "--to",
        " BOB@example.com,+15551230002 ",
        env=env,
    )
    assert result.exit_code == 0
    out = result.output
    assert SECRET not in out
    assert out.startswith("5 request(s) for +15551230002,bob@example.com")
    assert (
        "POST https://api.blooio.com/v2/api/chats/%2B15551230002%2Cbob%40example.com/messages"
        in out
    )
    assert "Idempotency-Key: rnr1-328ae5f5d8f20d6e867fcac77a8f8c052ecac41d" in out
    assert "Content-Type: application/json" in out
    assert '"effect": "invisible-ink"' in out
    assert "(reply_to: the message_id of step 'hello', filled in at send time)" in out

    js = cli(
        "preview",
        str(CAMPAIGNS / "spring-sale.yaml"),
        "--to",
        "carol@example.org",
        "--format",
        "json",
        env={**env, "BLOOIO_BASE_URL": "http://127.0.0.1:8080/v2/api/"},
    )
    assert js.exit_code == 0 and SECRET not in js.output
    doc = json.loads(js.output)
    assert doc["skipped"] == [{"step": "code", "reason": "when"}]
    assert [r["step"] for r in doc["requests"]] == ["hello", "shop", "picks", "last-call"]
    hello = doc["requests"][0]
    assert hello["url"] == "http://127.0.0.1:8080/v2/api/chats/carol%40example.org/messages"
    assert hello["headers"]["Idempotency-Key"] == "rnr1-a83042fc2abcf5e9b4a3edf96018eecc8b7f57dd"
    assert doc["requests"][3]["reply_to_step"] == "hello"
    # the same bodies as the plan
    golden = _by(_golden_lines("spring-sale"))
    for r in doc["requests"]:
        assert r["body"] == golden[("carol@example.org", r["step"])]["body"]

    plan = cli(
        "plan",
        str(CAMPAIGNS / "spring-sale.yaml"),
        "--format",
        "json",
        "--state",
        str(tmp_path),
        env=env,
    )
    assert SECRET not in plan.output


def test_preview_unknown_recipient_and_bad_chat_id() -> None:
    result = cli("preview", str(CAMPAIGNS / "spring-sale.yaml"), "--to", "+15559999999")
    assert result.exit_code == 1 and "is not a recipient" in result.output
    result = cli("preview", str(CAMPAIGNS / "spring-sale.yaml"), "--to", "5551230001")
    assert (
        result.exit_code == 1
        and "E.164" in result.output
        and not isinstance(result.exception, Exception)
    )


def test_preview_of_a_suppressed_recipient(tmp_path: Path) -> None:
    example = CAMPAIGNS / "members-renewal.yaml"
    result = cli("preview", str(example), "--to", "Unsubscribed.Member@example.com")
    assert result.exit_code == 1 and "suppressed" in result.output


# --- journal overlay ------------------------------------------------------------------------


def _seed_journal(
    state: Path, campaign_id: str, rows: list[tuple[dict[str, Any], str, dict[str, Any]]]
) -> None:
    """rows: (plan line, status, body the earlier run sent)."""
    now = time.time()
    with Journal(journal_path(state, campaign_id)) as j:
        ops = []
        for line, status, body in rows:
            ops.append(
                Attempt(
                    line["key"],
                    line["recipient"],
                    line["step"],
                    1,
                    0,
                    0,
                    line["messages"],
                    content_hash(body),
                    None,
                    now,
                )
            )
            ops.append(Outcome(line["key"], status, message_id="msg_x", now=now))
        j.apply(ops)


def test_journal_overlay_marks_accepted_and_counts_older_content(tmp_path: Path) -> None:
    src = CAMPAIGNS / "spring-sale.yaml"
    lines = _golden_lines("spring-sale")
    by = _by(lines)
    state = tmp_path / "state"
    hello1, hello2 = by[("+15551230001", "hello")], by[("+15551230002,bob@example.com", "hello")]
    shop1 = by[("+15551230001", "shop")]
    typo = {**hello2["body"], "text": "Hi team! Our sprng sale is live"}
    _seed_journal(
        state,
        "spring-sale-2026",
        [
            (hello1, ACCEPTED, hello1["body"]),
            (
                shop1,
                ACCEPTED,
                {**shop1["body"], "text": "https://shop.example.com/old"},
            ),  # older content
            (hello2, ACCEPTED, typo),  # older content, a second recipient
            (
                by[("carol@example.org", "hello")],
                FAILED,
                by[("carol@example.org", "hello")]["body"],
            ),
        ],
    )
    result = cli("plan", str(src), "--format", "json", "--state", str(state))
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["journal"] == {
        "accepted": 3,
        "older_content": 2,
        "earlier_revision": 0,
        "same_content_other_step": 0,
    }
    md = cli("plan", str(src), "--format", "markdown", "--state", str(state)).stdout
    assert "| already accepted (journal) | 3 requests |" in md
    assert "| to send | 16 requests |" in md
    assert "| got older content of a step | 2 recipients |" in md
    out = tmp_path / "o.jsonl"
    result = cli("plan", str(src), "--out", str(out), "--state", str(state))
    assert result.exit_code == 0
    marked = {
        (o["recipient"], o["step"]): o.get("journal_status") for o in lines_of(out.read_bytes())
    }
    assert marked[("+15551230001", "hello")] == "accepted"
    assert marked[("carol@example.org", "hello")] == "failed"
    assert marked[("+15551230001", "code")] is None
    # without the journal the file is the golden again
    assert (
        plan_out(src, tmp_path / "clean" / "o.jsonl") == (GOLDEN / "spring-sale.jsonl").read_bytes()
    )


def test_no_journal_no_overlay_and_nothing_created(tmp_path: Path) -> None:
    state = tmp_path / "state"
    doc = json.loads(
        cli(
            "plan", str(CAMPAIGNS / "spring-sale.yaml"), "--format", "json", "--state", str(state)
        ).stdout
    )
    assert "journal" not in doc
    assert not state.exists()


# --- CI integration: the workflow example and the pre-commit hooks, run for real -------------


def _bin_dir(tmp_path: Path) -> Path:
    """A `campaign` on PATH that is this interpreter's runner (no install step in a test)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "campaign"
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m runner "$@"\n', encoding="utf-8")
    exe.chmod(0o755)
    return bin_dir


def _repo(tmp_path: Path, *names: str) -> Path:
    """A campaign repository holding some of the example campaigns and their data."""
    repo = tmp_path / "repo"
    (repo / "campaigns").mkdir(parents=True)
    shutil.copytree(CAMPAIGNS / "data", repo / "campaigns" / "data")
    shutil.copytree(CAMPAIGNS / "suppression", repo / "campaigns" / "suppression")
    for name in names:
        shutil.copy(CAMPAIGNS / name, repo / "campaigns" / name)
    return repo


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    env["PATH"] = f"{_bin_dir(tmp_path)}{os.pathsep}{env.get('PATH', '')}"
    env["BLOOIO_API_KEY"] = SECRET  # must never show up anywhere
    env.update(extra)
    return env


def test_review_action_validates_and_writes_plans_to_the_step_summary(tmp_path: Path) -> None:
    """The example workflow's review step (action.yml runs action/campaign-review.sh)."""
    wf = yaml.safe_load((ROOT / "examples" / "github-workflow.yml").read_text(encoding="utf-8"))
    assert not (ROOT / ".github" / "workflows" / "campaigns-example.yml").exists()
    assert all("BLOOIO_API_KEY" not in json.dumps(s) for s in wf["jobs"]["review"]["steps"]), (
        "a dry run needs no key"
    )
    repo = _repo(tmp_path, *(p.name for p in EXAMPLES))
    summary = tmp_path / "summary.md"
    env = _env(
        tmp_path,
        GITHUB_STEP_SUMMARY=str(summary),
        CAMPAIGNS="campaigns",
        PLANS_DIR="plans",
        RUNNER_STATE=".runner",
        REVIEW_DIR=str(tmp_path / "review"),
    )

    def review() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "--noprofile", "--norc", str(ROOT / "action" / "campaign-review.sh")],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    reviewed = review()
    assert reviewed.returncode == 0, reviewed.stdout + reviewed.stderr
    assert f"{len(EXAMPLES)} of {len(EXAMPLES)} campaign file(s) valid" in reviewed.stdout
    md = summary.read_text(encoding="utf-8")
    assert "### Campaign plan: `spring-sale-2026` (revision 1)" in md
    assert "### Campaign plan: `store-opening-staff-briefing` (revision 1)" in md
    assert md.index("spring-sale-2026") < md.index("store-opening-staff-briefing")
    for example in EXAMPLES:
        assert f"### Campaign plan: `{load_campaign(example).id}`" in md
        plan = repo / "plans" / f"campaigns%2F{example.name}.jsonl"
        assert plan.read_bytes() == (GOLDEN / f"{example.stem}.jsonl").read_bytes()
    everything = md + reviewed.stdout + reviewed.stderr
    assert SECRET not in everything and "+15551230001" not in md

    # A broken campaign: validation annotates the file and line, and the job fails.
    write(
        repo / "campaigns" / "broken.yaml",
        """
        version: 1
        id: broken
        recipients:
          - to: "+15551230001"
        steps:
          - id: s
            text: "Hi"
            effect: Invisible Ink
            parts:
              - text: "a"
        """,
    )
    failed = review()
    assert failed.returncode == 1
    assert re.search(r"^::error file=campaigns/broken\.yaml,line=\d+", failed.stdout, re.M), (
        failed.stdout
    )


def test_pre_commit_hooks_run_on_campaign_files(tmp_path: Path) -> None:
    import shlex

    hooks = {
        h["id"]: h
        for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    }
    assert set(hooks) == {"campaign-validate", "campaign-plan"}
    repo = _repo(tmp_path, "spring-sale.yaml", "store-opening-staff.yaml")
    env = _env(tmp_path)
    for hook in hooks.values():
        assert hook["language"] == "python"
        pattern = re.compile(hook["files"])
        assert pattern.search("campaigns/spring-sale.yaml") and pattern.search(
            "campaigns/q3/launch.yml"
        )
        assert not pattern.search(".github/workflows/ci.yml") and not pattern.search(
            "campaigns/data/vip.csv"
        )

    def run(hook_id: str, *files: str) -> subprocess.CompletedProcess[str]:
        # What pre-commit does: the entry, split like a shell would, then the matching files.
        argv = shlex.split(hooks[hook_id]["entry"]) + list(files)
        return subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, timeout=120)

    good = ("campaigns/spring-sale.yaml", "campaigns/store-opening-staff.yaml")
    passed = {hook_id: run(hook_id, *good) for hook_id in hooks}
    for result in passed.values():
        assert result.returncode == 0, result.stdout + result.stderr
    assert passed["campaign-plan"].stdout.count("Plan for ") == 2
    write(
        repo / "campaigns" / "undefined.yaml",
        """
        version: 1
        id: undefined-var
        recipients:
          - to: "+15551230001"
        steps:
          - {id: s, text: "Hi {{ first_name }}"}
        """,
    )
    for hook_id in hooks:
        result = run(hook_id, good[0], "campaigns/undefined.yaml")
        assert result.returncode == 1
        assert "'first_name' is undefined" in result.stdout + result.stderr
