"""Inference-time scaling: best-of-N, reward-guided tree search, episodes, compare() and `similar-rl search`.

The reward model is a real tiny model (a random tiny Qwen2 from :mod:`similar_rl.testing` through the ``hf``
backbone, experts given random weights so candidates get different scores). The oracle scorer below is a legitimate scorer with privileged access to the
toy env's canonical solution: it checks the selection plumbing without a trained model.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from similar_rl.cli import main
from similar_rl.dimensions import SCORE_KEYS
from similar_rl.envs import make_env
from similar_rl.envs.actions import normalize_action
from similar_rl.policies import make_policy
from similar_rl.scoring import Scorer
from similar_rl.search import BestOfN, RewardGuidedSearch, compare, run_episode, summarize


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    # One intra-op thread: on a shared 2-core machine two spinning torch threads make a forward ~15x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    from similar_rl.testing import tiny_hf_similar_model

    yield tiny_hf_similar_model(tmp_path_factory.mktemp("tiny_qwen2"))
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model_dir(model, tmp_path_factory):
    return model.save_pretrained(tmp_path_factory.mktemp("tiny_similar"))


class OracleScorer:
    """Scores 1 for the next step of the toy env's canonical solution that the history has not done yet, else 0."""

    def __init__(self, env):
        self.env = env
        self.calls = 0

    def score(self, steps):
        self.calls += 1
        solution = self.env.unwrapped.solution
        rows = []
        for step in steps:
            remaining = [a for a in solution if a not in step.history]
            value = float(bool(remaining) and normalize_action(step.action) == remaining[0])
            rows.append(dict.fromkeys(SCORE_KEYS, value))
        return rows


class ConstantScorer:
    """Every candidate scores the same: selection falls back to sampling order and lookahead rewards."""

    def score(self, steps):
        return [dict.fromkeys(SCORE_KEYS, 0.0) for _ in steps]


def test_best_of_n_picks_the_argmax_of_one_forward(model):
    env, adapter = make_env("toy/login-form")
    state, _ = adapter.reset(env, seed=3)
    scorer = Scorer(model)
    selector = BestOfN(make_policy("random", adapter), scorer, n=6)
    action, scored = selector.select(state, [], np.random.default_rng(1))
    actions = [s.action for s in scored]
    assert scorer.forward_calls == 1  # n candidates of one state: one model call
    assert scorer.steps_scored == len(actions)
    assert len(set(actions)) == len(actions)  # deduplicated
    assert set(actions) <= set(adapter.candidates(state))
    values = [s.scores["total"] for s in scored]
    assert action == actions[int(np.argmax(values))]
    assert [s.value for s in scored] == values
    # the same draws with another objective pick that objective's argmax
    by_h = BestOfN(make_policy("random", adapter), scorer, n=6, objective="helpfulness")
    action_h, scored_h = by_h.select(state, [], np.random.default_rng(1))
    assert [s.action for s in scored_h] == actions
    assert action_h == actions[int(np.argmax([s.scores["helpfulness"] for s in scored_h]))]
    assert scorer.forward_calls == 1  # answered from the scorer's cache


def test_best_of_n_without_dedup_keeps_all_samples():
    env, adapter = make_env("toy/click-button")
    state, _ = adapter.reset(env, seed=0)
    selector = BestOfN(make_policy("random", adapter), ConstantScorer(), n=12, dedup=False)
    action, scored = selector.select(state, [], np.random.default_rng(0))
    assert len(scored) == 12 and action == scored[0].action  # ties go to the first sample
    with pytest.raises(ValueError, match="objective"):
        BestOfN(make_policy("random", adapter), ConstantScorer(), objective="speed")
    with pytest.raises(ValueError, match="n must be a positive integer"):
        BestOfN(make_policy("random", adapter), ConstantScorer(), n=0)


def test_oracle_best_of_n_raises_random_success():
    seeds = range(20)
    for env_id, margin in (("toy/click-button", 0.3), ("toy/login-form", 0.2)):
        env, adapter = make_env(env_id)
        random_policy = make_policy("random", adapter)
        selector = BestOfN(make_policy("random", adapter), OracleScorer(env), n=5)
        base = summarize([run_episode(env, adapter, random_policy, s, max_steps=10) for s in seeds])
        scaled = summarize([run_episode(env, adapter, selector, s, max_steps=10) for s in seeds])
        assert scaled["success_rate"] >= base["success_rate"] + margin, (env_id, base, scaled)


def test_tree_search_rebuilds_deterministically_and_returns_a_legal_action(model):
    env, adapter = make_env("toy/login-form")
    state, _ = adapter.reset(env, seed=5)
    history = []
    for action in env.unwrapped.solution[:1]:
        state = adapter.step(env, action).state
        history.append(action)
    page_before = env.unwrapped.page
    snapshot = (state.observation_text, state.screenshot.copy())
    search = RewardGuidedSearch(make_policy("random", adapter), Scorer(model), adapter, n=4, depth=2, beam=2)
    action, root = search.select(state, history, np.random.default_rng(2), env=env, seed=5)
    assert action in adapter.candidates(state) and action in [s.action for s in root]
    assert search.rebuilds >= 2  # up to two branches rebuilt, plus the final restore
    page_after = env.unwrapped.page
    assert page_after is not page_before and page_after == page_before  # rebuilt, and equal
    now = adapter.observe(env.unwrapped._obs())
    assert now.observation_text == snapshot[0] and np.array_equal(now.screenshot, snapshot[1])
    again, _ = search.select(state, history, np.random.default_rng(2), env=env, seed=5)
    assert again == action
    with pytest.raises(ValueError, match="needs env= and seed="):
        search.select(state, history, np.random.default_rng(2))


def test_tree_search_with_env_reward_finds_the_target():
    env, adapter = make_env("toy/click-button")
    search = RewardGuidedSearch(
        make_policy("random", adapter), ConstantScorer(), adapter, n=40, depth=1, beam=8, use_env_reward=True
    )
    results = [run_episode(env, adapter, search, seed, max_steps=3) for seed in range(5)]
    assert all(r.success and r.steps == 1 for r in results)
    # without the env reward, constant scores leave the first sample: often a wrong button
    blind = RewardGuidedSearch(
        make_policy("random", adapter), ConstantScorer(), adapter, n=40, depth=2, beam=8
    )
    assert sum(run_episode(env, adapter, blind, seed, max_steps=3).success for seed in range(5)) < 5


def test_compare_json_keys(model):
    scorer = Scorer(model)
    result = compare(
        ["toy/click-button"],
        [0, 1],
        lambda adapter: make_policy("random", adapter),
        lambda adapter: BestOfN(make_policy("random", adapter), scorer, n=3),
        max_steps=3,
    )
    for arm in ("base", "scaled"):
        assert set(result[arm]) >= {"success_rate", "mean_steps", "wall_time_s", "episodes"}
        log = result["per_env"]["toy/click-button"][arm]["episode_log"]
        assert result[arm]["episodes"] == 2 and len(log) == 2
        assert result[arm]["success_rate"] == pytest.approx(np.mean([e["success"] for e in log]))
        assert result["per_env"]["toy/click-button"][arm]["episodes"] == 2
    json.dumps(result)
    with pytest.raises(ValueError, match="seeds is empty"):
        compare(["toy/click-button"], [], make_policy, make_policy)


def test_cli_search_on_toy_env(model_dir, tmp_path, capsys):
    out = tmp_path / "search.json"
    argv = ["search", "--envs", "toy/click-button", "--seeds", "0-1", "--n", "3", "--model", str(model_dir)]
    assert main([*argv, "--max-steps", "3", "--json", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "| toy/click-button | 2 |" in printed and "**overall**" in printed
    data = json.loads(out.read_text())
    assert set(data) >= {"base", "scaled", "per_env", "config"}
    assert data["config"]["n"] == 3 and data["scaled"]["episodes"] == 2
    assert data["scorer"]["forward_calls"] >= 1


def test_cli_search_rejects_bad_input(tmp_path, capsys):
    assert main(["search", "--envs", "toy/click-button", "--model", str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err
    assert main(["search", "--model", str(tmp_path)]) == 2
    assert "--envs" in capsys.readouterr().err


def test_cli_search_tree_from_yaml_config(model_dir, tmp_path, capsys):
    config = tmp_path / "search.yaml"
    config.write_text(
        "held_out_families: [login-form]\nenvs: [toy/login-form]\nseeds: 0-1\nmethod: tree\ndepth: 2\nbeam: 2\n"
        f"n: 3\nmax_steps: 4\nmodel: {model_dir}\n"
    )
    out = tmp_path / "tree.json"
    assert (
        main(
            ["search", "--config", str(config), "--policy", "heuristic", "--json", str(out), "--no-progress"]
        )
        == 0
    )
    data = json.loads(out.read_text())
    assert data["config"]["method"] == "tree" and data["config"]["policy"] == "heuristic"
    assert data["config"]["seeds"] == [0, 1] and data["scaled"]["episodes"] == 2
    config.write_text("envs: [toy/login-form]\nbeams: 2\n")
    assert main(["search", "--config", str(config)]) == 2
    assert "unknown key(s) ['beams']" in capsys.readouterr().err
