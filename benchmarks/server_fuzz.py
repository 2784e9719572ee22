"""Bounded fuzz run of the reward server on loopback: random and hostile requests, counted by outcome.

``--requests`` requests (default 2000) from ``--clients`` threads hit a :class:`RewardServer` on 127.0.0.1
that scores with the tiny default-backbone model. Each request is drawn from a fixed mix, seeded:

- valid requests (1-4 toy steps, some with an inline screenshot);
- random JSON (any code point, lone surrogates included) and random bytes;
- hostile bodies: 5000-digit integers, 50 000 levels of nesting, ``NaN``, a lone surrogate in each text field,
  a bad ``Content-Length``, a path outside the root, many distinct large inline screenshots (over the pixel cap),
  one screenshot repeated in every step, a header trickled byte by byte past the request deadline, a body
  shorter than its ``Content-Length``.

It reports the count per status, 5xx answers, dropped connections (closed without any answer when an answer was
due), and the peak resident memory of the process against the documented worst case (288 MiB per request, plus
the model and the process at start).

    .venv/bin/python benchmarks/server_fuzz.py --requests 2000 --clients 8
Results go to benchmarks/results/server_fuzz.{json,md}.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import random
import resource
import socket
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
from _serving_common import machine, rss_mib, tiny_model, toy_steps

RESULTS = Path(__file__).parent / "results"
#: the documented worst case of one request (server module docstring), MiB
PER_REQUEST_MIB = 288


def _png(side: int, seed: int) -> str:
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 255, (side, side, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", compress_level=1)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _solid_png(side: int, shade: int) -> str:
    """A side x side PNG of one colour: a few KiB of body that decodes to side**2 pixels."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (side, side), (shade, 255 - shade, 7)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _random_json(rng: random.Random, depth: int = 0):
    kind = rng.randrange(7 if depth < 3 else 4)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False, 0, -1, 2**70, 3.5e300])
    if kind in (2, 3):
        return "".join(chr(rng.randrange(0x110000)) for _ in range(rng.randrange(12)))
    if kind == 4:
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["instruction", "action", "history", "observation_text", "screenshot", "screenshot_index", "x"]
    return {rng.choice(keys): _random_json(rng, depth + 1) for _ in range(rng.randrange(5))}


def _request(method: str, body: bytes, length: str | None = None) -> bytes:
    head = (
        f"{method} /score HTTP/1.1\r\nHost: fuzz\r\nContent-Type: application/json\r\nConnection: close\r\n"
    )
    head += f"Content-Length: {len(body) if length is None else length}\r\n\r\n"
    return head.encode("utf-8") + body  # non-ASCII header bytes are hostile input too


class Cases:
    """Builds request bytes by case name (the steps and large images are made once)."""

    def __init__(self, steps, big: list[str], small: str) -> None:
        from similar_rl.serving.schema import encode_request

        self.valid = [
            json.dumps(encode_request(steps[i : i + k])).encode() for i in range(0, 40, 4) for k in (1, 4)
        ]
        self.big = big
        self.small = small

    def build(self, case: str, rng: random.Random) -> tuple[bytes, bool]:
        """(raw request bytes, whether an HTTP answer is due)."""
        step = {"instruction": "Click OK", "action": "click(ref=1)"}
        if case == "valid":
            return _request("POST", rng.choice(self.valid)), True
        if case == "random_json":
            body = json.dumps({"steps": [_random_json(rng) for _ in range(rng.randrange(3))]}).encode()
            return _request("POST", body), True
        if case == "random_bytes":
            return _request("POST", bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))), True
        if case == "huge_int":
            body = b'{"steps": [{"instruction": "x", "action": "a", "history": [' + b"9" * 5000 + b"]}]}"
            return _request("POST", body), True
        if case == "deep":
            return _request("POST", b'{"steps": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"), True
        if case == "nan":
            return _request("POST", b'{"steps": [], "images": [NaN]}'), True
        if case == "surrogate":
            field = rng.choice(["instruction", "action", "observation_text"])
            body = json.dumps({"steps": [{**step, field: "\ud800"}]}).encode()  # json escapes it: \ud800
            return _request("POST", body), True
        if case == "bad_length":
            return _request("POST", b"{}", length=rng.choice(["+2", "0x2", "2_0", "-1", "\u0662"])), True
        if case == "path_outside":
            return _request(
                "POST", json.dumps({"steps": [{**step, "screenshot_path": "../../etc/passwd"}]}).encode()
            ), True
        if case == "pixel_bomb":
            body = json.dumps({"steps": [{**step, "screenshot": img} for img in self.big]}).encode()
            return _request("POST", body), True
        if case == "repeated_image":
            body = json.dumps({"steps": [{**step, "screenshot": self.small}] * 60}).encode()
            return _request("POST", body), True
        if case == "short_body":
            return _request(
                "POST", b'{"steps": []', length="500"
            ), False  # the server may close at its deadline
        raise ValueError(case)


CASES = {
    "valid": 30,
    "random_json": 20,
    "random_bytes": 10,
    "huge_int": 5,
    "deep": 3,
    "nan": 5,
    "surrogate": 8,
    "bad_length": 5,
    "path_outside": 4,
    "pixel_bomb": 2,
    "repeated_image": 3,
    "short_body": 2,
}


def send(host: str, port: int, raw: bytes, timeout: float) -> int | None:
    """Status code of the answer, or None when the connection closed without one."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):  # the server may refuse early (413 from the header) and close
            sock.sendall(raw)
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    if not data.startswith(b"HTTP/1."):
        return None
    return int(data.split(b" ", 2)[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--trickles", type=int, default=4, help="clients that trickle a header past the deadline"
    )
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    from similar_rl.scoring import Scorer
    from similar_rl.serving import RewardServer

    rss_start = rss_mib()
    model = tiny_model()
    steps = toy_steps(48)
    cases = Cases(steps, big=[_solid_png(4096, 40 * i) for i in range(4)], small=_png(160, 99))
    rss_ready = rss_mib()
    server = RewardServer(Scorer(model), port=0, request_deadline_s=2.0, socket_timeout_s=2.0).start()
    host, port = server.bind().server_address[:2]
    rng = random.Random(args.seed)
    names = list(CASES)
    plan = rng.choices(names, weights=[CASES[n] for n in names], k=args.requests)
    lock = threading.Lock()
    statuses: dict[str, Counter] = {n: Counter() for n in names}
    dropped: Counter = Counter()
    peak = [rss_ready]
    index = [0]

    def client(worker: int) -> None:
        local = random.Random(args.seed * 1000 + worker)
        while True:
            with lock:
                if index[0] >= len(plan):
                    return
                case = plan[index[0]]
                index[0] += 1
            raw, answer_due = cases.build(case, local)
            status = send(host, port, raw, timeout=30)
            with lock:
                statuses[case][status if status is not None else "no answer"] += 1
                if status is None and answer_due:
                    dropped[case] += 1
                peak[0] = max(peak[0], rss_mib())

    def trickler() -> None:  # a byte every 0.2 s: the deadline must close it
        with socket.create_connection((host, port), timeout=30) as sock:
            for byte in b"POST /score HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 300:
                try:
                    sock.sendall(bytes([byte]))
                except OSError:
                    with lock:
                        statuses.setdefault("trickle", Counter())["closed by the server"] += 1
                    return
                time.sleep(0.2)
            with lock:
                statuses.setdefault("trickle", Counter())["held to the end"] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    threads += [threading.Thread(target=trickler) for _ in range(args.trickles)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    metrics = server.metrics()
    server.stop()
    peak_kernel = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    five_xx = sum(n for c in statuses.values() for s, n in c.items() if isinstance(s, int) and s >= 500)
    over_503 = sum(c.get(503, 0) for c in statuses.values())  # 503 = overloaded, the documented refusal
    cap = rss_ready + PER_REQUEST_MIB * args.clients
    result = {
        "requests": args.requests,
        "clients": args.clients,
        "seconds": round(seconds, 1),
        "statuses": {k: {str(s): n for s, n in sorted(v.items(), key=str)} for k, v in statuses.items()},
        "five_xx": five_xx,
        "five_xx_without_503": five_xx - over_503,
        "dropped_connections": sum(dropped.values()),
        "rss_mib": {
            "start": round(rss_start, 1),
            "model_ready": round(rss_ready, 1),
            "peak_sampled": round(peak[0], 1),
        },
        "peak_rss_mib_kernel": round(peak_kernel, 1),
        "documented_cap_mib": round(cap, 1),
        "under_cap": peak_kernel <= cap,
        "server_metrics": {k: metrics[k] for k in ("requests", "responses", "batches", "scoring_failures")},
        "machine": machine(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "server_fuzz.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Reward server fuzz run (loopback)",
        "",
        f"{args.requests} requests from {args.clients} clients plus {args.trickles} tricklers in {seconds:.0f} s "
        "(`benchmarks/server_fuzz.py`).",
        "",
        f"- 5xx answers: **{five_xx}** (of them 503 overloaded: {over_503}); dropped connections: "
        f"**{result['dropped_connections']}**",
        f"- peak RSS {peak_kernel:.0f} MiB (model loaded: {rss_ready:.0f} MiB); documented cap "
        f"{cap:.0f} MiB = loaded + {PER_REQUEST_MIB} MiB x {args.clients} concurrent requests: "
        f"{'under' if result['under_cap'] else 'OVER'}",
        "",
        "| case | answers |",
        "|---|---|",
    ]
    for case, counts in statuses.items():
        lines.append(
            f"| {case} | " + ", ".join(f"{s}: {n}" for s, n in sorted(counts.items(), key=str)) + " |"
        )
    (RESULTS / "server_fuzz.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
