"""Train/eval splits by task family (env id) or by task id, with no task in two splits.

A :class:`Split` lists which families (or task ids) go to which split; :meth:`Split.apply` sorts any records
that carry ``task_id`` and ``env_id`` (step records, pairs, trajectories) and asserts that no task lands in two
splits. Splits are saved as small JSON files listing their families.

Example:
    >>> from types import SimpleNamespace as R
    >>> recs = [R(task_id=f"{f}-{s}", env_id=f) for f in ("toy/a", "toy/b", "toy/c") for s in range(2)]
    >>> split = split_by_family(recs, eval_families=["toy/b"])
    >>> {name: sorted({r.env_id for r in rows}) for name, rows in split.apply(recs).items()}
    {'train': ['toy/a', 'toy/c'], 'eval': ['toy/b']}
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar


class HasTask(Protocol):
    task_id: str
    env_id: str


R = TypeVar("R", bound=HasTask)


@dataclass
class Split:
    """Which families or tasks belong to each split.

    Attributes:
        by: ``"family"`` (keys are env ids) or ``"task"`` (keys are task ids).
        splits: split name -> the keys in it (e.g. ``{"train": [...], "eval": [...]}``).
        seed: the seed of a random split, if any.
    """

    by: str
    splits: dict[str, list[str]]
    seed: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.by not in ("family", "task"):
            raise ValueError(f"Split.by must be 'family' or 'task', got {self.by!r}")
        self._where = _owners(self.splits, self.by)

    def key(self, record: HasTask) -> str:
        return record.env_id if self.by == "family" else record.task_id

    def which(self, record: HasTask) -> str | None:
        """The split a record belongs to, or None if its family/task is in no split."""
        return self._where.get(self.key(record))

    def apply(self, records: Iterable[R], *, strict: bool = True) -> dict[str, list[R]]:
        """Sort records into the splits. A record whose family/task is in no split raises a ValueError if
        ``strict`` (else it is skipped); so does a task found in two splits."""
        out: dict[str, list[R]] = {name: [] for name in self.splits}
        for rec in records:
            name = self.which(rec)
            if name is None:
                if strict:
                    raise ValueError(
                        f"record of task {rec.task_id!r} ({self.by} {self.key(rec)!r}) is in no split; "
                        f"add it to one of {list(self.splits)} or pass strict=False"
                    )
                continue
            out[name].append(rec)
        check_disjoint(out)
        return out

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the split as JSON (``{"by": ..., "seed": ..., "splits": {name: [keys]}}``)."""
        data = {"by": self.by, "seed": self.seed, "splits": self.splits, "meta": self.meta}
        Path(path).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Split:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict) or "by" not in data or "splits" not in data:
            raise ValueError(f"{path} is not a split file (needs 'by' and 'splits')")
        return cls(
            data["by"],
            {k: list(v) for k, v in data["splits"].items()},
            data.get("seed"),
            data.get("meta", {}),
        )


def check_disjoint(splits: Mapping[str, Iterable[HasTask]]) -> None:
    """Raise ValueError if a task id occurs in two splits."""
    _owners({name: [rec.task_id for rec in records] for name, records in splits.items()}, "task")


def _owners(splits: Mapping[str, Iterable[str]], what: str) -> dict[str, str]:
    """key -> the split holding it; a ValueError if a key is in two splits."""
    owner: dict[str, str] = {}
    for name, keys in splits.items():
        for key in keys:
            other = owner.setdefault(key, name)
            if other != name:
                raise ValueError(f"{what} {key!r} is in both split {other!r} and split {name!r}")
    return owner


def _families(records: Iterable[HasTask]) -> list[str]:
    return sorted({r.env_id for r in records})


def split_by_family(
    records: Iterable[HasTask],
    eval_families: Sequence[str],
    *,
    train_name: str = "train",
    eval_name: str = "eval",
) -> Split:
    """Put ``eval_families`` in the eval split and every other family of ``records`` in train.

    Raises:
        ValueError: an eval family has no records (a typo is caught here), or nothing is left for training.
    """
    families = _families(records)
    unknown = sorted(set(eval_families) - set(families))
    if unknown:
        raise ValueError(f"eval families {unknown} have no records; families present: {families}")
    train = [f for f in families if f not in set(eval_families)]
    if not train:
        raise ValueError("every family is in the eval split; leave at least one for training")
    return Split("family", {train_name: train, eval_name: sorted(set(eval_families))})


def _random_split(keys: list[str], by: str, eval_fraction: float, val_fraction: float, seed: int) -> Split:
    for name, frac in (("eval_fraction", eval_fraction), ("val_fraction", val_fraction)):
        if not 0.0 <= frac < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {frac}")
    if eval_fraction + val_fraction >= 1.0:
        raise ValueError(
            "eval_fraction + val_fraction must be below 1 so that something is left for training"
        )
    shuffled = keys[:]
    random.Random(seed).shuffle(shuffled)
    n_eval = max(1, round(eval_fraction * len(keys))) if eval_fraction > 0 else 0
    n_val = max(1, round(val_fraction * len(keys))) if val_fraction > 0 else 0
    if n_eval + n_val >= len(keys):
        raise ValueError(
            f"{len(keys)} {by} key(s) are too few for an eval/val split with a non-empty train split"
        )
    splits = {"train": sorted(shuffled[n_eval + n_val :]), "eval": sorted(shuffled[:n_eval])}
    if n_val:
        splits["val"] = sorted(shuffled[n_eval : n_eval + n_val])
    return Split(by, splits, seed)


def random_family_split(
    records: Iterable[HasTask], eval_fraction: float = 0.2, val_fraction: float = 0.0, seed: int = 0
) -> Split:
    """A seeded random split of the families (env ids) of ``records``.

    Example:
        >>> from types import SimpleNamespace as R
        >>> recs = [R(task_id=str(i), env_id=f"toy/{i}") for i in range(10)]
        >>> split = random_family_split(recs, eval_fraction=0.2, seed=1)
        >>> len(split.splits["train"]), len(split.splits["eval"])
        (8, 2)
    """
    return _random_split(_families(records), "family", eval_fraction, val_fraction, seed)


def random_task_split(
    records: Iterable[HasTask], eval_fraction: float = 0.2, val_fraction: float = 0.0, seed: int = 0
) -> Split:
    """A seeded random split of the task ids of ``records`` (families may then appear in several splits)."""
    return _random_split(sorted({r.task_id for r in records}), "task", eval_fraction, val_fraction, seed)
