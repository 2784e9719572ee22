"""Checkpoint loading refuses pickles, truncated files, bad configs and mismatched tensors, naming the problem."""

from __future__ import annotations

import json
import pickle
import shutil

import pytest
import torch

from similar_rl.model import CheckpointError, SimilarRewardModel
from similar_rl.model.checkpoint import read_tensors, write_tensors
from similar_rl.testing import tiny_default_config
from similar_rl.types import StepInput

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    model = SimilarRewardModel(tiny_default_config(use_image=False))
    with torch.no_grad():
        model.experts.weight.normal_()
    folder = tmp_path_factory.mktemp("ckpt")
    model.save_pretrained(folder)
    return model, folder


@pytest.fixture
def copy(saved, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(saved[1], target)
    return target


def _edit_config(folder, **changes):
    data = json.loads((folder / "config.json").read_text())
    data.update(changes)
    (folder / "config.json").write_text(json.dumps(data))


def test_round_trip_identical_scores(saved):
    model, folder = saved
    loaded = SimilarRewardModel.from_pretrained(folder)
    steps = [StepInput("Click OK", a, observation_text='[1] button "OK"') for a in ("click(ref=1)", "noop()")]
    assert torch.equal(model.score_steps(steps), loaded.score_steps(steps))
    for name, tensor in model.checkpoint_state_dict().items():
        assert torch.equal(tensor, loaded.checkpoint_state_dict()[name]), name


def test_pickle_renamed_to_safetensors_is_refused(copy):
    with open(copy / "model.safetensors", "wb") as fh:
        pickle.dump({"experts.weight": [1.0]}, fh)
    with pytest.raises(CheckpointError, match="pickle"):
        SimilarRewardModel.from_pretrained(copy)
    torch.save({"w": torch.ones(1)}, copy / "model.safetensors")  # zip container
    with pytest.raises(CheckpointError, match="pickle"):
        SimilarRewardModel.from_pretrained(copy)


def test_truncated_file_is_reported(copy):
    data = (copy / "model.safetensors").read_bytes()
    (copy / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        SimilarRewardModel.from_pretrained(copy)
    (copy / "model.safetensors").write_bytes(data[:5])
    with pytest.raises(CheckpointError, match="truncated"):
        SimilarRewardModel.from_pretrained(copy)


def test_unknown_config_key_is_named(copy):
    _edit_config(copy, gate_hiddden=3)
    with pytest.raises(CheckpointError, match="gate_hiddden"):
        SimilarRewardModel.from_pretrained(copy)


def test_bad_config_value_and_json(copy):
    _edit_config(copy, gate_temperature=-1)
    with pytest.raises(CheckpointError, match="gate_temperature"):
        SimilarRewardModel.from_pretrained(copy)
    (copy / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        SimilarRewardModel.from_pretrained(copy)


@pytest.mark.parametrize("path", ["../elsewhere", "/etc"])
def test_paths_outside_the_folder_are_refused(copy, path):
    _edit_config(copy, backbone="hf", backbone_path=path)
    with pytest.raises(CheckpointError, match="backbone_path"):
        SimilarRewardModel.from_pretrained(copy)


def test_missing_unexpected_and_misshaped_tensors_are_named(copy):
    state = read_tensors(copy / "model.safetensors")
    del state["gate.scale"]
    state["experts.extra"] = torch.zeros(2)
    state["experts.bias"] = torch.zeros(7)
    write_tensors(copy / "model.safetensors", state)
    with pytest.raises(CheckpointError) as info:
        SimilarRewardModel.from_pretrained(copy)
    message = str(info.value)
    assert "missing tensors ['gate.scale']" in message
    assert "unexpected tensors ['experts.extra']" in message
    assert "experts.bias: expected (5,), got (7,)" in message


def test_config_of_other_ablation_does_not_fit_weights(copy):
    _edit_config(copy, use_image=True, x_dim=None, z_dim=None)
    with pytest.raises(CheckpointError, match="mis-shaped"):
        SimilarRewardModel.from_pretrained(copy)


def test_non_finite_weights_are_refused(copy):
    state = read_tensors(copy / "model.safetensors")
    state["experts.weight"][0, 0] = float("nan")
    write_tensors(copy / "model.safetensors", state)
    with pytest.raises(CheckpointError, match="experts.weight"):
        SimilarRewardModel.from_pretrained(copy)


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        SimilarRewardModel.from_pretrained(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="config.json"):
        SimilarRewardModel.from_pretrained(tmp_path)
