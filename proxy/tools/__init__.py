"""The tool bridge: a client's OpenAI functions become Claude's tools, natively.

* `spec`     OpenAI `tools`/`functions`/`tool_choice` -> the run's tool set (names, aliases,
             schemas), with a 400 naming the tool for what the API would refuse;
* `bridge`   an MCP server carried over the CLI's own control channel (`"type": "sdk"`): it
             offers exactly the client's tools, and holds every `tools/call` until the client's
             result arrives (the bridge never executes anything);
* `calls`    tool_use blocks <-> OpenAI tool calls: ids, names, arguments, results.
"""
