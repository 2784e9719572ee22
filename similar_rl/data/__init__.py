"""SRM-style data: step records, preference pairs, the dataset folder, splits and the SRMEval CSV layout.

Example:
    >>> from similar_rl.data import DatasetWriter, StepRecord, build_pairs
    >>> callable(build_pairs)
    True
"""

from __future__ import annotations

from similar_rl.data.dataset import DatasetReader, DatasetWriter, load_dataset_folder, to_hf_dataset
from similar_rl.data.pairs import Trajectory, build_pairs, build_traj_pairs, pair_id, trajectory_score
from similar_rl.data.records import PairRecord, StepRecord

__all__ = [
    "DatasetReader",
    "DatasetWriter",
    "PairRecord",
    "StepRecord",
    "Trajectory",
    "build_pairs",
    "build_traj_pairs",
    "load_dataset_folder",
    "pair_id",
    "to_hf_dataset",
    "trajectory_score",
]
