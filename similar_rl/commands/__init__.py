"""The subcommands of ``similar-rl``, one module each (see :mod:`similar_rl.cli`)."""

import sys


def fail(command: str, message: object) -> int:
    """Print ``similar-rl COMMAND: MESSAGE`` to stderr; return 2, the exit status of bad input."""
    print(f"similar-rl {command}: {message}", file=sys.stderr)
    return 2
