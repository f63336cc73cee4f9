#!/bin/sh
# Runs multiprocess.py with $WORKERS (default 2) uvicorn workers on $HOST:$PORT, with the fresh
# PROMETHEUS_MULTIPROC_DIR that prometheus_client's multiprocess mode needs, removed on exit.
# SIGTERM / SIGINT are passed on to uvicorn, which stops its workers gracefully.
# From examples/fastapi:  HOST=127.0.0.1 PORT=8000 ./run_multiprocess.sh
set -u
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d "${TMPDIR:-/tmp}/prometheus-multiproc.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
export PROMETHEUS_MULTIPROC_DIR="$dir"
cd "$here" || exit 1
"${UVICORN:-$here/../.venv/bin/uvicorn}" multiprocess:app --host "${HOST:-127.0.0.1}" \
    --port "${PORT:-8000}" --workers "${WORKERS:-2}" --no-access-log &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM INT
# `wait` returns early when a trapped signal arrives: wait again for uvicorn's own exit.
while :; do
    wait "$child"; status=$?
    kill -0 "$child" 2>/dev/null || break
done
exit "$status"
