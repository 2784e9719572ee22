"""The client of the reward server: :class:`RemoteScorer`, a drop-in :class:`~similar_rl.types.Scorer`.

Anything that takes a model or a scorer takes a RemoteScorer too::

    from similar_rl.rewards import similar_reward_funcs
    from similar_rl.serving import RemoteScorer
    from similar_rl.wrappers import SimilarRewardWrapper

    scorer = RemoteScorer("http://127.0.0.1:8765", token=os.environ.get("SIMILAR_TOKEN"))
    reward_funcs = similar_reward_funcs(scorer)          # TRL GRPO / RLOO
    env = SimilarRewardWrapper(env, scorer)              # Gymnasium

It keeps one HTTP/1.1 keep-alive connection per thread, sends long step lists in chunks of at most
``max_steps_per_request``, sends a screenshot shared by several candidate actions once, and retries a request
answered 503 (server overloaded) or cut by a dropped connection a bounded number of times with backoff.
It is picklable (connections are reopened after unpickling), so TRL's async GRPO workers can ship it.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from similar_rl.serving.schema import MAX_STEPS_PER_REQUEST, encode_request, parse_scores
from similar_rl.types import DimensionScores, StepInput

__all__ = ["RemoteScorer", "RemoteScoringError"]


class RemoteScoringError(RuntimeError):
    """The server refused or failed a request; ``status`` is the HTTP status (0: no answer)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"reward server answered {status}: {message}" if status else message)
        self.status = status
        self.message = message


class RemoteScorer:
    """Score steps on a remote :class:`~similar_rl.serving.server.RewardServer`.

    Args:
        url: base URL of the server, e.g. ``"http://127.0.0.1:8765"``.
        token: bearer token if the server requires one.
        timeout: seconds to wait for one HTTP answer.
        max_retries: retries of a request answered 503 or cut by a dropped connection.
        max_steps_per_request: steps per HTTP request (the server accepts up to 1024 by default).

    Attributes:
        requests: HTTP requests sent (retries included).
        retries: requests that were retried.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 3,
        max_steps_per_request: int = 256,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url must look like 'http://127.0.0.1:8765', got {url!r}")
        if not 1 <= max_steps_per_request <= MAX_STEPS_PER_REQUEST:
            raise ValueError(
                f"max_steps_per_request must be in 1..{MAX_STEPS_PER_REQUEST}, got {max_steps_per_request}"
            )
        if timeout <= 0 or max_retries < 0:
            raise ValueError("timeout must be > 0 and max_retries >= 0")
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.max_steps_per_request = int(max_steps_per_request)
        self.requests = 0
        self.retries = 0
        self._parts = parts
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"RemoteScorer({self.url!r}, auth={self.token is not None}, timeout={self.timeout:g})"

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_local"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._local = threading.local()

    def score(self, steps: Sequence[StepInput]) -> list[DimensionScores]:
        """Score ``steps`` on the server; one dict per step (five dimensions and ``total``), in order.

        Raises:
            TypeError: an item is not a StepInput.
            RemoteScoringError: the server refused the request (4xx), failed (5xx) or could not be reached.
        """
        steps = list(steps)
        for i, step in enumerate(steps):
            if not isinstance(step, StepInput):
                raise TypeError(f"steps[{i}] must be a similar_rl.StepInput, got {type(step).__name__}")
        out: list[DimensionScores] = []
        for start in range(0, len(steps), self.max_steps_per_request):
            chunk = steps[start : start + self.max_steps_per_request]
            body = json.dumps(encode_request(chunk)).encode()
            data = self._request("POST", "/score", body)
            try:
                out.extend(parse_scores(data, len(chunk)))
            except ValueError as exc:
                raise RemoteScoringError(200, f"malformed answer: {exc}") from None
        return out

    def score_one(self, step: StepInput) -> DimensionScores:
        return self.score([step])[0]

    def health(self) -> dict[str, Any]:
        """``GET /health`` (raises :class:`RemoteScoringError` if the server is down)."""
        return self._request("GET", "/health")

    def metrics(self) -> dict[str, Any]:
        """``GET /metrics``: request, batch and forward counters, queue depth, latency percentiles."""
        return self._request("GET", "/metrics")

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self._parts.scheme == "https" else http.client.HTTPConnection
            conn = cls(self._parts.hostname, self._parts.port, timeout=self.timeout)
            self._local.conn = conn
        return conn

    def _request(self, method: str, path: str, body: bytes | None = None) -> dict[str, Any]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        prefix = self._parts.path.rstrip("/")
        last_error = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.retries += 1
                time.sleep(min(2.0, 0.05 * 2**attempt))
            self.requests += 1
            conn = self._connection()
            try:
                conn.request(method, prefix + path, body=body, headers=headers)
                response = conn.getresponse()
                raw = response.read()
                status = response.status
                if response.getheader("Connection", "").lower() == "close":
                    self.close()
            except (ConnectionError, http.client.HTTPException, TimeoutError, OSError) as exc:
                self.close()
                last_error = f"no answer from {self.url}{path}: {type(exc).__name__}: {exc}"
                if isinstance(exc, TimeoutError):  # the server may still be working on it: do not pile on
                    break
                continue
            data = _json_or_text(raw)
            if status == 200:
                if not isinstance(data, dict):
                    raise RemoteScoringError(status, f"expected a JSON object, got {str(data)[:200]!r}")
                return data
            message = data.get("error", str(data)) if isinstance(data, dict) else str(data)[:500]
            if status == 503:
                last_error = f"reward server answered 503: {message}"
                continue
            raise RemoteScoringError(status, message)
        raise RemoteScoringError(0, f"{last_error} (after {self.max_retries + 1} attempts)")


def _json_or_text(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return raw.decode("utf-8", "replace")
