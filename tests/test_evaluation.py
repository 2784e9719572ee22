"""Pairwise accuracy per type, tie rules and the baselines."""

from __future__ import annotations

import numpy as np
import pytest

from similar_rl.collect.synthetic import build_toy_dataset
from similar_rl.data.dataset import load_dataset_folder
from similar_rl.data.records import PairRecord
from similar_rl.dimensions import SCORE_KEYS
from similar_rl.evaluation import (
    ROLLOUT_TYPES,
    clear_margin_pairs,
    evaluate,
    format_table,
    no_gate_scores,
    pairwise_accuracy,
    random_scores,
    rule_judge_scores,
    text_similarity_scores,
)
from similar_rl.train.data import InputFactory, build_pair_table

OBS = '[1] button "Submit"\n[2] label "Name"\n[3] button "Cancel"'


def _pair(ptype: str, chosen: str, rejected: str, i: int = 0) -> PairRecord:
    return PairRecord(
        pair_id=f"p{i}",
        type=ptype,
        task_id="t",
        env_id="toy/a",
        instruction="Click Submit",
        chosen=chosen,
        rejected=rejected,
        observation_text=OBS,
    )


@pytest.fixture(scope="module")
def toy_pairs(tmp_path_factory):
    folder = build_toy_dataset(
        tmp_path_factory.mktemp("d"), ["toy/click-button", "toy/login-form"], seeds=[0, 1]
    )
    data = load_dataset_folder(folder)
    return folder, build_pair_table(data.pairs, data.steps, InputFactory(folder))


def test_accuracy_uses_the_type_column_and_tie_rules():
    table = build_pair_table(
        [_pair("coherence", "click(ref=1)", "noop()", 0), _pair("total", "click(ref=1)", "click(ref=3)", 1)],
        [],
        InputFactory(None),
    )
    scores = np.zeros((len(table.inputs), len(SCORE_KEYS)))
    scores[0, SCORE_KEYS.index("coherence")] = 1.0  # chosen wins on coherence; total is a tie everywhere
    acc, count = pairwise_accuracy(scores, table)
    assert acc == {"coherence": 1.0, "total": 0.5, "average": 0.75}
    assert count == {"coherence": 1, "total": 1, "average": 2}
    acc, _ = pairwise_accuracy(scores, table, ties="wrong")
    assert acc["total"] == 0.0
    scores[0, SCORE_KEYS.index("total")] = -1.0  # now total is wrong
    assert pairwise_accuracy(scores, table)[0]["total"] == 0.0
    with pytest.raises(ValueError, match="shape"):
        pairwise_accuracy(scores[:1], table)
    with pytest.raises(ValueError, match="ties"):
        pairwise_accuracy(scores, table, ties="coin")


def test_traj_uses_mean_step_total(toy_pairs):
    _, table = toy_pairs
    traj = table.of_types(["traj"])
    assert len(traj) > 0
    total = np.zeros(len(traj.inputs))
    for c in traj.chosen:
        total[c] += 1.0  # every chosen trajectory step scores higher
    acc, count = pairwise_accuracy(total, traj)
    assert acc["traj"] == 1.0 and count["traj"] == len(traj)


def test_baselines(toy_pairs):
    _, table = toy_pairs
    rnd = pairwise_accuracy(random_scores(table, seed=0), table)[0]["average"]
    assert 0.3 < rnd < 0.7
    assert not np.array_equal(random_scores(table, 0), random_scores(table, 1))
    rule = rule_judge_scores(table)
    assert set(np.unique(rule)) <= {0.0, 1.0, 2.0} and rule.max() == 2.0
    by_action = dict(zip([s.action for s in table.inputs], rule, strict=True))
    assert by_action["noop()"] < 2.0  # the rule judge finds noop irrelevant
    sim = text_similarity_scores(table)
    assert sim.shape == (len(table.inputs),) and np.all(np.abs(sim) <= 1.0 + 1e-6)
    scores = np.arange(len(table.inputs) * 6, dtype=float).reshape(-1, 6)
    fixed = no_gate_scores(
        scores, {"helpfulness": 1, "odds_of_success": 0, "efficiency": 0, "task_relevance": 0, "coherence": 0}
    )
    assert np.array_equal(fixed[:, -1], scores[:, 0]) and np.array_equal(fixed[:, :5], scores[:, :5])


def test_evaluate_baselines_only_and_table(toy_pairs):
    folder, _ = toy_pairs
    report = evaluate(None, folder, baselines=["random", "rule_judge"])
    assert "accuracy" not in report and set(report["baselines"]) == {"random", "rule_judge"}
    for row in report["baselines"].values():
        assert set(row["accuracy"]) == set(row["count"])
        for key, v in row["accuracy"].items():  # hits are 1 or 0.5 (ties): accuracy * 2 * count is whole
            if key != "average":
                assert (
                    0 <= v <= 1 and abs(v * 2 * row["count"][key] - round(v * 2 * row["count"][key])) < 1e-6
                )
    text = format_table({k: v["accuracy"] for k, v in report["baselines"].items()})
    assert text.splitlines()[0].startswith("| model | helpfulness")
    with pytest.raises(ValueError, match="unknown baseline"):
        evaluate(None, folder, baselines=["oracle"])


def test_clear_margin_filter_keeps_judge_pairs_and_drops_unclear_rollout_pairs(tmp_path):
    from similar_rl.collect.config import CollectConfig
    from similar_rl.collect.runner import collect

    folder = tmp_path / "r3"
    cfg = CollectConfig(
        envs=["toy/login-form", "toy/checkboxes"], seeds=[0, 1, 2], n_children=4, rollouts_per_child=3,
        policy="heuristic", policy_kwargs={"temperature": 2.0}, max_steps=8, save_screenshots=False,
    )  # fmt: skip
    collect(cfg, folder, progress=False)
    every = evaluate(None, folder, baselines=["rule_judge"])["baselines"]["rule_judge"]["count"]
    clear = evaluate(None, folder, baselines=["rule_judge"], clear_margin=1.0)
    kept = clear["baselines"]["rule_judge"]["count"]
    assert clear["clear_margin"] == 1.0
    for ptype in ("task_relevance", "coherence", "traj"):
        assert kept.get(ptype) == every.get(ptype)  # no rollout noise: all kept
    assert sum(kept.get(t, 0) for t in ROLLOUT_TYPES) < sum(every.get(t, 0) for t in ROLLOUT_TYPES)
    data = load_dataset_folder(folder)
    by_id = {s.record_id: s for s in data.steps}
    for pair in clear_margin_pairs(data.pairs, data.steps, 1.0):
        if pair.type in ROLLOUT_TYPES:
            a, b = by_id[pair.chosen_record], by_id[pair.rejected_record]
            assert a.rollout_success != b.rollout_success
