import json
import subprocess
import sys

import pytest

import similar_rl
from similar_rl._optional import require
from similar_rl.cli import COMMANDS, main


def test_import_is_light():
    code = (
        "import sys, similar_rl, similar_rl.envs, similar_rl.data.records\n"
        "heavy = [m for m in ('torch', 'transformers', 'trl', 'gymnasium', 'miniwob', 'wandb') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_dependency_names_extra():
    with pytest.raises(ImportError, match=r"pip install 'similar_rl\[all\]'"):
        require("surely_not_a_real_module_name", "a test")


def test_public_names():
    assert similar_rl.DIMENSIONS == (
        "helpfulness",
        "odds_of_success",
        "efficiency",
        "task_relevance",
        "coherence",
    )
    with pytest.raises(AttributeError):
        similar_rl.not_a_name  # noqa: B018


def test_cli_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_cli_commands_take_the_same_env_forms_and_no_abbreviations(tmp_path, capsys):
    from similar_rl.cli import main

    # `--env` is no abbreviation of `--env-kwargs`: an unknown option, named as such
    with pytest.raises(SystemExit):
        main(["collect", "--env", "toy/click-button", "--out", str(tmp_path / "a")])
    assert "unrecognized arguments: --env" in capsys.readouterr().err
    # collect takes --envs like search, search takes positionals like collect
    assert main(["collect", "--envs", "toy/click-button", "--seeds", "0", "--out", str(tmp_path / "b")]) == 0
    capsys.readouterr()
    out = tmp_path / "search.json"
    args = [
        "search",
        "toy/click-button",
        "--seeds",
        "0",
        "--n",
        "2",
        "--max-steps",
        "2",
        "--model",
        "default",
    ]
    assert main([*args, "--json", str(out)]) == 0
    assert json.loads(out.read_text())["env_ids"] == ["toy/click-button"]


def test_eval_accepts_default_like_search_and_serve(tmp_path, capsys):
    from similar_rl.cli import main
    from similar_rl.collect.synthetic import build_toy_dataset

    data = build_toy_dataset(tmp_path / "d", ["toy/click-button"], seeds=[0], n_children=3)
    assert main(["eval", "--model", "default", "--data", str(data)]) == 0
    assert "| similar |" in capsys.readouterr().out
    assert main(["eval", "--model", str(tmp_path / "nope"), "--data", str(data)]) == 2
    assert "is not a folder; pass 'default'" in capsys.readouterr().err
