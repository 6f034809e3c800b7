"""schemathesis against the WSGI app in this process: every phase, every check, both modes.

The app replays one recorded cassette for any invocation (tests/support/runners.py), so every
valid request can reach the 200 path, streamed and not; the document is loaded from the app's
own /openapi.json. What the chat operation's fuzzing reached is counted and held to floors
(statistics.py). (The schema is built at import, the pattern schemathesis's pytest plugin
needs: its lazy `from_fixture` loader does not work with pytest 9.)
"""

from __future__ import annotations

import schemathesis

from proxy.app import create_app
from proxy.settings import Settings
from tests.schema_fuzz import hooks  # noqa: F401  (registers the hook and custom checks)
from tests.schema_fuzz.budget import chat_fuzzing_examples, config
from tests.support.runners import ScriptedTools, wildcard_replay

STATISTICS = "schemathesis in process"
CHAT_FUZZING_EXAMPLES = chat_fuzzing_examples(10)
# Requests with tools or a response_format run on a scripted model (tests/support/runners.py):
# they reach the 200 path too, tool calls and structured output included.
APP = create_app(Settings(), ScriptedTools(wildcard_replay("plain_question")))
schema = schemathesis.openapi.from_wsgi("/openapi.json", APP, config=config(chat_factor=10))


@schema.parametrize()
def test_app_conforms(case, fuzz_statistics):
    response = case.call_and_validate()
    fuzz_statistics.record(case, response)
