"""``similar-rl agent ppo|grpo --config FILE [--key value ...]``: train a GUI agent with Similar rewards.

Every key of the YAML file is also an option (``--total-timesteps 2048``, ``--reward sparse``,
``--reward-weights '{helpfulness: 1.0}'``); options override the file. The keys are the fields of
:class:`similar_rl.agents.ppo.PPOArgs` and :class:`similar_rl.agents.grpo.GRPOArgs` (see docs/agents.md).
"""

from __future__ import annotations

import argparse
import importlib
import json

from similar_rl.harness.settings import add_dataclass_arguments, build_args, load_yaml


def _args_classes() -> dict[str, type]:
    from similar_rl.agents import GRPOArgs, PPOArgs

    return {"ppo": PPOArgs, "grpo": GRPOArgs}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="algo", metavar="ALGO", required=True)
    for name, cls in _args_classes().items():
        p = sub.add_parser(name, help=f"{name.upper()} (keys: fields of {cls.__name__})", allow_abbrev=False)
        p.add_argument("--config", default=None, help="YAML file of settings (options override it)")
        add_dataclass_arguments(p, cls)


def run(args: argparse.Namespace) -> int:
    values = {k: v for k, v in vars(args).items() if k not in ("algo", "config", "command", "verbose")}
    config = getattr(args, "config", None)
    settings = build_args(_args_classes()[args.algo], load_yaml(config) if config else None, values)
    summary = importlib.import_module(f"similar_rl.agents.{args.algo}").train(settings)
    print(json.dumps(summary, indent=2, default=str))
    return 0
