#!/usr/bin/env bash
# The send half of the composite action (action.yml, `mode: send`): what a merge or a schedule
# sends, with the state and the key the workflow passes as secrets.
#
#   DUE_ONLY=true   resume: `campaign send DIR --due-only` for each path of CAMPAIGNS (every
#                   campaign with something due and a journal; never-sent ones are skipped)
#   otherwise       on merge: `campaign send FILE` for each campaign whose plan gained requests
#                   since CHANGED_SINCE (python -m runner.review changed; empty: every one)
# both with --require-clean unless REQUIRE_CLEAN=false (a checkout is clean: it never refuses
# there, it proves the files sent are the commit's)
#
# Exit code: the most serious of the sends' (1 > 3 > 4 > 0), where 4 (everything due was sent,
# the rest waits on its schedule) counts as success: the scheduled workflow sends the rest.
#
# Environment (set by action.yml): CAMPAIGNS, CHANGED_SINCE, DUE_ONLY, REQUIRE_CLEAN,
# RUNNER_STATE (a postgresql:// URL; empty: runner.yaml's state:, else .runner), BLOOIO_API_KEY.
set -uo pipefail

if [ -z "${BLOOIO_API_KEY:-}" ]; then
  echo "::error::mode: send needs the api-key input (a secret: api-key: \${{ secrets.BLOOIO_API_KEY }})"
  exit 1
fi
[ -n "${RUNNER_STATE:-}" ] || unset RUNNER_STATE  # empty: the policy's, else the repository's
python_bin=$(dirname "$(command -v campaign)")/python
[ -x "$python_bin" ] || python_bin=python

worst=0
merge() {  # the folder's rule: 1 > 3 > 4 > 0
  local code=$1
  case "$code" in
    0) ;;
    4) [ "$worst" = 0 ] && worst=4 ;;
    3) [ "$worst" = 1 ] || worst=3 ;;
    *) worst=1 ;;
  esac
}

clean=(--require-clean)
[ "${REQUIRE_CLEAN:-true}" = "false" ] && clean=()

if [ "${DUE_ONLY:-false}" = "true" ]; then
  read -r -a paths <<< "$(echo "$CAMPAIGNS" | tr '\n' ' ')"
  for path in "${paths[@]}"; do
    echo "::group::campaign send $path --due-only"
    campaign send --due-only --yes --no-progress "${clean[@]}" -- "$path"
    merge $?
    echo "::endgroup::"
  done
else
  if ! files=$("$python_bin" -I -X utf8 -m runner.review changed "${CHANGED_SINCE:-}"); then
    merge 1
  fi
  if [ -z "$files" ]; then
    echo "no campaign's plan changed since ${CHANGED_SINCE:-the start}: nothing to send"
  fi
  while IFS= read -r file; do
    [ -n "$file" ] || continue
    echo "::group::campaign send $file"
    campaign send --yes --no-progress "${clean[@]}" -- "$file"
    merge $?
    echo "::endgroup::"
  done <<< "$files"
fi

if [ "$worst" = 4 ]; then
  echo "::notice::everything due was sent; the rest waits on its schedule (the scheduled workflow resumes it)"
  exit 0
fi
exit "$worst"
