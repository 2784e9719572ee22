"""A judge backed by any OpenAI-compatible chat-completions endpoint (vLLM, TGI, llama.cpp server, OpenAI...).

The request carries the prompt and the screenshot (a base64 PNG ``image_url`` part); the answer must be the
strict JSON of :mod:`similar_rl.collect.judges.prompt`. Timeouts, connection errors, 429/5xx answers and
malformed answers are retried up to ``max_retries`` times (a malformed answer is shown to the model with the
parse error); after that every candidate gets a recorded failure (``JudgeVerdict(None, None, error=...)``),
never a guess. Only the standard library is used (``urllib``).

Example:
    >>> judge = OpenAIChatJudge(base_url="http://127.0.0.1:8000/v1", model="Qwen2-VL-7B-Instruct")
    >>> judge.endpoint
    'http://127.0.0.1:8000/v1/chat/completions'
"""

from __future__ import annotations

import http.client
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from similar_rl.collect.judges import GroupedJudge
from similar_rl.collect.judges.prompt import (
    SYSTEM_PROMPT,
    VerdictParseError,
    build_user_prompt,
    parse_verdicts,
    png_base64,
)
from similar_rl.types import GUIState, JudgeVerdict

#: HTTP statuses worth retrying (rate limit, server errors); other 4xx answers fail at once.
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})


class OpenAIChatJudge(GroupedJudge):
    """Task relevance and coherence from a chat model behind an OpenAI-compatible endpoint.

    Args:
        base_url: the API root, e.g. ``http://127.0.0.1:8000/v1`` (``/chat/completions`` is appended).
        model: the served model name.
        api_key_env: name of the environment variable holding the API key (no header if unset or empty).
        timeout: seconds per request.
        max_retries: extra attempts after the first one (so ``1 + max_retries`` requests at most).
        backoff_s: sleep before retry k is ``backoff_s * 2**(k-1)``.
        temperature: sampling temperature of the first attempt (retries use at least 0.3 to get a new answer).
        max_tokens: answer budget.
        send_screenshot: attach the screenshot (if the state has one).
        per_candidate: one request per candidate instead of one request for all candidates of a state.
        json_mode: also send ``response_format={"type": "json_object"}`` (if the server supports it).
        extra_body: extra request fields (e.g. vLLM's ``guided_json``).
    """

    name = "openai"

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000/v1",
        model: str = "default",
        api_key_env: str | None = "OPENAI_API_KEY",
        timeout: float = 60.0,
        max_retries: int = 2,
        backoff_s: float = 1.0,
        temperature: float = 0.0,
        max_tokens: int = 512,
        send_screenshot: bool = True,
        per_candidate: bool = False,
        json_mode: bool = False,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        if timeout <= 0 or max_retries < 0 or backoff_s < 0:
            raise ValueError("timeout must be > 0, max_retries >= 0 and backoff_s >= 0")
        self.endpoint = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key_env = api_key_env
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff_s = float(backoff_s)
        self.temperature = float(temperature)
        self.max_tokens = int(max_tokens)
        self.send_screenshot = send_screenshot
        self.per_candidate = per_candidate
        self.json_mode = json_mode
        self.extra_body = dict(extra_body or {})
        self.stats = {"requests": 0, "retries": 0, "failures": 0}

    # -- internals ---------------------------------------------------------------------------------------------
    def _prepare(self, state: GUIState) -> str | None:
        """The screenshot as base64 PNG (encoded once for all groups of the state), or None."""
        return png_base64(state.screenshot) if self.send_screenshot and state.screenshot is not None else None

    def _messages(
        self, state: GUIState, history: Sequence[str], actions: list[str], image: str | None
    ) -> list:
        content: list[dict[str, Any]] = [{"type": "text", "text": build_user_prompt(state, history, actions)}]
        if image is not None:
            content.append({"type": "image_url", "image_url": {"url": f"data:image/png;base64,{image}"}})
        return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": content}]

    def _judge_group(
        self, state: GUIState, history: Sequence[str], actions: list[str], image: str | None
    ) -> list[JudgeVerdict]:
        messages = self._messages(state, history, actions, image)
        errors: list[str] = []
        for attempt in range(1 + self.max_retries):
            if attempt:
                self.stats["retries"] += 1
                if self.backoff_s:
                    time.sleep(self.backoff_s * 2 ** (attempt - 1))
            temperature = self.temperature if attempt == 0 else max(self.temperature, 0.3)
            try:
                answer = self._request(messages, temperature)
            except _Fatal as exc:
                errors.append(str(exc))
                break
            except _Retryable as exc:
                errors.append(str(exc))
                continue
            try:
                return parse_verdicts(answer, len(actions))
            except VerdictParseError as exc:
                errors.append(f"bad answer ({exc}): {answer[:200]!r}")
                fix = f"That answer is not valid: {exc}. Reply with the JSON object only."
                reply = {"role": "assistant", "content": answer[:2000]}
                messages = [*messages[:2], reply, {"role": "user", "content": fix}]
        return self._failed("openai judge", errors, len(actions))

    def _request(self, messages: list, temperature: float) -> str:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": temperature,
            "max_tokens": self.max_tokens,
        }
        if self.json_mode:
            body["response_format"] = {"type": "json_object"}
        body.update(self.extra_body)
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env, "") if self.api_key_env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(
            self.endpoint, json.dumps(body).encode("utf-8"), headers, method="POST"
        )
        self.stats["requests"] += 1
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", "replace")
            cls = _Retryable if exc.code in RETRY_STATUSES else _Fatal
            raise cls(f"HTTP {exc.code} from {self.endpoint}: {detail}") from None
        except (TimeoutError, urllib.error.URLError) as exc:
            if isinstance(getattr(exc, "reason", exc), TimeoutError):  # or a URLError caused by one
                raise _Retryable(f"no answer from {self.endpoint} within {self.timeout:g} s") from None
            raise _Retryable(f"cannot reach {self.endpoint}: {exc.reason}") from None
        except (OSError, http.client.HTTPException) as exc:
            raise _Retryable(f"connection to {self.endpoint} failed: {exc}") from None
        try:
            content = json.loads(raw)["choices"][0]["message"]["content"]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, IndexError, TypeError):
            raise _Retryable(f"the endpoint's reply is not a chat completion: {raw[:200]!r}") from None
        if not isinstance(content, str):
            raise _Retryable(f"the completion has no text content: {content!r:.200}")
        return content


class _Retryable(Exception):
    """A failed request worth another attempt."""


class _Fatal(Exception):
    """A failed request that another attempt will not fix (e.g. HTTP 401/404)."""
