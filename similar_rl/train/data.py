"""Training and evaluation data as model inputs: unique :class:`StepInput` rows and pairs of index groups.

A :class:`PairTable` holds every distinct step (by content hash ``StepInput.key``) once, and each pair as two
groups of row indices: one row for a step pair, the trajectory's steps for a ``traj`` pair (a trajectory's
score is the mean of its steps' scores). :class:`StepTable` holds labelled steps for the regression stage.

Example:
    >>> from similar_rl.data.records import PairRecord
    >>> pair = PairRecord(pair_id="p", type="total", task_id="t", env_id="toy/a", instruction="Click OK",
    ...                   chosen="click(ref=1)", rejected="noop()")
    >>> table = build_pair_table([pair], [], InputFactory(None))
    >>> len(table.inputs), table.chosen, table.rejected
    (2, [[0]], [[1]])
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from similar_rl.data.dataset import read_screenshot
from similar_rl.data.records import PairRecord, StepRecord
from similar_rl.dimensions import DIMENSIONS
from similar_rl.types import StepInput

logger = logging.getLogger(__name__)


class InputFactory:
    """Turns records into :class:`StepInput`, loading each referenced screenshot once.

    ``root``: the folder screenshot paths are relative to (None: no screenshots); ``use_images=False``
    drops them.
    """

    def __init__(self, root: str | os.PathLike[str] | None, use_images: bool = True) -> None:
        self.root = None if root is None else Path(root)
        self.use_images = use_images
        self._images: dict[str, np.ndarray] = {}

    def image(self, rel_path: str | None) -> np.ndarray | None:
        if not rel_path or not self.use_images:
            return None
        if rel_path not in self._images:
            if self.root is None:
                raise ValueError(f"screenshot {rel_path!r} is referenced but no data folder was given")
            self._images[rel_path] = read_screenshot(self.root, rel_path)
        return self._images[rel_path]

    def from_step(self, rec: StepRecord) -> StepInput:
        return self.from_pair(rec, rec.action)

    def from_pair(self, pair: PairRecord | StepRecord, action: str) -> StepInput:
        return StepInput(
            pair.instruction, action, pair.history, self.image(pair.screenshot), pair.observation_text or None
        )


@dataclass
class PairTable:
    """Distinct steps and pairs over them (see the module docstring)."""

    inputs: list[StepInput] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    chosen: list[list[int]] = field(default_factory=list)
    rejected: list[list[int]] = field(default_factory=list)
    pair_ids: list[str] = field(default_factory=list)
    task_ids: list[str] = field(default_factory=list)
    _index: dict[str, int] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.types)

    def add_input(self, step: StepInput) -> int:
        key = step.key
        if key not in self._index:
            self._index[key] = len(self.inputs)
            self.inputs.append(step)
        return self._index[key]

    def subset(self, indices: Iterable[int]) -> PairTable:
        """The pairs at ``indices`` (inputs are shared, not copied)."""
        idx = list(indices)
        columns = (self.types, self.chosen, self.rejected, self.pair_ids, self.task_ids)
        return PairTable(self.inputs, *([column[i] for i in idx] for column in columns), self._index)

    def of_types(self, types: Sequence[str]) -> PairTable:
        wanted = set(types)
        return self.subset(i for i, t in enumerate(self.types) if t in wanted)

    def side_csr(self) -> tuple[np.ndarray, np.ndarray]:
        """Sides as CSR: ``ptr`` (2P+1,) and ``flat`` row indices; side ``2p`` is chosen, ``2p+1`` rejected."""
        sides = [s for c, r in zip(self.chosen, self.rejected, strict=True) for s in (c, r)]
        lengths = np.array([len(s) for s in sides], dtype=np.int64)
        ptr = np.zeros(len(sides) + 1, dtype=np.int64)
        np.cumsum(lengths, out=ptr[1:])
        flat = np.fromiter((i for s in sides for i in s), dtype=np.int64, count=int(ptr[-1]))
        return ptr, flat


def build_pair_table(
    pairs: Sequence[PairRecord],
    steps: Sequence[StepRecord],
    factory: InputFactory,
    pair_types: Sequence[str] | None = None,
) -> PairTable:
    """Build a :class:`PairTable`; ``traj`` pairs look their steps up in ``steps`` by record id.

    Raises:
        ValueError: a traj pair names a step record that is not in ``steps``, or lists no steps.
    """
    by_id = {s.record_id: s for s in steps}
    table = PairTable()
    wanted = None if pair_types is None else set(pair_types)
    for pair in pairs:
        if wanted is not None and pair.type not in wanted:
            continue
        if pair.type == "traj":
            sides = []
            for name, ids in (("chosen_steps", pair.chosen_steps), ("rejected_steps", pair.rejected_steps)):
                if not ids:
                    raise ValueError(
                        f"traj pair {pair.pair_id!r} has no {name}; list the trajectory's record ids"
                    )
                missing = [i for i in ids if i not in by_id]
                if missing:
                    raise ValueError(
                        f"traj pair {pair.pair_id!r}: {name} {missing[:3]} are not in the step records"
                    )
                sides.append([table.add_input(factory.from_step(by_id[i])) for i in ids])
            chosen, rejected = sides
        else:
            chosen = [table.add_input(factory.from_pair(pair, pair.chosen))]
            rejected = [table.add_input(factory.from_pair(pair, pair.rejected))]
        table.types.append(pair.type)
        table.chosen.append(chosen)
        table.rejected.append(rejected)
        table.pair_ids.append(pair.pair_id)
        table.task_ids.append(pair.task_id)
    return table


@dataclass
class StepTable:
    """Labelled steps: inputs, labels (N, 5) in DIMENSIONS order with NaN for missing, and task ids."""

    inputs: list[StepInput]
    labels: np.ndarray
    task_ids: list[str]


def build_step_table(steps: Sequence[StepRecord], factory: InputFactory) -> StepTable:
    """Distinct labelled steps (a step repeated with the same content keeps its first labels)."""
    kept: dict[str, tuple[StepInput, StepRecord]] = {}
    for rec in steps:
        step = factory.from_step(rec)
        kept.setdefault(step.key, (step, rec))
    recs = [rec for _, rec in kept.values()]
    rows = [
        [np.nan if rec.labels.get(k) is None else float(rec.labels[k]) for k in DIMENSIONS] for rec in recs
    ]
    labels = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(DIMENSIONS))
    return StepTable([step for step, _ in kept.values()], labels, [rec.task_id for rec in recs])


def load_records(
    source: str | os.PathLike[str], encoding: str | None = None
) -> tuple[list[StepRecord], list[PairRecord], Path]:
    """Step records, pairs and the screenshot root of a dataset folder or an SRMEval-layout CSV file
    (``encoding``: the CSV's, see :func:`similar_rl.data.srm_csv.read_srm_csv`)."""
    path = Path(source)
    if path.is_file() and path.suffix.lower() in (".csv", ".tsv"):
        from similar_rl.data import srm_csv

        return [], srm_csv.read_srm_csv(path, encoding=encoding), path.parent
    if not path.exists():
        raise FileNotFoundError(f"data {path} does not exist (give a dataset folder or an SRMEval CSV file)")
    from similar_rl.data.dataset import load_dataset_folder

    data = load_dataset_folder(path)
    logger.info("loaded %d steps and %d pairs from %s", len(data.steps), len(data.pairs), path)
    return data.steps, data.pairs, data.folder
