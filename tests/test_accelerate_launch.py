"""Triple-M training under ``accelerate launch``: two real CPU processes (gloo), one shared feature cache, gate
gradients averaged across processes, the model saved once by the main process.

Note: in accelerate 1.15, ``accelerate launch --cpu --num_processes 2`` starts ONE process (``--cpu`` picks the simple
launcher); ``--multi_gpu --num_processes 2`` starts two through torchrun, and a script whose Accelerator has
``cpu=True`` (TrainConfig.device="cpu") then runs them as a MULTI_CPU group over gloo, with or without GPUs."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest
from safetensors.torch import load_file

from similar_rl.collect.synthetic import build_toy_dataset

pytest.importorskip("accelerate")

SCRIPT = textwrap.dedent(
    """
    import json, logging, sys
    from pathlib import Path

    import torch
    from accelerate import PartialState
    from safetensors.torch import save_file

    from accelerate.utils import set_seed

    from similar_rl.model import SimilarRewardModel
    from similar_rl.testing import tiny_default_config
    from similar_rl.train.config import TrainConfig
    from similar_rl.train.trainer import train

    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(name)s: %(message)s")
    data, out, cache, marks = sys.argv[1:5]
    state = PartialState(cpu=True)  # as the trainer's Accelerator(cpu=True); a bare PartialState() on a GPU-less
    # machine under torchrun would make every process a world of one (DistributedType.NO)
    rank = state.process_index
    set_seed(0)
    model = SimilarRewardModel.build(tiny_default_config(use_image=False))
    before = {k: v.detach().clone().contiguous() for k, v in model.gate.state_dict().items()}
    save_file(before, str(Path(marks) / f"gate_init_rank{rank}.safetensors"))
    config = TrainConfig(device="cpu", gate_steps=6, gate_batch_size=64, cache_dir=cache, progress=False, seed=0)
    # Start together: extract_features reads the shared cache before splitting the missing rows, so a process that
    # starts late sees the other's rows already cached and splits a different list (a race in train/features.py).
    state.wait_for_everyone()
    result = train(data, out, config, model=model)
    gate = {k: v.detach().cpu().contiguous() for k, v in result.model.gate.state_dict().items()}
    save_file(gate, str(Path(marks) / f"gate_rank{rank}.safetensors"))
    info = {"rank": rank, "world": state.num_processes, "pairs": result.summary["counts"]["pairs"]}
    (Path(marks) / f"done_rank{rank}.json").write_text(json.dumps(info))
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_train_under_accelerate_launch_two_cpu_processes(tmp_path):
    data = build_toy_dataset(
        tmp_path / "data", ["toy/click-button", "toy/login-form"], seeds=[0, 1], n_children=3
    )
    script = tmp_path / "train_script.py"
    script.write_text(SCRIPT)
    out, cache, marks = tmp_path / "model", tmp_path / "cache", tmp_path / "marks"
    marks.mkdir()
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "WANDB_MODE": "offline",
    }
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--multi_gpu",  # torchrun; with TrainConfig.device="cpu" the processes form a gloo MULTI_CPU group
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(_free_port()),
        str(script),
        str(data),
        str(out),
        str(cache),
        str(marks),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]

    done = [json.loads((marks / f"done_rank{r}.json").read_text()) for r in (0, 1)]
    assert [d["rank"] for d in done] == [0, 1]
    assert all(d["world"] == 2 for d in done)
    assert done[0]["pairs"] == done[1]["pairs"] > 0
    # Saved once, by the main process only.
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    assert log.count("saved Similar reward model to") == 1, log[-4000:]
    # Gradients were averaged: both processes end with the same gate, and it moved from its initialisation.
    g0 = load_file(marks / "gate_rank0.safetensors")
    g1 = load_file(marks / "gate_rank1.safetensors")
    init = load_file(marks / "gate_init_rank0.safetensors")
    assert g0.keys() == g1.keys() == init.keys()
    for key in g0:
        assert (g0[key] - g1[key]).abs().max() <= 1e-6, key
    assert any((g0[k] - init[k]).abs().max() > 1e-6 for k in g0), "the gate did not train"
    saved = load_file(out / "model.safetensors")
    for key, value in g0.items():
        assert (saved[f"gate.{key}"] - value).abs().max() <= 1e-6, key
    # One shared feature cache, written by both processes.
    assert any(cache.rglob("*.safetensors"))
