"""The floor under the applications (commands, demo, agents, collection, training, benchmarks) and above
``envs/`` and ``scoring.py``: what every application needs and none should write again.

- :mod:`.settings`: settings of every command and trainer (dataclass + YAML + command-line overrides, validated),
  and the parsers of seed lists and JSON options.
"""
