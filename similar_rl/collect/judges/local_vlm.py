"""A judge backed by a local Hugging Face (vision-)language model, loaded offline from a folder.

Same prompt and strict parser as the endpoint judge (:mod:`similar_rl.collect.judges.prompt`). A model whose
config has a ``vision_config`` is loaded with ``AutoModelForImageTextToText`` and its processor gets the
screenshot; any other model is loaded with ``AutoModelForCausalLM`` and sees text only. Retries sample, so
that they can give a different answer; after ``attempts`` malformed answers the failure is recorded.

Example (needs a model folder)::

    judge = LocalVLMJudge("/models/Qwen2-VL-2B-Instruct", device="cuda")
    verdicts = judge.judge(state, history, ["click(ref=3)", "noop()"])
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from similar_rl._optional import require
from similar_rl.collect.judges import GroupedJudge
from similar_rl.collect.judges.prompt import (
    SYSTEM_PROMPT,
    VerdictParseError,
    build_user_prompt,
    parse_verdicts,
)
from similar_rl.policies.hf import load_local_lm
from similar_rl.types import GUIState, JudgeVerdict, as_rgb_array


class LocalVLMJudge(GroupedJudge):
    """Task relevance and coherence from a local transformers model.

    Args:
        model_path: a local folder with the model (and its tokenizer/processor); nothing is downloaded.
        device: torch device.
        dtype: torch dtype name (``"float32"``, ``"bfloat16"``...) or ``"auto"``.
        max_new_tokens: answer budget.
        attempts: generations per state before the failure is recorded (first greedy, then sampled).
        retry_temperature: sampling temperature of the retries.
        send_screenshot: give the screenshot to a vision-language model.
        per_candidate: one generation per candidate instead of one for all candidates of a state.
        seed: seed of the sampled retries.
    """

    name = "local_vlm"

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        device: str = "cpu",
        dtype: str = "auto",
        max_new_tokens: int = 256,
        attempts: int = 2,
        retry_temperature: float = 0.7,
        send_screenshot: bool = True,
        per_candidate: bool = False,
        seed: int = 0,
    ) -> None:
        if attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {attempts}")
        if not os.path.isdir(model_path):
            raise FileNotFoundError(f"LocalVLMJudge model_path {str(model_path)!r} is not a local folder")
        self.torch = require("torch", "the local VLM judge")
        require("transformers", "the local VLM judge")
        self.model_path = str(model_path)
        self.device = device
        self.max_new_tokens = int(max_new_tokens)
        self.attempts = int(attempts)
        self.retry_temperature = float(retry_temperature)
        self.send_screenshot = send_screenshot
        self.per_candidate = per_candidate
        self.seed = int(seed)
        self.stats = {"generations": 0, "failures": 0}
        torch_dtype = dtype if dtype == "auto" else getattr(self.torch, dtype)
        self.model, processing, self.is_vlm = load_local_lm(self.model_path, torch_dtype)
        self.processor = processing if self.is_vlm else None
        self.tokenizer = processing.tokenizer if self.is_vlm else processing
        self.model.to(device).eval()

    # -- internals ---------------------------------------------------------------------------------------------
    def _inputs(self, state: GUIState, history: Sequence[str], actions: list[str]) -> Any:
        text = build_user_prompt(state, history, actions)
        use_image = self.is_vlm and self.send_screenshot and state.screenshot is not None
        if self.processor is not None:
            from PIL import Image

            user: list[dict[str, Any]] = [{"type": "image"}] if use_image else []
            user.append({"type": "text", "text": text})
            messages = [
                {"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
                {"role": "user", "content": user},
            ]
            prompt = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            images = [Image.fromarray(as_rgb_array(state.screenshot))] if use_image else None
            return self.processor(text=[prompt], images=images, return_tensors="pt")
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": text}]
        if getattr(self.tokenizer, "chat_template", None):
            prompt = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        else:
            prompt = f"{SYSTEM_PROMPT}\n\n{text}\n\nAnswer:\n"
        return self.tokenizer([prompt], return_tensors="pt")

    def _generate(self, inputs: Any, attempt: int) -> str:
        inputs = inputs.to(self.device)
        kwargs: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "do_sample": attempt > 0}
        if attempt > 0:
            kwargs["temperature"] = self.retry_temperature
            self.torch.manual_seed(self.seed + attempt)
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = self.tokenizer.eos_token_id
        with self.torch.no_grad():
            out = self.model.generate(**inputs, pad_token_id=pad, **kwargs)
        self.stats["generations"] += 1
        new_tokens = out[0, inputs["input_ids"].shape[1] :]
        return self.tokenizer.decode(new_tokens, skip_special_tokens=True)

    def _judge_group(
        self, state: GUIState, history: Sequence[str], actions: list[str], prepared: Any = None
    ) -> list[JudgeVerdict]:
        inputs = self._inputs(state, history, actions)
        errors = []
        for attempt in range(self.attempts):
            answer = self._generate(inputs, attempt)
            try:
                return parse_verdicts(answer, len(actions))
            except VerdictParseError as exc:
                errors.append(f"bad answer ({exc}): {answer[:200]!r}")
        return self._failed("local judge", errors, len(actions))
