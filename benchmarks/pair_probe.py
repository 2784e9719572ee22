"""How much do the default backbone's features say about ``total`` pairs? A probe fit on the pairs themselves.

The reward model learns ``total`` indirectly (ridge experts on step labels, then a gate). This benchmark asks
what the same frozen features can give at best when a classifier is fit directly on the training folder's
``total`` pairs: an L2-regularised logistic regression on the difference of the two sides' feature blocks
(siblings share their prompt, so only blocks that depend on the action differ). The penalty is picked on 20% of
the training tasks; then the probe is refit on all of them and scored on each held-out folder, beside the model
and the zero-shot text-similarity baseline on the same pairs. A probe far above the model would mean the model
wastes what its features hold; a probe level with it means a better ``total`` needs other features or cleaner
labels.

Usage:
    python benchmarks/pair_probe.py --train data/default_train \\
        --heldout data/default_heldout_tasks data/default_heldout data/default_heldout2

Writes benchmarks/results/pair_probe.{json,md} (``--out`` changes the stem).
"""

from __future__ import annotations

import argparse
import logging

import numpy as np
from _common import markdown_table, setup, write_results

BLOCK_SETS = {
    "scalars": ["structural", "similarity"],
    "ia_scalars": ["instruction_x_action", "structural", "similarity"],
    "all_action": None,  # every block of z that is not a state block, read off the backbone
}
PENALTIES = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
FAMILY_COLUMNS = ("model", "text_similarity", "probe_ia_scalars")


def total_pairs(model, folder: str, cache_dir: str | None):
    """(table, z as float64, chosen rows, rejected rows, task id per pair) of the folder's ``total`` pairs."""
    from similar_rl.evaluation import load_eval_table
    from similar_rl.train.features import extract_features

    table = load_eval_table(folder, pair_types=["total"])
    _, z = extract_features(model, table.inputs, 32, cache_dir=cache_dir, progress=False)
    chosen = np.array([c[0] for c in table.chosen])
    rejected = np.array([r[0] for r in table.rejected])
    return table, z.double().numpy(), chosen, rejected, np.array(table.task_ids)


def fit_probe(diff: np.ndarray, penalty: float) -> np.ndarray:
    """Weights of a logistic regression without bias on ``diff`` (chosen minus rejected), label 1 for every row:
    symmetric in the sides, so a pair and its swap get opposite scores."""
    import torch

    x = torch.from_numpy(diff)
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.softplus(-(x @ w)).mean() + penalty * (w @ w)
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy()


def accuracy(margin: np.ndarray) -> float:
    return float(100 * (np.mean(margin > 0) + 0.5 * np.mean(margin == 0)))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train", required=True, help="training dataset folder")
    parser.add_argument("--heldout", nargs="+", required=True, help="held-out dataset folder(s)")
    parser.add_argument(
        "--model", default=None, help="saved model folder (default: the shipped default model)"
    )
    parser.add_argument("--cache-dir", default=None, help="feature cache (default: the user cache)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the validation split of training tasks")
    parser.add_argument("--out", default="pair_probe", help="result file stem under benchmarks/results/")
    parser.add_argument(
        "--min-family-pairs",
        type=int,
        default=15,
        help="families with fewer pairs are left out of the per-family tables",
    )
    args = parser.parse_args()
    machine = setup()
    logging.basicConfig(level=logging.WARNING)
    from similar_rl.evaluation import model_step_scores, text_similarity_scores
    from similar_rl.model import SimilarRewardModel, load_default_model

    model = SimilarRewardModel.from_pretrained(args.model) if args.model else load_default_model()
    _, z, c, r, tasks = total_pairs(model, args.train, args.cache_dir)
    names = sorted(set(tasks))
    order = np.random.default_rng(args.seed).permutation(len(names))
    val_tasks = {names[i] for i in order[: max(1, len(names) // 5)]}
    val = np.array([t in val_tasks for t in tasks])
    probes, chosen_penalty = {}, {}
    backbone = model.backbone
    state = set(backbone.state_columns)
    action_blocks = [b for b in backbone.z_block_names if not set(backbone.block_columns([b])) & state]
    block_sets = {name: blocks or action_blocks for name, blocks in BLOCK_SETS.items()}
    for name, blocks in block_sets.items():
        cols = backbone.block_columns(blocks)
        diff = z[c][:, cols] - z[r][:, cols]
        scale = diff[~val].std(axis=0) + 1e-8
        val_acc = {p: accuracy(diff[val] / scale @ fit_probe(diff[~val] / scale, p)) for p in PENALTIES}
        best = max(PENALTIES, key=lambda p: (val_acc[p], p))
        scale = diff.std(axis=0) + 1e-8
        probes[name] = (cols, fit_probe(diff / scale, best) / scale)
        chosen_penalty[name] = {"penalty": best, "validation_accuracy": val_acc[best]}
    rows: dict[str, dict[str, float]] = {}
    counts: dict[str, int] = {}
    by_family: dict[str, list[list]] = {}  # folder -> [env id, pairs, model, text similarity, probe] rows
    for folder in args.heldout:
        table, zh, ch, rh, task_ids = total_pairs(model, folder, args.cache_dir)
        counts[folder] = len(ch)
        text = text_similarity_scores(table)
        scores = model_step_scores(model, table, cache_dir=args.cache_dir)[:, -1]
        margins = {"model": scores[ch] - scores[rh], "text_similarity": text[ch] - text[rh]}
        for name, (cols, w) in probes.items():
            margins[f"probe_{name}"] = (zh[ch][:, cols] - zh[rh][:, cols]) @ w
        for name, margin in margins.items():
            rows.setdefault(name, {})[folder] = accuracy(margin)
        envs = np.array([t.rpartition("@")[0] or t for t in task_ids])  # MCTS-P task ids are env_id@seed
        names_by_size = sorted(set(envs), key=lambda e: (-np.sum(envs == e), e))
        by_family[folder] = [
            [
                env,
                int(np.sum(envs == env)),
                *(round(accuracy(margins[m][envs == env]), 1) for m in FAMILY_COLUMNS),
            ]
            for env in names_by_size
            if np.sum(envs == env) >= args.min_family_pairs
        ]
    header = ["scorer", *args.heldout]
    table_rows = [[name, *(round(row[f], 1) for f in args.heldout)] for name, row in rows.items()]
    table_rows.append(["pairs", *(counts[f] for f in args.heldout)])
    body = "\n".join(
        [
            f"`total` pairwise accuracy (%) on held-out folders; probes fit on the `total` pairs of `{args.train}` "
            "(difference of the two sides' blocks, L2 logistic regression, penalty chosen on 20% of training "
            "tasks). Model: " + (args.model or "the shipped default model") + ".",
            "",
            markdown_table(header, table_rows),
            "",
            "Blocks: " + "; ".join(f"`{n}` = {', '.join(b)}" for n, b in block_sets.items()),
        ]
    )
    for folder, family_rows in by_family.items():
        body += f"\n\n## `{folder}` by family (at least {args.min_family_pairs} `total` pairs)\n\n"
        body += markdown_table(["env id", "pairs", *FAMILY_COLUMNS], family_rows)
    write_results(
        args.out,
        "Pair probe: what the frozen features say about `total`",
        body,
        {
            "accuracy": rows,
            "count": counts,
            "penalty": chosen_penalty,
            "blocks": block_sets,
            "by_family": {
                f: [dict(zip(["env_id", "pairs", *FAMILY_COLUMNS], r, strict=True)) for r in v]
                for f, v in by_family.items()
            },
        },
        machine,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
