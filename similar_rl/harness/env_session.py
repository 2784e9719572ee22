"""The one retrying env session: an env made lazily, operations run under a deadline, the env rebuilt and the
operation retried after a failure, every failure recorded (collection and the search comparison use it).

An env error is anything :func:`env_errors` lists: :class:`~similar_rl.envs.base.EnvFailure`, Selenium's
``WebDriverException``, timeouts, lost connections. Past ``max_retries`` the session raises
:class:`TaskFailed` (an ``EnvFailure`` too, so callers that skip a broken env catch it).

Example:
    >>> from similar_rl.envs import get_adapter
    >>> session = EnvSession("toy/click-button", get_adapter("toy/click-button"), max_retries=1)
    >>> state, _ = session.call("reset", lambda env: session.adapter.reset(env, seed=0))
    >>> state.instruction
    'Click on the "Submit" button.'
    >>> session.close()
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from similar_rl.envs.base import BaseAdapter, EnvFailure

logger = logging.getLogger(__name__)
T = TypeVar("T")


class EnvTimeout(EnvFailure):
    """An env operation ran past its deadline (a hung browser)."""


class TaskFailed(EnvFailure):
    """An env operation kept failing after all retries; the task is recorded as failed."""


def env_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean "the env broke": rebuild it and retry."""
    errors: list[type[BaseException]] = [EnvFailure, TimeoutError, ConnectionError, BrokenPipeError]
    for module, name in (
        ("selenium.common.exceptions", "WebDriverException"),
        ("urllib3.exceptions", "HTTPError"),
    ):
        with contextlib.suppress(ImportError):  # an optional dependency that is not installed
            errors.append(getattr(importlib.import_module(module), name))
    return tuple(errors)


@contextlib.contextmanager
def deadline(seconds: float, what: str) -> Iterator[None]:
    """Raise :class:`EnvTimeout` in the main thread if the block runs longer than ``seconds`` (0: no limit).

    Uses ``SIGALRM``: it acts only in the main thread on POSIX (where a collection worker runs its env) and is
    a no-op elsewhere. Deadlines nest: an inner one never outlasts the outer one, and on exit the rest of the
    outer deadline is re-armed (an operation that first creates its env keeps its own deadline).
    """
    usable = (
        seconds > 0 and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return

    def _on_alarm(signum: int, frame: Any) -> None:
        raise EnvTimeout(f"{what} took longer than {seconds:g} s (hung environment?)")

    outer_left, _ = signal.getitimer(signal.ITIMER_REAL)
    started = time.monotonic()
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, min(seconds, outer_left) if outer_left > 0 else seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_left > 0:  # re-arm the outer deadline with what is left of it (fires at once if spent)
            signal.setitimer(signal.ITIMER_REAL, max(outer_left - (time.monotonic() - started), 1e-3))


class EnvSession:
    """One env owned by one worker: created lazily, rebuilt after failures, operations retried and timed.

    Args:
        env_id, adapter: the env to create and its adapter.
        env_kwargs: keyword arguments of ``adapter.make_env``.
        max_retries: retries of a failing operation (each on a freshly made env).
        timeout_s: deadline of one operation (0: none).
    """

    def __init__(
        self,
        env_id: str,
        adapter: BaseAdapter,
        env_kwargs: dict[str, Any] | None = None,
        max_retries: int = 2,
        timeout_s: float = 0.0,
    ) -> None:
        self.env_id = env_id
        self.adapter = adapter
        self.env_kwargs = dict(env_kwargs or {})
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self.failures: list[dict[str, Any]] = []
        self.steps = 0  # env steps (replays included)
        self._env: Any = None
        self._errors = env_errors()

    @property
    def env(self) -> Any:
        if self._env is None:
            with deadline(self.timeout_s * 2, f"creating {self.env_id}"):
                self._env = self.adapter.make_env(self.env_id, **self.env_kwargs)
        return self._env

    def close(self) -> None:
        """Close the env (errors while closing a broken env are logged, not raised)."""
        env, self._env = self._env, None
        if env is None:
            return
        try:
            env.close()
        except (*self._errors, OSError, RuntimeError) as exc:
            logger.warning("closing %s failed: %s", self.env_id, exc)

    def call(self, what: str, fn: Callable[[Any], T]) -> T:
        """Run ``fn(env)``; on an env error close the env, make a new one and retry (at most ``max_retries``)."""
        for attempt in range(self.max_retries + 1):
            try:
                with deadline(self.timeout_s, what):
                    return fn(self.env)
            except self._errors as exc:
                entry = {"op": what, "attempt": attempt, "error": f"{type(exc).__name__}: {exc}"[:500]}
                self.failures.append(entry)
                logger.warning(
                    "%s: %s failed (attempt %d): %s", self.env_id, what, attempt + 1, entry["error"]
                )
                self.close()
        raise TaskFailed(
            f"{what} failed {self.max_retries + 1} times; last error: {self.failures[-1]['error']}"
        )
