"""The batched HTTP reward server (``similar-rl serve``) and its client.

- :class:`RewardServer` / :class:`ServerConfig` (:mod:`similar_rl.serving.server`): ``POST /score`` with dynamic
  batching, ``GET /health``, ``GET /metrics``; limits, bounded queue, optional bearer token.
- :class:`RemoteScorer` (:mod:`similar_rl.serving.client`): a :class:`~similar_rl.types.Scorer` that scores on
  a server, usable wherever a model or scorer is accepted (TRL reward functions, Gymnasium wrappers, search).
- :mod:`similar_rl.serving.schema`: the JSON wire format and its strict validation.

Only the standard library is needed (no extra to install).

Example:
    >>> from similar_rl.serving import RemoteScorer
    >>> RemoteScorer("http://127.0.0.1:8765")
    RemoteScorer('http://127.0.0.1:8765', auth=False, timeout=60)
"""

from __future__ import annotations

from similar_rl.serving.client import RemoteScorer, RemoteScoringError
from similar_rl.serving.schema import RequestError
from similar_rl.serving.server import RewardServer, ServerConfig

__all__ = ["RemoteScorer", "RemoteScoringError", "RequestError", "RewardServer", "ServerConfig"]
