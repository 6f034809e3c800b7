"""A conformance suite for OpenAI-compatible servers (ours or anyone's).

    claude-max-api conformance --base-url http://127.0.0.1:3456/v1 --model sonnet

Layout: `checks/` is the catalogue (one module per area), `probes` the requests the checks
share, `client` sends them (httpx, raw bytes), `recording` keeps them (vcrpy), `runner` runs a
catalogue against a target, `report` writes Markdown, JSON and the matrix, `cli` is the command.
"""

from proxy import __version__

__all__ = ["__version__"]
