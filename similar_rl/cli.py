"""The ``similar-rl`` command. Each subcommand lives in ``similar_rl/commands/<name>.py`` and defines
``add_arguments(parser)`` and ``run(args) -> int``; modules are imported only when their command runs."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

#: subcommand -> one-line help. The module is ``similar_rl.commands.<name>``.
COMMANDS: dict[str, str] = {
    "collect": "MCTS-P collection of step-wise, five-dimensional labels into a dataset folder",
    "train": "Triple-M training of a Similar reward model",
    "eval": "pairwise accuracy per type on a dataset folder or SRMEval CSV",
    "agent": "PPO or GRPO agent training with Similar rewards (--config configs/....yaml)",
    "search": "best-of-N / reward-guided action selection on an env: success with and without",
    "serve": "HTTP reward server with dynamic batching",
    "demo": "the main job: MiniWoB++ episodes scored by the default model",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="similar-rl",
        description="Similar: a step-wise, five-dimensional reward model for RL of GUI agents.",
        allow_abbrev=False,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False, allow_abbrev=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # Parse the global options and the command name only; the command parses its own arguments.
    args, rest = parser.parse_known_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if args.command is None:
        parser.print_help()
        return 0
    module = importlib.import_module(f"similar_rl.commands.{args.command}")
    # no abbreviations: `--env X` must not silently mean `--env-kwargs X`
    cmd_parser = argparse.ArgumentParser(
        prog=f"similar-rl {args.command}", description=COMMANDS[args.command], allow_abbrev=False
    )
    module.add_arguments(cmd_parser)
    cmd_args = cmd_parser.parse_args(rest)
    return int(module.run(cmd_args) or 0)


if __name__ == "__main__":
    sys.exit(main())
