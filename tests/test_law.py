"""The law knows where the recipient is: the rules table, placing a number, legal hours in the
schedule gate (with the emulator and an injected clock), the team policy, SMS segments."""

from __future__ import annotations

import asyncio
import json
import textwrap
from dataclasses import astuple
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from runner.campaign.load import load_campaign
from runner.campaign.schedule import gate_for
from runner.errors import CampaignError
from runner.law.place import place_of, state_of
from runner.law.rules import hours_for, table, us_federal_holidays
from runner.law.segments import segments
from runner.planning.planner import plan_campaign
from runner.run.send import Executor, SendOptions
from runner.states import Wait
from runner.store.journal import Journal

pytest_plugins = ["emulator_fixtures"]

FL = "+13055550123"  # Miami: Florida, 08:00-20:00
CA = "+14155550123"  # San Francisco: federal 08:00-21:00
NY = ZoneInfo("America/New_York")
LA = ZoneInfo("America/Los_Angeles")


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def campaign_file(folder: Path, *recipients: str, extra: str = "", text: str = "Hi") -> Path:
    rows = "".join(f'  - to: "{r}"\n' for r in recipients)
    return write(
        folder,
        "c.yaml",
        f"version: 1\nid: law\nrecipients:\n{rows}{extra}"
        f"steps:\n  - id: hello\n    text: {json.dumps(text)}\n",
    )


# -- the table and the place -------------------------------------------------------------------


def test_every_row_of_the_rules_table_has_hours_a_source_and_the_date_read():
    t = table()
    assert t.federal.describe_hours() == "08:00-21:00" and "64.1200(c)(1)" in t.federal.source
    for code in ("FL", "OK", "MD", "WA", "CT", "TX", "AL", "LA", "RI"):
        rule = t.states[code]
        assert rule.source and rule.kind in ("statute", "secondary")
        date.fromisoformat(rule.read)
    assert "501.616(6)(a)" in t.states["FL"].source and t.states["FL"].cap == 3
    assert "19.158.040(2)" in t.states["WA"].source
    assert {c for c, r in t.states.items() if r.cap} == {"FL", "OK", "MD"}
    assert t.states["TX"].describe_hours() == "09:00-21:00, Sun 12:00-21:00"
    assert t.states["AL"].describe_hours() == "08:00-20:00, not Sun, not holidays"


def test_the_strictest_of_several_states_applies():
    assert hours_for(("FL",)).label == "FL 08:00-20:00"
    assert hours_for(()).label == "US 08:00-21:00"
    assert hours_for(("CT", "FL")).label == "CT+FL 09:00-20:00"


def test_federal_holidays_with_their_observed_days():
    days = us_federal_holidays(2026)
    assert date(2026, 11, 26) in days  # Thanksgiving: fourth Thursday
    assert date(2026, 7, 3) in days and date(2026, 7, 4) in days  # Saturday: observed Friday
    assert date(2026, 12, 8) not in days


def test_a_number_is_placed_by_its_area_code():
    assert place_of(FL).states == ("FL",) and place_of(FL).zones == ("America/New_York",)
    assert place_of(CA).states == ("CA",) and place_of(CA).us
    assert place_of("+12065550100").states == ("WA",)
    for nowhere in ("+15551230001", "+18005550100", "ada@example.com"):
        assert not place_of(nowhere).placed and not place_of(nowhere).us
    group = place_of(f"{FL},{CA}")
    assert group.states == ("CA", "FL") and len(group.zones) == 2
    assert state_of("Washington State") == "WA" and state_of("Miami, FL") == "FL"
    assert state_of("") is None


# -- the gate -----------------------------------------------------------------------------------


def _gate(tmp_path: Path, *recipients: str, extra: str = ""):
    campaign = load_campaign(campaign_file(tmp_path, *recipients, extra=extra))
    reqs, _ = plan_campaign(campaign, previews=0)
    gate = gate_for(campaign)
    assert gate is not None
    return reqs, gate


def test_florida_is_held_after_20_its_time_and_released_at_8(tmp_path):
    (req,), gate = _gate(tmp_path, FL)
    at = datetime(2026, 12, 8, 20, 30, tzinfo=NY).timestamp()
    state, due = astuple(gate(req, None, False, at))
    assert state == Wait.LAW
    assert datetime.fromtimestamp(due, tz=NY) == datetime(2026, 12, 9, 8, 0, tzinfo=NY)
    assert (
        gate(req, None, False, datetime(2026, 12, 8, 19, 59, tzinfo=NY).timestamp()).state
        == Wait.DUE
    )
    assert (
        gate(req, None, False, datetime(2026, 12, 8, 20, 0, tzinfo=NY).timestamp()).state
        == Wait.LAW
    )


def test_a_campaign_zone_does_not_move_the_recipient(tmp_path):
    """A Paris campaign zone: the Florida number still gets its own evening."""
    extra = 'schedule:\n  timezone: Europe/Paris\n  window: {start: "00:00", end: "23:59"}\n'
    (req,), gate = _gate(tmp_path, FL, extra=extra)
    assert req.zone == "America/New_York"
    assert (
        gate(req, None, False, datetime(2026, 12, 8, 20, 30, tzinfo=NY).timestamp()).state
        == Wait.LAW
    )


def test_hours_off_must_be_explicit_and_holds_nothing(tmp_path):
    write(tmp_path, "off.yaml", "hours: off\n")
    campaign = load_campaign(campaign_file(tmp_path, FL), policy=tmp_path / "off.yaml")
    (req,), _ = plan_campaign(campaign, previews=0)
    assert gate_for(campaign) is None  # nothing can hold a message


def test_a_team_window_holds_on_top_of_the_law(tmp_path):
    write(tmp_path, "team.yaml", 'hours: {start: "10:00", end: "18:00"}\n')
    campaign = load_campaign(campaign_file(tmp_path, CA), policy=tmp_path / "team.yaml")
    (req,), _ = plan_campaign(campaign, previews=0)
    gate = gate_for(campaign)
    assert (
        gate(req, None, False, datetime(2026, 12, 8, 9, 0, tzinfo=LA).timestamp()).state == Wait.LAW
    )
    assert (
        gate(req, None, False, datetime(2026, 12, 8, 12, 0, tzinfo=LA).timestamp()).state
        == Wait.DUE
    )


def test_with_the_emulator_and_an_injected_clock_nothing_goes_outside_legal_hours(
    tmp_path, make_emulator
):
    """Runs every 30 minutes over two days, starting at Florida's 20:00: the Florida numbers
    are never sent after 20:00 their time, the California ones never after 21:00 theirs, none
    is lost, and every one goes out at the first legal instant."""
    emu = make_emulator()
    people = [FL, "+13055550124", CA, "+14155550124", "+15551230001"]
    campaign = load_campaign(campaign_file(tmp_path, *people))
    reqs, _ = plan_campaign(campaign, previews=0)
    gate = gate_for(campaign)
    options = SendOptions(
        base_url=emu.base_url, concurrency=2, backoff_base=0.001, backoff_cap=0.002
    )
    start = datetime(2026, 12, 8, 20, 0, tzinfo=NY).astimezone(UTC)
    sent_at: dict[str, datetime] = {}
    with Journal(tmp_path / "law.sqlite") as journal:
        for step in range(0, 96):
            now = start + timedelta(minutes=30 * step)
            before = {m["chat"] for m in emu.messages()}
            ex = Executor(
                journal,
                api_key="test-key",
                options=options,
                gate=gate,
                wall=lambda now=now: now.timestamp(),
            )
            asyncio.run(ex.run(reqs, total=len(reqs)))
            for chat in {m["chat"] for m in emu.messages()} - before:
                sent_at[chat] = now
            if len(sent_at) == len(people):
                break
    assert sorted(sent_at) == sorted(people)
    for chat in (FL, "+13055550124"):
        local = sent_at[chat].astimezone(NY)
        assert 8 <= local.hour < 20 and local == datetime(2026, 12, 9, 8, 0, tzinfo=NY)
    for chat in (CA, "+14155550124"):
        local = sent_at[chat].astimezone(LA)
        assert local == datetime(2026, 12, 8, 17, 0, tzinfo=LA)  # 17:00 there: legal at once
    assert sent_at["+15551230001"] == start  # unplaceable: only the campaign's own rules


def test_california_is_never_sent_after_21_its_time(tmp_path):
    (req,), gate = _gate(tmp_path, CA)
    assert (
        gate(req, None, False, datetime(2026, 12, 8, 20, 59, tzinfo=LA).timestamp()).state
        == Wait.DUE
    )
    state, due = astuple(
        gate(req, None, False, datetime(2026, 12, 8, 21, 0, tzinfo=LA).timestamp())
    )
    assert state == Wait.LAW
    assert datetime.fromtimestamp(due, tz=LA) == datetime(2026, 12, 9, 8, 0, tzinfo=LA)


# -- plan ---------------------------------------------------------------------------------------


def test_plan_markdown_counts_what_the_law_holds_and_names_the_policy(tmp_path, campaign_cli):
    campaign_file(tmp_path, FL, CA, "+15551230001")
    at = datetime(2026, 12, 8, 20, 30, tzinfo=NY).astimezone(UTC).isoformat()
    out = campaign_cli("plan", "c.yaml", "--format", "markdown", "--at", at, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "| ↳ held by law (FL 08:00-20:00) | 1 |" in out.stdout
    assert "| due now | 2 |" in out.stdout
    assert "Policy: none (defaults) — hours legal" in out.stdout
    assert "1 recipient(s) cannot be placed in a US state" in out.stdout


def test_plan_keys_do_not_depend_on_the_law(tmp_path, campaign_cli):
    campaign_file(tmp_path, FL, CA)
    write(tmp_path, "off.yaml", "hours: off\n")
    at = ("--at", "2026-12-09T02:00:00Z")
    legal = campaign_cli("plan", "c.yaml", "--out", "a.jsonl", *at, cwd=tmp_path)
    off = campaign_cli(
        "plan", "c.yaml", "--out", "b.jsonl", "--policy", "off.yaml", *at, cwd=tmp_path
    )
    assert legal.returncode == off.returncode == 0
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert "OFF: no legal hours" in off.stdout and "held by law" not in off.stdout
    assert "held by law (FL 08:00-20:00): 1" in legal.stdout


# -- the team policy ----------------------------------------------------------------------------


def test_runner_yaml_at_the_git_root_applies_and_a_wider_window_names_its_line(
    tmp_path, campaign_cli
):
    (tmp_path / ".git").mkdir()
    write(
        tmp_path,
        "runner.yaml",
        """\
        # the team's rules
        hours:
          start: "09:00"
          end: "20:00"
        help_text: "Acme: help at acme.example. Msg&data rates may apply. Reply STOP to cancel."
        """,
    )
    sub = tmp_path / "campaigns"
    sub.mkdir()
    extra = 'schedule:\n  timezone: America/New_York\n  window: {start: "08:00", end: "20:00"}\n'
    campaign_file(sub, FL, extra=extra)
    out = campaign_cli("validate", "campaigns/c.yaml", cwd=tmp_path)
    assert out.returncode == 1
    assert "c.yaml:7" in out.stdout and "wider than the team policy's hours" in out.stdout
    assert "runner.yaml:3" in out.stdout  # the policy's hours, named
    with pytest.raises(CampaignError):
        load_campaign(sub / "c.yaml")


def test_a_policy_error_is_located_with_a_hint(tmp_path, campaign_cli):
    campaign_file(tmp_path, FL)
    write(
        tmp_path, "p.yaml", "hours: legal\nlimits:\n  - {messages: 0, per: 24h}\nmax_segmnts: 2\n"
    )
    out = campaign_cli("validate", "c.yaml", "--policy", "p.yaml", cwd=tmp_path)
    assert out.returncode == 1
    assert "p.yaml:3" in out.stdout and "limits[0].messages" in out.stdout
    assert "p.yaml:4" in out.stdout and "did you mean 'max_segments'" in out.stdout
    assert "not checked: its team policy p.yaml is invalid" in out.stdout
    plan = campaign_cli("plan", "c.yaml", "--policy", "p.yaml", cwd=tmp_path)
    assert plan.returncode == 1 and "Traceback" not in plan.stdout + plan.stderr


def test_validate_warns_when_the_policy_has_no_help_text(tmp_path, campaign_cli):
    campaign_file(tmp_path, FL)
    write(tmp_path, "p.yaml", "limits:\n  - {messages: 3, per: 24h}\noptout_words: [ALTO]\n")
    out = campaign_cli("validate", "c.yaml", "--policy", "p.yaml", cwd=tmp_path)
    assert out.returncode == 0, out.stdout
    assert "warning: the policy has no help_text" in out.stdout
    assert "team policy, hours legal" in out.stdout and "limits 3 per 24h" in out.stdout
    campaign = load_campaign(tmp_path / "c.yaml", policy=tmp_path / "p.yaml")
    assert "ALTO" in campaign.optout_words


# -- segments -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "count", "encoding"),
    [
        ("a" * 160, 1, "GSM-7"),
        ("a" * 161, 2, "GSM-7"),
        ("a" * 306, 2, "GSM-7"),
        ("a" * 307, 3, "GSM-7"),
        ("[" * 80, 1, "GSM-7"),
        ("[" * 81, 2, "GSM-7"),  # extension characters take two
        ("é" * 70, 1, "GSM-7"),
        ("’" * 70, 1, "UCS-2"),
        ("’" * 71, 2, "UCS-2"),
        ("’" * 134, 2, "UCS-2"),
        ("😀" * 35, 1, "UCS-2"),
        ("😀" * 36, 2, "UCS-2"),  # an emoji is two UTF-16 units
    ],
)
def test_sms_segments(text, count, encoding):
    seg = segments(text)
    assert (seg.count, seg.encoding) == (count, encoding)


def test_plan_names_the_character_that_forces_ucs2_and_warns_over_max_segments(
    tmp_path, campaign_cli
):
    campaign_file(tmp_path, FL, "ada@example.com", text="We’re open " + "x" * 70)
    write(tmp_path, "p.yaml", "max_segments: 1\nhelp_text: Help\n")
    out = campaign_cli("plan", "c.yaml", "--policy", "p.yaml", "--format", "markdown", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "U+2019 RIGHT SINGLE QUOTATION MARK) at character 3" in out.stdout
    assert "| `hello` | 2 | 2 | UCS-2 |" in out.stdout  # the phone only: emails have no SMS
    text = campaign_cli("plan", "c.yaml", "--policy", "p.yaml", cwd=tmp_path).stdout
    assert "step 'hello': 1 message(s) take more than the policy's max_segments 1" in text


# -- frequency caps -----------------------------------------------------------------------------


def _send_at(campaign, state: Path, when: datetime, emu) -> None:
    from runner.run.caps import caps_of
    from runner.store.paths import journal_path

    reqs, _ = plan_campaign(campaign, previews=0)
    caps = caps_of(campaign, state, when.timestamp())
    gate = gate_for(campaign, [caps])
    options = SendOptions(
        base_url=emu.base_url, concurrency=2, backoff_base=0.001, backoff_cap=0.002
    )
    state.mkdir(exist_ok=True)
    with Journal(journal_path(state, campaign.id)) as journal:
        run_id = journal.start_run(campaign.id, campaign.revision, {}, {})
        ex = Executor(
            journal,
            api_key="test-key",
            options=options,
            gate=gate,
            run_id=run_id,
            wall=lambda: when.timestamp(),
            on_accepted=caps.note,
        )
        result = asyncio.run(ex.run(reqs, total=len(reqs)))
        journal.finish_run(run_id, result.counts(), result.exit_code, None)


def test_two_campaigns_of_one_state_send_at_most_three_a_day_and_lose_none(
    tmp_path, make_emulator, campaign_cli
):
    emu = make_emulator()
    write(tmp_path, "p.yaml", "limits:\n  - {messages: 3, per: 24h}\nhelp_text: Help\n")
    chat = "+15551230001"
    camps = []
    for name in ("spring", "summer"):
        folder = tmp_path / name
        folder.mkdir()
        write(
            folder,
            "c.yaml",
            f'version: 1\nid: {name}\nrecipients:\n  - to: "{chat}"\n'
            "steps:\n  - id: one\n    text: One\n  - id: two\n    text: Two\n",
        )
        camps.append(load_campaign(folder / "c.yaml", policy=tmp_path / "p.yaml"))
    state = tmp_path / "state"
    t0 = datetime(2026, 12, 8, 15, 0, tzinfo=UTC)
    _send_at(camps[0], state, t0, emu)
    assert len(emu.messages()) == 2
    at = (t0 + timedelta(hours=1)).isoformat()
    plan = campaign_cli(
        "plan",
        str(tmp_path / "summer" / "c.yaml"),
        "--policy",
        "p.yaml",
        "--state",
        "state",
        "--at",
        at,
        cwd=tmp_path,
    )
    assert "capped (3 per 24h): 1" in plan.stdout, plan.stdout
    _send_at(camps[1], state, t0 + timedelta(hours=1), emu)
    assert len(emu.messages()) == 3  # the fourth is capped: it waits
    report = campaign_cli(
        "report", str(tmp_path / "summer" / "c.yaml"), "--state", "state", cwd=tmp_path
    )
    assert "1 scheduled (1 capped)" in report.stdout, report.stdout
    _send_at(camps[1], state, t0 + timedelta(hours=20), emu)
    assert len(emu.messages()) == 3
    _send_at(camps[1], state, t0 + timedelta(hours=24, seconds=2), emu)
    sent = sorted(m["body"]["text"] for m in emu.messages())
    assert sent == ["One", "One", "Two", "Two"]  # none lost


def test_a_florida_number_has_the_statutory_cap_without_a_policy(tmp_path):
    from runner.law.legal import Caps

    caps = Caps((), {FL: [1000.0, 2000.0, 3000.0], CA: [1000.0, 2000.0, 3000.0]})
    assert [h.label for h in caps.holds_for(FL, (NY,))] == ["FL: 3 per 24h"]
    assert caps.holds_for(CA, (LA,)) == []
    (hold,) = caps.holds_for(FL, (NY,))
    after = datetime.fromtimestamp(3500.0, tz=UTC)
    assert hold.next_open(after).timestamp() == 1000.0 + 86400 + 1


def test_the_policy_gives_send_and_track_their_help_and_confirmation_texts(tmp_path):
    from runner.run.answers import policy_answers

    write(
        tmp_path,
        "p.yaml",
        'help_text: "Acme: help at acme.example"\noptout_confirmation: "Acme: unsubscribed"\n',
    )
    campaign = load_campaign(campaign_file(tmp_path, FL), policy=tmp_path / "p.yaml")
    texts = policy_answers(campaign.policy)
    assert (texts.help_text, texts.optout_confirmation) == (
        "Acme: help at acme.example",
        "Acme: unsubscribed",
    )
    assert not policy_answers(load_campaign(tmp_path / "c.yaml").policy).any


def test_the_policy_schema_describes_every_key_and_its_example_is_a_valid_policy(tmp_path):
    from jsonschema import Draft202012Validator

    from runner.campaign.policy import load_policy
    from runner.campaign.schema import load_schema

    schema = load_schema("policy.schema.json")
    Draft202012Validator.check_schema(schema)
    for name, prop in schema["properties"].items():
        assert prop.get("title") and prop.get("description") and prop.get("examples"), name
    (example,) = schema["examples"]
    write(tmp_path, "runner.yaml", json.dumps(example))
    policy = load_policy(tmp_path / "runner.yaml")
    assert policy.limits[0].per_seconds == 86400 and policy.help_text


def test_validate_a_folder_checks_its_policy_and_does_not_call_it_skipped(tmp_path, campaign_cli):
    (tmp_path / ".git").mkdir()
    write(tmp_path, "runner.yaml", "hours: legal\nhelp_text: Help\n")
    campaign_file(tmp_path, FL)
    out = campaign_cli("validate", ".", cwd=tmp_path)
    assert out.returncode == 0, out.stdout
    assert "runner.yaml: team policy, hours legal" in out.stdout
    assert "skipped" not in out.stdout


def test_diff_counts_what_the_law_holds_and_names_the_policy(tmp_path):
    import subprocess

    from runner.report.diff import render_text
    from runner.run.diff_session import campaign_diff

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
            cwd=tmp_path,
            check=True,
            capture_output=True,
        )

    git("init", "-q", "-b", "main")
    campaign_file(tmp_path, FL, CA)
    write(tmp_path, "runner.yaml", "help_text: Help\nlimits:\n  - {messages: 5, per: 7d}\n")
    git("add", "-A")
    git("commit", "-q", "-m", "base")
    campaign_file(tmp_path, FL, CA, text="Hi again")
    at = datetime(2026, 12, 8, 20, 30, tzinfo=NY).isoformat()
    doc = campaign_diff(tmp_path / "c.yaml", base="HEAD", at=at)
    assert doc["law"]["held_by"] == {"held by law (FL 08:00-20:00)": 1}
    text = render_text(doc)
    assert "held by law (FL 08:00-20:00) at 2026-12-09T01:30:00Z: 1 messages" in text
    assert "runner.yaml, hours legal" in text and "limits 5 per 7d" in text


def test_the_compliance_page_shows_the_package_table_with_its_sources():
    page = (Path(__file__).resolve().parent.parent / "docs" / "compliance.md").read_text("utf-8")
    t = table()
    for rule in (t.federal, *t.states.values()):
        assert f"| {rule.describe_hours()} |" in page and rule.source in page, rule.code
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text("utf-8")
    assert "(docs/compliance.md)" in readme  # the front door links the page


def test_send_caps_across_campaigns_of_a_folder_or_postgresql_state(
    tmp_path, make_emulator, campaign_cli, state
):
    emu = make_emulator()
    env = {"BLOOIO_BASE_URL": emu.base_url, "BLOOIO_API_KEY": "test-key"}
    write(tmp_path, "p.yaml", "limits:\n  - {messages: 1, per: 24h}\nhelp_text: Help\n")
    for name in ("first", "second"):
        write(
            tmp_path,
            f"{name}.yaml",
            f"version: 1\nid: {name}\nrecipients:\n"
            '  - to: "+15551230001"\nsteps:\n  - id: hi\n    text: Hi\n',
        )
    args = ("--policy", "p.yaml", "--state", state)
    first = campaign_cli(
        "send", "first.yaml", "--yes", "--no-progress", *args, env=env, cwd=tmp_path
    )
    assert first.returncode == 0, first.stderr
    plan = campaign_cli("plan", "second.yaml", *args, env=env, cwd=tmp_path)
    assert "capped (1 per 24h): 1" in plan.stdout, plan.stdout
    second = campaign_cli(
        "send", "second.yaml", "--yes", "--no-progress", *args, env=env, cwd=tmp_path
    )
    assert second.returncode == 4, second.stderr  # capped: it waits, nothing lost
    assert len(emu.messages()) == 1
    assert state not in first.stdout + first.stderr or "://" not in state
