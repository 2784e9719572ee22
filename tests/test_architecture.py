"""The package's floors, measured from the code: no module imports from a floor above its own, and only the
command floor imports ``similar_rl.commands`` (docs/architecture.md)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "similar_rl"
#: floors from the ground up: top-level module or package names of similar_rl
FLOORS = [
    ("ground", {"envs", "types", "dimensions", "text", "registry", "_optional"}),
    ("model and data", {"model", "data", "policies", "testing"}),
    ("faces", {"scoring", "rewards", "wrappers", "serving"}),
    ("harness", {"harness", "tracking"}),
    ("applications", {"collect", "train", "agents", "demo", "search", "search_job", "evaluation"}),
    ("commands", {"commands", "cli"}),
]


def _floor(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "similar_rl" or len(parts) == 1:
        return None  # outside the package, or its __init__ (the public face above everything)
    return next((i for i, (_, names) in enumerate(FLOORS) if parts[1] in names), -1)


def _imports():
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                yield module, node.module
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    yield module, alias.name


def test_every_module_has_a_floor():
    unplaced = {m for m, _ in _imports() if _floor(m) == -1}
    assert not unplaced, f"modules outside every floor: {sorted(unplaced)} (add them to FLOORS and the docs)"


def test_no_import_runs_up_a_floor():
    upward = sorted(
        (src, dst)
        for src, dst in _imports()
        if _floor(src) is not None and _floor(dst) is not None and _floor(dst) > _floor(src)
    )
    assert not upward, upward


def test_only_the_command_floor_imports_commands():
    offenders = sorted(
        src
        for src, dst in _imports()
        if dst.startswith("similar_rl.commands") and _floor(src) != len(FLOORS) - 1
    )
    assert not offenders, offenders
