"""Pairwise accuracy per pair type, and the baselines scored on the same pairs.

A pair counts as correct when ``score(chosen) > score(rejected)`` on the output that matches its type: a
dimension pair uses that dimension's expert output ``r_k``, ``total`` uses ``total``, and ``traj`` uses the
mean per-step ``total`` over each trajectory's steps. **Ties** (equal scores) count 0.5 by default
(``ties="half"``, the expected accuracy of breaking them at random); ``ties="wrong"`` counts them as errors.

Reports are ``{"accuracy": {type: float}, "count": {type: int}, "ties": str}``, with ``accuracy["average"]``
the mean over the types present (macro average) and ``count["average"]`` the number of pairs. With
baselines, ``report["baselines"][name]`` has the same layout. Baselines:

- ``random``: seeded uniform random step scores (expected 50%);
- ``rule_judge``: the rule judge's task relevance + coherence (:class:`similar_rl.collect.judges.rule.RuleJudge`),
  on elements parsed from the observation text (no geometry, so ``click_xy`` counts as a blank click);
  it can only rank where those differ, so most other pairs are ties;
- ``text_similarity``: zero-shot cosine similarity between the instruction and the action's text (element refs
  resolved against the observation text) with the pretrained all-MiniLM-L6-v2 encoder;
- ``no_gate``: the model's own experts combined with the fixed total weights (``sum_k w_k r_k``) instead of the gate.
  A single-head model (trained with ``single_objective=True``) is evaluated like any model (``extra_models``).

Example:
    >>> import numpy as np
    >>> from similar_rl.data.records import PairRecord
    >>> from similar_rl.train.data import InputFactory, build_pair_table
    >>> pair = PairRecord(pair_id="p", type="helpfulness", task_id="t", env_id="toy/a", instruction="Click OK",
    ...                   chosen="click(ref=1)", rejected="noop()")
    >>> table = build_pair_table([pair], [], InputFactory(None))
    >>> scores = np.array([[1.0, 0, 0, 0, 0, 0], [0.0, 0, 0, 0, 0, 0]])
    >>> pairwise_accuracy(scores, table)
    ({'helpfulness': 1.0, 'average': 1.0}, {'helpfulness': 1, 'average': 1})
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from similar_rl.dimensions import DIMENSIONS, PAIR_TYPES, SCORE_KEYS
from similar_rl.train.data import InputFactory, PairTable, build_pair_table, load_records
from similar_rl.types import Element, GUIState

logger = logging.getLogger(__name__)

TIE_RULES = ("half", "wrong")
BASELINES = ("random", "rule_judge", "text_similarity", "no_gate")
_TOTAL = SCORE_KEYS.index("total")


def pairwise_accuracy(
    step_scores: np.ndarray, table: PairTable, ties: str = "half"
) -> tuple[dict[str, float], dict[str, int]]:
    """Accuracy and count per pair type from per-step scores.

    Args:
        step_scores: (N, 6) in SCORE_KEYS order for the table's inputs, or (N,) when one score serves every type.
        table: the pairs.
        ties: ``"half"`` (a tie counts 0.5) or ``"wrong"`` (a tie counts 0).
    """
    if ties not in TIE_RULES:
        raise ValueError(f"ties must be one of {TIE_RULES}, got {ties!r}")
    scores = np.asarray(step_scores, dtype=np.float64)
    if scores.ndim == 1:
        scores = np.repeat(scores[:, None], len(SCORE_KEYS), axis=1)
    if scores.shape != (len(table.inputs), len(SCORE_KEYS)):
        raise ValueError(
            f"step_scores must have shape ({len(table.inputs)}, {len(SCORE_KEYS)}), got {scores.shape}"
        )
    hits: dict[str, list[float]] = {}
    for ptype, chosen, rejected in zip(table.types, table.chosen, table.rejected, strict=True):
        col = SCORE_KEYS.index(ptype) if ptype in DIMENSIONS else _TOTAL
        diff = scores[chosen, col].mean() - scores[rejected, col].mean()
        hit = 1.0 if diff > 0 else (0.5 if diff == 0 and ties == "half" else 0.0)
        hits.setdefault(ptype, []).append(hit)
    order = [t for t in PAIR_TYPES if t in hits]
    accuracy = {t: float(np.mean(hits[t])) for t in order}
    count = {t: len(hits[t]) for t in order}
    if order:
        accuracy["average"] = float(np.mean([accuracy[t] for t in order]))
        count["average"] = sum(count[t] for t in order)
    return accuracy, count


def model_step_scores(
    model: Any,
    table: PairTable,
    batch_size: int = 32,
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    progress: bool = False,
) -> np.ndarray:
    """(N, 6) scores of the table's steps by ``model`` (features from the on-disk cache when available)."""
    import torch

    from similar_rl.train.features import extract_features

    x, z = extract_features(
        model,
        table.inputs,
        batch_size,
        cache_dir=cache_dir,
        use_cache=use_cache,
        progress=progress,
        desc="eval",
    )
    was_training = model.training
    model.eval()
    with torch.no_grad():
        device = model.device
        chunks = zip(x.split(4096), z.split(4096), strict=True)
        scores = torch.cat(
            [model.scores_from_features(xc.to(device), zc.to(device)).cpu() for xc, zc in chunks]
        )
    model.train(was_training)
    return scores.double().numpy()


# -- baselines ------------------------------------------------------------------------------------------------------
def random_scores(table: PairTable, seed: int = 0) -> np.ndarray:
    """Seeded uniform random score per step (expected pair accuracy 50%)."""
    return np.random.default_rng(seed).random(len(table.inputs))


_TYPEABLE = ("input", "textarea", "select")
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_STATIC = ("label", "text", "span", "p", "div", *_HEADINGS, "img", "static", "statictext")


def _elements_from_text(observation_text: str | None) -> tuple[Element, ...]:
    from similar_rl.envs.render import parse_observation

    out = []
    for line in parse_observation(observation_text).values():
        tag = line.tag.lower()
        typeable = tag.startswith(_TYPEABLE) and not tag.endswith(("checkbox", "radio", "button", "submit"))
        out.append(Element(**dataclasses.asdict(line), clickable=tag not in _STATIC, typeable=typeable))
    return tuple(out)


def rule_judge_scores(table: PairTable) -> np.ndarray:
    """Task relevance + coherence of each step by the rule judge (failed verdicts count 0)."""
    from similar_rl.collect.judges.rule import RuleJudge

    judge = RuleJudge()
    out = np.zeros(len(table.inputs))
    states: dict[str, GUIState] = {}
    for i, step in enumerate(table.inputs):
        if step.prompt_key not in states:
            text = step.observation_text
            states[step.prompt_key] = GUIState(step.instruction, None, text or "", _elements_from_text(text))
        verdict = judge.judge(states[step.prompt_key], list(step.history), [step.action])[0]
        out[i] = (verdict.task_relevance or 0.0) + (verdict.coherence or 0.0)
    return out


def text_similarity_scores(table: PairTable, batch_size: int = 64) -> np.ndarray:
    """Cosine similarity between the instruction and the action's text, with pretrained all-MiniLM-L6-v2."""
    import torch

    from similar_rl.model.backbones.action_text import describe_action
    from similar_rl.model.backbones.default import load_text_encoder, mean_pool

    tokenizer, encoder = load_text_encoder()
    instructions = [s.instruction for s in table.inputs]
    actions = [describe_action(s.action, s.observation_text) for s in table.inputs]
    texts = sorted({*instructions, *actions})
    vectors: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            chunk = texts[start : start + batch_size]
            enc = tokenizer(chunk, padding=True, truncation=True, max_length=128, return_tensors="pt")
            pooled = mean_pool(encoder(**enc).last_hidden_state, enc["attention_mask"])
            vectors.update(zip(chunk, pooled, strict=True))
    return np.array([float(vectors[i] @ vectors[a]) for i, a in zip(instructions, actions, strict=True)])


def no_gate_scores(model_scores: np.ndarray, total_weights: Mapping[str, float]) -> np.ndarray:
    """The model's dimension outputs with ``total`` replaced by the fixed weighted sum ``sum_k w_k r_k``."""
    out = np.array(model_scores, dtype=np.float64, copy=True)
    weights = np.array([float(total_weights[k]) for k in DIMENSIONS])
    out[:, _TOTAL] = out[:, : len(DIMENSIONS)] @ weights
    return out


# -- the entry point ------------------------------------------------------------------------------------------------
#: Pair types whose order comes from rollout outcomes (and so carries rollout noise); the others come from the
#: judge (task relevance, coherence) or from whole recorded trajectories (traj) and are kept by the filter.
ROLLOUT_TYPES = frozenset({"helpfulness", "odds_of_success", "efficiency", "total"})


def clear_margin_pairs(pairs: Sequence[Any], steps: Sequence[Any], z: float) -> list[Any]:
    """The pairs whose order is clear given the children's rollout counts (a filter for evaluation sets).

    A pair of a rollout type is kept when its two children's odds of success differ by more than ``z`` pooled
    standard errors, ``|p1 - p2| > z * sqrt(p (1 - p) (1/k1 + 1/k2))`` with ``k`` rollouts each and ``p`` the
    pooled success rate: two children with equal odds (both always or never succeeding) are ordered by rollout
    lengths or noise alone and are dropped. Pairs of other types, and pairs whose records or rollout counts are
    unknown, are kept. ``z = 1`` keeps pairs one standard error apart; ``z = 2`` about 95% one-sided.

    Example (5 rollouts per child: 5/5 against 1/5 is clear at z=2, 3/5 against 2/5 is not):
        >>> from types import SimpleNamespace as R
        >>> steps = [R(record_id=i, rollout_success=p, meta={"rollouts": [{}] * 5}) for i, p in enumerate([1, .2, .6, .4])]
        >>> pairs = [R(type="total", chosen_record=0, rejected_record=1), R(type="total", chosen_record=2, rejected_record=3)]
        >>> [p.chosen_record for p in clear_margin_pairs(pairs, steps, z=2.0)]
        [0]
    """
    by_id = {s.record_id: s for s in steps}
    kept = []
    for pair in pairs:
        a, b = by_id.get(pair.chosen_record), by_id.get(pair.rejected_record)
        counts = [len((r.meta or {}).get("rollouts") or []) if r is not None else 0 for r in (a, b)]
        if pair.type not in ROLLOUT_TYPES or a is None or b is None or min(counts) == 0:
            kept.append(pair)
            continue
        p1, p2 = float(a.rollout_success or 0.0), float(b.rollout_success or 0.0)
        pooled = (p1 * counts[0] + p2 * counts[1]) / (counts[0] + counts[1])
        se = math.sqrt(pooled * (1 - pooled) * (1 / counts[0] + 1 / counts[1]))
        if abs(p1 - p2) > z * se and p1 != p2:
            kept.append(pair)
    return kept


def load_eval_table(
    data: str | os.PathLike[str],
    use_images: bool = True,
    pair_types: Sequence[str] | None = None,
    encoding: str | None = None,
    clear_margin: float | None = None,
) -> PairTable:
    """The pairs of a dataset folder or SRMEval CSV (of text ``encoding``) as a :class:`PairTable`; with
    ``clear_margin`` only the pairs :func:`clear_margin_pairs` keeps at that ``z``."""
    steps, pairs, root = load_records(data, encoding)
    if clear_margin is not None:
        pairs = clear_margin_pairs(pairs, steps, clear_margin)
    if not pairs:
        raise ValueError(f"{data} holds no preference pairs to evaluate")
    return build_pair_table(pairs, steps, InputFactory(root, use_images=use_images), pair_types)


def evaluate(
    model: Any,
    data: str | os.PathLike[str] | PairTable,
    *,
    baselines: bool | Sequence[str] = False,
    extra_models: Mapping[str, Any] | None = None,
    ties: str = "half",
    seed: int = 0,
    batch_size: int = 32,
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    progress: bool = False,
    encoding: str | None = None,
    clear_margin: float | None = None,
) -> dict[str, Any]:
    """Pairwise accuracy of ``model`` per type on ``data`` (a dataset folder, an SRMEval CSV or a PairTable).

    Args:
        model: a :class:`~similar_rl.model.SimilarRewardModel` (or None to compute baselines only).
        data: the pairs.
        baselines: True for all of :data:`BASELINES`, or a list of their names.
        extra_models: more models scored on the same pairs (e.g. ``{"single_head": model}``), reported under
            ``report["baselines"][name]``.
        ties: ``"half"`` or ``"wrong"`` (see the module docstring).
        seed: seed of the random baseline.
        encoding: text encoding of an SRMEval CSV (default: UTF-8, else GB18030).
        clear_margin: evaluate only the pairs whose order is clear at this ``z`` (:func:`clear_margin_pairs`);
            the report's ``count`` then holds the kept pairs and ``clear_margin`` the ``z``.
    """
    names = list(BASELINES) if baselines is True else list(baselines or [])
    unknown = [b for b in names if b not in BASELINES]
    if unknown:
        raise ValueError(f"unknown baseline(s) {unknown}; choose from {list(BASELINES)}")
    kwargs = {"batch_size": batch_size, "cache_dir": cache_dir, "use_cache": use_cache, "progress": progress}

    @functools.cache
    def table_for(use_images: bool) -> PairTable:
        if isinstance(data, PairTable):
            return data
        return load_eval_table(data, use_images, encoding=encoding, clear_margin=clear_margin)

    def model_table(m: Any) -> PairTable:
        return table_for(bool(getattr(m.config, "use_image", True)))

    def row(scores: np.ndarray, table: PairTable) -> dict[str, Any]:
        acc, cnt = pairwise_accuracy(scores, table, ties)
        return {"accuracy": acc, "count": cnt}

    report: dict[str, Any] = {"ties": ties}
    if clear_margin is not None:
        report["clear_margin"] = clear_margin
    model_scores = None
    if model is not None:
        table = model_table(model)
        model_scores = model_step_scores(model, table, **kwargs)
        report["accuracy"], report["count"] = pairwise_accuracy(model_scores, table, ties)
    rows: dict[str, dict[str, Any]] = {}
    base = table_for(True)
    fixed_baselines = {
        "random": lambda: random_scores(base, seed),
        "rule_judge": lambda: rule_judge_scores(base),
        "text_similarity": lambda: text_similarity_scores(base),
    }
    for name in names:
        if name in fixed_baselines:
            rows[name] = row(fixed_baselines[name](), base)
        elif model_scores is None or getattr(model, "gate", None) is None:
            logger.info("baseline no_gate skipped: it needs a model with a gate")
        else:  # no_gate: the model's own scores, so the model's table
            rows[name] = row(no_gate_scores(model_scores, model.config.total_weights), model_table(model))
    for name, other in (extra_models or {}).items():
        table = model_table(other)
        rows[name] = row(model_step_scores(other, table, **kwargs), table)
    if rows:
        report["baselines"] = rows
    return report


def format_table(rows: Mapping[str, Mapping[str, float]], counts: Mapping[str, int] | None = None) -> str:
    """A Markdown table: one row per model/baseline, one column per pair type (accuracy in %).

    Example:
        >>> print(format_table({"model": {"total": 0.75, "average": 0.75}}, {"total": 4, "average": 4}))
        | model | total | average |
        |---|---|---|
        | model | 75.0 | 75.0 |
        | pairs | 4 | 4 |
    """
    columns = [t for t in (*PAIR_TYPES, "average") if any(t in r for r in rows.values())]
    lines = ["| model | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, acc in rows.items():
        cells = [f"{100 * acc[c]:.1f}" if c in acc else "-" for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if counts:
        lines.append("| pairs | " + " | ".join(str(counts.get(c, "-")) for c in columns) + " |")
    return "\n".join(lines)


def report_rows(report: Mapping[str, Any], model_name: str = "similar") -> dict[str, dict[str, float]]:
    """Accuracy rows of a report: the model first, then its baselines."""
    rows = {model_name: report["accuracy"]} if "accuracy" in report else {}
    return rows | {name: row["accuracy"] for name, row in report.get("baselines", {}).items()}
