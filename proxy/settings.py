"""One settings model for the server, read from flags, environment and an optional TOML file.

Precedence, highest first: command-line flag, environment variable, TOML file, default.
Each field declares its own flag, variable and help text, so the argument parser, the
`config` command and the documentation all come from this one table.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from proxy.keys import masked

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

ENV_PREFIX = "CLAUDE_MAX_API_"


def _opt(default: Any, help: str, *, env: str | None = None, flag: str | None = None,
         secret: bool = False) -> Any:
    return field(default=default, metadata={"help": help, "env": env, "flag": flag, "secret": secret})


def _opt_list(help: str, *, env: str | None = None, flag: str | None = None,
              secret: bool = False) -> Any:
    return field(default_factory=list,
                 metadata={"help": help, "env": env, "flag": flag, "secret": secret})


@dataclass
class Settings:
    # --- serving -----------------------------------------------------------------------
    host: str = _opt("127.0.0.1", "Address to bind. Anything but loopback requires an API key.")
    port: int = _opt(3456, "Port to bind.")
    threads: int = _opt(0, "waitress worker threads; 0 sizes them from max_concurrent (each open "
                           "stream pins a thread; spares keep /health and /v1/models responsive).")
    # --- the CLI -----------------------------------------------------------------------
    claude_bin: str = _opt("", "Path of the claude executable (default: CLAUDE_BIN, then PATH).",
                           env="CLAUDE_BIN")
    timeout: float = _opt(600.0, "Total time limit of one request, in seconds (504 when exceeded).")
    idle_timeout: float = _opt(300.0, "Time limit without any CLI output, in seconds.")
    fallback_model: str = _opt("", "Model the CLI switches to when the requested one is "
                                   "overloaded (its --fallback-model), e.g. sonnet; empty: none. "
                                   "Raises cli_max_retries to at least 2, which it needs.")
    include_reasoning: bool = _opt(False, "Show Claude's thinking (as reasoning_content) to "
                                          "requests that do not say (their include_reasoning); "
                                          "it turns on the CLI's thinking summaries.")
    cli_max_retries: int = _opt(1, "CLAUDE_CODE_MAX_RETRIES for the CLI: its own retry loop takes "
                                   "about 3 minutes at the default of 10, so keep it low.")
    work_dir: str = _opt("", "Directory for per-request working and temporary directories "
                             "(default: the system temp dir).")
    heartbeat_interval: float = _opt(15.0, "Seconds of silence after which an SSE comment is sent.")
    # --- replay / record ---------------------------------------------------------------
    replay: str = _opt("", "Serve from the cassettes in this directory instead of running the CLI.")
    replay_timing: str = _opt("fast", "Replay speed: 'fast' or 'recorded' (the recorded line timing).")
    record: str = _opt("", "Serve live through the CLI and write every run as a cassette into "
                           "this directory; what it already answers is replayed as "
                           "record_mode says.")
    record_mode: str = _opt("once", "With --record: 'once' (record if the directory holds no "
                                    "cassette, else replay only), 'new_episodes' (replay what "
                                    "it answers, record the rest), 'none' (replay only) or "
                                    "'all' (record everything).")
    match_ignore: list = _opt_list("With --replay or --record: a part of the match view that "
                                   "replay does not compare (a JSON pointer such as "
                                   "/system_prompt or /history/0, a part's name, or an OpenAI "
                                   "request field such as max_tokens); repeatable.",
                                   flag="--match-ignore")
    # --- concurrency -------------------------------------------------------------------
    max_concurrent: int = _opt(4, "Maximum simultaneous CLI processes, warm pool included.")
    queue_size: int = _opt(16, "Requests that may wait for a free CLI slot.")
    queue_timeout: float = _opt(30.0, "Seconds a request may wait for a slot before a 429.")
    pool_size: int = _opt(0, "Pre-spawned CLI processes kept warm per model (0 turns it off); "
                             "they use room max_concurrent leaves free.")
    pool_models: list = _opt_list("Models to keep warm processes for (empty: the models "
                                  "requested recently).", flag="--pool-model")
    pool_max_idle: float = _opt(600.0, "Seconds a warm process may idle before it is recycled.")
    # --- conversations -----------------------------------------------------------------
    keep_conversations: int = _opt(4, "CLI processes kept after answering, so the next turn of "
                                      "the same conversation continues them without start-up "
                                      "or re-sent history (0 turns it off). Counted apart from "
                                      "max_concurrent.")
    conversation_idle_timeout: float = _opt(600.0, "Seconds a kept conversation process may "
                                                   "wait for its next turn.")
    tool_call_timeout: float = _opt(600.0, "Seconds a CLI process waits for the results of the "
                                           "tool calls it handed to the client; then it is "
                                           "ended, and the results, when they come, resume "
                                           "the conversation in a new process.")
    conversation_memory_mb: int = _opt(1024, "Memory budget of the kept conversation processes "
                                             "(resident MB, all together); the least recently "
                                             "used are ended first.")
    # --- stored responses (the Responses API) -------------------------------------------
    responses_max: int = _opt(1000, "Responses kept for previous_response_id, GET and "
                                    "input_items (store: true), all API keys together; the "
                                    "least recently used go first (0 keeps none).")
    responses_memory_mb: int = _opt(128, "Memory budget of the stored responses (MB of their "
                                         "JSON text, each conversation counted whole).")
    responses_ttl: float = _opt(86400.0, "Seconds a stored response is kept after it was made.")
    # --- security ----------------------------------------------------------------------
    api_keys: list = _opt_list("Accepted client API keys (Bearer or x-api-key), as NAME=KEY "
                              "(the name shows in logs and metrics) or KEY; repeatable, or "
                              "comma-separated in the variable.", env="CLAUDE_MAX_API_KEY",
                              flag="--api-key", secret=True)
    api_key_file: str = _opt("", "File with one accepted API key per line (NAME=KEY or KEY).")
    key_rpm: int = _opt(0, "Requests per minute each API key may send to the completion "
                           "endpoints (0: no limit); more get a 429 with Retry-After.")
    key_concurrent: int = _opt(0, "Requests each API key may have in progress at once on the "
                                  "completion endpoints (0: no limit).")
    key_limits: list = _opt_list("One key's own limits, NAME:rpm=N,concurrent=M (overrides "
                                 "key_rpm and key_concurrent for that key).", flag="--key-limit")
    allowed_origins: list = _opt_list("Browser origins allowed to call the API (CORS).",
                                      flag="--allowed-origin")
    allowed_hosts: list = _opt_list("Extra Host header values accepted besides the bound name "
                                    "and loopback names.", flag="--allowed-host")
    max_body_bytes: int = _opt(8 * 1024 * 1024, "Maximum request body size in bytes (413).")
    max_messages: int = _opt(2048, "Maximum number of messages in one request.")
    max_prompt_chars: int = _opt(4 * 1024 * 1024, "Maximum rendered prompt size in characters.")
    max_header_bytes: int = _opt(64 * 1024, "Maximum size of the request line and headers in "
                                            "bytes (431).")
    connection_idle_timeout: float = _opt(60.0, "Seconds an idle keep-alive connection stays "
                                                "open (a running request is never cut).")
    max_connections: int = _opt(100, "Maximum simultaneous client connections; more wait in "
                                     "the kernel's backlog.")
    login_check_ttl: float = _opt(60.0, "Seconds /health/ready caches the CLI's login check.")
    # --- models ------------------------------------------------------------------------
    extra_models: list = _opt_list("Additional model ids to serve (passed to the CLI as they are).",
                                   flag="--extra-model")
    # --- logging -----------------------------------------------------------------------
    log_format: str = _opt("text", "Request log format: 'text' or 'json'.")
    log_content: bool = _opt(False, "Log prompt and completion text (off: only sizes are logged).")

    def effective_threads(self) -> int:
        return self.threads if self.threads > 0 else self.max_concurrent + self.queue_size + 8

    def public_dict(self) -> dict[str, Any]:
        """The effective values with secrets masked, for `claude-max-api config` and logs."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("secret") and value:
                # a key's name is shown, never the key
                value = [masked(v) for v in value] if isinstance(value, list) else "***"
            out[f.name] = value
        return out


def env_name(f: dataclasses.Field) -> str:
    return f.metadata.get("env") or ENV_PREFIX + f.name.upper()


def flag_name(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _coerce(f: dataclasses.Field, raw: Any) -> Any:
    kind = type(f.default) if f.default is not dataclasses.MISSING else list
    if kind is list:
        if isinstance(raw, str):
            return [item.strip() for item in raw.split(",") if item.strip()]
        return [str(item) for item in raw]
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(f"{f.name}: expected a boolean, got {raw!r}")
    if kind in (int, float):
        try:
            return kind(raw)
        except (TypeError, ValueError):
            what = "a whole number" if kind is int else "a number"
            raise ValueError(f"{f.name}: expected {what}, got {raw!r}") from None
    return str(raw)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds one flag per setting; unset flags stay None so lower layers can fill them."""
    parser.add_argument("--config", dest="config_file", default=None,
                        help="TOML settings file (also CLAUDE_MAX_API_CONFIG).")
    for f in dataclasses.fields(Settings):
        kind = type(f.default) if f.default is not dataclasses.MISSING else list
        kwargs: dict[str, Any] = {"dest": f.name, "default": None,
                                  "help": f"{f.metadata['help']} [env {env_name(f)}]"}
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif kind is list:
            kwargs["action"] = "append"
        else:
            kwargs["type"] = kind
        parser.add_argument(flag_name(f), **kwargs)


def load_settings(args: argparse.Namespace | None = None,
                  environ: Mapping[str, str] | None = None,
                  config_file: str | os.PathLike[str] | None = None) -> Settings:
    """Builds the effective settings: flags over environment over TOML over defaults."""
    return resolve_settings(args, environ, config_file)[0]


def resolve_settings(args: argparse.Namespace | None = None,
                     environ: Mapping[str, str] | None = None,
                     config_file: str | os.PathLike[str] | None = None
                     ) -> tuple[Settings, dict[str, str]]:
    """The effective settings and, per field, where its value came from (`flag --port`,
    `env CLAUDE_MAX_API_PORT`, `file <path>` or `default`)."""
    environ = os.environ if environ is None else environ
    path = config_file or (getattr(args, "config_file", None) if args else None) \
        or environ.get(ENV_PREFIX + "CONFIG")
    file_values: dict[str, Any] = {}
    if path:
        with open(path, "rb") as fh:
            file_values = tomllib.load(fh)
        file_values = file_values.get("claude-max-api", file_values)
    known = {f.name: f for f in dataclasses.fields(Settings)}
    unknown = sorted(set(file_values) - set(known) - {k.replace("-", "_") for k in known})
    unknown = [k for k in unknown if k.replace("-", "_") not in known]
    if unknown:
        raise ValueError(f"unknown setting(s) in {path}: {', '.join(unknown)}")

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, f in known.items():
        raw: Any = None
        sources[name] = "default"
        if args is not None and getattr(args, name, None) is not None:
            raw = getattr(args, name)
            sources[name] = f"flag {flag_name(f)}"
        elif env_name(f) in environ:
            raw = environ[env_name(f)]
            sources[name] = f"env {env_name(f)}"
        elif name in file_values or name.replace("_", "-") in file_values:
            raw = file_values.get(name, file_values.get(name.replace("_", "-")))
            sources[name] = f"file {path}"
        if raw is not None:
            values[name] = _coerce(f, raw)
    settings = Settings(**values)
    # A blank key (`--api-key ""`, `CLAUDE_MAX_API_KEY=`) is no key, never an accepted one.
    settings.api_keys = [k.strip() for k in settings.api_keys if k.strip()]
    if settings.api_key_file:
        keys = Path(settings.api_key_file).read_text(encoding="utf-8").splitlines()
        settings.api_keys = settings.api_keys + [k.strip() for k in keys
                                                 if k.strip() and not k.lstrip().startswith("#")]
        key_file = f"key file {settings.api_key_file}"
        sources["api_keys"] = key_file if sources["api_keys"] == "default" else \
            f"{sources['api_keys']} + {key_file}"
    return settings, sources
