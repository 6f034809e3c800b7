"""The cassette file format, the directory persister and the matcher."""

from __future__ import annotations

import json

import pytest

from proxy.cassettes import serializer
from proxy.cassettes.cassette import Cassette, Ending, RecordedInvocation, Recording
from proxy.cassettes.matcher import DEFAULT_MATCH_ON, STRICT_MATCH_ON, Matcher
from proxy.cassettes.persister import CassetteDirectory, CassetteExists
from proxy.claude.invocation import Invocation
from tests.replay.conftest import CASSETTES


def _cassette(name="one", lines=('{"type":"result","result":"ok"}',), prompt="hello",
              model="sonnet", **invocation) -> Cassette:
    inv = RecordedInvocation.of(Invocation(model=model, blocks=(prompt,), **invocation))
    return Cassette(name=name, invocation=inv, stdout=tuple(lines),
                    offsets=tuple(0.1 * i for i in range(len(lines))), exit_offset=1.0,
                    ending=Ending(0, "", False),
                    recording=Recording(description="test", scenario={"reply_text": "ok"}),
                    cli_version="9.9.9")


# -- serializer --------------------------------------------------------------------------

def test_every_fixture_is_exactly_what_the_serializer_writes():
    """No hand edits: loading and dumping a fixture gives the file back byte for byte."""
    files = sorted(CASSETTES.rglob("*.json"))
    assert len(files) >= 30
    for file in files:
        text = file.read_text(encoding="utf-8")
        assert serializer.dumps(serializer.loads(text, file.stem)) == text, file.name


@pytest.mark.parametrize("line", [
    '{"type":"system","subtype":"init","cwd":"<CWD>"}',
    '{"text":"caf\u00e9 \U0001F600 \\u0001 \\"q\\" \\\\ \u2028"}',
    '{"lone":"\\ud800"}',                       # a lone surrogate, as JSON.stringify writes it
    '{"spaced": 1}',                            # not the compact form: kept as a string
    '{"type":"result","cost":1e-05}',           # Python would write 1e-05 the same
    "Welcome to Claude Code!",
    '{"truncated":',
    "",
    "\x1b[31mred\x1b[0m",
])
def test_each_stdout_line_survives_a_round_trip_byte_for_byte(line):
    cassette = _cassette(lines=(line,))
    again = serializer.loads(serializer.dumps(cassette), "one")
    assert again.stdout == (line,)


def test_json_lines_are_embedded_as_objects_one_per_file_line():
    cassette = _cassette(lines=('{"a":1}', "plain", '{"b":[2]}'))
    text = serializer.dumps(cassette)
    assert '    {"a":1},\n    "plain",\n    {"b":[2]}\n' in text
    data = json.loads(text)
    assert data["stdout"] == [{"a": 1}, "plain", {"b": [2]}]


def test_timing_is_one_line_at_the_end_and_left_out_of_comparisons():
    text = serializer.dumps(_cassette(lines=("x", "y")))
    assert text.rstrip().splitlines()[-2] == '  "timing_ms": {"exit":1000,"stdout":[0,100]}'
    assert "timing_ms" not in serializer.comparable(_cassette())


def test_the_full_model_round_trips():
    cassette = _cassette(system_prompt="sys", max_output_tokens=16,
                         extra_env=(("A", "1"),))
    again = serializer.loads(serializer.dumps(cassette), "one")
    assert again == cassette


BIG_IMAGE = json.dumps({"type": "base64", "media_type": "image/png", "data": "A" * 40000})
URL_IMAGE = json.dumps({"type": "url", "url": "https://example.com/a.png"})


def test_images_round_trip_and_a_large_one_is_kept_as_its_digest():
    cassette = _cassette(images=((0, BIG_IMAGE), (1, URL_IMAGE)))
    text = serializer.dumps(cassette)
    assert "A" * 1000 not in text and '"before":1' in text
    again = serializer.loads(text, "one")
    assert again == cassette and again.invocation.images[0][1].is_digest
    # A cassette without images has no "images" key: older cassettes stay byte for byte.
    assert '"images"' not in serializer.dumps(_cassette())


def test_images_are_matched_by_content_and_position():
    recorded = _cassette(images=((0, BIG_IMAGE),)).invocation
    matcher = Matcher()
    assert matcher.matches(Invocation(model="sonnet", blocks=("hello",),
                                      images=((0, BIG_IMAGE),)), recorded)
    for images in ((), ((1, BIG_IMAGE),), ((0, URL_IMAGE),), ((0, BIG_IMAGE), (0, BIG_IMAGE))):
        assert matcher.failures(Invocation(model="sonnet", blocks=("hello",), images=images),
                                recorded) == ["blocks"], images


def test_unknown_format_versions_and_non_cassettes_are_refused():
    data = json.loads(serializer.dumps(_cassette()))
    data["format_version"] = 99
    with pytest.raises(serializer.CassetteFormatError, match="version 99"):
        serializer.from_data(data, "x")
    with pytest.raises(serializer.CassetteFormatError, match="not a cassette"):
        serializer.loads('{"format": "something-else"}', "x")
    with pytest.raises(serializer.CassetteFormatError, match="not JSON"):
        serializer.loads("{nope", "x")


# -- persister ----------------------------------------------------------------------------

def test_saving_refuses_to_overwrite_unless_asked(tmp_path):
    directory = CassetteDirectory(tmp_path)
    path = directory.save(_cassette(prompt="first"))
    assert path == tmp_path / "one.json"
    with pytest.raises(CassetteExists):
        directory.save(_cassette(prompt="second"))
    assert directory.load("one").invocation.blocks[0].full == "first"
    directory.save(_cassette(prompt="second"), overwrite=True)
    assert directory.load("one").invocation.blocks[0].full == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.json"]  # no temp files left
    assert oct(path.stat().st_mode & 0o777) == "0o644"


def test_loading_finds_nested_cassettes_and_skips_other_json(tmp_path):
    directory = CassetteDirectory(tmp_path)
    directory.save(_cassette(name="top"))
    directory.save(_cassette(name="nested/deeper"))
    (tmp_path / "catalogue.json").write_text('{"format": "claude-max-api-catalogue"}')
    assert [c.name for c in directory.load_all()] == ["nested/deeper", "top"]


def test_a_damaged_cassette_is_an_error_not_a_silent_skip(tmp_path):
    text = serializer.dumps(_cassette())
    (tmp_path / "broken.json").write_text(text[:-40], encoding="utf-8")
    with pytest.raises(serializer.CassetteFormatError, match="broken.json"):
        CassetteDirectory(tmp_path).load_all()


@pytest.mark.parametrize("name", ["../escape", "/abs", "sp ace", ""])
def test_names_cannot_leave_the_directory(tmp_path, name):
    with pytest.raises(ValueError):
        CassetteDirectory(tmp_path).path_for(name)


# -- matcher ------------------------------------------------------------------------------

def test_default_match_on_compares_model_prompt_and_output_limit():
    recorded = _cassette(max_output_tokens=5).invocation
    matcher = Matcher()
    assert matcher.match_on == DEFAULT_MATCH_ON
    same = Invocation(model="sonnet", blocks=("hello",), max_output_tokens=5)
    assert matcher.matches(same, recorded)
    assert matcher.failures(Invocation(model="opus", blocks=("hello",), max_output_tokens=5),
                            recorded) == ["model"]
    assert matcher.failures(Invocation(model="sonnet", blocks=("hello", "x"),
                                       max_output_tokens=5), recorded) == ["blocks"]
    assert matcher.failures(Invocation(model="sonnet", blocks=("hello",)), recorded) \
        == ["max_output_tokens"]
    assert matcher.failures(Invocation(model="sonnet", system_prompt="s", blocks=("hello",),
                                       max_output_tokens=5), recorded) == ["system_prompt"]


def _tool_turns(first: str, second: str, answered: str) -> tuple:
    from proxy.conversations.turns import Turn
    return (Turn.of("user", [{"type": "text", "text": "weather?"}]),
            Turn.of("assistant", [{"type": "tool_use", "id": first, "name": "mcp__c__w",
                                   "input": {}},
                                  {"type": "tool_use", "id": second, "name": "mcp__c__w",
                                   "input": {"city": "x"}}]),
            Turn.of("user", [{"type": "tool_result", "tool_use_id": answered, "content": "ok"},
                             {"type": "text", "text": "and now?"}]))


def test_history_matches_tool_use_ids_by_their_order_of_appearance():
    """A replayed call reaches the client with its id redacted; the client's next request
    (that id sent back) must still find the recording of the round trip."""
    recorded = RecordedInvocation.of(Invocation(
        model="sonnet", history=_tool_turns("toolu_live_a", "toolu_live_b", "toolu_live_a")))
    matcher = Matcher()
    replayed = Invocation(model="sonnet", history=_tool_turns("<TOOL_USE_ID_1>",
                                                              "<TOOL_USE_ID_2>",
                                                              "<TOOL_USE_ID_1>"))
    assert matcher.matches(replayed, recorded)
    # Any other difference still counts, the pairing of calls and results included.
    swapped = Invocation(model="sonnet", history=_tool_turns("x1", "x2", "x2"))
    assert matcher.failures(swapped, recorded) == ["history"]
    merged = Invocation(model="sonnet", history=_tool_turns("x1", "x1", "x1"))
    assert matcher.failures(merged, recorded) == ["history"]


def test_strict_matching_also_compares_argv_stdin_and_env():
    recorded = _cassette().invocation
    strict = Matcher(STRICT_MATCH_ON)
    assert strict.matches(Invocation(model="sonnet", blocks=("hello",)), recorded)
    changed = Invocation(model="sonnet", blocks=("hello",), extra_env=(("X", "1"),))
    assert strict.failures(changed, recorded) == ["extra_env"]


def test_custom_matchers_and_unknown_names():
    recorded = _cassette().invocation
    loose = Matcher([lambda inv, rec: inv.blocks[0].lower() == rec.blocks[0].full.lower()])
    assert loose.matches(Invocation(model="opus", blocks=("HELLO",)), recorded)
    with pytest.raises(ValueError, match="unknown matcher"):
        Matcher(["model", "prompt"])
    with pytest.raises(ValueError):
        Matcher([])


def test_nearest_ranks_by_differing_fields_then_prompt_similarity():
    cassettes = [_cassette(name="far", prompt="completely unrelated words", model="opus"),
                 _cassette(name="close", prompt="hello there", model="sonnet"),
                 _cassette(name="closer", prompt="hello therd", model="sonnet")]
    near = Matcher().nearest(Invocation(model="sonnet", blocks=("hello there!",)), cassettes)
    assert [n.name for n in near] == ["close", "closer", "far"]
    assert near[0].differs_in == ("blocks",)
    assert near[0].describe() == 'close: blocks[0] differs: "hello there!" here, "hello there" ' \
                                 'in the cassette'
    assert near[0].describe(pointer=True).endswith("(at /blocks/0)")
    assert near[2].describe() == 'far: model differs: "sonnet" here, "opus" in the cassette'


def _turn(role: str, text: str):
    from proxy.conversations.turns import Turn
    return Turn.of(role, [{"type": "text", "text": text}])


def test_match_ignore_takes_pointers_part_names_and_request_fields():
    history = (_turn("user", "Hi, it is 09:00."), _turn("assistant", "Hello."))
    recorded = _cassette(system_prompt="Today is Monday.", history=history).invocation
    asked = dict(model="sonnet", blocks=("hello",), history=history)
    monday = Invocation(system_prompt="Today is Monday.", **asked)
    tuesday = Invocation(system_prompt="Today is Tuesday.", **asked)
    assert Matcher().matches(monday, recorded) and not Matcher().matches(tuesday, recorded)
    for ignore in (["/system_prompt"], ["system_prompt"], ["user", "/system_prompt"]):
        matcher = Matcher(ignore=ignore)
        assert matcher.matches(tuesday, recorded), ignore
        assert matcher.parts == ("model", "history", "tool_results", "blocks", "images",
                                 "max_output_tokens", "effort", "thinking", "thinking_display",
                                 "tools", "json_schema")
    later = (_turn("user", "Hi, it is 10:30."), history[1])
    changed = Invocation(system_prompt="Today is Monday.", **{**asked, "history": later})
    assert Matcher().failures(changed, recorded) == ["history"]
    for ignore in ("/history/0/content/0/text", "/history/*/content/0/text", "/history/0"):
        assert Matcher(ignore=[ignore]).matches(changed, recorded), ignore
    # ...but an ignored turn still has to be there: a shorter history is another request.
    shorter = Invocation(system_prompt="Today is Monday.", **{**asked, "history": ()})
    assert not Matcher(ignore=["/history/0"]).matches(shorter, recorded)
    limit = Invocation(system_prompt="Today is Monday.", max_output_tokens=9, **asked)
    assert Matcher(ignore=["max_tokens"]).matches(limit, recorded)


@pytest.mark.parametrize("spec", ["/nothing/0", "messages", "colour", "nopointer/x"])
def test_match_ignore_refuses_what_it_cannot_apply(spec):
    with pytest.raises(ValueError, match="--match-ignore"):
        Matcher(ignore=[spec])


def test_the_first_difference_in_words():
    history = (_turn("user", "My name is Ada."), _turn("assistant", "Chess is a fine game."))
    recorded = _cassette(history=history, max_output_tokens=5).invocation
    matcher = Matcher()

    def first(**changes):
        asked = dict(model="sonnet", blocks=("hello",), history=history, max_output_tokens=5)
        found = matcher.first_difference(Invocation(**{**asked, **changes}), recorded)
        return found.words, found.pointer

    assert first(history=(history[0], _turn("assistant", "Chess is fun."))) == (
        'history[1].content[0].text (an assistant turn) differs: "Chess is fun." here, '
        '"Chess is a fine game." in the cassette', "/history/1/content/0/text")
    assert first(history=history[:1]) == ("history differs: 1 turns here, 2 in the cassette",
                                          "/history")
    assert first(max_output_tokens=None) == (
        "max_output_tokens differs: none here, 5 in the cassette", "/max_output_tokens")
    long = _cassette(prompt="x" * 100 + "B" + "x" * 100).invocation
    found = matcher.first_difference(Invocation(model="sonnet", blocks=("x" * 100 + "A" +
                                                                        "x" * 100,)), long)
    assert found.words == (f'blocks[0] differs: "…{"x" * 13}A{"x" * 26}…" here, '
                           f'"…{"x" * 13}B{"x" * 26}…" in the cassette')
    assert matcher.first_difference(Invocation(model="sonnet", blocks=("hello",),
                                               history=history, max_output_tokens=5),
                                    recorded) is None


def test_keyed_lookup_finds_what_matching_finds():
    """The replay runner looks cassettes up by the key of their match view."""
    from proxy.runners.replay import ReplayRunner
    cassettes = [_cassette(name=f"c{i}", prompt=p, model=m)
                 for i, (p, m) in enumerate([("a", "sonnet"), ("b", "sonnet"), ("a", "opus")])]
    for ignore in ((), ("model",)):
        runner = ReplayRunner(cassettes, matcher=Matcher(ignore=ignore))
        for prompt in "ab":
            invocation = Invocation(model="sonnet", blocks=(prompt,))
            linear = [c.name for c in cassettes
                      if runner.matcher.matches(invocation, c.invocation)]
            assert [c.name for c in runner.matching(invocation)] == linear
    assert [c.name for c in runner.matching(Invocation(model="x", blocks=("a",)))] == ["c0", "c2"]
