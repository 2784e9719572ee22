"""Smoke tests of the agent trainers: PPO on the toy env (sparse and dense with a real tiny default-backbone
reward model, checkpoint and resume), GRPO with a tiny random Qwen2 policy, config/CLI parsing, and PPO on one
MiniWoB++ family in Chromium (marker ``browser``)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from similar_rl.agents.ppo import PPOArgs, evaluate, train
from similar_rl.dimensions import SCORE_KEYS
from similar_rl.harness.settings import build_args, load_yaml

QUIET = {"progress": False, "tensorboard": False}


@pytest.fixture(scope="module")
def scorer():
    """A Scorer over an untrained tiny default-backbone model (real MiniLM + EfficientNet-Lite0 encoders)."""
    from similar_rl.model import SimilarRewardModel
    from similar_rl.scoring import Scorer
    from similar_rl.testing import tiny_default_config

    return Scorer(SimilarRewardModel.build(tiny_default_config()), batch_size=8)


def _episodes(run_dir: str) -> list[dict]:
    with open(f"{run_dir}/episodes.jsonl") as fh:
        return [json.loads(line) for line in fh]


def test_config_layers_and_errors(tmp_path):
    cfg = tmp_path / "ppo.yaml"
    cfg.write_text("env_id: toy/login-form\nreward: dims\nreward_weights: {helpfulness: 0.5}\n")
    args = build_args(PPOArgs, load_yaml(cfg), {"num_envs": 2, "learning_rate": 1})
    assert (args.env_id, args.num_envs, args.learning_rate) == ("toy/login-form", 2, 1.0)
    assert args.reward_weights == {"helpfulness": 0.5}
    with pytest.raises(ValueError, match="unknown dimension"):
        PPOArgs(reward="dims", reward_weights={"helpfulnes": 1.0})
    with pytest.raises(ValueError, match="reward must be one of"):
        PPOArgs(reward="dense")
    with pytest.raises(ValueError, match="num_envs must be an integer"):
        build_args(PPOArgs, {"num_envs": "two"})


def test_cli_parses_overrides(tmp_path):
    import argparse

    from similar_rl.commands import agent

    parser = argparse.ArgumentParser()
    agent.add_arguments(parser)
    ns = parser.parse_args(
        ["ppo", "--config", "configs/ppo_toy.yaml", "--reward", "sparse", "--num-envs", "3"]
    )
    assert (ns.algo, ns.reward, ns.num_envs) == ("ppo", "sparse", 3)
    ns = parser.parse_args(["grpo", "--reward-weights", "{total: 1.0, helpfulness: 0.5}"])
    assert ns.reward_weights == {"total": 1.0, "helpfulness": 0.5}


def test_ppo_sparse_checkpoint_and_resume(tmp_path):
    args = PPOArgs(
        env_id="toy/click-button", reward="sparse", num_envs=2, num_steps=16, total_timesteps=64,
        num_minibatches=2, output_dir=str(tmp_path), run_name="sparse", **QUIET,
    )  # fmt: skip
    summary = train(args)
    assert summary["global_step"] == 64 and summary["episodes"] == 64  # click-button: one-step episodes
    ckpt = tmp_path / "sparse" / "checkpoint"
    assert sorted(p.name for p in ckpt.iterdir()) == ["policy.safetensors", "trainer_state.json"]
    state = json.loads((ckpt / "trainer_state.json").read_text())
    assert state["global_step"] == 64 and state["update"] == 2

    from safetensors.torch import load_file

    before = load_file(str(ckpt / "policy.safetensors"))
    resumed = PPOArgs(**{**args.__dict__, "total_timesteps": 96, "resume": str(ckpt), "run_name": "resumed"})
    summary2 = train(resumed)
    assert summary2["global_step"] == 96  # one more update of 32 steps on top of the checkpoint's 64
    after = load_file(str(tmp_path / "resumed" / "checkpoint" / "policy.safetensors"))
    assert set(before) == set(after)
    assert any(not np.allclose(before[k].numpy(), after[k].numpy()) for k in before if k.startswith("model."))
    greedy = evaluate(summary2["checkpoint"], episodes=3)
    assert greedy["success_rate"] in (0.0, 1 / 3, 2 / 3, 1.0) and greedy["episodes"] == 3
    assert evaluate(summary2["checkpoint"], episodes=3) == greedy  # greedy on fixed seeds: reproducible


def test_ppo_dense_rewards_from_real_model(tmp_path, scorer):
    args = PPOArgs(
        env_id="toy/login-form", reward="total", reward_coef=0.5, num_envs=2, num_steps=8, total_timesteps=16,
        num_minibatches=2, output_dir=str(tmp_path), run_name="dense", **QUIET,
    )  # fmt: skip
    calls = scorer.forward_calls
    summary = train(args, scorer=scorer)
    assert summary["global_step"] == 16
    assert scorer.forward_calls > calls  # the wrapper really scored the steps
    eps = _episodes(summary["run_dir"])
    assert eps, "no episode finished in 8 steps of login-form (max_episode_steps=10 cuts at 10)"
    for ep in eps:
        assert all(np.isfinite(ep[f"similar_{k}"]) for k in SCORE_KEYS)
        # shaped return = env return + coef * sum of per-step totals
        assert ep["shaped_return"] == pytest.approx(
            ep["env_return"] + 0.5 * ep["similar_total"] * ep["length"], rel=1e-4, abs=1e-4
        )


def test_grpo_tiny_qwen2_two_steps(tmp_path, scorer):
    from similar_rl.agents.grpo import GRPOArgs
    from similar_rl.agents.grpo import train as train_grpo
    from similar_rl.testing import build_tiny_qwen2

    policy = build_tiny_qwen2(tmp_path / "policy")
    args = GRPOArgs(
        model_path=str(policy), env_id="toy/click-button", behaviour="random", num_states=4, max_steps=2,
        per_device_train_batch_size=4, num_generations=4, max_completion_length=8, env_reward=True,
        reward_weights={"total": 1.0, "env": 1.0}, eval_episodes=2, output_dir=str(tmp_path), run_name="grpo",
        progress=False, save_steps=1,
    )  # fmt: skip
    summary = train_grpo(args, scorer=scorer)
    assert summary["global_step"] == 2
    assert summary["eval/success_rate"] in (0.0, 0.5, 1.0)  # 2 evaluation episodes
    assert "rewards/similar_helpfulness/mean" in summary["last_rewards"]
    final = tmp_path / "grpo" / "final"
    assert (final / "adapter_model.safetensors").is_file()
    assert not list((tmp_path / "grpo").rglob("*.bin")) and not list((tmp_path / "grpo").rglob("*.pt*"))


@pytest.mark.browser
@pytest.mark.skipif(not shutil.which("chromium") or not shutil.which("chromedriver"), reason="no chromium")
def test_ppo_on_miniwob_click_button(tmp_path):
    args = PPOArgs(
        env_id="miniwob/click-button-v1", reward="sparse", num_envs=1, num_steps=8, total_timesteps=16,
        num_minibatches=2, max_episode_steps=4, output_dir=str(tmp_path), run_name="mw", **QUIET,
    )  # fmt: skip
    summary = train(args)
    assert summary["global_step"] == 16 and summary["episodes"] >= 4
    assert (tmp_path / "mw" / "checkpoint" / "policy.safetensors").is_file()


@pytest.mark.browser
def test_ppo_closes_its_browsers_when_it_fails(tmp_path, monkeypatch):
    import socket

    import similar_rl.agents.ppo as ppo
    from similar_rl.serving import RemoteScorer
    from similar_rl.serving.client import RemoteScoringError

    made = []
    real_make_envs = ppo.make_envs

    def recording_make_envs(args, scorer):  # the real envs, remembered so the test can check them afterwards
        envs = real_make_envs(args, scorer)
        made.extend(envs)
        return envs

    monkeypatch.setattr(ppo, "make_envs", recording_make_envs)
    with socket.socket() as sock:  # a port with no reward server behind it: the first scored step fails
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    args = PPOArgs(
        env_id="miniwob/click-button-v1", reward="total", num_envs=1, num_steps=8, total_timesteps=16,
        num_minibatches=2, output_dir=str(tmp_path), run_name="down", **QUIET,
    )  # fmt: skip
    with pytest.raises(RemoteScoringError):
        train(args, scorer=RemoteScorer(url, timeout=2.0, max_retries=0))
    drivers = [env.unwrapped.instance.driver.service.process for env, _ in made]  # chromedriver processes
    assert drivers and all(proc.poll() is not None for proc in drivers)


def test_a_kill_during_a_checkpoint_save_leaves_the_previous_pair(tmp_path, monkeypatch):
    import torch

    import similar_rl.agents.common as common

    net = torch.nn.Linear(2, 1)
    link = tmp_path / "checkpoint"
    common.save_checkpoint(link, net, None, {"global_step": 8})
    saved = net.weight.detach().clone()
    with torch.no_grad():
        net.weight.add_(1.0)

    def killed(path, state):  # the weights of the new save are on disk, its state is not
        raise KeyboardInterrupt("killed mid-save")

    monkeypatch.setattr(common, "_write_state", killed)
    with pytest.raises(KeyboardInterrupt):
        common.save_checkpoint(link, net, None, {"global_step": 16})
    fresh = torch.nn.Linear(2, 1)
    assert common.load_checkpoint(link, fresh)["global_step"] == 8
    assert torch.equal(fresh.weight, saved)  # weights and state still belong together
    monkeypatch.undo()
    common.save_checkpoint(link, net, None, {"global_step": 16})
    assert common.load_checkpoint(link, fresh)["global_step"] == 16 and torch.equal(fresh.weight, net.weight)
    assert sorted(p.name for p in link.iterdir()) == ["policy.safetensors", "trainer_state.json"]
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("checkpoint.") and p.is_dir()]
    assert len(kept) == 1 and link.resolve() == kept[0].resolve()  # older saves are removed


def test_ppo_trains_with_the_potential_penalty_reward(tmp_path, scorer):
    args = PPOArgs(
        env_id="toy/login-form", reward="potential_penalty", reward_coef=0.5, penalty=0.2, num_envs=2, num_steps=8,
        total_timesteps=16, num_minibatches=2, output_dir=str(tmp_path), run_name="guarded", **QUIET,
    )  # fmt: skip
    summary = train(args, scorer=scorer)
    assert summary["global_step"] == 16
    with pytest.raises(ValueError, match="penalty"):
        PPOArgs(reward="potential_penalty", penalty=-0.1)
