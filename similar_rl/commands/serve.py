"""``similar-rl serve``: the batched HTTP reward server.

Examples::

    similar-rl serve --model default
    similar-rl serve --model runs/rm1 --port 8765 --max-batch 64 --max-wait-ms 5
    SIMILAR_TOKEN=s3cret similar-rl serve --model runs/rm1 --token-env SIMILAR_TOKEN --allowed-root data/shots

Clients: ``similar_rl.serving.RemoteScorer("http://127.0.0.1:8765", token=...)``. See docs/serving.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from similar_rl.commands import fail

#: The historical option strings of ServerConfig fields.
_ALIASES = {
    "request_timeout_s": ("--timeout",),
    "request_deadline_s": ("--request-deadline",),
    "max_pixels_per_request": ("--max-pixels",),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from similar_rl.harness.settings import add_dataclass_arguments
    from similar_rl.serving import ServerConfig

    parser.add_argument(
        "--model", default="default", help="checkpoint folder, or 'default' for the shipped model"
    )
    parser.add_argument("--device", default=None, help="torch device, e.g. cuda (default: where it loads)")
    parser.add_argument("--cache-size", type=int, default=4096, help="scores kept in the scorer's LRU cache")
    parser.add_argument(
        "--token-env", help="name of an environment variable holding the bearer token to require"
    )
    group = parser.add_argument_group("ServerConfig fields")
    add_dataclass_arguments(group, ServerConfig, exclude=("token",), aliases=_ALIASES)


def run(args: argparse.Namespace) -> int:
    from similar_rl.harness.settings import build_args
    from similar_rl.model import load_model
    from similar_rl.scoring import Scorer
    from similar_rl.serving import RewardServer, ServerConfig

    token = None
    if args.token_env:
        token = os.environ.get(args.token_env, "")
        if not token:
            return fail("serve", f"environment variable {args.token_env} is unset or empty")
    allowed_root = getattr(args, "allowed_root", None)
    if allowed_root and not Path(allowed_root).is_dir():
        return fail("serve", f"--allowed-root {allowed_root} is not a folder")
    fields = {f.name for f in dataclasses.fields(ServerConfig)}
    try:
        config = build_args(
            ServerConfig, {k: v for k, v in vars(args).items() if k in fields}, {"token": token}
        )
        model = load_model(args.model, device=args.device)
    except (ValueError, OSError) as exc:
        return fail("serve", exc)
    scorer = Scorer(model, batch_size=config.max_batch, cache_size=args.cache_size)
    try:
        server = RewardServer(scorer, config)
        server.bind()
    except OSError as exc:
        return fail("serve", f"cannot bind {config.host}:{config.port}: {exc}")
    print(f"serving {args.model} on {server.url} (POST /score, GET /health, GET /metrics); Ctrl-C stops")
    if config.host not in ("127.0.0.1", "localhost", "::1") and token is None:
        print(
            "warning: not on loopback and no --token-env: anyone who reaches this port can use it",
            file=sys.stderr,
        )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped")
    return 0
