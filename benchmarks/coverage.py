"""Which MiniWoB++ families can MCTS-P learn from? Calibration only (no tree) on every allowed family.

MCTS-P prunes a task whose calibration episodes never succeed: it gives no step records and no pairs. This
benchmark runs just that calibration (``n_calibration`` episodes from the initial state with the collection
policy) on ``--seeds`` of every allowed family the action grammar can act on, and reports per family how many
tasks would be searched. Families the grammar cannot act on are listed with the reason.

Levers are compared as **arms**: ``NAME=POLICY:N_CALIBRATION[:JSON_POLICY_KWARGS]``. The first arm is the
collection's; each further arm runs only on the families no earlier arm could search, so the table says which
lever bought which families. Pairs per family are counted over the ``--data`` folders (the training collection
and the held-out sets).

    .venv/bin/python benchmarks/coverage.py --seeds 0-3 \\
        --arm 'heuristic=heuristic:5:{"temperature": 1.0}' --arm 'more=heuristic:20:{"temperature": 1.0}' \\
        --arm 'random=random:20' --arm 'mixed=mixed:20'

Per-family results are cached in ``runs/coverage/<out stem>.jsonl`` (a rerun resumes); the tables go to
``benchmarks/results/<out stem>.{json,md}``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _common import RESULTS, ROOT, machine_info

from similar_rl.harness.settings import parse_seeds


def parse_arm(text: str) -> dict[str, Any]:
    """``"more=heuristic:20:{...}"`` -> ``{"name": "more", "policy": "heuristic", "n_calibration": 20, ...}``."""
    name, sep, rest = text.partition("=")
    parts = rest.split(":", 2)
    if not sep or not name or len(parts) < 2 or not parts[1].isdigit():
        raise argparse.ArgumentTypeError(f"arm {text!r} must look like NAME=POLICY:N_CALIBRATION[:JSON]")
    kwargs = json.loads(parts[2]) if len(parts) == 3 else {}
    return {"name": name, "policy": parts[0], "n_calibration": int(parts[1]), "policy_kwargs": kwargs}


def calibrate_family(job: dict[str, Any]) -> dict[str, Any]:
    """Calibration episodes of one family under one arm, one task (seed) at a time."""
    from similar_rl.collect.config import CollectConfig
    from similar_rl.collect.mcts import TaskSearch
    from similar_rl.collect.runner import TaskWorker
    from similar_rl.envs.miniwob import env_id_for
    from similar_rl.harness.env_session import TaskFailed

    arm = job["arm"]
    env_id = env_id_for(job["family"])
    cfg = CollectConfig(
        envs=[env_id],
        seeds=job["seeds"],
        n_calibration=arm["n_calibration"],
        policy=arm["policy"],
        policy_kwargs=arm["policy_kwargs"],
        max_steps=job["max_steps"],
        seed=job["seed"],
        max_retries=2,
        step_timeout_s=60,
    )
    worker = TaskWorker(cfg)
    started = time.perf_counter()
    tasks = []
    try:
        for seed in job["seeds"]:
            try:
                session = worker.session_for(env_id)
                search = TaskSearch(cfg, session, worker.policy, None, seed)  # type: ignore[arg-type]
                rollouts = search.calibrate()
                tasks.append({"seed": seed, "successes": sum(r.success for r in rollouts), "error": None})
            except (TaskFailed, ValueError) as exc:
                tasks.append({"seed": seed, "successes": 0, "error": f"{type(exc).__name__}: {exc}"[:300]})
    finally:
        worker.close()
    return {
        "family": job["family"],
        "arm": arm["name"],
        "episodes_per_task": arm["n_calibration"],
        "tasks": tasks,
        "seconds": round(time.perf_counter() - started, 1),
    }


def pairs_per_family(folders: list[Path]) -> tuple[Counter, bool]:
    """Pairs per family over the dataset folders that exist (and whether any does)."""
    from similar_rl.data.dataset import DatasetReader
    from similar_rl.envs.miniwob import task_name

    present = [f for f in folders if (f / "manifest.json").exists()]
    return Counter(task_name(p.env_id) for f in present for p in DatasetReader(f).pairs()), bool(present)


def summarise(family: str, rows: list[dict[str, Any]], pairs: int, have_pairs: bool) -> dict[str, Any]:
    """The coverage entry of one family from its arm rows (in arm order)."""
    first = rows[0]
    n_tasks = len(first["tasks"])
    searched_by = {r["arm"]: sum(t["successes"] > 0 for t in r["tasks"]) for r in rows}
    success = {
        r["arm"]: round(sum(t["successes"] for t in r["tasks"]) / max(1, n_tasks * r["episodes_per_task"]), 4)
        for r in rows
    }
    bought = next((arm for arm, n in searched_by.items() if n > 0), None)
    errors = [t["error"] for r in rows for t in r["tasks"] if t["error"]]
    if bought is None:
        why = (
            f"env failed: {errors[0]}"
            if errors and len(errors) >= n_tasks
            else (
                "no successful calibration episode with any arm ("
                + ", ".join(f"{r['arm']}: {r['episodes_per_task']} per task" for r in rows)
                + ")"
            )
        )
    elif pairs == 0:
        why = (
            "searchable, but no pairs in the training collection" if have_pairs else "no training collection"
        )
    else:
        why = ""
    return {
        "tasks": n_tasks,
        "searched": searched_by[first["arm"]],
        "pairs": pairs,
        "policy_success": success[first["arm"]],
        "why_pruned": why,
        "bought_by": bought,
        "arms": {arm: {"searched": searched_by[arm], "policy_success": success[arm]} for arm in searched_by},
    }


def _due(fams: dict[str, Any], arms: list[str], index: int) -> int:
    """Actable families that no arm before ``arms[index]`` searched."""
    earlier = arms[:index]
    return sum(
        1
        for f in fams.values()
        if f["arms"] and not any(f["arms"].get(a, {}).get("searched", 0) for a in earlier)
    )


def markdown(result: dict[str, Any]) -> str:
    fams = result["families"]
    arms = [a["name"] for a in result["arms"]]
    with_pairs = sum(f["pairs"] > 0 for f in fams.values())
    searchable = sum(f.get("bought_by") is not None for f in fams.values())
    lines = [
        "# MCTS-P coverage of MiniWoB++",
        "",
        f"Calibration only, seeds {result['seeds']}, at most {result['max_steps']} steps per episode. Arms (the "
        "first is the collection's; later arms run only where earlier ones searched nothing): "
        + "; ".join(
            f"`{a['name']}` = {a['policy']} x {a['n_calibration']} episodes"
            + (f" {json.dumps(a['policy_kwargs'])}" if a["policy_kwargs"] else "")
            for a in result["arms"]
        )
        + ".",
        "",
        f"- families listed: {len(fams)} ({sum(f['why_pruned'].startswith('needs') for f in fams.values())} "
        "the action grammar cannot act on)",
        f"- searchable by some arm: {searchable}; by the first arm: "
        f"{sum(f['searched'] > 0 for f in fams.values())}",
        f"- with pairs in {', '.join(f'`{d}`' for d in result['data'])}: {with_pairs}",
        "- bought per arm: "
        + ", ".join(f"{a}: {sum(f.get('bought_by') == a for f in fams.values())}" for a in arms),
        "- families each arm ran on, of those due (not searched by an earlier arm): "
        + ", ".join(
            f"{a}: {sum(a in f.get('arms', {}) for f in fams.values())}/{_due(fams, arms, i)}"
            for i, a in enumerate(arms)
        )
        + " (an arm short of its due families was stopped early: its zeros there are not measured)",
        "",
        "| family | tasks | searched | pairs | policy success | " + " | ".join(arms) + " | why no pairs |",
        "|---|---|---|---|---|" + "---|" * len(arms) + "---|",
    ]
    for name, f in fams.items():
        cells = [f"{f['arms'][a]['searched']}/{f['tasks']}" if a in f.get("arms", {}) else "" for a in arms]
        lines.append(
            f"| {name} | {f['tasks']} | {f['searched']} | {f['pairs']} | {f['policy_success']:.2f} | "
            + " | ".join(cells)
            + f" | {f['why_pruned']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    parser.add_argument("--families", nargs="+", help="default: every allowed family")
    parser.add_argument("--seeds", type=parse_seeds, default=parse_seeds("0-3"))
    parser.add_argument("--arm", type=parse_arm, action="append", dest="arms")
    parser.add_argument("--max-steps", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0, help="base seed of the policies' random streams")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--data",
        type=Path,
        nargs="+",
        default=[ROOT / "data" / "default_train"],
        help="collection folders whose pairs are counted per family (training and held-out sets)",
    )
    parser.add_argument("--out", default="coverage", help="result file stem under benchmarks/results/")
    parser.add_argument(
        "--cached-only",
        action="store_true",
        help="run nothing: summarise what the cache holds (an arm not run on every family it was due on is partial)",
    )
    parser.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="NAME=STEM",
        help="add the first arm of another coverage run (runs/coverage/STEM.jsonl, e.g. one with another adapter) "
        "as a further arm NAME, on the families it covered",
    )
    args = parser.parse_args()
    from tqdm import tqdm

    from similar_rl.collect.families import ALLOWED_FAMILIES, UNACTABLE

    arms = args.arms or [parse_arm('heuristic=heuristic:5:{"temperature": 1.0}')]
    families = args.families or list(ALLOWED_FAMILIES)
    unknown = [f for f in families if f not in ALLOWED_FAMILIES]
    if unknown:
        parser.error(f"families outside the allowed list: {unknown}")
    if len({a["name"] for a in arms}) != len(arms):
        parser.error("arm names must be distinct")
    settings = {"seeds": args.seeds, "max_steps": args.max_steps, "seed": args.seed}
    cache_path = ROOT / "runs" / "coverage" / f"{args.out}.jsonl"
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    done: dict[tuple[str, str], dict[str, Any]] = {}
    if cache_path.exists():
        for line in cache_path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                print(f"skipping an unreadable cache line in {cache_path}", file=sys.stderr)
                continue
            done[(row["family"], row["key"])] = row
    actable = [f for f in families if f not in UNACTABLE]
    started = time.perf_counter()
    searched: set[str] = set()
    with open(cache_path, "a") as cache, multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        for arm in arms:
            key = hashlib.blake2b(
                json.dumps([arm, settings], sort_keys=True).encode(), digest_size=8
            ).hexdigest()
            todo = (
                [] if args.cached_only else [f for f in actable if f not in searched and (f, key) not in done]
            )
            jobs = [{"family": f, "arm": arm, **settings} for f in todo]
            for row in tqdm(pool.imap_unordered(calibrate_family, jobs), total=len(jobs), desc=arm["name"]):
                row["key"] = key
                cache.write(json.dumps(row) + "\n")
                cache.flush()
                done[(row["family"], key)] = row
            arm["key"] = key
            searched |= {
                f
                for f in actable
                if (f, key) in done and any(t["successes"] for t in done[(f, key)]["tasks"])
            }
    for spec in args.also:  # arms of other runs (another adapter version): their first arm's rows
        name, _, stem = spec.partition("=")
        other = [json.loads(line) for line in (cache_path.parent / f"{stem}.jsonl").read_text().splitlines()]
        first = other[0]["key"]
        for row in other:
            if row["key"] == first:
                done[(row["family"], f"also:{name}")] = {**row, "arm": name}
        arms.append({"name": name, "policy": f"(run {stem})", "n_calibration": other[0]["episodes_per_task"],
                     "policy_kwargs": {}, "key": f"also:{name}"})  # fmt: skip
    pairs, have_pairs = pairs_per_family(args.data)
    out_families: dict[str, Any] = {}
    for family in families:
        if family in UNACTABLE:
            out_families[family] = {
                "tasks": 0,
                "searched": 0,
                "pairs": pairs[family],
                "policy_success": 0.0,
                "why_pruned": UNACTABLE[family],
                "bought_by": None,
                "arms": {},
            }
            continue
        rows = [done[(family, a["key"])] for a in arms if (family, a["key"]) in done]
        out_families[family] = summarise(family, rows, pairs[family], have_pairs)
    result = {
        "families": out_families,
        "arms": [{k: v for k, v in a.items() if k != "key"} for a in arms],
        **settings,
        "data": [str(d.relative_to(ROOT) if d.is_relative_to(ROOT) else d) for d in args.data],
        "seconds_this_run": round(time.perf_counter() - started, 1),
        "machine": machine_info(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(result)
    (RESULTS / f"{args.out}.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
