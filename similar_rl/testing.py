"""Builders of tiny offline models for tests, docs and benchmarks (nothing is downloaded).

- :func:`tiny_default_config`: a small-headed config of the default (MiniLM + EfficientNet-Lite0) backbone.
- :func:`build_tiny_qwen2`, :func:`build_tiny_qwen2_vl`, :func:`build_tiny_llava`: random tiny Hugging Face
  models with an offline byte-level BPE tokenizer (and image processor), saved to a folder that the ``hf``
  backbone loads.

Example:
    >>> tiny_default_config().gate_hidden
    32
"""

from __future__ import annotations

from typing import Any

from similar_rl.model.config import SimilarConfig


def tiny_default_config(**overrides: Any) -> SimilarConfig:
    """A default-backbone config with a small gate (hidden 32, 2 layers) and small caches; fields can be overridden."""
    fields: dict[str, Any] = {
        "backbone": "default",
        "gate_hidden": 32,
        "gate_layers": 2,
        "backbone_options": {"cache_size": 256, "text_cache_size": 1024},
    }
    fields.update(overrides)
    return SimilarConfig(**fields)
