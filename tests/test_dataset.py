"""The dataset folder: round trip, screenshots, manifest, kill safety and resume, reader validation, datasets."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from similar_rl.data.dataset import DatasetReader, DatasetWriter, load_dataset_folder, to_hf_dataset
from similar_rl.data.pairs import build_pairs
from similar_rl.data.records import StepRecord


def make_task(
    task_id: str, env_id: str = "toy/a", n: int = 3, screenshot: str | None = None
) -> list[StepRecord]:
    """n deterministic siblings of one node."""
    out = []
    for j in range(n):
        labels = {
            "helpfulness": -0.5 + 0.3 * j,
            "odds_of_success": j / max(n - 1, 1),
            "efficiency": 0.1 * j,
            "task_relevance": float(j % 2),
            "coherence": 1.0,
        }
        out.append(
            StepRecord(
                record_id=f"{task_id}/1/{j}",
                task_id=task_id,
                env_id=env_id,
                seed=int(task_id.rsplit("-", 1)[-1]) if "-" in task_id else 0,
                instruction=f"Do {task_id}",
                step_idx=1,
                action=f"click(ref={j + 1})",
                labels=labels,
                history=["noop()"],
                node_id=f"{task_id}/n1",
                screenshot=screenshot,
            )
        )
    return out


def commit(writer: DatasetWriter, task_id: str, env_id: str = "toy/a") -> None:
    steps = make_task(task_id, env_id)
    writer.commit_task(task_id, steps, build_pairs(steps), extra={"status": "ok"})


def rows(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def test_round_trip_manifest_and_screenshots(tmp_path):
    image = np.arange(12 * 10 * 3, dtype=np.uint8).reshape(12, 10, 3)
    with DatasetWriter(tmp_path, config={"n": 3}, seeds=[7]) as writer:
        rel = writer.save_screenshot(image)
        assert writer.save_screenshot(image.copy()) == rel  # deduplicated by content
        assert writer.save_screenshot(image[::-1].copy()) != rel
        steps = make_task("t-1", screenshot=rel)
        pairs = build_pairs(steps)
        writer.commit_task("t-1", steps, pairs)
        commit(writer, "t-2", env_id="toy/b")
        writer.commit_task("t-3", [], [], extra={"status": "pruned", "env_id": "toy/c", "seed": 3})
    assert len(list((tmp_path / "images").glob("*.png"))) == 2
    data = load_dataset_folder(tmp_path)
    assert [r.to_dict() for r in data.steps[:3]] == [r.to_dict() for r in steps]
    assert [p.to_dict() for p in data.pairs[: len(pairs)]] == [p.to_dict() for p in pairs]
    reader = DatasetReader(tmp_path)
    np.testing.assert_array_equal(reader.load_screenshot(rel), image)
    m = data.manifest
    assert m["config"] == {"n": 3}
    assert m["seeds"] == [1, 2, 3, 7]
    assert m["env_ids"] == ["toy/a", "toy/b", "toy/c"]
    assert m["code_version"]["similar_rl"]
    assert m["counts"]["steps"] == 6 and m["counts"]["tasks_done"] == 3
    assert m["counts"]["pairs"] == len(data.pairs) == 2 * len(pairs)
    assert m["counts"]["pairs_per_type_env"]["total"] == {"toy/a": 3, "toy/b": 3}
    assert reader.task_extra()["t-3"]["status"] == "pruned"
    with pytest.raises(ValueError, match="outside"):
        reader.screenshot_path("../x.png")


def test_commit_errors(tmp_path):
    with DatasetWriter(tmp_path) as writer:
        commit(writer, "t-1")
        with pytest.raises(ValueError, match="already committed"):
            commit(writer, "t-1")
        with pytest.raises(ValueError, match="passed to commit_task"):
            writer.commit_task("t-9", make_task("t-2"))
        with pytest.raises(ValueError, match="duplicate step record_id"):
            writer.commit_task("t-2", make_task("t-2") + make_task("t-2"))
        with pytest.raises(ValueError, match="save_screenshot"):
            writer.commit_task("t-2", make_task("t-2", screenshot="images/nope.png"))
        assert not writer.is_done("t-2")
    # nothing of the refused commits was written
    assert len(rows(tmp_path / "steps.jsonl")) == 3


def test_folder_rules(tmp_path):
    with DatasetWriter(tmp_path, config={"n": 3}) as writer:
        commit(writer, "t-1")
        with pytest.raises(RuntimeError, match="another DatasetWriter"):
            DatasetWriter(tmp_path, config={"n": 3})
    with pytest.raises(FileExistsError, match="resume=True"):
        DatasetWriter(tmp_path, config={"n": 3}, resume=False)
    with pytest.raises(ValueError, match=r"differences in \['n'\]"):
        DatasetWriter(tmp_path, config={"n": 4})
    with DatasetWriter(tmp_path, config={"n": 3}) as writer:  # the failed opens released the lock
        assert writer.is_done("t-1")


def test_failures_are_recorded_and_kept(tmp_path):
    with DatasetWriter(tmp_path) as writer:
        writer.record_failure("t-1", RuntimeError("browser crashed"), attempt=1)
        writer.record_failure("t-1", "timeout", attempt=2)
    with DatasetWriter(tmp_path) as writer:
        assert [f["attempt"] for f in writer.failures] == [1, 2]
        assert not writer.is_done("t-1")
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["failures"][0]["error"] == "RuntimeError: browser crashed"
    assert manifest["counts"]["failures"] == 2


def _uninterrupted(folder: Path, tasks: list[str]) -> tuple[list[str], list[str]]:
    with DatasetWriter(folder) as writer:
        for t in tasks:
            commit(writer, t)
    return rows(folder / "steps.jsonl"), rows(folder / "pairs.jsonl")


def test_interrupted_task_is_dropped_and_resume_matches(tmp_path, caplog):
    tasks = ["t-1", "t-2", "t-3"]
    expected = _uninterrupted(tmp_path / "clean", tasks)
    folder = tmp_path / "killed"
    with DatasetWriter(folder) as writer:
        commit(writer, "t-1")
    # a kill during t-2: two full step rows, one cut row, no done line
    half = [json.dumps(r.to_dict()) for r in make_task("t-2")]
    with open(folder / "steps.jsonl", "a") as fh:
        fh.write(half[0] + "\n" + half[1] + "\n" + half[2][:40])
    assert [r.task_id for r in DatasetReader(folder).steps()] == [
        "t-1"
    ] * 3  # readers see committed rows only
    with caplog.at_level(logging.WARNING), DatasetWriter(folder) as writer:
        assert "interrupted task" in caplog.text
        assert writer.done_tasks == {"t-1"}
        for t in tasks:
            if not writer.is_done(t):
                commit(writer, t)
    assert (rows(folder / "steps.jsonl"), rows(folder / "pairs.jsonl")) == expected


def test_truncated_done_line_is_dropped(tmp_path, caplog):
    with DatasetWriter(tmp_path) as writer:
        commit(writer, "t-1")
        commit(writer, "t-2")
    done = (tmp_path / "done.jsonl").read_bytes()
    (tmp_path / "done.jsonl").write_bytes(done[:-30])  # t-2's done line cut by a kill
    with caplog.at_level(logging.WARNING), DatasetWriter(tmp_path) as writer:
        assert "truncated" in caplog.text
        assert writer.done_tasks == {"t-1"}
        commit(writer, "t-2")
    assert [r.task_id for r in DatasetReader(tmp_path).steps()] == ["t-1"] * 3 + ["t-2"] * 3


def test_reader_names_file_and_line_of_a_bad_row(tmp_path):
    with DatasetWriter(tmp_path) as writer:
        commit(writer, "t-1")
    lines = rows(tmp_path / "steps.jsonl")
    # same-length edits keep the committed byte offsets valid
    assert '"odds_of_success":0.5' in lines[1]
    lines[1] = lines[1].replace('"odds_of_success":0.5', '"odds_of_success":3.0')
    (tmp_path / "steps.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"steps\.jsonl: line 2: .*odds_of_success=3\.0"):
        list(DatasetReader(tmp_path).steps())
    lines[1] = "{" + "x" * (len(lines[1]) - 1)
    (tmp_path / "steps.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"steps\.jsonl: line 2 is not valid JSON"):
        list(DatasetReader(tmp_path).steps())
    with pytest.raises(FileNotFoundError, match="not a dataset folder"):
        DatasetReader(tmp_path / "images")


def test_hf_datasets(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with DatasetWriter(tmp_path / "d") as writer:
        rel = writer.save_screenshot(np.zeros((4, 4, 3), dtype=np.uint8))
        steps = make_task("t-1", screenshot=rel)
        steps[0].meta = {"rollouts": 2}
        writer.commit_task("t-1", steps, build_pairs(steps))
        commit(writer, "t-2")
    pairs = to_hf_dataset(tmp_path / "d", "pairs")
    assert len(pairs) == 28 and set(pairs["type"]) >= {"helpfulness", "total"}
    steps_ds = to_hf_dataset(tmp_path / "d", "steps", absolute_paths=True)
    assert len(steps_ds) == 6 and Path(steps_ds[0]["screenshot"]).is_file()
    assert json.loads(steps_ds[0]["meta"]) == {"rollouts": 2}
    # the raw jsonl also loads with datasets' own json builder, offline
    import datasets

    raw = datasets.load_dataset(
        "json",
        data_files=str(tmp_path / "d" / "pairs.jsonl"),
        split="train",
        cache_dir=str(tmp_path / "cache"),
    )
    assert raw["pair_id"] == pairs["pair_id"]


_KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {tests!r})
    from test_dataset import commit
    from similar_rl.data.dataset import DatasetWriter
    writer = DatasetWriter({folder!r})
    for i in range(1, 1000):
        t = f"t-{{i}}"
        if not writer.is_done(t):
            commit(writer, t)
            print(t, flush=True)
            time.sleep(0.01)
    """
)


def test_real_kill_then_resume_matches_uninterrupted_run(tmp_path):
    folder = tmp_path / "killed"
    script = _KILL_SCRIPT.format(tests=str(Path(__file__).parent), folder=str(folder))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        seen = [proc.stdout.readline() for _ in range(5)]  # let it commit a few tasks
        assert all(s.startswith("t-") for s in seen)
        time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    with DatasetWriter(folder) as writer:
        done = len(writer.done_tasks)
        assert done >= 5
        tasks = [f"t-{i}" for i in range(1, done + 3)]
        for t in tasks:
            if not writer.is_done(t):
                commit(writer, t)
    expected = _uninterrupted(tmp_path / "clean", tasks)
    assert (rows(folder / "steps.jsonl"), rows(folder / "pairs.jsonl")) == expected


def test_training_inputs_load_only_pngs_inside_the_data_folder(tmp_path):
    from PIL import Image

    from similar_rl.train.data import InputFactory

    folder = tmp_path / "data"
    (folder / "shots").mkdir(parents=True)
    Image.new("RGB", (4, 4), "red").save(folder / "shots" / "ok.png")
    Image.new("RGB", (4, 4)).save(tmp_path / "secret.png")
    Image.new("RGB", (4, 4)).save(folder / "shots" / "photo.jpg", format="JPEG")
    Image.new("L", (5000, 1)).save(folder / "shots" / "wide.png")
    (folder / "shots" / "link.png").symlink_to(tmp_path / "secret.png")
    factory = InputFactory(folder)
    assert factory.image("shots/ok.png").shape == (4, 4, 3)
    for rel, problem in [
        ("../secret.png", "outside the dataset folder"),
        (str(tmp_path / "secret.png"), "is absolute"),
        ("shots/link.png", "outside the dataset folder"),
        ("shots/photo.jpg", "not a readable PNG"),
        ("shots/wide.png", "5000x1"),
    ]:
        with pytest.raises(ValueError, match=problem):
            factory.image(rel)
    with pytest.raises(FileNotFoundError):
        factory.image("shots/missing.png")
