"""GRPO (TRL) on step-level prompts from GUI states, rewarded by Similar, then evaluated in the real env.

The trainer lives in ``similar_rl/agents/grpo.py`` (the same code ``similar-rl agent grpo`` runs):
states from behaviour-policy rollouts or an MCTS-P dataset folder, prompts with instruction / screen elements /
history (and the screenshot for a VLM), ``similar_reward_funcs`` (+ an optional env-verified reward), LoRA
via PEFT, per-dimension reward curves in TensorBoard / offline W&B, greedy evaluation in the env.

    python examples/grpo_gui.py --config configs/grpo_toy.yaml --model-path /path/to/local/causal-lm
    accelerate launch examples/grpo_gui.py --config configs/grpo_miniwob.yaml --model-path /models/Qwen2.5-VL-3B-Instruct --vlm true --bf16 true
"""

import json
import logging

from similar_rl.agents.grpo import GRPOArgs, train
from similar_rl.harness.settings import args_from_cli

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    print(json.dumps(train(args_from_cli(GRPOArgs, description=__doc__)), indent=2, default=str))
