"""`campaign preview FILE --to ID --format html`: one recipient's conversation as the phone shows
it, iMessage and SMS-only side by side; self-contained, escaped, and really rendered by a
headless browser when one is installed.

Set PREVIEW_SCREENSHOT_OUT=docs/preview-screenshot.png to keep the browser's picture (that is
how docs/git-and-ci.md's screenshot is made).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from chromium import CHROMIUM, SKIP_REASON, png_pixels, screenshot

from runner.report.preview_html import (
    Bubble,
    PreviewStep,
    delay_words,
    render_preview_html,
    sms_items,
)

KEY = "bl_preview_SECRET_5151"
ADA = "+15551230001"

CAMPAIGN = """\
version: 1
id: spring-sale
sender: {from_number: "+15551234567", use_typing_indicator: true}
vars: {shop_url: "https://shop.example.com/spring"}
recipients:
  - to: "+15551230001"
    vars: {first_name: Ada, code: ADA20}
  - to: "carol@example.org"
    vars: {first_name: Carol, code: ""}
  - to: ["+15551230002", "+15551230003"]
    vars: {first_name: team, code: TEAM15}
steps:
  - id: hello
    text: "Hi {{ first_name }}! Our spring sale is live: 20% off until Sunday."
    effect: Invisible Ink
    attachments: ["https://cdn.example.com/spring/banner.jpg"]
  - id: shop
    text: "{{ shop_url }}"
    link_preview: {title: "Spring sale: 20% off everything", image_url: "https://cdn.example.com/spring/hero.png"}
  - id: code
    when: code != ""
    parts:
      - text: "Your personal code: {{ code }}"
      - {url: "https://cdn.example.com/codes/{{ code }}.png", name: "{{ code }}.png"}
  - id: picks
    parts:
      - {text: "https://shop.example.com/spring/jackets", link_preview: {title: Light jackets}}
      - {text: "https://shop.example.com/spring/sneakers", link_preview: {title: Sneakers}}
  - id: last-call
    delay: 2d
    text: "Last call, {{ first_name }}: the sale ends Sunday at midnight."
    reply_to: {step: hello}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("preview")
    (folder / "spring.yaml").write_text(CAMPAIGN, encoding="utf-8")
    return folder


def _page(project: Path, campaign_cli, to: str = ADA, name: str = "ada.html") -> str:
    out = project / "out" / name
    r = campaign_cli(
        "preview",
        str(project / "spring.yaml"),
        "--to",
        to,
        "--format",
        "html",
        "--out",
        str(out),
        env={"BLOOIO_API_KEY": KEY},
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""  # the page went to the file
    return out.read_text(encoding="utf-8")


def _columns(page: str) -> tuple[str, str]:
    imessage, sms = page.split('<section class="col">')[1:]
    return imessage, sms


def test_the_page_is_self_contained_and_shows_the_recipient(project, campaign_cli):
    page = _page(project, campaign_cli)
    assert page.startswith("<!DOCTYPE html>")
    assert "default-src 'none'" in page
    assert "<script" not in page.lower()
    assert not re.search(r"\b(src|href)\s*=", page, re.I)  # nothing to fetch or follow
    assert "url(" not in page and "@import" not in page
    assert KEY not in page and "Bearer" not in page
    assert ADA in page  # asked for by name: not masked
    assert "+15551234567" in page  # the number it comes from heads the conversation


def test_imessage_column_draws_every_feature_in_step_order(project, campaign_cli):
    imessage, _ = _columns(_page(project, campaign_cli))
    steps = [s.strip() for s in re.findall(r'<div class="step">([^<]+)', imessage)]
    assert steps == ["hello", "shop", "code", "picks", "last-call"]
    # The effect is named once, on the message it rides (text + attachment).
    assert imessage.count("Sent with Invisible Ink") == 1
    assert "banner.jpg" in imessage and "JPG" in imessage
    # A link preview is a card naming the image, never loading it.
    assert "Spring sale: 20% off everything" in imessage
    assert "image: https://cdn.example.com/spring/hero.png" in imessage
    assert imessage.count('class="b card"') == 3  # shop + the batch's two balloons
    assert "image from the page's Open Graph tags" in imessage  # no image override
    # The multipart message is one group: its text and its image together.
    group = re.search(r'<div class="group">(.*?)</div></div></div>', imessage).group(1)
    assert "Your personal code: ADA20" in group and "ADA20.png" in group
    # The delay, then the reply under a quote of its parent.
    later = imessage.index("2 days later")
    assert imessage.index("picks") < later < imessage.index("Last call, Ada")
    quote = re.search(r'<div class="quote">(.*?)</div>', imessage).group(1)
    assert "reply to" in quote and "Hi Ada! Our spring sale" in quote
    assert imessage.count("typing…") == 5  # the sender's use_typing_indicator


def test_sms_column_says_what_an_sms_only_recipient_gets(project, campaign_cli):
    _, sms = _columns(_page(project, campaign_cli))
    assert "Sent with" not in sms and "SMS drops the Invisible Ink effect" in sms
    assert "No typing indicator on SMS" in sms and "typing…" not in sms
    assert 'class="b card"' not in sms  # every link arrives as a plain URL
    assert ">https://shop.example.com/spring<" in sms
    assert ">https://shop.example.com/spring/jackets<" in sms
    assert "one bubble: 2 separate messages" in sms
    assert sms.count("MMS attachment") == 2  # the banner and the code image
    assert 'class="quote"' not in sms and "the inline reply: an ordinary message" in sms


def test_email_and_group_chats_have_no_sms_conversation(project, campaign_cli):
    _, sms = _columns(_page(project, campaign_cli, "Carol@Example.org", "carol.html"))
    assert "iMessage only" in sms and 'class="b txt"' not in sms
    imessage, sms = _columns(_page(project, campaign_cli, "+15551230003,+15551230002", "g.html"))
    assert "iMessage group" in sms
    assert "code: not sent" not in imessage  # the team has a code
    carol, _ = _columns(_page(project, campaign_cli, "carol@example.org", "c2.html"))
    assert "code: not sent (its when: is false for this recipient)" in carol


def test_text_and_json_formats_are_kept_and_may_go_to_a_file(project, campaign_cli):
    r = campaign_cli("preview", str(project / "spring.yaml"), "--to", ADA)
    assert r.returncode == 0 and "5 request(s) for +15551230001" in r.stdout
    assert "Authorization: Bearer $BLOOIO_API_KEY" in r.stdout
    out = project / "out" / "ada.json"
    r = campaign_cli(
        "preview", str(project / "spring.yaml"), "--to", ADA, "--format", "json", "--out", str(out)
    )
    assert r.returncode == 0 and r.stdout == ""
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert [d["step"] for d in doc["requests"]] == ["hello", "shop", "code", "picks", "last-call"]


def test_an_unwritable_out_is_one_clear_error(project, campaign_cli, tmp_path):
    (tmp_path / "file").write_text("")
    r = campaign_cli(
        "preview",
        str(project / "spring.yaml"),
        "--to",
        ADA,
        "--format",
        "html",
        "--out",
        str(tmp_path / "file" / "p.html"),
    )
    assert r.returncode == 1 and "cannot write the preview" in r.stderr
    assert "Traceback" not in r.stderr


# -- the rules, pure --------------------------------------------------------------------------


def test_everything_is_escaped():
    steps = [
        PreviewStep(
            "<i>s</i>",
            [
                Bubble(
                    {
                        "text": "<script>alert(1)</script>",
                        "from_number": "<b>n</b>",
                        "attachments": [{"url": "https://x/y", "name": "<u>"}],
                    },
                    variant="<v>",
                ),
                Bubble({"text": "b"}, variant="w"),
            ],
            delay_seconds=90,
        )
    ]
    page = render_preview_html("<c>", "+1<2>", steps, schedule={"timezone": "<tz>"})
    for raw in ("<script>alert", "<i>s</i>", "<b>n</b>", "<u>", "<v>", "<c>", "+1<2>", "<tz>"):
        assert raw not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_variants_of_a_step_are_labelled():
    steps = [
        PreviewStep(
            "hello",
            [
                Bubble({"text": "Hi, 20% off"}, variant="short"),
                Bubble({"text": "Your code: X"}, variant="code"),
            ],
        )
    ]
    imessage, sms = _columns(render_preview_html("c", ADA, steps))
    for column in (imessage, sms):
        assert "variant short" in column and "variant code" in column
        assert (
            column.index("variant short")
            < column.index("Hi, 20% off")
            < column.index("variant code")
            < column.index("Your code: X")
        )


def test_a_mention_part_is_drawn_as_the_mention():
    steps = [
        PreviewStep(
            "hi",
            [Bubble({"parts": [{"text": "Ada", "mention": "+15551230001"}, {"text": " look!"}]})],
        )
    ]
    imessage, _ = _columns(render_preview_html("c", "+15551230001,+15551230002", steps))
    assert '<span class="at" title="mentions +15551230001">Ada</span>' in imessage


def test_sms_rules():
    items, lost = sms_items({"text": ["one", "two"], "effect": "slam"})
    assert len(items) == 2 and lost == ["the Slam effect"]
    items, lost = sms_items(
        {
            "parts": [
                {"text": "https://a.example/x", "link_preview": {}},
                {"text": "https://a.example/y", "link_preview": None},
            ]
        }
    )
    assert len(items) == 2 and lost == ["link previews: plain URLs"]
    items, lost = sms_items({"parts": [{"text": "hi"}, {"url": "https://a.example/c.pdf"}]})
    assert "MMS attachment" in items[1] and lost == ["one bubble: 2 separate messages"]
    assert sms_items({"text": "plain words"}) == (['<div class="b txt">plain words</div>'], [])


@pytest.mark.parametrize(
    "seconds, words",
    [
        (45, "45 seconds later"),
        (86400, "1 day later"),
        (2 * 86400, "2 days later"),
        (5400, "1 hour 30 minutes later"),
    ],
)
def test_delay_words(seconds, words):
    assert delay_words(seconds) == words


def test_a_schedule_is_said_and_delays_wait_for_the_window():
    steps = [
        PreviewStep("a", [Bubble({"text": "x"})]),
        PreviewStep("b", [Bubble({"text": "y"})], delay_seconds=7200),
    ]
    page = render_preview_html(
        "c",
        ADA,
        steps,
        schedule={
            "timezone": "America/New_York",
            "window": {"start": "09:00", "end": "20:00", "days": ["mon", "fri"]},
        },
    )
    assert "Sent only between 09:00 and 20:00 (America/New_York) on mon, fri." in page
    assert "2 hours later, inside the window" in page


# -- a real browser ---------------------------------------------------------------------------


@pytest.mark.skipif(CHROMIUM is None, reason=SKIP_REASON)
def test_a_real_browser_draws_two_phones(project, campaign_cli, tmp_path):
    page = project / "out" / "browser.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(_page(project, campaign_cli), encoding="utf-8")
    shot = tmp_path / "shot.png"
    proc = screenshot(page, shot, (900, 1320), tmp_path / "profile", log=True)
    assert shot.exists(), proc.stderr[-2000:]
    errors = [
        line
        for line in proc.stderr.splitlines()
        if "Uncaught" in line or "CONSOLE" in line or "Refused to" in line
    ]
    assert errors == []  # no script error, nothing the content policy had to block
    width, height, sample = png_pixels(shot.read_bytes())
    assert (width, height) == (900, 1320)
    colours = set(sample)
    assert len(colours) > 20  # not blank
    # The phones' bezels, the bubbles' grey and the two protocol pills are on screen.
    for hexcode in ("1c1c1e", "e9e9eb"):
        assert bytes.fromhex(hexcode) in colours, hexcode
    out = os.environ.get("PREVIEW_SCREENSHOT_OUT")
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, out)
