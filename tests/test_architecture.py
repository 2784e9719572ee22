"""The package's floors, measured from the code: no module imports from a floor above its own, and only the
command floor imports ``similar_rl.commands`` (docs/architecture.md)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "similar_rl"
#: floors from the ground up: top-level module or package names of similar_rl
FLOORS = [
    ("ground", {"envs", "types", "dimensions", "text", "registry", "fields", "_optional"}),
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


def test_no_import_cycles_at_module_level():
    """Imports run when a module loads (not those inside functions, nor TYPE_CHECKING blocks) form no cycle."""
    modules = {
        ".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): p
        for p in PACKAGE.rglob("*.py")
    }
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            edges[module] |= {t for t in targets if t in modules and t != module}
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            raise AssertionError("import cycle: " + " -> ".join([*path[path.index(module) :], module]))
        if module in done:
            return
        for target in sorted(edges[module]):
            visit(target, [*path, module])
        done.add(module)

    for module in sorted(modules):
        visit(module, [])
