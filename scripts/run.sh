#!/usr/bin/env bash
# `make run`: serves the default model (models/stories260K.gguf) on
# 127.0.0.1:8000 with the binary given as $1 and prints how to call it.
# Every `inferd serve` flag can be set through its INFERD_* variable, e.g.
# INFERD_PORT=8080 make run.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build/inferd}
MODEL=${INFERD_MODEL:-models/stories260K.gguf}
HOST=${INFERD_HOST:-127.0.0.1}
PORT=${INFERD_PORT:-8000}
cat <<MSG
Serving $MODEL on http://$HOST:$PORT (Ctrl-C stops it). Try:

  curl http://$HOST:$PORT/v1/completions -H 'Content-Type: application/json' \\
    -d '{"prompt": "Once upon a time", "max_tokens": 32, "temperature": 0}'

  curl -N http://$HOST:$PORT/v1/chat/completions -H 'Content-Type: application/json' \\
    -d '{"messages": [{"role": "user", "content": "Tell me a story"}], "max_tokens": 32, "stream": true}'

MSG
exec "$BIN" serve --model "$MODEL" --host "$HOST" --port "$PORT" --log-format text
