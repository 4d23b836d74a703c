"""The files of ``campaign init``: a commented starter campaign that validates, plans and can be
rehearsed on the emulator as written, and the next commands to try.

Writing is all or nothing and never overwrites: every target is checked before the first byte
is written, and each file is created exclusively (``x`` mode) in case one appears meanwhile.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from runner.campaign.schema import SCHEMA_NAME, schema_path
from runner.errors import CampaignError, Problem

CAMPAIGN = "campaign.yaml"
RECIPIENTS = "recipients.csv"  # also spelled out in _CAMPAIGN_YAML
SUPPRESSION = "suppression.txt"  # also spelled out in _CAMPAIGN_YAML
SCHEMA = f".schema/{SCHEMA_NAME}"  # beside the campaign, so editors find it with no network
DEFAULT_ID = "first-campaign"
EMULATOR_PORT = 8765
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}\Z")  # the schema's pattern for `id`

_CAMPAIGN_YAML = """\
# yaml-language-server: $schema={schema}
#
# A starter campaign written by `campaign init`. Editors with the YAML language server
# (VS Code: the "YAML" extension) complete and explain every key from the schema above.
# Try it:  campaign validate {campaign}  ->  campaign plan {campaign}
version: 1                      # required, always 1
id: {id}{id_pad}# part of every Idempotency-Key: never rename a campaign once sent
name: My first campaign         # shown in plans and reports
revision: 1                     # bump to 2 to send everything again on purpose

sender:                         # defaults for every message
  from_number: "+15551234567"   # your Blooio number (quoted so YAML keeps the "+")

vars:                           # campaign-wide template variables; a CSV column wins over these
  shop_url: https://shop.example.com/welcome

recipients:
  file: recipients.csv          # relative to this file; a header row, one recipient a row
  to: phone                     # the column with the phone number (or email); every other
                                # column (first_name, code) becomes a template variable

suppress:                       # chats never to message (STOP replies are kept anyway: see
                                # docs/optouts.md); `campaign optouts --export` adds them here
  - suppression.txt

steps:                          # sent in order to every recipient
  - id: hello
    text: "Hi {{{{ first_name }}}}! Thanks for signing up: {{{{ shop_url }}}}"

  - id: code
    when: code != ""            # a jinja2 condition: skipped for rows with an empty code
    text: "Your welcome code: {{{{ code }}}}"
    # delay: 1d                 # uncomment to send this a day after "hello" (a drip step)

send:
  rate_per_second: 2            # requests per second at most: gentle for a new account
  concurrency: 2                # requests in flight
"""

_RECIPIENTS_CSV = """\
phone,first_name,code
+15551230001,Ada,WELCOME10
+15551230002,Ben,
"""

_SUPPRESSION_TXT = """\
# Chat ids never to message, one a line (phones in E.164, emails, grp_ ids); # starts a comment.
# Replies of STOP are kept by the state's consent ledger on their own; `campaign optouts
# {campaign} --export` also writes them here, for review in git.
# +15550000000
"""


def campaign_id(directory: Path) -> str:
    """A slug from the folder's name (``spring-promo/`` -> ``spring-promo``), else a default."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", directory.resolve().name.lower()).strip("-_")[:64]
    return slug if _ID.match(slug) else DEFAULT_ID


def starter_files(campaign_id: str = DEFAULT_ID) -> dict[str, str]:
    """Relative path -> text of every file ``campaign init`` writes."""
    pad = " " * max(1, 32 - len(f"id: {campaign_id}"))
    return {
        CAMPAIGN: _CAMPAIGN_YAML.format(
            schema=SCHEMA, campaign=CAMPAIGN, id=campaign_id, id_pad=pad
        ),
        RECIPIENTS: _RECIPIENTS_CSV,
        SUPPRESSION: _SUPPRESSION_TXT.format(campaign=CAMPAIGN),
        SCHEMA: schema_path().read_text(encoding="utf-8"),
    }


GITIGNORE = ".gitignore"
_GITIGNORE_TEXT = """\
# Written by `campaign init`. The state folder holds the journal (phone numbers, reply
# lengths) and plan files list every recipient: neither belongs in git.
.runner/
plans/
"""


def write_gitignore(directory: Path) -> Path | None:
    """A .gitignore for the state folder and plans, unless the folder has one (never edited:
    the caller says what to add). The path written, or None."""
    path = directory / GITIGNORE
    try:
        with open(path, "x", encoding="utf-8", newline="\n") as fh:
            fh.write(_GITIGNORE_TEXT)
    except FileExistsError:
        return None
    return path


def write_starter(directory: Path) -> list[Path]:
    """Write the starter files into ``directory`` (created if missing); the paths written.

    CampaignError naming every file in the way, with nothing written, if any target exists.
    """
    if directory.exists() and not directory.is_dir():
        raise CampaignError(
            f"{directory} exists and is not a directory",
            layer="init",
            hint="give `campaign init` a new or existing folder",
        )
    files = starter_files(campaign_id(directory))
    taken = [p for p in dict.fromkeys(_in_the_way(directory, rel) for rel in files) if p]
    if taken:
        last = len(taken) - 1
        raise CampaignError(
            [
                Problem(
                    "already exists; campaign init never overwrites a file, so wrote nothing",
                    file=str(path),
                    layer="init",
                    hint="choose another folder: campaign init NEW-FOLDER" if i == last else None,
                )
                for i, path in enumerate(taken)
            ]
        )
    written = []
    try:
        for rel, text in files.items():
            path = directory / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "x", encoding="utf-8", newline="\n") as fh:
                fh.write(text)
            written.append(path)
    except FileExistsError as exc:  # appeared after the check: keep it, undo ours
        for path in written:
            path.unlink(missing_ok=True)
        raise CampaignError(
            f"{exc.filename} already exists; campaign init never overwrites a file",
            file=str(exc.filename),
            layer="init",
        ) from None
    return written


def _in_the_way(directory: Path, rel: str) -> Path | None:
    """The target itself, or a non-folder where one of its folders must go, if present."""
    path = directory / rel
    if path.exists() or path.is_symlink():
        return path
    parent = path.parent
    while parent != directory:
        if parent.exists() and not parent.is_dir():
            return parent
        parent = parent.parent
    return None


def next_steps(directory: str) -> str:
    """The three commands to run next, for a campaign written into ``directory`` as typed."""
    campaign = shlex.quote(CAMPAIGN if directory in ("", ".") else str(Path(directory) / CAMPAIGN))
    base = f"http://127.0.0.1:{EMULATOR_PORT}/v2/api"
    return "\n".join(
        [
            "Next:",
            f"  1. campaign validate {campaign}    # schema, rules, templates, recipients",
            f"  2. campaign plan {campaign}    # what would be sent: no key, no network",
            "  3. rehearse on the local emulator (nothing leaves this machine):",
            f"       campaign emulator --port {EMULATOR_PORT} &     # stop it later with: kill %1",
            f"       export BLOOIO_BASE_URL={base} BLOOIO_API_KEY=test-key",
            f"       campaign send {campaign} --yes",
            "       campaign emulator reply --to +15551230001 --text STOP   # rehearse an opt-out",
            f"       campaign optouts {campaign} --export    # into the ledger and {SUPPRESSION}",
            f"       campaign report {campaign}",
            "For a live send: unset BLOOIO_BASE_URL and set BLOOIO_API_KEY to your key.",
        ]
    )
