"""Triple-M training of the Similar reward model (see docs/training.md).

Modules: :mod:`.config` (TrainConfig), :mod:`.data` (records -> StepInput tables), :mod:`.features` (cached
feature extraction), :mod:`.stage1_ridge`, :mod:`.stage2_gate`, :mod:`.stage3_lora`, :mod:`.trainer` (``train``),
and a toy labelled dataset for smoke runs in :mod:`similar_rl.collect.synthetic`. Importing this package does not
import torch.
"""

from __future__ import annotations

from similar_rl.train.config import TrainConfig

__all__ = ["TrainConfig"]
