"""No config, script or benchmark of the repository collects on a MiniWoB++ family outside the allowed list."""

import re
from pathlib import Path

import yaml

from similar_rl.collect.families import ALLOWED_FAMILIES, UNACTABLE, actable_families, outside_allowed

ROOT = Path(__file__).resolve().parent.parent
_ENV_ID = re.compile(r"miniwob/([A-Za-z0-9_.-]+?)-v\d+")
_FAMILY_KEYS = ("families", "held_out_families")


def _yaml_families(data) -> list[str]:
    out: list[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            if key in _FAMILY_KEYS and isinstance(value, list):
                out += [str(v) for v in value]
            else:
                out += _yaml_families(value)
    elif isinstance(data, list):
        for item in data:
            out += _yaml_families(item)
    return out


def test_every_config_names_only_allowed_families():
    checked = 0
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        text = path.read_text()
        env_ids = [f"miniwob/{m}-v1" for m in _ENV_ID.findall(text)]
        families = [f for f in _yaml_families(yaml.safe_load(text)) if "/" not in f]
        assert not outside_allowed(env_ids), (path.name, outside_allowed(env_ids))
        assert all(f in ALLOWED_FAMILIES for f in families), (path.name, families)
        checked += len(env_ids) + len(families)
    assert checked > 100  # the configs were read


def test_scripts_and_benchmarks_name_only_allowed_families():
    for folder in ("scripts", "benchmarks", "examples"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix not in (".py", ".sh", ".yaml", ".md") or "results" in path.parts:
                continue
            env_ids = [f"miniwob/{m}-v1" for m in _ENV_ID.findall(path.read_text())]
            assert not outside_allowed(env_ids), (str(path), outside_allowed(env_ids))


def test_unactable_families_are_allowed_ones_and_left_out():
    assert set(UNACTABLE) <= set(ALLOWED_FAMILIES) and len(set(ALLOWED_FAMILIES)) == len(ALLOWED_FAMILIES)
    assert not set(actable_families()) & set(UNACTABLE)
    assert len(actable_families()) + len(UNACTABLE) == len(ALLOWED_FAMILIES)
