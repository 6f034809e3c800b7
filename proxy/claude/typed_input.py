"""How the CLI treats the text it is given as typed input (measured with CLI 2.1.332).

The CLI reads the last text block of the user message on stdin as what a user typed: a leading
`/` is a slash command (answered by the CLI, or a reminder injected, whatever
`--disable-slash-commands` says), and an `@path` is a file mention (the file's content attached;
with file mentions disabled, a note that the user mentioned a file). Earlier blocks, and turns
that reach the CLI through a session file, are not read this way.

It also drops text blocks that are whitespace to JavaScript's `String.prototype.trim()`, and
the Messages API refuses whitespace-only text blocks.
"""

from __future__ import annotations

import re

# What the CLI's JavaScript `trim()` removes: a text block made only of these is dropped.
# Not Python's isspace(): it differs on U+001C-U+001F, U+0085 (space to Python, text to
# JavaScript) and U+FEFF (the reverse).
CLI_WHITESPACE = frozenset(
    "\t\n\v\f\r \u00a0\u1680\u2028\u2029\u202f\u205f\u3000\ufeff"
    + "".join(map(chr, range(0x2000, 0x200B))))

# An `@` the CLI takes for a mention: at the start, or after its whitespace or CJK punctuation.
_MENTION = re.compile("(?:^|[" + re.escape("".join(sorted(CLI_WHITESPACE)))
                      + "\u3002\u3001\uff1f\uff01])@")


def blank(text: str) -> bool:
    """Empty or whitespace only, to the CLI (which drops such a block) or possibly to the
    Messages API (which refuses whitespace-only text blocks; which characters it counts is not
    documented, so Unicode's whitespace counts too)."""
    return not text.strip() or all(c in CLI_WHITESPACE for c in text)


def typed_input_safe(text: str) -> bool:
    """Whether the CLI passes this last text block on untouched."""
    return not text.startswith("/") and _MENTION.search(text) is None
