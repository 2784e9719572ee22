"""How noisy are MCTS-P step labels? Re-roll the children of preference pairs and see whether the order holds.

With one rollout per child (``rollouts_per_child: 1``) a child's odds of success is one coin flip of the rollout
policy, and ``total`` is dominated by it (5*OS + 5*E). This benchmark takes pairs of one type whose two sides
differ in odds of success, rolls each side out ``--rollouts`` more times from the same state with the dataset's
own policy and env (fresh random streams), and counts the pairs whose order the re-estimated success rates
confirm, reverse or tie. ``confirmed + tied / 2`` is roughly the accuracy an oracle of the true success odds would
score on those pairs against the recorded labels: a ceiling for any reward model evaluated on them.

Usage (needs the browser for MiniWoB++ data):
    python benchmarks/label_noise.py --data data/default_heldout --type total --rollouts 5 --max-pairs 60

Writes benchmarks/results/label_noise.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from _common import RESULTS, setup


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", required=True, help="dataset folder written by `similar-rl collect`")
    parser.add_argument("--type", default="total", help="pair type to check (a step-level type)")
    parser.add_argument("--rollouts", type=int, default=5, help="extra rollouts per side")
    parser.add_argument("--max-pairs", type=int, default=60, help="seeded sample of at most this many pairs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="label_noise", help="result file stem under benchmarks/results/")
    args = parser.parse_args()
    machine = setup()
    from tqdm import tqdm

    from similar_rl.collect.config import CollectConfig
    from similar_rl.collect.mcts import TaskSearch
    from similar_rl.collect.runner import TaskWorker
    from similar_rl.data.dataset import load_dataset_folder

    data = load_dataset_folder(args.data)
    cfg = CollectConfig.from_dict({**data.manifest["config"], "envs": [], "seeds": []})
    records = {s.record_id: s for s in data.steps}
    candidates = [
        p
        for p in data.pairs
        if p.type == args.type
        and p.chosen_record in records
        and p.rejected_record in records
        and records[p.chosen_record].labels.get("odds_of_success")
        != records[p.rejected_record].labels.get("odds_of_success")
    ]
    n_type = sum(p.type == args.type for p in data.pairs)
    rng = np.random.default_rng(args.seed)
    picked = [candidates[i] for i in sorted(rng.permutation(len(candidates))[: args.max_pairs])]
    picked.sort(key=lambda p: (p.env_id, p.task_id))  # one browser per env id, reused across its pairs
    worker = TaskWorker(cfg)
    rates: dict[str, float] = {}
    outcome = {"confirmed": 0, "reversed": 0, "tied": 0}
    per_env: dict[str, dict[str, int]] = {}
    t0 = time.perf_counter()
    try:
        for pair in tqdm(picked, desc="pairs", unit="pair"):
            session = worker.session_for(pair.env_id)
            for rid in (pair.chosen_record, pair.rejected_record):
                if rid in rates:
                    continue
                rec = records[rid]
                search = TaskSearch(cfg, session, worker.policy, None, rec.seed)
                wins = [
                    search.rollout(list(rec.history), rec.action, ("label_noise", rid, r)).success
                    for r in range(args.rollouts)
                ]
                rates[rid] = float(np.mean(wins))
            diff = rates[pair.chosen_record] - rates[pair.rejected_record]
            verdict = "confirmed" if diff > 0 else "reversed" if diff < 0 else "tied"
            outcome[verdict] += 1
            per_env.setdefault(pair.env_id, {"confirmed": 0, "reversed": 0, "tied": 0})[verdict] += 1
    finally:
        worker.close()
    n = len(picked)
    ceiling = (outcome["confirmed"] + 0.5 * outcome["tied"]) / n if n else float("nan")
    result = {
        "machine": machine,
        "data": args.data,
        "type": args.type,
        "pairs_of_type": n_type,
        "pairs_with_os_difference": len(candidates),
        "checked": n,
        "rollouts_per_side": args.rollouts,
        "outcome": outcome,
        "per_env": per_env,
        "oracle_ceiling_on_checked": ceiling,
        "seconds": time.perf_counter() - t0,
    }
    lines = [
        f"# Label noise of `{args.type}` pairs in `{args.data}`",
        "",
        f"{len(candidates)} of {n_type} `{args.type}` pairs differ in odds of success (one rollout per child); "
        f"{n} of them (seeded sample) re-rolled {args.rollouts} times per side with the dataset's policy.",
        "",
        "| env | confirmed | reversed | tied |",
        "|---|---|---|---|",
        *(f"| {e} | {c['confirmed']} | {c['reversed']} | {c['tied']} |" for e, c in sorted(per_env.items())),
        f"| **all** | {outcome['confirmed']} | {outcome['reversed']} | {outcome['tied']} |",
        "",
        f"Oracle ceiling on these pairs (confirmed + tied/2): {100 * ceiling:.1f}%.",
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(result, indent=2))
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
