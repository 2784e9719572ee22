"""The supervised warm-up of an LM policy (agents/sft.py) and GRPO continuing from it, with a tiny random Qwen2."""

from __future__ import annotations

import pytest

from similar_rl.agents.grpo import GRPOArgs
from similar_rl.agents.grpo import train as train_grpo
from similar_rl.agents.sft import sft_rows

QUIET = {"progress": False, "tensorboard": False}


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory):
    from similar_rl.collect.synthetic import build_toy_dataset

    return build_toy_dataset(
        tmp_path_factory.mktemp("sft") / "data", env_ids=("toy/click-button", "toy/login-form"), seeds=(0, 1)
    )


def test_sft_rows_keep_each_states_most_successful_child(toy_data):
    from similar_rl.data.dataset import DatasetReader

    rows = sft_rows(toy_data)
    best: dict[str, float] = {}
    for rec in DatasetReader(toy_data).steps():
        best[rec.node_id] = max(best.get(rec.node_id, 0.0), rec.rollout_success)
    assert len(rows) == sum(1 for v in best.values() if v >= 1.0) > 0
    assert {r["env_id"] for r in rows} == {"toy/click-button", "toy/login-form"}
    with pytest.raises(ValueError, match="rollout success >= 1.5"):
        sft_rows(toy_data, min_success=1.5)


def _parse_rate(model_dir, args) -> float:
    """Share of unseen click-button states for which the policy's greedy completion parses as an action."""
    from similar_rl.agents.grpo import act, load_policy
    from similar_rl.envs import make_env

    model, tokenizer = load_policy(GRPOArgs(model_path=str(model_dir)))
    env, adapter = make_env("toy/click-button")
    parsed = 0
    for seed in range(100, 106):
        state = adapter.observe(*env.reset(seed=seed))
        parsed += act(model, tokenizer, state, [], args) is not None
    return parsed / 6


def test_the_warm_up_teaches_the_action_grammar(tmp_path):
    from similar_rl.collect.synthetic import build_toy_dataset
    from similar_rl.testing import build_tiny_qwen2

    data = build_toy_dataset(tmp_path / "data", env_ids=("toy/click-button",), seeds=(0, 1, 2))
    policy = build_tiny_qwen2(tmp_path / "policy", hidden=64)
    args = GRPOArgs(
        model_path=str(policy), env_id="toy/click-button", max_steps=0, eval_episodes=0, lora=False,
        per_device_train_batch_size=4, max_completion_length=16, output_dir=str(tmp_path), run_name="sft",
        sft_steps=40, sft_dataset_dir=str(data), sft_learning_rate=5e-3, **QUIET,
    )  # fmt: skip
    assert _parse_rate(policy, args) < 0.5  # the random policy writes no actions
    warm = train_grpo(args)
    assert warm["sft"]["examples"] == 3 and warm["sft"]["last_loss"] < 0.5 * warm["sft"]["first_loss"]
    assert _parse_rate(tmp_path / "sft" / "final", args) > 0.8  # now it does, on unseen seeds


def test_an_untrained_arm_saves_no_copy_of_the_policy(tmp_path):
    from similar_rl.testing import build_tiny_qwen2

    args = GRPOArgs(
        model_path=str(build_tiny_qwen2(tmp_path / "policy")), max_steps=0, eval_episodes=1,
        max_completion_length=4, output_dir=str(tmp_path), run_name="base", **QUIET,
    )  # fmt: skip
    summary = train_grpo(args)
    assert summary["eval/episodes"] == 1 and "final_model" not in summary
    assert not (tmp_path / "base" / "final").exists()


def test_grpo_goes_on_training_the_warm_up_adapter(tmp_path, toy_data):
    from similar_rl.model import SimilarRewardModel
    from similar_rl.scoring import Scorer
    from similar_rl.testing import build_tiny_qwen2, tiny_default_config

    policy = build_tiny_qwen2(tmp_path / "policy")
    args = GRPOArgs(
        model_path=str(policy), env_id="toy/click-button", sft_steps=2, sft_dataset_dir=str(toy_data),
        states_from="dataset", dataset_dir=str(toy_data), num_states=4, max_steps=1, num_generations=4,
        per_device_train_batch_size=4, max_completion_length=8, eval_episodes=0, output_dir=str(tmp_path),
        run_name="both", **QUIET,
    )  # fmt: skip
    summary = train_grpo(args, scorer=Scorer(SimilarRewardModel.build(tiny_default_config()), batch_size=8))
    assert summary["sft"]["steps"] == 2 and summary["global_step"] == 1
    assert (tmp_path / "both" / "final" / "adapter_model.safetensors").is_file()


def test_warm_up_settings_are_checked():
    with pytest.raises(ValueError, match="sft_steps needs sft_dataset_dir"):
        GRPOArgs(sft_steps=3)
    with pytest.raises(ValueError, match="multi_objective_aggregation must be one of"):
        GRPOArgs(multi_objective_aggregation="mean")
    with pytest.raises(ValueError, match="sft_min_success"):
        GRPOArgs(sft_min_success=2.0)
