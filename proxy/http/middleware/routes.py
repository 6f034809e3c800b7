"""The route template of a request, for metric labels (bounded: never the raw path).

Falcon sets `req.uri_template` only once it has routed; a request refused before routing (a
401, a 403) still belongs to its route, so the path is matched against the document's
templates here. Anything else is `other`.
"""

from __future__ import annotations

import re
from typing import Iterable

import falcon

UNMATCHED = "other"


class RouteLabels:
    def __init__(self, templates: Iterable[str]) -> None:
        self._patterns = [(t, re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(t)) + "$"))
                          for t in dict.fromkeys(templates)]

    def label(self, req: falcon.Request) -> str:
        template = getattr(req, "uri_template", None)
        if template:
            return template
        for template, pattern in self._patterns:
            if pattern.match(req.path):
                return template
        return UNMATCHED
