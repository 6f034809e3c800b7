"""A deterministic stand-in for the Anthropic Messages API, to run the real `claude` CLI offline.

Point the CLI at it with `ANTHROPIC_BASE_URL=<up.base_url or up.base_url_for(name)>`,
`ANTHROPIC_API_KEY=<anything>`, `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1`. See docs/standin.md.
"""

from .cache import CacheUsage, PromptCache
from .scenario import Scenario, ToolUse, load_catalogue
from .server import RecordedRequest, StandInUpstream, UsageTotals

__all__ = ["CacheUsage", "PromptCache", "RecordedRequest", "Scenario", "StandInUpstream", "ToolUse",
           "UsageTotals", "load_catalogue"]
