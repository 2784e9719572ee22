"""W&B (offline) and TensorBoard logging from a real GRPO run and from a Gymnasium loop."""

import glob
import json
import os

import numpy as np
import pytest
from trl_helpers import build_reward_model, save_policy, toy_dataset, trainer_args

from similar_rl import SCORE_KEYS
from similar_rl.envs import make_env
from similar_rl.rewards import similar_reward_funcs
from similar_rl.scoring import Scorer
from similar_rl.tracking import GymRewardLogger, SimilarTrackingCallback
from similar_rl.wrappers import SimilarRewardWrapper


@pytest.fixture(scope="module")
def scorer():
    return Scorer(build_reward_model())


def test_grpo_offline_wandb_run_has_series_and_table(scorer, tmp_path, monkeypatch):
    import trl
    import wandb

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_PROJECT", "similar-test")
    # wandb reads WANDB_DIR once per process, when its global setup first runs; an earlier test (e.g. the demo)
    # may have done that already, so reset it to make this run land in tmp_path.
    wandb.teardown()
    funcs = similar_reward_funcs(scorer)
    callback = SimilarTrackingCallback(funcs, backends=("wandb", "tensorboard"), max_samples=4)
    policy, tokenizer = save_policy(str(tmp_path / "policy"))
    trainer = trl.GRPOTrainer(
        model=policy,
        reward_funcs=funcs,
        args=trainer_args("grpo", str(tmp_path / "out"), report_to="wandb"),
        train_dataset=toy_dataset(4),
        processing_class=tokenizer,
        callbacks=[callback],
    )
    trainer.train()
    wandb.finish()
    assert len(callback.logged) == 2 and all(
        f"similar/mean/{k}" in m for m in callback.logged for k in SCORE_KEYS
    )
    (run_dir,) = glob.glob(str(tmp_path / "wandb" / "offline-run-*"))
    (records,) = glob.glob(os.path.join(run_dir, "run-*.wandb"))
    with open(records, "rb") as f:
        data = f.read()  # protobuf records: metric keys are stored as plain UTF-8
    for key in SCORE_KEYS:
        assert data.count(f"train/rewards/similar_{key}/mean".encode()) >= 2  # TRL's per-function series
        assert data.count(f"train/similar/{key}".encode()) >= 2  # the reward functions' log_metric series
        assert data.count(f"similar/mean/{key}".encode()) >= 2  # the callback's means
        assert f"similar/hist/{key}".encode() in data
    assert b"table-file" in data and b"similar/samples" in data
    tables = glob.glob(os.path.join(run_dir, "files", "media", "table", "similar", "samples_*.table.json"))
    assert tables
    with open(tables[-1]) as f:
        table = json.load(f)
    assert table["columns"][-6:] == list(SCORE_KEYS) and table["data"]
    assert "Image" in [row[table["columns"].index("screenshot")] for row in table["data"]]
    assert glob.glob(
        os.path.join(run_dir, "files", "media", "images", "similar", "samples_screenshots_*.png")
    )
    assert glob.glob(str(tmp_path / "out" / "similar" / "events.out.tfevents.*"))  # TensorBoard


def test_gym_reward_logger(scorer, tmp_path):
    env, adapter = make_env("toy/click-button")
    env = SimilarRewardWrapper(env, scorer, adapter)
    log = GymRewardLogger(backends=("tensorboard",), log_dir=str(tmp_path))
    totals = []
    for seed in range(2):
        env.reset(seed=seed)
        for action in ("noop()", env.unwrapped.solution[-1]):
            *_, term, trunc, info = env.step(action)
            totals.append(info["similar"]["total"])
            log.record(info, term, trunc)
    metrics = log.dump(step=4)
    log.close()
    assert metrics["similar/episodes"] == 2.0
    assert metrics["similar/episode/length"] == 2.0
    assert metrics["similar/episode/success_rate"] == 1.0
    assert metrics["similar/episode/total_sum"] == pytest.approx((sum(totals)) / 2)
    assert metrics["similar/step/total"] == pytest.approx(sum(totals) / 4)
    assert glob.glob(str(tmp_path / "similar" / "events.out.tfevents.*"))
    with pytest.raises(KeyError, match="SimilarRewardWrapper"):
        log.record({}, False, False)


def test_gym_reward_logger_raises_the_hack_alarms(scorer):
    env, adapter = make_env("toy/click-button")
    env = SimilarRewardWrapper(env, scorer, adapter, reward_mode="add", coef=1.0)
    log = GymRewardLogger(backends=())
    scores, rewards = [], []

    def play(seed):
        env.reset(seed=seed)
        for action in ["noop()", "noop()", env.unwrapped.solution[-1]]:
            _, reward, term, trunc, info = env.step(action)
            scores.append(info["similar"])
            rewards.append(reward)
            log.record(info, term, trunc, reward=reward, action=action)
            if term or trunc:
                return

    play(seed=0)
    first = log.dump(step=3)
    assert first["similar/alarm/repeated_actions"] == pytest.approx(
        1 / 3
    )  # the second noop() repeats the first
    assert first["similar/alarm/early_failures"] == 0.0  # the episode was solved
    irrelevant = np.mean([s["task_relevance"] < 0.5 for s in scores])
    assert first["similar/alarm/irrelevant_steps"] == pytest.approx(irrelevant)
    assert first["similar/episode/shaped_return"] == pytest.approx(sum(rewards))
    assert "similar/alarm/shaped_up_success_flat" not in first  # needs a previous dump
    log._previous = (
        first["similar/episode/shaped_return"] - 100.0,
        1.0,
    )  # as if the shaped return had been lower
    play(seed=0)
    second = log.dump(step=6)
    assert second["similar/alarm/shaped_up_success_flat"] == 1.0  # shaped return up, success not
