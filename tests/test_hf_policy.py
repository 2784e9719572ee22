"""HFPolicy with a tiny random Qwen2 causal LM built offline (tokenizer trained here with ``tokenizers``)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from similar_rl.envs.actions import GRAMMAR, parse_action  # noqa: E402
from similar_rl.policies import make_policy  # noqa: E402
from similar_rl.policies.hf import HFPolicy, build_prompt  # noqa: E402
from similar_rl.types import Element, GUIState  # noqa: E402

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
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


def _tokenizer():
    tok = tokenizers.Tokenizer(tokenizers.models.BPE(unk_token=None))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(),
    )
    corpus = [
        build_prompt(STATE, ["noop()"]),
        GRAMMAR,
        'click(ref=4) type(ref=5, text="hi") system user assistant',
    ]
    tok.train_from_iterator(corpus * 20, trainer)
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        padding_side="left",
    )
    fast.chat_template = CHATML
    return fast


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """Tiny models run faster on one thread, and much faster on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_lm_path(tmp_path_factory):
    tokenizer = _tokenizer()
    config = transformers.Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = transformers.Qwen2ForCausalLM(config)
    path = tmp_path_factory.mktemp("tiny-qwen2")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_random_model_reports_unparsable_outputs_and_falls_back(tiny_lm_path, caplog):
    policy = HFPolicy(_Adapter(), tiny_lm_path, temperature=1.0, max_new_tokens=12, fallback="random")
    assert policy.use_chat_template and policy.device in ("cpu", "cuda")
    with caplog.at_level(logging.WARNING, logger="similar_rl.policies.hf"):
        actions = policy.propose(STATE, ["noop()"], n=4, rng=np.random.default_rng(0))
    assert len(actions) == 4 and all(
        a in ("click(ref=4)", "click(ref=5)") or parse_action(a) for a in actions
    )
    assert len(policy.last_completions) == 4
    # a random 600-token LM essentially never writes a valid action: every completion is a reported failure
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
    for _ in range(60):
        loss = model(input_ids=ids, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    assert loss.item() < 0.1
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
