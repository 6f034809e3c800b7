"""`stop` sequences applied to text that arrives in pieces."""

from __future__ import annotations

from hypothesis import given, strategies as st

from proxy.chat.completion import StopScanner


def feed_all(stops, pieces):
    scanner = StopScanner(stops)
    out = "".join(scanner.feed(p) for p in pieces)
    return out + scanner.flush(), scanner.stopped


def test_stop_inside_one_piece():
    assert feed_all(["STOP"], ["abc STOP def"]) == ("abc ", True)


def test_stop_split_across_pieces_is_held_back_then_cut():
    scanner = StopScanner(["STOP"])
    assert scanner.feed("abc ST") == "abc "
    assert scanner.feed("OP more") == ""
    assert scanner.stopped


def test_held_text_that_is_no_stop_is_released():
    assert feed_all(["STOP"], ["abc ST", "ART"]) == ("abc START", False)


def test_earliest_of_several_stops_wins():
    assert feed_all(["b", "a"], ["xxab"]) == ("xx", True)


@given(st.text(max_size=40), st.lists(st.text(min_size=1, max_size=4), max_size=3),
       st.lists(st.integers(min_value=1, max_value=7), max_size=10))
def test_pieces_never_change_the_outcome(text, stops, cuts):
    pieces, rest = [], text
    for cut in cuts:
        pieces.append(rest[:cut])
        rest = rest[cut:]
    pieces.append(rest)
    found = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    expected = (text[:min(found)], True) if found else (text, False)
    assert feed_all(stops, pieces) == expected
