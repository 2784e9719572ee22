"""The hf backbone on tiny random Qwen2, Qwen2-VL, Qwen2.5-VL and LLaVA models built offline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from similar_rl.dimensions import SCORE_KEYS
from similar_rl.model import CheckpointError, SimilarConfig, SimilarRewardModel
from similar_rl.testing import build_tiny_llava, build_tiny_qwen2, build_tiny_qwen2_vl
from similar_rl.types import StepInput

OBS = '[1] input_text "Username" (focused)\n[2] button "Submit"'
BUILDERS = {
    "qwen2": build_tiny_qwen2,
    "qwen2_vl": build_tiny_qwen2_vl,
    "qwen2_5_vl": lambda path: build_tiny_qwen2_vl(path, version="2.5"),
    "llava": build_tiny_llava,
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _image(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (60, 50, 3), dtype=np.uint8)


def _steps() -> list[StepInput]:
    a = StepInput("Enter bob and click Submit", "click(ref=2)", ["noop()"], _image(0), OBS)
    b = StepInput("Type alice", "click(ref=1)", [], _image(1), OBS)
    return [a.with_action(x) for x in ("click(ref=2)", 'type(ref=1, text="bob")', "noop()")] + [
        b,
        b.with_action(""),
    ]


def _config(path, **kw) -> SimilarConfig:
    return SimilarConfig(backbone="hf", backbone_path=str(path), gate_hidden=16, gate_layers=1, **kw)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    return {name: build(tmp_path_factory.mktemp(name)) for name, build in BUILDERS.items()}


@pytest.fixture(scope="module")
def models(folders):
    out = {}
    for name, folder in folders.items():
        model = SimilarRewardModel(_config(folder))
        torch.manual_seed(0)
        with torch.no_grad():
            model.experts.weight.normal_()
        out[name] = model
    return out


@pytest.mark.parametrize("family", list(BUILDERS))
def test_scores_and_prefix_cache_equal_full_forward(models, family):
    model = models[family]
    steps = _steps()
    model.backbone.clear_cache()
    misses = model.backbone.prompt_cache.misses
    scores = model.score_steps(steps)
    assert scores.shape == (5, len(SCORE_KEYS)) and torch.isfinite(scores).all()
    assert model.backbone.prompt_cache.misses - misses == 2  # two states, five candidates
    with torch.no_grad():
        x, z = model.backbone.encode(steps)
        x_full, z_full = model.backbone.encode_uncached(steps)
    assert torch.allclose(x, x_full, atol=1e-5) and torch.allclose(z, z_full, atol=1e-5)
    assert torch.equal(x[0], x[2]) and not torch.equal(z[0], z[1])
    # Candidates of the second state are scored again from the LRU; results do not change.
    assert torch.allclose(model.score_steps(steps[3:]), scores[3:], atol=1e-6)


@pytest.mark.parametrize("family", ["qwen2_vl", "llava"])
def test_screenshot_reaches_vlm_and_use_image_switch(models, folders, family):
    step = _steps()[0]
    other = StepInput(step.instruction, step.action, step.history, _image(7), step.observation_text)
    with torch.no_grad():
        assert not torch.allclose(models[family].encode([step])[0], models[family].encode([other])[0])
        text_only = SimilarRewardModel(_config(folders[family], use_image=False))
        assert torch.equal(text_only.encode([step])[0], text_only.encode([other])[0])


def test_save_load_round_trip_copies_backbone(models, tmp_path):
    model = models["qwen2_vl"]
    steps = _steps()
    model.save_pretrained(tmp_path / "ckpt")
    assert (tmp_path / "ckpt" / "backbone" / "config.json").is_file()
    loaded = SimilarRewardModel.from_pretrained(tmp_path / "ckpt")
    assert loaded.config.backbone_path.endswith("backbone")
    assert torch.allclose(model.score_steps(steps), loaded.score_steps(steps), atol=1e-6)


def test_external_backbone_needs_explicit_path(models, folders, tmp_path):
    model = models["qwen2"]
    model.save_pretrained(tmp_path, copy_backbone=False)
    with pytest.raises(CheckpointError, match="backbone_path"):
        SimilarRewardModel.from_pretrained(tmp_path)
    loaded = SimilarRewardModel.from_pretrained(tmp_path, backbone_path=folders["qwen2"])
    assert torch.allclose(model.score_steps(_steps()), loaded.score_steps(_steps()), atol=1e-6)


def test_lora_trains_adapters_only_and_round_trips(folders, tmp_path):
    model = SimilarRewardModel(_config(folders["llava"]))
    names = model.backbone.enable_lora(r=4, alpha=8)
    assert names and all("vision_tower" not in n for n in names)
    trainable = [p for p in model.parameters() if p.requires_grad]
    lora = [p for n, p in model.backbone.named_parameters() if p.requires_grad]
    assert len(lora) == len(names)
    before = [p.detach().clone() for p in lora]
    optimizer = torch.optim.SGD(trainable, lr=0.5)
    model.train()
    steps = _steps()
    with torch.no_grad():
        model.experts.weight.normal_()
    for _ in range(2):
        optimizer.zero_grad()
        loss = -torch.nn.functional.logsigmoid(
            model.score_steps(steps[:1])[:, -1] - model.score_steps(steps[1:2])[:, -1]
        )
        loss.sum().backward()
        optimizer.step()
    model.eval()
    assert any(not torch.equal(a, b) for a, b in zip(before, lora, strict=True))
    model.backbone.clear_cache()
    model.save_pretrained(tmp_path)
    loaded = SimilarRewardModel.from_pretrained(tmp_path)
    assert loaded.backbone.lora_enabled
    assert torch.allclose(model.score_steps(steps), loaded.score_steps(steps), atol=1e-5)
