"""Preference pairs: siblings per dimension, total, trajectories, no lost reverse pairs, no binning."""

from __future__ import annotations

import random

import pytest

from similar_rl.data.pairs import Trajectory, build_pairs, build_traj_pairs, pair_id, trajectory_score
from similar_rl.data.records import StepRecord
from similar_rl.dimensions import DIMENSIONS, total_score


def rec(i: int, node: str = "n0", task: str = "t", **labels: float | None) -> StepRecord:
    base = {
        "helpfulness": 0.0,
        "odds_of_success": 0.5,
        "efficiency": 0.0,
        "task_relevance": 1.0,
        "coherence": 1.0,
    }
    base.update(labels)
    return StepRecord(
        record_id=f"{task}/{node}/{i}",
        task_id=task,
        env_id="toy/a",
        seed=0,
        instruction=f"Do {task}",
        step_idx=1,
        action=f"click(ref={i})",
        labels=base,
        node_id=node,
        history=["noop()"],
        screenshot="images/x.png",
    )


def test_one_pair_per_differing_dimension_and_total():
    a = rec(1, helpfulness=0.5, odds_of_success=1.0, task_relevance=1.0)
    b = rec(2, helpfulness=-0.5, odds_of_success=0.0, task_relevance=0.0)
    pairs = build_pairs([a, b])
    assert [p.type for p in pairs] == ["helpfulness", "odds_of_success", "task_relevance", "total"]
    for p in pairs:
        assert (p.chosen, p.rejected) == ("click(ref=1)", "click(ref=2)")
        assert (p.chosen_record, p.rejected_record) == (a.record_id, b.record_id)
        assert p.history == ["noop()"] and p.screenshot == "images/x.png" and p.step_idx == 1
        assert p.pair_id == pair_id(a.record_id, b.record_id, p.type)
    assert pairs[0].margin == pytest.approx(1.0)
    assert pairs[-1].margin == pytest.approx(total_score(a.labels) - total_score(b.labels))


def test_order_of_siblings_does_not_lose_pairs():
    """The reference missed reverse pairs; here every unordered sibling pair counts once, in any input order."""
    recs = [
        rec(i, helpfulness=h, efficiency=e) for i, (h, e) in enumerate([(0.2, -0.1), (0.6, 0.3), (-0.4, 0.0)])
    ]
    expected = {(p.type, p.chosen, p.rejected, p.pair_id) for p in build_pairs(recs)}
    assert len(expected) == 3 * 3  # helpfulness, efficiency, total for each of the 3 sibling pairs
    rng = random.Random(0)
    for _ in range(5):
        shuffled = recs[:]
        rng.shuffle(shuffled)
        assert {(p.type, p.chosen, p.rejected, p.pair_id) for p in build_pairs(shuffled)} == expected


def test_negative_helpfulness_values_are_not_binned_together():
    pairs = build_pairs([rec(1, helpfulness=-0.7), rec(2, helpfulness=-0.1), rec(3, helpfulness=-0.4)])
    h = [(p.chosen, p.rejected) for p in pairs if p.type == "helpfulness"]
    assert sorted(h) == [
        ("click(ref=2)", "click(ref=1)"),
        ("click(ref=2)", "click(ref=3)"),
        ("click(ref=3)", "click(ref=1)"),
    ]


def test_margin_none_labels_nodes_and_duplicates():
    a, b = rec(1, efficiency=0.10), rec(2, efficiency=0.12)
    assert [p.type for p in build_pairs([a, b])] == ["efficiency", "total"]
    assert build_pairs([a, b], min_margin=0.2) == []  # total differs by 5 * 0.02
    assert [p.type for p in build_pairs([a, b], min_margin={"efficiency": 0.01, "total": 1.0})] == [
        "efficiency"
    ]
    # None labels make no pair on that dimension and no total pair
    c, d = rec(1, coherence=None, helpfulness=0.3), rec(2, coherence=1.0)
    assert [p.type for p in build_pairs([c, d])] == ["helpfulness"]
    # different nodes never pair; same action never pairs; empty node ids are ignored
    assert build_pairs([rec(1, node="n0", helpfulness=1.0), rec(2, node="n1")]) == []
    dup = rec(1, helpfulness=0.9)
    dup.record_id = "other"
    assert build_pairs([rec(1), dup]) == []
    assert build_pairs([rec(1, node="", helpfulness=1.0), rec(2, node="")]) == []
    assert [p.type for p in build_pairs([a, b], dimensions=["efficiency"], include_total=False)] == [
        "efficiency"
    ]


def test_bad_input():
    with pytest.raises(ValueError, match="positive"):
        build_pairs([rec(1)], min_margin=0)
    with pytest.raises(ValueError, match="unknown pair type"):
        build_pairs([rec(1)], min_margin={"speed": 1.0})
    with pytest.raises(ValueError, match="unknown dimension"):
        build_pairs([rec(1)], dimensions=["speed"])
    other = rec(2, task="u")
    other.node_id = "n0"
    with pytest.raises(ValueError, match="differ in task_id"):
        build_pairs([rec(1), other])


def test_pair_counts_on_many_random_nodes():
    rng = random.Random(1)
    recs = []
    for n in range(20):
        for i in range(5):
            recs.append(
                rec(
                    i,
                    node=f"n{n}",
                    helpfulness=rng.choice([-0.5, 0.0, 0.5]),
                    odds_of_success=rng.choice([0.0, 1.0]),
                    task_relevance=rng.choice([0.0, 1.0]),
                )
            )
    pairs = build_pairs(recs)
    assert len({p.pair_id for p in pairs}) == len(pairs)
    by_node = {}
    for r in recs:
        by_node.setdefault(r.node_id, []).append(r)
    expected = 0
    for sib in by_node.values():
        for x in range(len(sib)):
            for y in range(x + 1, len(sib)):
                expected += sum(sib[x].labels[d] != sib[y].labels[d] for d in DIMENSIONS)
                expected += total_score(sib[x].labels) != total_score(sib[y].labels)
    assert len(pairs) == expected
    for p in pairs:
        chosen = next(r for r in recs if r.record_id == p.chosen_record)
        rejected = next(r for r in recs if r.record_id == p.rejected_record)
        key = (lambda r: total_score(r.labels)) if p.type == "total" else (lambda r, t=p.type: r.labels[t])
        assert key(chosen) > key(rejected)


def test_trajectory_pairs():
    good = [rec(1, node="a", helpfulness=0.5, odds_of_success=1.0), rec(2, node="b", helpfulness=0.5)]
    bad = [rec(3, node="c", helpfulness=-0.5, odds_of_success=0.0)]
    assert trajectory_score(good) == pytest.approx((0.5 + 1 + 1 + 1 + 0.5 + 0.5 + 1 + 1) / 2)
    t_good = Trajectory.from_steps(good, success=True)
    t_bad = Trajectory.from_steps(bad, success=False)
    other_task = Trajectory("u", "toy/a", "Do u", ["x"], ["noop()"], score=100.0)
    pairs = build_traj_pairs([t_bad, other_task, t_good])
    assert len(pairs) == 1
    p = pairs[0]
    assert p.type == "traj" and p.chosen == "click(ref=1)\nclick(ref=2)" and p.rejected == "click(ref=3)"
    assert p.chosen_steps == t_good.step_ids and p.rejected_steps == ["t/c/3"]
    assert p.margin == pytest.approx(t_good.score - t_bad.score)
    assert build_traj_pairs([t_good, t_good]) == []
    with pytest.raises(ValueError, match="2 step ids but 1 actions"):
        Trajectory("t", "toy/a", "x", ["a", "b"], ["noop()"], 0.0)
