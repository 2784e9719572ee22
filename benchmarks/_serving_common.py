"""Shared set-up of the server benchmarks: a tiny real reward model and distinct toy-env steps."""

from __future__ import annotations

import os
import platform
import resource
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def tiny_model(seed: int = 0) -> Any:
    """The tiny default-backbone model (real MiniLM + EfficientNet-Lite0 encoders) with random expert heads."""
    from similar_rl.testing import tiny_default_model

    return tiny_default_model(seed)


def toy_steps(n: int, candidates: int = 4) -> list[Any]:
    """``n`` distinct steps: ``candidates`` actions for each of several toy states (env x seed x history)."""
    from similar_rl.envs import make_env

    envs = ["toy/login-form", "toy/click-button", "toy/open-tab", "toy/checkboxes"]
    out: list[Any] = []
    seed = 0
    while len(out) < n:
        for env_id in envs:
            env, adapter = make_env(env_id)
            state, _ = adapter.reset(env, seed=seed)
            acts = adapter.candidates(state)[:candidates]
            out += [state.step_input(a, [f'type(ref=1, text="s{seed}")']) for a in acts]
        seed += 1
    steps = out[:n]
    assert len({s.key for s in steps}) == n
    return steps


def machine() -> dict[str, Any]:
    import torch

    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "load_avg_at_start": os.getloadavg()[0],
    }


def rss_mib() -> float:
    """Current resident set size of this process in MiB (Linux /proc), else the peak."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
