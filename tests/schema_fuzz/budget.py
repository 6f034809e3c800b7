"""How much schemathesis does, and how it is set up for this project's document.

The settings live in schemathesis.toml beside this file (also used by the command line).
CI budget: `CMA_FUZZ_EXAMPLES` fuzzing examples per operation and generation mode (default 30:
about 15 s in process and 20 s over the socket on 2 cores); a nightly job sets it higher (400
took 8 minutes for both). The examples and coverage phases do not depend on it: they run every
example of the document and every coverage scenario schemathesis derives.
"""

from __future__ import annotations

import os
from pathlib import Path

from schemathesis.config import SchemathesisConfig

CONFIG_FILE = Path(__file__).resolve().parent / "schemathesis.toml"


def examples_per_operation() -> int | None:
    raw = os.environ.get("CMA_FUZZ_EXAMPLES", "").strip()
    return int(raw) if raw else None


def config() -> SchemathesisConfig:
    """schemathesis.toml, with the CI budget from the environment applied."""
    loaded = SchemathesisConfig.from_path(CONFIG_FILE)
    examples = examples_per_operation()
    if examples is not None:
        loaded.projects.default.generation.update(max_examples=examples)
    return loaded
