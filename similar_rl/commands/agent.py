"""``similar-rl agent ppo|grpo --config FILE [--key value ...]``: train a GUI agent with Similar rewards.

Every key of the YAML file is also an option (``--total-timesteps 2048``, ``--reward sparse``,
``--reward-weights '{helpfulness: 1.0}'``); options override the file. The keys are the fields of
:class:`similar_rl.agents.ppo.PPOArgs` and :class:`similar_rl.agents.grpo.GRPOArgs` (see docs/agents.md).
"""

from __future__ import annotations

import argparse
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
    values = dict(vars(args))
    algo, config = values.pop("algo"), values.pop("config", None)
    values.pop("command", None)
    values.pop("verbose", None)
    cls = _args_classes()[algo]
    settings = build_args(cls, load_yaml(config) if config else None, values)
    if algo == "ppo":
        from similar_rl.agents.ppo import train
    else:
        from similar_rl.agents.grpo import train
    summary = train(settings)
    print(json.dumps(summary, indent=2, default=str))
    return 0
