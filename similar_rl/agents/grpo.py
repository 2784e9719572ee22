"""GRPO for GUI agents with TRL's ``GRPOTrainer``, rewarded step by step by Similar.

GUI states come from rollouts of a behaviour policy (``random``, ``heuristic`` or ``hf``, the policy itself)
or from an MCTS-P dataset folder; each becomes one prompt. The rewards are Similar's ``total`` and dimensions
(one scorer call per batch) plus an optional env-verified reward; training is LoRA through PEFT; then the
policy acts greedily in the real env and its success rate is reported.

TRL logs every reward function as ``rewards/<name>/mean`` (``similar_total``, ``similar_helpfulness``, ...)
to TensorBoard and, with ``track``, to an offline W&B run. Checkpoints hold only safetensors + JSON
(``save_only_model``; the pickled ``training_args.bin`` HF writes is replaced by ``args.json``); ``resume``
starts from a saved LoRA adapter (the optimizer restarts).

Run it with ``similar-rl agent grpo --config configs/grpo_toy.yaml`` or ``python examples/grpo_gui.py``.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from similar_rl.dimensions import DIMENSIONS, SCORE_KEYS
from similar_rl.envs import make_env
from similar_rl.envs.actions import ActionParseError, extract_action, format_action
from similar_rl.envs.base import InvalidActionError
from similar_rl.fields import option
from similar_rl.harness import episodes as episodes_loop
from similar_rl.harness.settings import check_choice, check_range, check_settings, save_args
from similar_rl.policies.hf import SYSTEM_PROMPT, build_prompt
from similar_rl.types import GUIState, Scorer

logger = logging.getLogger(__name__)

STATE_SOURCES = ("rollout", "dataset")
AGGREGATIONS = ("sum_then_normalize", "normalize_then_sum")
PICKLE_FILES = ("training_args.bin", "optimizer.pt", "scheduler.pt", "rng_state.pth", "scaler.pt")


# --------------------------------------------------------------------------------------------------- settings
@dataclass
class GRPOArgs:
    """Settings of a GRPO run (every field is a YAML key and a ``--field-name`` option)."""

    model_path: str = option("", "local folder of the policy (causal LM or VLM)")
    vlm: bool = option(False, "the policy is a VLM: send the screenshot as an image")
    env_id: str = option("toy/click-button", "env of the rollouts and the evaluation")
    env_kwargs: dict[str, Any] = option({}, "keyword arguments of make_env")
    # states
    states_from: str = option("rollout", "rollout | dataset")
    dataset_dir: str | None = option(None, "MCTS-P dataset folder (states_from=dataset)")
    behaviour: str = option("random", "rollout policy: random | heuristic | hf")
    num_states: int = option(64, "prompts in the training set", at_least=1)
    state_seed: int = option(0, "first episode seed of the rollouts")
    max_episode_steps: int = option(10, "steps per rollout / evaluation episode", at_least=1)
    max_history: int = option(8, "previous actions shown in the prompt", at_least=0)
    max_observation_chars: int = option(4000, "screen text kept in the prompt", at_least=0)
    # rewards
    reward_model: str = option("default", "'default' or a saved SimilarRewardModel folder")
    similar_dimensions: list[str] = option(list(DIMENSIONS), "dimensions with their own reward function")
    reward_weights: dict[str, float] = option(
        {"total": 1.0}, "weight per reward: total, a dimension or env (unlisted: 0, logged only)"
    )
    env_reward: bool = option(False, "add the env-verified reward of the action")
    invalid_penalty: float = option(-1.0, "reward of a completion with no valid action", bounds="(-inf, inf)")
    scorer_batch_size: int = option(32, "reward-model batch size", at_least=1)
    # trainer
    max_steps: int = option(
        50, "GRPO optimizer steps (0: none; the warm-up and the evaluation only)", at_least=0
    )
    learning_rate: float = option(1e-5, "learning rate", bounds="(0, inf)")
    per_device_train_batch_size: int = option(8, "completions per device per step", at_least=1)
    gradient_accumulation_steps: int = option(1, "gradient accumulation", at_least=1)
    num_generations: int = option(4, "completions per prompt (the GRPO group)", at_least=1)
    max_completion_length: int = option(48, "tokens per completion", at_least=1)
    temperature: float = option(1.0, "sampling temperature", bounds="(0, inf)")
    beta: float = option(0.0, "KL coefficient (0: no reference model)", bounds="[0, inf)")
    multi_objective_aggregation: str = option(
        "sum_then_normalize",
        "how TRL combines the reward functions: sum_then_normalize, or normalize_then_sum (each "
        "reward normalised within its group first, then the weighted sum)",
    )
    bf16: bool = option(False, "bfloat16 training (GPU)")
    gradient_checkpointing: bool = option(False, "gradient checkpointing (big models)")
    lora: bool = option(True, "train a LoRA adapter instead of all weights")
    lora_r: int = option(16, "LoRA rank", at_least=1)
    lora_alpha: int = option(32, "LoRA alpha")
    lora_dropout: float = option(0.05, "LoRA dropout", bounds="[0, 1)")
    lora_target_modules: str | list[str] = option("all-linear", "LoRA target modules")
    # supervised warm-up (agents/sft.py), before GRPO
    sft_steps: int = option(0, "warm-up optimizer steps (0: no warm-up)", at_least=0)
    sft_dataset_dir: str | None = option(
        None, "MCTS-P dataset folder whose successful steps the warm-up imitates"
    )
    sft_min_success: float = option(
        1.0, "least rollout success of a state's best child to imitate it", bounds="[0, 1]"
    )
    sft_max_examples: int | None = option(None, "most warm-up states (None: all)")
    sft_learning_rate: float = option(2e-4, "learning rate of the warm-up", bounds="(0, inf)")
    sft_max_length: int = option(1024, "tokens per warm-up example (prompt + action)")
    # run
    seed: int = option(1, "seed")
    output_dir: str = option("runs", "runs are written to <output_dir>/<run_name>")
    run_name: str | None = option(None, "default: <env>__grpo__<seed>")
    track: bool = option(False, "log to W&B")
    wandb_project: str = option("similar-rl", "W&B project")
    wandb_mode: str = option("offline", "offline | online | disabled")
    tensorboard: bool = option(True, "log to TensorBoard")
    save_steps: int = option(0, "checkpoint every N steps (0: only the final model)", at_least=0)
    resume: str | None = option(None, "LoRA adapter folder to start from")
    progress: bool = option(True, "show progress bars")
    eval_episodes: int = option(10, "greedy episodes in the env after training (0: skip)", at_least=0)
    eval_seed: int = option(100_000, "first seed of the evaluation episodes")
    eval_env_ids: list[str] = option([], "envs of the evaluation, eval_episodes each (empty: env_id)")

    def __post_init__(self) -> None:
        check_choice("states_from", self.states_from, STATE_SOURCES)
        if self.states_from == "dataset" and not self.dataset_dir:
            raise ValueError(
                "states_from=dataset needs dataset_dir (a folder written by `similar-rl collect`)"
            )
        bad = sorted(set(self.reward_weights) - {*SCORE_KEYS, "env"})
        if bad:
            raise ValueError(f"reward_weights has unknown key(s) {bad}; use total, env or {list(DIMENSIONS)}")
        if "env" in self.reward_weights and not self.env_reward:
            raise ValueError("reward_weights names 'env' but env_reward is false; set env_reward: true")
        unknown = sorted(set(self.similar_dimensions) - set(DIMENSIONS))
        if unknown:
            raise ValueError(
                f"similar_dimensions has unknown dimension(s) {unknown}; choose from {DIMENSIONS}"
            )
        check_choice("multi_objective_aggregation", self.multi_objective_aggregation, AGGREGATIONS)
        if self.sft_steps and not self.sft_dataset_dir:
            raise ValueError("sft_steps needs sft_dataset_dir (a folder written by `similar-rl collect`)")
        check_settings(self)
        for key, weight in self.reward_weights.items():
            check_range("GRPOArgs", f"reward_weights[{key!r}]", weight)


# ---------------------------------------------------------------------------------------------- GUI states
def state_row(state: GUIState, history: Sequence[str], env_id: str, seed: int) -> dict[str, Any]:
    """One state as a plain dict (the columns of the prompt dataset before the prompt is added)."""
    return {
        "instruction": state.instruction,
        "observation_text": state.observation_text,
        "history": list(history),
        "screenshot": state.screenshot,
        "env_id": env_id,
        "seed": int(seed),
    }


def rollout_states(args: GRPOArgs) -> list[dict[str, Any]]:
    """States visited by the behaviour policy in ``args.env_id`` (episodes seeded from ``state_seed``)."""
    from similar_rl.policies import make_policy

    env, adapter = make_env(args.env_id, **args.env_kwargs)
    kwargs = {"model_path": args.model_path} if args.behaviour == "hf" else {}
    policy = make_policy(args.behaviour, adapter, **kwargs)
    rng = np.random.default_rng(args.seed)

    def choose(state: Any, history: Any) -> str:
        return policy.propose(state, list(history), 1, rng)[0]

    played = (
        (seed, step)
        for seed in itertools.count(args.state_seed)
        for step in episodes_loop.play(env, adapter, choose, seed, args.max_episode_steps)
    )
    try:
        first = itertools.islice(played, args.num_states)
        return [state_row(step.state, list(step.history), args.env_id, seed) for seed, step in first]
    finally:
        env.close()


def state_key(rec: Any) -> str:
    """The MCTS-P node of a step record (its siblings share it); older records without one use task, step, history."""
    return rec.node_id or f"{rec.task_id}/{rec.step_idx}/{'|'.join(rec.history)}"


def dataset_states(folder: str, limit: int) -> list[dict[str, Any]]:
    """One row per labelled state (MCTS-P node) of a dataset folder, at most ``limit``."""
    from similar_rl.data.dataset import DatasetReader

    reader = DatasetReader(folder)
    rows, seen = [], set()
    for rec in reader.steps():
        node = state_key(rec)
        if node in seen:
            continue
        seen.add(node)
        screenshot = reader.load_screenshot(rec.screenshot) if rec.screenshot else None
        state = GUIState(rec.instruction, screenshot, rec.observation_text)
        rows.append(state_row(state, rec.history, rec.env_id, rec.seed))
        if len(rows) >= limit:
            break
    if not rows:
        raise ValueError(f"dataset folder {folder!r} holds no committed step records")
    return rows


def messages_for(
    state: GUIState, history: Sequence[str], args: GRPOArgs, image_placeholder: bool = False
) -> list[dict[str, Any]]:
    """The chat prompt of one state (text; TRL inserts the image of a VLM prompt from the ``image`` column)."""
    text = build_prompt(state, history, args.max_history, args.max_observation_chars)
    content: Any = [{"type": "image"}, {"type": "text", "text": text}] if image_placeholder else text
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": content}]


def build_dataset(rows: list[dict[str, Any]], args: GRPOArgs) -> Any:
    """A ``datasets.Dataset`` of conversational prompts plus the columns the reward functions read."""
    from datasets import Dataset
    from PIL import Image

    records = []
    for row in rows:
        state = GUIState(row["instruction"], observation_text=row["observation_text"])
        rec = {**row, "prompt": messages_for(state, row["history"], args)}
        shot = rec.pop("screenshot")
        # A VLM policy sees the screenshot (TRL feeds ``image`` to it and to the rewards); a text policy
        # does not, but the reward model still does (the ``screenshot`` column).
        rec["image" if args.vlm else "screenshot"] = Image.fromarray(shot) if shot is not None else None
        records.append(rec)
    return Dataset.from_list(records)


# ------------------------------------------------------------------------------------------------- rewards
def completion_action(completion: Any) -> str | None:
    """The canonical action string in a completion (plain or conversational), or None."""
    from similar_rl.rewards import completion_text

    try:
        return format_action(extract_action(completion_text(completion)))
    except ActionParseError:
        return None


class EnvVerifiedReward:
    """TRL reward function ``env_reward``: rebuild the state (reset(seed) + replay history), execute the
    completion's action, return the env's reward (+1 solved, -1 failed, 0 otherwise in the toy env).
    Results are cached by (env, seed, history, action)."""

    __name__ = "env_reward"

    def __init__(self, env_kwargs: dict[str, Any] | None = None, invalid_penalty: float = -1.0):
        self.env_kwargs = dict(env_kwargs or {})
        self.invalid_penalty = invalid_penalty
        self._envs: dict[str, tuple[Any, Any]] = {}
        self._cache: dict[tuple, float] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_envs": {}}

    def __call__(self, prompts: list, completions: list, env_id: list, seed: list, history: list, **_: Any):
        out: list[float] = []
        for completion, eid, s, hist in zip(completions, env_id, seed, history, strict=True):
            action = completion_action(completion)
            if action is None:
                out.append(self.invalid_penalty)
                continue
            key = (eid, int(s), tuple(hist), action)
            if key not in self._cache:
                if eid not in self._envs:
                    self._envs[eid] = make_env(eid, **self.env_kwargs)
                env, adapter = self._envs[eid]
                adapter.rebuild(env, int(s), list(hist))
                try:
                    self._cache[key] = adapter.step(env, action).reward
                except (ActionParseError, InvalidActionError):
                    self._cache[key] = self.invalid_penalty
            out.append(self._cache[key])
        return out

    def close(self) -> None:
        for env, _ in self._envs.values():
            env.close()
        self._envs.clear()


def reward_functions(args: GRPOArgs, scorer: Scorer) -> tuple[list[Any], list[float]]:
    """The reward callables and their weights, in the order TRL gets them."""
    from similar_rl.rewards import similar_reward_funcs

    funcs: list[Any] = similar_reward_funcs(
        scorer, dimensions=args.similar_dimensions, include_total=True, invalid_penalty=args.invalid_penalty
    )
    weights = [args.reward_weights.get(f.__name__.removeprefix("similar_"), 0.0) for f in funcs]
    if args.env_reward:
        funcs.append(EnvVerifiedReward(args.env_kwargs, args.invalid_penalty))
        weights.append(args.reward_weights.get("env", 1.0))
    if not any(weights):
        raise ValueError(
            "every reward weight is 0: give total, a dimension or env a weight in reward_weights"
        )
    return funcs, weights


# ----------------------------------------------------------------------------------------- model loading
def load_policy(args: GRPOArgs) -> tuple[Any, Any]:
    """(model, processing class) from ``args.model_path`` (local files only; a VLM gets its processor)."""
    from similar_rl.policies.hf import load_local_lm

    model, processing, _ = load_local_lm(
        args.model_path, "bfloat16" if args.bf16 else "float32", vlm=args.vlm
    )
    if args.resume:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, args.resume, is_trainable=True)
        logger.info("starting from the LoRA adapter in %s", args.resume)
    return model, processing


def _strip_pickles(folder: Path) -> None:
    for name in PICKLE_FILES:
        (folder / name).unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------------ evaluation
def act(model: Any, processing: Any, state: GUIState, history: Sequence[str], args: GRPOArgs) -> str | None:
    """Greedy-decode one action for ``state``; None if the completion holds no valid action."""
    import torch
    from PIL import Image

    use_image = args.vlm and state.screenshot is not None
    messages = messages_for(state, history, args, image_placeholder=use_image)
    if use_image:
        prompt = processing.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = processing(text=[prompt], images=[Image.fromarray(state.screenshot)], return_tensors="pt")
    else:
        inputs = processing.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
    inputs = {k: v.to(model.device) for k, v in inputs.items()}
    tokenizer = getattr(processing, "tokenizer", processing)
    with torch.no_grad():
        out = model.generate(
            **inputs,
            do_sample=False,
            max_new_tokens=args.max_completion_length,
            pad_token_id=tokenizer.pad_token_id,
        )
    text = tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    return completion_action(text)


def evaluate_policy(
    model: Any, processing: Any, args: GRPOArgs, episodes: int | None = None
) -> dict[str, float]:
    """Success rate, mean episode length and invalid-action rate of greedy acting in the real env, over every env
    of ``args.eval_env_ids`` (default ``[args.env_id]``), ``episodes`` each; per-env success rates too when
    there are several."""
    from similar_rl.agents.common import play_episodes

    episodes = args.eval_episodes if episodes is None else episodes
    model.eval()

    def choose(state: Any, history: Any) -> str | None:
        return act(model, processing, state, list(history), args)

    env_ids = args.eval_env_ids or [args.env_id]
    played = []  # (env id, its episodes)
    for env_id in env_ids:
        env, adapter = make_env(env_id, **args.env_kwargs)
        seed, max_steps = args.eval_seed, args.max_episode_steps
        played.append(
            (env_id, play_episodes(env, adapter, choose, seed, episodes, max_steps, invalid="noop"))
        )
    every = [e for _, eps in played for e in eps]
    steps = sum(e.steps for e in every)
    metrics = {
        "eval/success_rate": _mean([e.success for e in every]),
        "eval/episodic_length": _mean([e.steps for e in every]),
        "eval/invalid_action_rate": sum(e.invalid_actions for e in every) / max(steps, 1),
        "eval/episodes": float(len(every)),
    }
    if len(env_ids) > 1:
        metrics.update(
            {f"eval/{env_id}/success_rate": _mean([e.success for e in eps]) for env_id, eps in played}
        )
    return metrics


def _mean(values: list[Any]) -> float:
    return float(np.mean(values)) if values else float("nan")


# ------------------------------------------------------------------------------------------------- training
def train(
    args: GRPOArgs, model: Any = None, processing_class: Any = None, scorer: Any = None
) -> dict[str, Any]:
    """Warm up (``sft_steps``), run GRPO (``max_steps``) and evaluate the policy in the env; return a summary.

    ``model`` / ``processing_class`` / ``scorer`` override ``model_path`` / ``reward_model`` with ready objects.
    """
    from similar_rl.agents.common import start_run

    _, run_dir = start_run(args, f"{args.env_id.replace('/', '-')}__grpo__{args.seed}")
    if model is None:
        model, loaded = load_policy(args)
        processing_class = processing_class or loaded
    peft_config = None
    if args.lora and not args.resume:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=args.lora_r,
            lora_alpha=args.lora_alpha,
            lora_dropout=args.lora_dropout,
            target_modules=args.lora_target_modules,
            task_type="CAUSAL_LM",
        )
    report_to = (["tensorboard"] if args.tensorboard else []) + (["wandb"] if args.track else [])
    if args.track:
        os.environ["WANDB_MODE"] = args.wandb_mode
        os.environ.setdefault("WANDB_PROJECT", args.wandb_project)
        os.environ.setdefault("WANDB_DIR", str(run_dir))

    summary: dict[str, Any] = {"run_dir": str(run_dir), "global_step": 0}
    if args.sft_steps:
        from similar_rl.agents.sft import warm_up

        model, summary["sft"] = warm_up(model, processing_class, args, run_dir, peft_config, report_to)
        peft_config = None  # GRPO goes on training the warm-up's adapter
    log = None
    if args.max_steps:
        model, log = _run_grpo(
            args, model, processing_class, peft_config, scorer, run_dir, report_to, summary
        )
    if args.sft_steps or args.max_steps:  # an untrained base policy is not copied
        final_dir = run_dir / "final"
        model.save_pretrained(str(final_dir))
        if processing_class is not None:
            processing_class.save_pretrained(str(final_dir))
        _strip_pickles(final_dir)
        save_args(args, final_dir / "similar_rl_args.json")
        summary["final_model"] = str(final_dir)
    if args.eval_episodes:
        metrics = evaluate_policy(model, processing_class, args)
        summary.update(metrics)
        if log is not None:
            log(metrics)
    if args.track:
        import wandb

        if wandb.run is not None:
            wandb.run.summary.update({k: v for k, v in summary.items() if isinstance(v, int | float)})
            wandb.finish()
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    logger.info("GRPO finished: %s", summary)
    return summary


def _run_grpo(
    args: GRPOArgs,
    model: Any,
    processing_class: Any,
    peft_config: Any,
    scorer: Any,
    run_dir: Path,
    report_to: list[str],
    summary: dict[str, Any],
) -> tuple[Any, Any]:
    """TRL's GRPOTrainer on the states of ``args``; fills ``summary`` and returns the trained model and the
    trainer's ``log``."""
    import torch
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from similar_rl.agents.common import load_scorer
    from similar_rl.tracking import SimilarTrackingCallback

    if args.states_from == "rollout":
        rows = rollout_states(args)
    else:
        rows = dataset_states(args.dataset_dir, args.num_states)
    dataset = build_dataset(rows, args)
    logger.info("GRPO on %d states from %s", len(dataset), args.states_from)
    if scorer is None:
        scorer = load_scorer(args.reward_model, batch_size=args.scorer_batch_size)
    funcs, weights = reward_functions(args, scorer)
    config = GRPOConfig(
        output_dir=str(run_dir),
        run_name=run_dir.name,
        max_steps=args.max_steps,
        learning_rate=args.learning_rate,
        per_device_train_batch_size=args.per_device_train_batch_size,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        num_generations=args.num_generations,
        max_completion_length=args.max_completion_length,
        temperature=args.temperature,
        beta=args.beta,
        bf16=args.bf16,
        gradient_checkpointing=args.gradient_checkpointing,
        reward_weights=weights,
        multi_objective_aggregation=args.multi_objective_aggregation,
        logging_steps=1,
        save_strategy="steps" if args.save_steps else "no",
        save_steps=args.save_steps or 500,
        save_only_model=True,  # no pickled optimizer / scheduler / RNG files
        report_to=report_to or "none",
        seed=args.seed,
        use_cpu=not torch.cuda.is_available(),
        disable_tqdm=not args.progress,
    )

    class _NoPickles(TrainerCallback):
        def on_save(self, _args, state, _control, **_kw):
            _strip_pickles(run_dir / f"checkpoint-{state.global_step}")

    trainer = GRPOTrainer(
        model=model,
        reward_funcs=funcs,
        args=config,
        train_dataset=dataset,
        processing_class=processing_class,
        peft_config=peft_config,
        callbacks=[_NoPickles(), SimilarTrackingCallback(funcs, log_dir=str(run_dir))],
    )
    result = trainer.train()
    for func in funcs:
        if isinstance(func, EnvVerifiedReward):
            func.close()
    summary.update(
        global_step=int(trainer.state.global_step),
        train_loss=float(result.training_loss),
        states=len(dataset),
    )
    history = [h for h in trainer.state.log_history if "reward" in h]
    if history:
        summary["last_rewards"] = {
            k: v for k, v in history[-1].items() if k.startswith(("rewards/", "reward"))
        }
    return trainer.model, trainer.log


__all__ = [
    "EnvVerifiedReward",
    "GRPOArgs",
    "build_dataset",
    "dataset_states",
    "evaluate_policy",
    "load_policy",
    "reward_functions",
    "rollout_states",
    "train",
]
