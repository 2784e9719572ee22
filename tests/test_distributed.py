"""MCTS-P collection on Ray (a local 2-CPU instance started once): same records as the single-process runner,
resumable across backends, and the collect CLI's --backend ray.

Marked slow: starting Ray alone takes 10-60 s on a loaded 2-core machine (the whole file took 73 s there). If Ray
cannot start at all, the fixture skips with the reason."""

import json

import pytest

ray = pytest.importorskip("ray")

from similar_rl.collect.config import CollectConfig  # noqa: E402
from similar_rl.collect.distributed import collect_ray  # noqa: E402
from similar_rl.collect.runner import collect  # noqa: E402
from similar_rl.data.dataset import load_dataset_folder  # noqa: E402

pytestmark = pytest.mark.slow

ENVS = ["toy/login-form", "toy/open-tab"]


def _cfg(**kw):
    base = {
        "envs": ENVS,
        "seeds": [0, 1],
        "n_children": 3,
        "policy_kwargs": {"temperature": 1.0},
        "workers": 2,
    }
    return CollectConfig(**{**base, **kw})


def _contents(folder):
    data = load_dataset_folder(folder)
    steps = sorted(json.dumps(r.to_dict(), sort_keys=True) for r in data.steps)
    pairs = sorted(json.dumps(p.to_dict(), sort_keys=True) for p in data.pairs)
    return steps, pairs


@pytest.fixture(scope="module")
def local_ray():
    import os

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_raylet_start_wait_time_s", "90")
    # no metrics agent wait: on a loaded 2-core machine it misses the raylet's fixed 30 s start-up deadline
    os.environ.setdefault("RAY_enable_metrics_collection", "0")
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=100 * 2**20)
    except Exception as exc:  # recorded: Ray's start-up raises a bare Exception when its raylet dies
        pytest.skip(f"a local Ray instance could not start on this machine: {exc}")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    collect(_cfg(workers=1), out, progress=False)
    return out


def test_ray_collects_the_same_records_as_the_local_runner(local_ray, reference, tmp_path):
    summary = collect_ray(_cfg(), tmp_path, progress=False)
    assert (
        summary.tasks == 4 and summary.ok + summary.pruned == 4 and summary.failed == 0 and summary.steps > 0
    )
    steps, pairs = _contents(tmp_path)
    assert (steps, pairs) == _contents(reference) and steps and pairs
    again = collect_ray(_cfg(), tmp_path, progress=False)  # nothing left to do: nothing duplicated
    assert again.skipped == 4 and again.steps == 0 and _contents(tmp_path) == (steps, pairs)


def test_ray_run_stopped_midway_resumes_with_the_local_runner(local_ray, reference, tmp_path):
    first = collect_ray(_cfg(max_tasks=1), tmp_path, progress=False)
    assert first.stopped_early and first.ok + first.pruned == 1
    second = collect(_cfg(workers=1), tmp_path, progress=False)
    assert second.skipped == 1 and second.ok + second.pruned == 3
    assert _contents(tmp_path) == _contents(reference)


def test_collect_cli_backend_ray(local_ray, reference, tmp_path, capsys):
    from similar_rl.cli import main

    code = main(["collect", *ENVS, "--seeds", "0-1", "-n", "3", "--policy-kwargs", '{"temperature": 1.0}',
                 "--workers", "2", "--backend", "ray", "--no-progress", "--out", str(tmp_path)])  # fmt: skip
    assert code == 0 and "step records" in capsys.readouterr().out
    assert _contents(tmp_path) == _contents(reference)
