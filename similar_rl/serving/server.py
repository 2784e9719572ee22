"""The HTTP reward server: ``POST /score`` with dynamic batching, ``GET /health``, ``GET /metrics``.

Built on the standard library (:class:`http.server.ThreadingHTTPServer`, one thread per connection, HTTP/1.1
keep-alive). Each request is validated (:mod:`similar_rl.serving.schema`), queued in a
:class:`~similar_rl.serving.batcher.DynamicBatcher` and answered when its batch has been scored.

Safety and limits (each refusal is a JSON ``{"error": "..."}`` naming the problem):

==========================  =====  ===========================================================================
condition                   code   note
==========================  =====  ===========================================================================
malformed JSON / fields     400    the message names the field (``steps[2].history[0] must be a string``)
no or wrong bearer token    401    only when a token is configured; ``/health`` stays open
path outside allowed root   403    ``screenshot_path`` resolves (symlinks followed) outside ``allowed_root``
unknown path                404
request not received        408    headers + body not in within ``request_deadline_s`` of the request's start
                                   (of the accept, for a connection's first request); the connection is closed
body without length         411
body over ``max_body``      413    refused from the ``Content-Length`` header before reading the body
too many pixels             413    over ``max_pixels_per_request`` decoded pixels (distinct images, from headers)
queue full                  503    ``Retry-After: 1``; the queue is bounded in steps (``max_queue``)
too many connections        503    past ``max_connections`` open connections; answered and closed at accept
scores not ready in time    504    after ``request_timeout_s``
slow client                 --     each socket read times out after ``socket_timeout_s``; the connection closes
unexpected error            500    a JSON error, logged with its traceback; never a dropped connection
==========================  =====  ===========================================================================

Memory: one request holds its body (at most ``max_body_bytes``), the base64-decoded PNG bytes of one image at a
time and the decoded RGB arrays of its distinct images (3 bytes per pixel, at most ``max_pixels_per_request``
pixels; 96 MiB at the default), plus one image's RGBA intermediate while it is decoded (at most 64 MiB). So the
worst case is about 64 + 64 + 96 + 64 MiB = 288 MiB per request and ``max_connections`` times that in all.

The server binds to ``127.0.0.1`` unless told otherwise (``::1`` and other IPv6 hosts bind an IPv6 socket).

Example:
    >>> import torch
    >>> from similar_rl import StepInput
    >>> from similar_rl.serving import RemoteScorer
    >>> class LengthModel:  # stands in for a SimilarRewardModel
    ...     def score_steps(self, steps):
    ...         return torch.tensor([[float(len(s.action))] * 6 for s in steps])
    >>> with RewardServer(LengthModel(), port=0) as server:
    ...     RemoteScorer(server.url).score([StepInput("Click OK", "click(ref=4)")])[0]["total"]
    12.0
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import math
import socket
import threading
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedReader, RawIOBase
from typing import Any

from similar_rl.fields import option
from similar_rl.scoring import as_scorer
from similar_rl.serving.batcher import DynamicBatcher, Overloaded, ScoringFailed
from similar_rl.serving.schema import MAX_REQUEST_PIXELS, MAX_STEPS_PER_REQUEST, RequestError, parse_request

logger = logging.getLogger(__name__)

__all__ = ["RewardServer", "ServerConfig"]


#: ServerConfig fields that must be integers >= 1, and those that must be finite numbers >= 0.
_POSITIVE_INTS = [
    "max_batch",
    "max_queue",
    "max_steps_per_request",
    "max_body_bytes",
    "max_pixels_per_request",
    "max_connections",
    "latency_window",
]
_NONNEGATIVE_FLOATS = ("max_wait_ms", "request_timeout_s", "request_deadline_s", "socket_timeout_s")


@dataclass
class ServerConfig:
    """Settings of a :class:`RewardServer` (all have safe defaults)."""

    host: str = option("127.0.0.1", "interface to bind; keep loopback unless needed")
    port: int = option(8765, "TCP port (0: any free port)")
    max_batch: int = option(64, "most steps per scorer call")
    max_wait_ms: float = option(5.0, "how long a request waits for others to batch")
    max_queue: int = option(4096, "most steps waiting; beyond it requests get 503")
    max_steps_per_request: int = option(MAX_STEPS_PER_REQUEST, "more: 413")
    max_body_bytes: int = option(64 * 2**20, "largest request body; more: 413")
    max_pixels_per_request: int = option(
        MAX_REQUEST_PIXELS, "most decoded pixels over a request's distinct images; more: 413"
    )
    max_connections: int = option(64, "most open connections; more: 503 at accept")
    request_timeout_s: float = option(60.0, "wait for scores; then 504")
    request_deadline_s: float = option(
        30.0, "time to receive one request's headers and body; then 408 and close"
    )
    socket_timeout_s: float = option(15.0, "idle/slow socket reads; then close")
    allowed_root: str | None = option(None, "folder screenshot_path may point into")
    token: str | None = option(None, "bearer token required on /score and /metrics")
    latency_window: int = option(10_000, "requests kept for latency percentiles")

    def __post_init__(self) -> None:
        for name in _POSITIVE_INTS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ServerConfig.{name} must be an integer >= 1, got {value!r}")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ValueError(f"ServerConfig.port must be in 0..65535, got {self.port!r}")
        for name in _NONNEGATIVE_FLOATS:
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ValueError(f"ServerConfig.{name} must be a finite number >= 0, got {value!r}")
        for name in ("request_deadline_s", "socket_timeout_s"):
            if getattr(self, name) == 0:
                raise ValueError(
                    f"ServerConfig.{name} must be > 0: without it a client that never sends holds a connection "
                    "forever"
                )
        if self.token is not None and not isinstance(self.token, str):
            raise ValueError(f"ServerConfig.token must be a string or None, got {type(self.token).__name__}")
        if self.token is not None and not self.token:
            raise ValueError("ServerConfig.token is empty; give a non-empty token or None for no auth")
        self.max_steps_per_request = min(self.max_steps_per_request, self.max_queue)


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``, None when empty.

    Example:
        >>> percentile([4.0, 1.0, 3.0, 2.0], 50), percentile([], 99)
        (2.0, None)
    """
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


class _Stats:
    def __init__(self, window: int) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.responses: Counter[int] = Counter()
        self.steps_requested = 0
        self.latencies_ms: deque[float] = deque(maxlen=window)

    def record(self, status: int, latency_ms: float | None = None, steps: int = 0) -> None:
        with self.lock:
            self.responses[status] += 1
            self.steps_requested += steps
            if latency_ms is not None:
                self.latencies_ms.append(latency_ms)


_BUSY_BODY = b'{"error": "server overloaded: too many open connections (retry later)", "status": 503}'
_BUSY_REPLY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
    b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY)
)


class _HTTPServer(ThreadingHTTPServer):
    """One thread per connection, at most ``owner.config.max_connections`` of them (more: 503 and close)."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    owner: RewardServer

    def __init__(self, address: tuple[str, int], handler: type, owner: RewardServer) -> None:
        self.owner = owner
        self.open_connections = 0
        self._count_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._count_lock:
            busy = self.open_connections >= self.owner.config.max_connections
            if not busy:
                self.open_connections += 1
        if busy:
            self.owner.stats.record(503)
            with contextlib.suppress(OSError):
                request.settimeout(1.0)
                request.sendall(_BUSY_REPLY)
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._count_lock:
                self.open_connections -= 1


class _DeadlineReader(RawIOBase):
    """The socket's read side with a deadline: each read waits at most until ``deadline`` (then TimeoutError)."""

    def __init__(self, sock: socket.socket, per_read_s: float) -> None:
        self.sock = sock
        self.per_read_s = per_read_s
        self.deadline = math.inf

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the request was not received before its deadline")
        self.sock.settimeout(min(self.per_read_s, remaining))
        return self.sock.recv_into(buffer)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "similar-rl"
    server: _HTTPServer

    def setup(self) -> None:
        cfg = self.server.owner.config
        self.timeout = cfg.socket_timeout_s
        super().setup()
        self._reader = _DeadlineReader(self.connection, cfg.socket_timeout_s)
        self.rfile = BufferedReader(self._reader)
        self._reader.deadline = time.monotonic() + cfg.request_deadline_s  # the first request: from accept

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except Exception:  # never drop a connection without an answer (a bug in a route, an odd header)
            logger.exception("unexpected error while handling a request")
            self.close_connection = True
            if not getattr(self, "_sent", True):
                with contextlib.suppress(OSError):
                    self._error(500, "internal server error (logged by the server)")
        # the next request on this connection gets its own deadline, from now
        self._reader.deadline = time.monotonic() + self.server.owner.config.request_deadline_s

    def parse_request(self) -> bool:
        self._sent = False
        return super().parse_request()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    def _send_json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload, allow_nan=False).encode()
        self._sent = True
        self.connection.settimeout(self.server.owner.config.socket_timeout_s)  # reads may have shortened it
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str, **headers: str) -> None:
        self.server.owner.stats.record(status)
        self._send_json(status, {"error": message, "status": status}, headers)

    def _refuse(self, status: int, message: str) -> None:
        """Answer an error and close the connection (its body is unread or incomplete: it cannot be reused)."""
        self.close_connection = True
        self._error(status, message)

    def _authorised(self) -> bool:
        token = self.server.owner.config.token
        if token is None:
            return True
        scheme, _, value = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode()):
            return True
        if self.command == "POST":
            self.close_connection = True  # the body is not read
        self._error(401, "missing or wrong bearer token (send 'Authorization: Bearer <token>')",
                    **{"WWW-Authenticate": "Bearer"})  # fmt: skip
        return False

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() not in ("", "identity"):
            return self._refuse(
                411, "send the body with a Content-Length header (chunked bodies are not accepted)"
            )
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            return self._refuse(411, "a Content-Length header is required")
        digits = length_text.strip()
        if not (digits.isascii() and digits.isdigit()):
            return self._refuse(400, f"Content-Length must be plain digits (0-9), got {length_text[:40]!r}")
        length = int(digits)
        limit = self.server.owner.config.max_body_bytes
        if length > limit:
            return self._refuse(
                413, f"the body has {length} bytes; at most {limit} are accepted (send fewer steps)"
            )
        try:
            body = self.rfile.read(length)
        except TimeoutError:
            return self._refuse(408, "the body did not arrive in time")
        if len(body) != length:
            self.close_connection = True
            return None
        return body

    def _count_request(self) -> str:
        """Count the request; return its path without the query."""
        with self.server.owner.stats.lock:
            self.server.owner.stats.requests += 1
        return self.path.split("?", 1)[0]

    def do_GET(self) -> None:
        owner = self.server.owner
        path = self._count_request()
        if path == "/health":
            if owner.batcher.alive:
                status, payload = 200, {"status": "ok"}
            else:
                status, payload = 503, {"status": "unhealthy", "error": "the batching thread is not running"}
            owner.stats.record(status)
            self._send_json(status, {**payload, "uptime_s": round(time.monotonic() - owner.started, 3)})
        elif path == "/metrics":
            if self._authorised():
                owner.stats.record(200)
                self._send_json(200, owner.metrics())
        else:
            self._error(404, f"no route {path!r}; use POST /score, GET /health or GET /metrics")

    def do_POST(self) -> None:
        owner = self.server.owner
        start = time.perf_counter()
        path = self._count_request()
        if path != "/score":
            self._refuse(404, f"no route POST {path!r}; use POST /score")
            return
        if not self._authorised():
            return
        body = self._read_body()
        if body is None:
            return
        cfg = owner.config
        try:
            steps = parse_request(
                body, cfg.allowed_root, cfg.max_steps_per_request, cfg.max_pixels_per_request
            )
            scores = owner.batcher.submit(steps, timeout=cfg.request_timeout_s)
        except RequestError as exc:
            self._error(exc.status, exc.message)
        except Overloaded as exc:
            self._error(503, f"server overloaded: {exc}", **{"Retry-After": "1"})
        except TimeoutError as exc:
            self._error(504, f"scoring timed out: {exc}")
        except ScoringFailed as exc:
            self._error(500, f"scoring failed: {exc}")
        else:
            owner.stats.record(200, (time.perf_counter() - start) * 1000, len(steps))
            self._send_json(200, {"scores": scores})

    def do_PUT(self) -> None:
        self._error(405, "use POST /score, GET /health or GET /metrics")

    do_DELETE = do_PATCH = do_PUT


class RewardServer:
    """A batched HTTP reward server around a model or scorer.

    Args:
        model_or_scorer: a :class:`~similar_rl.model.SimilarRewardModel` (wrapped in a
            :class:`~similar_rl.scoring.Scorer` with ``batch_size=max_batch``) or anything with ``score(steps)``.
        config: a :class:`ServerConfig`; keyword arguments override its fields.

    Use :meth:`start` / :meth:`stop` (or ``with``) to serve on a background thread, :meth:`serve_forever` to
    block. :attr:`url` is the base URL (with the real port when ``port=0``).
    """

    def __init__(self, model_or_scorer: Any, config: ServerConfig | None = None, **overrides: Any) -> None:
        base = asdict(config) if config is not None else {}
        self.config = ServerConfig(**{**base, **overrides})
        self.scorer = as_scorer(model_or_scorer, batch_size=self.config.max_batch)
        self.batcher = DynamicBatcher(
            self.scorer, self.config.max_batch, self.config.max_wait_ms / 1000, self.config.max_queue
        )
        self.stats = _Stats(self.config.latency_window)
        self.started = time.monotonic()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def bind(self) -> _HTTPServer:
        if self._httpd is None:
            if self.config.host not in ("127.0.0.1", "localhost", "::1") and self.config.token is None:
                logger.warning(
                    "serving on %s without a token: anyone who reaches it can score", self.config.host
                )
            try:
                self._httpd = _HTTPServer((self.config.host, self.config.port), _Handler, self)
            except OSError as exc:
                raise OSError(
                    f"cannot listen on {self.config.host!r} port {self.config.port}: {exc} (is the port taken, or "
                    "does this machine lack that address family, e.g. IPv6 for '::1'?)"
                ) from exc
            self.batcher.start()
            self.started = time.monotonic()
        return self._httpd

    @property
    def url(self) -> str:
        host, port = self.bind().server_address[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self) -> RewardServer:
        """Serve on a background thread; returns self."""
        httpd = self.bind()
        if self._thread is None:
            self._thread = threading.Thread(target=httpd.serve_forever, name="similar-rl-server", daemon=True)
            self._thread.start()
            logger.info("reward server listening on %s", self.url)
        return self

    def serve_forever(self) -> None:
        """Serve on this thread until :meth:`stop` (or KeyboardInterrupt)."""
        httpd = self.bind()
        logger.info("reward server listening on %s", self.url)
        try:
            httpd.serve_forever()
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._httpd is not None:
            if self._thread is not None:
                self._httpd.shutdown()
                self._thread.join(5)
                self._thread = None
            self._httpd.server_close()
            self._httpd = None
        self.batcher.stop()

    def __enter__(self) -> RewardServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def metrics(self) -> dict[str, Any]:
        """Counters and latency percentiles (what ``GET /metrics`` answers)."""
        with self.stats.lock:
            latencies = list(self.stats.latencies_ms)
            responses = {str(k): v for k, v in sorted(self.stats.responses.items())}
            requests, steps_requested = self.stats.requests, self.stats.steps_requested
        batcher = self.batcher
        return {
            "uptime_s": round(time.monotonic() - self.started, 3),
            "requests": requests,
            "responses": responses,
            "steps_requested": steps_requested,
            "batches": batcher.batches,
            "batched_steps": batcher.steps,
            "mean_batch_steps": round(batcher.steps / batcher.batches, 3) if batcher.batches else None,
            "max_batch_steps": batcher.max_batch_seen,
            "scoring_failures": batcher.failures,
            "forwards": getattr(self.scorer, "forward_calls", None),
            "cache_hits": getattr(self.scorer, "cache_hits", None),
            "queue_depth": batcher.queue_depth,
            "queued_requests": batcher.queued_requests,
            "latency_ms": {
                f"p{q}": None if (v := percentile(latencies, q)) is None else round(v, 3)
                for q in (50, 90, 99)
            },
            # no token, no absolute paths: /metrics is open when the server has no token
            "config": {k: v for k, v in asdict(self.config).items() if k not in ("token", "allowed_root")}
            | {"auth": self.config.token is not None, "allowed_root": self.config.allowed_root is not None},
        }
