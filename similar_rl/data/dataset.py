"""The dataset folder: append-only, kill-safe storage of step records, preference pairs and screenshots.

Layout of a folder written by :class:`DatasetWriter`::

    steps.jsonl      one StepRecord.to_dict() per line
    pairs.jsonl      one PairRecord.to_dict() per line
    done.jsonl       one line per committed task: task id, end offsets of steps/pairs.jsonl, counts, extra
    failures.jsonl   one line per recorded failure (task id, error, attempt)
    images/          screenshots as PNG, named by the hash of their pixels (deduplicated)
    manifest.json    config, seeds, env ids, code version, counts per pair type and env, failures

A task is the unit of commit. :meth:`DatasetWriter.commit_task` appends the task's steps and pairs, fsyncs
them, then appends a ``done.jsonl`` line that records where the two files end. Only rows below the offsets of
the last done line count: when a writer reopens a folder after a kill, it truncates whatever a half-written
task left behind (with a warning), and a truncated last ``done.jsonl`` line is dropped (with a warning), so a
rerun neither duplicates nor loses records. :class:`DatasetReader` reads only committed rows too.

One writer per folder at a time (an advisory lock enforces it); it is thread-safe. Parallel collection should
send finished tasks to one writer in the main process.

Example:
    >>> import tempfile
    >>> from similar_rl.data.records import StepRecord
    >>> folder = tempfile.mkdtemp()
    >>> labels = {"helpfulness": 0.5, "odds_of_success": 1.0, "efficiency": 0.1, "task_relevance": 1.0,
    ...           "coherence": 1.0}
    >>> rec = StepRecord(record_id="t/1/0", task_id="t", env_id="toy/a", seed=0, instruction="Click OK",
    ...                  step_idx=1, action="click(ref=1)", labels=labels, node_id="t/1")
    >>> with DatasetWriter(folder, config={"n_children": 2}) as writer:
    ...     writer.commit_task("t", [rec], [])
    ...     writer.is_done("t")
    True
    >>> reader = DatasetReader(folder)
    >>> [r.action for r in reader.steps()], reader.manifest["counts"]["steps"]
    (['click(ref=1)'], 1)
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import io
import json
import logging
import os
import subprocess
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from similar_rl.data.records import PairRecord, StepRecord
from similar_rl.types import MAX_IMAGE_SIDE, as_rgb_array, image_hash

try:  # POSIX only; elsewhere the single-writer rule is not enforced.
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

STEPS_FILE = "steps.jsonl"
PAIRS_FILE = "pairs.jsonl"
DONE_FILE = "done.jsonl"
FAILURES_FILE = "failures.jsonl"
MANIFEST_FILE = "manifest.json"
IMAGES_DIR = "images"
LOCK_FILE = ".writer.lock"
FORMAT_NAME = "similar_rl.dataset"
FORMAT_VERSION = 1


def code_version() -> dict[str, Any]:
    """``{"similar_rl": __version__, "git_commit": sha or None, "git_dirty": bool or None}``."""
    import similar_rl

    info: dict[str, Any] = {"similar_rl": similar_rl.__version__, "git_commit": None, "git_dirty": None}
    root = Path(similar_rl.__file__).resolve().parent.parent

    def git(*args: str) -> str:
        run = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=5, check=True)
        return run.stdout.strip()

    try:
        sha = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError) as exc:
        logger.debug("no git commit for the code version: %s", exc)
        return info
    return {**info, "git_commit": sha or None, "git_dirty": bool(dirty)}


def _jsonable(config: Any) -> Any:
    """A config as plain JSON data (dataclasses and mappings are converted; the result must serialise)."""
    if config is None:
        return {}
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    if isinstance(config, Mapping):
        config = dict(config)
    try:
        return json.loads(json.dumps(config, default=_json_default))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"DatasetWriter config must be JSON-serialisable: {exc}") from None


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _dumps(row: Mapping[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False, separators=(",", ":"), default=_json_default)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Flush a folder's entries (new files, renames) to disk, so they survive a power loss."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: str | os.PathLike[str], text: str | bytes, fsync: bool = True) -> None:
    """Write ``text`` (str as UTF-8, or bytes) to ``path`` via a temporary file and ``os.replace`` (readers never
    see half a file); with ``fsync`` the file and then its folder entry are flushed to disk."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(text.encode("utf-8") if isinstance(text, str) else text)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync:
        fsync_dir(path.parent)


def _truncate(path: Path, size: int, fsync: bool = True) -> None:
    """Cut ``path`` back to ``size`` bytes (flushed to disk with ``fsync``)."""
    with open(path, "r+b") as fh:
        fh.truncate(size)
        if fsync:
            os.fsync(fh.fileno())


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _cut_partial_line(path: Path, fsync: bool = True) -> None:
    """Cut a last line that has no newline (a write cut off by a kill) off ``path``, if it exists."""
    if path.exists() and (good := path.read_bytes().rfind(b"\n") + 1) < path.stat().st_size:
        _truncate(path, good, fsync)


def _read_jsonl(
    path: Path, end: int | None, *, drop_partial_tail: bool, skip_bad: bool = False
) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row) of a jsonl file up to byte offset ``end`` (None: whole file).

    A last line without its newline is a write cut by a kill: dropped with a warning if ``drop_partial_tail``,
    else a ValueError. Any other unparsable line raises a ValueError naming the file and line, or, with
    ``skip_bad`` (a log whose rows are not data, like ``failures.jsonl``), is skipped with a warning.
    """
    if not path.exists():
        if end:
            raise ValueError(f"{path} is missing but {DONE_FILE} says it holds {end} committed bytes")
        return []
    with open(path, "rb") as fh:
        data = fh.read() if end is None else fh.read(end)
    if end is not None and len(data) < end:
        raise ValueError(
            f"{path} has {len(data)} bytes but {DONE_FILE} says {end} are committed: the folder is corrupt"
        )
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the data ends with a newline
    if tail:
        msg = f"{path}: line {len(lines) + 1} is truncated (no newline; a write was cut off)"
        if not drop_partial_tail:
            raise ValueError(msg)
        logger.warning("%s; dropping it", msg)
    rows = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw.decode("utf-8"))
        except ValueError as exc:  # not UTF-8, not JSON, or an integer past the digit limit
            problem = f"is not valid JSON ({exc})"
        else:
            if isinstance(row, dict):
                rows.append((number, row))
                continue
            problem = f"must be a JSON object, got {type(row).__name__}"
        if not skip_bad:
            raise ValueError(f"{path}: line {number} {problem}")
        logger.warning("%s: line %d %s; skipping it", path, number, problem)
    return rows


def _read_done(folder: Path, *, repair: bool) -> list[dict[str, Any]]:
    """The committed-task lines. A truncated last line is dropped (and cut from the file if ``repair``)."""
    path = folder / DONE_FILE
    rows = _read_jsonl(path, None, drop_partial_tail=True)
    for number, row in rows:
        missing = [key for key in ("task_id", "steps_end", "pairs_end") if key not in row]
        if missing:
            raise ValueError(f"{path}: line {number} misses field {missing[0]!r}")
    if repair:
        _cut_partial_line(path)
    return [row for _, row in rows]


def _read_failures(folder: Path) -> list[dict[str, Any]]:
    """The rows of ``failures.jsonl`` (a log: unreadable lines are skipped with a warning)."""
    rows = _read_jsonl(folder / FAILURES_FILE, None, drop_partial_tail=True, skip_bad=True)
    return [row for _, row in rows]


@dataclass
class DatasetContents:
    """Everything in a dataset folder, loaded: see :func:`load_dataset_folder`."""

    folder: Path
    steps: list[StepRecord]
    pairs: list[PairRecord]
    manifest: dict[str, Any] = field(default_factory=dict)


class DatasetWriter:
    """Append-only, resumable writer of a dataset folder.

    Args:
        folder: the dataset folder (created if missing).
        config: the collection config (a dataclass or mapping, JSON-serialisable), stored in the manifest.
        resume: reopen a folder that already holds data and continue it. If False, a non-empty folder is an
            error (choose a new folder or pass ``resume=True``).
        seeds: seeds of the run, for the manifest (seeds of committed tasks are added automatically).
        env_ids: env ids of the run, for the manifest (env ids of committed tasks are added automatically).
        fsync: fsync files at each commit (survives power loss, not only a killed process).
        check_config: on resume, refuse a config that differs from the one in the manifest.

    A collector skips the tasks that :meth:`is_done`, saves screenshots with :meth:`save_screenshot`, and
    ends each task with :meth:`commit_task` or :meth:`record_failure` (as
    :func:`similar_rl.collect.runner.collect` does).
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        config: Any = None,
        resume: bool = True,
        *,
        seeds: Iterable[int] = (),
        env_ids: Iterable[str] = (),
        fsync: bool = True,
        check_config: bool = True,
    ) -> None:
        self.folder = Path(folder)
        self.fsync = fsync
        self._lock = threading.RLock()
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / IMAGES_DIR).mkdir(exist_ok=True)
        self._lock_fh = self._acquire_lock()
        self.config = _jsonable(config)
        existing = (self.folder / DONE_FILE).exists() or (self.folder / STEPS_FILE).exists()
        if existing and not resume:
            self._release_lock()
            raise FileExistsError(
                f"{self.folder} already holds a dataset; pass resume=True to continue it or choose an empty folder"
            )
        manifest = self._read_manifest()
        old_config = manifest.get("config")
        if existing and check_config and old_config and self.config and old_config != self.config:
            keys = sorted(k for k in {*old_config, *self.config} if old_config.get(k) != self.config.get(k))
            self._release_lock()
            raise ValueError(
                f"{self.folder} was written with another config (differences in {keys}); use a new folder, "
                "the same config, or check_config=False"
            )
        self.created = manifest.get("created", _now())
        self._seeds: set[int] = {int(s) for s in manifest.get("seeds", [])} | {int(s) for s in seeds}
        self._env_ids: set[str] = set(manifest.get("env_ids", [])) | set(env_ids)
        self._done: dict[str, dict[str, Any]] = {}
        self._steps_end = self._pairs_end = 0
        self._step_ids: set[str] = set()
        self._pair_ids: set[str] = set()
        self._step_counts: Counter[str] = Counter()
        self._pair_counts: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._failures = _read_failures(self.folder)
        self._images: set[str] = {p.name for p in (self.folder / IMAGES_DIR).glob("*.png")}
        self._code = code_version()
        self._recover()
        self.write_manifest()

    # -- locking -------------------------------------------------------------------------------------------------
    def _acquire_lock(self) -> Any:
        if fcntl is None:  # pragma: no cover
            return None
        fh = open(self.folder / LOCK_FILE, "a")  # noqa: SIM115 - held for the writer's lifetime
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise RuntimeError(
                f"another DatasetWriter holds {self.folder}; use one writer per folder (send results to it)"
            ) from None
        return fh

    def _release_lock(self) -> None:
        if self._lock_fh is not None:
            fcntl.flock(self._lock_fh.fileno(), fcntl.LOCK_UN)
            self._lock_fh.close()
            self._lock_fh = None

    # -- recovery ------------------------------------------------------------------------------------------------
    def _read_manifest(self) -> dict[str, Any]:
        path = self.folder / MANIFEST_FILE
        if not path.exists():
            return {}
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"{path} is not valid JSON ({exc}); it is rewritten atomically, so it was edited"
            ) from None

    def _recover(self) -> None:
        """Rebuild state from done.jsonl and cut uncommitted tails off steps.jsonl and pairs.jsonl."""
        for row in _read_done(self.folder, repair=True):
            self._register_done(row)
        for name, end in ((STEPS_FILE, self._steps_end), (PAIRS_FILE, self._pairs_end)):
            path = self.folder / name
            size = _size(path)
            if size < end:
                raise ValueError(
                    f"{path} has {size} bytes but {DONE_FILE} says {end} are committed: corrupt folder"
                )
            if size > end:
                logger.warning(
                    "%s: dropping %d bytes written after the last committed task (an interrupted task)",
                    path,
                    size - end,
                )
                _truncate(path, end)
        for _, row in _read_jsonl(self.folder / STEPS_FILE, self._steps_end, drop_partial_tail=False):
            self._step_ids.add(str(row.get("record_id")))
        for _, row in _read_jsonl(self.folder / PAIRS_FILE, self._pairs_end, drop_partial_tail=False):
            self._pair_ids.add(str(row.get("pair_id")))
        # cut a truncated failure line so later appends start on a fresh line
        _cut_partial_line(self.folder / FAILURES_FILE, fsync=False)

    def _register_done(self, row: dict[str, Any]) -> None:
        self._done[str(row["task_id"])] = row
        self._steps_end = int(row["steps_end"])
        self._pairs_end = int(row["pairs_end"])
        env = str(row.get("env_id") or "")
        if env:
            self._env_ids.add(env)
            self._step_counts[env] += int(row.get("n_steps", 0))
        self._seeds.update(int(seed) for seed in row.get("seeds", []))
        for ptype, n in row.get("pairs_per_type", {}).items():
            self._pair_counts[ptype][env] += int(n)

    # -- public API ----------------------------------------------------------------------------------------------
    def is_done(self, task_id: str) -> bool:
        """Whether ``task_id`` was committed (by this writer or an earlier run on the folder)."""
        return str(task_id) in self._done

    @property
    def done_tasks(self) -> set[str]:
        """Ids of committed tasks."""
        return set(self._done)

    def save_screenshot(self, image: Any) -> str:
        """Save a screenshot (HxWx3 uint8 array or PIL image) as PNG; return its path relative to the folder.

        Identical pixels give the same file (deduplicated by content hash). The PNG is complete on disk
        before the path is returned (temporary file + ``os.replace``).
        """
        from PIL import Image

        array = as_rgb_array(image)
        name = f"{image_hash(array)}.png"
        rel = f"{IMAGES_DIR}/{name}"
        with self._lock:
            if name in self._images:
                return rel
            png = io.BytesIO()
            Image.fromarray(array).save(png, format="PNG")
            atomic_write_text(self.folder / rel, png.getvalue(), fsync=self.fsync)
            self._images.add(name)
        return rel

    def commit_task(
        self,
        task_id: str,
        steps: Sequence[StepRecord],
        pairs: Sequence[PairRecord] = (),
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Append one task's records and mark it done, so that a kill never leaves half a task counted.

        Args:
            task_id: the task; must not be committed already. Every record must carry this task id.
            steps: its step records (may be empty, e.g. a task pruned at calibration).
            pairs: its preference pairs.
            extra: JSON data kept with the task (e.g. ``{"status": "pruned", "L0": None, "env_id": ...,
                "seed": ...}``); ``env_id``/``seed`` here count in the manifest when there are no steps.

        Raises:
            ValueError: the task is already done, a record belongs to another task, or an id repeats.
        """
        task_id = str(task_id)
        extra = _jsonable(extra) if extra else {}
        steps, pairs = list(steps), list(pairs)
        for what, records, cls in (("steps", steps, StepRecord), ("pairs", pairs, PairRecord)):
            for rec in records:
                if not isinstance(rec, cls):
                    raise TypeError(f"commit_task {what} must be {cls.__name__}, got {type(rec).__name__}")
        for rec in (*steps, *pairs):
            if rec.task_id != task_id:
                raise ValueError(f"record of task {rec.task_id!r} passed to commit_task({task_id!r})")
        step_ids = [r.record_id for r in steps]
        pair_ids = [p.pair_id for p in pairs]
        with self._lock:
            if task_id in self._done:
                raise ValueError(
                    f"task {task_id!r} is already committed in {self.folder}; check is_done() first"
                )
            for ids, seen, what in (
                (step_ids, self._step_ids, "step record_id"),
                (pair_ids, self._pair_ids, "pair_id"),
            ):
                dup = sorted({i for i in ids if ids.count(i) > 1} | (set(ids) & seen))
                if dup:
                    raise ValueError(f"duplicate {what}(s) {dup[:5]} in task {task_id!r}")
            for rec in steps:
                if rec.screenshot and not (self.folder / rec.screenshot).exists():
                    raise ValueError(
                        f"step record {rec.record_id!r} references screenshot {rec.screenshot!r}, which is not in "
                        f"{self.folder}; save it with save_screenshot() first"
                    )
            env_ids = sorted({r.env_id for r in steps} | {p.env_id for p in pairs})
            env_id = env_ids[0] if env_ids else extra.get("env_id")
            if len(env_ids) > 1:
                raise ValueError(f"task {task_id!r} mixes env ids {env_ids}; one task belongs to one env")
            seeds = sorted({r.seed for r in steps} | ({int(extra["seed"])} if "seed" in extra else set()))
            sizes = {
                STEPS_FILE: self._steps_end,
                PAIRS_FILE: self._pairs_end,
                DONE_FILE: _size(self.folder / DONE_FILE),
            }
            try:
                steps_end = self._append(STEPS_FILE, [r.to_dict() for r in steps], self._steps_end)
                pairs_end = self._append(PAIRS_FILE, [p.to_dict() for p in pairs], self._pairs_end)
                row = {
                    "task_id": task_id,
                    "env_id": env_id,
                    "seeds": seeds,
                    "n_steps": len(steps),
                    "n_pairs": len(pairs),
                    "pairs_per_type": dict(Counter(p.type for p in pairs)),
                    "steps_end": steps_end,
                    "pairs_end": pairs_end,
                    "time": _now(),
                    "extra": extra,
                }
                self._append(DONE_FILE, [row], None)
            except BaseException:  # e.g. a full disk: cut the partial task so this writer can go on
                self._rollback(sizes)
                raise
            self._register_done(row)
            self._step_ids.update(step_ids)
            self._pair_ids.update(pair_ids)
            self.write_manifest()

    def record_failure(self, task_id: str, error: BaseException | str, attempt: int = 0) -> None:
        """Record a failed attempt at a task (kept in ``failures.jsonl`` and the manifest). Does not mark it done."""
        text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
        row = {"task_id": str(task_id), "error": text, "attempt": int(attempt), "time": _now()}
        with self._lock:
            size = _size(self.folder / FAILURES_FILE)
            try:
                self._append(FAILURES_FILE, [row], None)
            except BaseException:  # e.g. a full disk: cut the partial row, like a failed commit
                self._rollback({FAILURES_FILE: size})
                raise
            self._failures.append(row)
            self.write_manifest()

    @property
    def failures(self) -> list[dict[str, Any]]:
        return list(self._failures)

    def counts(self) -> dict[str, Any]:
        """Counts of committed data: steps, pairs, tasks, per pair type, per env."""
        per_type = {t: sum(c.values()) for t, c in sorted(self._pair_counts.items())}
        per_type_env = {t: dict(sorted(c.items())) for t, c in sorted(self._pair_counts.items())}
        return {
            "tasks_done": len(self._done),
            "steps": sum(self._step_counts.values()),
            "pairs": sum(per_type.values()),
            "steps_per_env": dict(sorted(self._step_counts.items())),
            "pairs_per_type": per_type,
            "pairs_per_type_env": per_type_env,
            "failures": len(self._failures),
        }

    def write_manifest(self) -> dict[str, Any]:
        """Rewrite ``manifest.json`` atomically and return it."""
        with self._lock:
            manifest = {
                "format": FORMAT_NAME,
                "format_version": FORMAT_VERSION,
                "created": self.created,
                "updated": _now(),
                "code_version": self._code,
                "config": self.config,
                "seeds": sorted(self._seeds),
                "env_ids": sorted(self._env_ids),
                "counts": self.counts(),
                "failures": self._failures,
            }
            text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
            atomic_write_text(self.folder / MANIFEST_FILE, text, self.fsync)
            return manifest

    def close(self) -> None:
        """Write the manifest and release the folder."""
        if self._lock_fh is not None:
            self.write_manifest()
            self._release_lock()

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------------------------------------
    def _rollback(self, sizes: Mapping[str, int]) -> None:
        """Truncate files back to ``sizes`` after a failed commit (a later reopen would do the same)."""
        for name, size in sizes.items():
            path = self.folder / name
            try:
                if path.exists() and path.stat().st_size > size:
                    _truncate(path, size, fsync=False)
            except OSError as exc:
                logger.error(
                    "could not cut the failed commit off %s (%s); reopen the folder to repair it", path, exc
                )
        logger.warning(
            "a write failed; its partial rows were cut off (a failed commit leaves its task not done)"
        )

    def _append(self, name: str, rows: list[dict[str, Any]], expected_end: int | None) -> int:
        path = self.folder / name
        payload = "".join(_dumps(r) + "\n" for r in rows).encode("utf-8")
        created = not path.exists()
        with open(path, "ab") as fh:
            if expected_end is not None and fh.tell() != expected_end:
                raise RuntimeError(
                    f"{path} changed behind the writer's back ({fh.tell()} != {expected_end} bytes)"
                )
            if payload:
                fh.write(payload)
                fh.flush()
                if self.fsync:
                    os.fsync(fh.fileno())
            end = fh.tell()
        if created and self.fsync:
            fsync_dir(self.folder)
        return end


class DatasetReader:
    """Read the committed contents of a dataset folder (rows after the last commit are ignored).

    Every row is validated: a bad row raises a ValueError naming the file and the line.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"dataset folder {self.folder} does not exist")
        if not (self.folder / MANIFEST_FILE).exists() and not (self.folder / DONE_FILE).exists():
            raise FileNotFoundError(
                f"{self.folder} is not a dataset folder (no {MANIFEST_FILE} or {DONE_FILE})"
            )
        self._done = _read_done(self.folder, repair=False)

    @property
    def manifest(self) -> dict[str, Any]:
        path = self.folder / MANIFEST_FILE
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}

    @property
    def done_tasks(self) -> list[str]:
        return [str(r["task_id"]) for r in self._done]

    def task_extra(self) -> dict[str, dict[str, Any]]:
        """The ``extra`` mapping of each committed task."""
        return {str(r["task_id"]): r.get("extra", {}) for r in self._done}

    def rows(self, which: str) -> Iterator[dict[str, Any]]:
        """Raw committed rows of ``"steps"`` or ``"pairs"`` (validated)."""
        name, key, cls = _WHICH.get(which, (None, None, None))
        if name is None:
            raise ValueError(f"which must be 'steps' or 'pairs', got {which!r}")
        path = self.folder / name
        end = int(self._done[-1][key]) if self._done else 0
        for number, row in _read_jsonl(path, end, drop_partial_tail=False):
            try:
                cls.from_dict(dict(row))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{path}: line {number}: {exc}") from None
            yield row

    def steps(self) -> Iterator[StepRecord]:
        """Committed step records, in write order."""
        return map(StepRecord.from_dict, self.rows("steps"))

    def pairs(self) -> Iterator[PairRecord]:
        """Committed preference pairs, in write order."""
        return map(PairRecord.from_dict, self.rows("pairs"))

    def failures(self) -> list[dict[str, Any]]:
        return _read_failures(self.folder)

    def screenshot_path(self, rel_path: str) -> Path:
        """Absolute path of a screenshot referenced by a record (refuses paths that leave the folder)."""
        return screenshot_path(self.folder, rel_path)

    def load_screenshot(self, rel_path: str) -> np.ndarray:
        """Load a referenced screenshot as an HxWx3 uint8 array (see :func:`read_screenshot`)."""
        return read_screenshot(self.folder, rel_path)


def screenshot_path(root: str | os.PathLike[str], rel_path: str) -> Path:
    """The file of a screenshot that a record under ``root`` references: a relative path that stays inside
    ``root`` once resolved (symlinks followed). Absolute paths and ``..`` that leave it are refused."""
    if not isinstance(rel_path, str) or not rel_path:
        raise ValueError(f"screenshot path must be a non-empty string, got {rel_path!r}")
    if Path(rel_path).is_absolute():
        raise ValueError(
            f"screenshot path {rel_path!r} is absolute: it points outside the dataset folder (records hold paths "
            "relative to their folder)"
        )
    base = Path(root).resolve()
    path = (base / rel_path).resolve()
    if not path.is_relative_to(base) or path == base:
        raise ValueError(f"screenshot path {rel_path!r} points outside the dataset folder {base}")
    return path


def read_screenshot(root: str | os.PathLike[str], rel_path: str) -> np.ndarray:
    """Load a screenshot a record references as HxWx3 uint8: inside ``root`` (:func:`screenshot_path`), a PNG
    file, at most ``MAX_IMAGE_SIDE`` pixels a side (checked from the header before decoding).

    Raises:
        ValueError: a path outside the folder, not a PNG, or too large. FileNotFoundError: no such file.
    """
    from PIL import Image, UnidentifiedImageError

    path = screenshot_path(root, rel_path)
    if not path.is_file():
        raise FileNotFoundError(f"screenshot {path} referenced by the data does not exist")
    try:
        with Image.open(path, formats=["PNG"]) as img:
            if max(img.size) > MAX_IMAGE_SIDE or min(img.size) < 1:
                raise ValueError(
                    f"screenshot {rel_path!r} is {img.size[0]}x{img.size[1]}; each side must be 1..{MAX_IMAGE_SIDE}"
                )
            return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))
    except (UnidentifiedImageError, Image.DecompressionBombError):
        raise ValueError(
            f"screenshot {rel_path!r} is not a readable PNG image (screenshots are PNG files)"
        ) from None


_WHICH = {"steps": (STEPS_FILE, "steps_end", StepRecord), "pairs": (PAIRS_FILE, "pairs_end", PairRecord)}


def load_dataset_folder(folder: str | os.PathLike[str]) -> DatasetContents:
    """Load all committed step records and pairs of a folder (validated) with its manifest."""
    reader = DatasetReader(folder)
    return DatasetContents(reader.folder, list(reader.steps()), list(reader.pairs()), reader.manifest)


def to_hf_dataset(
    folder: str | os.PathLike[str], which: str = "pairs", *, absolute_paths: bool = False
) -> Any:
    """The committed steps or pairs of a folder as a ``datasets.Dataset`` (works with HF_DATASETS_OFFLINE=1).

    Rows are the records' fields. ``meta`` (free-form) is stored as a JSON string so that rows with different
    meta keys share one schema. With ``absolute_paths`` the ``screenshot`` column holds absolute paths (ready
    for ``datasets.Image()``).
    """
    from similar_rl._optional import require

    datasets = require("datasets", "converting a dataset folder to a Hugging Face dataset")
    reader = DatasetReader(folder)
    rows = []
    for row in reader.rows(which):
        row = dict(row)
        if "meta" in row:
            row["meta"] = json.dumps(row["meta"], ensure_ascii=False, sort_keys=True)
        if absolute_paths and row.get("screenshot"):
            row["screenshot"] = str(reader.screenshot_path(row["screenshot"]))
        rows.append(row)
    if not rows:
        return datasets.Dataset.from_dict({f.name: [] for f in dataclasses.fields(_WHICH[which][2])})
    return datasets.Dataset.from_list(rows)
