"""Soak test of the reward server (bounded, loopback only): concurrent clients for a fixed time.

C client threads send a mix of valid requests (1-4 steps drawn from a fixed pool) and, every ``--bad-every``-th
request, a malformed one, against a :class:`RewardServer` on 127.0.0.1 for ``--duration`` seconds. It reports
requests served, expected refusals (4xx), unexpected errors, RSS memory growth of the process after warm-up,
and checks that nothing was lost: every valid request got exactly its scores, equal to the in-process scores
of the same steps, and the server's count of scored steps equals the clients' count.

    .venv/bin/python benchmarks/soak_server.py --duration 60 --clients 8
Results go to benchmarks/results/soak_server.{json,md}.
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import random
import threading
import time
from pathlib import Path

from _serving_common import machine, rss_mib, tiny_model, toy_steps

from similar_rl.dimensions import SCORE_KEYS
from similar_rl.scoring import Scorer
from similar_rl.serving import RemoteScorer, RemoteScoringError, RewardServer

RESULTS = Path(__file__).parent / "results"
BAD_BODIES = [
    b"{oops",
    b'{"steps": [{"action": "noop()"}]}',
    b'{"steps": [{"instruction": "x", "action": 1}]}',
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--pool", type=int, default=64, help="distinct steps the clients draw from")
    parser.add_argument("--bad-every", type=int, default=10)
    parser.add_argument("--max-requests", type=int, default=200_000, help="hard cap on requests")
    args = parser.parse_args()

    model = tiny_model()
    pool = toy_steps(args.pool)
    reference = Scorer(model).score(pool)
    server = RewardServer(Scorer(model, cache_size=16), port=0, max_wait_ms=5, max_queue=512).start()
    lock = threading.Lock()
    counts = {
        "ok": 0,
        "steps": 0,
        "refused_4xx": 0,
        "overload_503": 0,
        "errors": 0,
        "mismatches": 0,
        "sent": 0,
    }
    error_samples: list[str] = []
    stop_at = time.monotonic() + args.duration

    def bump(key: str, n: int = 1) -> None:
        with lock:
            counts[key] += n

    def client(seed: int) -> None:
        rng = random.Random(seed)
        remote = RemoteScorer(server.url, max_retries=0)
        host, port = server.bind().server_address[:2]
        n = 0
        while time.monotonic() < stop_at and counts["sent"] < args.max_requests:
            n += 1
            bump("sent")
            if n % args.bad_every == 0:
                conn = http.client.HTTPConnection(host, port, timeout=30)
                conn.request("POST", "/score", body=rng.choice(BAD_BODIES))
                status = conn.getresponse().status
                conn.close()
                bump("refused_4xx" if 400 <= status < 500 else "errors")
                continue
            idx = [rng.randrange(len(pool)) for _ in range(rng.randint(1, 4))]
            try:
                scores = remote.score([pool[i] for i in idx])
            except RemoteScoringError as exc:
                bump("overload_503" if "503" in str(exc) else "errors")
                with lock:
                    if len(error_samples) < 5:
                        error_samples.append(str(exc))
                continue
            good = len(scores) == len(idx) and all(
                abs(s[k] - reference[i][k]) < 1e-5
                for s, i in zip(scores, idx, strict=True)
                for k in SCORE_KEYS
            )
            bump("ok")
            bump("steps", len(idx))
            if not good:
                bump("mismatches")

    # warm-up, then the memory baseline
    RemoteScorer(server.url).score(pool[:8])
    gc.collect()
    rss_start = rss_mib()
    samples = []
    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        time.sleep(1.0)
        samples.append(round(rss_mib(), 1))
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    gc.collect()
    rss_end = rss_mib()
    metrics = server.metrics()
    server.stop()
    lost = metrics["steps_requested"] - 8 - counts["steps"]  # 8: the warm-up request
    result = {
        "machine": machine(),
        "args": vars(args),
        "seconds": round(seconds, 1),
        **counts,
        "requests_per_s": round(counts["ok"] / seconds, 1),
        "rss_start_mib": round(rss_start, 1),
        "rss_end_mib": round(rss_end, 1),
        "rss_growth_mib": round(rss_end - rss_start, 1),
        "rss_max_mib": max(samples) if samples else None,
        "server_steps_minus_client_steps": lost,
        "server_latency_ms": metrics["latency_ms"],
        "server_batches": metrics["batches"],
        "server_mean_batch_steps": metrics["mean_batch_steps"],
        "server_responses": metrics["responses"],
        "error_samples": error_samples,
        "nothing_lost": lost == 0 and counts["mismatches"] == 0 and counts["errors"] == 0,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "soak_server.json").write_text(json.dumps(result, indent=2) + "\n")
    text = (
        f"Soak: {args.clients} clients x {result['seconds']} s on loopback. Machine: {result['machine']}\n\n"
        "| served | steps | req/s | 4xx (expected) | 503 | errors | mismatches | RSS start | RSS end | growth MiB "
        "| nothing lost |\n" + "|---" * 11 + "|\n"
        f"| {counts['ok']} | {counts['steps']} | {result['requests_per_s']} | {counts['refused_4xx']} "
        f"| {counts['overload_503']} | {counts['errors']} | {counts['mismatches']} | {result['rss_start_mib']} "
        f"| {result['rss_end_mib']} | {result['rss_growth_mib']} | {result['nothing_lost']} |\n"
    )
    (RESULTS / "soak_server.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
