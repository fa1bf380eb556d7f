"""Subcommands of `hftchaos` that live in their own modules: each has `configure(parser)` and
`run(arguments) -> int` (see MODULE_COMMANDS in harness/cli.py)."""
