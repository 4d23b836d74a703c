"""The runner's caps on what a campaign, a data file or a server answer may make it do.

Campaign files arrive in pull requests and answers come from the network: each cap bounds the
time and memory one hostile input can take (each stays well under 300 MB), and each breach is
a located error, never a traceback. The Limits section of docs/campaign-format.md lists them.
"""

from __future__ import annotations

# A/B variants: a step's variants cost 16,384 scores each (runner/planning/variants.py).
MAX_VARIANTS_PER_STEP = 26
MAX_VARIANTS_PER_CAMPAIGN = 260

# The largest string a template may build while rendering (an intermediate value, not only
# its output): ~4 MB, so a replace() or a repetition cannot take gigabytes.
MAX_TEMPLATE_STRING = 4_000_000

# API answers: how deep JSON may nest (a hostile "[" * 100000 would otherwise recurse).
MAX_JSON_DEPTH = 64

# .xlsx recipients files: what the archive may inflate to, and how many cells may be read.
# Sheets are streamed; shared strings are all held in memory, so they get a cap of their own.
MAX_XLSX_INFLATED = 256 * 1024 * 1024
MAX_XLSX_PART = 200 * 1024 * 1024
MAX_XLSX_SHARED_STRINGS = 20 * 1024 * 1024
MAX_XLSX_CELLS = 2_000_000

# The review action: GitHub refuses a comment over 65,536 characters and cuts a step summary
# at 1 MiB; both are kept under, the full text going to the review folder.
MAX_COMMENT_CHARS = 65_000
MAX_SUMMARY_BYTES = 1_000_000
