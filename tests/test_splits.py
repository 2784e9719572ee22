"""Splits by family or task: disjoint, seeded, saved and loaded."""

from __future__ import annotations

import pytest
from test_dataset import make_task

from similar_rl.data.pairs import build_pairs
from similar_rl.data.splits import (
    Split,
    check_disjoint,
    random_family_split,
    random_task_split,
    split_by_family,
)


def records():
    out = []
    for fam in ("toy/a", "toy/b", "toy/c", "toy/d", "toy/e"):
        for seed in range(3):
            out += make_task(f"{fam}-{seed}", env_id=fam)
    return out


def test_split_by_family_and_pairs_follow():
    recs = records()
    split = split_by_family(recs, eval_families=["toy/c", "toy/e"])
    parts = split.apply(recs)
    assert {r.env_id for r in parts["eval"]} == {"toy/c", "toy/e"}
    assert len(parts["train"]) + len(parts["eval"]) == len(recs)
    pairs = split.apply(build_pairs(recs))
    assert {p.task_id for p in pairs["train"]}.isdisjoint({p.task_id for p in pairs["eval"]})
    with pytest.raises(ValueError, match=r"eval families \['toy/z'\] have no records"):
        split_by_family(recs, eval_families=["toy/z"])
    with pytest.raises(ValueError, match="leave at least one"):
        split_by_family(recs, eval_families=["toy/a", "toy/b", "toy/c", "toy/d", "toy/e"])


def test_random_splits_are_seeded_and_disjoint(tmp_path):
    recs = records()
    a, b = random_family_split(recs, 0.4, seed=3), random_family_split(recs, 0.4, seed=3)
    assert a == b and len(a.splits["eval"]) == 2 and len(a.splits["train"]) == 3
    assert any(random_family_split(recs, 0.4, seed=s).splits != a.splits for s in range(4, 10))
    t = random_task_split(recs, eval_fraction=0.2, val_fraction=0.2, seed=0)
    assert sorted(len(v) for v in t.splits.values()) == [3, 3, 9]
    parts = t.apply(recs)
    check_disjoint(parts)
    t.save(tmp_path / "split.json")
    assert Split.load(tmp_path / "split.json") == t
    with pytest.raises(ValueError, match="too few"):
        random_family_split(recs[:3], 0.5)


def test_no_task_in_two_splits():
    with pytest.raises(ValueError, match="in both split 'train' and split 'eval'"):
        Split("family", {"train": ["toy/a"], "eval": ["toy/a"]})
    recs = records()
    with pytest.raises(ValueError, match="is in no split"):
        Split("family", {"train": ["toy/a"]}).apply(recs)
    assert len(Split("family", {"train": ["toy/a"]}).apply(recs, strict=False)["train"]) == 9
    # records of one task id under two families would put the task in two splits
    clash = make_task("x-0", env_id="toy/a") + make_task("x-0", env_id="toy/b")
    with pytest.raises(ValueError, match="task 'x-0' is in both"):
        Split("family", {"train": ["toy/a"], "eval": ["toy/b"]}).apply(clash)
