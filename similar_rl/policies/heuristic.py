"""A stochastic heuristic policy: prefers candidates whose element text matches the instruction.

Each candidate of ``adapter.candidates(state)`` gets a score (:meth:`HeuristicPolicy.score`) and ``n`` actions
are sampled from ``softmax(score / temperature)`` (temperature 0: always the best-scored candidate). The score
rewards overlap between the element's words and the instruction, with a bonus for things mentioned early (do
the steps in the order asked) and for ``type`` candidates matched to a task field by name (``username`` -> an
input labelled "Username"); it penalises clicking text fields, re-typing a value already entered, unticking a
named checkbox, clicking a control while a task value still waits to be typed, and repeating actions. It needs
only :attr:`GUIState.elements`, :attr:`GUIState.fields` and the adapter's candidates, so it works on any
adapter.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np

from similar_rl.envs.actions import try_parse
from similar_rl.envs.base import BaseAdapter
from similar_rl.policies.random import FALLBACK_ACTION, _check_n
from similar_rl.text import words as text_words
from similar_rl.types import Element, GUIState

logger = logging.getLogger(__name__)

STOPWORDS = frozenset(
    {"a", "an", "the", "and", "or", "of", "on", "in", "into", "to", "then", "with", "for", "from", "is", "it"}
    | {"its", "this", "that", "these", "those", "nothing", "else", "only", "all", "button", "buttons", "tab"}
    | {"tabs", "field", "fields", "box", "boxes", "link", "text"}
)
TICKED_VALUES = frozenset({"on", "true", "checked", "1", "yes"})


def words(text: str) -> list[str]:
    """Lower-case alphanumeric words of ``text`` without stopwords.

    Example:
        >>> words('Click on the "Sign in" button.')
        ['click', 'sign']
    """
    return text_words(text, STOPWORDS)


class HeuristicPolicy:
    """Samples candidates by how well their element text matches the instruction (see the module docstring).

    Args:
        adapter: any :class:`~similar_rl.envs.base.BaseAdapter`.
        temperature: softmax temperature over scores; 0 picks the best-scored candidate every time (ties: the
            first in candidate order). Higher values give more varied proposals (MCTS-P children).
        order_weight: weight of the bonus for elements mentioned early in the instruction.
        repeat_penalty: cost of each earlier occurrence of the same action in the history.

    Example:
        >>> import numpy as np
        >>> from similar_rl.envs import make_env
        >>> from similar_rl.policies import make_policy
        >>> env, adapter = make_env("toy/login-form")
        >>> state, _ = adapter.reset(env, seed=0)
        >>> make_policy("heuristic", adapter, temperature=0).propose(state, [], 2, np.random.default_rng(0))
        ['type(ref=2, text="mallory")', 'type(ref=2, text="mallory")']
    """

    name = "heuristic"

    def __init__(
        self,
        adapter: BaseAdapter,
        temperature: float = 0.3,
        order_weight: float = 1.0,
        repeat_penalty: float = 1.0,
    ):
        if not isinstance(temperature, (int, float)) or not math.isfinite(temperature) or temperature < 0:
            raise ValueError(f"temperature must be a finite number >= 0 (0 = greedy), got {temperature!r}")
        self.adapter = adapter
        self.temperature = float(temperature)
        self.order_weight = float(order_weight)
        self.repeat_penalty = float(repeat_penalty)

    def _match(self, element_words: Sequence[str], instruction: list[str]) -> tuple[float, float]:
        """(overlap fraction of ``element_words`` found in the instruction, order bonus in [0, 1))."""
        unique = set(element_words)
        hits = [w for w in unique if w in instruction]
        if not hits:
            return 0.0, 0.0
        # the last mention counts: "Enter the username ... and press Enter" asks for the button at the end
        last = max(len(instruction) - 1 - instruction[::-1].index(w) for w in hits)
        return len(hits) / len(unique), 1.0 - last / len(instruction)

    def _score_click(self, el: Element, instruction: list[str]) -> float:
        overlap, order = self._match(words(el.text), instruction)
        score = overlap + self.order_weight * order
        if el.typeable:
            score -= 2.0
        if "checkbox" in el.tag and el.value.lower() in TICKED_VALUES and overlap > 0:
            score -= 1.0 + overlap
        return score

    @staticmethod
    def _unfinished_form_penalty(el: Element, state: GUIState) -> float:
        """Clicking a control while a task value still waits to be typed into a field usually submits too early."""
        if el.typeable or not any(other.typeable for other in state.elements):
            return 0.0
        typed = {other.value for other in state.elements if other.typeable}
        return float(any(v and v not in typed for v in state.fields.values()))

    def _score_type(self, el: Element, text: str, state: GUIState, instruction: list[str]) -> float:
        if el.value == text:
            return -1.0
        placed = any(other.value == text for other in state.elements if other.ref != el.ref)
        _, order = self._match(words(text), instruction)
        keys = [k for k, v in state.fields.items() if v == text]
        target = set(words(f"{el.text} {el.id}"))
        key_overlap = max(
            (len(set(words(k)) & target) / max(1, len(set(words(k)))) for k in keys), default=0.0
        )
        return 0.5 + key_overlap + self.order_weight * order - (1.0 if placed else 0.0)

    def score(self, state: GUIState, action: str, history: Sequence[str] = ()) -> float:
        """The heuristic score of one action string in ``state`` (higher is better)."""
        instruction = words(state.instruction)
        parsed = try_parse(action)
        if parsed is None:
            return -10.0
        el = state.element(parsed.ref) if parsed.ref is not None else None
        if parsed.kind == "click" and el is not None:
            score = self._score_click(el, instruction) - self._unfinished_form_penalty(el, state)
        elif parsed.kind == "type" and el is not None:
            score = self._score_type(el, parsed.text or "", state, instruction)
        else:
            score = self._match(words(action), instruction)[0]
        score -= self.repeat_penalty * list(history).count(action)
        if history and history[-1] == action:
            score -= self.repeat_penalty
        return score

    def probabilities(self, state: GUIState, history: Sequence[str] = ()) -> dict[str, float]:
        """Sampling probability of each distinct candidate (one-hot at temperature 0)."""
        candidates = list(dict.fromkeys(self.adapter.candidates(state)))
        if not candidates:
            return {FALLBACK_ACTION: 1.0}
        scores = np.array([self.score(state, c, history) for c in candidates])
        if self.temperature == 0:
            probs = np.zeros(len(candidates))
            probs[int(np.argmax(scores))] = 1.0
        else:
            logits = (scores - scores.max()) / self.temperature
            probs = np.exp(logits)
            probs /= probs.sum()
        return dict(zip(candidates, probs.tolist(), strict=True))

    def propose(self, state: GUIState, history: Sequence[str], n: int, rng: np.random.Generator) -> list[str]:
        """``n`` action strings sampled from the softmax over candidate scores (may repeat)."""
        _check_n(n)
        probs = self.probabilities(state, history)
        actions = list(probs)
        if len(actions) == 1:
            if actions[0] == FALLBACK_ACTION:
                logger.debug("no candidate actions in this state; proposing %s", FALLBACK_ACTION)
            return [actions[0]] * n
        idx = rng.choice(len(actions), size=n, p=np.fromiter(probs.values(), float))
        return [actions[i] for i in idx]
