"""What `campaign plan` writes: a URL-only text trimmed as it will be sent, recipients masked
in previews unless asked, and `--out` writing through a symlink instead of replacing it."""

from __future__ import annotations

import json

from click.testing import CliRunner

from runner.cli import main

HEAD = 'version: 1\nid: r\nrecipients: [{to: "+15551230001", vars: {v: x}}]\n'


def test_a_url_only_text_is_sent_trimmed(tmp_path):
    (tmp_path / "c.yaml").write_text(
        HEAD
        + (
            'steps:\n  - id: a\n    parts:\n      - text: "https://shop.example.com/a "\n'
            '        link_preview: {title: A}\n      - text: "https://shop.example.com/b\\n"\n'
        )
    )
    out = tmp_path / "p.jsonl"
    result = CliRunner().invoke(main, ["plan", str(tmp_path / "c.yaml"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    parts = json.loads(out.read_text().splitlines()[1])["body"]["parts"]
    assert [p["text"] for p in parts] == [
        "https://shop.example.com/a",
        "https://shop.example.com/b",
    ]


def test_previews_mask_a_recipient_printed_by_a_template(tmp_path):
    (tmp_path / "c.yaml").write_text(
        HEAD + 'steps:\n  - id: a\n    text: "Your number {{ recipient }}"\n'
    )
    masked = CliRunner().invoke(main, ["plan", str(tmp_path / "c.yaml"), "--format", "markdown"])
    assert "+15551230001" not in masked.output and "+1555•••0001" in masked.output
    shown = CliRunner().invoke(main, ["plan", str(tmp_path / "c.yaml"), "--show-recipients"])
    assert "Your number +15551230001" in shown.output


def test_plan_out_follows_a_symlink_instead_of_replacing_it(tmp_path):
    (tmp_path / "c.yaml").write_text(HEAD + "steps:\n  - id: a\n    text: hi\n")
    target = tmp_path / "real.jsonl"
    target.write_text("old\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    result = CliRunner().invoke(main, ["plan", str(tmp_path / "c.yaml"), "--out", str(link)])
    assert result.exit_code == 0
    assert link.is_symlink() and json.loads(target.read_text().splitlines()[1])["step"] == "a"


def test_a_plan_line_is_the_request_encoded_with_sorted_keys():
    # dump_line writes the fields in sorted order by hand (the planner's hot loop); it must stay
    # byte-identical to encoding to_json_obj() with sort_keys, for every shape of request.
    from runner.planning.planner import dump_line
    from runner.planning.request import PlannedRequest

    bodies = [
        {"text": 'Hi "Zoë" \\ \u2028 \x01 😀', "from_number": "+15551234567", "effect": "confetti"},
        {
            "parts": [{"url": "https://x.example/a b", "text": "é"}],
            "use_typing_indicator": True,
            "link_preview": None,
            "n": 1.5,
        },
    ]
    for body in bodies:
        for rts in (None, "hello", 'é"step'):
            for chat in ("+15551230001", "zoë@example.com", "+15551230001,+15551230002"):
                for variant in (None, "short", 'é"v'):
                    req = PlannedRequest(
                        chat,
                        "step-\u00e9",
                        "rnr1-abc",
                        "POST",
                        "/chats/x/messages",
                        body,
                        3,
                        rts,
                        7,
                        2,
                        "Europe/Paris",
                        variant,
                    )
                    expected = (
                        json.dumps(
                            req.to_json_obj(),
                            sort_keys=True,
                            ensure_ascii=False,
                            separators=(",", ":"),
                        )
                        + "\n"
                    )
                    assert dump_line(req) == expected
