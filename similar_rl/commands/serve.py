"""``similar-rl serve``: the batched HTTP reward server.

Examples::

    similar-rl serve --model default
    similar-rl serve --model runs/rm1 --port 8765 --max-batch 64 --max-wait-ms 5
    SIMILAR_TOKEN=s3cret similar-rl serve --model runs/rm1 --token-env SIMILAR_TOKEN --allowed-root data/shots

Clients: ``similar_rl.serving.RemoteScorer("http://127.0.0.1:8765", token=...)``. See docs/serving.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", default="default", help="checkpoint folder, or 'default' for the shipped model"
    )
    parser.add_argument("--device", default=None, help="torch device, e.g. cuda (default: where it loads)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default loopback only)")
    parser.add_argument("--port", type=int, default=8765, help="TCP port (0: any free port)")
    parser.add_argument("--max-batch", type=int, default=64, help="most steps per model call")
    parser.add_argument("--max-wait-ms", type=float, default=5.0, help="how long a request waits for company")
    parser.add_argument("--max-queue", type=int, default=4096, help="most queued steps; more get 503")
    parser.add_argument("--max-body-mb", type=float, default=64.0, help="largest request body; more get 413")
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds a request may wait for scores (504)"
    )
    parser.add_argument("--cache-size", type=int, default=4096, help="scores kept in the scorer's LRU cache")
    parser.add_argument("--max-connections", type=int, default=64, help="most open connections; more get 503")
    parser.add_argument(
        "--request-deadline", type=float, default=30.0, help="seconds to receive one request (then 408/close)"
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=2**25,
        help="most decoded screenshot pixels per request; more get 413",
    )
    parser.add_argument("--allowed-root", help="folder that screenshot_path values may point into")
    parser.add_argument(
        "--token-env", help="name of an environment variable holding the bearer token to require"
    )


def run(args: argparse.Namespace) -> int:
    from similar_rl.model import load_model
    from similar_rl.scoring import Scorer
    from similar_rl.serving import RewardServer, ServerConfig

    token = None
    if args.token_env:
        token = os.environ.get(args.token_env, "")
        if not token:
            print(
                f"similar-rl serve: environment variable {args.token_env} is unset or empty", file=sys.stderr
            )
            return 2
    if args.allowed_root and not Path(args.allowed_root).is_dir():
        print(f"similar-rl serve: --allowed-root {args.allowed_root} is not a folder", file=sys.stderr)
        return 2
    try:
        config = ServerConfig(
            host=args.host,
            port=args.port,
            max_batch=args.max_batch,
            max_wait_ms=args.max_wait_ms,
            max_queue=args.max_queue,
            max_body_bytes=int(args.max_body_mb * 2**20),
            request_timeout_s=args.timeout,
            max_connections=args.max_connections,
            request_deadline_s=args.request_deadline,
            max_pixels_per_request=args.max_pixels,
            allowed_root=args.allowed_root,
            token=token,
        )
        model = load_model(args.model, device=args.device)
    except (ValueError, OSError) as exc:
        print(f"similar-rl serve: {exc}", file=sys.stderr)
        return 2
    scorer = Scorer(model, batch_size=args.max_batch, cache_size=args.cache_size)
    try:
        server = RewardServer(scorer, config)
        server.bind()
    except OSError as exc:
        print(f"similar-rl serve: cannot bind {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    print(f"serving {args.model} on {server.url} (POST /score, GET /health, GET /metrics); Ctrl-C stops")
    if args.host not in ("127.0.0.1", "localhost", "::1") and token is None:
        print(
            "warning: not on loopback and no --token-env: anyone who reaches this port can use it",
            file=sys.stderr,
        )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped")
    return 0
