"""How much schemathesis does, and how it is set up for this project's document.

The settings live in schemathesis.toml beside this file (also used by the command line).
CI budget: `CMA_FUZZ_EXAMPLES` fuzzing examples per operation and generation mode (default 30),
and a multiple of that for the fuzzing phase of the chat operation, the one with a success path
worth fuzzing: ten times in process (300), five times over the socket, where each call costs
more (150); together about 35 s of CPU on 2 cores. A nightly job sets it higher. The examples
and coverage phases do not depend on it: they run every example of the document and every
coverage scenario schemathesis derives.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from schemathesis.config import SchemathesisConfig
from schemathesis.filters import FilterSet

CONFIG_FILE = Path(__file__).resolve().parent / "schemathesis.toml"
DEFAULT_EXAMPLES = 30


def examples_per_operation() -> int | None:
    raw = os.environ.get("CMA_FUZZ_EXAMPLES", "").strip()
    return int(raw) if raw else None


def chat_fuzzing_examples(factor: int) -> int:
    return factor * (examples_per_operation() or DEFAULT_EXAMPLES)


def config(chat_factor: int = 10) -> SchemathesisConfig:
    """schemathesis.toml, with the CI budget from the environment applied, and `chat_factor`
    times that for the chat operation's fuzzing phase (its `[[operations]]` entry)."""
    loaded = SchemathesisConfig.from_path(CONFIG_FILE)
    project = loaded.projects.default
    examples = examples_per_operation()
    if examples is not None:
        project.generation.update(max_examples=examples)
    (chat,) = project.operations.operations
    chat.phases.fuzzing.generation.update(max_examples=chat_fuzzing_examples(chat_factor))
    return loaded


def only(schema: Any, **selection: Any) -> Any:
    """`schema` limited to the operations `selection` names (schemathesis' `include` keywords).

    `schema.include(...)` selects nothing once the config has an `[[operations]]` entry
    (schemathesis 4.32): loading merges the config into an include-everything filter, and an
    include is one more alternative beside it. The selection is merged the way loading does it
    instead, so the chat operation keeps its own budget."""
    return schema.clone(filter_set=schema.config.operations.filter_set_with(
        include=FilterSet().with_include(**selection)))
