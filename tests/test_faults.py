"""Fault injection: a full disk during dataset writes, a failing commit, env and scorer failures inside a wrapped
episode, and an interrupted or killed feature extraction that resumes from its cache.

Faults covered elsewhere (see docs/failure_modes.md): a crashing or hanging env during collection
(tests/test_mcts.py, tests/test_collect_runner.py), a kill during dataset writes and collection
(tests/test_dataset.py, tests/test_collect_runner.py), a judge endpoint that times out or answers garbage
(tests/test_judges.py), server overload and slow clients (tests/test_serving.py).
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from similar_rl.data.dataset import DatasetReader, DatasetWriter
from similar_rl.data.records import StepRecord
from similar_rl.envs import EnvFailure, make_env
from similar_rl.train.features import FeatureCache, extract_features, feature_fingerprint
from similar_rl.types import StepInput

LABELS = {
    "helpfulness": 0.5,
    "odds_of_success": 1.0,
    "efficiency": 0.1,
    "task_relevance": 1.0,
    "coherence": 1.0,
}


def _steps(task_id: str, n: int = 3, env_id: str = "toy/a", text: str = "") -> list[StepRecord]:
    return [
        StepRecord(
            record_id=f"{task_id}/{j}",
            task_id=task_id,
            env_id=env_id,
            seed=0,
            instruction=f"Do {task_id}",
            step_idx=1,
            action=f"click(ref={j})",
            labels=dict(LABELS),
            observation_text=text,
        )
        for j in range(n)
    ]


# -- dataset writes -------------------------------------------------------------------------------------------------

_FULL_DISK_CHILD = textwrap.dedent(
    """
    import errno, json, os, resource, signal, sys
    from similar_rl.data.dataset import DatasetWriter
    from similar_rl.data.records import StepRecord

    def _steps(task_id, text=""):  # as in test_faults._steps; imports no torch, so the child starts fast
        labels = {labels!r}
        return [
            StepRecord(record_id=f"{{task_id}}/{{j}}", task_id=task_id, env_id="toy/a", seed=0,
                       instruction=f"Do {{task_id}}", step_idx=1, action=f"click(ref={{j}})", labels=dict(labels),
                       observation_text=text)
            for j in range(3)
        ]

    folder = sys.argv[1]
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
    writer = DatasetWriter(folder, fsync=False)
    writer.commit_task("t-1", _steps("t-1"))
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    limit = max(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder) if f.endswith(".jsonl"))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit + 200, hard))  # the disk is "full" 200 bytes on
    try:
        writer.commit_task("t-2", _steps("t-2", text="x" * 5000))
    except OSError as exc:
        outcome = {{"errno": exc.errno, "done_after_failure": sorted(writer.done_tasks)}}
    else:
        outcome = {{"errno": None}}
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # space is freed: the same writer goes on
    writer.commit_task("t-3", _steps("t-3"))
    writer.commit_task("t-2", _steps("t-2", text="x" * 5000))  # the failed task is retried
    writer.close()
    print(json.dumps(outcome))
    """
)


def test_full_disk_during_a_commit_loses_nothing_and_the_writer_goes_on(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(_FULL_DISK_CHILD.format(labels=LABELS))
    folder = tmp_path / "data"
    proc = subprocess.run(
        [sys.executable, str(script), str(folder)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    outcome = json.loads(proc.stdout.strip().splitlines()[-1])
    assert outcome["errno"] in (27, 28)  # EFBIG (the file size limit) or ENOSPC (a full disk)
    assert outcome["done_after_failure"] == ["t-1"]
    reader = DatasetReader(folder)
    assert reader.done_tasks == ["t-1", "t-3", "t-2"]
    ids = [r.record_id for r in reader.steps()]
    assert ids == [f"{t}/{j}" for t in ("t-1", "t-3", "t-2") for j in range(3)]  # no duplicate, no orphan
    # the files hold exactly the committed rows: reopening finds nothing to repair
    size = (folder / "steps.jsonl").stat().st_size
    with DatasetWriter(folder) as writer:
        assert writer.done_tasks == {"t-1", "t-2", "t-3"}
    assert (folder / "steps.jsonl").stat().st_size == size
    assert not [p for p in folder.iterdir() if ".tmp" in p.name]


def test_a_failure_row_cut_by_a_full_disk_is_rolled_back(tmp_path, monkeypatch):
    with DatasetWriter(tmp_path, fsync=False) as writer:
        writer.record_failure("t-1", "first")
        size = (tmp_path / "failures.jsonl").stat().st_size
        real_append = DatasetWriter._append

        def half_write(self, name, rows, expected_end):
            with open(self.folder / name, "ab") as fh:
                fh.write(b'{"task_id": "t-2", "err')
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(DatasetWriter, "_append", half_write)
        with pytest.raises(OSError, match="No space"):
            writer.record_failure("t-2", "second")
        monkeypatch.setattr(DatasetWriter, "_append", real_append)
        assert (tmp_path / "failures.jsonl").stat().st_size == size
        writer.record_failure("t-3", "third")
    assert [f["task_id"] for f in DatasetWriter(tmp_path, fsync=False).failures] == ["t-1", "t-3"]


def test_an_unreadable_failure_line_is_skipped_on_reopen(tmp_path, caplog):
    with DatasetWriter(tmp_path, fsync=False) as writer:
        writer.commit_task("t-1", _steps("t-1"))
        writer.record_failure("t-2", "first")
    with open(tmp_path / "failures.jsonl", "ab") as fh:  # a half row, then a later good one after it
        fh.write(b'{"task_id": "t-3", "err\n{"task_id": "t-4", "error": "x", "attempt": 0}\n')
    with caplog.at_level(logging.WARNING), DatasetWriter(tmp_path, fsync=False) as writer:
        assert [f["task_id"] for f in writer.failures] == ["t-2", "t-4"] and writer.done_tasks == {"t-1"}
    assert "failures.jsonl: line 2 is not valid JSON" in caplog.text


def test_a_commit_refused_after_validation_writes_nothing(tmp_path):
    with DatasetWriter(tmp_path, fsync=False) as writer:
        writer.commit_task("t-1", _steps("t-1"))
        mixed = _steps("t-2")[:1] + _steps("t-2", env_id="toy/b")[1:]
        with pytest.raises(ValueError, match="mixes env ids"):
            writer.commit_task("t-2", mixed)
        writer.commit_task("t-3", _steps("t-3"))
    assert [r.task_id for r in DatasetReader(tmp_path).steps()] == ["t-1"] * 3 + ["t-3"] * 3


# -- wrapped episodes -----------------------------------------------------------------------------------------------


class _FlakyScorer:
    """A real scorer (the tiny default model) that fails on demand, like a remote scorer getting a 503."""

    def __init__(self, scorer):
        self.scorer, self.fail_next, self.requests = scorer, False, []

    def score(self, steps):
        self.requests.append(list(steps))
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("reward server unavailable (503)")
        return self.scorer.score(steps)


@pytest.fixture(scope="module")
def scorer():
    from similar_rl.model import SimilarRewardModel
    from similar_rl.scoring import Scorer
    from similar_rl.testing import tiny_default_config

    return Scorer(SimilarRewardModel(tiny_default_config(use_image=False)))


class _DyingEnv:
    """Wraps the toy env; its ``step`` raises EnvFailure (a dead browser) on the step numbers in ``die_at``."""

    def __init__(self, die_at):
        import gymnasium as gym

        env, self.adapter = make_env("toy/login-form")

        class Dying(gym.Wrapper):
            count = 0

            def step(inner, action):
                type(inner).count += 1
                if type(inner).count in die_at:
                    raise EnvFailure(f"browser died at step {type(inner).count}")
                return inner.env.step(action)

        self.env = Dying(env)


def test_env_failure_surfaces_and_the_next_reset_starts_clean(scorer):
    from similar_rl.wrappers import SimilarRewardWrapper

    dying = _DyingEnv(die_at={2})
    wrapper = SimilarRewardWrapper(dying.env, scorer, dying.adapter)
    wrapper.reset(seed=0)
    wrapper.step("noop()")
    with pytest.raises(EnvFailure, match="browser died at step 2"):
        wrapper.step('type(ref=2, text="x")')
    assert wrapper.history == ["noop()"]
    wrapper.reset(seed=1)
    assert wrapper.history == [] and wrapper.state is not None
    _, reward, *_, info = wrapper.step("noop()")
    assert wrapper.history == ["noop()"] and set(info["similar"]) >= {"total"} and math.isfinite(reward)


def test_a_scorer_failure_never_leaves_the_wrapper_scoring_a_stale_state(scorer):
    from similar_rl.wrappers import SimilarRewardWrapper

    env, adapter = make_env("toy/login-form")
    flaky = _FlakyScorer(scorer)
    wrapper = SimilarRewardWrapper(env, flaky, adapter)
    wrapper.reset(seed=0)
    flaky.fail_next = True
    with pytest.raises(ConnectionError):
        wrapper.step("noop()")  # the env did take this step
    wrapper.step("noop()")  # goes on, scored against the env's real state: the failed step is in the history
    assert flaky.requests[-1][0].history == ("noop()",)


def test_after_a_scorer_failure_the_potential_reward_equals_a_clean_run(scorer):
    from similar_rl.wrappers import SimilarRewardWrapper

    def run(fail_at_step):
        env, adapter = make_env("toy/login-form")
        flaky = _FlakyScorer(scorer)
        wrapper = SimilarRewardWrapper(env, flaky, adapter, reward_mode="potential")
        wrapper.reset(seed=0)
        rewards = []
        for step in range(3):
            flaky.fail_next = step == fail_at_step
            try:
                rewards.append(wrapper.step("noop()")[1])
            except ConnectionError:
                rewards.append(None)
        return rewards, wrapper.history

    clean, clean_history = run(None)
    flaky, flaky_history = run(1)
    assert flaky[1] is None and flaky_history == clean_history == ["noop()"] * 3
    assert flaky[0] == pytest.approx(clean[0]) and flaky[2] == pytest.approx(clean[2])


@pytest.mark.parametrize("reward_mode", ["add", "potential"])
def test_a_scorer_failure_never_leaves_the_vector_wrapper_on_a_stale_state(scorer, reward_mode):
    import gymnasium as gym

    from similar_rl.envs.toy import ToyEnv
    from similar_rl.wrappers import SimilarVectorRewardWrapper

    def run(fail_at_step):
        envs = gym.vector.SyncVectorEnv([lambda: ToyEnv("login-form")] * 2)
        flaky = _FlakyScorer(scorer)
        wrapper = SimilarVectorRewardWrapper(envs, flaky, reward_mode=reward_mode)
        wrapper.reset(seed=0)
        rewards = []
        for step in range(3):
            flaky.fail_next = step == fail_at_step
            try:
                rewards.append(wrapper.step(("noop()", "noop()"))[1].tolist())
            except ConnectionError:
                rewards.append(None)
        return rewards, wrapper.histories(), flaky.requests

    clean, clean_histories, _ = run(None)
    flaky, flaky_histories, requests = run(1)
    assert flaky[1] is None and flaky_histories == clean_histories == [["noop()"] * 3] * 2
    assert [r.history for r in requests[-1][:2]] == [("noop()", "noop()")] * 2
    assert flaky[0] == pytest.approx(clean[0]) and flaky[2] == pytest.approx(clean[2])


# -- feature extraction -----------------------------------------------------------------------------------------------


class _CountingEncoder:
    """A stand-in featurizer (any object with .config, .backbone and .encode works for extract_features)."""

    config = None
    backbone = None

    def __init__(self, fail_at_call=None):
        self.calls, self.encoded, self.fail_at_call = 0, 0, fail_at_call

    def encode(self, steps):
        self.calls += 1
        if self.calls == self.fail_at_call:
            raise RuntimeError("killed mid-extraction")
        self.encoded += len(steps)
        n = torch.tensor([[float(len(s.action)), float(len(s.instruction))] for s in steps])
        return n, n * 2


def _inputs(n=40):
    return [StepInput(f"Task {i // 4}", f"click(ref={i})") for i in range(n)]


def test_interrupted_extraction_resumes_from_the_cache_without_recomputing(tmp_path):
    inputs = _inputs()
    broken = _CountingEncoder(fail_at_call=4)
    with pytest.raises(RuntimeError, match="killed mid-extraction"):
        extract_features(broken, inputs, batch_size=4, cache_dir=tmp_path, progress=False, shard_rows=8)
    assert broken.encoded == 12  # three batches finished and were flushed to the cache on the way out
    again = _CountingEncoder()
    x, z = extract_features(again, inputs, batch_size=4, cache_dir=tmp_path, progress=False, shard_rows=8)
    assert again.encoded == len(inputs) - 12
    clean_x, clean_z = extract_features(_CountingEncoder(), inputs, use_cache=False, progress=False)
    assert torch.equal(x, clean_x) and torch.equal(z, clean_z)


def test_a_corrupt_shard_and_a_stale_temp_file_are_ignored_and_recomputed(tmp_path, caplog):
    inputs = _inputs(8)
    extract_features(
        _CountingEncoder(), inputs, batch_size=4, cache_dir=tmp_path, progress=False, shard_rows=4
    )
    folder = tmp_path / feature_fingerprint(_CountingEncoder())
    shards = sorted(folder.glob("shard-*.safetensors"))
    assert len(shards) == 2
    shards[0].write_bytes(shards[0].read_bytes()[:40])  # cut short, as by a disk error
    (folder / ".shard-x.safetensors.tmp123").write_bytes(b"half a file")  # left by a kill during a write
    with caplog.at_level(logging.WARNING):
        assert len(FeatureCache(folder)) == 4
    assert "unreadable feature cache shard" in caplog.text
    again = _CountingEncoder()
    x, _ = extract_features(again, inputs, batch_size=4, cache_dir=tmp_path, progress=False)
    assert again.encoded == 4
    assert torch.equal(x, extract_features(_CountingEncoder(), inputs, use_cache=False, progress=False)[0])


_KILLED_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    from test_faults import _CountingEncoder, _inputs
    from similar_rl.train.features import extract_features

    class Killed(_CountingEncoder):
        def encode(self, steps):
            if self.calls == 5:
                os.kill(os.getpid(), signal.SIGKILL)  # no finally block runs: only flushed shards survive
            return super().encode(steps)

    extract_features(Killed(), _inputs(), batch_size=4, cache_dir=sys.argv[1], progress=False, shard_rows=8)
    """
)


def test_sigkill_during_extraction_keeps_flushed_shards(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(_KILLED_CHILD.format(tests=os.path.dirname(__file__)))
    cache = tmp_path / "cache"
    proc = subprocess.run([sys.executable, str(script), str(cache)], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    again = _CountingEncoder()
    x, z = extract_features(again, _inputs(), batch_size=4, cache_dir=cache, progress=False)
    assert again.encoded == len(_inputs()) - 16  # batches 1-4 were flushed as two shards of 8 rows
    clean_x, clean_z = extract_features(_CountingEncoder(), _inputs(), use_cache=False, progress=False)
    assert torch.equal(x, clean_x) and torch.equal(z, clean_z)
