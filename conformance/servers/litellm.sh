#!/usr/bin/env bash
# LiteLLM's proxy with `mock_response`: a fast, deterministic, independent OpenAI-compatible
# server for the conformance suite. It lives in its own virtual environment (its dependency set
# is large and must never touch the project's), created on first use.
#
#   conformance/servers/litellm.sh install            # create the venv (about 1-2 minutes)
#   conformance/servers/litellm.sh serve [PORT]       # serve on 127.0.0.1:PORT (default 18990)
#   conformance/servers/litellm.sh version            # print the installed version
#   conformance/servers/litellm.sh spec [PORT]        # the suite's --server spec for it
#
# Then:  claude-max-api conformance --server "$(conformance/servers/litellm.sh spec)"
# (with LITELLM_MASTER_KEY exported). A mock has no model behind it: the spec declares the
# checks that need one (token limits, stop sequences, repeating text) as known limitations.
#
# 1.106.12 is the newest release that installs from PyPI (newer ones need companion packages that
# are not published); it refuses to start without LITELLM_MASTER_KEY.
set -euo pipefail

LITELLM_VERSION="${LITELLM_VERSION:-1.106.12}"
VENVS="${CONFORMANCE_VENVS:-${XDG_CACHE_HOME:-$HOME/.cache}/claude-max-api/conformance}"
VENV="$VENVS/litellm-$LITELLM_VERSION"
PYTHON="${PYTHON:-python3}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export LITELLM_MASTER_KEY="${LITELLM_MASTER_KEY:-sk-conformance-local}"

install() {
    if [ ! -x "$VENV/bin/litellm" ]; then
        "$PYTHON" -m venv "$VENV"
        "$VENV/bin/pip" install --quiet --upgrade pip
        "$VENV/bin/pip" install --quiet "litellm[proxy]==$LITELLM_VERSION"
    fi
}

case "${1:-serve}" in
    install)
        install
        ;;
    version)
        "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("litellm"))'
        ;;
    spec)
        echo "litellm=http://127.0.0.1:${2:-18990}/v1,model=mock-gpt,key=env:LITELLM_MASTER_KEY,version=$LITELLM_VERSION (mock_response),skip=params.max_*:mock_response ignores token limits (no model behind it);params.stop.*:mock_response ignores stop sequences;params.response_format.*:mock_response always answers the same text;content.*roundtrip:mock_response always answers the same text;tools.choice.required:mock_response calls no tool (its mock_tool_calls would answer every request of the model with the same calls, and none in streams);tools.choice.named:mock_response calls no tool;tools.strict.*:mock_response calls no tool;tools.roundtrip.answer:mock_response always answers the same text;structured.*:mock_response always answers the same text;legacy.max_tokens.*:mock_response ignores token limits (no model behind it);legacy.echo:mock_response always answers the same text;responses.max_output_tokens.*:mock_response ignores token limits;responses.tools.*:mock_response answers text, never a tool call"
        ;;
    serve)
        install
        PORT="${2:-18990}"
        # No network: the cost map ships with the package; telemetry stays off.
        export LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_TELEMETRY=False
        exec "$VENV/bin/litellm" --config "$HERE/litellm.yaml" --host 127.0.0.1 --port "$PORT" \
            --num_workers 1
        ;;
    *)
        echo "usage: $0 {install|serve [PORT]|version|spec [PORT]}" >&2
        exit 2
        ;;
esac
