"""Builders of tiny offline models for tests, docs and benchmarks (nothing is downloaded).

:func:`tiny_default_config` / :func:`tiny_default_model` (small heads on the default backbone), random tiny
Hugging Face models that the ``hf`` backbone loads (:func:`build_tiny_qwen2`, :func:`build_tiny_qwen2_vl`,
:func:`build_tiny_llava`) and :func:`tiny_hf_similar_model` on the tiny Qwen2.

Example:
    >>> tiny_default_config().gate_hidden
    32
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from similar_rl.model.config import SimilarConfig


def tiny_default_config(**overrides: Any) -> SimilarConfig:
    """A default-backbone config with a small gate (hidden 32, 2 layers), 64 px images and small caches.

    The encoders are the real pretrained ones; only the heads are small. Keyword arguments override fields.
    """
    fields: dict[str, Any] = {
        "backbone": "default",
        "gate_hidden": 32,
        "gate_layers": 2,
        "backbone_options": {"cache_size": 256, "text_cache_size": 1024, "image_size": 64},
    }
    return SimilarConfig(**{**fields, **overrides})


def tiny_default_model(seed: int = 0) -> Any:
    """A :func:`tiny_default_config` SimilarRewardModel (real MiniLM + EfficientNet-Lite0 encoders) whose expert
    weights and biases are drawn from N(0, 0.5²) after ``torch.manual_seed(seed)``; in eval mode."""
    import torch

    from similar_rl.model import SimilarRewardModel

    torch.manual_seed(seed)
    model = SimilarRewardModel.build(tiny_default_config())
    with torch.no_grad():
        model.experts.weight.normal_(0.0, 0.5)
        model.experts.bias.normal_(0.0, 0.5)
    return model.eval()


# -- tiny Hugging Face models ----------------------------------------------------------------------------------------

SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<image>",
)

#: A ChatML template that renders list-of-parts content (``{"type": "image"}`` / ``{"type": "text"}``).
CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ IMAGE }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_CORPUS = (
    'click(ref=12) type(ref=3, text="hello") press(key="Enter") noop() click_xy(x=10, y=20) '
    "Instruction: click the Submit button. Enter the username bob and the password. Previous actions: "
    '[1] button "OK" [2] input_text "Username" (value="bob", focused) [3] link "Home" div span '
    "The quick brown fox jumps over the lazy dog 0123456789 <|im_start|>user assistant system"
)


def build_tiny_tokenizer(image_token: str = "<|image_pad|>", vocab_size: int = 400) -> Any:
    """A byte-level BPE tokenizer trained offline on a small corpus, with ChatML/Qwen-VL special tokens and a chat
    template whose image part renders as ``image_token`` (wrapped in vision start/end for Qwen-style tokens)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([_CORPUS] * 4, trainer=trainer)
    image = "<|vision_start|><|image_pad|><|vision_end|>" if image_token == "<|image_pad|>" else image_token
    template = CHATML_TEMPLATE.replace("{{ IMAGE }}", image)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        padding_side="left",
        chat_template=template,
        extra_special_tokens={"image_token": image_token} if image_token != "<|image_pad|>" else {},
    )


def _text_config_kwargs(tokenizer: Any, hidden: int, layers: int) -> dict[str, Any]:
    """The decoder sizes and special-token ids shared by the tiny text models (4 heads, 2 KV heads)."""
    return {
        "vocab_size": len(tokenizer),
        "hidden_size": hidden,
        "intermediate_size": 2 * hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 2048,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }


def _save_random_model(model_cls: Any, config: Any, seed: int, path: Path, *processors: Any) -> Path:
    """Build ``model_cls(config)`` with weights drawn under ``torch.manual_seed(seed)`` and save it and its
    tokenizer / processors to ``path``; returns ``path``."""
    import torch

    torch.manual_seed(seed)
    model_cls(config).eval().save_pretrained(path)
    for processor in processors:
        processor.save_pretrained(path)
    return path


def build_tiny_qwen2(path: str | Path, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """A tiny random Qwen2 causal LM (text only) with an offline tokenizer, saved to ``path``; returns ``path``."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    path = Path(path)
    tokenizer = build_tiny_tokenizer()
    config = Qwen2Config(**_text_config_kwargs(tokenizer, hidden, layers), tie_word_embeddings=True)
    return _save_random_model(Qwen2ForCausalLM, config, seed, path, tokenizer)


def build_tiny_qwen2_vl(
    path: str | Path, hidden: int = 64, layers: int = 2, seed: int = 0, version: str = "2"
) -> Path:
    """A tiny random Qwen2-VL (``version="2"``) or Qwen2.5-VL (``"2.5"``) with an offline tokenizer and a PIL image
    processor (no torchvision), saved to ``path``; returns ``path``. Images are resized to at most 56x56 pixels."""
    import transformers

    path = Path(path)
    tokenizer = build_tiny_tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    half_head = hidden // 4 // 2  # 4 attention heads (see _text_config_kwargs)
    mrope = [half_head - 2 * (half_head // 3), half_head // 3, half_head // 3]
    rope = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": mrope}
    text = {**_text_config_kwargs(tokenizer, hidden, layers), "rope_parameters": rope}
    vision = {
        "depth": 1,
        "embed_dim": 32,
        "hidden_size": hidden,
        "num_heads": 2,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
    }
    if version == "2":
        config_cls, model_cls = transformers.Qwen2VLConfig, transformers.Qwen2VLForConditionalGeneration
    elif version == "2.5":
        config_cls, model_cls = transformers.Qwen2_5_VLConfig, transformers.Qwen2_5_VLForConditionalGeneration
        vision.update({"out_hidden_size": hidden, "intermediate_size": 64, "fullatt_block_indexes": [0]})
        vision["hidden_size"] = 32
    else:
        raise ValueError(f"version must be '2' or '2.5', got {version!r}")
    config = config_cls(
        text_config=text,
        vision_config=vision,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )
    image_processor = transformers.Qwen2VLImageProcessorPil(
        min_pixels=28 * 28, max_pixels=56 * 56, patch_size=14, merge_size=2, temporal_patch_size=2
    )
    return _save_random_model(model_cls, config, seed, path, tokenizer, image_processor)


def build_tiny_llava(path: str | Path, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """A tiny random LLaVA (CLIP vision tower + Llama text model) with an offline tokenizer and a PIL image processor
    (28x28 pixels, 4 image tokens), saved to ``path``; returns ``path``."""
    import transformers

    path = Path(path)
    tokenizer = build_tiny_tokenizer(image_token="<image>")
    image_token_id = tokenizer.convert_tokens_to_ids("<image>")
    text = transformers.LlamaConfig(**_text_config_kwargs(tokenizer, hidden, layers))
    vision = transformers.CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=28,
        patch_size=14,
    )
    config = transformers.LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=image_token_id,
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
        tie_word_embeddings=True,
    )
    image_processor = transformers.CLIPImageProcessorPil(
        size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28}
    )
    processor = transformers.LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=14,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=tokenizer.chat_template,
    )
    return _save_random_model(transformers.LlavaForConditionalGeneration, config, seed, path, processor)


def tiny_hf_similar_model(path: str | Path, seed: int = 0) -> Any:
    """A text-only :class:`~similar_rl.model.SimilarRewardModel` (gate hidden 32, 2 layers) on a tiny Qwen2
    backbone built in ``path``, with expert weights and biases drawn from N(0, 1) under ``seed``; in eval mode."""
    import torch

    from similar_rl.model import SimilarRewardModel

    config = SimilarConfig(
        backbone="hf",
        backbone_path=str(build_tiny_qwen2(path)),
        gate_hidden=32,
        gate_layers=2,
        use_image=False,
    )
    model = SimilarRewardModel(config)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in (model.experts.weight, model.experts.bias):
            p.copy_(torch.randn(p.shape, generator=gen))
    return model.eval()
