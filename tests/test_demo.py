"""`similar-rl demo`: settings, the parts, the report, robustness; a real run on the toy env with a tiny model
(fast), and one --quick run on MiniWoB++ in headless Chromium (@browser).

The reward model is a real tiny model: a random tiny Qwen2 (from :mod:`similar_rl.testing`) through the ``hf``
backbone, its experts given random weights so that steps get different scores.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from similar_rl.cli import main
from similar_rl.demo import build_demo_config, load_demo_config, run_demo
from similar_rl.demo.config import DEFAULT_CONFIG_PATH, DemoConfig
from similar_rl.dimensions import SCORE_KEYS

ROOT = Path(__file__).resolve().parents[1]
HAS_BROWSER = bool(shutil.which("chromium")) and bool(shutil.which("chromedriver"))

#: A demo entirely on the toy env (no browser): every part runs in a few seconds.
TOY = {
    "wandb": False,
    "episodes": {"families": ["toy/click-button", "toy/login-form"], "max_steps": 5},
    "search": {"envs": ["toy/click-button", "toy/login-form"], "seeds": "0-2", "max_steps": 6},
    "ppo": {
        "min_time_left_s": 0,
        "args": {
            "env_id": "toy/click-button",
            "num_steps": 8,
            "total_timesteps": 16,
            "num_minibatches": 2,
            "tensorboard": False,
        },
    },
}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from similar_rl.testing import tiny_hf_similar_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tiny_hf_similar_model(tmp_path_factory.mktemp("tiny_qwen2"))
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model_dir(model, tmp_path_factory):
    return model.save_pretrained(tmp_path_factory.mktemp("tiny_similar"))


# -- settings ------------------------------------------------------------------------------------------------


def test_configs_demo_yaml_holds_the_dataclass_defaults_and_a_quick_section():
    assert load_demo_config(DEFAULT_CONFIG_PATH).to_dict() == DemoConfig().to_dict()
    quick = load_demo_config(DEFAULT_CONFIG_PATH, quick=True)
    default = DemoConfig()
    assert quick.ppo.args["total_timesteps"] < default.ppo.args["total_timesteps"]
    assert quick.ppo.args["env_id"] == default.ppo.args["env_id"]  # quick args merge into the defaults
    assert len(quick.search.envs) < len(default.search.envs)
    assert quick.time_budget_s < default.time_budget_s <= 600


def test_search_part_uses_only_held_out_families():
    held_out = yaml.safe_load((ROOT / "configs/search_miniwob.yaml").read_text())["envs"]
    trained = yaml.safe_load((ROOT / "configs/collect_default_train.yaml").read_text())["envs"]
    envs = DemoConfig().search.envs
    assert 3 <= len(envs) <= 4 and set(envs) <= set(held_out) and not set(envs) & set(trained)


def test_bad_settings_name_the_field():
    with pytest.raises(ValueError, match=r"'episodes'.*unknown key\(s\) \['family'\]"):
        build_demo_config({"episodes": {"family": ["x"]}})
    with pytest.raises(ValueError, match=r"unknown part\(s\) \['train'\]"):
        build_demo_config({"parts": ["episodes", "train"]})
    with pytest.raises(ValueError, match="search.n must be at least 1"):
        build_demo_config({"search": {"n": 0}})
    with pytest.raises(ValueError, match="unknown key"):
        build_demo_config({"ppo": {"args": {"env_id": "toy/click-button"}}, "speed": 2})
    assert main(["demo", "--config", "/nonexistent/demo.yaml"]) == 2
    assert main(["demo", "--model", "/nonexistent/model", "--no-wandb"]) == 2


# -- a full run on the toy env --------------------------------------------------------------------------------


def test_demo_runs_every_part_on_the_toy_env_and_writes_the_report(model, tmp_path):
    lines: list[str] = []
    config = build_demo_config(TOY, {"out": str(tmp_path / "demo")})
    result = run_demo(config, model, echo=lines.append, progress=False)
    out = "\n".join(lines)

    assert result.ok, result.failures
    assert {p: r["status"] for p, r in result.parts.items()} == {
        "episodes": "ok",
        "search": "ok",
        "ppo": "ok",
    }
    # part 1: one table row per step with the five scores and total; the scores are the model's, not constants
    assert out.count("episode ") >= 2 and "step  1 click(ref=" in out and "total" in out
    episodes = result.parts["episodes"]["data"]["episodes"]
    assert [e["env_id"] for e in episodes] == ["toy/click-button", "toy/login-form"]
    steps = [s for e in episodes for s in e["steps"]]
    assert all(set(s["scores"]) == set(SCORE_KEYS) for s in steps)
    assert len({round(s["scores"]["total"], 6) for s in steps}) > 1
    # part 2: compare() layout over both envs, saved as JSON
    search = json.loads((result.out_dir / "best_of_n.json").read_text())
    assert search["env_ids"] == ["toy/click-button", "toy/login-form"]
    assert search["base"]["episodes"] == search["scaled"]["episodes"] == 6
    logs = [e for env in search["per_env"].values() for e in env["scaled"]["episode_log"]]
    assert len(logs) == 6 and "| **overall** |" in search["table"]
    assert search["scaled"]["success_rate"] == pytest.approx(np.mean([e["success"] for e in logs]))
    # part 3: the PPO run's episodes and success curve
    ppo = result.parts["ppo"]["data"]
    assert ppo["global_step"] == 16 and ppo["episode_log"]
    assert len(ppo["curve"]["success_rate"]) == len(ppo["episode_log"])
    assert (result.out_dir / "ppo" / "episodes.jsonl").is_file()
    # report + plots
    report = result.report.read_text()
    for needle in ("## 1. Scored episodes", "## 2. Best-of-N", "## 3. PPO", "## Files", "best_of_n.json"):
        assert needle in report
    for name in ("episode_scores", "best_of_n", "ppo_curve"):
        path = result.out_dir / f"{name}.png"
        assert f"({name}.png)" in report
        with Image.open(path) as image:
            assert image.format == "PNG" and image.width >= 500 and image.height >= 300
    summary = json.loads((result.out_dir / "summary.json").read_text())
    assert summary["failures"] == [] and summary["parts"]["search"]["status"] == "ok"


def test_a_browser_failure_is_reported_and_the_demo_goes_on(model, tmp_path, monkeypatch):
    pytest.importorskip("miniwob")
    # A real start failure: chromium "installed" at a path that does not exist.
    monkeypatch.setenv("MINIWOB_CHROME_BINARY", str(tmp_path / "no-chromium"))
    monkeypatch.setenv("MINIWOB_CHROMEDRIVER", str(tmp_path / "no-chromedriver"))
    lines: list[str] = []
    layers = {
        "out": str(tmp_path / "demo"),
        "parts": ["episodes", "search"],
        "episodes": {"families": ["click-button", "toy/click-button"]},
        "search": {"envs": ["miniwob/click-dialog-2-v1", "toy/click-button"], "seeds": "0-1"},
    }
    result = run_demo(build_demo_config(TOY, layers), model, echo=lines.append, progress=False)

    assert not result.ok
    assert [(f["part"], f["env_id"]) for f in result.failures] == [
        ("episodes", "miniwob/click-button-v1"),
        ("search", "miniwob/click-dialog-2-v1"),
    ]
    assert all("chromium not found" in f["error"] for f in result.failures)
    assert result.parts["episodes"]["status"] == result.parts["search"]["status"] == "partial"
    assert [e["env_id"] for e in result.parts["episodes"]["data"]["episodes"]] == ["toy/click-button"]
    assert result.parts["search"]["data"]["env_ids"] == ["toy/click-button"]
    assert "the browser failed" in "\n".join(lines)
    report = result.report.read_text()
    assert "## Problems" in report and "miniwob/click-dialog-2-v1" in report.split("## Problems")[1]


def test_time_budget_skips_what_does_not_fit(model, tmp_path, monkeypatch):
    import itertools
    import time

    # a clock that moves 1 s per reading: the 1 ms budget is spent before the first env, however fast the machine
    ticks = itertools.count(start=time.perf_counter())
    monkeypatch.setattr(time, "perf_counter", lambda: float(next(ticks)))
    layers = {"out": str(tmp_path / "demo"), "time_budget_s": 0.001, "ppo": {"min_time_left_s": 30}}
    result = run_demo(build_demo_config(TOY, layers), model, echo=lambda _: None, progress=False)
    assert result.parts["episodes"]["data"]["skipped"] == ["toy/click-button", "toy/login-form"]
    assert result.parts["ppo"]["status"] == "skipped" and "budget" in result.parts["ppo"]["note"]
    assert result.report.is_file()


def test_cli_without_a_model_plays_unscored_episodes(tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", "--model", "none", "--parts", "episodes,search", "--families", "toy/click-button"]
    assert main([*args, "--episodes", "2", "--out", str(out), "--no-wandb"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("episode ") == 2 and "(no model)" in printed and "solved 2/2" in printed
    assert f"report: {out / 'report.md'}" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["parts"]["search"]["status"] == "skipped"


# -- MiniWoB++ in headless Chromium -------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.skipif(not HAS_BROWSER, reason="chromium/chromedriver not installed")
def test_quick_demo_on_miniwob(model_dir, tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--model", str(model_dir), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "miniwob/click-button-v1" in printed and "step  1" in printed
    assert f"report: {out / 'report.md'}" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert {p: r["status"] for p, r in summary["parts"].items()} == {
        "episodes": "ok",
        "search": "ok",
        "ppo": "ok",
    }
    assert summary["wandb_dir"] and list(Path(summary["wandb_dir"]).glob("*.wandb"))
    for name in ("episode_scores", "best_of_n", "ppo_curve"):
        assert (out / f"{name}.png").is_file()
    assert "wandb sync" in (out / "report.md").read_text()
