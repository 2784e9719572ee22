"""Reward-server load test on loopback: throughput and p50/p99 latency vs in-process scoring, same process.

Settings (every step distinct, scorer caches off, so every step costs a forward):

- ``in-process serial``: one ``Scorer.score(request)`` call per request, one after the other (the baseline);
- ``in-process C threads``: C threads share one Scorer (its lock serialises the model calls);
- ``server C clients``: C threads, each with its own :class:`RemoteScorer`, against a :class:`RewardServer`
  with dynamic batching on 127.0.0.1.

Clients and server share this process (and its GIL), so HTTP and JSON costs are counted fully. Timings on a
shared machine are noisy: compare ratios within one run.

    .venv/bin/python benchmarks/server_load.py --requests 192 --concurrency 1 8 32
Results go to benchmarks/results/server_load.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path
from typing import Any

from _serving_common import machine, tiny_model, toy_steps

from similar_rl.scoring import Scorer
from similar_rl.serving import RemoteScorer, RewardServer
from similar_rl.serving.server import percentile

RESULTS = Path(__file__).parent / "results"


def run_clients(
    requests: list[list[Any]], concurrency: int, make_client: Any, max_seconds: float
) -> dict[str, Any]:
    """Send ``requests`` from ``concurrency`` threads (each takes the next request); latency per request."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    cursor = iter(range(len(requests)))
    deadline = time.monotonic() + max_seconds

    def worker() -> None:
        client = make_client()
        while time.monotonic() < deadline:
            with lock:
                i = next(cursor, None)
            if i is None:
                return
            start = time.perf_counter()
            try:
                client.score(requests[i])
            except RuntimeError as exc:  # recorded below
                with lock:
                    errors.append(str(exc))
                continue
            with lock:
                latencies.append((time.perf_counter() - start) * 1000)

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    steps = sum(len(r) for r in requests[: len(latencies)])
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "seconds": round(seconds, 3),
        "steps_per_s": round(steps / seconds, 2),
        "p50_ms": round(percentile(latencies, 50) or 0, 2),
        "p99_ms": round(percentile(latencies, 99) or 0, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=192, help="requests per setting")
    parser.add_argument("--steps-per-request", type=int, default=1, help="1: one completion per request")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--max-batch", type=int, default=64)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--max-seconds", type=float, default=120.0, help="cap per setting")
    args = parser.parse_args()

    model = tiny_model()
    steps = toy_steps(args.requests * args.steps_per_request)
    k = args.steps_per_request
    requests = [steps[i : i + k] for i in range(0, len(steps), k)]
    Scorer(model, cache_size=0).score(steps[:8])  # warm-up (first forward allocates)

    rows = []
    shared = Scorer(model, batch_size=args.max_batch, cache_size=0)
    base = run_clients(requests, 1, lambda: shared, args.max_seconds)
    rows.append({"setting": "in-process serial", "concurrency": 1, **base})
    for c in args.concurrency:
        if c > 1:
            res = run_clients(requests, c, lambda: shared, args.max_seconds)
            rows.append({"setting": f"in-process {c} threads", "concurrency": c, **res})
        scorer = Scorer(model, batch_size=args.max_batch, cache_size=0)
        with RewardServer(scorer, port=0, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms) as server:
            res = run_clients(requests, c, lambda server=server: RemoteScorer(server.url), args.max_seconds)
            metrics = server.metrics()
        res["forwards"] = metrics["forwards"]
        res["mean_batch_steps"] = metrics["mean_batch_steps"]
        rows.append({"setting": f"server {c} clients", "concurrency": c, **res})
    for row in rows:
        row["throughput_vs_serial"] = round(row["steps_per_s"] / base["steps_per_s"], 2)

    RESULTS.mkdir(exist_ok=True)
    info = {"machine": machine(), "args": vars(args), "rows": rows}
    (RESULTS / "server_load.json").write_text(json.dumps(info, indent=2) + "\n")
    header = "| setting | requests | errors | steps/s | x serial | p50 ms | p99 ms | forwards | mean batch |"
    lines = [
        f"Server load (loopback, same process; {args.requests} requests x {k} step(s); "
        f"max_batch {args.max_batch}, max_wait {args.max_wait_ms} ms). Machine: {info['machine']}",
        "",
        header,
        "|" + "---|" * 9,
    ]
    for r in rows:
        lines.append(
            f"| {r['setting']} | {r['requests']} | {r['errors']} | {r['steps_per_s']} | {r['throughput_vs_serial']} "
            f"| {r['p50_ms']} | {r['p99_ms']} | {r.get('forwards', '')} | {r.get('mean_batch_steps', '')} |"
        )
    text = "\n".join(lines) + "\n"
    (RESULTS / "server_load.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
