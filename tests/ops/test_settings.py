"""Settings precedence (flags > environment > TOML > defaults), the key file, and
`claude-max-api config`, which prints the effective values and where each came from."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from proxy import settings as settings_mod
from proxy.claude.version import PINNED_CLI_VERSION
from proxy.settings import Settings, load_settings, resolve_settings
from tests.conftest import pinned_cli_version


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    settings_mod.add_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.fixture
def toml(tmp_path) -> Path:
    path = tmp_path / "claude-max-api.toml"
    path.write_text('[claude-max-api]\nport = 1111\nmax-messages = 11\nlog_content = true\n'
                    'allowed_origins = ["https://toml.example"]\nqueue_timeout = 1.5\n')
    return path


def test_defaults():
    settings, sources = resolve_settings(_args(), environ={})
    assert settings == Settings()
    assert set(sources.values()) == {"default"}


def test_toml_over_defaults(toml):
    settings, sources = resolve_settings(_args("--config", str(toml)), environ={})
    assert settings.port == 1111 and settings.max_messages == 11 and settings.log_content is True
    assert settings.allowed_origins == ["https://toml.example"] and settings.queue_timeout == 1.5
    assert sources["port"] == f"file {toml}" and sources["host"] == "default"


def test_env_over_toml(toml):
    env = {"CLAUDE_MAX_API_CONFIG": str(toml), "CLAUDE_MAX_API_PORT": "2222",
           "CLAUDE_MAX_API_LOG_CONTENT": "off",
           "CLAUDE_MAX_API_ALLOWED_ORIGINS": "https://a.example, https://b.example"}
    settings, sources = resolve_settings(_args(), environ=env)
    assert settings.port == 2222 and settings.log_content is False
    assert settings.allowed_origins == ["https://a.example", "https://b.example"]
    assert settings.max_messages == 11                    # still from the file
    assert sources["port"] == "env CLAUDE_MAX_API_PORT"


def test_flags_over_env(toml):
    env = {"CLAUDE_MAX_API_PORT": "2222", "CLAUDE_MAX_API_LOG_CONTENT": "on",
           "CLAUDE_MAX_API_ALLOWED_ORIGINS": "https://env.example"}
    args = _args("--config", str(toml), "--port", "3333", "--no-log-content",
                 "--allowed-origin", "https://flag.example", "--allowed-origin", "https://f2.example")
    settings, sources = resolve_settings(args, environ=env)
    assert settings.port == 3333 and settings.log_content is False
    assert settings.allowed_origins == ["https://flag.example", "https://f2.example"]
    assert sources["port"] == "flag --port" and sources["log_content"] == "flag --log-content"
    assert sources["allowed_origins"] == "flag --allowed-origin"


def test_api_keys_from_flags_env_and_file(tmp_path):
    key_file = tmp_path / "keys"
    key_file.write_text("# comment\n\nfile-key\n")
    settings, sources = resolve_settings(
        _args("--api-key", "flag-key", "--api-key", "", "--api-key-file", str(key_file)),
        environ={"CLAUDE_MAX_API_KEY": "env-key"})
    assert settings.api_keys == ["flag-key", "file-key"]   # flags win over env; blanks dropped
    assert sources["api_keys"] == f"flag --api-key + key file {key_file}"
    assert load_settings(_args(), environ={"CLAUDE_MAX_API_KEY": " , "}).api_keys == []


def test_bad_values_are_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("no_such_setting = 1\n")
    with pytest.raises(ValueError, match="no_such_setting"):
        load_settings(_args("--config", str(bad)), environ={})
    with pytest.raises(ValueError):
        load_settings(_args(), environ={"CLAUDE_MAX_API_PORT": "eighty"})
    with pytest.raises(ValueError, match="boolean"):
        load_settings(_args(), environ={"CLAUDE_MAX_API_LOG_CONTENT": "maybe"})
    with pytest.raises(OSError):
        load_settings(_args("--api-key-file", str(tmp_path / "missing")), environ={})


def _config(*argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CLAUDE_MAX_API_")}
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "proxy", "config", *argv], env=environ,
                          capture_output=True, text=True, timeout=60)


def test_config_command_shows_values_and_sources(toml):
    done = _config("--config", str(toml), "--host", "localhost", "--api-key", "very-secret",
                   env={"CLAUDE_MAX_API_QUEUE_SIZE": "7"})
    assert done.returncode == 0, done.stderr
    lines = {line.split(" = ")[0]: line for line in done.stdout.splitlines()}
    assert re.search(r'^host = "localhost"\s+# flag --host$', lines["host"])
    assert re.search(r"^queue_size = 7\s+# env CLAUDE_MAX_API_QUEUE_SIZE$", lines["queue_size"])
    assert lines["port"].endswith(f"# file {toml}")
    assert lines["threads"].endswith("# default")
    assert "very-secret" not in done.stdout and '["***"]' in lines["api_keys"]
    as_json = json.loads(_config("--json", "--api-key", "very-secret").stdout)
    assert as_json["api_keys"] == ["***"] and as_json["port"] == 3456


def test_config_command_reports_bad_input():
    done = _config(env={"CLAUDE_MAX_API_PORT": "eighty"})
    assert done.returncode == 2 and "claude-max-api:" in done.stderr


def test_the_pinned_cli_version_matches_pyproject():
    assert PINNED_CLI_VERSION == pinned_cli_version()


def test_a_bad_number_names_the_setting():
    import pytest
    from proxy.settings import load_settings
    with pytest.raises(ValueError, match="port: expected a whole number, got 'abc'"):
        load_settings(environ={"CLAUDE_MAX_API_PORT": "abc"})
