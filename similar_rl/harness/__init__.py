"""The floor under the applications (commands, demo, agents, collection, training, benchmarks) and above
``envs/`` and ``scoring.py``: what every application needs and none should write again.

- :mod:`.settings`: the parsers of command-line values that every command shares (seed lists, JSON options).
"""
