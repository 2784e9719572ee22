"""TRL reward functions on the real tiny reward model, including real GRPO and RLOO trainer runs."""

import asyncio
import pickle

import numpy as np
import pytest
from PIL import Image
from trl_helpers import build_reward_model, save_policy, toy_dataset, trainer_args

from similar_rl import DIMENSIONS, SCORE_KEYS, StepInput
from similar_rl.rewards import similar_reward_funcs, step_inputs_from_columns
from similar_rl.scoring import Scorer

NAMES = ["similar_total"] + [f"similar_{d}" for d in DIMENSIONS]


@pytest.fixture(scope="module")
def model():
    return build_reward_model()


@pytest.fixture(scope="module")
def batch():
    ds = toy_dataset(4)
    completions = ["I click(ref=1)", "click(ref=2)", "nothing to do", 'type(ref=2, text="bob")']
    return dict(
        prompts=ds["prompt"],
        completions=completions,
        instruction=ds["instruction"],
        history=ds["history"],
        observation_text=ds["observation_text"],
        screenshot=ds["screenshot"],
    )


def test_names_and_values(model, batch):
    scorer = Scorer(model)
    funcs = similar_reward_funcs(scorer, invalid_penalty=-2.0)
    assert [f.__name__ for f in funcs] == NAMES
    values = [f(**batch) for f in funcs]
    assert scorer.forward_calls == 1  # six functions, one batched forward
    steps, _ = step_inputs_from_columns(**batch)
    expected = Scorer(model).score([s for s in steps if s is not None])
    assert steps[2] is None
    for func, column in zip(funcs, values, strict=True):
        assert column[2] == -2.0
        got = [v for i, v in enumerate(column) if i != 2]
        assert got == pytest.approx([e[func.key] for e in expected], abs=1e-5)


def test_subset_weights_and_none_penalty(model, batch):
    funcs = similar_reward_funcs(
        model, dimensions=("coherence", "helpfulness"), include_total=True, weights={"coherence": 2.0},
        invalid_penalty=None,
    )  # fmt: skip
    assert [f.__name__ for f in funcs] == ["similar_total", "similar_helpfulness", "similar_coherence"]
    total, _, coherence = (f(**batch) for f in funcs)
    assert total[2] is None
    assert [t for t in total if t is not None] == pytest.approx([2 * c for c in coherence if c is not None])
    with pytest.raises(ValueError, match="unknown dimension"):
        similar_reward_funcs(model, dimensions=("speed",))


def test_columns_and_prompt_forms(model):
    image = Image.fromarray(np.full((20, 30, 3), 200, dtype=np.uint8))
    plain = ["Observation...\nInstruction: Click OK\nAnswer:"]
    conv = [
        [
            {
                "role": "user",
                "content": [{"type": "image", "image": image}, {"type": "text", "text": "Click OK"}],
            }
        ]
    ]
    comp_conv = [[{"role": "assistant", "content": "click(ref=4)"}]]
    a, _ = step_inputs_from_columns(
        plain, ["click(ref=4)"], image=[image], history=[["noop()", "click(ref=1)"]]
    )
    b, _ = step_inputs_from_columns(conv, comp_conv, history=["noop()\nclick(ref=1)"])
    c, _ = step_inputs_from_columns(
        ["Click OK"], ["click( ref=4 )"], images=[[image]], history=[("noop()", "click(ref=1)")]
    )
    assert a[0].key == b[0].key == c[0].key  # same instruction, history, screenshot and (canonical) action
    assert a[0].instruction == "Click OK" and a[0].history == ("noop()", "click(ref=1)")
    with pytest.raises(ValueError, match="'history' must hold one value per completion"):
        step_inputs_from_columns(plain, ["click(ref=4)"], history=[[], []])
    with pytest.raises(ValueError, match="no instruction"):
        step_inputs_from_columns([""], ["click(ref=4)"])


def test_log_metric_gets_dimension_means(model, batch):
    logged = {}
    funcs = similar_reward_funcs(model)
    for f in funcs:
        f(**batch, log_metric=lambda name, value: logged.setdefault(name, []).append(value))
    assert sorted(logged) == sorted([f"similar/{k}" for k in SCORE_KEYS] + ["similar/invalid_fraction"])
    assert all(len(v) == 1 for v in logged.values())  # logged once per batch, not once per function
    assert logged["similar/invalid_fraction"] == [0.25]
    scores = funcs[0].batch_scores.scorer.score([s for s in step_inputs_from_columns(**batch)[0] if s])
    assert logged["similar/helpfulness"][0] == pytest.approx(
        np.mean([s["helpfulness"] for s in scores]), abs=1e-5
    )


def test_pickle(model, batch):
    funcs = similar_reward_funcs(model)
    before = [f(**batch) for f in funcs]
    blob = pickle.dumps(funcs)
    assert len(blob) < 20e6  # the frozen encoders (~110 MB) are reloaded from their wheels, not pickled
    loaded = pickle.loads(blob)
    assert [f.__name__ for f in loaded] == NAMES
    assert loaded[0].batch_scores is loaded[-1].batch_scores  # siblings still share one batch cache
    after = [f(**batch) for f in loaded]
    assert np.allclose(np.array(after, dtype=float), np.array(before, dtype=float), atol=1e-5)
    assert (
        loaded[0].batch_scores.scorer.forward_calls == 2
    )  # counters travel, the cache does not: one new forward


def test_async_variant_one_forward(model, batch):
    scorer = Scorer(model)
    funcs = similar_reward_funcs(scorer, asynchronous=True)
    sync = [f(**batch) for f in similar_reward_funcs(model)]

    async def run():
        return await asyncio.gather(*(f(**batch) for f in funcs))

    assert asyncio.iscoroutinefunction(type(funcs[0]).__call__)
    results = asyncio.run(run())
    assert scorer.forward_calls == 1
    assert np.allclose(np.array(results, dtype=float), np.array(sync, dtype=float), atol=1e-5)
    assert pickle.loads(pickle.dumps(funcs))[0].__name__ == "similar_total"


@pytest.mark.parametrize(("kind", "conversational"), [("grpo", False), ("rloo", True)])
def test_trl_trainer_runs(model, tmp_path, kind, conversational):
    import trl

    scorer = Scorer(model)
    funcs = similar_reward_funcs(scorer)
    policy, tokenizer = save_policy(str(tmp_path / "policy"))
    trainer_cls = {"grpo": trl.GRPOTrainer, "rloo": trl.RLOOTrainer}[kind]
    trainer = trainer_cls(
        model=policy,
        reward_funcs=funcs,
        args=trainer_args(kind, str(tmp_path / "out")),
        train_dataset=toy_dataset(4, conversational=conversational),
        processing_class=tokenizer,
    )
    trainer.train()
    logs = [h for h in trainer.state.log_history if "rewards/similar_total/mean" in h]
    assert len(logs) == 2
    for name in NAMES:
        assert all(np.isfinite(h[f"rewards/{name}/mean"]) for h in logs)
    for key in SCORE_KEYS:
        assert any(f"similar/{key}" in h for h in logs)
    shared = funcs[0].batch_scores
    assert shared.batches_scored == 2  # one generation batch per step
    batches_with_actions = sum(
        1 for s in range(1, 3) if any(x.step for x in shared.samples if x.global_step == s - 1)
    )
    assert scorer.forward_calls == batches_with_actions == 2  # ONE forward per step for all six functions
    assert any(isinstance(x.step, StepInput) and x.step.screenshot is not None for x in shared.samples)
