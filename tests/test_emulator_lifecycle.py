"""Delivery lifecycle, reach, message lists and inbound replies of the emulator."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from runner.emulator import EmulatorConfig, ManualClock

pytest_plugins = ["emulator_fixtures"]

PHONE = "+15551230001"


def enc(chat: str) -> str:
    return quote(chat, safe="")


def send(client, chat: str, body: dict) -> dict:
    r = client.post(f"/chats/{enc(chat)}/messages", json=body)
    assert r.status_code == 202, r.text
    return r.json()


def status(client, chat: str, message_id: str) -> dict:
    r = client.get(f"/chats/{enc(chat)}/messages/{message_id}/status")
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_780_000_000.0)


def test_status_moves_queued_sent_delivered_on_the_clock(make_emulator, clock):
    emu = make_emulator(
        EmulatorConfig(
            clock=clock,
            sent_after_ms=50,
            delivered_after_ms=200,
            delivery_jitter_ms=0,
            share_imessage=1,
            share_sms=0,
            share_rcs=0,
        )
    )
    with emu.client() as client:
        mid = send(client, PHONE, {"text": "hi"})["message_id"]
        s = status(client, PHONE, mid)
        assert s == {
            "message_id": mid,
            "chat_id": PHONE,
            "direction": "outbound",
            "status": "queued",
            "protocol": "pending",
            "time_sent": 1_780_000_000_000,
            "time_delivered": None,
            "error": None,
        }
        clock.advance(0.1)
        s = status(client, PHONE, mid)
        assert (s["status"], s["protocol"], s["time_delivered"]) == ("sent", "imessage", None)
        clock.advance(0.2)
        s = status(client, PHONE, mid)
        assert (s["status"], s["protocol"]) == ("delivered", "imessage")
        assert s["time_delivered"] == 1_780_000_000_200
    stats = emu.stats()
    assert stats["delivered"] == 1 and stats["by_protocol"] == {"imessage": 1}


def test_advance_control_endpoint_moves_time_without_a_manual_clock(make_emulator):
    emu = make_emulator(
        sent_after_ms=50,
        delivered_after_ms=200,
        p_delivery_failed=1.0,
        delivery_error="carrier said no",
    )
    with emu.client() as client:
        mid = send(client, PHONE, {"text": "hi"})["message_id"]
        emu.advance(5)
        s = status(client, PHONE, mid)
    assert (s["status"], s["error"], s["time_delivered"]) == ("failed", "carrier said no", None)
    assert s["protocol"] in ("imessage", "sms", "rcs")
    assert emu.stats()["failed"] == 1


def test_status_of_a_message_in_another_chat_is_404(emulator):
    with emulator.client() as client:
        mid = send(client, PHONE, {"text": "hi"})["message_id"]
        r = client.get(f"/chats/{enc('+15551230002')}/messages/{mid}/status")
        assert r.status_code == 404 and "code" not in r.json()
        assert client.get(f"/chats/{enc(PHONE)}/messages/msg_nope/status").status_code == 404


def test_protocol_matches_capabilities_for_every_contact(make_emulator, clock):
    emu = make_emulator(
        EmulatorConfig(
            clock=clock,
            seed=11,
            share_imessage=0.5,
            share_sms=0.3,
            share_rcs=0.2,
            p_unreachable=0.2,
        )
    )
    phones = [f"+1555000{i:04d}" for i in range(60)]
    emails = [f"user{i}@example.com" for i in range(20)]
    seen = {"imessage": 0, "sms": 0, "rcs": 0, "unreachable": 0}
    with emu.client() as client:
        sent = {c: send(client, c, {"text": "hi"}) for c in phones + emails}
        clock.advance(10)
        for contact, resp in sent.items():
            caps = client.get(f"/contacts/{enc(contact)}/capabilities").json()
            assert caps["contact"] == contact
            assert caps["type"] == ("email" if "@" in contact else "phone")
            s = status(client, contact, resp["message_id"])
            c = caps["capabilities"]
            if not c["imessage"] and not c["sms"]:
                seen["unreachable"] += 1
                assert s["status"] == "failed" and s["protocol"] == "unknown" and s["error"]
            elif c["imessage"]:
                seen["imessage"] += 1
                assert (s["status"], s["protocol"]) == ("delivered", "imessage")
            else:
                assert s["protocol"] in ("sms", "rcs") and s["status"] == "delivered"
                seen[s["protocol"]] += 1
            if "@" in contact:
                assert c["sms"] is False
                assert resp["status"] == ("queued" if c["imessage"] else "failed")
    assert all(seen.values()), seen  # every kind of reach occurs in this sample
    stats = emu.stats()
    assert stats["delivered"] + stats["failed"] == len(sent)
    assert stats["failed"] == seen["unreachable"]
    assert stats["by_protocol"]["imessage"] == seen["imessage"]


def test_reach_is_stable_per_contact_and_seed(make_emulator):
    def caps(seed: int) -> list[bool]:
        emu = make_emulator(seed=seed)
        with emu.client() as client:
            return [
                client.get(f"/contacts/{enc(f'+1555111{i:04d}')}/capabilities").json()[
                    "capabilities"
                ]["imessage"]
                for i in range(30)
            ]

    assert caps(1) == caps(1) and caps(1) != caps(2)


def test_unreachable_list_and_bad_contact(make_emulator):
    emu = make_emulator(unreachable=[PHONE])
    with emu.client() as client:
        c = client.get(f"/contacts/{enc(PHONE)}/capabilities").json()["capabilities"]
        assert c == {"imessage": False, "sms": False, "facetime": False}
        assert client.get("/contacts/hello/capabilities").status_code == 400


def test_list_filters_sort_and_pagination(make_emulator, clock):
    emu = make_emulator(EmulatorConfig(clock=clock))
    with emu.client() as client:
        for i in range(5):
            send(client, PHONE, {"text": f"out {i}"})
            clock.advance(1)
            emu.reply(PHONE, f"in {i}")
            clock.advance(1)
        url = f"/chats/{enc(PHONE)}/messages"
        everything = client.get(url).json()
        assert everything["chat_id"] == PHONE
        assert everything["pagination"] == {"limit": 50, "offset": 0, "total": 10}
        assert [m["text"] for m in everything["messages"][:2]] == ["in 4", "out 4"]  # desc

        inbound = client.get(url, params={"direction": "inbound", "sort": "asc"}).json()
        assert [m["text"] for m in inbound["messages"]] == [f"in {i}" for i in range(5)]
        assert all(m["sender"] is None and m["direction"] == "inbound" for m in inbound["messages"])

        t_in1 = inbound["messages"][1]["time_sent"]
        since = client.get(
            url, params={"direction": "inbound", "since": t_in1, "sort": "asc"}
        ).json()
        assert [m["text"] for m in since["messages"]] == ["in 2", "in 3", "in 4"]
        window = client.get(
            url, params={"since": t_in1, "until": t_in1 + 3000, "sort": "asc"}
        ).json()
        assert [m["text"] for m in window["messages"]] == ["out 2", "in 2"]

        page = client.get(url, params={"sort": "asc", "limit": 3, "offset": 3}).json()
        assert [m["text"] for m in page["messages"]] == ["in 1", "out 2", "in 2"]
        assert page["pagination"] == {"limit": 3, "offset": 3, "total": 10}
        for bad in (
            {"limit": 0},
            {"limit": 201},
            {"offset": -1},
            {"direction": "sideways"},
            {"sort": "up"},
            {"since": "yesterday"},
        ):
            assert client.get(url, params=bad).status_code == 400, bad
        assert client.get(url, params={"limit": 200}).status_code == 200
        empty = client.get(f"/chats/{enc('+15559999999')}/messages").json()
        assert empty["messages"] == [] and empty["pagination"]["total"] == 0


def test_group_replies_carry_the_sender(emulator):
    with emulator.client() as client:
        resp = send(client, "+15551230001,+15551230002", {"text": "hi all"})
        emulator.reply("+15551230002,+15551230001", "STOP", sender="+15551230002")
        emulator.reply(resp["group_id"], "me too")
        listed = client.get(
            f"/chats/{resp['group_id']}/messages", params={"direction": "inbound", "sort": "asc"}
        ).json()
        by_list = client.get(f"/chats/{enc('+15551230001,+15551230002')}/messages").json()
    assert [(m["text"], m["sender"]) for m in listed["messages"]] == [
        ("STOP", "+15551230002"),
        ("me too", "+15551230001"),
    ]
    assert by_list["pagination"]["total"] == 3
    with pytest.raises(ValueError, match="not a member"):
        emulator.reply(resp["group_id"], "x", sender="+15550000000")


def test_messages_dump_is_the_ground_truth(make_emulator, clock):
    emu = make_emulator(EmulatorConfig(clock=clock, numbers=["+15551234567"]))
    with emu.client() as client:
        r = client.post(
            f"/chats/{enc(PHONE)}/messages",
            json={"text": ["a", "b"]},
            headers={"Idempotency-Key": "key-1"},
        )
    (entry,) = emu.messages()
    assert entry["chat"] == PHONE and entry["key"] == "key-1"
    assert entry["body"] == {"text": ["a", "b"]} and entry["ids"] == r.json()["message_ids"]
    assert entry["accepted_at"] == 1_780_000_000.0 and entry["from_number"] == "+15551234567"
    assert entry["status"] == "queued" and entry["protocol"] == "pending"
