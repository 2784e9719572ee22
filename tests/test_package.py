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
