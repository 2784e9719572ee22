"""Shared test setup: everything offline; tiny models are built in fixtures (similar_rl/testing.py)."""

import os
import sys

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def _no_wandb_run_leaks():
    """A W&B run left open by one test would capture the next test's logging (and its run folder)."""
    yield
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish()


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch intra-op thread for a test module (request it with ``pytest.mark.usefixtures``): tiny models run
    several times faster on one thread than on two spinning threads on the shared 2-core machine."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
