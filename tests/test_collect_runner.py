"""Collection runs into dataset folders: resume after a stop or a kill, fault injection, 2 workers = 1 worker."""

import json
import os
import signal
import subprocess
import sys
import time

import gymnasium as gym
import pytest

from similar_rl.collect.config import CollectConfig
from similar_rl.collect.runner import collect
from similar_rl.data.dataset import DatasetReader, load_dataset_folder
from similar_rl.dimensions import DIMENSIONS, PAIR_TYPES
from similar_rl.envs import register_adapter
from similar_rl.envs.base import EnvFailure
from similar_rl.envs.toy import ToyAdapter, ToyEnv

ENVS = ["toy/login-form", "toy/open-tab", "toy/checkboxes"]


def _cfg(**kw):
    base = {"envs": ENVS, "seeds": [0, 1], "n_children": 3, "policy_kwargs": {"temperature": 1.0}}
    return CollectConfig(**{**base, **kw})


def _contents(folder):
    data = load_dataset_folder(folder)
    steps = sorted(json.dumps(r.to_dict(), sort_keys=True) for r in data.steps)
    pairs = sorted(json.dumps(p.to_dict(), sort_keys=True) for p in data.pairs)
    return steps, pairs


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref")
    summary = collect(_cfg(), out, progress=False)
    return out, summary


def test_uninterrupted_run_writes_labelled_records_and_pairs(reference):
    out, summary = reference
    assert summary.tasks == 6 and summary.ok + summary.pruned == 6 and summary.failed == 0
    data = load_dataset_folder(out)
    assert len(data.steps) == summary.steps > 0
    for rec in data.steps:
        assert set(rec.labels) == set(DIMENSIONS) and all(v is not None for v in rec.labels.values())
        assert rec.screenshot and (out / rec.screenshot).exists()
        assert rec.node_id and rec.record_id.startswith(rec.node_id + "/")
        assert len(rec.history) == rec.step_idx - 1
    assert {p.type for p in data.pairs} <= set(PAIR_TYPES) and "traj" in {p.type for p in data.pairs}
    manifest = data.manifest
    assert manifest["config"]["n_children"] == 3 and "workers" not in manifest["config"]
    assert manifest["seeds"] == [0, 1] and manifest["env_ids"] == sorted(ENVS)
    assert manifest["counts"]["steps"] == len(data.steps)
    extra = DatasetReader(out).task_extra()
    assert {e["status"] for e in extra.values()} <= {"ok", "pruned"}


def test_stop_midway_and_resume_gives_identical_records(reference, tmp_path):
    ref, _ = reference
    first = collect(_cfg(max_tasks=2), tmp_path, progress=False)
    assert first.stopped_early and first.ok + first.pruned == 2
    second = collect(_cfg(), tmp_path, progress=False)
    assert second.skipped == 2 and second.ok + second.pruned == 4
    assert _contents(tmp_path) == _contents(ref)
    third = collect(_cfg(), tmp_path, progress=False)  # nothing left: no duplicates
    assert third.skipped == 6 and third.steps == 0
    assert _contents(tmp_path) == _contents(ref)


def test_sigkill_midway_and_rerun_gives_identical_records(reference, tmp_path):
    ref, _ = reference
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "similar_rl.cli", "collect", *ENVS, "--seeds", "0-1", "-n", "3", "--no-progress",
           "--policy-kwargs", '{"temperature": 1.0}', "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done = out / "done.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        if done.exists() and done.read_text().count("\n") >= 2:
            break
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_with = done.read_text().count("\n")
    assert killed_with < 6, "the run finished before it could be killed"
    # simulate a half-written record on top of the kill
    with open(out / "steps.jsonl", "a") as fh:
        fh.write('{"record_id": "half')
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert f"({killed_with} already done" in rerun.stdout
    assert _contents(out) == _contents(ref)


def test_two_workers_give_the_same_records_as_one(reference, tmp_path):
    ref, _ = reference
    summary = collect(_cfg(workers=2), tmp_path, progress=False)
    assert summary.failed == 0
    assert _contents(tmp_path) == _contents(ref)


class _Crashy(gym.Wrapper):
    fail_at = {9}
    count = 0

    def step(self, action):
        type(self).count += 1
        if type(self).count in self.fail_at:
            raise EnvFailure(f"injected crash at env step {type(self).count}")
        return self.env.step(action)


class CrashyAdapter(ToyAdapter):
    def make_env(self, env_id, **kwargs):
        return _Crashy(ToyEnv(task=env_id.split("/", 1)[1], **kwargs))


def test_env_failure_is_retried_and_recorded_in_the_manifest(tmp_path):
    register_adapter("crashy/", f"{__name__}:CrashyAdapter")
    _Crashy.count = 0
    cfg = CollectConfig(envs=["crashy/login-form"], seeds=[0], n_children=3)
    summary = collect(cfg, tmp_path / "crashy", progress=False)
    assert summary.env_failures == 1 and summary.failed == 0 and summary.ok + summary.pruned == 1
    manifest = load_dataset_folder(tmp_path / "crashy").manifest
    assert (
        len(manifest["failures"]) == 1 and "injected crash at env step 9" in manifest["failures"][0]["error"]
    )
    _Crashy.fail_at, _Crashy.count = set(), 0  # the same task id with no crash: the same records
    try:
        clean = collect(cfg, tmp_path / "clean", progress=False)
    finally:
        _Crashy.fail_at = {9}
    assert clean.env_failures == 0
    a = [(r.action, r.labels) for r in load_dataset_folder(tmp_path / "crashy").steps]
    b = [(r.action, r.labels) for r in load_dataset_folder(tmp_path / "clean").steps]
    assert a == b and clean.steps == summary.steps


def test_a_task_that_keeps_failing_is_recorded_and_retried_on_rerun(tmp_path):
    register_adapter("crashy/", f"{__name__}:CrashyAdapter")
    _Crashy.count = 0
    _Crashy.fail_at = set(range(1, 10_000))
    try:
        cfg = CollectConfig(envs=["crashy/click-button"], seeds=[0], n_children=2, max_retries=1)
        summary = collect(cfg, tmp_path, progress=False)
    finally:
        _Crashy.fail_at = {9}
    assert summary.failed == 1 and summary.failed_tasks == ["crashy/click-button@0"]
    reader = DatasetReader(tmp_path)
    assert reader.done_tasks == [] and any("task failed" in f["error"] for f in reader.failures())


def test_duplicate_env_ids_are_refused_before_any_search(tmp_path, capsys):
    from similar_rl.cli import main

    out = tmp_path / "dup"
    assert main(["collect", "toy/click-button", "toy/click-button", "--out", str(out), "--seeds", "0"]) == 2
    assert "['toy/click-button'] more than once" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())
