"""claude-max-api: an OpenAI-compatible API served by the Claude Code CLI."""

__version__ = "0.1.0"
