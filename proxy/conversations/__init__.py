"""Conversation state: how an OpenAI conversation becomes native Claude turns, the CLI session
files that carry those turns into a resumed run, and the CLI processes kept between turns.

* `turns`    the native turn type (role + Messages API content blocks), hashable and exact;
* `history`  OpenAI messages -> native turns, or the reason they cannot be native;
* `session`  the CLI's session file format, where it must live, and its removal;
* `keeper`   CLI processes kept after a turn, bounded in count, idle time and memory;
* `runner`   the Runner that continues a kept process or starts (resumes) a new one.
"""
