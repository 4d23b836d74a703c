"""What variant assignment costs `plan --out`: the same campaign with and without variants,
side by side in one run (issue 15: under 5% of plan throughput).

Both campaigns are plan_throughput.py's (3 steps, five small templates, a CSV of --rows rows);
in the second, the first step declares two variants whose texts are the same template as the
first campaign's text, so both sides render the same work and the difference is what variants
add: every slot's winner settled once per step (one SHAKE-256 stream of 16,384 numbers per
variant), a chat's slot per recipient (CRC-16) and a look-up, the per-variant counts and the
`"variant"` field of each --out line.

The figure is measured interleaved: both campaigns' whole pipelines (load, validate, render,
keys, lines written) run in one process in alternating turns of 2,048 lines, and each side's
CPU time is summed. On this shared machine one run's CPU time moves by ±10% from run to run,
more than variants cost; interleaving makes both sides share every slow moment. Whole
`plan --out` commands, in ABBA pairs, are timed too, to show that noise.

    python benchmarks/variants_throughput.py                 # 50,000 rows, 5 runs of each
    python benchmarks/variants_throughput.py --rows 20000    # a smaller campaign
"""

from __future__ import annotations

import argparse
import json
import statistics
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
    """Assignments per CPU second, alone, as the renderer makes them: one Assigner per step
    (its set-up, every slot's winner, counted in) and one choice per chat."""
    from runner.planning.variants import Assigner

    chats = [f"+1555{i:07d}" for i in range(n)]
    cpu = time.process_time()
    choose = Assigner("bench-plan", "hello", [("short", 60.0), ("code", 40.0)]).choose
    for chat in chats:
        choose(chat)
    return n / (time.process_time() - cpu)


def interleaved(plain: Path, split: Path, turn: int = 2_048) -> tuple[float, float]:
    """CPU seconds of each campaign's whole `plan --out` pipeline (load, validate, render, keys,
    lines written), both run in one process in alternating turns of ``turn`` lines: whatever
    slows the machine for a moment slows both sides alike, so the ratio holds still where
    separate runs move by ±10%."""
    from itertools import islice

    from runner.campaign.load import load_campaign
    from runner.planning.planner import Planner, dump_line

    sides = []
    for campaign in (plain, split):
        cpu = time.process_time()
        planner = Planner(load_campaign(campaign), previews=3)
        lines = map(dump_line, planner.requests())
        out = open(campaign.parent / "interleaved.jsonl", "w", encoding="utf-8")  # noqa: SIM115
        sides.append([time.process_time() - cpu, lines, out, planner])
    live = [0, 1]
    while live:
        for i in list(live):
            side = sides[i]
            cpu = time.process_time()
            for _ in range(turn // 512):
                batch = list(islice(side[1], 512))
                if not batch:
                    side[3].raise_if_invalid()
                    side[2].close()
                    live.remove(i)
                    break
                side[2].write("".join(batch))
            side[0] += time.process_time() - cpu
    return sides[0][0], sides[1][0]


def main_() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument(
        "--repeat",
        type=int,
        default=5,
        help="interleaved runs, and pairs of whole commands (the median of each is kept)",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="variants-bench-") as tmp:
        root = Path(tmp)
        plain = make(root / "plain", args.rows, variants=False)
        split = make(root / "variants", args.rows, variants=True)
        base.time_plan(plain, root / "warm.jsonl")  # imports and caches warm before measuring
        inter = [interleaved(plain, split) for _ in range(max(1, args.repeat))]
        inter_costs = sorted(1 - p / v for p, v in inter)
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
        cost = statistics.median(inter_costs)
        costs = sorted(1 - p / v for (p, _), (v, _) in zip(plain_s, split_s, strict=True))
        plain_rate = args.rows / statistics.median(p for p, _ in inter)
        split_rate = args.rows / statistics.median(v for _, v in inter)
        chooser = time_choose(min(args.rows, 200_000))
        # The assignment's own share of a plan with variants: its CPU time per recipient over
        # the plan's (the end-to-end difference also holds the "variant" field of each line).
        own = split_rate / chooser
        figures = {
            "rows": args.rows,
            "plain_recipients_per_cpu_s": round(plain_rate),
            "variants_recipients_per_cpu_s": round(split_rate),
            "cost": round(cost, 4),
            "interleaved_costs": [round(c, 4) for c in inter_costs],
            "command_pair_costs": [round(c, 4) for c in costs],
            "assignment_share": round(own, 4),
            "assignments_per_cpu_s": round(chooser),
            "split": shares,
            "plain_runs": [[round(c, 2), round(w, 2)] for c, w in plain_s],
            "variants_runs": [[round(c, 2), round(w, 2)] for c, w in split_s],
        }
        if args.json:
            print(json.dumps(figures))
            return
        print(
            f"rows {args.rows:,}; CPU time; {len(inter)} interleaved runs and {len(costs)} "
            "pairs of whole commands, medians"
        )
        print(f"plan --out, no variants:        {plain_rate:>9,.0f} recipients/s")
        print(f"plan --out, a step with 60/40:  {split_rate:>9,.0f} recipients/s   split {shares}")
        print(
            f"variants cost {cost:.1%} of plan throughput, interleaved "
            f"({'under' if cost < 0.05 else 'OVER'} the 5% target); runs from "
            f"{inter_costs[0]:.1%} to {inter_costs[-1]:.1%}"
        )
        print(
            f"whole commands, one after the other: {statistics.median(costs):.1%} (pairs from "
            f"{costs[0]:.1%} to {costs[-1]:.1%}: the machine's noise)"
        )
        print(
            f"assignment alone: {chooser:,.0f} chats/s = {own:.1%} of the plan's time per recipient"
        )


if __name__ == "__main__":
    main_()
