"""The emulator's send endpoint through real HTTP: acceptance shapes, groups, validation, replies."""

from __future__ import annotations

import pytest

pytest_plugins = ["emulator_fixtures"]

PHONE = "%2B15551230001"
OTHER = "%2B15551230002"


def post(client, chat: str, body: object, key: str | None = None):
    headers = {"Idempotency-Key": key} if key else {}
    return client.post(f"/chats/{chat}/messages", json=body, headers=headers)


def test_auth_is_required_and_checked(emulator):
    with emulator.client() as client:
        for headers in ({"Authorization": "Bearer wrong"}, {"Authorization": ""}):
            r = client.post(f"/chats/{PHONE}/messages", json={"text": "x"}, headers=headers)
            assert r.status_code == 401
            assert r.json() == {
                "error": "ApiError",
                "status": 401,
                "message": "Authentication required or invalid",
            }
    assert emulator.stats()["messages_accepted"] == 0


def test_single_text_list_and_batch_shapes(emulator):
    with emulator.client() as client:
        one = post(client, PHONE, {"text": "hi"})
        assert one.status_code == 202
        body = one.json()
        assert body["status"] == "queued" and body["message_id"].startswith("msg_")
        assert "message_ids" not in body and "count" not in body

        many = post(client, PHONE, {"text": ["a", "b", "c"], "effect": "Invisible Ink"}).json()
        assert len(many["message_ids"]) == 3 and "message_id" not in many
        assert "count" not in many

        batch = post(
            client,
            PHONE,
            {
                "parts": [
                    {"text": "https://shop.example.com/a", "link_preview": {"title": "A"}},
                    {"text": "https://shop.example.com/b"},
                ]
            },
        ).json()
        assert batch["count"] == 2 and len(batch["message_ids"]) == 2

        multipart = post(
            client,
            PHONE,
            {
                "parts": [{"text": "code"}, {"url": "https://x.io/a.png", "name": "a.png"}],
                "effect": "none",
            },
        )
        assert multipart.status_code == 202 and "message_id" in multipart.json()
        only_attachment = post(client, PHONE, {"attachments": ["https://x.io/a.png"]})
        assert only_attachment.status_code == 202
    stats = emulator.stats()
    assert stats["accepted_requests"] == 5
    assert stats["messages_accepted"] == 1 + 3 + 2 + 1 + 1
    ids = [i for m in emulator.messages() for i in m["ids"]]
    assert len(set(ids)) == len(ids) == 8


def test_participant_list_creates_then_reuses_one_group_in_any_order(emulator):
    with emulator.client() as client:
        first = post(client, "%2B15551230001%2CBob%40Example.com", {"text": "hi"}).json()
        assert first["group_id"].startswith("grp_") and first["group_created"] is True
        assert first["participants"] == ["+15551230001", "bob@example.com"]
        again = post(client, "bob%40example.com%2C%2B15551230001", {"text": "hi 2"}).json()
        assert again["group_id"] == first["group_id"] and again["group_created"] is False
        by_id = post(client, first["group_id"], {"text": "by id"})
        assert by_id.status_code == 202 and "group_id" not in by_id.json()
        unknown = post(client, "grp_doesnotexist", {"text": "x"})
        assert unknown.status_code == 404 and "code" not in unknown.json()
        listed = client.get(f"/chats/{first['group_id']}/messages").json()
        assert listed["pagination"]["total"] == 3


LONG_TITLE = "t" * 201


@pytest.mark.parametrize(
    ("chat", "body"),
    [
        (PHONE, {}),
        (PHONE, {"text": ""}),
        (PHONE, {"text": []}),
        (PHONE, {"text": 5}),
        ("12345", {"text": "x"}),
        ("not-an-email", {"text": "x"}),
        ("%2B15551230001%2Cnope", {"text": "x"}),
        (PHONE, {"text": "x", "effect": "sparkle"}),
        (PHONE, {"parts": [{"text": "a"}], "effect": "confetti"}),
        (PHONE, {"parts": [{"text": "a", "url": "https://x.io/a.png"}]}),
        (PHONE, {"parts": [{}]}),
        (PHONE, {"parts": [{"url": "https://x.io/a.png", "mention": "+15551230002"}]}),
        (PHONE, {"parts": [{"text": "a", "name": "a.png"}]}),
        (PHONE, {"parts": [{"text": "https://a.io", "link_preview": {}}, {"text": "not a url"}]}),
        (
            PHONE,
            {
                "parts": [
                    {"text": "https://a.io", "link_preview": {}},
                    {"url": "https://a.io/x.png"},
                ]
            },
        ),
        (PHONE, {"parts": [{"text": "https://a.io two words", "link_preview": {}}]}),
        (PHONE, {"text": "https://a.io", "link_preview": {"title": LONG_TITLE}}),
        (PHONE, {"parts": [{"text": "https://a.io", "link_preview": {"title": LONG_TITLE}}]}),
        (PHONE, "not an object"),
    ],
)
def test_validation_failures_are_400_without_code(emulator, chat, body):
    with emulator.client() as client:
        r = post(client, chat, body)
    assert r.status_code == 400, r.text
    err = r.json()
    assert err["error"] == "ApiError" and err["status"] == 400 and err["message"]
    assert "code" not in err
    assert emulator.stats()["messages_accepted"] == 0


def test_invalid_json_is_400(emulator):
    with emulator.client() as client:
        r = client.post(
            f"/chats/{PHONE}/messages",
            content=b"{nope",
            headers={"Content-Type": "application/json"},
        )
    assert r.status_code == 400 and "JSON" in r.json()["message"]


@pytest.mark.parametrize(
    "effect", ["Invisible Ink", "invisible-ink", "INVISIBLE_INK", "Slam", "none", None]
)
def test_effect_spellings_are_accepted(emulator, effect):
    with emulator.client() as client:
        assert post(client, PHONE, {"text": "x", "effect": effect}).status_code == 202


def test_title_of_exactly_200_is_fine(emulator):
    with emulator.client() as client:
        r = post(client, PHONE, {"text": "https://a.io", "link_preview": {"title": "t" * 200}})
    assert r.status_code == 202


def test_reply_to_codes(make_emulator):
    emu = make_emulator(numbers=["+15551234567", "+15551234568"])
    with emu.client() as client:
        parent = post(client, PHONE, {"text": "parent"}).json()["message_id"]
        other_chat_parent = post(client, OTHER, {"text": "elsewhere"}).json()["message_id"]

        def code(body, chat=PHONE):
            r = post(client, chat, body)
            return r.status_code, r.json().get("code")

        assert code({"text": "x", "reply_to": {}}) == (400, "reply_target_invalid")
        assert code({"text": "x", "reply_to": {"part_index": 0}}) == (400, "reply_target_invalid")
        assert code({"text": ["a", "b"], "reply_to": {"message_id": parent}}) == (
            400,
            "reply_target_not_supported",
        )
        batch = {
            "parts": [{"text": "https://a.io", "link_preview": {"title": "A"}}],
            "reply_to": {"message_id": parent},
        }
        assert code(batch) == (400, "reply_target_not_supported")
        assert code({"text": "x", "reply_to": {"message_id": "msg_unknown"}}) == (
            404,
            "reply_target_not_found",
        )
        assert code({"text": "x", "reply_to": {"message_id": other_chat_parent}}) == (
            400,
            "reply_target_chat_mismatch",
        )
        assert code(
            {"text": "x", "reply_to": {"message_id": parent}, "from_number": "+15551234568"}
        ) == (400, "reply_target_device_mismatch")

        ok = post(client, PHONE, {"text": "child", "reply_to": {"message_id": parent}})
        assert ok.status_code == 202 and "parent_unresolved" not in ok.json()
        detail = client.get(f"/chats/{PHONE}/messages/{ok.json()['message_id']}").json()
        assert detail["reply_to"]["message_id"] == parent

        unresolved = post(client, PHONE, {"text": "x", "reply_to": {"guid": "p:0/unknown"}})
        assert unresolved.status_code == 202 and unresolved.json()["parent_unresolved"] is True
    assert emu.stats()["messages_accepted"] == 4


def test_reply_to_expires_after_30_days(emulator):
    with emulator.client() as client:
        parent = post(client, PHONE, {"text": "parent"}).json()["message_id"]
        emulator.advance(31 * 24 * 3600)
        r = post(client, PHONE, {"text": "late", "reply_to": {"message_id": parent}})
    assert (r.status_code, r.json()["code"]) == (400, "reply_target_expired")


def test_strict_numbers_and_inbound_only_numbers(make_emulator):
    emu = make_emulator(
        numbers=["+15551234567", "+15557654321"],
        strict_numbers=True,
        inbound_only_numbers=["+15557654321"],
    )
    with emu.client() as client:
        assert post(client, PHONE, {"text": "x", "from_number": "+15550000000"}).status_code == 400
        first = post(client, PHONE, {"text": "x", "from_number": "+15557654321"})
        assert first.status_code == 403
        err = first.json()
        assert err["code"] == "inbound_only_no_prior_inbound"
        assert err["external_id"] == "+15551230001" and err["allocation_id"]
        emu.reply("+15551230001", "hello?")
        assert post(client, PHONE, {"text": "x", "from_number": "+15557654321"}).status_code == 202
        numbers = client.get("/me/numbers").json()["numbers"]
    assert [(n["phone_number"], n["plan_kind"]) for n in numbers] == [
        ("+15551234567", "dedicated"),
        ("+15557654321", "inbound"),
    ]


@pytest.mark.parametrize("groups,status", [([], 404), (["grp_named1"], 202), (["*"], 202)])
def test_named_groups_are_known_only_when_configured(make_emulator, groups, status):
    emu = make_emulator(groups=groups)
    with emu.client() as c:
        r = c.post("/chats/grp_named1/messages", json={"text": "hi"})
        assert r.status_code == status
        if status == 404:
            assert "code" not in r.json()  # a chat that does not exist has no code
        other = c.post("/chats/grp_other/messages", json={"text": "hi"})
        assert other.status_code == (202 if groups == ["*"] else 404)


def test_history_gives_replies_an_earlier_message_to_target(make_emulator):
    emu = make_emulator(
        history=[{"message_id": "msg_old1", "chat": "+15551230001", "from_number": "+15551234567"}]
    )
    with emu.client() as c:
        ok = post(c, PHONE, {"text": "re", "reply_to": {"message_id": "msg_old1"}})
        assert ok.status_code == 202
        other = post(c, OTHER, {"text": "re", "reply_to": {"message_id": "msg_old1"}})
        assert other.status_code == 400 and other.json()["code"] == "reply_target_chat_mismatch"
        unknown = post(c, PHONE, {"text": "re", "reply_to": {"message_id": "msg_nope"}})
        assert unknown.status_code == 404 and unknown.json()["code"] == "reply_target_not_found"
