"""What variant assignment costs `plan --out`: the same campaign with and without variants,
side by side in one run (issue 15: under 5% of plan throughput).

Both campaigns are plan_throughput.py's (3 steps, five small templates, a CSV of --rows rows);
in the second, the first step declares two variants whose texts are the same template as the
first campaign's text, so both sides render the same work and the difference is what variants
add: a weighted rendezvous hash per recipient (BLAKE2b-64 per variant, the chat hashed once), the per-variant counts
and the `"variant"` field of each --out line. Runs alternate, best CPU time of each is kept.

    python benchmarks/variants_throughput.py                 # 100,000 rows, 3 runs each
    python benchmarks/variants_throughput.py --rows 20000    # quick
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing

import plan_throughput as base  # noqa: E402  (after the path set-up above)

_PLAIN_STEP = """\
  - id: hello
    text: "Hi {{ first_name }}, {{ brand }} spring sale: 20% off with {{ code }} at {{ shop_url }}"
    effect: confetti
"""
_VARIANT_STEP = """\
  - id: hello
    variants:
      - id: short
        weight: 60
        text: "Hi {{ first_name }}, {{ brand }} spring sale: 20% off with {{ code }} at {{ shop_url }}"
        effect: confetti
      - id: code
        weight: 40
        text: "Hi {{ first_name }}, {{ brand }} spring sale: 20% off with {{ code }} at {{ shop_url }}"
        effect: confetti
"""


def make(folder: Path, rows: int, variants: bool) -> Path:
    path = base.make_campaign(folder, rows)
    if variants:
        text = path.read_text(encoding="utf-8")
        assert _PLAIN_STEP in text
        path.write_text(text.replace(_PLAIN_STEP, _VARIANT_STEP), encoding="utf-8")
    return path


def time_choose(n: int) -> float:
    """Assignments per CPU second, alone, as the renderer makes them (one Assigner per step)."""
    from runner.planning.variants import Assigner

    assigner = Assigner("bench-plan", "hello", [("short", 60.0), ("code", 40.0)])
    chats = [f"+1555{i:07d}" for i in range(n)]
    choose = assigner.choose
    cpu = time.process_time()
    for chat in chats:
        choose(chat)
    return n / (time.process_time() - cpu)


def main_() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="variants-bench-") as tmp:
        root = Path(tmp)
        plain = make(root / "plain", args.rows, variants=False)
        split = make(root / "variants", args.rows, variants=True)
        plain_s, split_s = [], []
        for i in range(max(1, args.repeat)):  # ABBA order, so drift hits both sides alike
            order = [(plain, plain_s), (split, split_s)]
            for campaign, runs in order if i % 2 == 0 else reversed(order):
                runs.append(base.time_plan(campaign, campaign.parent / "plan.jsonl"))
        with open(root / "variants" / "plan.jsonl", encoding="utf-8") as fh:
            next(fh)
            shares: dict[str, int] = {}
            for line in fh:
                v = json.loads(line).get("variant")
                if v:
                    shares[v] = shares.get(v, 0) + 1
        plain_rate = args.rows / min(c for c, _ in plain_s)
        split_rate = args.rows / min(c for c, _ in split_s)
        cost = 1 - split_rate / plain_rate
        chooser = time_choose(min(args.rows, 200_000))
        # The assignment's own share of a plan with variants: its CPU time per recipient over
        # the plan's (the end-to-end difference also holds the "variant" field of each line).
        own = split_rate / chooser
        figures = {"rows": args.rows, "plain_recipients_per_cpu_s": round(plain_rate),
                   "variants_recipients_per_cpu_s": round(split_rate), "cost": round(cost, 4), "assignment_share": round(own, 4),
                   "assignments_per_cpu_s": round(chooser), "split": shares,
                   "plain_runs": [[round(c, 2), round(w, 2)] for c, w in plain_s],
                   "variants_runs": [[round(c, 2), round(w, 2)] for c, w in split_s]}
        if args.json:
            print(json.dumps(figures))
            return
        print(f"rows {args.rows:,}; best of {len(plain_s)} runs each (CPU time)")
        print(f"plan --out, no variants:        {plain_rate:>9,.0f} recipients/s")
        print(f"plan --out, a step with 60/40:  {split_rate:>9,.0f} recipients/s   split {shares}")
        print(f"end to end, variants cost {cost:.1%} of plan throughput "
              f"({'under' if cost < 0.05 else 'OVER'} the 5% target)")
        print(f"assignment alone: {chooser:,.0f} chats/s = {own:.1%} of the plan's time per recipient")


if __name__ == "__main__":
    main_()
