#!/usr/bin/env bash
# The main job: install what is missing, build, run the AI agent network demo (SQLite + mock LLM).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh release >/dev/null
exec build/genesis-mesh dev up "$@"
