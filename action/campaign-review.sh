#!/usr/bin/env bash
# The work of the composite action (action.yml): validate, plan, and on pull requests diff each
# campaign against the base; everything goes to $GITHUB_STEP_SUMMARY and, for the optional
# pull-request comment, to $REVIEW_DIR/comment.md. Never needs BLOOIO_API_KEY.
#
# Environment (set by action.yml): CAMPAIGNS (paths, one a line or space separated: files or
# folders), PLANS_DIR, RUNNER_STATE, DIFF_BASE (a git ref; empty: no diff), REVIEW_DIR.
set -uo pipefail

: "${GITHUB_STEP_SUMMARY:?}" "${PLANS_DIR:=plans}" "${RUNNER_STATE:=.runner}" "${REVIEW_DIR:=.campaign-review}"
mkdir -p "$PLANS_DIR" "$REVIEW_DIR"
comment="$REVIEW_DIR/comment.md"
marker="<!-- campaign-runner-review -->"
printf '%s\n## Campaign review\n\nDry run: nothing was sent.\n\n' "$marker" > "$comment"

files=()
for path in $CAMPAIGNS; do
  if [ -d "$path" ]; then
    while IFS= read -r -d '' f; do files+=("$f"); done < <(
      find "$path" -type f \( -name '*.yaml' -o -name '*.yml' \) -not -path '*/.*' -print0 | sort -z)
  else
    files+=("$path")
  fi
done
if [ "${#files[@]}" -eq 0 ]; then
  echo "::error::no campaign files found in: $CAMPAIGNS"
  exit 1
fi

status=0
# --format github: each problem is an annotation on its file and line.
campaign validate --format github "${files[@]}" || status=1

for file in "${files[@]}"; do
  name="${file%.*}"; name="${name//\//__}"
  plan_md="$REVIEW_DIR/$name.plan.md"
  diff_md="$REVIEW_DIR/$name.diff.md"
  if ! campaign plan "$file" --format markdown --state "$RUNNER_STATE" \
       --out "$PLANS_DIR/$name.jsonl" > "$plan_md"; then
    status=1
    printf '### `%s`: plan failed, see the job log\n' "$file" > "$plan_md"
  fi
  { cat "$plan_md"; echo; } >> "$GITHUB_STEP_SUMMARY"
  if [ -n "${DIFF_BASE:-}" ]; then
    if ! campaign diff "$file" --base "$DIFF_BASE" --format markdown > "$diff_md"; then
      status=1
      printf '### `%s`: diff against `%s` failed, see the job log\n' "$file" "$DIFF_BASE" > "$diff_md"
    fi
    # The comment carries the diffs (what changes for whom); the plans stay on the summary.
    { cat "$diff_md"; echo; } | tee -a "$GITHUB_STEP_SUMMARY" >> "$comment"
  else
    { cat "$plan_md"; echo; } >> "$comment"
  fi
done
exit "$status"
