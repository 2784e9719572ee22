"""Shared helpers of the throughput benchmarks: thread pinning, timing, machine info, tables and result files.

Every benchmark times its subject and its baseline in the same process, with the same inputs, and reports ratios:
absolute times on a shared, loaded 2-core machine are noise. Torch runs on ONE thread everywhere (on this box two
threads were measured up to 17x slower when other processes hold the cores); :func:`setup` pins it and records it.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent


def setup(threads: int = 1) -> dict[str, Any]:
    """Pin torch to ``threads`` threads and return the machine info of this run (taken now, before any work)."""
    import torch

    torch.set_num_threads(threads)
    return machine_info()


def machine_info() -> dict[str, Any]:
    """CPU count, torch threads, load average (1/5/15 min), Python, torch version, GPU name if any."""
    import torch

    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_avg_at_start": [round(v, 2) for v in os.getloadavg()],
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def machine_line(info: dict[str, Any]) -> str:
    """One markdown line describing the machine of a run."""
    load = info["load_avg_at_start"]
    gpu = f", GPU {info['gpu']}" if "gpu" in info else ", no GPU"
    return (
        f"Machine: {info['cpus']} CPUs{gpu}, torch {info['torch']} on {info['torch_threads']} thread(s), "
        f"load average at start {load[0]} / {load[1]} / {load[2]} (1/5/15 min; shared with other users)."
    )


def _stats(times: list[float], repeats: int) -> dict[str, float]:
    """Median, min, max and mean of ``times`` (seconds), and the repeat count."""
    return {
        "median": statistics.median(times),
        "min": min(times),
        "max": max(times),
        "mean": statistics.fmean(times),
        "repeats": repeats,
    }


def time_call(fn: Callable[[], Any], repeats: int = 5, warmup: int = 1) -> dict[str, float]:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` times; seconds as median, min and mean.

    Example:
        >>> t = time_call(lambda: sum(range(100)), repeats=3)
        >>> sorted(t), t["min"] <= t["median"]
        (['max', 'mean', 'median', 'min', 'repeats'], True)
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return _stats(times, repeats)


def time_fresh(make: Callable[[int], Any], run: Callable[[Any], Any], repeats: int = 5) -> dict[str, float]:
    """Like :func:`time_call`, but each repeat gets fresh inputs ``make(r)`` built outside the timed region
    (so caches keyed by content never answer the timed call). ``make(-1)`` is the warm-up input."""
    run(make(-1))
    times = []
    for r in range(repeats):
        arg = make(r)
        start = time.perf_counter()
        run(arg)
        times.append(time.perf_counter() - start)
    return _stats(times, repeats)


def time_interleaved(fns: dict[str, Callable[[], Any]], repeats: int = 3) -> dict[str, dict[str, float]]:
    """Time several settings round-robin (repeat 1 of each, then repeat 2 of each...), so a change in the machine's
    load hits every setting alike; no warm-up (warm up yourself). Returns :func:`time_call`-style stats per name.

    Example:
        >>> stats = time_interleaved({"a": lambda: None, "b": lambda: None}, repeats=2)
        >>> sorted(stats), stats["a"]["repeats"]
        (['a', 'b'], 2)
    """
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: _stats(ts, repeats) for name, ts in times.items()}


def ratio(a: float, b: float) -> float:
    """``a / b`` rounded to 3 digits (inf when ``b`` is 0)."""
    return round(a / b, 3) if b else float("inf")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table.

    Example:
        >>> print(markdown_table(["a", "b"], [[1, 2.5]]))
        | a | b |
        |---|---|
        | 1 | 2.5 |
    """
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value)


def command_line() -> str:
    """The command that started this run, relative to the repository root."""
    return ".venv/bin/python " + " ".join([os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]])


def write_results(name: str, title: str, body: str, data: dict[str, Any], info: dict[str, Any]) -> Path:
    """Write ``results/<name>.json`` (``data`` + machine + command) and ``results/<name>.md``; print the markdown.

    ``body`` is the markdown under the title (tables and notes); the machine line and the command are added.
    """
    RESULTS.mkdir(parents=True, exist_ok=True)
    command = command_line()
    payload = {"benchmark": name, "command": command, "machine": info, **data}
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2, default=float) + "\n")
    text = f"# {title}\n\nCommand: `{command}`\n\n{machine_line(info)}\n\n{body.strip()}\n"
    (RESULTS / f"{name}.md").write_text(text)
    print(text)
    return RESULTS / f"{name}.json"


def toy_steps(n_states: int, candidates: int = 1, seed0: int = 0) -> list[Any]:
    """Steps of ``n_states`` distinct toy-env states (screenshot, DOM text, one previous action), with
    ``candidates`` candidate actions each (grouped by state). ``seed0`` shifts the seeds, so two calls with
    different ``seed0`` share no state (content-keyed caches never answer one with the other)."""
    from similar_rl.envs import make_env

    families = ["toy/login-form", "toy/click-button", "toy/open-tab", "toy/checkboxes"]
    envs = {f: make_env(f) for f in families}
    out: list[Any] = []
    seed = seed0 * 100_000
    while len(out) < n_states * candidates:
        for family in families:
            env, adapter = envs[family]
            state, _ = adapter.reset(env, seed=seed)
            acts = adapter.candidates(state) + ["noop()", 'press(key="Enter")']
            history = [f'type(ref=1, text="s{seed}")']
            acts += [f'type(ref=1, text="v{j}")' for j in range(candidates)]  # always enough distinct ones
            out += [state.step_input(acts[j], history) for j in range(candidates)]
            if len(out) >= n_states * candidates:
                break
        seed += 1
    for env, _ in envs.values():
        env.close()
    return out[: n_states * candidates]
