"""`campaign reach`: capability verdicts, the pure analysis, the cache, and the CLI against the
emulator (whose per-contact reach is the ground truth)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from runner.cli import main
from runner.emulator import EmulatorConfig, run_in_thread
from runner.run.reach import (
    IMESSAGE,
    PARTIAL,
    SMS_ONLY,
    UNKNOWN,
    UNREACHABLE,
    Audience,
    Capability,
    CapabilityCache,
    analyse,
    category,
    classify_capabilities,
    step_features,
)

KEY = "bl_reach_SECRET_1357"


@pytest.mark.parametrize(
    "status,body,kind",
    [
        (200, b'{"contact":"+1","type":"phone","capabilities":{"imessage":true,"sms":true}}', "ok"),
        (200, b"[]", "retry"),
        (400, b'{"message":"Invalid contact"}', "invalid"),
        (401, b"{}", "unauthorized"),
        (503, b'{"message":"No active number available"}', "retry"),
        (500, b"", "retry"),
    ],
)
def test_classify_capabilities(status, body, kind):
    assert classify_capabilities(status, body, {}, 0.0).kind == kind


def cap(contact, im, sms, invalid=None):
    return Capability(contact, im, sms, 0.0, invalid)


CAPS = {
    c.contact: c
    for c in [
        cap("+15550000001", True, True),
        cap("+15550000002", False, True),
        cap("+15550000003", False, False),
        cap("a@x.com", True, False),
        cap("b@x.com", False, False),
        cap("+15550000004", False, False, "Invalid contact"),
    ]
}


@pytest.mark.parametrize(
    "chat,expected",
    [
        ("+15550000001", IMESSAGE),
        ("+15550000002", SMS_ONLY),
        ("+15550000003", UNREACHABLE),
        ("a@x.com", IMESSAGE),
        ("b@x.com", UNREACHABLE),
        ("+15550000004", UNREACHABLE),
        ("+15550000001,a@x.com", IMESSAGE),
        ("+15550000001,+15550000002", PARTIAL),
        ("+15550000002,b@x.com", UNREACHABLE),
        ("+15559999999", UNKNOWN),
    ],
)
def test_category(chat, expected):
    assert category(chat, CAPS)[0] == expected


def test_step_features():
    assert step_features(
        {"text": "hi", "effect": "confetti", "use_typing_indicator": True}, False
    ) == {"effect", "typing_indicator"}
    assert step_features(
        {"parts": [{"text": "https://a.b", "link_preview": {"title": "t"}}]}, False
    ) == {"link_preview"}
    assert step_features({"text": "x"}, True) == {"reply"}
    assert step_features({"text": "x", "use_typing_indicator": False}, False) == frozenset()


def test_analysis_counts_and_drops_per_step():
    hello = frozenset({"effect"})
    audience = [
        Audience("+15550000001", {"hello": hello, "shop": frozenset({"link_preview"})}),
        Audience("+15550000002", {"hello": hello, "shop": frozenset({"link_preview"})}),
        Audience("+15550000001,+15550000002", {"hello": hello}),
        Audience("b@x.com", {"hello": hello}),
        Audience("+15550000003", {"shop": frozenset({"link_preview"})}),
    ]
    doc = analyse(audience, CAPS, skipped_groups=2, show_recipients=False)
    assert doc["counts"] == {IMESSAGE: 1, SMS_ONLY: 1, UNREACHABLE: 2, PARTIAL: 1, UNKNOWN: 0}
    assert doc["emails_without_imessage"] == 1 and doc["skipped_groups"] == 2
    assert doc["steps"]["hello"]["drops"]["effect"] == 1
    assert doc["steps"]["shop"]["drops"] == {
        "effect": 0,
        "link_preview": 1,
        "typing_indicator": 0,
        "reply": 0,
    }
    assert doc["steps"]["shop"][UNREACHABLE] == 1
    listed = {u["recipient"]: u["category"] for u in doc["unreachable"]}
    assert listed == {
        "+1555•••0001,+1555•••0002": PARTIAL,
        "b•••@x.com": UNREACHABLE,
        "+1555•••0003": UNREACHABLE,
    }
    shown = analyse(audience, CAPS, 0, show_recipients=True)
    assert "b@x.com" in {u["recipient"] for u in shown["unreachable"]}


def test_cache_respects_age_and_base_url(tmp_path):
    cache = CapabilityCache(tmp_path, "http://a/v2/api")
    cache.put([Capability("+1", True, True, 1000.0), Capability("+2", False, True, 100.0)])
    assert set(cache.fresh(["+1", "+2", "+3"], 500, 1200.0)) == {"+1"}
    assert set(cache.fresh(["+1", "+2"], 5000, 1200.0)) == {"+1", "+2"}
    cache.close()
    other = CapabilityCache(tmp_path, "http://b/v2/api")
    assert other.fresh(["+1"], 5000, 1200.0) == {}
    other.close()


# -- the CLI against the emulator -----------------------------------------------------------
def write_campaign(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "reach.yaml"
    phones = "\n".join(f'  - to: "+1555700{i:04d}"' for i in range(30))
    path.write_text(f"""\
version: 1
id: reachy
sender: {{from_number: "+15551234567", use_typing_indicator: true}}
recipients:
{phones}
  - to: "ada@example.com"
  - to: "bob@example.com"
  - to: ["+15557000001", "+15557000002"]
  - to: grp_abc123
steps:
  - id: hello
    text: "Hi"
    effect: confetti
  - id: shop
    text: "https://shop.example.com"
    link_preview: {{title: "Sale"}}
""")
    return path


def run(emu, *args: str, key: str = KEY) -> subprocess.CompletedProcess:
    """`campaign *args` in this process (a subprocess would only add its start-up)."""
    env = {"BLOOIO_BASE_URL": emu.base_url, "BLOOIO_API_KEY": key}
    result = CliRunner().invoke(main, list(args), env=env)
    if isinstance(result.exception, Exception):
        raise result.exception  # what a user would see as a traceback
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def test_reach_matches_the_emulator_and_is_cached(tmp_path):
    config = EmulatorConfig(
        api_key=KEY,
        seed=13,
        share_imessage=0.5,
        share_sms=0.4,
        share_rcs=0.1,
        p_unreachable=0.1,
        unreachable=["bob@example.com"],
    )
    with run_in_thread(config) as emu:
        campaign = write_campaign(tmp_path / "c")
        state = tmp_path / "state"
        r = run(
            emu,
            "reach",
            str(campaign),
            "--state",
            str(state),
            "--format",
            "json",
            "--rate",
            "unlimited",
        )  # the default pace (10/s) is for real accounts
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        asked = emu.stats()["requests"]
        assert asked == 32  # 30 phones + 2 emails; list members are among the phones
        # Ground truth: ask the emulator about every single-contact recipient directly.
        truth = {IMESSAGE: 0, SMS_ONLY: 0, UNREACHABLE: 0}
        with emu.client() as client:
            for contact in [f"+1555700{i:04d}" for i in range(30)] + [
                "ada@example.com",
                "bob@example.com",
            ]:
                caps = client.get(f"/contacts/{contact}/capabilities").json()["capabilities"]
                if caps["imessage"]:
                    truth[IMESSAGE] += 1
                elif caps["sms"] and "@" not in contact:
                    truth[SMS_ONLY] += 1
                else:
                    truth[UNREACHABLE] += 1
        group = (
            doc["counts"][IMESSAGE]
            + doc["counts"][PARTIAL]
            + doc["counts"][UNREACHABLE]
            + doc["counts"][SMS_ONLY]
            - sum(truth.values())
        )
        assert group == 1  # the list counts once, by its members
        assert doc["counts"][SMS_ONLY] == truth[SMS_ONLY] > 0
        assert doc["recipients"] == 33 and doc["skipped_groups"] == 1
        assert doc["emails_without_imessage"] == 1
        assert doc["steps"]["hello"]["drops"]["effect"] == truth[SMS_ONLY]
        assert doc["steps"]["shop"]["drops"]["link_preview"] == truth[SMS_ONLY]
        asked = emu.stats()["requests"]  # now including the ground truth's own questions
        text = run(emu, "reach", str(campaign), "--state", str(state))
        assert text.returncode == 0 and "32 from the cache" in text.stdout
        assert emu.stats()["requests"] == asked  # nothing asked again
        assert "+1555700" not in text.stdout and "b•••@example.com" in text.stdout
        assert "grp_" in text.stdout and "skipped" in text.stdout
        shown = run(emu, "reach", str(campaign), "--state", str(state), "--show-recipients")
        assert "bob@example.com" in shown.stdout
        time.sleep(1.1)
        again = run(
            emu,
            "reach",
            str(campaign),
            "--state",
            str(state),
            "--max-age",
            "1s",
            "--rate",
            "unlimited",
        )
        assert again.returncode == 0 and emu.stats()["requests"] == asked + 32


def test_reach_stops_on_a_refused_key(tmp_path):
    with run_in_thread(EmulatorConfig(api_key=KEY)) as emu:
        campaign = write_campaign(tmp_path / "c")
        r = run(emu, "reach", str(campaign), "--state", str(tmp_path / "s"), key="bl_bad_0000")
        assert r.returncode == 3 and "401" in r.stdout and "bl_bad_0000" not in r.stdout
        bad = run(emu, "reach", str(campaign), "--state", str(tmp_path / "s"), "--max-age", "x")
        assert bad.returncode == 1 and "--max-age" in bad.stderr and "Traceback" not in bad.stderr
