"""Test helpers: the tiny real reward model, a tiny random Qwen2 policy, a toy-env prompt dataset, TRL configs.

The policy's word-level tokenizer has one token per action string (plus a few words and special tokens), so
even a random policy writes parsable actions most of the time and the reward model is really called.
"""

from __future__ import annotations

from typing import Any

ACTION_TOKENS = [f"click(ref={i})" for i in range(1, 7)] + ["noop()", 'press(key="Enter")']
WORDS = ["Instruction:", "Click", "the", "button", "Enter", "and", "press", "Login."]
SPECIAL = ["[UNK]", "<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|> {{ m['role'] }} "
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}"
    "{% for p in m['content'] %}{% if p['type'] == 'text' %}{{ p['text'] }}{% endif %}{% endfor %}{% endif %}"
    " <|im_end|> {% endfor %}{% if add_generation_prompt %}<|im_start|> assistant {% endif %}"
)


def build_policy(seed: int = 0) -> tuple[Any, Any]:
    """(model, tokenizer): a random 2-layer Qwen2 (hidden 32) and a word-level tokenizer of action strings."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    vocab = {tok: i for i, tok in enumerate(SPECIAL + ACTION_TOKENS + WORDS)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins tokens with spaces
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="<|endoftext|>",
        eos_token="<|im_end|>",
        bos_token=None,
        padding_side="left",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=256,
        pad_token_id=vocab["<|endoftext|>"],
        eos_token_id=vocab["<|im_end|>"],
        bos_token_id=None,
        tie_word_embeddings=True,
    )
    return Qwen2ForCausalLM(config), tokenizer


def save_policy(folder: str, seed: int = 0) -> tuple[str, Any]:
    """Save :func:`build_policy`'s model to ``folder`` (RLOO rebuilds its reference model from it); return the
    folder and the tokenizer (pass it as ``processing_class``: AutoTokenizer would reload it as a Qwen2 BPE)."""
    model, tokenizer = build_policy(seed)
    model.save_pretrained(folder)
    return folder, tokenizer


def toy_dataset(n: int = 4, conversational: bool = False, seed: int = 0) -> Any:
    """Prompts from toy-env states (``instruction``, ``history``, ``observation_text``, ``screenshot`` columns)."""
    from datasets import Dataset
    from PIL import Image

    from similar_rl.envs import make_env

    rows: dict[str, list[Any]] = {
        "prompt": [],
        "instruction": [],
        "history": [],
        "observation_text": [],
        "screenshot": [],
    }
    for i in range(n):
        env, adapter = make_env("toy/click-button" if i % 2 else "toy/login-form")
        state, _ = adapter.reset(env, seed=seed + i)
        text = f"Instruction: {state.instruction}"
        rows["prompt"].append([{"role": "user", "content": text}] if conversational else text)
        rows["instruction"].append(state.instruction)
        rows["history"].append("noop()" if i % 2 else "")
        rows["observation_text"].append(state.observation_text)
        rows["screenshot"].append(Image.fromarray(state.screenshot))
        env.close()
    return Dataset.from_dict(rows)


def trainer_args(kind: str, output_dir: str, report_to: str = "none", **overrides: Any) -> Any:
    """A tiny CPU config for GRPO or RLOO: 2 steps, batch 4, 2 generations, 4 completion tokens."""
    import trl

    config_cls = {"grpo": trl.GRPOConfig, "rloo": trl.RLOOConfig}[kind]
    fields: dict[str, Any] = dict(
        output_dir=output_dir,
        max_steps=2,
        per_device_train_batch_size=4,
        num_generations=2,
        max_completion_length=4,
        logging_steps=1,
        learning_rate=1e-3,
        report_to=report_to,
        save_strategy="no",
        use_cpu=True,
        bf16=False,
        seed=0,
        dataloader_num_workers=0,
    )
    fields.update(overrides)
    return config_cls(**fields)


def build_reward_model(seed: int = 0) -> Any:
    """The real tiny default-backbone SimilarRewardModel with random (not zero) expert weights, in eval mode."""
    from similar_rl.testing import tiny_default_model

    return tiny_default_model(seed)
