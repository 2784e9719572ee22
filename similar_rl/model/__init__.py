"""The Similar reward model: backbones, regression experts, gate, checkpoints.

Example:
    >>> from similar_rl.model import SimilarConfig
    >>> SimilarConfig().backbone
    'default'
"""

from __future__ import annotations

from pathlib import Path

from similar_rl.model.checkpoint import CheckpointError
from similar_rl.model.config import SimilarConfig
from similar_rl.model.reward_model import SimilarRewardModel

#: Where the trained default checkpoint ships inside the package.
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "default_model"

__all__ = [
    "DEFAULT_MODEL_DIR",
    "CheckpointError",
    "SimilarConfig",
    "SimilarRewardModel",
    "load_default_model",
    "load_model",
]


def load_default_model(device: str | None = None) -> SimilarRewardModel:
    """Load the trained default reward model shipped in ``similar_rl/default_model/``.

    Raises:
        FileNotFoundError: the checkpoint is not there (the message says how to train one).
    """
    if not all((DEFAULT_MODEL_DIR / name).is_file() for name in ("config.json", "model.safetensors")):
        raise FileNotFoundError(
            f"no trained default model in {DEFAULT_MODEL_DIR} (config.json + model.safetensors). Train one with "
            "`similar-rl collect ...` then `similar-rl train --data DATASET --out DIR` and load it with "
            "SimilarRewardModel.from_pretrained(DIR), or copy DIR's files into that folder."
        )
    return SimilarRewardModel.from_pretrained(DEFAULT_MODEL_DIR, device=device)


def load_model(spec: str, device: str | None = None) -> SimilarRewardModel:
    """``"default"`` -> the shipped model (:func:`load_default_model`); anything else -> a checkpoint folder.

    Raises:
        FileNotFoundError: ``spec`` is neither ``"default"`` nor a folder (the message says what to pass).
    """
    if spec == "default":
        return load_default_model(device=device)
    if not Path(spec).is_dir():
        raise FileNotFoundError(
            f"model {spec!r} is not a folder; pass 'default' (the shipped model) or a folder written by "
            "`similar-rl train` / SimilarRewardModel.save_pretrained"
        )
    return SimilarRewardModel.from_pretrained(spec, device=device)
