"""Bad input where a user, a file or a network reaches the package: each is refused with an error naming what is wrong.

What other test files already cover is not repeated here (see docs/failure_modes.md for the full map):
action strings (tests/test_action_grammar_props.py), SRM CSVs (tests/test_srm_csv.py), checkpoints
(tests/test_checkpoint.py), server requests (tests/test_serving.py). This file adds StepInput, dataset rows,
configs and a few checkpoint cases.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from similar_rl.data.dataset import DatasetReader
from similar_rl.types import MAX_IMAGE_SIDE, StepInput

# -- StepInput ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("screenshot", "error", "needle"),
    [
        (np.zeros((4, 4, 3), np.float32), ValueError, "dtype uint8, got float32"),
        (np.full((4, 4, 3), np.nan), ValueError, "dtype uint8, got float64"),  # NaN can only come as floats
        (np.zeros((4, 4, 3), bool), ValueError, "dtype uint8, got bool"),
        (np.zeros((4, 4, 1), np.uint8), ValueError, "(H, W), (H, W, 3) or (H, W, 4); got (4, 4, 1)"),
        (np.zeros((2, 2, 2, 3), np.uint8), ValueError, "got (2, 2, 2, 3)"),
        (np.zeros((0, 3, 3), np.uint8), ValueError, "is empty"),
        (np.zeros((MAX_IMAGE_SIDE + 1, 2, 3), np.uint8), ValueError, f"at most {MAX_IMAGE_SIDE}"),
        (Image.new("RGB", (MAX_IMAGE_SIDE + 1, 1)), ValueError, f"at most {MAX_IMAGE_SIDE}"),
        (Image.new("HSV", (3, 3)), ValueError, "unsupported PIL mode 'HSV'"),
        (Image.new("LAB", (3, 3)), ValueError, "unsupported PIL mode 'LAB'"),
        ("screen.png", TypeError, "PIL.Image.Image or a numpy uint8 array, got str"),
        ([[0, 0, 0]], TypeError, "got list"),
    ],
)
def test_step_input_refuses_bad_screenshots(screenshot, error, needle):
    with pytest.raises(error, match=re.escape(needle)) as info:
        StepInput("Click OK", "noop()", screenshot=screenshot)
    assert str(info.value).startswith("StepInput.screenshot")


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "I;16", "I", "F", "1", "CMYK", "YCbCr", "LA"])
def test_step_input_converts_every_accepted_pil_mode_to_rgb_uint8(mode):
    step = StepInput("Click OK", "noop()", screenshot=Image.new(mode, (5, 3)))
    assert step.screenshot.shape == (3, 5, 3) and step.screenshot.dtype == np.uint8


@pytest.mark.parametrize(
    ("kwargs", "error", "needle"),
    [
        ({"instruction": ""}, ValueError, "StepInput.instruction must be a non-empty string"),
        ({"instruction": " \n\t"}, ValueError, "StepInput.instruction must be a non-empty string"),
        ({"instruction": None}, TypeError, "StepInput.instruction must be a string, got NoneType"),
        ({"instruction": b"Click"}, TypeError, "StepInput.instruction must be a string, got bytes"),
        ({"instruction": "a\x00b"}, ValueError, "StepInput.instruction contains a NUL"),
        ({"action": None}, TypeError, "StepInput.action must be a string"),
        ({"history": "noop()"}, TypeError, "StepInput.history must be a sequence of action strings, got str"),
        ({"history": iter(["noop()"])}, TypeError, "StepInput.history must be a sequence"),
        ({"history": ["noop()", None]}, TypeError, r"StepInput.history\[1\] must be a string, got NoneType"),
        ({"history": [3]}, TypeError, r"StepInput.history\[0\] must be a string, got int"),
        ({"history": ["a\x00"]}, ValueError, r"StepInput.history\[0\] contains a NUL"),
        ({"observation_text": 3}, TypeError, "StepInput.observation_text must be a string"),
    ],
)
def test_step_input_refuses_bad_fields(kwargs, error, needle):
    fields = {"instruction": "Click OK", "action": "click(ref=1)", **kwargs}
    with pytest.raises(error, match=needle):
        StepInput(**fields)


def test_step_input_keys_survive_lone_surrogates_and_huge_text():
    a = StepInput("Click \ud800 OK", 'type(ref=1, text="\\ud800")', history=["noop()"] * 500)
    b = StepInput("x" * 1_000_000, "noop()")
    assert len(a.key) == len(b.key) == 32 and a.key != b.key


# -- dataset rows ---------------------------------------------------------------------------------------------------

GOOD_STEP = {
    "record_id": "t/1/0",
    "task_id": "t",
    "env_id": "toy/login-form",
    "seed": 0,
    "instruction": "Log in",
    "step_idx": 1,
    "action": "click(ref=1)",
    "labels": {"helpfulness": 0.5},
}
GOOD_PAIR = {
    "pair_id": "p1",
    "type": "total",
    "task_id": "t",
    "env_id": "toy/login-form",
    "instruction": "Log in",
    "chosen": "click(ref=1)",
    "rejected": "noop()",
}


def _folder(tmp_path, steps=b"", pairs=b"", done=None):
    """A dataset folder written by hand: raw steps/pairs bytes, committed up to their ends."""
    (tmp_path / "steps.jsonl").write_bytes(steps)
    (tmp_path / "pairs.jsonl").write_bytes(pairs)
    row = done or {"task_id": "t", "steps_end": len(steps), "pairs_end": len(pairs)}
    (tmp_path / "done.jsonl").write_text(json.dumps(row) + "\n")
    return tmp_path


def _line(row) -> bytes:
    return (json.dumps(row) + "\n").encode()


@pytest.mark.parametrize(
    ("row", "needle"),
    [
        ({**GOOD_STEP, "labels": ["helpfulness"]}, "field 'labels' must be a mapping"),
        (
            {**GOOD_STEP, "labels": {"helpfulness": "0.5"}},
            "field 'labels' must be a mapping of label names to numbers",
        ),
        (
            {**GOOD_STEP, "labels": {"odds_of_success": 1.5}},
            r"odds_of_success=1\.5 is outside its range \[0\.0, 1\.0\]",
        ),
        ({**GOOD_STEP, "labels": {"speed": 1.0}}, r"unknown label keys \['speed'\]"),
        ({**GOOD_STEP, "seed": "0"}, "field 'seed' must be an integer, got '0'"),
        ({**GOOD_STEP, "step_idx": True}, "field 'step_idx' must be an integer"),
        ({**GOOD_STEP, "history": "noop()"}, "field 'history' must be a list of strings"),
        ({**GOOD_STEP, "instruction": None}, "field 'instruction' must be a string, got None"),
        ({**GOOD_STEP, "rollout_success": "high"}, "field 'rollout_success' must be a number or null"),
        ({k: v for k, v in GOOD_STEP.items() if k != "action"}, r"misses field\(s\) \['action'\]"),
        ({**GOOD_STEP, "colour": 1}, r"unknown field\(s\) \['colour'\]"),
    ],
)
def test_reader_names_file_line_and_field_of_a_bad_step_row(tmp_path, row, needle):
    folder = _folder(tmp_path, steps=_line(GOOD_STEP) + _line(row))
    with pytest.raises(ValueError, match=r"steps\.jsonl: line 2: .*" + needle):
        list(DatasetReader(folder).steps())


@pytest.mark.parametrize(
    ("row", "needle"),
    [
        ({**GOOD_PAIR, "type": "speed"}, "has type 'speed'"),
        ({**GOOD_PAIR, "margin": "big"}, "field 'margin' must be a number"),
        ({**GOOD_PAIR, "margin": float("nan")}, "non-finite margin"),
        ({**GOOD_PAIR, "chosen_steps": [1, 2]}, "field 'chosen_steps' must be a list of strings"),
    ],
)
def test_reader_names_file_line_and_field_of_a_bad_pair_row(tmp_path, row, needle):
    folder = _folder(tmp_path, pairs=_line(row))
    with pytest.raises(ValueError, match=r"pairs\.jsonl: line 1: .*" + needle):
        list(DatasetReader(folder).pairs())


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b"[1, 2]\n", "line 1 must be a JSON object, got list"),
        (b'{"record_id": \n', "line 1 is not valid JSON"),
        (b'{"a": "\xff\xfe"}\n', "line 1 is not valid JSON"),
        (b'{"record_id": "x"}', "line 1 is truncated"),
    ],
)
def test_reader_refuses_rows_that_are_not_json_objects(tmp_path, raw, needle):
    folder = _folder(tmp_path, steps=raw)
    with pytest.raises(ValueError, match=needle):
        list(DatasetReader(folder).steps())


def test_reader_refuses_done_lines_that_do_not_fit_the_files(tmp_path):
    folder = _folder(
        tmp_path, steps=_line(GOOD_STEP), done={"task_id": "t", "steps_end": 10_000, "pairs_end": 0}
    )
    with pytest.raises(ValueError, match=r"has \d+ bytes but done\.jsonl says 10000 are committed"):
        list(DatasetReader(folder).steps())
    (tmp_path / "done.jsonl").write_text('{"task_id": "t", "steps_end": 3}\n')
    with pytest.raises(ValueError, match=r"done\.jsonl: line 1 misses field 'pairs_end'"):
        DatasetReader(folder)


@pytest.mark.parametrize("path", ["../secret.png", "/etc/passwd", "images/../../x.png"])
def test_reader_refuses_screenshot_paths_outside_the_folder(tmp_path, path):
    folder = _folder(tmp_path, steps=_line({**GOOD_STEP, "screenshot": path}))
    (record,) = DatasetReader(folder).steps()
    with pytest.raises(ValueError, match="points outside the dataset folder"):
        DatasetReader(folder).load_screenshot(record.screenshot)


# -- configs --------------------------------------------------------------------------------------------------------


def test_collect_config_refuses_unknown_keys_and_non_boolean_switches(tmp_path):
    from similar_rl.collect.config import CollectConfig

    with pytest.raises(ValueError, match=r"unknown collect config key\(s\) \['dedup'\]"):
        CollectConfig.from_dict({"envs": ["toy/login-form"], "dedup": False})
    for name in ("dedupe", "save_screenshots", "drop_failed_subtrees"):
        with pytest.raises(ValueError, match=f"CollectConfig.{name} must be true or false, got 'no'"):
            CollectConfig(envs=["toy/login-form"], **{name: "no"})
    path = tmp_path / "c.yaml"
    path.write_text("envs: [toy/login-form]\nn_children: -2\n")
    with pytest.raises(ValueError, match=r"c\.yaml: CollectConfig\.n_children must be >= 1, got -2"):
        CollectConfig.from_yaml(path)
    with pytest.raises(ValueError, match="step_timeout_s must be >= 0"):
        CollectConfig(envs=["toy/login-form"], step_timeout_s=float("nan"))
    with pytest.raises(ValueError, match="env ids look like"):
        CollectConfig(envs=["login-form"])


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"port": True}, "ServerConfig.port must be in 0..65535"),
        ({"port": 70000}, "ServerConfig.port must be in 0..65535"),
        ({"token": ""}, "ServerConfig.token is empty"),
        ({"token": 1234}, "ServerConfig.token must be a string or None, got int"),
        ({"max_queue": 0}, "ServerConfig.max_queue must be an integer >= 1"),
        ({"max_body_bytes": 1.5}, "ServerConfig.max_body_bytes must be an integer >= 1"),
        ({"request_timeout_s": float("inf")}, "ServerConfig.request_timeout_s must be a finite number >= 0"),
        ({"socket_timeout_s": -1}, "ServerConfig.socket_timeout_s must be a finite number >= 0"),
    ],
)
def test_server_config_refuses_bad_values(kwargs, needle):
    from similar_rl.serving.server import ServerConfig

    with pytest.raises(ValueError, match=needle):
        ServerConfig(**kwargs)


def test_server_config_defaults_are_safe():
    from similar_rl.serving.server import ServerConfig

    cfg = ServerConfig()
    assert cfg.host == "127.0.0.1" and cfg.request_timeout_s > 0 and cfg.max_queue < 10**6
    with pytest.raises(TypeError, match="hots"):
        ServerConfig(hots="0.0.0.0")


def test_train_config_refuses_bad_values_by_name(tmp_path):
    from similar_rl.train.config import TrainConfig

    for kwargs, needle in [
        ({"gate_lr": float("nan")}, "TrainConfig.gate_lr must be a finite number > 0"),
        ({"val_fraction": 1.0}, r"TrainConfig.val_fraction must be in \(0, 1\)"),
        ({"gate_steps": 1.5}, "TrainConfig.gate_steps must be an integer"),
        ({"seed": "1"}, "TrainConfig.seed must be an integer"),
        ({"device": "tpu"}, "TrainConfig.device is 'tpu'"),
    ]:
        with pytest.raises(ValueError, match=needle):
            TrainConfig(**kwargs)
    with pytest.raises(ValueError, match="must be a mapping"):
        TrainConfig.from_dict([1])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        TrainConfig.from_yaml(tmp_path / "none.yaml")


def test_train_config_names_the_field_of_a_non_numeric_value():
    from similar_rl.train.config import TrainConfig

    with pytest.raises(ValueError, match="TrainConfig.lora_dropout"):
        TrainConfig(lora_dropout="x")
    with pytest.raises(ValueError, match="ridge_alphas must be a list"):
        TrainConfig(ridge_alphas="10")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"gamma": 2.0},
        {"gae_lambda": 1.5},
        {"learning_rate": -1.0},
        {"clip_coef": -0.2},
        {"max_episode_steps": 0},
        {"reward_coef": float("nan")},
    ],
)
def test_ppo_args_refuse_out_of_range_values(kwargs):
    from similar_rl.agents.ppo import PPOArgs

    with pytest.raises(ValueError, match=next(iter(kwargs))):
        PPOArgs(**kwargs)


def test_build_args_refuses_text_for_a_number():
    from similar_rl.agents.ppo import PPOArgs
    from similar_rl.harness.settings import build_args

    with pytest.raises(ValueError, match="learning_rate must be a number"):
        build_args(PPOArgs, {"learning_rate": "fast"})


def test_agent_args_refuse_unknown_keys_and_bad_choices():
    from similar_rl.agents.grpo import GRPOArgs
    from similar_rl.agents.ppo import PPOArgs
    from similar_rl.harness.settings import build_args

    with pytest.raises(ValueError, match=r"unknown key\(s\) \['lr'\] for PPOArgs"):
        build_args(PPOArgs, {"lr": 1})
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['lr'\] for GRPOArgs"):
        build_args(GRPOArgs, {"lr": 1})
    with pytest.raises(ValueError, match="num_generations must be at least 1"):
        GRPOArgs(num_generations=0)
    with pytest.raises(ValueError, match="states_from=dataset needs dataset_dir"):
        GRPOArgs(states_from="dataset")


def test_grpo_args_refuse_out_of_range_values():
    from similar_rl.agents.grpo import GRPOArgs

    with pytest.raises(ValueError, match="learning_rate"):
        GRPOArgs(learning_rate=-1.0)
    with pytest.raises(ValueError, match="temperature"):
        GRPOArgs(temperature=-1.0)


def test_similar_config_refuses_non_boolean_switches():
    from similar_rl.model.config import SimilarConfig

    with pytest.raises(ValueError, match="use_image"):
        SimilarConfig.from_dict({"use_image": "yes"})


# -- checkpoints (beyond tests/test_checkpoint.py) ------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved_checkpoint(tmp_path_factory):
    from similar_rl.model import SimilarRewardModel
    from similar_rl.testing import tiny_default_config

    folder = tmp_path_factory.mktemp("ckpt")
    SimilarRewardModel(tiny_default_config(use_image=False)).save_pretrained(folder)
    return folder


@pytest.fixture
def checkpoint(saved_checkpoint, tmp_path):
    target = tmp_path / "ckpt"
    shutil.copytree(saved_checkpoint, target)
    return target


def _load(folder):
    from similar_rl.model import SimilarRewardModel

    return SimilarRewardModel.from_pretrained(folder)


def test_protocol_0_pickle_and_garbage_header_are_refused_without_unpickling(checkpoint):
    from similar_rl.model import CheckpointError

    class Boom:
        def __reduce__(self):
            return (os.system, ("echo pwned > pwned.txt",))

    (checkpoint / "model.safetensors").write_bytes(pickle.dumps(Boom(), protocol=0))
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        _load(checkpoint)
    assert not os.path.exists("pwned.txt")
    header = b'{"x": not json}'
    (checkpoint / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header)
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        _load(checkpoint)


def test_config_json_that_is_not_an_object_or_is_huge_is_refused(checkpoint):
    from similar_rl.model import CheckpointError

    (checkpoint / "config.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="must hold a JSON object, got list"):
        _load(checkpoint)
    (checkpoint / "config.json").write_text(" " * (2 << 20) + "{}")
    with pytest.raises(CheckpointError, match="a config is at most"):
        _load(checkpoint)
    (checkpoint / "config.json").write_bytes(b'{"gate_hidden": "\xff"}')
    with pytest.raises(CheckpointError, match="not valid JSON"):
        _load(checkpoint)


def test_a_symlink_inside_the_folder_cannot_lead_the_backbone_outside(checkpoint, tmp_path):
    from similar_rl.model import CheckpointError

    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, checkpoint / "backbone")
    data = json.loads((checkpoint / "config.json").read_text())
    data.update(backbone="hf", backbone_path="backbone")
    (checkpoint / "config.json").write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match="points outside the checkpoint folder"):
        _load(checkpoint)
