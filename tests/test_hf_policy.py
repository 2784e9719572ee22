"""HFPolicy with tiny random Qwen2 (causal LM) and LLaVA (VLM) models built offline by similar_rl.testing."""

from __future__ import annotations

import logging

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from similar_rl.envs.actions import parse_action  # noqa: E402
from similar_rl.policies import make_policy  # noqa: E402
from similar_rl.policies.hf import HFPolicy  # noqa: E402
from similar_rl.testing import build_tiny_llava, build_tiny_qwen2  # noqa: E402
from similar_rl.types import Element, GUIState  # noqa: E402

STATE = GUIState(
    instruction='Click on the "OK" button.',
    observation_text='[4] button "OK"\n[5] button "Cancel"',
    elements=(Element(ref=4, tag="button", text="OK"), Element(ref=5, tag="button", text="Cancel")),
    fields={"target": "OK"},
)


class _Adapter:
    """The two methods the fallback policies use; STATE's candidates."""

    def candidates(self, state):
        return [f"click(ref={el.ref})" for el in state.elements]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_lm_path(tmp_path_factory):
    return build_tiny_qwen2(tmp_path_factory.mktemp("tiny-qwen2"))


def test_random_model_reports_unparsable_outputs_and_falls_back(tiny_lm_path, caplog):
    policy = HFPolicy(_Adapter(), tiny_lm_path, temperature=1.0, max_new_tokens=12, fallback="random")
    assert policy.use_chat_template and policy.device in ("cpu", "cuda")
    with caplog.at_level(logging.WARNING, logger="similar_rl.policies.hf"):
        actions = policy.propose(STATE, ["noop()"], n=4, rng=np.random.default_rng(0))
    assert len(actions) == 4 and all(
        a in ("click(ref=4)", "click(ref=5)") or parse_action(a) for a in actions
    )
    assert len(policy.last_completions) == 4
    # a random 400-token LM essentially never writes a valid action: every completion is a reported failure
    assert len(policy.last_failures) >= 3
    assert policy.failure_count == len(policy.last_failures) and policy.sample_count == 4
    assert all(f.error for f in policy.last_failures)
    assert "gave no usable action" in caplog.text

    # without a fallback it returns what parsed, never raises, never returns an empty list
    bare = HFPolicy(None, tiny_lm_path, max_new_tokens=8, fallback=None)
    out = bare.propose(STATE, [], n=3, rng=np.random.default_rng(1))
    assert 1 <= len(out) <= 3 and all(parse_action(a) for a in out)


def test_sampling_is_seeded_and_leaves_global_rng_alone(tiny_lm_path):
    policy = HFPolicy(None, tiny_lm_path, max_new_tokens=10, fallback=None)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    first = policy.sample(STATE, [], n=3, seed=7)
    assert torch.equal(torch.rand(1), before)  # sampling forked the RNG
    assert policy.sample(STATE, [], n=3, seed=7) == first
    assert len(set(first)) > 1  # temperature 1: the 3 completions differ


def test_trained_tiny_model_proposes_the_action_it_learned(tiny_lm_path):
    """Overfit the tiny LM on one prompt -> 'click(ref=4)'; the policy must then parse it with no failure."""
    policy = HFPolicy(None, tiny_lm_path, temperature=0.0, max_new_tokens=10, fallback=None)
    tok, model = policy.tokenizer, policy.model
    prompt = policy._inputs(STATE, [])["input_ids"]
    target = tok(" click(ref=4)<|im_end|>", return_tensors="pt")["input_ids"]
    ids = torch.cat([prompt, target], dim=1)
    labels = ids.clone()
    labels[:, : prompt.shape[1]] = -100
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(50):
        loss = model(input_ids=ids, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    assert loss.item() < 0.3
    actions = policy.propose(STATE, [], n=2, rng=np.random.default_rng(0))
    assert actions == ["click(ref=4)", "click(ref=4)"]
    assert policy.last_failures == [] and policy.failure_count == 0


def test_registry_and_bad_arguments(tiny_lm_path, tmp_path):
    policy = make_policy("hf", _Adapter(), model_path=tiny_lm_path, max_new_tokens=4)
    assert isinstance(policy, HFPolicy)
    with pytest.raises(ValueError, match="exactly one of model_path"):
        HFPolicy(None)
    with pytest.raises(FileNotFoundError, match="not a local folder"):
        HFPolicy(None, tmp_path / "missing")
    with pytest.raises(ValueError, match="temperature"):
        HFPolicy(None, tiny_lm_path, temperature=-1)
    with pytest.raises(ValueError, match="positive integer"):
        policy.propose(STATE, [], n=0, rng=np.random.default_rng(0))


def test_vlm_gets_the_screenshot_and_reports_failures(tmp_path):
    path = build_tiny_llava(tmp_path / "tiny-llava")
    policy = HFPolicy(_Adapter(), path, max_new_tokens=6, fallback="random")
    assert policy.processor is not None
    state = GUIState(
        instruction=STATE.instruction,
        screenshot=np.full((210, 160, 3), 200, dtype=np.uint8),
        observation_text=STATE.observation_text,
        elements=STATE.elements,
    )
    inputs = policy._inputs(state, [])
    assert "pixel_values" in inputs  # the screenshot goes to the model
    actions = policy.propose(state, [], n=2, rng=np.random.default_rng(0))
    assert len(actions) == 2 and policy.sample_count == 2
    parsed, failures = policy.parse(policy.last_completions, state)
    assert len(parsed) + len(failures) == 2 and failures == policy.last_failures
