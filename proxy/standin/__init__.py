"""A deterministic stand-in for the Anthropic Messages API, to run the real `claude` CLI offline.

Point the CLI at it with `ANTHROPIC_BASE_URL=<up.base_url or up.base_url_for(name)>`,
`ANTHROPIC_API_KEY=<anything>`, `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1`. See docs/standin.md.
"""

from .scenario import Scenario, ToolUse, load_catalogue
from .server import RecordedRequest, StandInUpstream

__all__ = ["RecordedRequest", "Scenario", "StandInUpstream", "ToolUse", "load_catalogue"]
