"""The Claude Code CLI version this release was built and tested against.

It must equal `[tool.claude-max-api] claude-cli-version` in pyproject.toml (the installed wheel
has no pyproject; tests/ops checks the two agree).
"""

PINNED_CLI_VERSION = "2.1.332"
