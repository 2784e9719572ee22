"""The Scorer on the real tiny default-backbone reward model."""

import pickle
import threading

import pytest
import torch
from trl_helpers import build_reward_model

from similar_rl import SCORE_KEYS, StepInput
from similar_rl.envs import make_env
from similar_rl.scoring import Scorer, as_scorer


@pytest.fixture(scope="module")
def model():
    return build_reward_model()


@pytest.fixture(scope="module")
def steps():
    """Candidates of two toy states (login-form and click-button)."""
    out = []
    for env_id in ("toy/login-form", "toy/click-button"):
        env, adapter = make_env(env_id)
        state, _ = adapter.reset(env, seed=3)
        out += [state.step_input(a, ["noop()"]) for a in adapter.candidates(state)[:5]]
    return out


class Recording:
    """The real model, recording the batches it is called with."""

    def __init__(self, model):
        self.model, self.batches = model, []

    def score_steps(self, steps):
        self.batches.append(list(steps))
        return self.model.score_steps(steps)


def test_scores_match_the_model_and_keys(model, steps):
    scores = Scorer(model).score(steps)
    direct = model.score_steps(steps)
    assert [list(s) for s in scores] == [list(SCORE_KEYS)] * len(steps)
    got = torch.tensor([[s[k] for k in SCORE_KEYS] for s in scores])
    assert torch.allclose(got, direct, atol=1e-5)
    assert len({round(s["total"], 6) for s in scores}) > 1  # random heads: scores differ per step


def test_cache_and_counters(model, steps):
    scorer = Scorer(model, cache_size=100)
    scorer.score(steps[:3] + steps[:1])  # a duplicate inside one request
    assert (scorer.forward_calls, scorer.cache_hits, scorer.steps_scored) == (1, 1, 3)
    again = StepInput(
        steps[0].instruction,
        steps[0].action,
        steps[0].history,
        steps[0].screenshot,
        steps[0].observation_text,
    )  # equal content, new object
    assert scorer.score_one(again) == scorer.score_one(steps[0])
    assert (scorer.forward_calls, scorer.cache_hits) == (1, 3)


def test_lru_eviction_and_disabled_cache(model, steps):
    scorer = Scorer(model, cache_size=2)
    scorer.score(steps[:3])
    scorer.score([steps[0]])  # evicted (oldest) -> forward again
    assert scorer.forward_calls == 2
    scorer.score([steps[2]])  # still cached
    assert scorer.forward_calls == 2
    off = Scorer(model, cache_size=0)
    off.score([steps[0]])
    off.score([steps[0]])
    assert off.forward_calls == 2


def test_batches_group_candidates_of_one_state(model, steps):
    rec = Recording(model)
    scorer = Scorer(rec, batch_size=5)
    interleaved = [s for pair in zip(steps[:5], steps[5:], strict=True) for s in pair]
    scores = scorer.score(interleaved)
    assert scorer.forward_calls == 2
    assert all(len({s.prompt_key for s in batch}) == 1 for batch in rec.batches)
    assert [s["total"] for s in scores] == [
        s["total"] for s in Scorer(model).score(interleaved)
    ]  # input order


def test_big_group_is_split(model, steps):
    rec = Recording(model)
    Scorer(rec, batch_size=2).score(steps[:5])
    assert [len(b) for b in rec.batches] == [2, 2, 1]


def test_threads_share_one_forward(model, steps):
    scorer = Scorer(model)
    results = [None] * 4

    def work(i):
        results[i] = scorer.score(steps)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert scorer.forward_calls == 1
    assert all(r == results[0] for r in results)


def test_pickle_roundtrip(model, steps):
    scorer = Scorer(model)
    before = scorer.score(steps[:2])
    copy = pickle.loads(pickle.dumps(scorer))
    after = copy.score(steps[:2])
    assert copy.forward_calls == 2  # the cache is not shipped; the counters are
    for a, b in zip(after, before, strict=True):
        assert [a[k] for k in SCORE_KEYS] == pytest.approx([b[k] for k in SCORE_KEYS], abs=1e-5)


def test_bad_input(model):
    with pytest.raises(TypeError, match="score_steps"):
        Scorer(object())
    with pytest.raises(ValueError, match="batch_size"):
        Scorer(model, batch_size=0)
    with pytest.raises(TypeError, match=r"steps\[0\]"):
        Scorer(model).score(["click(ref=1)"])
    assert Scorer(model).score([]) == []


def test_as_scorer(model):
    scorer = as_scorer(model, batch_size=7)
    assert isinstance(scorer, Scorer) and scorer.batch_size == 7
    assert as_scorer(scorer) is scorer
    with pytest.raises(TypeError, match="SimilarRewardModel"):
        as_scorer(3)


def test_step_keys_do_not_collide_across_fields():
    a = StepInput("a\x1fb", "x")
    b = StepInput("a", "x", observation_text="b\x1f")
    c = StepInput("a", "x", history=["b"])
    d = StepInput("a", "x", observation_text="")
    e = StepInput("a", "x")
    keys = {s.key for s in (a, b, c, d, e)}
    assert len(keys) == 5  # None and "" observation texts are different states too
    assert StepInput("a", "x", history=["b"]).key == c.key  # equal content, equal key
