"""PPO on a GUI env with Similar's dense step rewards.

The loop itself, readable top to bottom in the CleanRL manner (Args dataclass, seeding, env factory, agent,
rollout, GAE, clipped update, ``charts/`` and ``losses/`` metrics, ``--track`` for W&B), lives in
``similar_rl/agents/ppo.py`` so that this script and ``similar-rl agent ppo`` run the same code.

    python examples/ppo_gui.py --config configs/ppo_toy.yaml --reward sparse --total-timesteps 2048
    python examples/ppo_gui.py --config configs/ppo_miniwob.yaml --track true
"""

import json
import logging

from similar_rl.agents.ppo import PPOArgs, evaluate, train
from similar_rl.harness.settings import args_from_cli

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = args_from_cli(PPOArgs, description=__doc__)
    summary = train(args)
    summary["greedy_eval"] = evaluate(summary["checkpoint"], episodes=20)
    print(json.dumps(summary, indent=2))
