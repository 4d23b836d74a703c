#!/usr/bin/env bash
# The work of the composite action (action.yml): validate, plan, and on pull requests diff each
# campaign against the base; the step summary and, for the optional pull-request comment,
# $REVIEW_DIR/comment.md. Never needs BLOOIO_API_KEY. All of it is runner/review.py: a pull
# request controls file names, ids and texts, and that module makes each safe for where it goes
# (job log, markdown, files), caps the comment and the summary, and writes plans only inside
# the repository, never through a symlink.
#
# Environment (set by action.yml): CAMPAIGNS (paths, one a line or space separated: files or
# folders), PLANS_DIR, RUNNER_STATE, DIFF_BASE (a git ref; empty: no diff), REVIEW_DIR.
set -uo pipefail

: "${GITHUB_STEP_SUMMARY:?}"
# The python that has the runner: the one next to `campaign` on PATH.
python_bin=$(dirname "$(command -v campaign)")/python
[ -x "$python_bin" ] || python_bin=python
# -I: the checkout is the pull request's; its own runner/ package (or a sitecustomize) must
# never be imported instead of the installed runner. -X utf8: -I ignores PYTHONUTF8.
exec "$python_bin" -I -X utf8 -m runner.review
