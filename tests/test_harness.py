"""The harness floor: the one episode loop (its rules for actions the env cannot execute) and the run logger."""

import json

import pytest

from similar_rl.envs import InvalidActionError, make_env
from similar_rl.harness import episodes
from similar_rl.harness.run_log import RunLogger


def _scripted(actions):
    it = iter(actions)
    return lambda state, history: next(it)


@pytest.mark.parametrize("rule", ["skip", "noop"])
def test_actions_the_env_cannot_execute_follow_the_rule(rule):
    env, adapter = make_env("toy/click-button")
    state, _ = adapter.reset(env, seed=0)
    good = adapter.candidates(state)
    steps = list(
        episodes.play(env, adapter, _scripted(["click(ref=999)", None, "noop()"]), 0, 3, invalid=rule)
    )
    assert [s.invalid for s in steps] == [True, True, False]
    assert [s.action for s in steps] == ["click(ref=999)", "noop()", "noop()"]
    assert steps[1].history == ("click(ref=999)",) and steps[2].index == 3
    if rule == "skip":
        assert steps[0].outcome is None and steps[0].env_reward == 0.0
    else:
        assert steps[0].outcome is not None  # noop() was executed in its place
    assert steps[2].state.observation_text == state.observation_text  # nothing on the page changed
    episode = episodes.run(env, adapter, _scripted(["click(ref=999)", *good]), 0, 5, invalid=rule)
    assert episode.invalid_actions == 1 and episode.steps >= 2


def test_raise_rule_and_the_episode_summary():
    env, adapter = make_env("toy/click-button")
    with pytest.raises(InvalidActionError):
        episodes.run(env, adapter, _scripted(["click(ref=999)"]), 0, 3)
    with pytest.raises(ValueError, match="invalid must be one of"):
        episodes.run(env, adapter, _scripted([]), 0, 3, invalid="ignore")
    budget = episodes.run(env, adapter, _scripted(["noop()"] * 4), 0, 4)
    assert (budget.ended, budget.steps, budget.success) == ("budget", 4, False)


def test_run_logger_writes_every_row_and_numbers_to_tensorboard(tmp_path):
    with RunLogger(tmp_path, {"lr": 1}, jsonl=True, tensorboard=True) as log:
        log.log({"event": "data", "steps": 3})
        log.log({"loss": 0.25}, step=7)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert (
        rows[0]["event"] == "data"
        and "step" not in rows[0]
        and rows[1] == {**rows[1], "loss": 0.25, "step": 7}
    )
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
