"""Recorded CLI runs ("cassettes"), vcrpy-style: the data model, its file format, a directory
of them, the matcher that finds one for a request, and the redaction applied when recording.

    cassette.py    Cassette and its parts (one proxy-to-CLI interaction)
    serializer.py  the JSON file format (one stdout line per file line, diff-friendly)
    persister.py   a directory of cassette files (refuses to overwrite unless asked)
    matcher.py     configurable `match_on` over the normalised invocation
    redaction.py   what is normalised or removed before a cassette is written, and a leak scan
    catalogue.py   the file of scenarios the `record` command turns into cassettes
"""

from proxy.cassettes.cassette import (FORMAT, FORMAT_VERSION, Cassette, Ending, Recording,
                                      RecordedInvocation, Text)
from proxy.cassettes.matcher import DEFAULT_MATCH_ON, Matcher
from proxy.cassettes.persister import CassetteDirectory, CassetteExists

__all__ = ["FORMAT", "FORMAT_VERSION", "Cassette", "CassetteDirectory", "CassetteExists",
           "DEFAULT_MATCH_ON", "Ending", "Matcher", "RecordedInvocation", "Recording", "Text"]
