"""Words of a text, the one tokeniser behind every word-overlap rule (the heuristic policy, the rule judge, the
default backbone's structural features and the PPO featurizer).

Example:
    >>> words('Click on the "Sign in" button.')
    ['click', 'on', 'the', 'sign', 'in', 'button']
    >>> words('Click on the "Sign in" button.', stop=frozenset({"on", "the", "in", "button"}))
    ['click', 'sign']
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z0-9]+")


def words(text: str, stop: frozenset[str] = frozenset()) -> list[str]:
    """Lower-case alphanumeric words of ``text``, in order, without those in ``stop``."""
    return [w for w in _WORD.findall(text.lower()) if w not in stop]
