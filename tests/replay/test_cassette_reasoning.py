"""Reasoning settings in cassettes: recorded when a request set them, matched by default."""

from __future__ import annotations

import json

import pytest

from proxy.cassettes import serializer
from proxy.cassettes.matcher import Matcher, describe
from proxy.claude.invocation import Invocation
from tests.replay.test_cassette_format import _cassette

ASKED = {"effort": "high", "thinking_display": "summarized"}


def test_reasoning_settings_round_trip_and_are_absent_when_unset():
    cassette = _cassette(effort="low", thinking="disabled", thinking_display="summarized")
    text = serializer.dumps(cassette)
    invocation = json.loads(text)["invocation"]
    assert (invocation["effort"], invocation["thinking"], invocation["thinking_display"]) == (
        "low", "disabled", "summarized")
    assert invocation["argv"][-6:] == ["--effort", "low", "--thinking", "disabled",
                                       "--thinking-display", "summarized"]
    assert serializer.loads(text, "one") == cassette
    plain = json.loads(serializer.dumps(_cassette()))["invocation"]
    assert not {"effort", "thinking", "thinking_display"} & set(plain)


def test_a_damaged_reasoning_field_is_an_error():
    data = json.loads(serializer.dumps(_cassette(effort="low")))
    data["invocation"]["effort"] = 3
    with pytest.raises(serializer.CassetteFormatError, match="one: effort"):
        serializer.from_data(data, "one")


@pytest.mark.parametrize("asked", [{}, {"effort": "low", "thinking_display": "summarized"},
                                   {"effort": "high"}, {"thinking_display": "summarized"},
                                   {**ASKED, "thinking": "disabled"}])
def test_the_default_matcher_tells_reasoning_settings_apart(asked):
    recorded = _cassette(**ASKED).invocation
    assert Matcher().matches(Invocation(model="sonnet", blocks=("hello",), **ASKED), recorded)
    assert Matcher().failures(Invocation(model="sonnet", blocks=("hello",), **asked),
                              recorded) == ["reasoning"]


def test_describe_names_the_settings():
    text = describe(Invocation(model="sonnet", blocks=("hello",), **ASKED))
    assert text.endswith("effort high, thinking_display summarized")
    assert "effort" not in describe(Invocation(model="sonnet", blocks=("hello",)))


def test_recorded_runs_that_differ_only_in_reasoning_get_their_own_names():
    import hashlib

    from proxy.runners.recording import default_name

    plain = Invocation(model="sonnet", blocks=("hello",))
    # Without reasoning settings the name is what it was before reasoning existed: the key holds
    # only what the matcher compares for a plain run.
    key = "\n".join([*plain.stdin_lines(), "sonnet", plain.system_prompt, "None"])
    assert default_name(plain) == "run-" + hashlib.sha256(key.encode()).hexdigest()[:12]
    names = {default_name(Invocation(model="sonnet", blocks=("hello",), **asked))
             for asked in ({}, {"effort": "low"}, {"effort": "high"}, ASKED,
                           {"thinking": "disabled"})}
    assert len(names) == 5
