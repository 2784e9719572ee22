"""The HTTP reward server on the real tiny default-backbone model: batching, equality with in-process scoring,
limits, bad input (400/401/403/413/503/504), slow clients, the client as a drop-in scorer. Loopback only."""

import base64
import http.client
import io
import json
import select
import socket
import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from trl_helpers import build_reward_model

from similar_rl import SCORE_KEYS, StepInput
from similar_rl.envs import make_env
from similar_rl.rewards import similar_reward_funcs
from similar_rl.scoring import Scorer
from similar_rl.serving import RemoteScorer, RemoteScoringError, RequestError, RewardServer
from similar_rl.serving.schema import encode_png, encode_request, parse_request
from similar_rl.wrappers import SimilarRewardWrapper


@pytest.fixture(scope="module")
def model():
    return build_reward_model()


@pytest.fixture(scope="module")
def steps():
    """Candidates of three toy states (with screenshots), 12 distinct steps."""
    out = []
    for env_id in ("toy/login-form", "toy/click-button", "toy/open-tab"):
        env, adapter = make_env(env_id)
        state, _ = adapter.reset(env, seed=1)
        out += [state.step_input(a, ["noop()"]) for a in adapter.candidates(state)[:4]]
    assert len({s.key for s in out}) == len(out) == 12
    return out


@pytest.fixture
def serve(model):
    """Start servers on 127.0.0.1 (any free port); all are stopped after the test."""
    servers = []

    def start(scorer=None, **overrides):
        overrides.setdefault("port", 0)
        server = RewardServer(
            scorer if scorer is not None else Scorer(model, cache_size=0), **overrides
        ).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def _post(server, body: bytes, headers=None):
    host, port = server.bind().server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request(
            "POST", "/score", body=body, headers={"Content-Type": "application/json", **(headers or {})}
        )
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def _close(a, b):
    return all(abs(x[k] - y[k]) < 1e-5 for x, y in zip(a, b, strict=True) for k in SCORE_KEYS)


def test_concurrent_requests_are_batched_and_equal_in_process_scores(model, steps, serve):
    server = serve(max_wait_ms=200, max_batch=64)
    expected = Scorer(model, cache_size=0).score(steps)
    results: dict[int, list] = {}
    barrier = threading.Barrier(len(steps))

    def client(i):
        scorer = RemoteScorer(server.url, timeout=60)
        barrier.wait()
        results[i] = scorer.score([steps[i]])

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(steps))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == list(range(len(steps)))
    assert _close([results[i][0] for i in range(len(steps))], expected)
    metrics = RemoteScorer(server.url).metrics()
    assert metrics["steps_requested"] == len(steps)  # the 200s of /score (/metrics adds one more)
    assert metrics["batches"] < len(steps) and metrics["forwards"] < len(steps)  # batched across requests
    assert metrics["max_batch_steps"] > 1 and metrics["queue_depth"] == 0
    assert metrics["latency_ms"]["p50"] > 0 and metrics["latency_ms"]["p99"] >= metrics["latency_ms"]["p50"]


def test_remote_scorer_is_a_drop_in_for_reward_funcs_and_wrapper(model, steps, serve):
    server = serve(max_wait_ms=1)
    remote = RemoteScorer(server.url, max_steps_per_request=5)  # 12 steps -> 3 requests
    assert _close(remote.score(steps), Scorer(model).score(steps)) and remote.requests == 3
    funcs = similar_reward_funcs(remote, dimensions=("helpfulness",))
    kwargs = {"prompts": ["Instruction: Log in"] * 2, "completions": ["click(ref=1)", "not an action"]}
    local = similar_reward_funcs(Scorer(model), dimensions=("helpfulness",))
    for f, g in zip(funcs, local, strict=True):
        got, want = f(**kwargs), g(**kwargs)
        assert got[1] == want[1] == -1.0 and abs(got[0] - want[0]) < 1e-5
    env, adapter = make_env("toy/login-form")
    wrapped = SimilarRewardWrapper(env, remote, adapter)
    wrapped.reset(seed=0)
    _, _, _, _, info = wrapped.step("noop()")
    ref_env, _ = make_env("toy/login-form")
    ref = SimilarRewardWrapper(ref_env, Scorer(model), adapter)
    ref.reset(seed=0)
    _, _, _, _, ref_info = ref.step("noop()")
    assert _close([info["similar"]], [ref_info["similar"]])


def test_screenshots_by_base64_index_and_path_give_the_same_scores(steps, serve, tmp_path):
    server = serve(allowed_root=str(tmp_path))
    step = steps[0]
    buf = io.BytesIO()
    Image.fromarray(step.screenshot).save(buf, format="PNG")
    (tmp_path / "shot.png").write_bytes(buf.getvalue())
    base = {"instruction": step.instruction, "action": step.action, "history": list(step.history),
            "observation_text": step.observation_text}  # fmt: skip
    bodies = [
        {"steps": [{**base, "screenshot": encode_png(step.screenshot)}]},
        {"steps": [{**base, "screenshot_index": 0}], "images": [encode_png(step.screenshot)]},
        {"steps": [{**base, "screenshot_path": "shot.png"}]},
        {"steps": [{**base, "screenshot_path": str(tmp_path / "shot.png")}]},
    ]
    answers = [_post(server, json.dumps(b).encode()) for b in bodies]
    assert [a[0] for a in answers] == [200] * 4
    assert all(a[1]["scores"] == answers[0][1]["scores"] for a in answers)
    # one image is sent once for all candidates of a state
    request = encode_request(steps[:4])
    assert len(request["images"]) == 1 and {s["screenshot_index"] for s in request["steps"]} == {0}


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b"{not json", 400, "not valid UTF-8 JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b'{"steps": [{"action": "noop()"}]}', 400, "steps[0].instruction is missing"),
        (b'{"steps": [{"instruction": "x"}]}', 400, "steps[0].action is missing"),
        (b'{"steps": [{"instruction": "x", "action": 3}]}', 400, "steps[0].action must be a string"),
        (b'{"steps": [{"instruction": "x", "action": "a", "history": [1]}]}', 400, "steps[0].history[0]"),
        (
            b'{"steps": [{"instruction": " ", "action": "a"}]}',
            400,
            "steps[0].instruction must be a non-empty",
        ),
        (b'{"steps": [{"instruction": "x", "action": "a", "colour": 1}]}', 400, "unknown key(s) ['colour']"),
        (b'{"steps": [{"instruction": "x", "action": "a", "screenshot": "@@@"}]}', 400, "not valid base64"),
        (
            b'{"steps": [{"instruction": "x", "action": "a", "screenshot": "aGVsbG8="}]}',
            400,
            "not a readable PNG",
        ),
        (b'{"steps": [{"instruction": "x", "action": "a", "screenshot_index": 0}]}', 400, "screenshot_index"),
        (
            b'{"steps": [{"instruction": "x", "action": "a", "screenshot_path": "a.png"}]}',
            403,
            "no file paths",
        ),
        (b'{"stepz": []}', 400, "unknown key(s) ['stepz']"),
    ],
)
def test_bad_requests_get_4xx_naming_the_field(serve, body, status, needle):
    server = serve()
    got, answer = _post(server, body)
    assert got == status and needle in answer["error"], answer


def test_huge_png_dimensions_are_refused_before_decoding(serve):
    server = serve()
    buf = io.BytesIO()
    Image.new("L", (5000, 1)).save(buf, format="PNG")  # tiny file, too wide
    body = {
        "steps": [
            {"instruction": "x", "action": "a", "screenshot": base64.b64encode(buf.getvalue()).decode()}
        ]
    }
    status, answer = _post(server, json.dumps(body).encode())
    assert status == 413 and "5000x1" in answer["error"]


def test_paths_outside_the_allowed_root_are_forbidden(serve, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "secret.png"
    Image.new("RGB", (4, 4)).save(outside)
    (root / "link.png").symlink_to(outside)
    server = serve(allowed_root=str(root))
    for path in ("../secret.png", str(outside), "link.png"):
        body = {"steps": [{"instruction": "x", "action": "a", "screenshot_path": path}]}
        status, answer = _post(server, json.dumps(body).encode())
        assert status == 403 and "outside" in answer["error"], path
    body = {"steps": [{"instruction": "x", "action": "a", "screenshot_path": "missing.png"}]}
    assert _post(server, json.dumps(body).encode())[0] == 400


def test_oversized_body_is_refused_from_its_header(serve):
    server = serve(max_body_bytes=1000)
    host, port = server.bind().server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.putrequest("POST", "/score")
    conn.putheader("Content-Length", str(10**9))
    conn.endheaders()  # the body is never sent: the server answers from the header
    response = conn.getresponse()
    assert response.status == 413 and "at most 1000" in json.loads(response.read())["error"]
    conn.close()
    too_many = RemoteScorer(serve(max_steps_per_request=2).url, max_steps_per_request=3)
    with pytest.raises(RemoteScoringError, match="413"):
        too_many.score([StepInput("x", f"click(ref={i})") for i in range(3)])


def test_token_is_required_when_set(steps, serve):
    server = serve(token="s3cret")
    with pytest.raises(RemoteScoringError) as err:
        RemoteScorer(server.url).score(steps[:1])
    assert err.value.status == 401
    with pytest.raises(RemoteScoringError) as err:
        RemoteScorer(server.url, token="wrong").metrics()
    assert err.value.status == 401
    assert RemoteScorer(server.url).health()["status"] == "ok"  # health stays open
    assert len(RemoteScorer(server.url, token="s3cret").score(steps[:1])) == 1


def test_full_queue_answers_503_and_late_answers_504(steps, serve):
    # max_wait 3 s: the first request sits in the queue, the second does not fit
    server = serve(max_queue=2, max_wait_ms=3000)
    first: list = []
    t = threading.Thread(target=lambda: first.append(RemoteScorer(server.url).score(steps[:2])))
    t.start()
    deadline = time.monotonic() + 10
    while server.batcher.queue_depth < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    body = json.dumps(encode_request(steps[2:3])).encode()
    status, answer = _post(server, body)
    assert status == 503 and "overloaded" in answer["error"]
    with pytest.raises(RemoteScoringError) as err:
        RemoteScorer(server.url, max_retries=1).score(steps[2:3])  # retried once, then gives up
    assert err.value.status == 0 and "503" in str(err.value)
    t.join(30)
    assert len(first[0]) == 2  # the queued request was still served
    slow = serve(max_wait_ms=3000, request_timeout_s=0.2)
    status, answer = _post(slow, body)
    assert status == 504 and "timed out" in answer["error"]
    assert slow.batcher.queue_depth == 0  # the timed-out request left the queue


def test_a_slow_client_does_not_block_others_and_is_cut_off(steps, serve):
    server = serve(socket_timeout_s=1.0, max_wait_ms=1)
    host, port = server.bind().server_address[:2]
    slow = socket.create_connection((host, port), timeout=10)
    slow.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n{")  # then stalls
    assert len(RemoteScorer(server.url).score(steps[:1])) == 1  # others are served meanwhile...
    assert select.select([slow], [], [], 0)[0] == []  # ...while the stalled request is still unanswered
    reply = slow.recv(4096)  # the server gives up on the stalled body after socket_timeout_s
    assert reply == b"" or b"408" in reply
    slow.close()
    assert RemoteScorer(server.url).metrics()["responses"].get("200", 0) >= 1


def test_metrics_health_and_unknown_routes(serve):
    server = serve()
    client = RemoteScorer(server.url)
    assert client.health()["status"] == "ok"
    metrics = client.metrics()
    for key in ("requests", "batches", "forwards", "queue_depth", "latency_ms", "cache_hits", "responses"):
        assert key in metrics
    assert "token" not in metrics["config"]
    with pytest.raises(RemoteScoringError) as err:
        client._request("GET", "/nope")
    assert err.value.status == 404


def test_remote_scorer_pickles_and_validates():
    import pickle

    scorer = RemoteScorer("http://127.0.0.1:1", token="t", timeout=0.5, max_retries=0)
    clone = pickle.loads(pickle.dumps(scorer))
    assert clone.url == scorer.url and clone.token == "t"
    with pytest.raises(RemoteScoringError, match="no answer"):
        clone.score([StepInput("x", "noop()")])  # nothing listens on port 1
    with pytest.raises(ValueError, match="url must look like"):
        RemoteScorer("127.0.0.1:8765")
    with pytest.raises(TypeError, match=r"steps\[0\]"):
        scorer.score(["noop()"])


# -- property tests: random JSON never crashes the parser or the server ------------------------------------------
#: any code point, lone surrogates included (hypothesis leaves them out by default)
any_text = st.text(st.characters(exclude_categories=()), max_size=20)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=12,
)
field_names = st.sampled_from(
    [
        "instruction",
        "action",
        "history",
        "observation_text",
        "screenshot",
        "screenshot_index",
        "screenshot_path",
    ]
)
step_like = st.dictionaries(field_names, json_values | any_text, max_size=7)
request_like = (
    st.fixed_dictionaries({"steps": st.lists(step_like, max_size=3)}, optional={"images": json_values})
    | json_values
)


@settings(max_examples=100, deadline=None)
@given(request_like)
def test_schema_raises_only_request_errors(data):
    try:
        parsed = parse_request(json.dumps(data))
    except RequestError as exc:
        assert 400 <= exc.status < 500 and exc.message
    else:
        assert all(isinstance(s, StepInput) for s in parsed)


@pytest.fixture(scope="module")
def shared_server(model, tmp_path_factory):
    server = RewardServer(Scorer(model), port=0, allowed_root=str(tmp_path_factory.mktemp("root"))).start()
    yield server
    server.stop()


#: bodies json.dumps cannot make: integer literals past Python's digit limit, deep nesting, bare constants
hostile_bodies = st.one_of(
    st.integers(4000, 6000).map(
        lambda n: b'{"steps": [{"instruction": "x", "action": "a", "history": [%s]}]}' % (b"7" * n)
    ),
    st.integers(500, 50_000).map(lambda d: b'{"steps": %s}' % (b"[" * d + b"]" * d)),
    st.sampled_from(
        [b"NaN", b'{"steps": [], "images": [Infinity]}', b'{"steps": [{"instruction": "\\ud800"}]}']
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=request_like | hostile_bodies | st.binary(max_size=64))
def test_random_bodies_get_only_200_or_4xx(shared_server, body):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, answer = _post(shared_server, raw)
    assert status == 200 or 400 <= status < 500, answer
    if status != 200:
        assert answer["error"]


def test_png_round_trip_is_lossless():
    image = np.random.default_rng(0).integers(0, 255, (7, 9, 3), dtype=np.uint8)
    steps = parse_request(json.dumps(encode_request([StepInput("x", "noop()", screenshot=image)])))
    assert np.array_equal(steps[0].screenshot, image)


def test_serve_command_refuses_bad_setup(tmp_path, monkeypatch, capsys):
    from similar_rl.cli import main

    monkeypatch.delenv("NO_SUCH_TOKEN_VAR", raising=False)
    assert main(["serve", "--model", str(tmp_path), "--token-env", "NO_SUCH_TOKEN_VAR"]) == 2
    assert "NO_SUCH_TOKEN_VAR is unset" in capsys.readouterr().err
    assert main(["serve", "--model", str(tmp_path / "missing"), "--port", "0"]) == 2
    assert "similar-rl serve:" in capsys.readouterr().err


# -- hostile requests -----------------------------------------------------------------------------------------------
def _raw(server, data: bytes, read_timeout: float = 10.0) -> bytes:
    """Send raw bytes on a fresh connection and return what comes back before the server closes it."""
    host, port = server.bind().server_address[:2]
    with socket.create_connection((host, port), timeout=read_timeout) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
        return b"".join(chunks)


@pytest.mark.parametrize(
    "step, field",
    [
        ('{"instruction": "\\ud800", "action": "a"}', "steps[0].instruction"),
        ('{"instruction": "x", "action": "a\\udfff"}', "steps[0].action"),
        ('{"instruction": "x", "action": "a", "history": ["ok", "\\ud800"]}', "steps[0].history[1]"),
        ('{"instruction": "x", "action": "a", "observation_text": "\\udc00"}', "steps[0].observation_text"),
        ('{"instruction": "x", "action": "a", "screenshot_path": "\\ud800.png"}', "steps[0].screenshot_path"),
    ],
)
def test_lone_surrogates_get_400_naming_the_field(serve, tmp_path, step, field):
    server = serve(allowed_root=str(tmp_path))
    status, answer = _post(server, f'{{"steps": [{step}]}}'.encode())
    assert status == 400 and field in answer["error"] and "surrogate" in answer["error"], answer
    assert server.batcher.failures == 0 and server.batcher.batches == 0  # refused before the model


def test_a_bad_request_among_good_ones_costs_no_extra_model_call(steps, serve):
    server = serve(max_wait_ms=500)
    good = json.dumps(encode_request(steps[:1])).encode()
    bad = b'{"steps": [{"instruction": "\\ud800", "action": "a"}]}'
    results: list = []
    threads = [
        threading.Thread(target=lambda b=b: results.append(_post(server, b)[0])) for b in [bad] + [good] * 7
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == [200] * 7 + [400]
    assert server.batcher.failures == 0 and server.batcher.steps == 7


@pytest.mark.parametrize(
    "body",
    [
        b'{"steps": [{"instruction": "x", "action": "a", "history": [' + b"9" * 5000 + b"]}]}",
        b'{"steps": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}",
        b'{"steps": [], "images": [NaN, -Infinity]}',
        b"\xff\xfe{}",
    ],
)
def test_json_the_parser_rejects_gets_400_not_a_dropped_connection(serve, body):
    status, answer = _post(serve(), body)
    assert status == 400 and answer["error"], answer


def test_an_unexpected_error_is_a_json_500(serve, monkeypatch):
    import similar_rl.serving.server as server_module

    def broken(*args, **kwargs):
        raise KeyError("a bug")

    server = serve()
    monkeypatch.setattr(server_module, "parse_request", broken)
    status, answer = _post(server, b'{"steps": []}')
    assert status == 500 and "internal" in answer["error"]


def _png_b64(size: int, seed: int) -> str:
    image = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    return encode_png(image)


def test_decoded_pixels_are_capped_per_request_and_repeats_decoded_once(serve):
    server = serve(max_pixels_per_request=100 * 100)
    same = _png_b64(80, 0)
    repeated = {"steps": [{"instruction": "x", "action": "a", "screenshot": same} for _ in range(60)]}
    status, answer = _post(server, json.dumps(repeated).encode())
    assert status == 200 and len(answer["scores"]) == 60  # 60 copies of one image: 6400 pixels
    distinct = {
        "steps": [{"instruction": "x", "action": "a", "screenshot": _png_b64(80, i)} for i in range(2)]
    }
    status, answer = _post(server, json.dumps(distinct).encode())
    assert status == 413 and "steps[1].screenshot" in answer["error"] and "10000" in answer["error"]
    by_index = {"images": [same], "steps": [{"instruction": "x", "action": "a", "screenshot_index": 0}] * 3}
    assert _post(server, json.dumps(by_index).encode())[0] == 200


def test_a_trickling_client_is_cut_off_at_the_request_deadline(serve):
    server = serve(socket_timeout_s=1.0, request_deadline_s=1.5)
    host, port = server.bind().server_address[:2]
    header = b"POST /score HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 200 + b"\r\n"
    cut_at = None
    with socket.create_connection((host, port), timeout=5) as sock:
        for i in range(len(header)):  # one byte every 0.1 s: 21 s for the whole header, far past the deadline
            try:
                sock.sendall(header[i : i + 1])
            except OSError:
                cut_at = i
                break
            ready = select.select([sock], [], [], 0.1)[0]
            if ready and sock.recv(4096) == b"":
                cut_at = i
                break
    assert cut_at is not None and cut_at < len(header) // 2, cut_at


def test_open_connections_are_capped_with_503(steps, serve):
    server = serve(max_connections=3, socket_timeout_s=30, request_deadline_s=30)
    host, port = server.bind().server_address[:2]
    idle = [socket.create_connection((host, port), timeout=10) for _ in range(3)]
    try:
        deadline = time.monotonic() + 10
        while server._httpd.open_connections < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        reply = _raw(server, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 503") and b"too many open connections" in reply
        threads_before = threading.active_count()
        for _ in range(50):
            _raw(server, b"")
        assert threading.active_count() <= threads_before + 1  # refused at accept, no thread each
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + 10
    while server._httpd.open_connections > 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(RemoteScorer(server.url).score(steps[:1])) == 1


@pytest.mark.parametrize("name", ["socket_timeout_s", "request_deadline_s"])
def test_a_zero_timeout_is_refused(name):
    from similar_rl.serving.server import ServerConfig

    with pytest.raises(ValueError, match=f"{name} must be > 0"):
        ServerConfig(**{name: 0})


def test_health_reports_a_dead_batcher(serve):
    server = serve()
    assert RemoteScorer(server.url).health()["status"] == "ok"
    server.batcher.stop()  # the thread is gone: nothing would ever be scored
    reply = _raw(server, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 503") and b"unhealthy" in reply


@pytest.mark.parametrize("length", ["+2", " 0x2", "2_0", "\u0662", "-1"])
def test_content_length_must_be_plain_digits(serve, length):
    request = f"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n{{}}".encode()
    reply = _raw(serve(), request)
    assert reply.startswith(b"HTTP/1.1 400") and b"plain digits" in reply


def test_ipv6_loopback_binds_or_is_refused_clearly(model):
    server = RewardServer(Scorer(model), host="::1", port=0)
    try:
        server.start()
    except OSError as exc:
        assert "IPv6" in str(exc)
        return
    try:
        assert server.url.startswith("http://[::1]:")
        assert RemoteScorer(server.url).health()["status"] == "ok"
    finally:
        server.stop()


def test_open_metrics_expose_no_paths(serve, tmp_path):
    server = serve(allowed_root=str(tmp_path))
    metrics = RemoteScorer(server.url).metrics()
    assert str(tmp_path) not in json.dumps(metrics) and metrics["config"]["allowed_root"] is True
