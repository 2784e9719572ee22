"""The Triple-M training config: every option of ``similar-rl train`` in one validated dataclass.

Load it from YAML with :meth:`TrainConfig.from_yaml`; unknown keys are rejected with the list of known ones.

Example:
    >>> cfg = TrainConfig(gate_steps=10)
    >>> cfg.gate_lr
    0.001
    >>> TrainConfig.from_dict({"gate_step": 10})
    Traceback (most recent call last):
    ...
    ValueError: unknown train config key(s) ['gate_step']; did you mean ['gate_steps']? (see TrainConfig.help())
    >>> TrainConfig(gate_batch_size=0)
    Traceback (most recent call last):
    ...
    ValueError: TrainConfig.gate_batch_size must be >= 1, got 0
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from similar_rl.dimensions import PAIR_TYPES
from similar_rl.fields import option
from similar_rl.train.stage1_ridge import FITS as RIDGE_FITS
from similar_rl.train.stage1_ridge import STANDARDIZE as RIDGE_STANDARDIZE

DEVICES = ("auto", "cpu", "cuda")
MIXED_PRECISION = ("no", "fp16", "bf16")
DEFAULT_ALPHAS = tuple(float(10.0**e) for e in range(-4, 5))


@dataclass
class TrainConfig:
    """Hyper-parameters of Triple-M training (docs/method.md section 5)."""

    model: dict[str, Any] = option(
        dict, "SimilarConfig fields of the model to build (backbone, ablation switches, gate sizes...)"
    )
    init_from: str | None = option(
        None, "start from this saved model folder instead of building from `model`"
    )
    seed: int = option(0, "seed of every random choice (splits, gate init, batches)")
    cache_dir: str | None = option(
        None, "feature cache folder (default: $SIMILAR_RL_CACHE or ~/.cache/similar_rl/features)"
    )
    use_cache: bool = option(True, "read and write the on-disk feature cache")
    feature_batch_size: int = option(32, "steps per model.encode call")
    max_pairs: int | None = option(None, "use at most this many training pairs (seeded subset; null: all)")
    exclude_envs: list[str] = option(
        list, "env ids whose steps and pairs are left out of training (e.g. for family-wise CV)"
    )
    exclude_tasks: list[str] = option(
        list, "task ids whose steps and pairs are left out of training (e.g. for task-wise CV)"
    )
    pair_types: list[str] = option(
        lambda: list(PAIR_TYPES), "pair types used by the gate (and LoRA) Bradley-Terry loss"
    )
    # Stage 1: ridge experts.
    ridge_alphas: list[float] = option(
        lambda: list(DEFAULT_ALPHAS),
        "ridge penalties tried; the best on the validation split is refit on all steps",
    )
    ridge_standardize: str = option(
        "none",
        "rescale z before the ridge fit: 'none' (plain ridge, as in the paper), 'blocks' (each "
        "feature block the backbone declares in z_blocks gets unit average column variance) or 'columns' "
        "(every column unit variance); the weights are mapped back to raw features",
    )
    ridge_fit: str = option(
        "plain",
        "'plain' (one ridge on all of z, as in the paper) or 'advantage' (state value + action "
        "advantage: the backbone's action columns fit on targets centred over sibling actions, its state "
        "columns on the rest; see similar_rl/train/stage1_ridge.py)",
    )
    ridge_action_blocks: list[str] | None = option(
        None,
        "with ridge_fit 'advantage': the named blocks of z (the backbone's z_block_names) that form "
        "the action part; null: the backbone's own choice (default backbone: the structural and similarity "
        "scalars)",
    )
    val_fraction: float = option(
        0.2, "fraction of tasks (grouped by task_id) held out to pick the ridge alpha"
    )
    # Stage 2: gate.
    gate_steps: int = option(2000, "optimizer steps of the Bradley-Terry gate training")
    gate_batch_size: int = option(1024, "pairs per gate step")
    gate_max_epochs: float | None = option(
        None, "cap the gate steps at this many passes over the pairs (null: exactly gate_steps)"
    )
    gate_lr: float = option(1e-3, "AdamW learning rate of the gate (cosine schedule)")
    gate_weight_decay: float = option(0.0, "AdamW weight decay of the gate")
    gate_warmup_steps: int = option(0, "linear warm-up steps before the cosine decay")
    # Stage 3: optional end-to-end LoRA.
    lora: bool = option(False, "run stage 3: LoRA fine-tuning of the backbone end to end")
    lora_r: int = option(8, "LoRA rank")
    lora_alpha: float = option(16.0, "LoRA scaling alpha")
    lora_dropout: float = option(0.05, "LoRA dropout")
    lora_target_modules: list[str] | None = option(
        None, "module names to adapt (null: the model engineer's default per backbone)"
    )
    lora_steps: int = option(200, "optimizer steps of stage 3")
    lora_batch_pairs: int = option(8, "pairs per stage-3 step (plus every labelled step of their states)")
    lora_lr: float = option(1e-4, "AdamW learning rate of stage 3")
    lora_rg_weight: float = option(1.0, "weight of the regression (L_RG) loss in stage 3")
    lora_bt_weight: float = option(1.0, "weight of the Bradley-Terry (L_BT) loss in stage 3")
    lora_train_heads: bool = option(True, "also update experts and gate in stage 3 (else only the adapters)")
    # Runtime.
    device: str = option("auto", "'auto' (GPU if accelerate finds one), 'cpu' or 'cuda'")
    mixed_precision: str = option("no", "accelerate mixed precision: no, fp16 or bf16")
    log_every: int = option(50, "log gate/LoRA metrics every this many steps")
    progress: bool = option(True, "show tqdm progress bars")
    wandb: bool = option(False, "also log metrics to Weights & Biases (offline by default)")
    wandb_project: str = option("similar-rl", "W&B project name")

    def __post_init__(self) -> None:
        if not isinstance(self.model, dict):
            raise ValueError(
                f"TrainConfig.model must be a mapping of SimilarConfig fields, got {self.model!r}"
            )
        if self.init_from is not None and not isinstance(self.init_from, str):
            raise ValueError(f"TrainConfig.init_from must be a folder path or null, got {self.init_from!r}")
        _as_int(self.seed, "seed")
        for name in ("feature_batch_size", "gate_steps", "gate_batch_size", "lora_r", "lora_batch_pairs"):
            _at_least(self, name, 1)
        for name, low in (("log_every", 1), ("gate_warmup_steps", 0), ("lora_steps", 0)):
            _at_least(self, name, low)
        if self.gate_max_epochs is not None and not (
            isinstance(self.gate_max_epochs, int | float) and self.gate_max_epochs > 0
        ):
            raise ValueError(f"TrainConfig.gate_max_epochs must be > 0 or null, got {self.gate_max_epochs!r}")
        if self.max_pairs is not None:
            _at_least(self, "max_pairs", 1)
        for name, what in (("exclude_envs", "env ids"), ("exclude_tasks", "task ids")):
            value = getattr(self, name)
            if isinstance(value, str):
                value = [value]
                setattr(self, name, value)
            if not isinstance(value, list | tuple) or not all(isinstance(e, str) for e in value):
                raise ValueError(f"TrainConfig.{name} must be a list of {what}, got {value!r}")
        if isinstance(self.pair_types, str):
            self.pair_types = [self.pair_types]
        bad = [t for t in self.pair_types if t not in PAIR_TYPES]
        if bad or not self.pair_types:
            raise ValueError(f"TrainConfig.pair_types has {bad or 'nothing'}; choose from {list(PAIR_TYPES)}")
        if _is_number(self.ridge_alphas):
            self.ridge_alphas = [self.ridge_alphas]
        if not isinstance(self.ridge_alphas, list | tuple) or not all(map(_is_number, self.ridge_alphas)):
            raise ValueError(
                f"TrainConfig.ridge_alphas must be a list of positive numbers such as [1, 10, 100], "
                f"got {self.ridge_alphas!r}"
            )
        self.ridge_alphas = [float(a) for a in self.ridge_alphas]
        if not self.ridge_alphas or any(not (math.isfinite(a) and a > 0) for a in self.ridge_alphas):
            raise ValueError(
                f"TrainConfig.ridge_alphas must be positive finite numbers, got {self.ridge_alphas}"
            )
        _one_of(self, "ridge_standardize", RIDGE_STANDARDIZE)
        _one_of(self, "ridge_fit", RIDGE_FITS)
        blocks = self.ridge_action_blocks
        if blocks is not None:
            if not (isinstance(blocks, list | tuple) and blocks and all(isinstance(b, str) for b in blocks)):
                raise ValueError(
                    f"TrainConfig.ridge_action_blocks must be null or a non-empty list of block names, "
                    f"got {blocks!r}"
                )
            if self.ridge_fit != "advantage":
                raise ValueError("TrainConfig.ridge_action_blocks applies only to ridge_fit: advantage")
        if not (_is_number(self.val_fraction) and 0.0 < self.val_fraction < 1.0):
            raise ValueError(f"TrainConfig.val_fraction must be in (0, 1), got {self.val_fraction!r}")
        for name in ("gate_lr", "lora_lr", "lora_alpha"):
            _positive(self, name)
        for name in ("gate_weight_decay", "lora_rg_weight", "lora_bt_weight"):
            _positive(self, name, allow_zero=True)
        if not (_is_number(self.lora_dropout) and 0.0 <= self.lora_dropout < 1.0):
            raise ValueError(f"TrainConfig.lora_dropout must be in [0, 1), got {self.lora_dropout!r}")
        self.lora_dropout, self.val_fraction = float(self.lora_dropout), float(self.val_fraction)
        if self.lora and self.lora_rg_weight == 0 and self.lora_bt_weight == 0:
            raise ValueError(
                "TrainConfig: lora_rg_weight and lora_bt_weight are both 0; set at least one above 0"
            )
        if self.lora_target_modules is not None:
            if isinstance(self.lora_target_modules, str):
                self.lora_target_modules = [self.lora_target_modules]
            self.lora_target_modules = [str(m) for m in self.lora_target_modules]
        _one_of(self, "device", DEVICES)
        _one_of(self, "mixed_precision", MIXED_PRECISION)

    # ---- I/O -------------------------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any], **overrides: Any) -> TrainConfig:
        """Build from a mapping (e.g. parsed YAML) plus keyword overrides; unknown keys raise ValueError."""
        if not isinstance(data, dict):
            raise ValueError(
                f"a train config must be a mapping of option -> value, got {type(data).__name__}"
            )
        merged = {**data, **{k: v for k, v in overrides.items() if v is not None}}
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(merged) - set(known))
        if unknown:
            hints = sorted({m for k in unknown for m in difflib.get_close_matches(k, known, n=1)})
            hint = f"did you mean {hints}? " if hints else f"known keys: {known} "
            raise ValueError(f"unknown train config key(s) {unknown}; {hint}(see TrainConfig.help())")
        return cls(**merged)

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> TrainConfig:
        """Load a YAML file (a mapping of options; an empty file gives the defaults) plus overrides."""
        import yaml

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"train config {path} does not exist (see configs/train_default.yaml)")
        data = yaml.safe_load(path.read_text()) or {}
        try:
            return cls.from_dict(data, **overrides)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save_yaml(self, path: str | Path) -> None:
        import yaml

        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _as_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"TrainConfig.{name} must be an integer, got {value!r}")
    return value


def _at_least(cfg: TrainConfig, name: str, low: int) -> None:
    value = _as_int(getattr(cfg, name), name)
    if value < low:
        raise ValueError(f"TrainConfig.{name} must be >= {low}, got {value}")


def _one_of(cfg: TrainConfig, name: str, choices: tuple[str, ...]) -> None:
    value = getattr(cfg, name)
    if value not in choices:
        raise ValueError(f"TrainConfig.{name} is {value!r}; choose one of {list(choices)}")


def _positive(cfg: TrainConfig, name: str, allow_zero: bool = False) -> None:
    value = getattr(cfg, name)
    if not (_is_number(value) and math.isfinite(value) and (value >= 0 if allow_zero else value > 0)):
        raise ValueError(
            f"TrainConfig.{name} must be a finite number {'>= 0' if allow_zero else '> 0'}, got {value!r}"
        )
    setattr(cfg, name, float(value))
