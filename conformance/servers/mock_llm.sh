#!/usr/bin/env bash
# @dwmkerr/mock-llm: an echo server with an OpenAI-style API, used as a deliberately sloppy
# negative control (the suite must find its deviations). Installed with npm into its own directory.
#
#   conformance/servers/mock_llm.sh install
#   conformance/servers/mock_llm.sh serve [PORT]      # 127.0.0.1:PORT (default 18800)
#   conformance/servers/mock_llm.sh version
#   conformance/servers/mock_llm.sh spec [PORT]       # the suite's --server spec for it
#
# Then:  claude-max-api conformance --server "$(conformance/servers/mock_llm.sh spec)"
set -euo pipefail

MOCK_LLM_VERSION="${MOCK_LLM_VERSION:-0.1.29}"
VENVS="${CONFORMANCE_VENVS:-${XDG_CACHE_HOME:-$HOME/.cache}/claude-max-api/conformance}"
DIR="$VENVS/mock-llm-$MOCK_LLM_VERSION"
MAIN="$DIR/node_modules/@dwmkerr/mock-llm/dist/main.js"

install() {
    if [ ! -f "$MAIN" ]; then
        mkdir -p "$DIR"
        npm install --silent --prefix "$DIR" --no-audit --no-fund "@dwmkerr/mock-llm@$MOCK_LLM_VERSION"
    fi
}

case "${1:-serve}" in
    install) install ;;
    spec) echo "mock-llm=http://127.0.0.1:${2:-18800}/v1,version=@dwmkerr/mock-llm $MOCK_LLM_VERSION" ;;
    version) node -e "console.log(require('$DIR/node_modules/@dwmkerr/mock-llm/package.json').version)" ;;
    serve)
        install
        cd "$DIR"   # it looks for an optional mock-llm.yaml in the working directory
        HOST=127.0.0.1 PORT="${2:-18800}" exec node "$MAIN"
        ;;
    *) echo "usage: $0 {install|serve [PORT]|version|spec [PORT]}" >&2; exit 2 ;;
esac
