"""The environment-adapter protocol and what every adapter shares.

An adapter connects one family of GUI environments to the rest of the package: it reads a
:class:`~similar_rl.types.GUIState` off an observation, converts action strings (see
:mod:`similar_rl.envs.actions`) to env actions and back, enumerates candidate actions, and tells success.
GUI envs have no snapshot/restore, so a search node is rebuilt with :meth:`BaseAdapter.rebuild`:
``reset(seed)`` followed by replaying the action prefix.

To add a family (BrowserGym, AndroidWorld, OSWorld, your own), subclass :class:`BaseAdapter`, implement its
abstract methods and register it with :func:`similar_rl.envs.register_adapter`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from similar_rl.types import INFO_ENV_REWARD, GUIState


class InvalidActionError(ValueError):
    """A well-formed action that cannot be executed in this state (e.g. an unknown element ref)."""


class EnvFailure(RuntimeError):
    """The environment itself failed (browser crashed or hung, driver lost). Callers may rebuild and retry."""


@dataclass
class StepOutcome:
    """Result of executing one action string."""

    state: GUIState | None  # None once the episode is over and the env shows no state
    reward: float
    terminated: bool
    truncated: bool
    success: bool
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated


class BaseAdapter(ABC):
    """Base class of env adapters. Subclasses implement the abstract methods."""

    #: Short family name (e.g. ``"miniwob"``).
    name: str = "base"

    @abstractmethod
    def make_env(self, env_id: str, **kwargs: Any) -> Any:
        """Create the raw environment for ``env_id`` (a gymnasium.Env)."""

    @abstractmethod
    def observe(self, obs: Any, info: dict[str, Any] | None = None) -> GUIState:
        """Read the GUI state off an observation."""

    @abstractmethod
    def to_env_action(self, env: Any, action: str) -> Any:
        """Parse an action string and build the env action.

        Raises:
            ActionParseError: the string is malformed.
            InvalidActionError: it is well formed but not executable here (unknown ref, unsupported kind).
        """

    @abstractmethod
    def to_action_string(self, env_action: Any, env: Any = None, state: GUIState | None = None) -> str:
        """The canonical action string of a raw env action (for scoring actions chosen by other agents).

        ``env`` (the env the action is for, whose action space may differ from the adapter's default) and
        ``state`` (the state it is taken in) are given by the wrappers; adapters that need neither ignore them.
        """

    @abstractmethod
    def candidates(self, state: GUIState) -> list[str]:
        """Plausible candidate action strings in a state (for random/heuristic policies and PPO)."""

    def is_success(self, reward: float, terminated: bool, info: dict[str, Any]) -> bool:
        """Whether the episode ended in task success. Default: terminated with positive reward."""
        return bool(terminated and reward > 0)

    def reset(self, env: Any, seed: int | None = None) -> tuple[GUIState, dict[str, Any]]:
        """Reset ``env`` with ``seed``; return the state and the info dict."""
        obs, info = env.reset(seed=seed)
        return self.observe(obs, info), info

    def _state_after_step(self, env: Any, obs: Any, info: dict[str, Any]) -> GUIState:
        """The new state: the one a Similar reward wrapper with this adapter has just read, else observed here."""
        known = getattr(env, "state", None)
        if isinstance(known, GUIState) and getattr(env, "adapter", None) is self:
            return known
        return self.observe(obs, info)

    def step(self, env: Any, action: str) -> StepOutcome:
        """Execute one action string in ``env``."""
        obs, reward, terminated, truncated, info = env.step(self.to_env_action(env, action))
        state = None if terminated or truncated else self._state_after_step(env, obs, info)
        return StepOutcome(
            state=state,
            reward=float(reward),
            terminated=bool(terminated),
            truncated=bool(truncated),
            # Judge success on the env's own reward: a SimilarRewardWrapper keeps it in info when it shapes the reward.
            success=self.is_success(float(info.get(INFO_ENV_REWARD, reward)), bool(terminated), info),
            info=info,
        )

    def rebuild(
        self, env: Any, seed: int, prefix: Sequence[str]
    ) -> tuple[GUIState | None, StepOutcome | None]:
        """Rebuild a search node: ``reset(seed)`` then replay ``prefix``.

        Returns the state after the prefix (None if the episode ended during the replay) and the outcome of
        the last replayed step (None for an empty prefix).
        """
        state, _ = self.reset(env, seed)
        outcome = None
        for i, action in enumerate(prefix):
            outcome = self.step(env, action)
            if outcome.done and i < len(prefix) - 1:
                raise EnvFailure(
                    f"replay of prefix ended the episode at step {i + 1} of {len(prefix)} (seed {seed}); "
                    "the environment is not deterministic for this seed"
                )
            state = outcome.state
        return state, outcome
