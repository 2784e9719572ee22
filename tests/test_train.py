"""Triple-M training: config, ridge, gate, LoRA, the trainer and the CLI, on toy data with tiny real models."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
import torch

from similar_rl.cli import main
from similar_rl.collect.synthetic import build_toy_dataset
from similar_rl.data.dataset import load_dataset_folder
from similar_rl.evaluation import evaluate
from similar_rl.model import SimilarRewardModel
from similar_rl.train.config import TrainConfig
from similar_rl.train.data import InputFactory, build_pair_table, build_step_table
from similar_rl.train.features import FeatureCache, extract_features, feature_fingerprint
from similar_rl.train.stage1_ridge import expert_targets, fit_experts


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    train = build_toy_dataset(root / "train", ["toy/click-button", "toy/login-form"], seeds=[0], n_children=3)
    held = build_toy_dataset(root / "held", ["toy/click-button"], seeds=[2, 3], n_children=3)
    return train, held


@pytest.fixture(scope="module")
def tiny_vlms(tmp_path_factory):
    from similar_rl.testing import build_tiny_llava, build_tiny_qwen2_vl

    root = tmp_path_factory.mktemp("models")
    return {"qwen2_vl": build_tiny_qwen2_vl(root / "qwen2vl"), "llava": build_tiny_llava(root / "llava")}


def _hf_model_config(path) -> dict:
    return {"backbone": "hf", "backbone_path": str(path), "gate_hidden": 16, "gate_layers": 1}


# -- config ---------------------------------------------------------------------------------------------------------
def test_config_yaml_roundtrip_and_errors(tmp_path):
    path = tmp_path / "c.yaml"
    TrainConfig(gate_steps=7, pair_types=["total"]).save_yaml(path)
    assert TrainConfig.from_yaml(path).gate_steps == 7
    path.write_text("gate_stepz: 3\n")
    with pytest.raises(ValueError, match=r"c.yaml: unknown train config key\(s\) \['gate_stepz'\]"):
        TrainConfig.from_yaml(path)
    with pytest.raises(ValueError, match="pair_types"):
        TrainConfig(pair_types=["speed"])
    with pytest.raises(ValueError, match="ridge_alphas"):
        TrainConfig(ridge_alphas=[0.0])
    from pathlib import Path

    from similar_rl.model.backbones import BACKBONES

    configs = sorted(Path("configs").glob("train_*.yaml"))
    assert len(configs) >= 5  # default, cpu default, hf VLM, joint, SmolLM2
    for path in configs:
        assert TrainConfig.from_yaml(path).model["backbone"] in BACKBONES


# -- stage 1 --------------------------------------------------------------------------------------------------------
def test_ridge_skips_missing_labels_and_beats_zero():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(120, 40))
    labels = np.clip(z[:, :5] * 0.2, -1, 1)
    labels[:, 3:] = (labels[:, 3:] > 0).astype(float)
    labels[::7, 4] = np.nan  # missing coherence labels
    weights = {"helpfulness": 3, "odds_of_success": 5, "efficiency": 5, "task_relevance": 1, "coherence": 1}
    names = ["helpfulness", "odds_of_success", "efficiency", "task_relevance", "coherence", "all"]
    targets = expert_targets(labels, names, [3, 5, 5, 1, 1, 1], weights)
    assert np.isnan(targets[0, 4]) and np.isnan(targets[0, 5]) and not np.isnan(targets[0, 0])
    groups = [f"task{i % 10}" for i in range(120)]
    w, b, fits = fit_experts(z, targets, names, groups, alphas=[1e-4, 1e-2, 1.0, 100.0])
    assert fits["coherence"].n_train + fits["coherence"].n_val == 120 - len(range(0, 120, 7))
    for name, fit in fits.items():
        assert fit.val_mse < fit.val_mse_zero, name
    pred = z @ w.T + b
    rows = np.isfinite(targets[:, 0])
    assert np.mean((pred[rows, 0] - targets[rows, 0]) ** 2) < np.mean(targets[rows, 0] ** 2)


def test_advantage_fit_ranks_siblings_where_a_confounded_plain_fit_cannot():
    """States differ by a value the features do not show; better states happen to offer actions with a larger
    action feature, though within a state a larger one is worse. Plain ridge learns the confound; the advantage
    fit, which compares siblings only, learns the true within-state effect."""
    rng = np.random.default_rng(0)
    n_states, n_children = 60, 4
    value = rng.normal(size=n_states)  # hidden state value
    state_feature = rng.normal(size=(n_states, 3))  # observed, unrelated to the value
    rows_state = np.repeat(np.arange(n_states), n_children)
    action = 2.0 * value[rows_state] + rng.normal(size=len(rows_state))  # confounded with the value
    y = 3.0 * value[rows_state] - 1.0 * action + 0.1 * rng.normal(size=len(rows_state))
    z = np.c_[state_feature[rows_state], action]
    groups = [f"task{s % 12}" for s in rows_state]
    states = [f"s{s}" for s in rows_state]
    alphas = [1e-3, 1e-1, 10.0]

    def sibling_accuracy(w):
        score = z @ w
        pairs = [
            (i, j)
            for i in range(len(y))
            for j in range(len(y))
            if rows_state[i] == rows_state[j] and y[i] > y[j]
        ]
        return np.mean([score[i] > score[j] for i, j in pairs])

    fit = functools.partial(fit_experts, z, y[:, None], ["helpfulness"], groups, alphas)
    w_plain, _, _ = fit()
    w_adv, _, fits = fit(fit="advantage", states=states, state_columns=[0, 1, 2], action_columns=[3])
    assert w_plain[0, 3] > 0 and sibling_accuracy(w_plain[0]) < 0.2
    assert w_adv[0, 3] == pytest.approx(-1.0, abs=0.05) and sibling_accuracy(w_adv[0]) > 0.95
    assert fits["helpfulness"].alpha_action in alphas
    for match, kwargs in [
        ("state key per row", {}),
        ("state columns", {"states": states}),
        ("action columns", {"states": states, "state_columns": [0, 1, 2], "action_columns": [9]}),
        ("overlap", {"states": states, "state_columns": [0, 1, 3], "action_columns": [3]}),
    ]:
        with pytest.raises(ValueError, match=match):
            fit(fit="advantage", **kwargs)
    with pytest.raises(ValueError, match="ridge_fit"):
        TrainConfig(ridge_fit="dueling")


# -- the trainer on tiny VLMs (all stages) --------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("family", ["qwen2_vl", "llava"])
def test_train_all_stages_tiny_vlm(family, toy_data, tiny_vlms, tmp_path):
    from similar_rl.model import SimilarConfig, SimilarRewardModel
    from similar_rl.train.trainer import train

    train_dir, held_dir = toy_data
    config = TrainConfig(
        model=_hf_model_config(tiny_vlms[family]),
        gate_steps=60,
        gate_batch_size=64,
        gate_lr=3e-3,
        lora=True,
        lora_steps=3,
        lora_batch_pairs=2,
        lora_lr=1e-2,
        cache_dir=str(tmp_path / "cache"),
        device="cpu",
        progress=False,
        log_every=20,
    )
    model = SimilarRewardModel.build(SimilarConfig.from_dict(config.model))
    gate_before = [p.detach().clone() for p in model.gate.parameters()]
    eval_data = held_dir if family == "qwen2_vl" else None
    result = train(train_dir, tmp_path / "out", config, model=model)
    summary = result.summary
    # Stage 1: the experts fit better than predicting zero; stage 2: the BT loss went down and the gate changed.
    assert any(m["val_mse"] < m["val_mse_zero"] for m in summary["stage1"].values())
    assert summary["stage2"]["end_loss"] < summary["stage2"]["start_loss"]
    assert any(not torch.equal(a, b) for a, b in zip(gate_before, model.gate.parameters(), strict=True))
    # Stage 3: LoRA adapters exist, were trained (lora_B starts at zero) and are saved.
    lora = {k: v for k, v in model.backbone.extra_state_dict().items() if "lora_B" in k}
    assert lora and any(v.abs().sum() > 0 for v in lora.values())
    assert summary["stage3"]["steps"] == 3
    # Outputs: checkpoint, config, metrics, eval.
    out = tmp_path / "out"
    for name in (
        "config.json",
        "model.safetensors",
        "train_config.yaml",
        "metrics.jsonl",
        "train_summary.json",
    ):
        assert (out / name).is_file(), name
    events = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("stage2/loss" in e for e in events) and any("stage3/loss" in e for e in events)
    if eval_data is not None:
        report = evaluate(result.model, eval_data)
        assert set(report["accuracy"]) == set(report["count"])
        again = evaluate(
            SimilarRewardModel.from_pretrained(out), eval_data
        )  # the saved model's report is the trained model's
        assert again["accuracy"] == pytest.approx(report["accuracy"])
    # Save/load round trip gives identical scores.
    data = load_dataset_folder(held_dir)
    steps = [InputFactory(held_dir).from_step(r) for r in data.steps[:6]]
    reloaded = SimilarRewardModel.from_pretrained(out)
    assert torch.allclose(model.score_steps(steps), reloaded.score_steps(steps), atol=1e-5)


def test_exclude_envs_leaves_families_out(toy_data, tiny_vlms, tmp_path):
    from similar_rl.train.trainer import train

    train_dir, _ = toy_data
    data = load_dataset_folder(train_dir)
    kept = [s for s in data.steps if s.env_id != "toy/login-form"]
    assert 0 < len(kept) < len(data.steps)
    config = TrainConfig(
        model=_hf_model_config(tiny_vlms["qwen2_vl"]),
        exclude_envs=["toy/login-form"],
        gate_steps=2,
        cache_dir=str(tmp_path / "cache"),
        device="cpu",
        progress=False,
    )
    counts = train(train_dir, None, config).summary["counts"]
    assert counts["steps"] == len({s.record_id for s in kept})
    assert counts["pairs"] == sum(p.env_id != "toy/login-form" for p in data.pairs)
    # Task-wise: one task of every family left out, the other tasks of the same families kept.
    left_out = sorted({s.task_id for s in kept})[::2]
    config.exclude_envs, config.exclude_tasks = [], left_out
    counts = train(train_dir, None, config).summary["counts"]
    assert counts["steps"] == len({s.record_id for s in data.steps if s.task_id not in left_out})
    assert counts["pairs"] == sum(p.task_id not in left_out for p in data.pairs)
    config.exclude_envs = ["toy/login-form"]
    # The hf backbone's z mixes state and action: the advantage fit is refused before anything is encoded.
    config.ridge_fit, config.cache_dir = "advantage", str(tmp_path / "advantage_cache")
    with pytest.raises(ValueError, match="backbone 'hf' does not"):
        train(train_dir, None, config)
    assert not (tmp_path / "advantage_cache").exists()
    with pytest.raises(ValueError, match="exclude_envs"):
        TrainConfig(exclude_envs=[3])
    with pytest.raises(ValueError, match="exclude_tasks must be a list of task ids"):
        TrainConfig(exclude_tasks={"t": 1})
    assert TrainConfig(exclude_tasks="t/0").exclude_tasks == ["t/0"]


def test_feature_cache_reuse_and_fingerprint(toy_data, tiny_vlms, tmp_path):
    from similar_rl.model import SimilarConfig, SimilarRewardModel

    train_dir, _ = toy_data
    data = load_dataset_folder(train_dir)
    inputs = build_step_table(data.steps[:10], InputFactory(train_dir)).inputs
    model = SimilarRewardModel.build(SimilarConfig.from_dict(_hf_model_config(tiny_vlms["qwen2_vl"])))
    x1, z1 = extract_features(model, inputs, batch_size=4, cache_dir=tmp_path, progress=False)
    folder = tmp_path / feature_fingerprint(model)
    assert len(FeatureCache(folder)) == len(inputs)
    x2, z2 = extract_features(model, inputs[::-1], batch_size=4, cache_dir=tmp_path, progress=False)
    assert torch.equal(x1.flip(0), x2) and torch.equal(z1.flip(0), z2)
    assert len(list(folder.glob("shard-*"))) == 1  # nothing new was encoded
    # Head settings do not change the fingerprint; ablation switches do.
    heads = SimilarRewardModel.build(
        SimilarConfig.from_dict({**_hf_model_config(tiny_vlms["qwen2_vl"]), "gate_hidden": 8})
    )
    text_only = SimilarRewardModel.build(
        SimilarConfig.from_dict({**_hf_model_config(tiny_vlms["qwen2_vl"]), "use_image": False})
    )
    assert feature_fingerprint(heads) == feature_fingerprint(model) != feature_fingerprint(text_only)
    fresh, _ = extract_features(model, inputs[:3], use_cache=False, progress=False)
    assert torch.allclose(fresh, x1[:3], atol=1e-5)


def test_pair_table_traj_groups(toy_data):
    train_dir, _ = toy_data
    data = load_dataset_folder(train_dir)
    table = build_pair_table(data.pairs, data.steps, InputFactory(train_dir))
    traj = [i for i, t in enumerate(table.types) if t == "traj"]
    assert traj and all(len(table.chosen[i]) >= 1 for i in traj)
    assert max(len(table.chosen[i]) for i in traj) > 1  # the login form takes several steps
    ptr, flat = table.side_csr()
    assert len(ptr) == 2 * len(table) + 1 and flat.max() < len(table.inputs)
    bad = [p for p in data.pairs if p.type == "traj"][:1]
    with pytest.raises(ValueError, match="not in the step records"):
        build_pair_table(bad, [], InputFactory(train_dir))


def test_advantage_action_blocks_by_name():
    from similar_rl.model import SimilarRewardModel
    from similar_rl.testing import tiny_default_config
    from similar_rl.train.stage1_ridge import advantage_columns

    model = SimilarRewardModel(tiny_default_config(use_image=False))
    backbone = model.backbone
    assert backbone.z_block_names[-1] == "similarity" and len(backbone.z_block_names) == len(
        backbone.z_blocks
    )
    state, action = advantage_columns(model)
    assert (state, action) == (backbone.state_columns, backbone.action_columns)
    assert action == backbone.block_columns(["structural", "similarity"])
    _, wider = advantage_columns(model, ["instruction_x_action", "similarity", "structural"])
    start, end = backbone.z_blocks[backbone.z_block_names.index("instruction_x_action")]
    assert wider == sorted([*range(start, end), *action]) and not set(wider) & set(state)
    with pytest.raises(ValueError, match=r"\['screenshot'\] are not blocks"):
        advantage_columns(model, ["structural", "screenshot"])
    with pytest.raises(ValueError, match=r"\['history'\] describe the state"):
        advantage_columns(model, ["history", "structural"])
    for bad in ("structural", [], [3]):
        with pytest.raises(ValueError, match="ridge_action_blocks must be null or a non-empty list"):
            TrainConfig(ridge_fit="advantage", ridge_action_blocks=bad)
    with pytest.raises(ValueError, match="applies only to ridge_fit: advantage"):
        TrainConfig(ridge_fit="plain", ridge_action_blocks=["structural"])


@pytest.mark.slow
def test_train_default_backbone(toy_data, tmp_path):
    from similar_rl.model import SimilarRewardModel
    from similar_rl.testing import tiny_default_config
    from similar_rl.train.trainer import train

    train_dir, _ = toy_data
    config = TrainConfig(
        model=tiny_default_config().to_dict(),
        gate_steps=40,
        gate_batch_size=128,
        cache_dir=str(tmp_path / "cache"),
        device="cpu",
        progress=False,
    )
    result = train(train_dir, tmp_path / "out", config)
    assert result.summary["stage2"]["end_loss"] < result.summary["stage2"]["start_loss"]
    # The advantage fit weighs only the backbone's state and action columns (the action embeddings get none).
    config.ridge_fit = "advantage"
    advantage = train(train_dir, None, config)
    backbone = advantage.model.backbone
    unused = sorted(set(range(backbone.z_dim)) - set(backbone.state_columns) - set(backbone.action_columns))
    weight = advantage.model.experts.weight.detach()  # (n_experts, z_dim)
    assert unused and torch.all(weight[:, unused] == 0) and torch.any(weight[:, backbone.action_columns] != 0)
    assert all("alpha_action" in m for m in advantage.summary["stage1"].values())
    # Named action blocks widen the action part: the instruction x action products get weight too.
    config.ridge_action_blocks = ["instruction_x_action", "structural", "similarity"]
    wider = train(train_dir, None, config).model.experts.weight.detach()
    products = backbone.block_columns(["instruction_x_action"])
    assert torch.all(weight[:, products] == 0) and torch.any(wider[:, products] != 0)
    steps = [InputFactory(train_dir).from_step(r) for r in load_dataset_folder(train_dir).steps[:4]]
    reloaded = SimilarRewardModel.from_pretrained(tmp_path / "out")
    assert torch.allclose(result.model.score_steps(steps), reloaded.score_steps(steps), atol=1e-5)
    with pytest.raises(NotImplementedError, match="no LoRA hook"):
        from similar_rl.train.stage3_lora import enable_lora

        enable_lora(result.model, TrainConfig(lora=True))


def test_cli_train_then_eval(toy_data, tiny_vlms, tmp_path, capsys):
    train_dir, held_dir = toy_data
    out = tmp_path / "model"
    args = [
        "train",
        "--data",
        str(train_dir),
        "--out",
        str(out),
        "--cache-dir",
        str(tmp_path / "c"),
        "--no-progress",
    ]
    args += ["--config", "configs/train_default.yaml", "--gate-steps", "5", "--device", "cpu"]
    args += ["--set", "model.backbone=hf", "--set", f"model.backbone_path={tiny_vlms['llava']}"]
    args += ["--set", "model.gate_hidden=8", "--set", "model.gate_layers=1"]
    assert main(args) == 0
    assert "stage 2: BT loss" in capsys.readouterr().out
    report_path = tmp_path / "eval.json"
    args = ["eval", "--model", str(out), "--data", str(held_dir), "--json", str(report_path)]
    assert main([*args, "--cache-dir", str(tmp_path / "c"), "--baselines"]) == 0
    printed = capsys.readouterr().out
    assert "| similar |" in printed and "| random |" in printed
    report = json.loads(report_path.read_text())
    assert {"accuracy", "count"} <= set(report)
    assert report["accuracy"] == pytest.approx(
        evaluate(SimilarRewardModel.from_pretrained(out), held_dir)["accuracy"]
    )
    assert set(report["baselines"]) == {"random", "rule_judge", "text_similarity", "no_gate"}
    with pytest.raises(SystemExit):
        main(["train", "--data", str(train_dir), "--out", str(out), "--set", "gate_stepz=3"])
