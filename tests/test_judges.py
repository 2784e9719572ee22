"""Judges: the rule judge (synthetic states and the toy env), the OpenAI-compatible judge against a real local
HTTP server (good answers, garbage, timeouts, HTTP errors), and the local transformers judge with a tiny random
model (garbage in, recorded failure out)."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from similar_rl.collect.judges import JUDGES, make_judge, register_judge
from similar_rl.collect.judges.prompt import VerdictParseError, build_user_prompt, parse_verdicts
from similar_rl.collect.judges.rule import RuleJudge, content_words, element_at
from similar_rl.types import Element, GUIState, Judge, JudgeVerdict

# ---------------------------------------------------------------------------------------------------------------
# rule judge


def form_state(
    instruction: str = 'Enter "bob" as the username and tick "mango", then click Login.',
) -> GUIState:
    return GUIState(
        instruction,
        elements=(
            Element(1, "form", "", left=0, top=0, width=160, height=160),
            Element(2, "label", "Username", left=5, top=5, width=50, height=15, clickable=False),
            Element(3, "input_text", "", left=60, top=5, width=90, height=15, typeable=True),
            Element(4, "input_text", "", left=60, top=25, width=90, height=15, typeable=True),
            Element(5, "input_checkbox", "mango", left=5, top=45, width=60, height=15),
            Element(6, "input_checkbox", "apple", left=5, top=65, width=60, height=15),
            Element(7, "button", "Login", left=5, top=90, width=40, height=20),
            Element(8, "button", "Cancel", left=50, top=90, width=40, height=20),
            Element(9, "input_radio", "", left=100, top=90, width=10, height=10),
            Element(
                10, "div", "", left=200, top=0, width=30, height=30
            ),  # a colour swatch: no text, holds nothing
        ),
    )


def verdict(state, action, history=()):
    (v,) = RuleJudge().judge(state, list(history), [action])
    assert v.error is None and v.reason
    return v.task_relevance, v.coherence


@pytest.mark.parametrize(
    ("action", "relevant"),
    [
        ("noop()", 0.0),
        ("click(ref=99)", 0.0),  # not on the screen
        ("click(ref=1)", 0.0),  # a container
        ("click(ref=2)", 0.0),  # a static label
        ("click_xy(x=155, y=150)", 0.0),  # only the form is there: blank space
        ("click_xy(x=300, y=300)", 0.0),  # hits nothing
        ("click(ref=6)", 0.0),  # "apple" is unrelated while the instruction names "mango"
        ("click(ref=8)", 0.0),  # Cancel: the instruction names its own control (Login)
        ('type(ref=3, text="")', 0.0),
        ('type(ref=8, text="bob")', 0.0),  # a button unrelated to the task is not a text field
        ("click(ref=3)", 1.0),  # focusing a text field
        ('type(ref=3, text="bob")', 1.0),
        ('type(ref=4, text="zzz")', 1.0),  # wrong content is helpfulness' business, not relevance
        ("click(ref=5)", 1.0),
        ("click_xy(x=20, y=50)", 1.0),  # on the "mango" checkbox
        ("click(ref=7)", 1.0),
        ("click(ref=9)", 1.0),  # no text: the rule cannot tell
        ("click(ref=10)", 1.0),  # text-less swatch holding nothing is not blank space
        ('press(key="Enter")', 1.0),
    ],
)
def test_rule_relevance(action, relevant):
    assert verdict(form_state(), action)[0] == relevant


def test_rule_generic_controls_and_nothing_named():
    # the instruction names no control, so a generic "Submit" stays relevant; an unrelated word does not
    state = GUIState(
        'Select "mango".',
        elements=(Element(1, "span", "mango"), Element(2, "button", "Submit"), Element(3, "span", "apple")),
    )
    assert [verdict(state, f"click(ref={i})")[0] for i in (1, 2, 3)] == [1.0, 1.0, 0.0]
    # nothing on the screen matches the instruction: no element can be called unrelated
    state = GUIState(
        "Find the cheapest flight", elements=(Element(1, "button", "Paris"), Element(2, "a", "Rome"))
    )
    assert verdict(state, "click(ref=1)")[0] == 1.0


@pytest.mark.parametrize(
    ("history", "action", "coherent"),
    [
        ([], "noop()", 1.0),  # first step
        (["noop()"], "noop()", 0.0),
        (['type(ref=3, text="bob")'], 'type(ref=3, text="bob")', 0.0),
        (["click(ref=5)"], "click(ref=5)", 0.0),  # ticks the box back
        (["click(ref=5)"], "click_xy(x=20, y=50)", 1.0),  # different spelling is not judged a repeat
        (["click(ref=9)"], "click(ref=9)", 0.0),  # radio: no effect
        (["click(ref=7)"], "click(ref=7)", 1.0),  # a button may need several clicks
        (['type(ref=3, text="bob")'], 'type(ref=3, text="")', 0.0),  # undo
        (["click(ref=3)"], 'type(ref=4, text="bob")', 0.0),  # focused 3, types into 4
        (["click(ref=3)"], 'type(ref=3, text="bob")', 1.0),
        (['type(ref=3, text="bob")'], 'type(ref=4, text="x")', 1.0),
        (["not an action"], "click(ref=7)", 1.0),
    ],
)
def test_rule_coherence(history, action, coherent):
    assert verdict(form_state(), action, history)[1] == coherent


def test_rule_malformed_candidate_and_helpers():
    assert verdict(form_state(), "click(3)") == (0.0, 0.0)
    assert sorted(content_words('Click the "Cancel" button, then OK!')) == ["cancel", "ok"]
    assert element_at(form_state(), 20, 50).ref == 5
    assert element_at(form_state(), 500, 500) is None


def test_rule_judge_on_the_toy_env():
    from similar_rl.envs import make_env

    judge = make_judge("rule")
    env, adapter = make_env("toy/login-form")
    state, _ = adapter.reset(env, seed=0)
    history: list[str] = []
    for action in ['type(ref=2, text="mallory")', 'type(ref=4, text="sjkbc")', "click(ref=5)"]:
        cands = adapter.candidates(state)
        verdicts = judge.judge(state, history, cands)
        assert len(verdicts) == len(cands)
        assert all(v.task_relevance in (0.0, 1.0) and v.coherence in (0.0, 1.0) for v in verdicts)
        (v,) = judge.judge(state, history, [action])
        assert (v.task_relevance, v.coherence) == (1.0, 1.0), (
            v.reason
        )  # the solution path is relevant and coherent
        assert judge.judge(state, history, ["click(ref=6)"])[0].task_relevance == 0.0  # Cancel
        # a click at an element's centre is judged like a click on its ref
        for el in state.elements:
            x, y = el.center
            by_ref = judge.judge(state, [], [f"click(ref={el.ref})"])[0]
            by_xy = judge.judge(state, [], [f"click_xy(x={x:g}, y={y:g})"])[0]
            assert by_ref.task_relevance == by_xy.task_relevance
        outcome = adapter.step(env, action)
        history.append(action)
        state = outcome.state
    assert outcome.success
    env, adapter = make_env("toy/checkboxes")
    state, _ = adapter.reset(env, seed=1)  # 'Select "mango" and nothing else, then click Submit.'
    labels = {
        el.text: judge.judge(state, [], [f"click(ref={el.ref})"])[0].task_relevance for el in state.elements
    }
    assert labels["mango"] == 1.0 and labels["Submit"] == 1.0 and labels["apple"] == 0.0
    assert judge.judge(state, [], ["click_xy(x=150, y=200)"])[0].task_relevance == 0.0  # empty page area


def test_registry():
    assert isinstance(make_judge("rule"), Judge)
    assert isinstance(make_judge("similar_rl.collect.judges.rule:RuleJudge"), RuleJudge)
    with pytest.raises(ValueError, match="unknown judge 'gpt'"):
        make_judge("gpt")
    with pytest.raises(ValueError, match="already registered"):
        register_judge("rule", RuleJudge)
    register_judge("rule2", RuleJudge)
    try:
        assert isinstance(make_judge("rule2"), RuleJudge)
    finally:
        del JUDGES["rule2"]


# ---------------------------------------------------------------------------------------------------------------
# strict parser


def test_parser_is_strict():
    good = {
        "verdicts": [
            {"candidate": 2, "task_relevance": 0, "coherence": 1},
            {"candidate": 1, "task_relevance": 1, "coherence": 1, "reason": "ok"},
        ]
    }
    assert parse_verdicts(json.dumps(good), 2) == [JudgeVerdict(1.0, 1.0, "ok"), JudgeVerdict(0.0, 1.0, "")]
    assert parse_verdicts("```json\n" + json.dumps(good) + "\n```", 2)[0].reason == "ok"
    bad = [
        "",
        "I think candidate 1 is relevant.",
        'Answer: {"verdicts": []}',
        json.dumps({"verdicts": good["verdicts"][:1]}),
        json.dumps(
            {"verdicts": [{"candidate": 1, "task_relevance": 0.5, "coherence": 1}, good["verdicts"][0]]}
        ),
        json.dumps(
            {"verdicts": [{"candidate": 1, "task_relevance": True, "coherence": 1}, good["verdicts"][0]]}
        ),
        json.dumps(
            {"verdicts": [{"candidate": 2, "task_relevance": 1, "coherence": 1}, good["verdicts"][0]]}
        ),
        json.dumps({"verdicts": [{"candidate": 1, "task_relevance": 1}, good["verdicts"][0]]}),
        json.dumps([1, 1]),
    ]
    for text in bad:
        with pytest.raises(VerdictParseError):
            parse_verdicts(text, 2)


def test_prompt_mentions_everything():
    state = GUIState("Log in as bob", observation_text='[1] button "Login"')
    text = build_user_prompt(state, ["click(ref=1)"], ["noop()", 'type(ref=2, text="bob")'])
    for part in ("Log in as bob", '[1] button "Login"', "Previous action: click(ref=1)", "Candidate 2: type"):
        assert part in text
    assert "first step" in build_user_prompt(state, [], ["noop()"])


# ---------------------------------------------------------------------------------------------------------------
# OpenAI-compatible endpoint judge against a real HTTP server


class _Server:
    """A chat-completions server on 127.0.0.1 that plays a script of replies, one per request.

    Replies: ("good", None) answers valid JSON for the request's candidates; ("text", s) answers content s;
    ("status", code) answers that HTTP status; ("sleep", seconds) answers good JSON after a delay.
    After the script runs out it answers garbage.
    """

    def __init__(self, script):
        self.script = list(script)
        self.requests: list[tuple[str, dict, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((self.path, dict(self.headers), body))
                kind, arg = outer.script.pop(0) if outer.script else ("text", "no idea")
                if kind == "status":
                    self.send_response(arg)
                    self.end_headers()
                    self.wfile.write(b'{"error": "scripted"}')
                    return
                if kind == "sleep":
                    time.sleep(arg)
                content = arg if kind == "text" else outer.good_answer(body)
                payload = json.dumps(
                    {"choices": [{"message": {"role": "assistant", "content": content}}]}
                ).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @staticmethod
    def good_answer(body):
        text = body["messages"][1]["content"][0]["text"]
        n = text.count("\nCandidate ")
        return json.dumps(
            {
                "verdicts": [
                    {"candidate": k, "task_relevance": k % 2, "coherence": 1, "reason": f"c{k}"}
                    for k in range(1, n + 1)
                ]
            }
        )

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def chat_state() -> GUIState:
    screenshot = np.zeros((21, 16, 3), dtype=np.uint8)
    screenshot[3:6, 2:9] = 200
    return GUIState(
        "Click OK",
        screenshot=screenshot,
        observation_text='[1] button "OK"',
        elements=(Element(1, "button", "OK"),),
    )


ACTIONS = ["click(ref=1)", "noop()", 'press(key="Tab")']


def openai_judge(url, **kw):
    kw.setdefault("backoff_s", 0.0)
    kw.setdefault("timeout", 2.0)
    return make_judge("openai", base_url=url, model="tiny-vlm", **kw)


def test_openai_good_answer_and_request_shape(monkeypatch):
    monkeypatch.setenv("SIMILAR_TEST_KEY", "sekrit")
    state = chat_state()
    with _Server([("good", None)]) as server:
        verdicts = openai_judge(server.url, api_key_env="SIMILAR_TEST_KEY").judge(state, ["noop()"], ACTIONS)
    assert [(v.task_relevance, v.coherence, v.reason) for v in verdicts] == [
        (1.0, 1.0, "c1"),
        (0.0, 1.0, "c2"),
        (1.0, 1.0, "c3"),
    ]
    (path, headers, body) = server.requests[0]
    assert path == "/v1/chat/completions" and headers["Authorization"] == "Bearer sekrit"
    assert body["model"] == "tiny-vlm" and body["messages"][0]["role"] == "system"
    text_part, image_part = body["messages"][1]["content"]
    assert "Click OK" in text_part["text"] and "Previous action: noop()" in text_part["text"]
    url = image_part["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    from PIL import Image

    png = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    np.testing.assert_array_equal(np.asarray(png), state.screenshot)


def test_openai_retries_garbage_then_succeeds():
    with _Server([("text", "They all look fine to me."), ("good", None)]) as server:
        judge = openai_judge(server.url)
        verdicts = judge.judge(chat_state(), [], ACTIONS)
    assert all(v.error is None for v in verdicts) and len(server.requests) == 2
    retry = server.requests[1][2]["messages"]
    assert retry[2] == {"role": "assistant", "content": "They all look fine to me."}
    assert "not valid" in retry[3]["content"] and server.requests[1][2]["temperature"] > 0
    assert judge.stats == {"requests": 2, "retries": 1, "failures": 0}


def test_openai_timeout_and_server_error_are_retried():
    with _Server([("sleep", 1.0), ("status", 503), ("good", None)]) as server:
        judge = openai_judge(server.url, timeout=0.3, max_retries=2)
        verdicts = judge.judge(chat_state(), [], ACTIONS)
    assert all(v.error is None for v in verdicts) and len(server.requests) == 3
    assert judge.stats == {"requests": 3, "retries": 2, "failures": 0}  # the slow answer was not waited for


def test_openai_records_failure_after_retries_never_guesses():
    with _Server([]) as server:  # garbage forever
        judge = openai_judge(server.url, max_retries=2)
        verdicts = judge.judge(chat_state(), [], ACTIONS)
    assert len(server.requests) == 3 and len(verdicts) == 3
    for v in verdicts:
        assert v.task_relevance is None and v.coherence is None
        assert "failed after 3 attempt(s)" in v.error and "not a JSON object" in v.error
    assert judge.stats["failures"] == 1
    with _Server([("sleep", 0.6)] * 3) as server:
        verdicts = openai_judge(server.url, timeout=0.2, max_retries=1).judge(chat_state(), [], ACTIONS[:1])
    assert verdicts[0].task_relevance is None and "within 0.2 s" in verdicts[0].error


def test_openai_fatal_status_is_not_retried_and_per_candidate_mode():
    with _Server([("status", 404)]) as server:
        verdicts = openai_judge(server.url).judge(chat_state(), [], ACTIONS)
    assert len(server.requests) == 1 and "HTTP 404" in verdicts[0].error
    with _Server([("good", None)] * 3) as server:
        verdicts = openai_judge(server.url, per_candidate=True, send_screenshot=False).judge(
            chat_state(), [], ACTIONS
        )
    assert len(server.requests) == 3 and all(v.error is None for v in verdicts)
    assert len(server.requests[0][2]["messages"][1]["content"]) == 1  # text only
    # nobody listening: a recorded failure, not an exception
    with _Server([]) as server:
        url = server.url
    verdicts = openai_judge(url, max_retries=1).judge(chat_state(), [], ACTIONS[:1])
    assert "failed after 2 attempt(s)" in verdicts[0].error and f"cannot reach {url}" in verdicts[0].error
    with pytest.raises(ValueError, match="http"):
        make_judge("openai", base_url="127.0.0.1:8000")


# ---------------------------------------------------------------------------------------------------------------
# local transformers judge with a tiny random model


def build_tiny_causal_lm(path) -> None:
    """A random 2-layer Qwen2 with a byte-level BPE tokenizer and a ChatML template, built offline."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(
        ['click(ref=1) type(ref=2, text="x") {"verdicts": [{"candidate": 1}]}'] * 20, trainer
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    config = Qwen2Config(
        vocab_size=len(fast),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=8192,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        bos_token_id=fast.pad_token_id,
    )
    Qwen2ForCausalLM(config).save_pretrained(path)
    fast.save_pretrained(path)


def test_local_judge_records_failure_for_garbage(tmp_path):
    pytest.importorskip("torch")
    build_tiny_causal_lm(tmp_path / "lm")
    judge = make_judge("local_vlm", model_path=str(tmp_path / "lm"), max_new_tokens=12, attempts=2)
    assert not judge.is_vlm
    verdicts = judge.judge(chat_state(), ["noop()"], ACTIONS[:2])
    assert len(verdicts) == 2
    for v in verdicts:
        assert v.task_relevance is None and v.coherence is None
        assert "local judge failed after 2 attempt(s)" in v.error
    assert judge.stats == {"generations": 2, "failures": 1}
    with pytest.raises(FileNotFoundError, match="not a local folder"):
        make_judge("local_vlm", model_path=str(tmp_path / "missing"))
