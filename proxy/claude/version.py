"""The Claude Code CLI version this release was built and tested against.

It must equal `[tool.claude-max-api] claude-cli-version` in pyproject.toml (the installed wheel
has no pyproject; tests/ops checks the two agree).
"""

PINNED_CLI_VERSION = "2.1.332"


def cli_version(binary: str, timeout: float = 30.0) -> str | None:
    """What `<binary> --version` says (`2.1.332 (Claude Code)` -> `2.1.332`), None if it can't."""
    import subprocess
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True,
                             timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    words = out.stdout.split()
    return words[0] if out.returncode == 0 and words else None
