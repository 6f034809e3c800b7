#!/usr/bin/env bash
# What CI runs: the conformance suite against this project's server and against LiteLLM.
#
#   conformance/servers/ci.sh [OUTPUT_DIR]          (default: conformance-out/)
#
# 1. claude-max-api in replay mode (tests/conformance/cli-cassettes: the CLI runs the suite's
#    prompts cause, recorded against the stand-in). No CLI, no network, no subscription. Every
#    must-level check has to pass. The fuzz phase is off here: its generated prompts have no
#    recordings (tests/conformance/test_live_proxy.py fuzzes the live server instead).
# 2. LiteLLM's proxy with mock_response, in its own venv (created on first use). Its known
#    deviations are in the committed matrix (docs/conformance.json), used as the baseline: the
#    job fails only if LiteLLM (or the suite) starts failing a must-level check it passed.
#
# Both runs are recorded (vcrpy cassettes) and reported (JSON and Markdown) in OUTPUT_DIR.
# Set SKIP_LITELLM=1 to run only the first part.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="$(mkdir -p "${1:-conformance-out}" && cd "${1:-conformance-out}" && pwd)"
PYTHON="${PYTHON:-python}"
cd "$ROOT"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

wait_for() {  # URL [seconds]
    for _ in $(seq 1 "${2:-60}"); do
        if "$PYTHON" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" "$1" 2>/dev/null; then
            return 0
        fi
        sleep 1
    done
    echo "ci.sh: $1 did not answer" >&2
    return 1
}

free_port() { "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# --- 1. this project, replay mode --------------------------------------------------------------
PORT="$(free_port)"
export CONFORMANCE_CI_KEY="sk-conformance-ci"
"$PYTHON" -m conformance.servers.claude_max_api --port "$PORT" \
    --replay tests/conformance/cli-cassettes --api-key "$CONFORMANCE_CI_KEY" > "$OUT/claude-max-api.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$PORT/health"
"$PYTHON" -m conformance \
    --server "claude-max-api=http://127.0.0.1:$PORT/v1,model=sonnet,key=env:CONFORMANCE_CI_KEY,version=replay,skip=responses.previous_response.outputs_only:replayed tool-use ids are redacted placeholders (tests/conformance/test_live_proxy.py checks it live)" \
    --fuzz-examples 0 --record "$OUT/cassettes" \
    --report "$OUT/claude-max-api.json" --report "$OUT/claude-max-api.md"

# --- 2. LiteLLM --------------------------------------------------------------------------------
if [ "${SKIP_LITELLM:-0}" != "1" ]; then
    export LITELLM_MASTER_KEY="${LITELLM_MASTER_KEY:-sk-conformance-local}"
    conformance/servers/litellm.sh install
    LPORT="$(free_port)"
    conformance/servers/litellm.sh serve "$LPORT" > "$OUT/litellm.log" 2>&1 &
    pids+=($!)
    wait_for "http://127.0.0.1:$LPORT/health/liveliness" 120
    "$PYTHON" -m conformance --server "$(conformance/servers/litellm.sh spec "$LPORT")" \
        --fuzz-examples 10 --record "$OUT/cassettes" \
        --report "$OUT/litellm.json" --report "$OUT/litellm.md" \
        --baseline docs/conformance.json
fi
